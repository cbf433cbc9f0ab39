"""What `vaultops status` adds for nodes that are gone (issue 17), kept apart from the status table.

    conds = recovery_conditions(session, st)     # records the raft high-water mark, names the conditions
    print(render_conditions(conds))               # "quorum lost: ... -> run: vaultops recover quorum"

The JSON gets `conditions: [{kind, message, commands, nodes}]`; the exit codes stay as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaultops.services.recovery.detect import Condition
    from vaultops.session import Session


def recovery_conditions(session: Session, st: Any, *, partial: bool = False) -> list[Condition]:
    """Record what a leader reported (the mark `recover quorum` compares with), then judge the cluster.
    A status of some nodes only (*partial*) is not judged: a majority cannot be counted from it."""
    from vaultops.services.recovery import lastseen
    from vaultops.services.recovery.detect import conditions

    cfg = session.config
    path = lastseen.seen_path(cfg.state_dir, cfg.cluster_name)
    if st.autopilot is not None:
        lastseen.record(path, lastseen.from_autopilot(cfg.cluster_name, st.autopilot, commit_index=_commit(session, st),
                                                      names=raft_names(cfg)))
    if partial:
        return []
    return conditions(storage=st.storage, nodes=st.nodes, autopilot=st.autopilot, seen=lastseen.load(path))


def _commit(session: Session, st: Any) -> int | None:
    """The active node's commit index (sys/leader): fresher than autopilot's last_index (2-6 s behind)."""
    from vaultops.errors import VaultOpsError

    active = next((n.name for n in st.nodes if n.ha_role == "active"), None)
    if active is None:
        return None
    try:
        return session.client(active, token=False, timeout=3).ha.leader().raft_committed_index
    except VaultOpsError:
        return None


def raft_names(cfg: Any) -> dict[str, str]:
    """raft server id -> node name, where they differ (upgrade.raft_ids, recovery.nodes.*.raft_id)."""
    out = {}
    ids = cfg.section("upgrade").get("raft_ids") or {}
    for node, raft_id in (ids.items() if isinstance(ids, dict) else ()):
        out[str(raft_id)] = str(node)
    for node, spec in (cfg.section("recovery").get("nodes") or {}).items():
        if isinstance(spec, dict) and spec.get("raft_id"):
            out[str(spec["raft_id"])] = str(node)
    return out


def render_conditions(conds: list[Condition], *, width: int | None = None) -> str:
    """Each condition and the command that addresses it; the message wraps to *width* (a terminal's)."""
    import textwrap

    lines = []
    for c in conds:
        text = f"{c.kind.value}: {c.message}"
        lines += textwrap.wrap(text, width, subsequent_indent="    ") if width else [text]
        lines += [f"  -> run: {command}" for command in c.commands]
    return "\n".join(lines)
