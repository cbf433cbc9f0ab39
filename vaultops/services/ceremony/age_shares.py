"""Unseal shares handed out encrypted to a keyholder's age or ssh public key (beside PGP).

Vault encrypts PGP shares itself (pgp_keys) and vaultops never sees them; with age the shares
come back in plaintext from sys/init or the rekey and vaultops encrypts each to its keyholder's
key before it is written or shown, so only armored ciphertext leaves the process. (vaultops
therefore also enrolls the keyholders' verifiers at once.) Inside is the share as text in the
chosen codec, so a keyholder decrypts it with any age tool:

    age -d -i ~/.ssh/id_ed25519 alice.share.age | vaultops unseal --share-stdin
    vaultops keyholders enroll --keyholder alice --age-encrypted alice.share.age --identity KEY
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.errors import SecurityError, UsageError

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity
    from vaultops.services.ceremony.shares import Share

KEY_CAP = 16 << 10


def read_recipient(path: str) -> str:
    """The public key in *path* (an age-keygen -y line, or an ssh .pub file) as canonical text."""
    from vaultops.crypto.agekeys import parse_recipient
    from vaultops.crypto.stanza import KeyFormatError

    try:
        data = Path(path).read_bytes()[:KEY_CAP]
    except OSError as exc:
        raise UsageError(f"cannot read the age key {path} ({exc.strerror})", hint="check the path") from None
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise UsageError(f"{path} should hold exactly one public key line, it holds {len(lines)}",
                         hint="give the age1… line (age-keygen -y) or the ssh .pub file, never a private key")
    try:
        return parse_recipient(lines[0]).text
    except KeyFormatError as exc:
        raise UsageError(f"{path}: {exc.message}", hint=exc.hint) from None


def seal_share(text: str, recipient: str) -> str:
    """*text* (a share in its codec) encrypted to *recipient*, ASCII-armored."""
    from vaultops.crypto import age
    from vaultops.crypto.agekeys import parse_recipient

    return age.armor(age.encrypt((text + "\n").encode(), [parse_recipient(recipient)]))


def open_share(armored: str, identities: Sequence[Identity]) -> Share:
    """The share inside an armored age file handed out by init or rekey."""
    from vaultops.crypto import age
    from vaultops.crypto.stanza import AgeError
    from vaultops.services.ceremony import shares

    try:
        plain = age.decrypt(age.dearmor(armored), identities)
    except AgeError as exc:
        raise SecurityError(f"the encrypted share cannot be opened: {exc.message}", hint=exc.hint) from None
    return shares.decode(plain.decode("utf-8", "replace"))
