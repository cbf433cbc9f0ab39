"""Keyholder lifecycle on a real 3-node raft sandbox, in order:

drills (right and wrong shares) -> rekey 5/3 -> 3/2 (bob, dave, erin leave, frank joins) with a wrong
share refused on the way -> restart of EVERY node, old shares refused locally and by the server, unseal
with the new shares only -> generate-root with the new shares, --revoke-after -> secret-hygiene scan.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from rekey_helpers import share_forms, share_lines

from vaultops.errors import VaultError
from vaultops.journal import Journal
from vaultops.services.ceremony import root as gr
from vaultops.services.ceremony.manifest import Manifest
from vaultops.testing.sandbox import Sandbox
from vaultops.vault import NodeClient

pytestmark = pytest.mark.integration

SEEN: dict[str, Any] = {"secrets": [], "files": []}  # what the hygiene scan looks for / may skip
NEW = ("alice", "carol", "frank")


def journal(box: Sandbox) -> list[dict[str, Any]]:
    return list(Journal(box.config.journal_path).entries())


def test_drills_right_and_wrong(lifecycle_box: Sandbox, cli: Any) -> None:
    box = lifecycle_box
    SEEN["secrets"] += [f for k in box.shares_b64 for f in share_forms(k)] + [box.root_token]
    keys = box.secrets["keyholders"]
    for name in ("alice", "bob", "carol"):
        code, out, _ = cli(box, "keyholders", "drill", "--keyholder", name, stdin=keys[name] + "\n")
        assert code == 0 and "drill passed" in out
    code, out, _ = cli(box, "keyholders", "drill", "--keyholder", "dave", stdin=keys["erin"] + "\n")
    assert code == 3 and "belongs to keyholder erin" in out
    code, out, _ = cli(box, "keyholders", "check")
    assert code == 0 and out.startswith("ready: 3 keyholder(s)")
    assert "dave             failed" in out
    drills = [e for e in journal(box) if e["action"] == "keyholder.drill"]
    assert [(e["details"]["keyholder"], e["details"]["result"]) for e in drills] == [
        ("alice", "pass"), ("bob", "pass"), ("carol", "pass"), ("dave", "fail")]


def test_rekey_5of3_to_3of2(lifecycle_box: Sandbox, cli: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    box = lifecycle_box
    out_dir = tmp_path_factory.mktemp("new-shares")
    files = {n: out_dir / f"{n}.share" for n in NEW}
    SEEN["files"] += list(files.values())
    code, out, err = cli(box, "rekey", "start", "--shares", "3", "--threshold", "2",
                         *[a for n in NEW for a in ("--keyholder", n)])
    assert code == 0, err
    assert "via sys/rotate/root" in out and "leaving: bob, dave, erin" in out and "joining: frank" in out
    file_args = [a for n, p in files.items() for a in ("--share-file", f"{n}={p}")]
    # carol, then bob's share claimed by alice (refused, nothing sent), then alice and dave.
    wrong = share_lines(box, "bob").replace("bob:", "alice:")
    code, out, err = cli(box, "rekey", "submit", "--share-stdin", "--codec", "mnemonic", *file_args,
                         stdin=share_lines(box, "carol") + wrong)
    assert code == 3 and "carol: share" in out and "(1/3)" in out and "belongs to keyholder bob" in err
    code, out, err = cli(box, "rekey", "status", "--format", "json")
    assert json.loads(out)["progress"] == 1  # the refused share never reached the server
    code, out, err = cli(box, "rekey", "submit", "--share-stdin", "--codec", "mnemonic", *file_args,
                         stdin=share_lines(box, "alice", "dave"))
    assert code == 0, err
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().split()) == 35
        SEEN["secrets"] += share_forms(path.read_text())
    assert Manifest.load(box.dir / "keyholders.yaml").threshold == 3  # not rewritten before verification
    # verification: an OLD share is refused locally; then two of the new keyholders prove theirs.
    code, out, err = cli(box, "rekey", "verify", "--share-stdin",
                         stdin=box.shares_b64[4] + "\n" + files["frank"].read_text() + "alice: "
                         + files["alice"].read_text())
    assert code == 0, err
    assert "matches no keyholder" in err and "rekey complete" in out
    m = Manifest.load(box.dir / "keyholders.yaml")
    assert (m.threshold, m.shares, [k.name for k in m.keyholders]) == (2, 3, list(NEW))
    assert list((box.dir / "keyholders.history").glob("*.yaml"))
    assert not (box.dir / "keyholders.rekey-pending.yaml").exists()
    done = next(e for e in journal(box) if e["action"] == "rekey.completed")["details"]
    assert (done["left"], done["joined"], done["old"], done["new"]) == (["bob", "dave", "erin"], ["frank"],
                                                                        "3/5", "2/3")
    st = box.clients()[0].seal.status()
    assert (st.t, st.n) == (2, 3)


def test_restart_every_node_and_unseal_with_new_shares_only(lifecycle_box: Sandbox, cli: Any) -> None:
    box = lifecycle_box
    drivers = box.drivers()
    for d in drivers.values():
        d.stop(timeout=15)
    for d in drivers.values():
        d.start()
    clients = box.clients(token=False)
    _wait(lambda: all(_status(c) is not None for c in clients))
    # old shares: refused locally by the manifest ...
    code, _, err = cli(box, "unseal", "--share-stdin", "--timeout", "3",
                       stdin="".join(k + "\n" for k in box.shares_b64[:3]))
    assert code == 3 and err.count("matches no keyholder") == 3
    assert all(_status(c).progress == 0 for c in clients)
    # ... and by the server, sent directly (2 = the new threshold)
    node = clients[0]
    node.seal.unseal(box.shares_b64[0])
    with pytest.raises(VaultError) as exc:
        node.seal.unseal(box.shares_b64[1])
    assert exc.value.status == 400 and node.seal.status().sealed
    files = SEEN["files"]
    code, out, err = cli(box, "unseal", "--share-stdin", "--timeout", "30",
                         stdin="".join(p.read_text() for p in files[1:]))
    assert code == 0, err
    assert "every node is unsealed" in out
    box.wait_active(timeout=20)
    assert all(not _status(c).sealed for c in clients)


def test_generate_root_token_works_and_is_revoked(lifecycle_box: Sandbox, cli: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    box = lifecycle_box
    otps: list[str] = []
    seen_working: list[tuple[str, ...]] = []
    real_otp, real_revoke = gr.make_otp, gr.RootCeremony.revoke

    def spy_otp(length: int) -> str:
        otps.append(real_otp(length))
        return otps[-1]

    def check_then_revoke(self: gr.RootCeremony, token: str) -> None:
        outside = NodeClient("check", self.client.address, token=token)  # an independent client
        seen_working.append(tuple(outside.token_lookup_self().get("policies") or ()))
        real_revoke(self, token)

    monkeypatch.setattr(gr, "make_otp", spy_otp)
    monkeypatch.setattr(gr.RootCeremony, "revoke", check_then_revoke)
    files = SEEN["files"]
    code, out, err = cli(box, "generate-root", "--share-stdin", "--revoke-after",
                         stdin="frank: " + files[2].read_text() + box.shares_b64[1] + "\n" + files[1].read_text())
    assert code == 0, err
    token = out.split("stored nowhere; policies: root):\n", 1)[1].split("\n", 1)[0]
    assert seen_working == [("root",)] and "was revoked" in out
    assert "matches no keyholder" in err  # bob's old share was refused on the way
    with pytest.raises(VaultError) as exc:
        NodeClient("check", box.client("node1").address, token=token).token_lookup_self()
    assert exc.value.status == 403
    SEEN["secrets"] += [token, *otps]
    actions = [e["action"] for e in journal(box) if e["action"].startswith("generate_root.")]
    assert actions[-1] == "generate_root.token_revoked" and "generate_root.completed" in actions


def test_second_rekey_through_the_screen(lifecycle_box: Sandbox, cli: Any) -> None:
    """The rekey TUI through pipe input: current shares, private hand-out, verification, done."""
    import threading

    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from vaultops.journal import journal_for
    from vaultops.services.ceremony import rekey
    from vaultops.services.ceremony.shares import decode
    from vaultops.tui.rekey_screen import RekeyDriver, make_app

    box = lifecycle_box
    assert cli(box, "rekey", "start", "--shares", "2", "--threshold", "2", "--keyholder", "carol",
               "--keyholder", "frank")[0] == 0
    cer = rekey.RekeyCeremony.open(box.clients(), box.dir / "keyholders.yaml", journal=journal_for(box.config))
    current = {p.stem: p.read_text().strip() for p in SEEN["files"]}
    revealed: dict[str, str] = {}
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        app, state = make_app(RekeyDriver(cer))

        def feed() -> None:
            _wait(lambda: state.board is not None and state.name == "alice")
            inp.send_text("\t")  # alice -> carol
            for name in ("carol", "frank"):
                _wait(lambda: state.name == name and not state.busy)
                inp.send_text(current[name] + "\r")
            for _ in range(2):
                _wait(lambda: bool(state.reveal) and not state.revealed)
                inp.send_text("\r")
                _wait(lambda: state.revealed)
                revealed[state.reveal[0][0]] = state.reveal[0][1]
                inp.send_text("\r")
            sent: list[str] = []
            for _ in range(2):  # whoever is selected enters their new share
                _wait(lambda: not state.busy and state.name in revealed and state.name not in sent)
                sent.append(str(state.name))
                inp.send_text(revealed[sent[-1]] + "\r")
            _wait(lambda: state.board is not None and state.board.done, timeout=30)

        def script() -> None:
            try:
                feed()
            except AssertionError as exc:
                failures.append(f"{exc}: board={state.board} messages={state.messages}")
            finally:
                inp.send_text("\x11")

        failures: list[str] = []
        threading.Thread(target=script, daemon=True).start()
        app.run()
    assert not failures, failures[0]
    SEEN["secrets"] += [f for text in revealed.values() for f in share_forms(text)]
    m = Manifest.load(box.dir / "keyholders.yaml")
    assert (m.threshold, [k.name for k in m.keyholders]) == (2, ["carol", "frank"])
    assert all(m.check(n, decode(t)).ok for n, t in revealed.items())
    assert "rekey complete" in " ".join(msg for _, msg in state.messages)
    st = cer.client.seal.status()  # the active node (a standby may report the old n for a while)
    assert (st.t, st.n) == (2, 2)


def test_secret_hygiene(lifecycle_box: Sandbox) -> None:
    box = lifecycle_box
    secrets = [s for s in SEEN["secrets"] if s]
    assert len(secrets) > 20
    allowed = {box.secrets_path, *SEEN["files"]}
    scanned = 0
    for root in (box.dir, Path(os.environ["HOME"])):
        for path in root.rglob("*"):
            if not path.is_file() or path in allowed or "data" in path.relative_to(root).parts:
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
            scanned += 1
            for s in secrets:
                assert s not in text, f"secret material in {path}"
    assert scanned >= 8  # journal, manifest, history, config, node logs and configs ...
    for drv in box.drivers().values():
        pid = drv.pid()
        assert pid is not None
        for part in ("cmdline", "environ"):
            blob = Path(f"/proc/{pid}/{part}").read_bytes().decode("utf-8", errors="replace")
            for s in secrets:
                assert s not in blob, f"secret material in bao {part}"


def _status(c: NodeClient) -> Any:
    try:
        return c.seal.status()
    except VaultError:
        return None


def _wait(cond: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")
