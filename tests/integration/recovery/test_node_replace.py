"""`node replace` of a dead raft node under a write load, and the refusals that change nothing."""

from __future__ import annotations

import json

import pytest
from recovery_helpers import active_client, cluster_name, journal, shares_text, voters

from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.testing.sandbox import kill_and_wipe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(make_box):  # type: ignore[no-untyped-def]
    return make_box("noderep")


def test_refusals_are_one_line_and_change_nothing(box, cli) -> None:  # type: ignore[no-untyped-def]
    leader = active_client(box).name
    standby = next(n for n in ("node1", "node2", "node3") if n != leader)
    before = active_client(box).raft.configuration()
    entries = len(journal(box))
    for argv, says in [(("node", "remove", leader, "--yes"), f"refusing to remove {leader}: it is the active node"),
                       (("node", "remove", standby, "--yes"), f"refusing to remove {standby}: it still answers"),
                       (("node", "replace", standby, "--yes"), f"refusing to remove {standby}: it still answers"),
                       (("recover", "quorum", "--confirm", cluster_name(box)), "quorum holds: 3 of 3 voters answer")]:
        rc, out, err = cli(box, *argv)
        assert rc == 3, (argv, out, err)
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert active_client(box).raft.configuration() == before
    assert len(journal(box)) == entries          # not even a run was recorded
    rc, _out, err = cli(box, "recover", "from-backup", "--confirm", cluster_name(box))
    assert rc == 3 and "not every node is lost" in err


def test_a_dead_node_is_replaced_under_load_and_no_acknowledged_write_is_lost(box, cli) -> None:  # type: ignore[no-untyped-def]
    leader = active_client(box).name
    dead = next(n for n in ("node1", "node2", "node3") if n != leader)
    clients = box.clients(timeout=2)
    prepare(clients)
    with WriteProbe(clients) as probe:
        kill_and_wipe(box, dead)
        rc, out, err = cli(box, "status", "--format", "json")
        doc = json.loads(out)
        kinds = [c["kind"] for c in doc["conditions"]]
        assert "node-dead" in kinds, doc["conditions"]
        assert any(f"vaultops node replace {dead}" in c["commands"] for c in doc["conditions"])
        rc, out, err = cli(box, "node", "replace", dead, "--share-stdin", "--yes", stdin=shares_text(box))
        assert rc == 0, out + err
    assert voters(box) == {"node1": True, "node2": True, "node3": True}
    assert len(probe.acks) > 100
    assert probe.missing(active_client(box)) == []
    steps = [e["details"]["step"] for e in journal(box) if e["action"] == "runbook.step"
             and e["details"].get("runbook") == "node-replace"]
    assert steps == ["remove", "stop", "aside", "start", "unseal", "back"]
    removed = next(e for e in journal(box) if e["action"] == "runbook.step" and e["details"]["step"] == "remove")
    plan = removed["details"]["evidence"]["plan"]
    assert plan["member"] and plan["tolerance_after"] == 0 and plan["voters_after"] == 2
    submitted = [e for e in journal(box) if e["action"] == "unseal.share-submitted"]
    assert len(submitted) == 3 and all(e["details"]["verified"] for e in submitted)
    for share in box.shares_b64:
        assert share not in (box.dir / "journal.jsonl").read_text()
