"""End to end in a real terminal: `vaultops upgrade run --to 2.7.2` in tmux upgrades a live 3-node raft
cluster 2.6.2 -> 2.7.2; as each restarted node comes back sealed the run asks the keyholders here, they
paste their shares at the hidden prompt, and the run completes without anyone typing a second command.

Shares reach the terminal through a tmux paste buffer loaded from stdin (never argv), bare: the ceremony
finds each share's keyholder in the manifest and checks it before sending. Then: a plan to the version
now running has nothing to do (exit 0) while `run` still refuses it (exit 3).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from upgrade_helpers import FROM, TO, journal, run_subprocess, versions

from vaultops.runbook.state import RunStatus, load_state
from vaultops.services.upgrade.service import state_path
from vaultops.testing.sandbox import Sandbox
from vaultops.testing.tmux import Tmux

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]
PROMPT = re.compile(r"\[(node\d): 0/3 shares, waiting \d+:\d\d\] share \(hidden\):")
DONE = "UPGRADE-EXIT="


@pytest.fixture(scope="module")
def term_box(make_box):  # type: ignore[no-untyped-def]
    return make_box("upterm")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / "tmux.sock", target="up")
    yield t
    t.kill()


def _next_prompt(tmux: Tmux, seen: set[str], timeout: float = 240.0) -> str | None:
    """The node whose keyholder prompt is showing now (not one already served), or None once the run ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = tmux.screen()
        waiting = [n for n in PROMPT.findall(screen) if n not in seen]
        if waiting:
            return waiting[-1]
        if DONE in screen:
            return None
        time.sleep(0.2)
    raise AssertionError(f"no keyholder prompt and no end; screen:\n{tmux.screen()}")


def test_a_run_at_a_terminal_asks_the_keyholders_in_place_and_completes(term_box: Sandbox, tmux: Tmux,
                                                                        tmp_path: Path) -> None:
    box = term_box
    env = f"VAULTOPS_STATE_DIR={shlex.quote(os.environ['VAULTOPS_STATE_DIR'])} HOME={shlex.quote(os.environ['HOME'])}"
    cmd = (f"{env} {shlex.quote(sys.executable)} -m vaultops --config {shlex.quote(str(box.config_path))} "
           f"upgrade run --to {TO}; echo {DONE}$?; sleep 60")
    tmux("new-session", "-d", "-s", "up", "-x", "100", "-y", "40", cmd)
    shares = box.secrets["keyholders"]
    served: list[str] = []
    screens: list[str] = []
    while (node := _next_prompt(tmux, set(served))) is not None:
        screens.append(tmux.screen())
        assert f"{node} restarted on {TO} and is sealed: 3 of 5 keyholders must submit" in screens[-1]
        for i, name in enumerate(("alice", "bob", "carol")):
            tmux.wait(f"[{node}: {i}/3 shares")
            tmux.paste(str(shares[name]))
            tmux.wait("(44 characters)")
            tmux.keys("Enter")
            tmux.wait(f"keyholder {name} submitted share")
        tmux.wait(f"{node} is unsealed: the upgrade goes on")
        served.append(node)
    final = tmux.wait(DONE)
    screens.append(final)
    assert f"{DONE}0" in final, final
    assert sorted(served) == ["node1", "node2", "node3"] and served[-1] == "node1"   # the old active last
    assert set(versions(box).values()) == {TO}
    state = load_state(state_path(box.config, "upgrade"))
    assert state.status == RunStatus.DONE
    entries = journal(box)
    submitted = [e for e in entries if e["action"] == "unseal.share-submitted"]
    assert len(submitted) == 9 and all(e["details"].get("verified") for e in submitted)
    for share in map(str, shares.values()):         # never shown, never stored
        assert all(share not in s and share[:12] not in s for s in screens)
        assert share not in state_path(box.config, "upgrade").read_text()
        assert share not in (box.dir / "journal.jsonl").read_text()
    (tmp_path / "screens.txt").write_text("\n---\n".join(screens))

    plan = run_subprocess(box, "upgrade", "plan", "--to", TO)
    assert plan.returncode == 0 and f"every node already runs {TO}: nothing to do" in plan.stdout, plan.stderr
    again = run_subprocess(box, "upgrade", "run", "--to", TO, "--restart")
    assert again.returncode == 3 and f"every node already runs {TO}" in again.stderr


def test_without_a_terminal_the_run_pauses_naming_commands_that_exist(make_box, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    box = make_box("uppause")
    paused = run_subprocess(box, "upgrade", "run", "--to", TO)
    assert paused.returncode == 8, paused.stderr
    line = next(line for line in paused.stderr.splitlines() if line.startswith("vaultops: error:"))
    assert "is sealed: 3 of 5 keyholders must submit" in line
    assert "`vaultops unseal`" in line and "`vaultops upgrade resume`" in line and "--node" not in line
    node = re.search(r"(node\d) restarted", line)
    assert node is not None
    versions_now = versions_or_sealed(box)
    assert versions_now[node.group(1)] == "sealed" and FROM in versions_now.values()


def versions_or_sealed(box: Sandbox) -> dict[str, str]:
    out = {}
    for c in box.clients(token=False):
        st = c.seal.status()
        out[c.name] = "sealed" if st.sealed else st.version
    return out
