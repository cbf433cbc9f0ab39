"""Hostile file systems under a local sink: full, read-only, a file where the directory should be.

Each run must end with exit 6, exactly one JSON `run.failed` event, no traceback, nothing
half-written in the faulty sink (no temp file, no data without its manifest), the other sink
published with its manifest, and the failure recorded: state file, metrics (success 0) and
journal. The source is vaultops.testing.consul_double (fast; the faults are in the sinks).

A small tmpfs and a read-only bind mount are used where this user may mount (root in a
sandbox usually may); otherwise those cases are skipped and RLIMIT_FSIZE in a child process
stands in for a full disk.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vaultops.cli import main
from vaultops.services.backup import metrics
from vaultops.testing.consul_double import ConsulDouble

PAGE = 4096


@pytest.fixture
def consul() -> Iterator[ConsulDouble]:
    double = ConsulDouble().start()
    double.kv["vault/core/keyring"] = random.Random(13).randbytes(150_000)  # a ~300 KB snapshot: several writes
    yield double
    double.stop()


def _mount(*argv: str) -> bool:
    return subprocess.run(["mount", *argv], capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def mounts() -> Iterator[Any]:
    """mount(args..., target) -> bool; everything mounted is unmounted afterwards."""
    done: list[Path] = []

    def mount(*argv: str) -> bool:
        ok = _mount(*argv)
        if ok:
            done.append(Path(argv[-1]))
        return ok
    yield mount
    for target in reversed(done):
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


def tmpfs(mounts: Any, path: Path, size: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if not mounts("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)):
        pytest.skip("this user may not mount a tmpfs")


def read_only(mounts: Any, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if not (mounts("--bind", str(path), str(path)) and mounts("-o", "remount,ro,bind", str(path))):
        pytest.skip("this user may not make a read-only bind mount")


def config(tmp_path: Path, consul: ConsulDouble, bad: Path) -> Path:
    token = tmp_path / "consul-token"
    token.write_text(consul.token)
    data = {"cluster": {"name": "unit", "storage": "consul"},
            "nodes": [{"name": "n1", "address": "http://127.0.0.1:9"}],
            "journal": {"path": str(tmp_path / "journal.jsonl")},
            "backup": {"sinks": [{"type": "local", "path": str(bad)},
                                 {"type": "local", "path": str(tmp_path / "good")}],
                       "consul": {"address": consul.address, "token_file": str(token)},
                       "metrics_file": str(tmp_path / "backup.prom"), "state_file": str(tmp_path / "last-run.json"),
                       "lock_file": str(tmp_path / "backup.lock")}}
    path = tmp_path / "vaultops.yaml"
    path.write_text(yaml.safe_dump(data))
    # as after an earlier good run: the failure must turn success to 0
    metrics.write(tmp_path / "backup.prom", metrics.RunMetrics("unit", 1000.0, True, 1, 1.0, True))
    return path


def check_failed_run(tmp_path: Path, bad: Path, code: int, err: str) -> None:
    assert code == 6
    assert "Traceback" not in err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "run.failed"]
    assert len(failed) == 1, err
    assert not any(e["event"] in ("run.done", "run.partial", "sink.failed") for e in events)
    good = next(s for s in failed[0]["sinks"] if s.endswith("/good"))
    assert failed[0]["sinks"][good] == "ok" and failed[0]["published"] == [good]
    assert len([s for s, state in failed[0]["sinks"].items() if state != "ok"]) == 1
    # nothing half-done in the faulty sink
    if bad.is_dir():
        left = sorted(p.name for p in bad.iterdir() if p.name != "filler")
        assert left == [], left
    # the good sink has the backup and its manifest
    names = sorted(p.name for p in (tmp_path / "good").iterdir())
    assert len(names) == 2 and names[1] == names[0] + ".manifest.json"
    # recorded
    state = json.loads((tmp_path / "last-run.json").read_text())
    assert state["ok"] is False and state["sinks"][good] == "ok"
    prom = (tmp_path / "backup.prom").read_text()
    assert 'vaultops_backup_last_run_success{cluster="unit"} 0' in prom
    assert 'vaultops_backup_last_success_timestamp_seconds{cluster="unit"} 1000.0' in prom
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [(j["action"], j["outcome"]) for j in journal] == [("backup.run", "failed")]


def run(cfg: Path) -> int:
    return main(["--config", str(cfg), "backup", "run"])


@pytest.mark.parametrize("room", ["none", "half", "data but not the manifest"])
def test_full_destination(tmp_path: Path, consul: ConsulDouble, mounts: Any, capsys: pytest.CaptureFixture[str],
                          room: str) -> None:
    size = len(consul.archive())
    pages = -(-size // PAGE)
    bad = tmp_path / "full"
    tmpfs(mounts, bad, 1 << 20)
    free = {"none": 0, "half": pages // 2, "data but not the manifest": pages}[room] * PAGE
    (bad / "filler").write_bytes(bytes((1 << 20) - free))
    code = run(config(tmp_path, consul, bad))
    check_failed_run(tmp_path, bad, code, capsys.readouterr().err)


def test_read_only_destination(tmp_path: Path, consul: ConsulDouble, mounts: Any,
                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "ro"
    read_only(mounts, bad)
    code = run(config(tmp_path, consul, bad))
    check_failed_run(tmp_path, bad, code, capsys.readouterr().err)
    assert "Read-only file system" in capsys.readouterr().out + json.dumps(
        json.loads((tmp_path / "last-run.json").read_text()))


@pytest.mark.parametrize("where", ["the directory", "a parent"])
def test_a_file_where_the_directory_should_be(tmp_path: Path, consul: ConsulDouble,
                                              capsys: pytest.CaptureFixture[str], where: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory\n")
    bad = blocker if where == "the directory" else blocker / "backups"
    code = run(config(tmp_path, consul, bad))
    check_failed_run(tmp_path, bad, code, capsys.readouterr().err)
    assert blocker.read_text() == "not a directory\n"


def test_a_read_only_destination_never_reached(tmp_path: Path, consul: ConsulDouble, mounts: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The sink's directory does not exist yet and its parent is read-only: refused at build time."""
    parent = tmp_path / "ro-parent"
    read_only(mounts, parent)
    bad = parent / "backups"
    code = run(config(tmp_path, consul, bad))
    check_failed_run(tmp_path, bad, code, capsys.readouterr().err)


CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
from vaultops.cli import main
sys.exit(main(["--config", sys.argv[1], "backup", "run"]))
"""


def test_file_size_limit_in_a_child_process(tmp_path: Path, consul: ConsulDouble) -> None:
    """No mount needed: RLIMIT_FSIZE makes every large write fail (EFBIG), as a full disk would."""
    cfg = config(tmp_path, consul, tmp_path / "limited")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(cfg), str(64 << 10)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "VAULTOPS_STATE_DIR": str(tmp_path / "state")})
    assert proc.returncode == 6, proc.stderr
    assert "Traceback" not in proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "run.failed"]
    assert len(failed) == 1 and failed[0]["published"] == []
    assert all("too large" in state for state in failed[0]["sinks"].values())
    for folder in (tmp_path / "limited", tmp_path / "good"):
        assert list(folder.iterdir()) == []
    assert json.loads((tmp_path / "last-run.json").read_text())["ok"] is False
    assert 'vaultops_backup_last_run_success{cluster="unit"} 0' in (tmp_path / "backup.prom").read_text()
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [(j["action"], j["outcome"]) for j in journal] == [("backup.run", "failed")]
