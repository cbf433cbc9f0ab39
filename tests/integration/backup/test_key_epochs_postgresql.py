"""Key epochs on an OpenBao Active-Standby pair on PostgreSQL: pg_dump backups carry their epoch too
(issue 16): backup on epoch 1 -> rekey 5/3 -> 3/2 through vaultops (automatic pg_dump backup on epoch 2)
-> `backup epochs` lists both -> departures leave epoch 1 short: exit 3, metric 1 -> retention prunes
the epoch-1 dump: the alarm clears and the journal says epoch-1 shares may be destroyed."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from backup_helpers import active_client, backup_config, write_retry
from vaultops.cli import main
from vaultops.journal import Journal
from vaultops.services.backup.stored import read_manifest
from vaultops.services.sandbox import postgres
from vaultops.storage.base import get_sink
from vaultops.testing.sandbox import start_sandbox

pytestmark = pytest.mark.integration
NEW = ("alice", "carol", "frank")


@pytest.fixture(scope="module")
def pg_box(tmp_path_factory: pytest.TempPathFactory) -> Any:
    box = start_sandbox(tmp_path_factory.mktemp("pgepochs"), name="pgepochs", nodes=2, storage="postgresql")
    try:
        box.wait_active()
        client = active_client(box)
        client.write("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        write_retry(client, "secret/data/pg-sentinel", {"data": {"value": "epoch-1"}})
        yield box
    finally:
        box.stop()


def test_pg_dump_backups_carry_their_key_epoch(pg_box: Any, tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    dsn = f"host=127.0.0.1 port={pg_box.record.pg_port} dbname={postgres.DB} user={postgres.ROLE}"

    def config(keep_last: int) -> Path:
        return backup_config(pg_box, tmp_path, {"sinks": [{"type": "local", "path": str(tmp_path / "sink")}],
                                                "postgresql": {"dsn": dsn}, "metrics_file": str(tmp_path / "b.prom"),
                                                "retention": {"keep_last": keep_last, "min_keep": 1},
                                                "drill": {"sentinels": ["secret/data/pg-sentinel"]}})

    cfg = config(5)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["--config", str(cfg), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = run("backup", "run", "--format", "json")
    assert code == 0, err
    first = json.loads(out)
    assert first["name"].endswith(".pgdump") and first["manifest"]["key_epoch"]["number"] == 1
    assert (first["manifest"]["key_epoch"]["threshold"], first["manifest"]["key_epoch"]["shares"]) == (3, 5)
    files = {n: tmp_path / f"{n}.share" for n in NEW}
    keys = pg_box.secrets["keyholders"]
    assert run("rekey", "start", "--shares", "3", "--threshold", "2", *[a for n in NEW for a in ("--keyholder", n)]
               )[0] == 0
    code, out, err = run("rekey", "submit", "--share-stdin", *[a for n, p in files.items() for a in
                                                                 ("--share-file", f"{n}={p}")],
                         stdin="".join(f"{n}: {keys[n]}\n" for n in ("alice", "bob", "carol")))
    assert code == 0, err
    new = {n: p.read_text().strip() for n, p in files.items()}
    code, out, err = run("rekey", "verify", "--share-stdin", stdin=f"frank: {new['frank']}\ncarol: {new['carol']}\n")
    assert code == 0, err
    assert "taken and verified on epoch 2" in out
    sink = get_sink({"type": "local", "path": str(tmp_path / "sink")})
    dumps = sorted(o.key for o in sink.list("") if o.key.endswith(".pgdump"))
    assert [read_manifest(sink, n).key_epoch.number for n in dumps] == [1, 2]  # type: ignore[union-attr]
    code, out, err = run("backup", "epochs", "--format", "json")
    assert code == 0, err
    assert [(r["epoch"], r["backups"]) for r in json.loads(out)["epochs"]] == [(1, 1), (2, 1)]
    # each epoch's dump drilled in a throwaway OpenBao on a private PostgreSQL, with that epoch's shares
    old = "".join(f"{n}: {keys[n]}\n" for n in ("alice", "bob", "carol"))
    for epoch, shares in ((1, old), (2, f"frank: {new['frank']}\ncarol: {new['carol']}\n")):
        code, out, err = run("backup", "drill", "--epoch", str(epoch), "--format", "json", stdin=shares)
        assert code == 0, out + err
        report = json.loads(out)
        assert report["ok"] and report["epoch"] == epoch and report["checked"], report
        assert report["name"].endswith(".pgdump") and report["sentinels"] == {"secret/data/pg-sentinel": "ok"}
        assert report["rto_seconds"] > 0
    code, out, err = run("backup", "drill", "--epoch", "1", stdin=f"alice: {new['alice']}\n" + old.split("\n", 1)[1])
    assert code == 3 and "is alice's share of key epoch 2" in err and "drill.start" not in err, out + err
    blob = out + err + (tmp_path / "journal.jsonl").read_text()
    assert not any(v in blob for v in (*new.values(), *keys.values()))
    for name in ("bob", "dave", "erin"):
        assert run("keyholders", "depart", name)[0] == 0
    code, out, err = run("backup", "epochs")
    assert code == 3 and "UNOPENABLE" in out
    assert re.search(r"^vaultops_backup_unopenable_epochs\{[^}]*\} 1$", (tmp_path / "b_epochs.prom").read_text(), re.M)
    cfg = config(1)
    code, out, err = run("backup", "prune")
    assert code == 0, err
    code, out, err = run("backup", "epochs")
    assert code == 0 and "epoch 1: no retained backup needs its shares" in out
    assert re.search(r"^vaultops_backup_unopenable_epochs\{[^}]*\} 0$", (tmp_path / "b_epochs.prom").read_text(), re.M)
    retired = [e for e in Journal(tmp_path / "journal.jsonl").entries() if e["action"] == "keyholders.epoch_retired"]
    assert [e["details"]["epoch"] for e in retired] == [1]
