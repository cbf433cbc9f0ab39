"""Key epochs: which unseal shares open what, over the life of a cluster.

A key epoch starts at `init` and at each completed rekey: its threshold, share count, keyholders
and their share verifiers. A backup opens only with the shares of the epoch it was taken in
(measured: a snapshot restored after a rekey reports the old t/n and refuses the new shares).

    history = load_epochs(manifest_path)
    history.current.number, history.at(when), history.number(2), history.departed
    history.owners(share)        # [(epoch, keyholder)] whose verifier confirms the share

The keyholder manifest records `epoch`/`epoch_started` since epochs exist (rekey writes the next
number). Older manifests need no migration: their .history folder (every replaced version, named
by the time it was replaced) is read oldest first, the first version is epoch 1 and a version whose
threshold/share count differs from the one before, or that gives a keyholder another share index or
another verifier (re-enrolled after a rekey), starts the next epoch. An explicit `epoch` always wins.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path

from vaultops.errors import UsageError, VaultOpsError
from vaultops.services.ceremony.departures import Departure
from vaultops.services.ceremony.manifest import Keyholder, Manifest
from vaultops.services.ceremony.shares import Share

_STAMP = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True)
class Epoch:
    number: int
    manifest: Manifest               # the newest version of the manifest within this epoch
    manifest_file: Path              # where that version is (the manifest or a .history file)
    started: datetime | None         # None: before the oldest version kept
    ended: datetime | None = None    # None: the current epoch
    derived: bool = False            # its number was derived from the history, not written

    @property
    def threshold(self) -> int:
        return self.manifest.threshold

    @property
    def shares(self) -> int:
        return self.manifest.shares

    @property
    def keyholders(self) -> tuple[Keyholder, ...]:
        return self.manifest.keyholders

    def available(self, departed: set[str]) -> list[str]:
        """Keyholders of this epoch who have not left."""
        return [k.name for k in self.keyholders if k.name not in departed]

    def reachable(self, departed: set[str]) -> bool:
        return len(self.available(departed)) >= self.threshold

    def covers(self, when: datetime) -> bool:
        return (self.started is None or self.started <= when) and (self.ended is None or when < self.ended)


@dataclass(frozen=True)
class EpochHistory:
    path: Path
    epochs: tuple[Epoch, ...]        # oldest first, never empty
    departures: tuple[Departure, ...] = ()

    @property
    def current(self) -> Epoch:
        return self.epochs[-1]

    @property
    def departed(self) -> set[str]:
        return {d.name for d in self.departures}

    def number(self, k: int) -> Epoch:
        for ep in self.epochs:
            if ep.number == k:
                return ep
        known = ", ".join(str(e.number) for e in self.epochs)
        raise UsageError(f"the keyholder manifest {self.path} records no key epoch {k}",
                         hint=f"known epochs: {known} (`vaultops backup epochs`)")

    def get(self, k: int) -> Epoch | None:
        return next((e for e in self.epochs if e.number == k), None)

    def at(self, when: datetime) -> Epoch | None:
        return next((e for e in reversed(self.epochs) if e.covers(when)), None)

    def owners(self, share: Share) -> list[tuple[Epoch, str]]:
        """Every (epoch, keyholder) whose verifier confirms *share* (scrypt per candidate: few)."""
        out = []
        for ep in self.epochs:
            kh = ep.manifest.by_index(share.index)
            if kh is not None and kh.verifier is not None and kh.verifier.matches(share):
                out.append((ep, kh.name))
        return out

    def elsewhere(self, lines: Sequence[str | bytearray], number: int | None) -> list[str]:
        """'share #i is NAME's share of key epoch J' for each share in *lines* of an epoch other than *number*."""
        from vaultops.services.ceremony.share_lines import read_share_lines
        from vaultops.services.ceremony.shares import to_buffer, wipe
        from vaultops.services.ceremony.types import share_offset

        names = sorted({k.name for ep in self.epochs for k in ep.keyholders})  # 'NAME:' of any epoch
        bare: list[bytearray] = []
        try:
            for line in lines:
                buf = to_buffer(line) if isinstance(line, str) else line
                bare.append(bytearray(buf[share_offset(buf, names)[1]:]))
                if buf is not line:
                    wipe(buf)
            held = read_share_lines(list(bare), manifest=None)
        except VaultOpsError:
            return []
        finally:
            for buf in bare:
                wipe(buf)
        try:
            return [f"share #{share.index} is {who}'s share of key epoch {ep.number}"
                    for share in held.shares for ep, who in self.owners(share) if ep.number != number]
        finally:
            held.wipe()


