"""What the age format and its key types share: stanzas, canonical base64, HKDF, errors."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vaultops.errors import SecurityError

FILE_KEY_BYTES = 16
_B64 = re.compile(r"^[A-Za-z0-9+/]*$")
_ZERO_NONCE = bytes(12)
WRONG_KEY_HINT = "use an identity of one of the recipients the file was encrypted to"
DAMAGED_HINT = "the encrypted file is damaged or was altered: use another copy"


class AgeError(SecurityError):
    """An age file or key that cannot be used; one line, what to do next in the hint."""


class HeaderError(AgeError):
    """The header does not parse (damaged, or not an age v1 file)."""


class NoIdentityMatch(AgeError):
    """None of the identities opens any stanza: wrong key."""


class HeaderMacError(AgeError):
    """A file key was unwrapped but the header's MAC does not match it: the header was altered."""


class PayloadError(AgeError):
    """The STREAM payload does not decrypt to its end: truncated, altered or trailing data."""


class KeyFormatError(AgeError):
    """A recipient or identity that cannot be parsed."""


@dataclass(frozen=True)
class Stanza:
    type: str
    args: tuple[str, ...]
    body: bytes = field(repr=False)

    def encode(self) -> bytes:
        """`-> type args…` then the body in unpadded base64, wrapped at 64 columns, last line < 64."""
        text = b64encode(self.body)
        lines = [text[i:i + 64] for i in range(0, len(text), 64)]
        if not lines or len(lines[-1]) == 64:
            lines.append("")
        return ("-> " + " ".join((self.type, *self.args)) + "\n" + "".join(ln + "\n" for ln in lines)).encode()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str, *, error: type[AgeError] = HeaderError, what: str = "base64") -> bytes:
    """Unpadded, canonical base64 only (the spec: decoders MUST reject anything else)."""
    if not _B64.match(text) or len(text) % 4 == 1:
        raise error(f"invalid {what} in the age header", hint=DAMAGED_HINT)
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise error(f"invalid {what} in the age header", hint=DAMAGED_HINT) from None
    if b64encode(data) != text:
        raise error(f"non-canonical {what} in the age header", hint=DAMAGED_HINT)
    return data


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)


def seal_key(wrap_key: bytes, file_key: bytes) -> bytes:
    return ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)


def open_key(wrap_key: bytes, body: bytes) -> bytes | None:
    """The file key, or None when this wrap key does not open *body*."""
    from cryptography.exceptions import InvalidTag

    if len(body) != FILE_KEY_BYTES + 16:  # checked before decrypting: partitioning oracles (spec)
        raise HeaderError("a recipient stanza has a body of the wrong length", hint=DAMAGED_HINT)
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None
