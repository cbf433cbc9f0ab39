"""Every path of the console, end to end in a real terminal (tmux, 80x24), against one real sandbox.

One module sandbox -- 3 OpenBao raft nodes serving certificates from a local ACME server (Pebble,
DNS-01 through BIND) -- is shared by the screens, in the order an operator's day would use them:
unseal after an outage, back up now and drill, generate a root token, rekey, renew the
certificates, read the journal. The rekey comes after everything that needs the original shares.
The upgrade screen has its own test (test_console_upgrade.py: it needs a cluster on the old
version). Shares reach hidden inputs the way a keyholder pastes them: a tmux paste buffer loaded
from stdin, never argv; the tests check no secret is left on the screen or in the journal.
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
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from vaultops.cli import main
from vaultops.errors import VaultOpsError
from vaultops.testing.acme_env import AcmeTestBed, Zone, have_tools
from vaultops.testing.sandbox import Sandbox, start_sandbox
from vaultops.testing.tmux import Tmux

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]
KEYHOLDERS = ("alice", "bob", "carol")
SENTINEL = "secret/data/console-sentinel"
B64_SHARE = re.compile(r"^\s+([A-Za-z0-9+/]{43}=?|[A-Za-z0-9+/]{44})\s*$", re.M)
TOKEN = re.compile(r"^\s+(s\.[A-Za-z0-9]{20,})\s*$", re.M)


@dataclass
class World:
    box: Sandbox
    config: Path
    folder: Path
    shares: dict[str, str]                 # each keyholder's current share (the rekey changes them)
    acme: bool
    secrets: list[str] = field(default_factory=list)   # every secret that must never be shown after its moment


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("screens")
    bed = AcmeTestBed(folder / "acme", zones=[Zone("vaultops.test", hosts=["node1", "node2", "node3"])]).start() \
        if have_tools() else None
    try:
        acme = None
        if bed is not None:
            acme = folder / "acme.yaml"
            acme.write_text(yaml.safe_dump({"acme": {"directory": bed.directory_url, "ca_bundle": bed.pebble_ca_file,
                                                     "roots_url": bed.roots_url},
                                            "dns_provider": bed.dns_provider_settings()}))
        box = start_sandbox(folder / "sb", name="screens", nodes=3, tls=bed is not None,
                            acme_config=str(acme) if acme else None, raft_healthy=True)
        try:
            _write_sentinel(box)
            yield World(box, _console_config(box, folder), folder, dict(list(box.secrets["keyholders"].items())[:3]),
                        acme=bed is not None, secrets=[*box.shares_b64, box.root_token])
        finally:
            box.stop()
    finally:
        if bed is not None:
            bed.stop()


def _write_sentinel(box: Sandbox) -> None:
    from vaultops.vault.cluster import active

    client = active(box.clients()).client
    client.write("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
    deadline = time.monotonic() + 20
    while True:  # kv-v2 answers 400 'upgrade' for about a second after it is mounted
        try:
            client.write(SENTINEL, {"data": {"value": "present"}})
            return
        except VaultOpsError:
            assert time.monotonic() < deadline
            time.sleep(0.3)


def _console_config(box: Sandbox, folder: Path) -> Path:
    """The sandbox's vaultops.yaml plus a local backup sink and a drill sentinel."""
    doc = yaml.safe_load(box.config_path.read_text())
    doc["backup"] = {"sinks": [{"type": "local", "path": str(folder / "backups")}],
                     "drill": {"sentinels": [SENTINEL]},
                     "lock_file": str(folder / "backup.lock"), "state_file": str(folder / "backup-last.json")}
    path = folder / "vaultops.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Console:
    """`vaultops tui` in tmux; `done` holds its exit code once it has quit."""

    def __init__(self, world: World, tmp_path: Path) -> None:
        self.tmux = Tmux(tmp_path / "tmux.sock", target="con")
        self.done = tmp_path / "exit-code"
        env = (f"VAULTOPS_STATE_DIR={shlex.quote(str(world.folder / 'state'))} "
               f"HOME={shlex.quote(os.environ['HOME'])}")
        cmd = (f"cd {shlex.quote(str(tmp_path))} && {env} {shlex.quote(sys.executable)} -m vaultops "
               f"--config {shlex.quote(str(world.config))} tui; echo $? > {shlex.quote(str(self.done))}; sleep 60")
        self.tmux("new-session", "-d", "-s", "con", "-x", "80", "-y", "24", cmd)
        self.tmux.wait("[F6] Journal")

    def paste(self, text: str) -> None:
        self.tmux.paste(text)

    def quit(self) -> None:
        self.tmux.keys("C-q")
        deadline = time.monotonic() + 20
        while not self.done.exists():
            assert time.monotonic() < deadline, self.tmux.screen()
            time.sleep(0.1)
        assert self.done.read_text().strip() == "0"


