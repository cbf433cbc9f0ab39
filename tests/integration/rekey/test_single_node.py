"""One-node sandbox, in order: a rekey cancelled halfway (while current shares are submitted, and after
the new shares were issued but before verification) leaves the old shares valid, proven by a restart and
an unseal; the generate-root screen driven through its input; the server's default that disables
sys/generate-root, explained."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from rekey_helpers import share_lines

from vaultops.errors import VaultError
from vaultops.journal import Journal
from vaultops.services.ceremony.manifest import Manifest
from vaultops.testing.sandbox import Sandbox

pytestmark = pytest.mark.integration


def test_cancelled_rekeys_leave_old_shares_valid(single_box: Sandbox, cli: Any,
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    box = single_box
    manifest_before = (box.dir / "keyholders.yaml").read_text()
    start = ("rekey", "start", "--shares", "2", "--threshold", "2", "--keyholder", "alice", "--keyholder", "zoe")
    # 1. cancelled while the current keyholders submit
    assert cli(box, *start)[0] == 0
    code, out, err = cli(box, *start)
    assert code == 2 and "already in progress" in err
    code, out, _ = cli(box, "rekey", "submit", "--share-stdin", "--share-file", "alice=/nonexistent/a",
                       "--share-file", "zoe=/nonexistent/z", stdin=share_lines(box, "bob"))
    assert code == 0 and "(1/3)" in out
    code, out, _ = cli(box, "rekey", "cancel")
    assert code == 2  # needs --yes without a terminal
    code, out, _ = cli(box, "rekey", "cancel", "--yes")
    assert code == 0 and "old shares stay valid" in out
    assert json.loads(cli(box, "rekey", "status", "--format", "json")[1])["started"] is False
    # 2. cancelled after the new shares were issued, before verification
    out_dir = tmp_path_factory.mktemp("cancelled-shares")
    files = {"alice": out_dir / "alice", "zoe": out_dir / "zoe"}
    assert cli(box, *start)[0] == 0
    code, out, err = cli(box, "rekey", "submit", "--share-stdin",
                         *[a for n, p in files.items() for a in ("--share-file", f"{n}={p}")],
                         stdin=share_lines(box, "alice", "carol", "erin"))
    assert code == 0, err
    assert all(p.exists() for p in files.values())
    assert (box.dir / "keyholders.rekey-pending.yaml").exists()
    assert cli(box, "rekey", "cancel", "--yes")[0] == 0
    assert not (box.dir / "keyholders.rekey-pending.yaml").exists()
    assert (box.dir / "keyholders.yaml").read_text() == manifest_before
    assert not (box.dir / "keyholders.history").exists()
    actions = [e["action"] for e in Journal(box.config.journal_path).entries()]
    assert actions.count("rekey.cancelled") == 2 and "rekey.completed" not in actions
    # the cluster still has the old 3/5 keys: restart, the issued-then-cancelled shares fail, old ones work
    (drv,) = box.drivers().values()
    drv.stop(timeout=15)
    drv.start()
    node = box.clients(token=False)[0]
    _wait_status(node)
    assert node.seal.status().t == 3
    node.seal.unseal(files["alice"].read_text().strip())
    node.seal.unseal(files["zoe"].read_text().strip())
    with pytest.raises(VaultError) as exc:
        node.seal.unseal(box.shares_b64[0])  # the threshold share: the combination is wrong
    assert exc.value.status == 400
    code, out, err = cli(box, "unseal", "--share-stdin", "--timeout", "60",
                         stdin=share_lines(box, "bob", "dave", "erin"))
    assert code == 0, err
    assert not node.seal.status().sealed
    box.wait_active(timeout=20)
    assert Manifest.load(box.dir / "keyholders.yaml").threshold == 3


def _wait_status(node: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            node.seal.status()
            return
        except VaultError:
            time.sleep(0.1)
    raise AssertionError("node did not come back")


def test_generate_root_screen(single_box: Sandbox) -> None:
    """The TUI through pipe input: a wrong share refused, three right ones, the token shown once, revoked."""
    import threading

    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from vaultops.journal import journal_for
    from vaultops.services.ceremony import root as gr
    from vaultops.tui.generate_root_screen import GenerateRootDriver
    from vaultops.tui.rekey_screen import make_app, render

    box = single_box
    keys = box.secrets["keyholders"]
    cer = gr.RootCeremony.open(box.clients(), box.dir / "keyholders.yaml", journal=journal_for(box.config))
    shown: list[str] = []
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        driver = GenerateRootDriver(cer, revoke_after=True)
        app, state = make_app(driver)

        def feed() -> None:
            _until(lambda: state.board is not None)
            inp.send_text(keys["bob"] + "\r")  # as alice: refused locally
            _until(lambda: any(level == "error" for level, _ in state.messages))
            for name in ("alice", "bob", "carol"):
                _until(lambda: state.name == name and not state.busy)
                inp.send_text(keys[name] + "\r")
            _until(lambda: bool(state.reveal))
            inp.send_text("\r")
            _until(lambda: state.revealed)
            shown.append("".join(t for _, t in render(state)))
            inp.send_text("\r")
            _until(lambda: not state.reveal)
            inp.send_text("\x11")

        threading.Thread(target=feed, daemon=True).start()
        app.run()
    assert "belongs to keyholder bob" in " ".join(m for _, m in state.messages)
    token = driver.token
    assert token and token in shown[0]
    assert cer.check_token(token).is_root
    assert driver.close() == ["the new root token was revoked"]
    with pytest.raises(VaultError):
        cer.check_token(token)
    assert token not in box.config.journal_path.read_text()


def _until(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_generate_root_disabled_by_server_config_is_explained(single_box: Sandbox, cli: Any) -> None:
    """OpenBao >= 2.5.3 default (no listener override): 405, and the error names the one-line fix."""
    box = single_box
    (drv,) = box.drivers().values()
    hcl = drv.config.read_text()
    line = "  disable_unauthed_generate_root_endpoints = false\n"
    assert line in hcl
    drv.stop(timeout=15)
    drv.config.write_text(hcl.replace(line, ""))
    try:
        drv.start()
        node = box.clients(token=False)[0]
        _wait_status(node)
        assert cli(box, "unseal", "--share-stdin", "--timeout", "60",
                   stdin=share_lines(box, "alice", "bob", "carol"))[0] == 0
        box.wait_active(timeout=20)
        code, out, err = cli(box, "generate-root", "--share-stdin", stdin=share_lines(box, "alice"))
        assert code == 4
        assert "sys/generate-root is disabled" in err
        assert "disable_unauthed_generate_root_endpoints = false" in err and "token create" in err
        code, out, err = cli(box, "rekey", "status", "--format", "json")  # sys/rotate/root is unaffected
        assert code == 0 and json.loads(out)["api"] == "sys/rotate/root"
    finally:
        drv.config.write_text(hcl)
