"""End to end in a real terminal: `vaultops unseal` in tmux unseals a real sealed cluster.

Shares reach the terminal the way a keyholder pastes them: through a tmux
paste buffer loaded from stdin (never argv), into the hidden input.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ceremony_helpers import keyholder_share, statuses

from vaultops.testing.tmux import Tmux
from vaultops.testing.sandbox import Sandbox

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / "tmux.sock", target="cer")
    yield t
    t.kill()


def test_unseal_in_a_real_terminal(sealed3: Sandbox, tmux: Tmux, tmp_path: Path) -> None:
    done = tmp_path / "exit-code"
    cmd = (f"cd {shlex.quote(str(tmp_path))} && VAULTOPS_CONFIG={shlex.quote(str(sealed3.config_path))} "
           f"HOME={shlex.quote(os.environ['HOME'])} {shlex.quote(sys.executable)} -m vaultops unseal; "
           f"echo $? > {shlex.quote(str(done))}; sleep 30")
    tmux("new-session", "-d", "-s", "cer", "-x", "150", "-y", "45", cmd)
    tmux.wait("Keyholders")
    tmux.wait("needs 3 more shares")
    for i, name in enumerate(("alice", "bob", "carol")):
        tmux("send-keys", "-t", "cer", "Enter")
        tmux.wait(f"Share of {name} (hidden input)")
        share = keyholder_share(sealed3, name)
        tmux.paste(share)
        shown = tmux.wait("44 characters")
        assert share not in shown and share[:12] not in shown
        tmux("send-keys", "-t", "cer", "Enter")
        tmux.wait(f"keyholder {name} submitted share #")
        tmux("send-keys", "-t", "cer", "Down")
    shown = tmux.wait("every node is unsealed")
    capture("unsealed", shown)
    assert all(not st.sealed for st in statuses(sealed3).values())
    for name in ("alice", "bob", "carol"):
        assert keyholder_share(sealed3, name)[:12] not in shown
    tmux("send-keys", "-t", "cer", "q")
    deadline = time.monotonic() + 20
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.read_text().strip() == "0"


def test_ctrl_c_asks_while_shares_are_in_flight_then_exits_130(sealed3: Sandbox, tmux: Tmux, tmp_path: Path) -> None:
    """Issue 15: Ctrl-C in the ceremony asks before leaving while shares are in flight; y exits 130 (README).
    With VAULTOPS_CAPTURE_DIR set, the screens are saved there as text (the closing note's capture)."""
    done = tmp_path / "exit-code"
    cmd = (f"cd {shlex.quote(str(tmp_path))} && VAULTOPS_CONFIG={shlex.quote(str(sealed3.config_path))} "
           f"HOME={shlex.quote(os.environ['HOME'])} {shlex.quote(sys.executable)} -m vaultops unseal; "
           f"echo $? > {shlex.quote(str(done))}; sleep 30")
    tmux("new-session", "-d", "-s", "cer", "-x", "80", "-y", "24", cmd)   # the smallest terminal we support
    capture("waiting", tmux.wait("needs 3 more shares"))
    tmux("send-keys", "-t", "cer", "Enter")
    tmux.wait("Share of alice (hidden input)")
    tmux.paste(keyholder_share(sealed3, "alice"))
    tmux("send-keys", "-t", "cer", "Enter")
    shown = tmux.wait("keyholder alice submitted share #1")
    assert keyholder_share(sealed3, "alice")[:12] not in shown
    capture("one-share-in", tmux.wait("counted: alice"))
    tmux("send-keys", "-t", "cer", "C-c")
    asked = tmux.wait("Leave the ceremony?")
    capture("ctrl-c", asked)
    said = " ".join(line.split("││")[1].strip("│ ") for line in asked.splitlines() if "││" in line)  # the share pane
    assert "In flight: node1 1/3, node2 1/3, node3 1/3." in said and "zeroed if you leave: alice." in said
    tmux("send-keys", "-t", "cer", "n")
    tmux.wait("staying in the ceremony")
    assert not done.exists()
    tmux("send-keys", "-t", "cer", "C-c")
    tmux.wait("Leave the ceremony?")
    tmux("send-keys", "-t", "cer", "y")
    deadline = time.monotonic() + 20
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.read_text().strip() == "130"
    assert "vaultops: interrupted" in tmux.screen()
    assert [st.progress for st in statuses(sealed3).values()] == [1, 1, 1]  # what was sent stays on the nodes


def capture(name: str, screen: str) -> None:
    folder = os.environ.get("VAULTOPS_CAPTURE_DIR")
    if folder:
        Path(folder, f"ceremony-{name}.txt").write_text(screen)
