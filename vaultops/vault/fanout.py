"""Call every node at once; a hung node delays only its own answer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from vaultops.errors import VaultOpsError, VaultUnreachable

T = TypeVar("T")
C = TypeVar("C")


@dataclass(frozen=True)
class NodeResult(Generic[T]):
    node: str
    value: T | None = None
    error: VaultOpsError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def fan_out(clients: Sequence[C], fn: Callable[[C], T], *, timeout: float = 10.0,
            name: Callable[[C], str] = lambda c: c.name) -> list[NodeResult[T]]:  # type: ignore[attr-defined]
    """Run fn(client) for every client concurrently, in input order.

    Each call has its own transport timeout; *timeout* bounds the whole wait
    so a node that never answers is reported as unreachable rather than
    blocking the others. Worker threads are daemons: a stuck call cannot
    hold the process open.
    """
    results: dict[int, NodeResult[T]] = {}
    done = threading.Event()
    lock = threading.Lock()

    def work(i: int, client: C) -> None:
        try:
            res: NodeResult[T] = NodeResult(name(client), value=fn(client))
        except VaultOpsError as exc:
            res = NodeResult(name(client), error=exc)
        except Exception as exc:  # noqa: BLE001 - a bug on one node must not hide the others
            res = NodeResult(name(client), error=VaultOpsError(f"{name(client)}: {type(exc).__name__}: {exc}"))
        with lock:
            results[i] = res
            if len(results) == len(clients):
                done.set()

    if not clients:
        return []
    for i, client in enumerate(clients):
        threading.Thread(target=work, args=(i, client), daemon=True, name=f"fanout-{name(client)}").start()
    done.wait(timeout)
    with lock:
        return [results.get(i) or NodeResult(name(c), error=VaultUnreachable(
            f"{name(c)}: no answer within {timeout:g}s", node=name(c), hint="the node may be hung; check it"))
            for i, c in enumerate(clients)]


__all__ = ["NodeResult", "fan_out"]
