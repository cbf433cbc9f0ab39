"""A PostgreSQL Active-Standby pair losing its active node under a write load: no quorum to lose.

The active node is SIGKILLed; the standby takes the HA lock over (~15 s: the lock's TTL), `status`
says so and names `node replace`; `recover quorum` refuses (nothing to recover on external storage);
`node replace` starts the dead node through its driver and unseals it, and it comes back as a standby.
"""

from __future__ import annotations

import json
import time

import pytest
from recovery_helpers import active_client, cluster_name, journal, shares_text

from vaultops.services.upgrade.write_probe import WriteProbe, prepare

pytestmark = pytest.mark.integration
TAKEOVER = 60.0     # SIGKILL -> the standby active: ~14 s measured (field notes); generous under load


def _roles(box) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    out: dict[str, str | None] = {}
    for c in box.clients(timeout=2):
        try:
            out[c.name] = c.ha.health().role
        except Exception:  # noqa: BLE001 - a dead node: no role
            out[c.name] = None
    return out


def _status_until_took_over(box, cli, dead: str) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TAKEOVER
    while True:
        rc, out, _err = cli(box, "status", "--format", "json", "--timeout", "2")
        doc = json.loads(out)
        if any(c["kind"] == "standby-took-over" for c in doc["conditions"]) or time.monotonic() > deadline:
            return doc
        time.sleep(1.0)


def test_active_killed_the_standby_takes_over_and_the_dead_node_comes_back_as_standby(make_box, cli) -> None:  # type: ignore[no-untyped-def]
    box = make_box("pgpair", nodes=2, storage="postgresql")
    dead = active_client(box).name
    standby = next(n.name for n in box.record.nodes if n.name != dead)
    clients = box.clients(timeout=2)
    prepare(clients)
    with WriteProbe(clients) as probe:
        time.sleep(1.0)
        box.drivers()[dead].kill()
        doc = _status_until_took_over(box, cli, dead)
        took = [c for c in doc["conditions"] if c["kind"] == "standby-took-over"]
        assert took and took[0]["nodes"] == [dead], doc["conditions"]
        assert f"{standby} is active" in took[0]["message"] and f"vaultops node replace {dead}" in took[0]["commands"]
        assert {n["name"]: n.get("ha_role") for n in doc["nodes"] if n["reachable"]} == {standby: "active"}
        rc, out, err = cli(box, "status", "--timeout", "2")     # the same, in words, for a person
        assert f"standby-took-over: {dead} does not answer; {standby} is active" in " ".join(out.split())

        entries = len(journal(box))
        rc, out, err = cli(box, "recover", "quorum", "--confirm", cluster_name(box))
        assert rc == 3 and "postgresql storage has no quorum to lose" in err, (rc, out, err)
        assert len(err.strip().splitlines()) == 1 and len(journal(box)) == entries

        rc, out, err = cli(box, "node", "replace", dead, "--share-stdin", "--yes", stdin=shares_text(box))
        assert rc == 0, out + err
        assert "no quorum to lose" in out
        time.sleep(1.0)                                        # writes go on with both nodes up
    assert _roles(box) == {dead: "standby", standby: "active"}
    assert len(probe.acks) > 50
    assert probe.missing(active_client(box)) == []             # shared storage: no acknowledged write lost
    steps = {e["details"]["step"]: e["details"]["evidence"] for e in journal(box)
             if e["action"] == "runbook.step" and e["details"].get("runbook") == "node-replace"}
    assert list(steps) == ["remove", "stop", "aside", "start", "unseal", "back"]
    assert "no raft configuration" in steps["remove"]["summary"]
    assert "nothing on the node to set aside" in steps["aside"]["summary"]
    assert steps["back"]["summary"] == f"{dead} serves as a standby"
    rc, out, _ = cli(box, "status", "--format", "json")
    assert rc == 0 and json.loads(out)["conditions"] == []
