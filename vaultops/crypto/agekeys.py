"""age recipients (public) and identities (private): X25519, ssh-ed25519, ssh-rsa.

    age1…                        X25519 recipient (Bech32, HRP "age")
    AGE-SECRET-KEY-1…            X25519 identity (one per line in an identity file, '#' comments)
    ssh-ed25519 AAAA… [comment]  recipient; the matching OpenSSH private key is the identity
    ssh-rsa AAAA… [comment]      recipient (>= 2048 bits); its OpenSSH/PEM private key the identity

The ssh types follow the reference implementation (filippo.io/age/agessh): the stanza names
the key by the first 4 bytes of SHA-256 of its SSH wire encoding; ssh-ed25519 maps the key to
Curve25519 and tweaks the shared secret with the key; ssh-rsa is RSA-OAEP-SHA-256.

Fingerprints (what a backup manifest records, never a secret): an X25519 recipient is its own
`age1…` string (it is short and age has no other name for it); an ssh key is `SHA256:…` as
`ssh-keygen -l` prints it. Errors about identities never quote the identity.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, x25519

from vaultops.crypto.stanza import (DAMAGED_HINT, HeaderError, KeyFormatError, Stanza, b64decode, b64encode, hkdf,
                                    open_key, seal_key)

X25519_INFO = b"age-encryption.org/v1/X25519"
ED25519_INFO = b"age-encryption.org/v1/ssh-ed25519"
RSA_LABEL = b"age-encryption.org/v1/ssh-rsa"
RSA_MIN_BITS = 2048
IDENTITY_HINT = "an identity file holds AGE-SECRET-KEY-1… lines, or is an OpenSSH private key"


class Recipient(Protocol):
    @property
    def type(self) -> str:
        """The stanza type it writes."""
        ...

    @property
    def text(self) -> str:
        """Its canonical public form (age1… or "ssh-… AAAA…")."""
        ...

    @property
    def fingerprint(self) -> str:
        """What manifests and listings show."""
        ...

    def wrap(self, file_key: bytes) -> Stanza: ...


class Identity(Protocol):
    @property
    def recipient(self) -> Recipient: ...

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The file key if *stanza* is addressed to this identity; None if it is not; HeaderError
        if it is of this identity's type but malformed."""
        ...


# -- Bech32 (BIP173, no length limit) ----------------------------------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: bytes | list[int], src: int, dst: int, *, pad: bool) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    for value in data:
        acc = (acc << src) | value
        bits += src
        while bits >= dst:
            bits -= dst
            out.append((acc >> bits) & ((1 << dst) - 1))
    if pad and bits:
        out.append((acc << (dst - bits)) & ((1 << dst) - 1))
    elif not pad and (bits >= src or (acc << (dst - bits)) & ((1 << dst) - 1)):
        return None
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    values = _regroup(data, 8, 5, pad=True) or []
    poly = _polymod(_expand(hrp) + values + [0] * 6) ^ 1
    check = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + check)


def bech32_decode(text: str) -> tuple[str, bytes] | None:
    """(hrp, data) of a valid Bech32 string (all upper or all lower case), else None."""
    if text.lower() != text and text.upper() != text:
        return None
    low = text.lower()
    pos = low.rfind("1")
    if pos < 1 or len(low) - pos < 7 or any(c not in _CHARSET for c in low[pos + 1:]):
        return None
    hrp, values = low[:pos], [_CHARSET.index(c) for c in low[pos + 1:]]
    if any(not 33 <= ord(c) <= 126 for c in hrp) or _polymod(_expand(hrp) + values) != 1:
        return None
    data = _regroup(values[:-6], 5, 8, pad=False)
    return None if data is None else (hrp, bytes(data))


# -- X25519 --------------------------------------------------------------------------

def _exchange(secret: x25519.X25519PrivateKey, public: bytes) -> bytes:
    try:
        return secret.exchange(x25519.X25519PublicKey.from_public_bytes(public))
    except ValueError:  # cryptography refuses an all-zero shared secret (a low-order point)
        raise HeaderError("an X25519 share is a low-order point", hint=DAMAGED_HINT) from None


@dataclass(frozen=True)
class X25519Recipient:
    public: bytes
    type: str = "X25519"

    @property
    def text(self) -> str:
        return bech32_encode("age", self.public)

    @property
    def fingerprint(self) -> str:
        return self.text

    def wrap(self, file_key: bytes) -> Stanza:
        ephemeral = x25519.X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        shared = _exchange(ephemeral, self.public)
        key = hkdf(shared, share + self.public, X25519_INFO)
        return Stanza("X25519", (b64encode(share),), seal_key(key, file_key))


