"""Key epochs on a real one-node OpenBao sandbox, in order (issue 16):

backup on epoch 1 -> rekey 5/3 -> 3/2 through vaultops (the automatic post-rekey backup is epoch 2)
-> `backup epochs` lists both -> drills of epoch 1 (old shares) and epoch 2 (new shares), a new share
offered to an epoch-1 drill refused before anything is restored -> departures that leave epoch 1
short of its threshold: exit 3, metric 1 -> retention prunes the last epoch-1 backup: the alarm
clears and the journal says epoch-1 shares may be destroyed -> a rekey done outside vaultops
(`bao operator rotate-keys`) makes the next backup's epoch unknown.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backup_helpers import active_client, backup_config, write_retry
from vaultops.cli import main
from vaultops.journal import Journal
from vaultops.services.backup.stored import read_manifest
from vaultops.storage.base import get_sink
from vaultops.testing.sandbox import Sandbox, start_sandbox

pytestmark = pytest.mark.integration
BAO = Path(sys.executable).parent / "bao"
NEW = ("alice", "carol", "frank")
STATE: dict[str, Any] = {}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Any:
    sandbox = start_sandbox(tmp_path_factory.mktemp("epochs"), name="epochs", nodes=1)
    try:
        sandbox.wait_active()
        client = active_client(sandbox)
        client.write("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        write_retry(client, "secret/data/sentinel", {"data": {"value": "epoch-1"}})
        STATE["dir"] = tmp_path_factory.mktemp("epochs-cfg")
        STATE["cfg"] = _config(sandbox, keep_last=5)
        yield sandbox
    finally:
        sandbox.stop()


def _config(box: Sandbox, *, keep_last: int) -> Path:
    folder: Path = STATE["dir"]
    return backup_config(box, folder, {"sinks": [{"type": "local", "path": str(folder / "sink")}],
                                       "retention": {"keep_last": keep_last, "min_keep": 1},
                                       "metrics_file": str(folder / "backup.prom"),
                                       "drill": {"sentinels": ["secret/data/sentinel"]}})


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--config", str(STATE["cfg"]), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def sink() -> Any:
    return get_sink({"type": "local", "path": str(STATE["dir"] / "sink")})


def epochs_of_backups() -> list[int | None]:
    s = sink()
    names = sorted(k for k in (o.key for o in s.list("")) if k.endswith(".snap"))
    return [read_manifest(s, n).key_epoch.number for n in names]  # type: ignore[union-attr]


def journal(box: Sandbox) -> list[dict[str, Any]]:
    return list(Journal(STATE["dir"] / "journal.jsonl").entries())


def share_lines(box: Sandbox, *names: str) -> str:
    keys = box.secrets["keyholders"]
    return "".join(f"{n}: {keys[n]}\n" for n in names)


def show(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """The text output, on the real stdout: it goes into the issue's closing note."""
    with capsys.disabled():
        print(f"\n$ vaultops backup epochs\n{text}")


def unopenable_metric() -> int:
    import re

    text = (STATE["dir"] / "backup_epochs.prom").read_text()
    found = re.search(r"^vaultops_backup_unopenable_epochs\{[^}]*\} (\d+)$", text, re.M)
    assert found, text
    return int(found.group(1))


def new_lines(*names: str) -> str:
    return "".join(f"{n}: {STATE['new'][n]}\n" for n in names)


