"""Mixed-version probes: proof that a cluster running two versions still works, as a gate.

Health checks say each node is up; they do not say a new standby can hand a
write to an old active. That is exactly where releases break (2.5 -> 2.6 renamed
the forwarding gRPC package, openbao#3899: every node healthy, every write
through the new standby failing). So after each standby is upgraded, and again
after leadership moved while an old node remains, one probe goes through the
node that differs from the active one:

  1. write  PUT  <canary>/probe/<run>/<node>  through *node*, never following a
     redirect: the node must forward it to the active node and acknowledge it
     (a 307 means the standby could not forward and fell back to redirecting);
  2. read   GET  the same path through the active node: the forwarded write landed;
  3. read   GET  it through *node*: the node sees the write (a standby serves
     reads from its own replica, so this waits until it has applied it).

A transient answer (an election, a connection being re-dialled) is retried for
`PROBE_BUDGET` seconds; a probe that still fails raises ProbeFailed carrying the
request, the node, both versions and the error -- before the point of no return
that halts the run (and the rollback, services/upgrade, catches exactly that
type). Evidence of every probe is kept in the step's evidence (`upgrade status`).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from vaultops.errors import ProbeFailed, VaultNotFound, VaultOpsError
from vaultops.retry import TimedOut, poll
from vaultops.runbook.registry import Evidence, action
from vaultops.services.upgrade import gates
from vaultops.services.upgrade.observe import ClusterView

if TYPE_CHECKING:
    from vaultops.services.upgrade.context import UpgradeContext
    from vaultops.vault import NodeClient

PROBE_BUDGET = 15.0      # seconds a probe step may retry one request before it fails
HINT = ("the cluster does not work across versions: nothing past the point of no return was done; "
        "see the evidence (request, node, versions, error) and the nodes' logs")


@dataclass(frozen=True)
class ProbeResult:
    node: str
    active: str
    versions: dict[str, str]
    direction: str          # "new standby -> old active" | "old standby -> new active" | "same version"
    path: str
    write_ms: float
    read_active_ms: float
    read_node_ms: float
    attempts: int
    retried: tuple[str, ...] = ()    # what the requests that were tried again answered first (a few)
    # True when the node answered the read "not found" although the active node already had the
    # write: the read was served from the node's own replica, not forwarded (OpenBao 2.x standbys
    # serve reads locally). None: not shown by this probe (its first local read already matched).
    served_locally: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def direction(node_version: str, active_version: str, target: str) -> str:
    if node_version == active_version:
        return "same version"
    return "new standby -> old active" if node_version == target else "old standby -> new active"


def run_probe(ctx: UpgradeContext, *, node: str, version: str, budget: float = PROBE_BUDGET) -> ProbeResult:
    """One write-and-read probe through *node* (a standby); ProbeFailed with the evidence if it fails."""
    view = gates.wait_for(ctx, lambda v: _probe_ready(v, ctx, node), what=f"cannot probe through {node}")
    assert view.active is not None
    active = view.active.name
    versions = {node: view.nodes[node].version, active: view.active.version}
    path = f"{ctx.settings.canary_path}/probe/{secrets.token_hex(4)}/{node}"
    value = secrets.token_hex(8)
    # a standby applied the write 50-100 ms after the active (measured): poll finely, a probe costs ~0.1 s
    trial = _Trial(node=node, versions=versions, budget=budget, poll_every=min(ctx.settings.poll, 0.02))
    try:
        write_ms = trial.step(f"PUT /v1/{path}", lambda: ctx.clients[node].write(path, {"value": value}))
        read_active_ms = trial.step(f"GET /v1/{path} (through the active node {active})",
                                    lambda: _expect(ctx.clients[active], path, value))
        read_node_ms, local = _read_through_node(trial, ctx.clients[node], path, value)
    finally:
        _cleanup(ctx.clients[active], path)
    return ProbeResult(node=node, active=active, versions=versions,
                       direction=direction(versions[node], versions[active], version), path=path,
                       write_ms=write_ms, read_active_ms=read_active_ms, read_node_ms=read_node_ms,
                       attempts=trial.attempts, retried=tuple(trial.retried), served_locally=local)


class _Trial:
    """Runs one request of a probe until it passes or its budget is spent, counting attempts."""

    def __init__(self, *, node: str, versions: dict[str, str], budget: float, poll_every: float) -> None:
        self.node, self.versions, self.budget, self.poll_every = node, versions, budget, poll_every
        self.attempts = 0
        self.retried: list[str] = []

    def step(self, request: str, call: Any) -> float:
        started, last = time.monotonic(), ["no answer"]

        def once() -> bool | None:
            self.attempts += 1
            try:
                call()
                return True
            except VaultOpsError as exc:
                last[0] = exc.message
                if len(self.retried) < 4:
                    self.retried.append(f"{request}: {exc.message[:160]}")
                return None
        try:
            poll(once, timeout=self.budget, interval=self.poll_every, backoff=1.5, cap=2.0,
                 what=request, tolerate=())
        except TimedOut:
            waited = time.monotonic() - started
            raise ProbeFailed(
                f"mixed-version probe through {self.node} failed: {request}: {last[0]}",
                hint=HINT, request=request, node=self.node, versions=self.versions, error=last[0],
                evidence={"waited_s": round(waited, 1), "attempts": self.attempts}) from None
        return round((time.monotonic() - started) * 1000, 1)


def _read_through_node(trial: _Trial, client: NodeClient, path: str, value: str) -> tuple[float, bool | None]:
    """The read through the probed node, and whether it was shown to be served from the node's own copy
    (it answered "not found" for a write the active node already had)."""
    missing: list[bool] = []

    def read() -> None:
        try:
            _expect(client, path, value)
        except VaultOpsError as exc:
            missing.extend([True] if "reads nothing" in exc.message else [])
            raise
    return trial.step(f"GET /v1/{path}", read), (True if missing else None)


def _expect(client: NodeClient, path: str, value: str) -> None:
    try:
        got = (client.read(path).get("data") or {}).get("value")
    except VaultNotFound:        # not (yet) in this node's copy
        got = None
    if got != value:
        raise VaultOpsError(f"{client.name} reads {'nothing' if got is None else 'another value'} there, "
                            "not the value just written")


def _cleanup(client: NodeClient, path: str) -> None:
    try:
        client.delete(path)
    except VaultOpsError:
        pass     # a leftover canary is harmless; never hide the probe's own outcome


def _probe_ready(view: ClusterView, ctx: UpgradeContext, node: str) -> list[str]:
    problems = gates.cluster_problems(view, ctx)
    n = view.nodes[node]
    if n.role != "standby":
        problems.append(f"{node} is {n.role}, not a standby: a probe needs a node that forwards")
    return problems


@action("probe")
def probe_action(ctx: UpgradeContext, *, node: str, version: str) -> Evidence:
    """Mixed-version probe: a write through *node* is forwarded to the active node and reads back through both."""
    result = run_probe(ctx, node=node, version=version)
    ctx.emit(f"  probe through {node} ({result.direction}): write forwarded and acknowledged in "
             f"{result.write_ms:.0f} ms, read back through {result.active} and {node}")
    return {"summary": f"{result.direction}: write through {node} forwarded to {result.active}, read back",
            "probe": result.to_json()}