@dataclass(frozen=True)
class X25519Identity:
    secret: x25519.X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(x25519.X25519PrivateKey.generate())

    @property
    def recipient(self) -> X25519Recipient:
        return X25519Recipient(self.secret.public_key().public_bytes_raw())

    def to_text(self) -> str:
        """AGE-SECRET-KEY-1… (for tests and key generation; never logged)."""
        return bech32_encode("age-secret-key-", self.secret.private_bytes_raw()).upper()

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "X25519":
            return None
        if len(stanza.args) != 1:
            raise HeaderError("an X25519 stanza must have exactly one argument", hint=DAMAGED_HINT)
        share = b64decode(stanza.args[0], what="X25519 share")
        if len(share) != 32:
            raise HeaderError("an X25519 share must be 32 bytes", hint=DAMAGED_HINT)
        shared = _exchange(self.secret, share)
        return open_key(hkdf(shared, share + self.recipient.public, X25519_INFO), stanza.body)


# -- ssh-ed25519 / ssh-rsa ----------------------------------------------------------------

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P


def ed25519_to_x25519_public(public: bytes) -> bytes:
    """The Montgomery u of an Edwards25519 point, u = (1 + y) / (1 - y); invalid points refused."""
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    sign = public[31] >> 7
    if y >= _P or y == 1:
        raise KeyFormatError("the ssh-ed25519 key is not a valid curve point", hint="check the public key")
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if (x2 != 0 and pow(x2, (_P - 1) // 2, _P) != 1) or (x2 == 0 and sign):
        raise KeyFormatError("the ssh-ed25519 key is not a valid curve point", hint="check the public key")
    return ((1 + y) * pow(1 - y, _P - 2, _P) % _P).to_bytes(32, "little")


def _openssh(key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")


def _wire(key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> bytes:
    import base64

    return base64.b64decode(_openssh(key).split()[1])


def ssh_fingerprint(wire: bytes) -> str:
    import base64

    return "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")


def _tag(wire: bytes) -> str:
    return b64encode(hashlib.sha256(wire).digest()[:4])


class _SshKey:
    """What both ssh recipient types derive from their public key."""

    key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey

    @property
    def wire(self) -> bytes:
        return _wire(self.key)

    @property
    def text(self) -> str:
        return _openssh(self.key)

    @property
    def fingerprint(self) -> str:
        return ssh_fingerprint(self.wire)

    @property
    def tag(self) -> str:
        """The stanza's first argument: names the key without revealing more than a 4-byte hash."""
        return _tag(self.wire)


@dataclass(frozen=True)
class SshEd25519Recipient(_SshKey):
    key: ed25519.Ed25519PublicKey
    type: str = "ssh-ed25519"

    def wrap(self, file_key: bytes) -> Stanza:
        theirs = ed25519_to_x25519_public(self.key.public_bytes_raw())
        ephemeral = x25519.X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        shared = _tweaked(_exchange(ephemeral, theirs), self.wire)
        key = hkdf(shared, share + theirs, ED25519_INFO)
        return Stanza("ssh-ed25519", (self.tag, b64encode(share)), seal_key(key, file_key))


def _tweaked(shared: bytes, wire: bytes) -> bytes:
    tweak = x25519.X25519PrivateKey.from_private_bytes(hkdf(b"", wire, ED25519_INFO))  # ikm empty, salt = key
    return _exchange(tweak, shared)


@dataclass(frozen=True)
class SshEd25519Identity:
    key: ed25519.Ed25519PrivateKey = field(repr=False)

    @property
    def recipient(self) -> SshEd25519Recipient:
        return SshEd25519Recipient(self.key.public_key())

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "ssh-ed25519":
            return None
        if len(stanza.args) != 2:
            raise HeaderError("an ssh-ed25519 stanza must have two arguments", hint=DAMAGED_HINT)
        share = b64decode(stanza.args[1], what="ssh-ed25519 share")
        if len(share) != 32:
            raise HeaderError("an ssh-ed25519 share must be 32 bytes", hint=DAMAGED_HINT)
        mine = self.recipient
        if stanza.args[0] != mine.tag:
            return None
        secret = x25519.X25519PrivateKey.from_private_bytes(
            hashlib.sha512(self.key.private_bytes_raw()).digest()[:32])
        ours = secret.public_key().public_bytes_raw()
        shared = _tweaked(_exchange(secret, share), mine.wire)
        return open_key(hkdf(shared, share + ours, ED25519_INFO), stanza.body)


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=RSA_LABEL)


@dataclass(frozen=True)
class SshRsaRecipient(_SshKey):
    key: rsa.RSAPublicKey
    type: str = "ssh-rsa"

    def wrap(self, file_key: bytes) -> Stanza:
        return Stanza("ssh-rsa", (self.tag,), self.key.encrypt(file_key, _oaep()))


@dataclass(frozen=True)
class SshRsaIdentity:
    key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def recipient(self) -> SshRsaRecipient:
        return SshRsaRecipient(self.key.public_key())

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "ssh-rsa":
            return None
        if len(stanza.args) != 1:
            raise HeaderError("an ssh-rsa stanza must have one argument", hint=DAMAGED_HINT)
        if stanza.args[0] != self.recipient.tag:
            return None
        try:
            return self.key.decrypt(stanza.body, _oaep())
        except ValueError:
            raise HeaderError("the ssh-rsa stanza addressed to this key does not decrypt",
                              hint=DAMAGED_HINT) from None


# -- parsing ---------------------------------------------------------------------------------

def parse_recipient(text: str) -> Recipient:
    """`age1…`, `ssh-ed25519 AAAA…` or `ssh-rsa AAAA…` (a trailing comment is allowed)."""
    text = text.strip()
    if text.startswith("age1"):
        decoded = bech32_decode(text)
        if decoded is None or decoded[0] != "age" or len(decoded[1]) != 32 or text != text.lower():
            raise KeyFormatError(f"{text[:80]!r} is not a valid age recipient", hint="copy it from age-keygen -y")
        return X25519Recipient(decoded[1])
    if text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
        return _ssh_recipient(text)
    raise KeyFormatError(f"{text[:40]!r} is not an age recipient",
                         hint="use an age1… key (age-keygen -y) or an ssh-ed25519 / ssh-rsa public key")


def _ssh_recipient(text: str) -> Recipient:
    try:
        key = serialization.load_ssh_public_key(" ".join(text.split()[:2]).encode())
    except (ValueError, IndexError):
        raise KeyFormatError(f"{text[:80]!r} is not a valid ssh public key", hint="copy it from the .pub file") \
            from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        ed25519_to_x25519_public(key.public_bytes_raw())  # refuses an invalid point now, not at encryption
        return SshEd25519Recipient(key)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < RSA_MIN_BITS:
            raise KeyFormatError(f"the ssh-rsa key has {key.key_size} bits", hint="use a key of 2048 bits or more")
        return SshRsaRecipient(key)
    raise KeyFormatError("unsupported ssh key type", hint="use ssh-ed25519 or ssh-rsa")


def parse_identities(data: bytes, *, passphrase: bytes | None = None) -> list[Identity]:
    """The identities in an identity file: AGE-SECRET-KEY-1 lines, or one ssh private key."""
    if b"-----BEGIN" in data:
        return [_ssh_identity(data, passphrase)]
    out: list[Identity] = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        decoded = bech32_decode(line.decode("ascii", "replace"))
        if decoded is None or decoded[0] != "age-secret-key-" or len(decoded[1]) != 32:
            raise KeyFormatError(f"line {n} of the identity file is not an age identity", hint=IDENTITY_HINT)
        out.append(X25519Identity(x25519.X25519PrivateKey.from_private_bytes(decoded[1])))
    if not out:
        raise KeyFormatError("the identity file holds no identity", hint=IDENTITY_HINT)
    return out


def _ssh_identity(data: bytes, passphrase: bytes | None) -> Identity:
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            key = serialization.load_ssh_private_key(data, password=passphrase)
        else:
            key = serialization.load_pem_private_key(data, password=passphrase)  # type: ignore[assignment]
    except UnsupportedAlgorithm:
        raise KeyFormatError("this ssh private key needs the bcrypt module to be opened",
                             hint="install vaultops with its dependencies (pip install bcrypt)") from None
    except TypeError:
        raise KeyFormatError("the ssh private key is protected by a passphrase",
                             hint="give the passphrase when asked (a terminal is needed), or use an age identity")\
            from None
    except (ValueError, IndexError):
        raise KeyFormatError("the ssh private key cannot be read (wrong passphrase, or damaged)",
                             hint=IDENTITY_HINT) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return SshEd25519Identity(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return SshRsaIdentity(key)
    raise KeyFormatError("unsupported ssh private key type", hint="use an ssh-ed25519 or ssh-rsa key")
