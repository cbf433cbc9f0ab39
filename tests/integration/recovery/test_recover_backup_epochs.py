"""`recover from-backup` after a rekey: the backup opens only with the shares of its key epoch (issue 17
item 3 on issue 16's epochs). A backup taken on epoch 1, a rekey through vaultops (3 of 5 -> 2 of 3,
new keyholder frank), every node lost: `recover from-backup --name <epoch-1 backup>` given the NEW
shares is refused before any node is touched, naming the epoch of each share; given the OLD shares
it rebuilds the cluster, each unseal checked against epoch 1's keyholder manifest."""

from __future__ import annotations

import json

import pytest
from recovery_helpers import active_client, cluster_name, journal, shares_text, step_evidence, voters, with_backups

from vaultops.testing.sandbox import kill_and_wipe

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

NEW = ("alice", "carol", "frank")


def _old_lines(box, *names: str) -> str:  # type: ignore[no-untyped-def]
    return "".join(f"{n}: {box.secrets['keyholders'][n]}\n" for n in names)


def _rekey(box, cli, folder) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Rekey 3 of 5 -> 2 of 3 through vaultops; the new shares by keyholder."""
    files = {n: folder / f"{n}.share" for n in NEW}
    rc, out, err = cli(box, "rekey", "start", "--shares", "3", "--threshold", "2",
                       *[a for n in NEW for a in ("--keyholder", n)])
    assert rc == 0, out + err
    rc, out, err = cli(box, "rekey", "submit", "--share-stdin",
                       *[a for n, p in files.items() for a in ("--share-file", f"{n}={p}")],
                       stdin=_old_lines(box, "alice", "bob", "carol"))
    assert rc == 0, out + err
    new = {n: p.read_text().strip() for n, p in files.items()}
    rc, out, err = cli(box, "rekey", "verify", "--share-stdin", stdin=f"frank: {new['frank']}\nalice: {new['alice']}\n")
    assert rc == 0, out + err
    assert "rekey complete" in out and "key epoch 2" in out
    return new


def test_from_backup_unseals_with_the_shares_of_the_backups_key_epoch(make_box, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    box = make_box("fbepochs")
    with_backups(box, tmp_path, "epoch-1")
    rc, out, err = cli(box, "backup", "run", "--format", "json")
    assert rc == 0, out + err
    taken = json.loads(out)
    assert taken["manifest"]["key_epoch"]["number"] == 1
    name = taken["name"]
    new = _rekey(box, cli, tmp_path)

    kill_and_wipe(box, "node1", "node2", "node3")
    confirm = ("--confirm", cluster_name(box))
    # the new shares: refused at `pick`, before any node is stopped, started or restored
    rc, out, err = cli(box, "recover", "from-backup", "--name", name, "--share-stdin", *confirm,
                       stdin=f"alice: {new['alice']}\nfrank: {new['frank']}\n")
    assert rc != 0, out + err
    said = out + err
    assert f"{name} is of key epoch 1" in said and "alice's share of key epoch 2" in said, said
    assert "the shares of key epoch 1 are needed" in said
    assert not [e for e in journal(box) if e["action"] == "unseal.share-submitted"]
    for secret in (new["alice"], new["frank"]):
        assert secret not in said and all(secret not in json.dumps(e) for e in journal(box))
    steps = {e["details"].get("step") for e in journal(box) if e["action"] == "runbook.step"}
    assert steps <= {"assess", "pick"}, steps             # nothing stopped, started or restored

    # the old shares (bare, as the keyholders kept them): the cluster is rebuilt from the epoch-1 backup
    rc, out, err = cli(box, "recover", "from-backup", "--name", name, "--restart", "--share-stdin", *confirm,
                       stdin=shares_text(box))
    assert rc == 0, out + err
    assert step_evidence(journal(box), "pick")["key_epoch"] == 1
    assert step_evidence(journal(box), "unseal")["key_epoch"] == 1
    assert voters(box) == {"node1": True, "node2": True, "node3": True}
    assert active_client(box).read("kvs/sentinel")["data"]["value"] == "epoch-1"
    submitted = [e for e in journal(box) if e["action"] == "unseal.share-submitted"]
    assert submitted and all(e["details"]["verified"] for e in submitted)

