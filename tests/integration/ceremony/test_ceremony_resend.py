"""Issue 15 on a real 3-node raft cluster after an outage (every node killed and restarted sealed).

- Joiners cost keyholders no second entry: a node that comes back after the keyholders entered
  their shares gets them again from each keyholder's own process (one line each), journalled as
  re-sends; every node ends unsealed.
- Two keyholder processes at once: each event is journalled once and the manifest's pending
  cluster id is recorded once.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from ceremony_helpers import VAULTOPS, keyholder_share, statuses, wait_for

from vaultops.journal import Journal
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.services.ceremony.manifest import Manifest
from vaultops.testing.sandbox import Sandbox

pytestmark = pytest.mark.integration


def keyholder(box: Sandbox, *names: str, json_out: bool = False) -> subprocess.Popen[str]:
    """One keyholder's terminal: `vaultops unseal --share-stdin --wait`, their line(s) on stdin."""
    p = subprocess.Popen([*VAULTOPS, "--config", str(box.config_path), "unseal", "--share-stdin", "--wait",
                          "--timeout", "120", *(["--format", "json"] if json_out else [])],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdin is not None
    p.stdin.write("".join(f"{n}: {keyholder_share(box, n)}\n" for n in names))
    p.stdin.close()
    return p


def finish(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    assert p.stdout and p.stderr
    with p.stdout, p.stderr:
        out, err = p.stdout.read(), p.stderr.read()  # small outputs: no pipe can fill up
    return p.wait(timeout=150), out, err


def since(box: Sandbox, before: int) -> list[dict]:
    return list(Journal(box.dir / "journal.jsonl").entries())[before:]


def count(entries: list[dict], action: str) -> int:
    return sum(1 for e in entries if e["action"] == action)


def test_a_node_back_after_the_shares_gets_them_from_each_keyholders_process(sealed3: Sandbox) -> None:
    before = len(list(Journal(sealed3.dir / "journal.jsonl").entries()))
    late = sealed3.drivers()["node3"]
    late.stop()                                   # still down while the keyholders enter their shares
    procs = [keyholder(sealed3, name) for name in ("alice", "bob", "carol")]
    try:
        wait_for(lambda: count(since(sealed3, before), "unseal.share-submitted") == 3, 60,
                 "every keyholder's share submitted (node3 unreachable)")
        assert all(st is not None and not st.sealed for name, st in statuses(sealed3).items() if name != "node3")
        late.start()                              # comes back sealed: nobody types again
        results = [finish(p) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for (code, out, err), name in zip(results, ("alice", "bob", "carol")):
        assert code == 0, err
        assert f"re-sent keyholder {name}'s share #" in out and "to [node3]" in out
    assert all(st is not None and not st.sealed for st in statuses(sealed3).values())
    entries = since(sealed3, before)
    assert count(entries, "unseal.share-submitted") == 3      # one entry per keyholder, once
    resent = [e for e in entries if e["action"] == "unseal.share-resent"]
    assert sorted(e["details"]["keyholder"] for e in resent) == ["alice", "bob", "carol"]
    assert all(e["details"]["nodes"] == ["node3"] for e in resent)
    # Three processes watched every node unseal; each unsealing is in the journal once.
    assert count(entries, "unseal.node-unsealed") == 3 and count(entries, "unseal.cluster-unsealed") == 1
    blob = (sealed3.dir / "journal.jsonl").read_text()
    assert not any(keyholder_share(sealed3, n) in blob for n in ("alice", "bob", "carol"))


def test_two_processes_journal_each_event_once_and_record_the_cluster_id_once(sealed3: Sandbox) -> None:
    manifest_path = sealed3.dir / "keyholders.yaml"
    real = Manifest.load(manifest_path)
    Manifest(cluster_id=PENDING_CLUSTER_ID, threshold=real.threshold, shares=real.shares,
             keyholders=real.keyholders).save(manifest_path)   # as `vaultops init` leaves it
    history = _history(manifest_path)
    before = len(list(Journal(sealed3.dir / "journal.jsonl").entries()))
    first = keyholder(sealed3, "alice", json_out=True)
    wait_for(lambda: statuses(sealed3)["node1"].progress == 1, 30, "alice's share counted")
    second = keyholder(sealed3, "bob", "carol", json_out=True)
    results = [finish(first), finish(second)]
    for code, out, err in results:
        assert code == 0, err
        result = json.loads(out)
        assert result["all_unsealed"] and set(result["submitted"]) == {"alice", "bob", "carol"}
    entries = since(sealed3, before)
    assert count(entries, "unseal.node-unsealed") == 3, [e["action"] for e in entries]
    assert count(entries, "unseal.cluster-unsealed") == 1
    assert count(entries, "keyholders.cluster-id-recorded") == 1
    assert Manifest.load(manifest_path).cluster_id == real.cluster_id == statuses(sealed3)["node1"].cluster_id
    assert len(_history(manifest_path)) == len(history) + 1       # the manifest was written once
    assert Journal(sealed3.dir / "journal.jsonl").verify() == []


def _history(manifest: Path) -> list[Path]:
    folder = manifest.parent / f"{manifest.stem}.history"
    return sorted(folder.iterdir()) if folder.exists() else []
