"""End to end in a real terminal: `vaultops tui` in tmux at 80x24 upgrades a live 3-node raft cluster
2.6.2 -> 2.7.2 from the console, the keyholders unsealing each restarted node at the console's prompt.

This is the console's upgrade path that died at preflight on every Shamir cluster (issue 13, defect 18:
the console's unsealer had no `shares_given`). Shares reach the hidden input the way the console offers
it -- Enter, then paste -- through a tmux paste buffer loaded from stdin (never argv), bare: the
ceremony finds each share's keyholder in the manifest by its x-coordinate and checks it before sending.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultops.errors import VaultOpsError
from vaultops.testing.sandbox import Sandbox, start_sandbox
from vaultops.testing.tmux import Tmux

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]
FROM, TO = "2.6.2", "2.7.2"
KEYHOLDERS = ("alice", "bob", "carol")
PROMPT = re.compile(r"(node\d) is sealed: 3 of 5 keyholders must submit")


@pytest.fixture
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A live, healthy cluster on FROM: the upgrade changes it, so each test run gets its own."""
    box = start_sandbox(tmp_path_factory.mktemp("conup"), name="conup", nodes=3, version=FROM, raft_healthy=True)
    yield box
    box.stop()


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / "tmux.sock", target="up")
    yield t
    t.kill()


def open_console(tmux: Tmux, box: Sandbox, tmp_path: Path) -> Path:
    done = tmp_path / "exit-code"
    env = f"VAULTOPS_STATE_DIR={shlex.quote(str(tmp_path / 'state'))} HOME={shlex.quote(os.environ['HOME'])}"
    cmd = (f"cd {shlex.quote(str(tmp_path))} && {env} {shlex.quote(sys.executable)} -m vaultops "
           f"--config {shlex.quote(str(box.config_path))} tui; echo $? > {shlex.quote(str(done))}; sleep 30")
    tmux("new-session", "-d", "-s", "up", "-x", "80", "-y", "24", cmd)
    tmux.wait("[F6] Journal")
    return done


def wait_for_prompt_or_done(tmux: Tmux, timeout: float = 240.0) -> tuple[str | None, str]:
    """The node the keyholder prompt names, or None once the run is DONE; fails on a halt."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = tmux.screen()
        found = PROMPT.search(shown)
        if found and "Enter to paste a share" in shown:
            return found.group(1), shown
        if " DONE" in shown:
            return None, shown
        assert " HALTED" not in shown and " PAUSED" not in shown, shown
        time.sleep(0.2)
    raise AssertionError(f"neither the keyholder prompt nor DONE appeared:\n{tmux.screen()}")


def submit_shares(tmux: Tmux, box: Sandbox, node: str) -> None:
    keys = box.secrets["keyholders"]
    for i, name in enumerate(KEYHOLDERS, 1):
        tmux.keys("Enter")
        tmux.wait("Enter accept")  # the hidden input has the focus (the help line says so)
        tmux.paste(str(keys[name]))
        shown = tmux.screen()
        assert str(keys[name])[:12] not in shown  # the input is hidden
        tmux.keys("Enter")
        if i < len(KEYHOLDERS):
            tmux.wait(f"progress {i}/3", timeout=30)
    wait_unsealed(box, node)
    deadline = time.monotonic() + 30
    while f"{node} is sealed" in tmux.screen():  # the console noticed: no stale prompt is answered twice
        assert time.monotonic() < deadline, tmux.screen()
        time.sleep(0.1)


def wait_unsealed(box: Sandbox, node: str, timeout: float = 60.0) -> None:
    client = next(c for c in box.clients(token=False) if c.name == node)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not client.seal.status().sealed:
                return
        except VaultOpsError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{node} still sealed after three shares at the console")


def test_console_upgrades_a_sealed_restart_cluster_end_to_end(box: Sandbox, tmux: Tmux, tmp_path: Path) -> None:
    done = open_console(tmux, box, tmp_path)
    tmux.keys("F4")
    tmux.wait("t plan a target version")
    tmux.keys("t")
    tmux.wait("target version:")
    tmux.keys(TO, "Enter")
    plan = tmux.wait("Start?", timeout=60)
    tmux.keys("y")

    prompts: list[str] = []
    unsealed: list[str] = []
    while True:
        node, shown = wait_for_prompt_or_done(tmux)
        if node is None:
            break
        prompts.append(shown)
        submit_shares(tmux, box, node)
        unsealed.append(node)
    final = tmux.screen()
    (tmp_path / "screens.txt").write_text("\n---\n".join([plan, *prompts, final]))
    print("\n---\n".join([plan, prompts[0], final]))  # quoted in the report (-s)
    capture(plan=plan, prompts=prompts, final=final)

    assert sorted(unsealed) == ["node1", "node2", "node3"]  # every node restarted sealed, once
    versions = {c.name: c.ha.health().version for c in box.clients()}
    sealed = {c.name: c.seal.status().sealed for c in box.clients(token=False)}
    assert versions == {"node1": TO, "node2": TO, "node3": TO}
    assert sealed == {"node1": False, "node2": False, "node3": False}
    entries = [json.loads(line) for line in (box.dir / "journal.jsonl").read_text().splitlines() if line.strip()]
    assert entries[-1]["action"] == "runbook.done"
    preflight = next(e for e in entries if (e.get("details") or {}).get("action") == "preflight")
    seal = preflight["details"]["evidence"]["seal"]
    assert seal["shares_given"] == 0 and len(seal["keyholders"]) == 5  # keyholders come to the console
    submitted = [e for e in entries if e["action"] == "unseal.share-submitted"]
    assert len(submitted) == 9 and all(e["details"].get("verified") for e in submitted)
    state = next((tmp_path / "state").rglob("*-upgrade.json")).read_text()
    for name in KEYHOLDERS:
        share = str(box.secrets["keyholders"][name])
        assert share not in state and share not in (box.dir / "journal.jsonl").read_text()

    tmux.keys("C-q")
    deadline = time.monotonic() + 20
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.read_text().strip() == "0"


def capture(*, plan: str, prompts: list[str], final: str) -> None:
    folder = os.environ.get("VAULTOPS_CAPTURE_DIR")
    if not folder:
        return
    Path(folder, "console-upgrade-plan.txt").write_text(plan)
    for i, screen in enumerate(prompts, 1):
        Path(folder, f"console-upgrade-prompt-{i}.txt").write_text(screen)
    Path(folder, "console-upgrade-done.txt").write_text(final)