@pytest.fixture
def console(world: World, tmp_path: Path) -> Iterator[Console]:
    con = Console(world, tmp_path)
    yield con
    con.tmux.kill()


def journal(world: World) -> list[dict]:
    return [json.loads(line) for line in (world.box.dir / "journal.jsonl").read_text().splitlines() if line.strip()]


def wait_until(check, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def wait_joined(tmux: Tmux, text: str, timeout: float = 40.0) -> str:
    """Like Tmux.wait, for a message the screen may have wrapped over two lines."""
    deadline = time.monotonic() + timeout
    while True:
        shown = tmux.screen()
        if text in shown.replace("\n", ""):
            return shown
        assert time.monotonic() < deadline, f"{text!r} never appeared; screen:\n{shown}"
        time.sleep(0.1)


def board_shares(console: Console, shares: dict[str, str], names: tuple[str, ...]) -> None:
    """On the rekey / generate-root board: each keyholder in turn (the board selects the next one)."""
    for i, name in enumerate(names, 1):
        console.tmux.wait(f"keyholder: [{name}]")
        console.paste(shares[name])
        console.tmux.keys("Enter")
        if i < len(names):
            console.tmux.wait(f"accepted ({i}/{len(names)})")


def sealed_map(box: Sandbox) -> dict[str, object]:
    out: dict[str, object] = {}
    for client in box.clients(token=False):
        try:
            out[client.name] = client.seal.status().sealed
        except VaultOpsError as exc:
            out[client.name] = str(exc)
    return out


# -- F2: unseal ----------------------------------------------------------------------------------------


def test_unseal_screen_after_an_outage_one_share_per_keyholder(world: World, console: Console) -> None:
    world.box.restart_sealed()  # every node killed and restarted: sealed, all joined before
    t = console.tmux
    t.keys("F2")
    t.wait("needs 3 more shares")
    for name in KEYHOLDERS:
        t.keys("Enter")
        t.wait(f"Share of {name} (hidden input)")
        console.paste(world.shares[name])
        shown = t.wait("44 characters")
        assert world.shares[name] not in shown and world.shares[name][:12] not in shown
        t.keys("Enter")
        # the last share unseals every node at once: the list may go straight to "unsealed"
        wait_until(lambda: f"> {name}  submitted" in (shown := t.screen()) or "every node is unsealed" in shown,
                   f"{name}'s share was not taken:\n{t.screen()}", timeout=40)
        t.keys("Down")
    t.wait("every node is unsealed", timeout=60)
    console.quit()
    assert sealed_map(world.box) == {"node1": False, "node2": False, "node3": False}
    submitted = [e for e in journal(world) if e["action"] == "unseal.share-submitted"]
    assert sorted(e["details"]["keyholder"] for e in submitted[-3:]) == sorted(KEYHOLDERS)
    world.box.wait_active(timeout=90)


# -- F3: backup now, restore drill ---------------------------------------------------------------------


def test_backup_screen_backs_up_now_then_drills_with_checked_shares(world: World, console: Console) -> None:
    t = console.tmux
    t.keys("F3")
    t.wait("sinks: local:")
    t.keys("b")
    t.wait("Take a backup now")
    t.keys("y")
    t.wait("verified and published", timeout=60)

    # A share under the wrong name is refused before anything is restored.
    t.keys("d")
    t.wait("Run a restore drill")
    t.keys("y")
    t.wait("0 shares held in memory")
    for name, text in (("alice", f"alice: {world.shares['carol']}"), ("bob", world.shares["bob"])):
        console.paste(text)
        t.keys("Enter")
    t.wait("2 shares held in memory")
    started = time.monotonic()
    t.keys("Enter")
    wait_joined(t, "belongs to keyholder carol, not to alice", timeout=20)  # the check's message
    wait_joined(t, "nothing was restored")
    assert time.monotonic() - started < 10
    assert not [e for e in journal(world) if e["action"] == "backup.drill"]

    # The format `unseal --share-stdin` documents ('NAME: share') and bare shares, checked, then restored.
    t.keys("d")
    t.wait("Run a restore drill")
    t.keys("y")
    t.wait("0 shares held in memory")
    for text in (f"alice: {world.shares['alice']}", world.shares["bob"], f"carol:{world.shares['carol']}"):
        console.paste(text)
        t.keys("Enter")
    t.wait("3 shares held in memory")
    t.keys("Enter")
    shown = t.wait("drill PASSED", timeout=120)
    assert not any(s[:12] in shown for s in world.secrets)
    console.quit()
    drills = [e for e in journal(world) if e["action"] == "backup.drill"]
    assert len(drills) == 1 and drills[0]["outcome"] == "ok"
    assert drills[0]["details"]["checked"] and drills[0]["details"]["keyholders"] == list(KEYHOLDERS)
    assert drills[0]["details"]["sentinels"] == {SENTINEL: "ok"}


# -- F1 g: generate-root -------------------------------------------------------------------------------


def test_generate_root_from_the_dashboard_shows_a_working_token_once(world: World, console: Console) -> None:
    t = console.tmux
    t.keys("g")
    t.wait("Open the generate-root ceremony?")
    t.keys("y")
    t.wait("keyholders enter their shares", timeout=30)
    board_shares(console, world.shares, KEYHOLDERS)
    t.wait("Hand the screen to the operator ONLY", timeout=30)
    t.keys("Enter")
    shown = t.wait("your new root token (shown once)")
    token = TOKEN.search(shown).group(1)  # type: ignore[union-attr]
    world.secrets.append(token)
    t.keys("Enter")
    hidden = t.wait("root token generated and shown once")
    assert token not in hidden
    t.keys("C-q")
    back = t.wait("[F6] Journal")  # back in the console
    assert token not in back
    console.quit()

    client = world.box.clients(token=False)[0]
    client.token = token
    assert "root" in client.read("auth/token/lookup-self")["data"]["policies"]
    client.write("auth/token/revoke-self", {})
    entries = journal(world)
    assert [e["action"] for e in entries if e["action"].startswith("generate_root.")][-1] == "generate_root.completed"
    assert token not in (world.box.dir / "journal.jsonl").read_text()


# -- F1 k: rekey ---------------------------------------------------------------------------------------


def test_rekey_from_the_dashboard_hands_out_and_verifies_new_shares(world: World, console: Console) -> None:
    t = console.tmux
    t.keys("k")
    t.wait("Open the rekey ceremony?")
    t.keys("y")
    t.wait("no rekey in progress: start one", timeout=30)  # it crashed before (no --manifest on `rekey`)
    # started from another terminal while the screen is open: the screen follows it
    assert main(["--config", str(world.config), "rekey", "start", "--shares", "3", "--threshold", "2",
                 *[a for n in KEYHOLDERS for a in ("--keyholder", n)]]) == 0
    t.wait("CURRENT keyholders: enter your share", timeout=10)
    board_shares(console, world.shares, KEYHOLDERS)
    new: dict[str, str] = {}
    for name in KEYHOLDERS:  # each keyholder in turn, alone at the screen
        t.wait(f"Hand the screen to {name} ONLY", timeout=30)
        t.keys("Enter")
        shown = t.wait(f"{name}, your new share (shown once)")
        new[name] = B64_SHARE.search(shown).group(1)  # type: ignore[union-attr]
        t.keys("Enter")
    t.wait("NEW keyholders: enter your new share to verify it")
    assert not any(s in t.screen() for s in new.values())
    for name in KEYHOLDERS[:2]:
        t.wait(f"keyholder: [{name}]")
        console.paste(new[name])
        t.keys("Enter")
    t.wait("rekey complete", timeout=30)
    t.keys("C-q")
    t.wait("[F6] Journal")
    console.quit()

    from vaultops.vault.cluster import active
    leader = active(world.box.clients()).client
    status = leader.seal.status()
    assert (status.t, status.n) == (2, 3), leader.name
    # Only the active node: measured here, a standby's own sys/seal-status still says 3/5 20 s after the
    # rekey (it reads the seal configuration again only when it restarts or becomes active).
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.services.ceremony.shares import decode
    manifest = Manifest.load(world.box.dir / "keyholders.yaml")
    assert manifest.threshold == 2 and all(manifest.check(n, decode(s)).ok for n, s in new.items())
    world.shares = new
    world.secrets += list(new.values())
    log = (world.box.dir / "journal.jsonl").read_text()
    assert not any(s in log for s in new.values())


# -- F5: TLS renew -------------------------------------------------------------------------------------


def test_tls_screen_renews_every_certificate_and_journals_it(world: World, console: Console) -> None:
    if not world.acme:
        pytest.skip("pebble/named not installed: the sandbox has no ACME-issued certificates to renew")
    from vaultops.services.tls.inspect import verify_served

    cfg = yaml.safe_load(world.config.read_text())
    ports = {n["name"]: int(n["address"].rsplit(":", 1)[1]) for n in cfg["nodes"]}

    def served() -> dict[str, str]:
        return {n: verify_served("127.0.0.1", p, f"{n}.vaultops.test", cfg["cluster"]["ca_cert"]).fingerprint
                for n, p in ports.items()}
    before = served()
    t = console.tmux
    t.keys("F5")
    t.wait("SERVED")
    wait_until(lambda: re.search(r"node3 +\d+d", t.screen()), "the certificate table")
    t.keys("f")
    t.wait("Renew the certificates of every node")
    t.keys("y")
    for node in ports:
        t.wait(f"{node}: renewed forced", timeout=90)
    console.quit()
    after = served()
    assert all(after[n] != before[n] for n in ports), (before, after)
    renewed = [e for e in journal(world) if e["action"] == "tls.renew"]
    assert sorted(e["node"] for e in renewed) == sorted(ports) and all(e["outcome"] == "ok" for e in renewed)
    assert sealed_map(world.box) == {"node1": False, "node2": False, "node3": False}  # a reload, not a restart


# -- F6: journal ---------------------------------------------------------------------------------------


def test_journal_screen_shows_this_days_work_and_verifies_the_chain(world: World, console: Console) -> None:
    t = console.tmux
    t.keys("F6")
    t.wait("tls.renew" if world.acme else "rekey.completed")  # read again when the screen is opened
    t.keys("v")
    t.wait("chain intact")
    seen = t.screen()
    for _ in range(60):  # scroll back through the day
        t.keys("Up")
        time.sleep(0.05)
        seen += t.screen()
    for action in ("unseal.share-submitted", "backup.run", "backup.drill", "generate_root.completed",
                   "rekey.completed"):
        assert action in seen, action
    assert not any(s[:12] in seen for s in world.secrets)
    console.quit()
