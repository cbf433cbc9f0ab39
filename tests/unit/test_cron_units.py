"""scripts/cron: the cron line does what its comment says, and the systemd units are true.

The cron line is taken from the file as written and run by /bin/sh (as cron runs it) against
failing configurations, with only its paths moved into a temporary folder: cron must get one plain
line (what it mails), and the log must stay pure JSON lines ending in the error. The units are
checked by systemd-analyze, whose check of `Documentation=man:vaultops(1)` needs the man page.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CRON = ROOT / "scripts" / "cron"
SCRIPT = Path(sys.executable).parent / "vaultops"


def cron_command() -> str:
    """The command of the one job line of vaultops-backup.cron (after minute..weekday and the user)."""
    jobs = [line for line in (CRON / "vaultops-backup.cron").read_text().splitlines()
            if line and not line.startswith("#") and "=" not in line.split()[0]]
    assert len(jobs) == 1, jobs
    fields = jobs[0].split(None, 6)
    assert fields[5] == "vaultops", "runs as the vaultops user"
    return fields[6]


def run_cron_line(tmp_path: Path, config: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    log = tmp_path / "log" / "backup.jsonl"
    log.parent.mkdir(exist_ok=True)
    vaultops = str(SCRIPT) if SCRIPT.exists() else f"{sys.executable} -m vaultops"
    command = (cron_command().replace("/usr/local/bin/vaultops", vaultops)
               .replace("/etc/vaultops/vaultops.yaml", shlex.quote(str(config)))
               .replace("/var/log/vaultops/backup.jsonl", str(log))
               .replace("/var/lib/vaultops", str(tmp_path / "state")))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}   # cron's sparse environment
    proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    return proc, log


def json_lines(log: Path) -> list[dict[str, object]]:
    lines = log.read_text().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]     # every line is one JSON object


def test_a_failing_config_mails_one_line_and_logs_json(tmp_path: Path) -> None:
    config = tmp_path / "vaultops.yaml"
    config.write_text("nodes: [{name: n1, address: 'https://vault:8200', colour: blue}]\n")
    proc, log = run_cron_line(tmp_path, config)
    assert proc.returncode == 0, "the job line itself succeeds: its echo is what cron mails"
    assert proc.stdout == f"vaultops backup run failed (exit 2): see the last lines of {log}\n"
    assert proc.stderr == ""
    records = json_lines(log)
    assert records[-1]["level"] == "error" and records[-1]["exit_code"] == 2 and "colour" in str(records[-1]["message"])


def test_a_failed_run_appends_json_lines_to_the_same_log(tmp_path: Path) -> None:
    config = tmp_path / "vaultops.yaml"
    config.write_text(f"cluster: {{name: c}}\nnodes: [{{name: n1, address: 'http://127.0.0.1:1'}}]\n"
                      f"backup: {{sinks: [{{type: local, path: '{tmp_path / 'sink'}'}}]}}\n")
    first, log = run_cron_line(tmp_path, config)
    second, _ = run_cron_line(tmp_path, config)
    for proc in (first, second):
        assert proc.stdout.startswith("vaultops backup run failed (exit ") and proc.stdout.count("\n") == 1
    records = json_lines(log)
    assert sum(1 for r in records if r.get("event") in ("run.failed", "error")) >= 2, records


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_verify_and_their_man_page_exists(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    for unit in sorted(CRON.glob("*.service")) + sorted(CRON.glob("*.timer")):
        text = unit.read_text()
        if unit.suffix == ".service":
            assert "ExecStart=/usr/local/bin/vaultops " in text and "[Install]" not in text  # started by its timer
            text = text.replace("/usr/local/bin/vaultops", str(SCRIPT))
        (units / unit.name).write_text(text)
    man = tmp_path / "man" / "man1"
    man.mkdir(parents=True)
    shutil.copy(ROOT / "vaultops" / "data" / "vaultops.1", man / "vaultops.1")
    names = sorted(p.name for p in units.iterdir())
    proc = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True, cwd=units,
                          env={**os.environ, "MANPATH": str(tmp_path / "man")}, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr   # unknown keys are warnings on stderr
    for unit in units.glob("*.service"):   # the options they pass exist
        exec_line = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
        argv = shlex.split(exec_line.split("=", 1)[1])[1:]
        help_proc = subprocess.run([str(SCRIPT), *argv, "--help"], capture_output=True, text=True, timeout=60)
        assert help_proc.returncode == 0, f"{unit.name}: {argv} is not a vaultops command line: {help_proc.stderr}"
