"""End to end in a real terminal: `vaultops tui` in tmux at 80x24 unseals a sealed 3-node cluster, takes a
backup, quits.

Shares reach the hidden input the way a keyholder pastes them: through a tmux
paste buffer loaded from stdin (never argv). A fresh raft cluster needs three
shares for node1, then three again for the followers once they have joined: the
console keeps each share it took for this ceremony and re-sends it to the joiners
(services/ceremony/resend.py), so each keyholder types once and every node unseals.
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
import yaml

from vaultops.errors import VaultOpsError
from vaultops.testing.tmux import Tmux
from vaultops.testing.sandbox import Sandbox

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]
F1, F2, F3 = "F1", "F2", "F3"


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / "tmux.sock", target="con")
    yield t
    t.kill()


def console_config(box: Sandbox, folder: Path) -> Path:
    """The sandbox's vaultops.yaml plus a local-directory backup sink."""
    doc = yaml.safe_load(box.config_path.read_text())
    doc["backup"] = {"sinks": [{"type": "local", "path": str(folder / "backups")}]}
    path = folder / "vaultops.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def submit_round(tmux: Tmux, box: Sandbox, names: tuple[str, ...]) -> None:
    """Each keyholder in turn. The last share unseals node1, the followers join and get the kept shares at
    once, so the last name may go from `counted` to `re-sending` or `submitted` before a capture sees it."""
    for name in names:
        tmux.keys("Enter")
        tmux.wait(f"Share of {name} (hidden input)")
        share = str(box.secrets["keyholders"][name])
        tmux.paste(share)
        shown = tmux.wait("44 characters")
        assert share not in shown and share[:12] not in shown
        tmux.keys("Enter")
        marks = "counted|re-sending|submitted" if name == names[-1] else "counted"
        wait_any(tmux, [rf"> {name} +({marks})"])  # the keyholder list marks it (names aligned; the log may be cut)
        tmux.keys("Down")


def wait_any(tmux: Tmux, patterns: list[str], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(re.search(p, tmux.screen()) for p in patterns):
        assert time.monotonic() < deadline, f"none of {patterns} appeared; screen:\n{tmux.screen()}"
        time.sleep(0.1)


def test_console_unseals_backs_up_and_quits(console_box: Sandbox, tmux: Tmux, tmp_path: Path) -> None:
    config = console_config(console_box, tmp_path)
    done = tmp_path / "exit-code"
    env = f"VAULTOPS_STATE_DIR={shlex.quote(str(tmp_path / 'state'))} HOME={shlex.quote(os.environ['HOME'])}"
    cmd = (f"cd {shlex.quote(str(tmp_path))} && {env} {shlex.quote(sys.executable)} -m vaultops "
           f"--config {shlex.quote(str(config))} tui; echo $? > {shlex.quote(str(done))}; sleep 30")
    tmux("new-session", "-d", "-s", "con", "-x", "80", "-y", "24", cmd)
    shown = tmux.wait("[F6] Journal")
    tmux.wait("sealed 0/3")  # node1 on the dashboard
    assert "uninit" in tmux.screen()  # followers have not joined yet

    tmux.keys(F2)
    tmux.wait("needs 3 more shares")
    names = ("alice", "bob", "carol")
    submit_round(tmux, console_box, names)
    tmux.wait("every node is unsealed", timeout=60)  # the followers joined and got the kept shares
    assert "must submit again" not in tmux.screen()

    tmux.keys(F1)
    tmux.wait("standby")
    tmux.keys(F3)
    tmux.wait("sinks: local:")
    tmux.keys("b")
    tmux.wait("Take a backup now")
    tmux.keys("y")
    shown = tmux.wait("verified and published", timeout=60)
    for name in names:
        assert str(console_box.secrets["keyholders"][name])[:12] not in shown
    tmux.keys("C-q")
    deadline = time.monotonic() + 20
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.read_text().strip() == "0"

    sealed = {}
    for client in console_box.clients(token=False):
        try:
            sealed[client.name] = client.seal.status().sealed
        except VaultOpsError as exc:
            sealed[client.name] = str(exc)
    assert sealed == {"node1": False, "node2": False, "node3": False}
    backups = sorted((tmp_path / "backups").iterdir())
    data = [p for p in backups if p.name.endswith(".snap")]
    assert len(data) == 1 and data[0].stat().st_size > 0
    manifest = json.loads(Path(str(data[0]) + ".manifest.json").read_text())
    assert manifest["size"] == data[0].stat().st_size and manifest["source_node"] == "node1"
    entries = [json.loads(line) for line in (console_box.dir / "journal.jsonl").read_text().splitlines()]
    journal = [e["action"] for e in entries]
    assert "unseal.cluster-unsealed" in journal and "backup.run" in journal and journal[-1] == "unseal.finished"
    assert journal.count("unseal.share-submitted") == 3   # one entry per keyholder: the joiners got re-sends
    # Followers that join at different moments get their re-sends in separate entries: each keyholder's
    # share goes to each joiner once.
    resent = [(e["details"]["keyholder"], node) for e in entries if e["action"] == "unseal.share-resent"
              for node in e["details"]["nodes"]]
    assert {who for who, _ in resent} == set(names) and len(resent) == len(set(resent))