def test_backup_on_epoch_1_then_rekey_through_vaultops(box: Sandbox, monkeypatch: Any, capsys: Any) -> None:
    code, out, err = run(monkeypatch, capsys, "backup", "run", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["manifest"]["key_epoch"] == {"threshold": 3, "shares": 5, "number": 1, "problem": None}
    files = {n: STATE["dir"] / f"{n}.share" for n in NEW}
    code, out, err = run(monkeypatch, capsys, "rekey", "start", "--shares", "3", "--threshold", "2",
                         *[a for n in NEW for a in ("--keyholder", n)])
    assert code == 0, err
    # before it completes: the retained backup that stays on epoch 1, and until when its shares are needed
    assert "1 retained backup(s)" in out and "stay on key epoch 1" in out and "keep them sealed" in out
    code, out, err = run(monkeypatch, capsys, "rekey", "submit", "--share-stdin",
                         *[a for n, p in files.items() for a in ("--share-file", f"{n}={p}")],
                         stdin=share_lines(box, "alice", "bob", "carol"))
    assert code == 0, err
    STATE["new"] = {n: p.read_text().strip() for n, p in files.items()}
    code, out, err = run(monkeypatch, capsys, "rekey", "verify", "--share-stdin", stdin=new_lines("frank", "alice"))
    assert code == 0, err
    assert "rekey complete" in out and "key epoch 2" in out
    assert "taken and verified on epoch 2" in out       # the automatic post-rekey backup
    assert epochs_of_backups() == [1, 2]
    actions = [e["action"] for e in journal(box)]
    assert "rekey.backups_on_old_epoch" in actions and "rekey.post_backup" in actions
    done = next(e for e in journal(box) if e["action"] == "rekey.post_backup")
    assert done["outcome"] == "ok" and done["details"]["epoch"] == 2


def test_backup_epochs_lists_both(box: Sandbox, monkeypatch: Any, capsys: Any) -> None:
    code, out, err = run(monkeypatch, capsys, "backup", "epochs", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    rows = {r["epoch"]: r for r in report["epochs"]}
    assert set(rows) == {1, 2} and report["current_epoch"] == 2 and report["unopenable_epochs"] == []
    assert (rows[1]["backups"], rows[1]["threshold"], rows[1]["shares"], rows[1]["reachable"]) == (1, 3, 5, True)
    assert rows[1]["keyholders"] == ["alice", "bob", "carol", "dave", "erin"]
    assert (rows[2]["backups"], rows[2]["keyholders"], rows[2]["current"]) == (1, list(NEW), True)
    code, text, _ = run(monkeypatch, capsys, "backup", "epochs")
    assert code == 0 and "2 (current)" in text
    show(capsys, text)
    code, out, _ = run(monkeypatch, capsys, "backup", "list", "--format", "json")
    assert sorted((r["epoch"], r["epoch_source"]) for r in json.loads(out)["backups"]) == [(1, "recorded"),
                                                                                         (2, "recorded")]
    code, out, _ = run(monkeypatch, capsys, "keyholders", "list", "--epochs", "--format", "json")
    custody = {(r["epoch"], r["keyholder"]): r["needed"] for r in json.loads(out)}
    assert custody[(2, "frank")].startswith("current") and "keep it sealed" in custody[(1, "bob")]
    assert unopenable_metric() == 0


def test_drills_of_each_epoch_with_its_own_shares(box: Sandbox, monkeypatch: Any, capsys: Any) -> None:
    import time

    code, out, err = run(monkeypatch, capsys, "backup", "drill", "--epoch", "1", "--format", "json",
                         stdin=share_lines(box, "alice", "bob", "carol"))
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and report["epoch"] == 1 and report["checked"] and report["sentinels"]
    assert report["rto_seconds"] > 0 and report["rpo_seconds"] >= 0
    # the default: each epoch not drilled lately (only 2 now); the old shares given too are left out
    code, out, err = run(monkeypatch, capsys, "backup", "drill", "--format", "json",
                         stdin=share_lines(box, "alice", "bob", "carol") + new_lines("frank", "carol"))
    assert code == 0, out + err
    assert json.loads(out)["ok"] and json.loads(out)["epoch"] == 2
    assert "shares of key epoch 1 left out" in err
    drills = [e["details"] for e in journal(box) if e["action"] == "backup.drill"]
    assert [(d["epoch"], bool(d["rto_seconds"])) for d in drills] == [(1, True), (2, True)]
    code, out, err = run(monkeypatch, capsys, "backup", "drill", stdin=new_lines("frank", "carol"))
    assert code == 0 and "nothing due" in out
    # an epoch-1 drill offered alice's NEW share: refused before anything is fetched or restored
    t0 = time.monotonic()
    code, out, err = run(monkeypatch, capsys, "backup", "drill", "--epoch", "1",
                         stdin=new_lines("alice") + share_lines(box, "bob", "carol"))
    assert code == 3 and time.monotonic() - t0 < 5
    assert "is alice's share of key epoch 2" in err and "opens only with epoch-1 shares" in err
    assert "drill.start" not in err
    blob = out + err + (STATE["dir"] / "journal.jsonl").read_text()
    assert not any(STATE["new"][n] in blob for n in NEW)
    assert not any(box.secrets["keyholders"][n] in blob for n in box.secrets["keyholders"])


def test_departures_make_epoch_1_unopenable(box: Sandbox, monkeypatch: Any, capsys: Any) -> None:
    for name in ("bob", "dave", "erin"):
        code, out, err = run(monkeypatch, capsys, "keyholders", "depart", name, "--note", "left the company")
        assert code == 0, err
    code, out, err = run(monkeypatch, capsys, "backup", "epochs")
    assert code == 3, err
    assert "UNOPENABLE" in out and "bob (departed)" in out
    show(capsys, out)
    assert unopenable_metric() == 1
    code, out, _ = run(monkeypatch, capsys, "keyholders", "check", "--format", "json")
    assert code == 1 and json.loads(out)["epochs"]["unopenable_epochs"] == [1]


def test_pruning_the_last_epoch_1_backup_clears_the_alarm(box: Sandbox, monkeypatch: Any, capsys: Any) -> None:
    STATE["cfg"] = _config(box, keep_last=1)
    code, out, err = run(monkeypatch, capsys, "backup", "prune")
    assert code == 0, err
    assert "key epoch 1: its last backup is gone" in out
    assert epochs_of_backups() == [2]
    code, out, err = run(monkeypatch, capsys, "backup", "epochs")
    assert code == 0, err
    assert "epoch 1: no retained backup needs its shares: they may be destroyed" in out
    show(capsys, out)
    assert unopenable_metric() == 0
    retired = [e for e in journal(box) if e["action"] == "keyholders.epoch_retired"]
    assert [e["details"]["epoch"] for e in retired] == [1]  # said once, though prune and epochs both looked
    assert "may destroy those shares" in retired[0]["details"]["message"]


def test_rekey_outside_vaultops_is_an_unknown_epoch(box: Sandbox, monkeypatch: Any, capsys: Any) -> None:
    env = {**os.environ, "BAO_ADDR": active_client(box).address, "BAO_TOKEN": box.root_token}
    init = subprocess.run([str(BAO), "operator", "rotate-keys", "-init", "-key-shares=4", "-key-threshold=2",
                           "-format=json"], env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    nonce = json.loads(init.stdout)["nonce"]
    for name in ("alice", "carol"):  # the shares go through stdin, never argv
        res = subprocess.run([str(BAO), "operator", "rotate-keys", f"-nonce={nonce}", "-format=json", "-"],
                             env=env, input=STATE["new"][name] + "\n", capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
    code, out, err = run(monkeypatch, capsys, "backup", "run", "--format", "json")
    assert code == 0, err
    epoch = json.loads(out)["manifest"]["key_epoch"]
    assert (epoch["number"], epoch["threshold"], epoch["shares"]) == (None, 2, 4)
    assert "the cluster reports 2 of 4 shares" in epoch["problem"] and "outside vaultops" in err
    code, out, err = run(monkeypatch, capsys, "backup", "epochs", "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["unknown_epoch_backups"] == 1 and report["epochs"][-1]["epoch"] is None
    code, out, _ = run(monkeypatch, capsys, "backup", "epochs")
    assert code == 1 and "UNKNOWN epoch" in out
    show(capsys, out)
    code, out, _ = run(monkeypatch, capsys, "backup", "inspect")
    assert "epoch     unknown (the cluster reports 2 of 4 shares" in out


def test_restore_names_the_epoch_and_its_keyholders_before_anything_is_done(box: Sandbox, monkeypatch: Any,
                                                                          capsys: Any) -> None:
    (epoch_2,) = [n for n in sorted(o.key for o in sink().list("")) if n.endswith(".snap")][:1]
    code, out, err = run(monkeypatch, capsys, "backup", "restore", epoch_2)
    assert code == 2 and "needs confirmation" in err   # no terminal, no --yes: nothing restored
    assert "KEY EPOCH 2: after this restore the cluster unseals ONLY with epoch-2 shares (2 of 3), held by " \
           "alice, carol, frank" in err
    code, out, err = run(monkeypatch, capsys, "backup", "restore")   # the newest: the outside rekey's
    assert code == 2 and "KEY EPOCH UNKNOWN" in err and "(2 of 4)" in err
