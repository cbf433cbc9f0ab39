"""A 3-node raft cluster upgraded 2.6.2 -> 2.7.2 under a write load: no acknowledged write lost."""

from __future__ import annotations

import json

import pytest
from upgrade_helpers import FROM, TO, active, journal, shares_text, stops_never_overlap, versions

from vaultops.runbook.state import RunStatus, load_state
from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.services.upgrade.service import state_path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def raft_box(make_box):  # type: ignore[no-untyped-def]
    return make_box("upraft")


def test_plan_lists_standbys_first_and_touches_nothing(raft_box, cli) -> None:  # type: ignore[no-untyped-def]
    leader = active(raft_box).name
    rc, out, _ = cli(raft_box, "upgrade", "plan", "--to", TO)
    assert rc == 0
    stops = [line.split()[1] for line in out.splitlines() if "stop_node" in line]
    assert stops[-1].startswith(f"old-active[{leader}]") and len(stops) == 3
    assert set(versions(raft_box).values()) == {FROM}


def test_rolling_upgrade_under_load_loses_no_acknowledged_write(raft_box, cli) -> None:  # type: ignore[no-untyped-def]
    leader = active(raft_box).name
    clients = raft_box.clients(timeout=2)
    prepare(clients)
    with WriteProbe(clients) as probe:
        rc, out, err = cli(raft_box, "upgrade", "run", "--to", TO, "--share-stdin", stdin=shares_text(raft_box))
    assert rc == 0, err
    assert set(versions(raft_box).values()) == {TO}
    assert len(probe.acks) > 100
    assert probe.missing(active(raft_box)) == []
    # one node down at a time, the old active last, leadership handed to an upgraded node
    entries = journal(raft_box)
    order = stops_never_overlap(entries)
    assert order[-1] == leader and sorted(order) == ["node1", "node2", "node3"]
    moved = next(e for e in entries if (e.get("details") or {}).get("action") == "step_down")
    assert moved["details"]["evidence"]["after"]["nodes"][moved["details"]["evidence"]["summary"].split()[0]]["version"] == TO
    state = load_state(state_path(raft_box.config, "upgrade"))
    assert state.status == RunStatus.DONE
    # the mixed-version probes passed, and `upgrade status` shows their evidence
    rc, out, _ = cli(raft_box, "upgrade", "status", "--format", "json")
    probes = [s for s in json.loads(out)["steps"] if s["action"] == "probe"]
    assert rc == 0 and [s["status"] for s in probes] == ["done"] * 3
    assert [s["evidence"]["probe"]["direction"] for s in probes] == (["new standby -> old active"] * 2
                                                                    + ["old standby -> new active"])
    # every restarted node was unsealed through the checked ceremony: 3 keyholders' submissions each
    submitted = [e for e in entries if e["action"] == "unseal.share-submitted"]
    assert len(submitted) == 9 and all(e["details"].get("verified") for e in submitted), submitted[:1]
    # shares were given on stdin: they must not be in the state file or the journal
    for share in raft_box.shares_b64:
        assert share not in state_path(raft_box.config, "upgrade").read_text()
        assert share not in (raft_box.dir / "journal.jsonl").read_text()


def test_downgrade_is_refused_and_nothing_is_touched(raft_box, cli) -> None:  # type: ignore[no-untyped-def]
    before = state_path(raft_box.config, "upgrade").read_text()
    rc, _, err = cli(raft_box, "upgrade", "run", "--to", FROM, "--share-stdin", stdin=shares_text(raft_box))
    assert rc == 3
    assert "refusing to downgrade from 2.7.2 to 2.6.2" in err
    assert set(versions(raft_box).values()) == {TO}
    assert state_path(raft_box.config, "upgrade").read_text() == before
