"""Real OpenBao sandboxes for tests: start, hand out, stop.

    box = start_sandbox(tmp_path, nodes=3, storage="raft")
    box.clients(); box.root_token; box.shares_b64; box.config_path
    box.stop()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.services.sandbox.cluster import Sandbox, SandboxSpec, node_name, sandbox_dir, up

if TYPE_CHECKING:
    from vaultops.testing.cluster_link import ClusterLink

__all__ = ["Sandbox", "data_dir", "frozen", "kill_and_wipe", "sandbox_factory", "start_linked_sandbox", "start_sandbox",
           "wait_ha_listed", "wait_raft_healthy"]


def start_sandbox(base_dir: Path, *, name: str = "test", nodes: int = 3, storage: str = "raft",
                  version: str | None = None, sealed: bool = False, cold: bool = False, tls: bool = False,
                  acme_config: str | None = None, raft_healthy: bool = False,
                  performance_multiplier: int = 1, cluster_addr_ports: dict[str, int] | None = None) -> Sandbox:
    """Start a sandbox whose state lives under *base_dir* (not the user's state folder).

    sealed: after an outage (every node joined, then restarted sealed); with cold: a fresh cluster
    whose followers have not joined yet."""
    base_dir.mkdir(parents=True, exist_ok=True)
    box = up(SandboxSpec(name=name, nodes=nodes, storage=storage, version=version, sealed=sealed or cold,
                         cold=cold, tls=tls, acme_config=acme_config,
                         performance_multiplier=performance_multiplier,
                         cluster_addr_ports=dict(cluster_addr_ports or {})), root=base_dir)
    # `up` already waits for autopilot when it unseals, so this returns at once then.
    if raft_healthy and storage == "raft" and not sealed:
        wait_raft_healthy(box, voters=nodes)
    elif raft_healthy and storage == "postgresql" and not sealed:
        wait_ha_listed(box, nodes=nodes)
    return box


@contextlib.contextmanager
def sandbox_factory(folder: Callable[[str], Path], **defaults: Any) -> Iterator[Callable[..., Sandbox]]:
    """make(name, **overrides) starts a sandbox (healthy: raft_healthy=True) in folder(name), with
    *defaults* (e.g. version=...); every sandbox it started is stopped on the way out. For a fixture:

        with sandbox_factory(tmp_path_factory.mktemp, version="2.6.2") as make:
            yield make
    """
    started: list[Sandbox] = []

    def make(name: str, **overrides: Any) -> Sandbox:
        box = start_sandbox(folder(name), name=name, **{"raft_healthy": True, **defaults, **overrides})
        started.append(box)
        return box

    try:
        yield make
    finally:
        for box in started:
            box.stop()


def wait_ha_listed(box: Sandbox, *, nodes: int, timeout: float = 60.0) -> None:
    """Until the active node's sys/ha-status lists every node of a pair on external storage (a standby
    registers a moment after it is unsealed; the upgrade preflight refuses a pair it does not see)."""
    from vaultops.retry import poll
    from vaultops.vault.cluster import find_active

    def listed() -> bool | None:
        leader = find_active(box.clients())
        return True if leader is not None and len(leader.client.ha.ha_status().nodes) >= nodes else None

    poll(listed, timeout=timeout, what=f"sys/ha-status listing {nodes} nodes")


def wait_raft_healthy(box: Sandbox, *, voters: int, timeout: float = 60.0) -> None:
    from vaultops.services.sandbox.bootstrap import wait_raft_healthy as wait

    wait(box.clients(token=False), token=box.root_token, voters=voters, timeout=timeout)


def start_linked_sandbox(base_dir: Path, *, name: str = "test", nodes: int = 3,
                         **kwargs: Any) -> tuple[Sandbox, dict[str, ClusterLink]]:
    """A sandbox whose every node advertises its cluster_addr through a ClusterLink (the caller
    stops the links after the sandbox): `links[n].refuse(...)` breaks forwarding to node n."""
    from vaultops.testing.cluster_link import ClusterLink

    folder = sandbox_dir(name, base_dir)

    def upstream(node: str) -> Any:
        def real_port() -> tuple[str, int]:
            record = Sandbox(folder).record
            return "127.0.0.1", next(n.cluster_port for n in record.nodes if n.name == node)
        return real_port
    links = {node_name(i): ClusterLink(upstream(node_name(i))) for i in range(1, nodes + 1)}
    try:
        box = start_sandbox(base_dir, name=name, nodes=nodes,
                            cluster_addr_ports={n: link.port for n, link in links.items()}, **kwargs)
    except BaseException:
        for link in links.values():
            link.stop()
        raise
    return box, links


def data_dir(box: Sandbox, node: str) -> Path:
    """Where the sandbox node keeps its raft data."""
    return Path(next(n.dir for n in box.record.nodes if n.name == node)) / "data"


def kill_and_wipe(box: Sandbox, *nodes: str) -> None:
    """The nodes' hosts are gone: every process SIGKILLed first, then their raft data deleted."""
    drivers = box.drivers()
    for node in nodes:
        drivers[node].kill()
    for node in nodes:
        shutil.rmtree(data_dir(box, node))
        data_dir(box, node).mkdir()


@contextlib.contextmanager
def frozen(box: Sandbox, node: str) -> Iterator[None]:
    """SIGSTOP the node for the block: it misses every entry the others commit meanwhile."""
    pid = box.drivers()[node].pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
