"""The read side of backup encryption: decrypt as it streams, or check the ciphertext without a key.

`revealed(sink, manifest, identities)` is the sink itself for a plain backup, and for an
encrypted one a view of it whose read_chunks(name) yields the plaintext: the ciphertext read
under its own byte and time budget, hashed on the way and compared with the manifest at the
end, decrypted chunk by chunk (64 KiB; constant memory). Every reader (verify, inspect,
restore, drill) goes through stored.read_stored on that view, so the formats know nothing of
encryption. A decryption failure ends the read in one VerificationError before any consumer
sees the end of the stream: verifiers never finish, restores never start.

A wrong identity is not a verdict on the backup (it may be perfectly fine): WrongIdentity,
a plain BackupError, so `backup verify` records no failed check for it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from vaultops.crypto import age
from vaultops.crypto.agekeys import Identity, parse_identities
from vaultops.crypto.stanza import AgeError, NoIdentityMatch
from vaultops.errors import BackupError, VerificationError
from vaultops.services.backup.manifest import Manifest
from vaultops.services.backup.verify import Budget, Verifier, VerifyReport, bounded
from vaultops.storage.base import CHUNK, ObjectInfo, Sink, Upload

IDENTITY_CAP = 64 << 10


class WrongIdentity(BackupError):
    """None of the given identities opens the backup: no verdict on its content."""


def load_identities(data: bytes | bytearray, *, passphrase: bytes | None = None) -> list[Identity]:
    """Identities from an identity file's bytes (AGE-SECRET-KEY-1… lines, or an OpenSSH private key)."""
    if len(data) > IDENTITY_CAP:
        raise BackupError("the identity is larger than 64 KiB: not an identity file",
                          hint="pass the age identity file or the ssh private key")
    return parse_identities(bytes(data), passphrase=passphrase)


def recipients_text(manifest: Manifest) -> str:
    enc = manifest.encryption
    return ", ".join(r.fingerprint for r in enc.recipients) if enc else ""


def decrypted(chunks: Iterator[bytes], manifest: Manifest, identities: Sequence[Identity], *,
              what: str) -> Iterator[bytes]:
    """The plaintext of an encrypted backup's stored *chunks*; the ciphertext checked against the manifest."""
    assert manifest.encryption is not None
    dec, sha, size = age.Decryptor(identities), hashlib.sha256(), 0
    with _age_errors(manifest, what):
        for chunk in chunks:
            sha.update(chunk)
            size += len(chunk)
            if plain := dec.update(chunk):
                yield plain
        if size != manifest.encryption.ciphertext_size or sha.hexdigest() != manifest.encryption.ciphertext_sha256:
            raise VerificationError(f"{what}: the stored ciphertext differs from the manifest "
                                    f"({size} bytes, {manifest.encryption.ciphertext_size} published)",
                                    hint="the stored copy changed after publication: use another copy")
        if tail := dec.finish():
            yield tail


@contextlib.contextmanager
def _age_errors(manifest: Manifest, what: str) -> Iterator[None]:
    """age's errors said as the backup's: a wrong identity (no verdict), or a damaged ciphertext."""
    try:
        yield
    except NoIdentityMatch:
        raise WrongIdentity(f"{what}: none of the given identities opens this backup (it is encrypted to "
                            f"{recipients_text(manifest)})",
                            hint="pass --identity with the private key of one of those recipients") from None
    except AgeError as exc:
        raise VerificationError(f"{what}: cannot decrypt: {exc.message}", hint=exc.hint) from None


def check_opens(sink: Sink, manifest: Manifest, identities: Sequence[Identity] | None) -> None:
    """Refuse now, before anything is stopped or started, unless *identities* open *manifest*'s
    backup: only its age header is read (the payload is checked when the backup is fetched)."""
    revealed(sink, manifest, identities)          # encrypted and no identity: the same refusal
    if manifest.encryption is None or not identities:
        return
    what = f"{sink.name}/{manifest.name}"
    dec = age.Decryptor(identities)
    chunks = sink.read_chunks(manifest.name)
    try:
        with _age_errors(manifest, what):
            for chunk in chunks:
                dec.update(chunk)
                if dec.header is not None:        # parsed, and a file key unwrapped (else it raised)
                    return
            dec.finish()
    finally:
        getattr(chunks, "close", lambda: None)()  # the rest of the object is never read


