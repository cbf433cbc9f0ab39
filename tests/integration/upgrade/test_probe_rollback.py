"""Issue 18: forwarding broken on purpose in the mixed phase. The probe through the upgraded standby
fails, and the run rolls that standby back to 2.6.2 by itself. The cluster ends on 2.6.2, healthy and
unsealed, with no acknowledged write lost.

The cut drops the cluster-port connections of the upgraded (2.7.2) standby's process to the old
active, the shape of openbao#3899. The rolled-back 2.6.2 process is a new process, so its
connections pass, as they would in that release pair.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from upgrade_helpers import FROM, TO, ForwardingCut, active, journal, versions

from vaultops.errors import RunbookError
from vaultops.journal import journal_for
from vaultops.runbook.state import RunStatus, load_state
from vaultops.services.upgrade.context import Prompter, build_context
from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.services.upgrade.rollback import run_upgrade
from vaultops.services.upgrade.service import default_runbook, state_path
from vaultops.services.upgrade.unseal import SharesUnsealer
from vaultops.testing.sandbox import start_linked_sandbox

pytestmark = pytest.mark.integration


def test_a_failed_probe_rolls_the_upgraded_standby_back(tmp_path: Path) -> None:
    box, links = start_linked_sandbox(tmp_path, name="uprobe-rb", version=FROM, raft_healthy=True)
    try:
        leader = active(box).name
        first = next(n for n in ("node1", "node2", "node3") if n != leader)
        drivers = box.drivers()
        break_forwarding = ForwardingCut(links[leader], first, drivers[first])   # the 2.7.2 process only

        ctx = build_context(box.config, clients=box.clients(), drivers=drivers, journal=journal_for(box.config),
                            unsealer=SharesUnsealer(box.shares_b64[:3]), prompter=Prompter(assume_yes=True),
                            gate_timeout=60, connect=lambda: box.clients())
        clients = box.clients(timeout=2)
        prepare(clients)
        with WriteProbe(clients) as load, pytest.raises(RunbookError) as rolled:
            run_upgrade(box.config, ctx, runbook_path=default_runbook(), params={"to": TO},
                        listener=break_forwarding)
        assert break_forwarding.pids and links[leader].refused >= 1
        assert "upgrade rolled back" in rolled.value.message, rolled.value.message
        assert set(versions(box).values()) == {FROM}
        assert active(box).name == leader                      # leadership never left the old version
        assert all(not c.seal.status().sealed for c in box.clients())
        assert len(load.acks) > 100 and load.missing(active(box)) == []

        state = load_state(state_path(box.config, "upgrade"))
        assert state.status == RunStatus.ROLLED_BACK
        assert state.halt is not None and state.halt["step"] == f"standby[{first}].probe"
        evidence = state.halt["evidence"]
        assert evidence["node"] == first and evidence["versions"] == {first: TO, leader: FROM}
        assert evidence["request"].startswith("PUT /v1/") and evidence["error"]
        assert state.halt["rollback"]["nodes"] == [first]
        actions = [e["action"] for e in journal(box)]
        assert "upgrade.rollback.start" in actions and "upgrade.rollback.done" in actions
    finally:
        box.stop()
        for link in links.values():
            link.stop()

