"""Lines of shares held all at once (a restore drill), read exactly as `unseal --share-stdin` reads them.

    held = read_share_lines(lines, manifest=m)   # 'NAME: share' or bare; base64, hex or mnemonic
    held.shares, held.keyholders, held.checked   # decoded Shares; who holds each; verified or not
    held.wipe()

Each line goes through the ceremony's own parser (types.share_offset: a known keyholder name and
':' is a prefix, anything else is the share) and codecs (shares.decode), then, with a keyholder
manifest, through its verifiers (Manifest.require; a bare share's keyholder is found by its
x-coordinate). Every line is checked before the caller uses any: one bad line refuses them all,
naming its line number and never its content. The shares are held in bytearrays (Share) that
wipe() zeroes; the lines are the caller's.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vaultops.errors import SecurityError, ShareFormatError, ShareMismatchError, UsageError, VaultOpsError
from vaultops.services.ceremony.shares import Share, decode, to_buffer, wipe
from vaultops.services.ceremony.types import share_offset

if TYPE_CHECKING:
    from vaultops.services.ceremony.manifest import Manifest

MAX_LINES = 255  # more lines than any cluster has shares: not a list of shares
_BLANK = frozenset(b" \t\r\n")


@dataclass
class HeldShares:
    """Checked shares in memory, in the order given. Holds share material until wipe()."""

    shares: list[Share] = field(default_factory=list)
    keyholders: list[str] = field(default_factory=list)  # "unnamed #N" for a share nobody is named for
    checked: bool = False                                # every share confirmed by a manifest verifier

    def wipe(self) -> None:
        for share in self.shares:
            share.wipe()

    def __repr__(self) -> str:
        return f"HeldShares(<{len(self.shares)} shares of {', '.join(self.keyholders)}>)"


def read_share_lines(lines: Iterable[str | bytearray], *, manifest: Manifest | None,
                     allow_unverified: bool = False, workers: int = 1) -> HeldShares:
    """Every non-blank line decoded and, with *manifest*, checked; raise on the first bad one (all wiped).

    ShareFormatError / UsageError (exit 2): a line that is no share, a share given twice, too many
    lines. ShareMismatchError (exit 3): a share the manifest says is not its keyholder's, or two
    different shares with one index (one is of another cluster or key epoch). Every line
    is decoded before any is checked; with *workers* > 1 the verifiers (scrypt, ~0.1 s each, which
    releases the GIL) run that many at a time.
    """
    held = HeldShares(checked=manifest is not None)
    names = [k.name for k in manifest.keyholders] if manifest is not None else []
    given: list[tuple[int, str | None]] = []      # per share: its line number, the name on the line
    try:
        for number, line in enumerate(lines, 1):
            buf = to_buffer(line) if isinstance(line, str) else line
            try:
                if all(c in _BLANK for c in buf):  # no strip(): it would copy the share
                    continue
                if len(held.shares) >= MAX_LINES:
                    raise UsageError(f"more than {MAX_LINES} shares given", hint="give one share per line")
                given.append((number, _add(held, buf, names, manifest)))
            except VaultOpsError as exc:
                raise _at_line(exc, number) from None
            finally:
                if buf is not line:
                    wipe(buf)
        _identify_all(held, given, manifest, allow_unverified=allow_unverified, workers=workers)
        _distinct(held, given)
    except BaseException:
        held.wipe()
        raise
    return held


def _add(held: HeldShares, buf: bytearray, names: list[str], manifest: Manifest | None) -> str | None:
    """Decode one line's share into *held* (not yet checked); the keyholder the line names."""
    name, at = share_offset(buf, names)
    if name is None and manifest is not None:
        named, _ = share_offset(buf, [])  # 'NAME: share' with a name the manifest does not know
        if named is not None:
            manifest.keyholder(named)      # raises: no keyholder named ..., known: ...
    share = decode(memoryview(buf)[at:])
    if any(s.index == share.index and hmac.compare_digest(s.raw, share.raw) for s in held.shares):
        share.wipe()
        raise UsageError(f"share #{share.index} is given twice", hint="each keyholder gives their own share once")
    # The same index with other bytes is no repeat: x-coordinates are random per key epoch, so a share
    # of another epoch can carry one of this epoch's. The verifiers (or _distinct) judge it.
    held.shares.append(share)
    return name


def _distinct(held: HeldShares, given: list[tuple[int, str | None]]) -> None:
    """Two different shares with one x-coordinate that no verifier told apart: at most one is right."""
    first: dict[int, int] = {}
    for i, share in enumerate(held.shares):
        if share.index in first:
            raise ShareMismatchError(
                f"lines {given[first[share.index]][0]} and {given[i][0]} hold different shares with the same "
                f"index #{share.index}: at most one is of this cluster's current key epoch",
                hint="check each share comes from this cluster and its current key epoch "
                     "(`vaultops keyholders list --epochs`)")
        first[share.index] = i


def _identify_all(held: HeldShares, given: list[tuple[int, str | None]], manifest: Manifest | None, *,
                  allow_unverified: bool, workers: int) -> None:
    """Whose each held share is (the first bad line, in line order, raises)."""
    def one(i: int) -> tuple[str, bool]:
        try:
            return identify(manifest, held.shares[i], given[i][1], allow_unverified=allow_unverified)
        except VaultOpsError as exc:
            raise _at_line(exc, given[i][0]) from None

    count = len(held.shares)
    if workers > 1 and manifest is not None and count > 1:
        with ThreadPoolExecutor(max_workers=min(workers, count), thread_name_prefix="share-check") as pool:
            found = list(pool.map(one, range(count)))
    else:
        found = [one(i) for i in range(count)]
    for who, verified in found:
        held.keyholders.append(who)
        held.checked = held.checked and verified


def identify(manifest: Manifest | None, share: Share, keyholder: str | None, *,
             allow_unverified: bool = False) -> tuple[str, bool]:
    """(whose share, confirmed by a verifier) as the unseal ceremony decides it; raise when refused."""
    if manifest is None:
        return keyholder or f"unnamed #{share.index}", False
    if keyholder is None:
        owner = manifest.by_index(share.index)
        if owner is None:
            if allow_unverified:
                return f"unnamed #{share.index}", False
            raise ShareMismatchError(f"share #{share.index} matches no keyholder in the manifest (another "
                                     "cluster, or a share from another key epoch?)",
                                     hint="check the share comes from this cluster")
        keyholder = owner.name
    result = manifest.require(keyholder, share, allow_unverified=allow_unverified)
    return keyholder, result.verified


def _at_line(exc: VaultOpsError, number: int) -> VaultOpsError:
    """The same kind of error (same exit code), its message prefixed with the line it is about."""
    for kind in (ShareFormatError, ShareMismatchError, SecurityError, UsageError):
        if isinstance(exc, kind):  # ShareWordError -> ShareFormatError: its suggestions are for a prompt
            return kind(f"line {number}: {exc.message}", hint=exc.hint)
    return exc


__all__ = ["HeldShares", "MAX_LINES", "identify", "read_share_lines"]