class RevealedSink:
    """*sink*, except that reading *manifest*'s object yields its decrypted plaintext."""

    def __init__(self, sink: Sink, manifest: Manifest, identities: Sequence[Identity]) -> None:
        self.sink, self.manifest, self.identities = sink, manifest, list(identities)
        self.name = sink.name

    def read_chunks(self, key: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]:
        if key != self.manifest.name:
            yield from self.sink.read_chunks(key, chunk_size=chunk_size)
            return
        what = f"{self.sink.name}/{key}"
        stored = bounded(self.sink.read_chunks(key, chunk_size=chunk_size),
                         Budget.for_size(self.manifest.stored_size), what=what)
        yield from decrypted(stored, self.manifest, self.identities, what=what)

    def open_upload(self, key: str) -> Upload:
        return self.sink.open_upload(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.sink.put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes:
        return self.sink.get_bytes(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.sink.list(prefix)

    def delete(self, key: str) -> None:
        self.sink.delete(key)

    def exists(self, key: str) -> bool:
        return self.sink.exists(key)


def revealed(sink: Sink, manifest: Manifest, identities: Sequence[Identity] | None) -> Sink:
    """The sink to read *manifest*'s backup through: itself when plain, a decrypting view when encrypted."""
    if manifest.encryption is None:
        return sink
    if not identities:
        raise BackupError(f"{manifest.name} is encrypted (to {recipients_text(manifest)})",
                          hint="pass --identity FILE (or --identity - for stdin) with one of those private keys")
    return RevealedSink(sink, manifest, identities)


class CiphertextVerifier(Verifier):
    """The keyless check of an encrypted backup: digest and size (compared with the manifest by the
    caller), a well-formed age header addressed to the recorded recipients, the size a plaintext
    of the recorded size encrypts to. Proves the stored bytes are the published ones; not that
    they decrypt, nor who published them."""

    kind = "age"

    def __init__(self, manifest: Manifest) -> None:
        assert manifest.encryption is not None
        self.manifest = manifest
        self._sha = hashlib.sha256()
        self._size = 0
        self._head = bytearray()
        self._header: age.Header | None = None

    def feed(self, chunk: bytes | bytearray) -> None:
        self._sha.update(chunk)
        self._size += len(chunk)
        if self._header is None and len(self._head) < age.MAX_HEADER:
            self._head += chunk[: age.MAX_HEADER]
            if age.header_end(self._head) is not None:
                self._header = _checked(self._head)

    def finish(self) -> VerifyReport:
        header = self._header or _checked(self._head)  # raises for a missing or damaged header
        problem = _recipient_problem(header, self.manifest)
        if problem is None and self._size != header.size + age.payload_size(self.manifest.size):
            problem = (f"{self._size} bytes cannot hold the {self.manifest.size}-byte snapshot the manifest "
                       "records")
        if problem:
            raise VerificationError(f"{self.manifest.name}: {problem}", hint="use another copy or an older backup")
        return VerifyReport(kind=self.kind, size=self._size, sha256=self._sha.hexdigest(),
                            meta={"stanzas": [s.type for s in header.stanzas]})


def _checked(head: bytes | bytearray) -> age.Header:
    try:
        return age.read_header(head)
    except AgeError as exc:
        raise VerificationError(f"the stored object is not a well-formed age file: {exc.message}",
                                hint="use another copy or an older backup") from None


def _recipient_problem(header: age.Header, manifest: Manifest) -> str | None:
    """Do the stanzas match the recorded recipients (types, count, and the ssh keys' tags)?"""
    assert manifest.encryption is not None
    recorded = manifest.encryption.recipients
    if sorted(s.type for s in header.stanzas) != sorted(r.type for r in recorded):
        return "its age header is not addressed to the recipients its manifest records"
    tags = {_ssh_tag(r.fingerprint) for r in recorded if r.type.startswith("ssh-")}
    if any(s.type.startswith("ssh-") and (not s.args or s.args[0] not in tags) for s in header.stanzas):
        return "its age header names an ssh key its manifest does not record"
    return None


def _ssh_tag(fingerprint: str) -> str:
    """An ssh stanza's tag (first 4 bytes of SHA-256 of the key) from the SHA256:… fingerprint."""
    import base64

    from vaultops.crypto.stanza import b64encode

    try:
        digest = base64.b64decode(fingerprint.removeprefix("SHA256:") + "==")
    except ValueError:
        return ""
    return b64encode(digest[:4])


def describe_check(manifest: Manifest, report: VerifyReport) -> dict[str, Any]:
    return {"ciphertext_sha256": report.sha256, "ciphertext_size": report.size,
            "recipients": recipients_text(manifest)}
