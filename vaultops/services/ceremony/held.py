"""Shares a keyholder's own process keeps during a ceremony, to re-send to nodes that need them later.

A raft follower that joins after the leader was unsealed, or a node that was down or restarted
while the keyholders submitted, needs the threshold of its own. The process that checked a
keyholder's share keeps it and re-sends it (UnsealCeremony.refresh), so nobody types it twice.

Bounded: only shares the manifest verified are kept (an unchecked wrong share re-sent would wipe
every attempt it reaches); each in a bytearray of its own, zeroed when it is dropped: after
`hold_for` seconds from its submission, as soon as every node is unsealed, on a reset, and when
the ceremony ends. Nothing else holds it: the base64 form for a send is built per send and
zeroed by the caller.

    held = HeldShares(hold_for=900)
    held.keep("alice", share)               # a copy; the caller still wipes its Share
    key, index = held.take("alice"); ...; wipe(key)
    held.drop()                             # every share zeroed
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vaultops.services.ceremony.shares import Share, b64_buffer, wipe

HOLD_FOR = 900.0  # a ceremony's joiners arrive within minutes; after this the keyholder types again


@dataclass
class _Held:
    raw: bytearray
    index: int
    until: float


class HeldShares:
    def __init__(self, hold_for: float = HOLD_FOR, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_for = hold_for
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}

    def keep(self, keyholder: str, share: Share) -> None:
        """Keep a copy of *share* for *keyholder* (replacing an earlier one); no-op when holding is off."""
        if self.hold_for <= 0:
            return
        item = _Held(bytearray(share.raw), share.index, self._clock() + self.hold_for)
        with self._lock:
            old = self._held.pop(keyholder, None)
            self._held[keyholder] = item
        if old is not None:
            wipe(old.raw)

    def names(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._held)

    def take(self, keyholder: str) -> tuple[bytearray, int] | None:
        """(the base64 form sys/unseal takes, in a new bytearray the caller wipes; the share's
        x-coordinate), or None when not held. The share itself stays held."""
        with self._lock:
            item = self._held.get(keyholder)
            return (b64_buffer(item.raw), item.index) if item is not None else None

    def expire(self) -> list[str]:
        """Drop the shares held for longer than hold_for; the keyholders whose shares went."""
        now = self._clock()
        with self._lock:
            old = [k for k, v in self._held.items() if v.until <= now]
        for name in old:
            self.drop(name)
        return old

    def drop(self, keyholder: str | None = None) -> list[str]:
        """Zero and forget one keyholder's share, or all of them; the keyholders dropped."""
        with self._lock:
            names = list(self._held) if keyholder is None else [keyholder] if keyholder in self._held else []
            items = [self._held.pop(k) for k in names]
        for item in items:
            wipe(item.raw)
        return names

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def __del__(self) -> None:
        for item in getattr(self, "_held", {}).values():
            wipe(item.raw)


__all__ = ["HOLD_FOR", "HeldShares"]
