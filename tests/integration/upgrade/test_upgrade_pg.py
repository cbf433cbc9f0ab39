"""The PostgreSQL Active-Standby pair upgraded 2.6.2 -> 2.7.2 under a write load."""

from __future__ import annotations

import json

import pytest
from upgrade_helpers import TO, active, journal, shares_text, stops_never_overlap, versions

from vaultops.services.upgrade.write_probe import WriteProbe, prepare

pytestmark = pytest.mark.integration


def test_pg_pair_upgrade_under_load_loses_no_acknowledged_write(make_box, cli) -> None:  # type: ignore[no-untyped-def]
    box = make_box("uppg", nodes=2, storage="postgresql")
    leader = active(box).name
    clients = box.clients(timeout=2)
    prepare(clients)
    with WriteProbe(clients) as probe:
        # no backup sink is configured for this sandbox's storage: the operator says so explicitly
        rc, out, err = cli(box, "upgrade", "run", "--to", TO, "--share-stdin", "--no-backup",
                           stdin=shares_text(box))
    assert rc == 0, err
    assert set(versions(box).values()) == {TO}
    assert len(probe.acks) > 50
    assert probe.missing(active(box)) == []
    entries = journal(box)
    assert stops_never_overlap(entries)[-1] == leader
    assert active(box).name != leader          # leadership handed to the upgraded standby
    probes = [e["details"]["evidence"]["probe"] for e in entries
              if e["action"] == "runbook.step" and e["details"].get("action") == "probe"]
    assert [p["direction"] for p in probes] == ["new standby -> old active", "old standby -> new active"]
    rc, out, _ = cli(box, "upgrade", "status", "--format", "json")
    assert rc == 0 and [s["status"] for s in json.loads(out)["steps"] if s["action"] == "probe"] == ["done"] * 2
    snap = next(e for e in entries if (e.get("details") or {}).get("action") == "snapshot")
    assert snap["details"]["evidence"]["skipped"] is True
