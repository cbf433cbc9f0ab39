"""An upgrade run at a terminal (cli/upgrade_terminal.py): hidden share input on a real pseudo-terminal,
and a pause message whose commands exist."""

from __future__ import annotations

import io
import os
import re
import shlex
import termios
import threading
from collections.abc import Iterator

import pytest

from vaultops.cli import build_parser
from vaultops.cli.upgrade_terminal import HiddenLine
from vaultops.errors import RunbookPaused
from vaultops.services.upgrade.unseal import KeyholderPause
from vaultops.testing.fake_vault import FakeVault

SHARE = b"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcdEF"


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def _read(pty: tuple[int, int], feed: bytes, *, ticks: list[bool] | None = None) -> tuple[bytearray | None, str]:
    """Type *feed* once the reader has turned echo off (at its first prompt)."""
    master, slave = pty
    out, answers, typed = io.StringIO(), iter(ticks or []), []

    def prompt(n: int) -> str:
        if not typed:
            typed.append(os.write(master, feed) if feed else 0)
        return f"share (hidden): {n}"
    line = HiddenLine(slave, out, interval=0.05).read(prompt, lambda: next(answers, True))
    return line, out.getvalue()


def test_a_share_is_read_without_echo_into_a_bytearray(pty: tuple[int, int]) -> None:
    master, slave = pty
    line, shown = _read(pty, SHARE + b"\r")
    assert isinstance(line, bytearray) and bytes(line) == SHARE
    assert SHARE.decode() not in shown and "share (hidden): 0" in shown
    assert termios.tcgetattr(slave)[3] & termios.ECHO, "echo is restored afterwards"
    echoed = os.read(master, 4096) if _readable(master) else b""
    assert SHARE not in echoed


def test_backspace_ctrl_u_and_arrow_keys_edit_the_hidden_line(pty: tuple[int, int]) -> None:
    line, _ = _read(pty, b"wrong\x15" + b"ab\x7fc\x1b[Dd\n")
    assert line == bytearray(b"acd")


def test_the_tick_stops_the_wait_and_the_prompt_is_redrawn(pty: tuple[int, int]) -> None:
    line, shown = _read(pty, b"", ticks=[True, True, False])
    assert line is None and shown.count("share (hidden): 0") >= 3


def test_end_of_input_is_none(pty: tuple[int, int]) -> None:
    assert _read(pty, b"\x04")[0] is None


def test_ctrl_c_interrupts_and_restores_the_terminal(pty: tuple[int, int]) -> None:
    _, slave = pty
    reader = HiddenLine(slave, io.StringIO(), interval=0.05)

    def tick() -> bool:
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        reader.read(lambda n: "", tick)
    assert termios.tcgetattr(slave)[3] & termios.ECHO


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0.1)[0])


def test_the_pause_names_commands_that_exist() -> None:
    """Defect 1: the pause said `vaultops unseal --node node2` (no such option, exit 2)."""
    vault = FakeVault(3)
    client = vault.client("node2")
    with pytest.raises(RunbookPaused) as info:
        KeyholderPause(["alice", "bob", "carol"]).unseal(client, node=client.name)
    commands = re.findall(r"`(vaultops [^`]+)`", info.value.hint or "")
    assert {"vaultops unseal", "vaultops upgrade resume"} <= set(commands)
    for command in commands:
        build_parser(shlex.split(command)[1:]).parse_args(shlex.split(command)[1:])   # SystemExit if not


def test_keyholders_unseal_a_restarted_node_at_the_terminal(pty: tuple[int, int]) -> None:
    """Three shares typed at the hidden prompt, each through the ceremony: the node unseals, the step returns."""
    import base64

    from vaultops.cli.upgrade_terminal import TerminalUnsealer
    from vaultops.services.ceremony.unseal import UnsealCeremony
    from vaultops.testing.fake_vault import make_shares

    master, slave = pty
    shares = make_shares()
    vault = FakeVault(3, shares=shares, threshold=3)
    client = vault.client("node2")
    lines = b"".join(base64.b64encode(s) + b"\n" for s in shares[:3])
    out = io.StringIO()
    typer = threading.Timer(0.3, lambda: os.write(master, lines))
    typer.start()
    try:
        unsealer = TerminalUnsealer(lambda c: UnsealCeremony([c]), keyholders=["alice", "bob", "carol"],
                                    timeout=20,
                                    reader=HiddenLine(slave, out, interval=0.05), out=out)
        evidence = unsealer.unseal(client, node="node2")
    finally:
        typer.join()
    assert not vault.node("node2").sealed and vault.node("node1").sealed
    text = out.getvalue()
    assert "node2 restarted on 2.7.2 and is sealed: 3 of 5 keyholders must submit" in text
    assert "[node2: 0/3 shares, waiting 0:00] share (hidden):" in text and "node2 is unsealed" in text
    assert all(base64.b64encode(s).decode() not in text for s in shares)
    assert evidence["version"] == "2.7.2" and "unsealed at the terminal" in evidence["summary"]


def test_a_node_unsealed_elsewhere_ends_the_wait(pty: tuple[int, int]) -> None:
    from vaultops.cli.upgrade_terminal import TerminalUnsealer
    from vaultops.services.ceremony.unseal import UnsealCeremony

    _, slave = pty
    vault = FakeVault(3, threshold=3)
    out = io.StringIO()
    threading.Timer(0.3, lambda: setattr(vault.node("node2"), "sealed", False)).start()
    unsealer = TerminalUnsealer(lambda c: UnsealCeremony([c]), keyholders=(), timeout=20,
                                reader=HiddenLine(slave, out, interval=0.05), out=out)
    assert unsealer.unseal(vault.client("node2"), node="node2")["keyholders"] == []


def test_out_of_time_pauses_the_run(pty: tuple[int, int]) -> None:
    from vaultops.cli.upgrade_terminal import TerminalUnsealer
    from vaultops.services.ceremony.unseal import UnsealCeremony

    _, slave = pty
    vault = FakeVault(3, threshold=3)
    out = io.StringIO()
    unsealer = TerminalUnsealer(lambda c: UnsealCeremony([c]), keyholders=(), timeout=0.3,
                                reader=HiddenLine(slave, out, interval=0.05), out=out)
    with pytest.raises(RunbookPaused, match="node2 is sealed and waits for its keyholders") as info:
        unsealer.unseal(vault.client("node2"), node="node2")
    assert "`vaultops unseal`" in (info.value.hint or "")
