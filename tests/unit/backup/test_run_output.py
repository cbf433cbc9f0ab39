"""What `backup run` prints: for a person at a terminal, for cron, and for --format json (issue 15).

Runs go through main() against the Consul test double (a full run: snapshot, verify, publish).
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest

from vaultops.cli import main
from vaultops.cli.progress import BackupProgress, DrillProgress, LiveLine, bar, size_text
from vaultops.services.backup.lock import run_lock
from vaultops.services.backup.settings import load_settings


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def consul_cfg(make_cfg: Any, consul: Any, tmp_path: Any) -> Any:
    token_file = tmp_path / "consul-token"
    token_file.write_text(consul.token + "\n")
    return make_cfg({"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                     "consul": {"address": consul.address, "token_file": str(token_file)}})


@pytest.fixture
def every_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vaultops.services.backup.runner.PROGRESS_EVERY", 0.0)  # a progress event per chunk


def test_cron_gets_json_lines_only_and_the_text_result(make_cfg: Any, consul: Any, tmp_path: Any, capsys: Any,
                                                       every_chunk: None) -> None:
    consul.kv["vault/core/keyring"] = b"k" * 300_000
    cfg = consul_cfg(make_cfg, consul, tmp_path)
    assert main(["--config", str(cfg.path), "backup", "run"]) == 0
    out = capsys.readouterr()
    events = [json.loads(line)["event"] for line in out.err.splitlines()]
    assert events[0] == "run.start" and events[-1] == "run.done" and "snapshot.progress" not in events
    assert out.out.startswith("unit-") and ": ok (" in out.out and "\r" not in out.out + out.err


def test_a_person_at_a_terminal_gets_a_progress_line_and_a_summary(make_cfg: Any, consul: Any, tmp_path: Any,
                                                                   capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                                                   every_chunk: None) -> None:
    consul.kv["vault/core/keyring"] = b"k" * 300_000
    cfg = consul_cfg(make_cfg, consul, tmp_path)
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["--config", str(cfg.path), "backup", "run"]) == 0
    shown = err.getvalue()
    assert "\r[" in shown and "/s" in shown and "streaming from" in shown and "{" not in shown
    out = capsys.readouterr().out
    assert "verified and published in" in out and "published" in out.splitlines()[-1]
    assert "sha256" in out and "from      " in out
    # the second run knows the size to expect from the first: a bar with a percentage
    err.seek(0)
    err.truncate()
    assert main(["--config", str(cfg.path), "backup", "run"]) == 0
    assert " of ~" in err.getvalue()


def test_json_when_the_lock_refuses_is_one_document_on_stdout(make_cfg: Any, consul: Any, tmp_path: Any,
                                                              capsys: Any) -> None:
    cfg = consul_cfg(make_cfg, consul, tmp_path)
    with run_lock(load_settings(cfg).lock_file):
        assert main(["--config", str(cfg.path), "backup", "run", "--format", "json"]) == 6
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["ok"] is False and doc["error"]["exit_code"] == 6 and "holds the lock" in doc["error"]["message"]
    assert all(json.loads(line) for line in out.err.splitlines())  # stderr: JSON lines only


def test_json_success_is_one_document(make_cfg: Any, consul: Any, tmp_path: Any, capsys: Any) -> None:
    cfg = consul_cfg(make_cfg, consul, tmp_path)
    assert main(["--config", str(cfg.path), "backup", "run", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


# -- the renderer ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_backup_progress_shows_stage_bytes_rate_and_keeps_warnings() -> None:
    stream, clock = io.StringIO(), Clock()
    emit = BackupProgress(LiveLine(stream, clock=clock, tick=None), expected=4 << 20, sinks=2)
    emit("run.start", source="raft")
    emit("snapshot.open", node="node2")
    clock.t += 2
    emit("snapshot.progress", bytes=2 << 20)
    assert "snapshot 2.0 MiB of ~4.0 MiB, 1.0 MiB/s" in stream.getvalue() and "] " in stream.getvalue()
    emit("warning", message="prune after the run failed")
    emit("sink.published", sink="local:/b")
    text = stream.getvalue()
    assert "warning: prune after the run failed\n" in text
    assert text.endswith("published to local:/b  2s\x1b[K")  # the line is redrawn below the warning


def test_drill_progress_follows_the_stages() -> None:
    stream = io.StringIO()
    emit = DrillProgress(LiveLine(stream, clock=Clock(), tick=None))
    for stage in ("fetch", "sandbox", "restore", "sentinels"):
        emit("drill.stage", stage=stage, size=1024)
    assert "reading the sentinels" in stream.getvalue() and " 90%" in stream.getvalue()


def test_bar_and_sizes() -> None:
    assert bar(0.5, width=10) == "[#####-----]  50%"
    assert bar(None, width=4) == "[....]     "
    assert size_text(512) == "512 B" and size_text(3 * 1024 * 1024) == "3.0 MiB"
