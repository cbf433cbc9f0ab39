"""The shares submitted in one unseal ceremony, by every process, and the attempts they joined.

A record names, per node, the nonce of the unseal attempt the share joined; a node holds a
keyholder's share while its current nonce is that one. Records outlive the unsealing of every node
(the result still says who submitted) and are dropped when a node is sealed again after that: a
new attempt, a new ceremony. Guarded by the NodeTracker's lock.
"""

from __future__ import annotations

from collections.abc import Iterable

from vaultops.services.ceremony.journal import SubmissionRecord


class Attempts:
    def __init__(self) -> None:
        self.records: list[SubmissionRecord] = []
        self.done = False  # every node was seen unsealed after these records
        self._filtered = False

    def add(self, rec: SubmissionRecord) -> None:
        self.records.append(rec)

    def keyholders(self) -> tuple[str, ...]:
        return unique(r.keyholder for r in self.records)

    def holding(self, node: str, nonce: str) -> tuple[str, ...]:
        """Keyholders whose shares *node* holds in its attempt *nonce*."""
        if not nonce:
            return ()
        return unique(r.keyholder for r in self.records if r.nonces.get(node) == nonce)

    def lost(self, node: str, nonce: str) -> tuple[str, ...]:
        """Keyholders whose shares *node* held under *nonce* ('' = everyone who submitted)."""
        if not nonce:
            return self.keyholders()
        return self.holding(node, nonce)

    def completed(self) -> None:
        self.done = True

    def reopened(self, live: set[tuple[str, str]]) -> None:
        """A node is sealed again after every node was unsealed: only still-open attempts count."""
        if self.done:
            self.keep_live(live)
            self.done = False

    def first_look(self, live: set[tuple[str, str]]) -> None:
        """At the first answers: earlier ceremonies' records count only while their attempt is open."""
        if not self._filtered:
            self._filtered = True
            self.keep_live(live)

    def keep_live(self, live: set[tuple[str, str]]) -> None:
        """Keep the records of attempts still open: (node, nonce) pairs in *live*."""
        self.records = [r for r in self.records if live & set(r.nonces.items())]


def unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


__all__ = ["Attempts", "unique"]
