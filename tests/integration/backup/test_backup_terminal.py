"""`backup run` and `backup drill` as a person runs them, in a real terminal (tmux), on a real raft cluster
(issue 15: "interactive backup run and drill print for people"): a live progress line (a bar, the stage,
the time so far), then a summary; no JSON line reaches the terminal. The same commands piped, as cron runs
them, keep their JSON lines on stderr.

The drill's shares come from a 0600 file on stdin ('NAME: share' lines, as `unseal --share-stdin` reads
them); the terminal's raw output (tmux pipe-pane) is scanned for progress redraws and for the shares.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from backup_helpers import active_client, backup_config, write_retry

from vaultops.testing.sandbox import Sandbox
from vaultops.testing.tmux import Tmux

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]
DONE = "STEP-EXIT="


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / "tmux.sock", target="bk")
    yield t
    t.kill()


def vaultops(config: Path) -> str:
    return f"{shlex.quote(sys.executable)} -m vaultops --config {shlex.quote(str(config))}"


def run_in_terminal(tmux: Tmux, command: str, raw: Path, timeout: float) -> str:
    """*command* typed at the pane's shell; the screen once it has printed its exit code."""
    tmux("pipe-pane", "-o", "-t", "bk", f"cat >> {shlex.quote(str(raw))}")
    tmux("send-keys", "-t", "bk", "clear", "Enter")
    tmux("send-keys", "-t", "bk", "-l", f"{command}; echo {DONE}$?")
    tmux("send-keys", "-t", "bk", "Enter")
    deadline = time.monotonic() + timeout
    while True:
        shown = tmux.screen()
        if any(line.startswith(DONE) for line in shown.splitlines()):
            tmux("pipe-pane", "-t", "bk")  # stop recording
            return shown
        assert time.monotonic() < deadline, f"{command!r} did not finish; screen:\n{shown}"
        time.sleep(0.2)


def exit_code(screen: str) -> int:
    return int(next(line for line in screen.splitlines() if line.startswith(DONE))[len(DONE):])


def test_run_and_drill_at_a_terminal_show_progress_and_a_summary(raft_box: Sandbox, tmux: Tmux,
                                                                 tmp_path: Path) -> None:
    write_retry(active_client(raft_box), "secret/data/terminal", {"data": {"value": "present"}})
    cfg = backup_config(raft_box, tmp_path / "cfg", {
        "sinks": [{"type": "local", "path": str(tmp_path / "local")}],
        "drill": {"sentinels": ["secret/data/terminal", "secret/data/sentinel"]}})
    holders = list(raft_box.secrets["keyholders"].items())[:3]
    shares = tmp_path / "shares.txt"
    shares.touch(mode=0o600)
    shares.write_text("".join(f"{name}: {share}\n" for name, share in holders))
    env = {"VAULTOPS_STATE_DIR": str(tmp_path / "state"), "HOME": os.environ["HOME"], "COLUMNS": "120"}
    tmux("new-session", "-d", "-s", "bk", "-x", "120", "-y", "40",
         "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " bash --norc --noprofile")
    raw_run, raw_drill = tmp_path / "run.raw", tmp_path / "drill.raw"

    shown = run_in_terminal(tmux, f"{vaultops(cfg)} backup run", raw_run, timeout=120)
    assert exit_code(shown) == 0, shown
    assert "verified and published in" in shown and "published" in shown and "sha256" in shown, shown
    stream = raw_run.read_bytes().decode("utf-8", "replace")
    assert "\r[" in stream and "streaming from" in stream   # the live line, redrawn in place
    assert '"event"' not in stream and '{"time"' not in stream   # no JSON line for a person

    shown = run_in_terminal(tmux, f"{vaultops(cfg)} backup drill < {shlex.quote(str(shares))}", raw_drill,
                            timeout=240)
    assert exit_code(shown) == 0, shown
    assert "PASSED" in shown and "restore time (RTO)" in shown, shown
    assert "sentinel secret/data/terminal: ok" in shown and "sentinel secret/data/sentinel: ok" in shown
    assert "alice, bob, carol (checked against the keyholder manifest first)" in shown
    stream = raw_drill.read_bytes().decode("utf-8", "replace")
    assert "\r[" in stream and "restoring and unsealing the copy" in stream
    assert '"event"' not in stream
    for _, share in holders:
        assert str(share) not in stream and str(share)[:12] not in stream


def test_piped_as_cron_runs_it_stderr_is_json_lines_only(raft_box: Sandbox, tmp_path: Path) -> None:
    cfg = backup_config(raft_box, tmp_path / "cfg", {"sinks": [{"type": "local", "path": str(tmp_path / "local")}]})
    env = {**os.environ, "VAULTOPS_STATE_DIR": str(tmp_path / "state")}
    res = subprocess.run([sys.executable, "-m", "vaultops", "--config", str(cfg), "backup", "run"], env=env,
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stderr.splitlines()]   # every line is JSON
    events = [r["event"] for r in records]
    assert "run.start" in events and events[-1] == "run.done", records
    assert all(r["level"] == "warning" for r in records[:events.index("run.start")])   # e.g. the root token used
    assert "\r" not in res.stdout + res.stderr and ": ok (" in res.stdout
