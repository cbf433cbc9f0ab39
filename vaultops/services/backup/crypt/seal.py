"""The run's side of backup encryption: recipients from backup.encryption, and the sealing tee."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vaultops.crypto import age
from vaultops.crypto.agekeys import Recipient, parse_recipient
from vaultops.crypto.stanza import KeyFormatError
from vaultops.errors import ConfigError
from vaultops.services.backup.manifest import ENCRYPTION_FORMAT, Encryption, RecipientInfo

RECIPIENTS_CAP = 1 << 20


def configured_recipients(encryption: dict[str, Any]) -> list[Recipient]:
    """backup.encryption's recipients (inline, then recipients_file); one ConfigError naming the bad one."""
    texts = [(f"backup.encryption.recipients[{i}]", t) for i, t in enumerate(encryption.get("recipients") or [])]
    if encryption.get("recipients_file"):
        texts += _file_lines(Path(encryption["recipients_file"]))
    out: list[Recipient] = []
    for where, text in texts:
        try:
            out.append(parse_recipient(text))
        except KeyFormatError as exc:
            raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    if not out:
        raise ConfigError("backup.encryption names no recipient", hint="add age1… or ssh public keys")
    return list({r.fingerprint: r for r in out}.values())  # the same key twice is one recipient


def _file_lines(path: Path) -> list[tuple[str, str]]:
    from vaultops.files.loader import read_text

    text = read_text(path, cap=RECIPIENTS_CAP, what="backup.encryption.recipients_file",
                     missing="check the path, or list the keys under backup.encryption.recipients")
    return [(f"{path}:{n}", line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def fingerprints(encryption: dict[str, Any]) -> set[str]:
    """The configured recipients' fingerprints; empty when encryption is not configured."""
    return {r.fingerprint for r in configured_recipients(encryption)} if encryption else set()


def describe(recipients: Sequence[Recipient]) -> list[RecipientInfo]:
    return [RecipientInfo(type=r.type, fingerprint=r.fingerprint) for r in recipients]


class Sealer:
    """Encrypts a plaintext stream for the sinks and hashes what they receive.

    The pipeline gives the ciphertext to observers() in a thread of its own; a caller without one
    feeds each output piece to them itself, in order, before record().
    """

    def __init__(self, recipients: Sequence[Recipient]) -> None:
        self._recipients = list(recipients)
        self._enc = age.Encryptor(self._recipients)
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes | bytearray) -> bytes:
        return self._enc.update(chunk)

    def finish(self) -> bytes:
        return self._enc.finish()

    def observers(self) -> list[Callable[[bytes | bytearray], None]]:
        return [self._count]

    def _count(self, data: bytes | bytearray) -> None:
        self._sha.update(data)
        self.size += len(data)

    def record(self) -> Encryption:
        """The manifest's `encryption` (call after finish())."""
        return Encryption(format=ENCRYPTION_FORMAT, recipients=describe(self._recipients),
                          ciphertext_size=self.size, ciphertext_sha256=self._sha.hexdigest())