def load_epochs(path: Path) -> EpochHistory:
    """The epochs of the manifest at *path* and its .history folder (see the module docstring)."""
    versions = _versions(path)
    epochs: list[Epoch] = []
    prev: Manifest | None = None
    for file, manifest, began in versions:
        number, derived = _number(manifest, prev, epochs[-1].number if epochs else 0)
        started = manifest.epoch_started or began
        if epochs and epochs[-1].number == number:
            last = epochs[-1]
            epochs[-1] = replace(last, manifest=manifest, manifest_file=file,
                                 started=last.started or manifest.epoch_started)
        else:
            if epochs:
                epochs[-1] = replace(epochs[-1], ended=started)
            epochs.append(Epoch(number, manifest, file, started, derived=derived))
        prev = manifest
    current = versions[-1][1]
    return EpochHistory(path, tuple(epochs), current.departures)


def current_number(path: Path) -> int:
    return load_epochs(path).current.number


def _number(manifest: Manifest, prev: Manifest | None, last: int) -> tuple[int, bool]:
    if manifest.epoch is not None:
        return manifest.epoch, False
    if prev is None:
        return 1, True
    return (last + 1 if _rekeyed(prev, manifest) else last), True


def _rekeyed(prev: Manifest, cur: Manifest) -> bool:
    """Did a rekey happen between two versions written before epochs were recorded?"""
    if (prev.threshold, prev.shares) != (cur.threshold, cur.shares):
        return True
    before = {k.name: k for k in prev.keyholders}
    for kh in cur.keyholders:
        old = before.get(kh.name)
        if old is None:
            continue
        if old.share_index != kh.share_index:
            return True
        if old.verifier is not None and kh.verifier is not None and old.verifier != kh.verifier:
            return True  # a new verifier for the same keyholder: enrolled anew after a rekey (--replace)
    return False


def _versions(path: Path) -> list[tuple[Path, Manifest, datetime | None]]:
    """(file, manifest, in effect since) oldest first; the current manifest last. A history file
    that no longer reads is left out (the history is a record, not a requirement)."""
    folder = path.parent / f"{path.stem}.history"
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    out: list[tuple[Path, Manifest, datetime | None]] = []
    since: datetime | None = None
    for file in files:
        replaced = _replaced_at(file)
        with contextlib.suppress(VaultOpsError):
            out.append((file, Manifest.load(file), since))
        since = replaced or since
    out.append((path, Manifest.load(path), since))
    return out


def _replaced_at(file: Path) -> datetime | None:
    stamp = file.stem.split("-")[0]
    try:
        return datetime.strptime(stamp, _STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def record_departure(path: Path, name: str, *, left: date | None = None, note: str | None = None) -> Manifest:
    """Record that *name* left: the manifest is rewritten (previous kept in .history), epoch unchanged."""
    history = load_epochs(path)
    known = {k.name for ep in history.epochs for k in ep.keyholders}
    if name not in known:
        raise UsageError(f"{name!r} held no share in any key epoch of {path}",
                         hint="known keyholders: " + ", ".join(sorted(known)))
    manifest = Manifest.load(path)
    if name in history.departed:
        return manifest
    gone = Departure(name, left or date.today(), note)
    updated = replace(manifest, epoch=history.current.number, epoch_started=history.current.started,
                      departures=manifest.departures + (gone,))
    updated.save(path)
    return updated
