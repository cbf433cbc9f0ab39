"""`recover from-backup`: every node's process killed and data deleted; the cluster rebuilt from the
newest verified backup under a write load — the backup's data back, later writes gone (the RPO),
sentinel paths read, RTO/RPO reported. The dress rehearsal runs first and leaves the cluster alone."""

from __future__ import annotations

import json
import time

import pytest
from recovery_helpers import active_client, cluster_name, journal, shares_text, step_evidence, voters, with_backups

from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.testing.sandbox import kill_and_wipe

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]   # real elections under a full suite


def test_every_node_lost_the_cluster_is_rebuilt_from_the_newest_backup(make_box, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    box = make_box("frombackup")
    with_backups(box, tmp_path, "from-before-the-outage")
    clients = box.clients(timeout=1)
    prepare(clients)
    with WriteProbe(clients) as probe:
        time.sleep(1.0)
        backup_started = time.monotonic()
        rc, out, err = cli(box, "backup", "run", "--format", "json")
        assert rc == 0, out + err
        backup_done = time.monotonic()
        name = json.loads(out)["name"]
        time.sleep(1.0)                     # writes the backup does not hold

    rc, out, err = cli(box, "recover", "from-backup", "--rehearse", "--share-stdin", stdin=shares_text(box))
    assert rc == 0, out + err
    assert "rehearsal PASSED" in out and "RTO" in out
    assert voters(box) == {"node1": True, "node2": True, "node3": True}     # production untouched

    kill_and_wipe(box, "node1", "node2", "node3")
    rc, out, err = cli(box, "status", "--format", "json", "--timeout", "1")
    assert [c["kind"] for c in json.loads(out)["conditions"]] == ["all-lost"]
    assert "vaultops recover from-backup" in out
    rc, out, err = cli(box, "recover", "from-backup", "--share-stdin", "--confirm", cluster_name(box),
                       stdin=shares_text(box))
    assert rc == 0, out + err
    report = step_evidence(journal(box), "report")
    assert report["backup"] == name and report["rto_seconds"] > 0 and report["rpo_seconds"] >= 1.0
    assert "RTO" in out and "RPO" in out
    assert step_evidence(journal(box), "verify")["sentinels"] == {"kvs/sentinel": "ok"}
    assert voters(box) == {"node1": True, "node2": True, "node3": True}
    reader = active_client(box)
    assert reader.read("kvs/sentinel")["data"]["value"] == "from-before-the-outage"
    missing = set(probe.missing(reader))
    assert not {a.key for a in probe.acks if a.at < backup_started} & missing      # the backup's data is back
    later = {a.key for a in probe.acks if a.at > backup_done + 0.2}
    assert later and later <= missing                                            # and nothing newer: the RPO
    submitted = [e for e in journal(box) if e["action"] == "unseal.share-submitted"]
    assert submitted and all(e["details"]["verified"] for e in submitted)
