"""What the unseal ceremony says about a share, in words for the people at the keyboard.

A share is named by its keyholder's number in the manifest (alice is #1 of 5), not by the
x-coordinate the server uses (alice's might be 201): the raw index appears only with --debug.
A share that fails the check of the keyholder who is entering it is most likely mistyped, and
the message says so; one that belongs to another keyholder says whose it is.

    words = Wording(manifest, debug=False)
    words.share(201)                    # 'share #1'  (debug: 'share #1 (x=201)')
    words.refusal(check_result)         # 'this is probably a typo in alice's share: ...'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vaultops.services.ceremony.manifest import CheckStatus
from vaultops.services.ceremony.share_words import CHECKSUM_FAILED

if TYPE_CHECKING:
    from vaultops.services.ceremony.manifest import CheckResult, Manifest

ANOTHER_CLUSTER = "another cluster, or a share from before a rekey?"


@dataclass(frozen=True)
class Wording:
    manifest: Manifest | None = None
    debug: bool = False

    def number(self, index: int) -> int | None:
        """The keyholder's number in the manifest (1-based) for the share with x-coordinate *index*."""
        if self.manifest is None:
            return None
        return next((i for i, k in enumerate(self.manifest.keyholders, 1) if k.share_index == index), None)

    def share(self, index: int) -> str:
        n = self.number(index)
        text = f"share #{n}" if n is not None else "a share"
        return f"{text} (x={index})" if self.debug else text

    def refusal(self, result: CheckResult) -> str:
        """Why the share *result* describes is not the named keyholder's (nothing is sent)."""
        name, label, owner = result.keyholder, self.share(result.share_index), result.owner
        if result.status is CheckStatus.OTHER_KEYHOLDER and result.verified:
            return f"{label} belongs to keyholder {owner}, not to {name}"
        if result.status is CheckStatus.OTHER_KEYHOLDER:
            return (f"{label} carries keyholder {owner}'s number, not {name}'s ({owner} has no verifier "
                    "in the manifest to confirm it)")
        if result.status is CheckStatus.NO_VERIFIER:
            return f"keyholder {name} has no verifier in the manifest yet: {label} cannot be checked"
        return typo(name, self._mismatch(result))

    def unknown(self, index: int) -> str:
        extra = f" (x={index})" if self.debug else ""
        return f"this share{extra} matches no keyholder in the manifest ({ANOTHER_CLUSTER})"

    def _mismatch(self, result: CheckResult) -> str:
        if self.manifest is not None and self.number(result.share_index) is not None:
            own = next(k for k in self.manifest.keyholders if k.name == result.keyholder)
            if own.share_index == result.share_index:
                return f"it carries {result.keyholder}'s number but does not match the manifest's check"
        return f"it matches no keyholder in the manifest (or: {ANOTHER_CLUSTER})"


def typo(keyholder: str, why: str) -> str:
    return f"this is probably a typo in {keyholder}'s share: {why}"


def format_refusal(message: str, keyholder: str | None) -> str:
    """A decoding error, said to the keyholder who typed it: a failed checksum is most likely a typo."""
    if keyholder and message == CHECKSUM_FAILED:
        return f"{message}; {typo(keyholder, 'compare every word with the written copy')}"
    return message


TYPO_HINT = "compare it with the written copy and enter it again; nothing was sent"

__all__ = ["ANOTHER_CLUSTER", "TYPO_HINT", "Wording", "format_refusal", "typo"]
