"""The unseal screen (issue 15): Ctrl-C asks while shares are in flight and exits 130, the layout does
not jump, the share input opens when the nodes answered, long messages wrap, a hidden screen asks nobody."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ceremony_fakes import b64, fake_cluster, make_manifest, make_shares
from pipe_driver import PipeDriver
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.layout import Window
from prompt_toolkit.output import DummyOutput

from vaultops.journal import Journal
from vaultops.services.ceremony.unseal import UnsealCeremony
from vaultops.tui import app as tui_app
from vaultops.tui.app import build_app
from vaultops.tui.state import UnsealStage
from vaultops.tui.unseal_layout import Columns, nodes_text
from vaultops.tui.unseal_screen import MESSAGE_ROWS, UnsealScreen

ENTER, CTRL_C, DOWN = "\r", "\x03", "\x1b[B"


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


@pytest.fixture
def raws() -> list[bytes]:
    return make_shares()


def make(raws: list[bytes], tmp_path: Path, **kwargs: Any) -> tuple[UnsealCeremony, list]:
    cluster = fake_cluster(raws, 3, **kwargs)
    return UnsealCeremony(cluster, manifest=make_manifest(raws), retry_for=0.05,
                          journal=Journal(tmp_path / "journal.jsonl", cluster="t")), cluster


def drive(pipe: PipeInput, screen: UnsealScreen, script: Any, *, quit_after: bool = False) -> None:
    app, _ = build_app([screen], title="t")
    d = PipeDriver(pipe)

    async def main() -> None:
        task = asyncio.ensure_future(app.run_async())
        await d.until(lambda: screen.state.snapshot is not None)
        await script(d)
        if quit_after:
            pipe.send_text("\x11")
        await asyncio.wait_for(task, 10)
    asyncio.run(main())


def test_ctrl_c_with_nothing_in_flight_leaves_at_once(pipe: PipeInput, raws: list[bytes], tmp_path: Path) -> None:
    cer, _ = make(raws, tmp_path)
    cer.start()
    screen = UnsealScreen(cer, refresh_interval=0.02)

    async def script(d: PipeDriver) -> None:
        await d.type(CTRL_C)
    drive(pipe, screen, script)
    assert screen.state.interrupted and screen.state.stage is UnsealStage.PICK


def test_ctrl_c_asks_while_shares_are_in_flight(pipe: PipeInput, raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path)
    cer.start()
    screen = UnsealScreen(cer, refresh_interval=0.02)
    seen: list[str] = []

    async def script(d: PipeDriver) -> None:
        await d.type(ENTER + b64(raws[0]) + ENTER)
        await d.until(lambda: screen.state.submissions == 1)
        await d.type(ENTER + "half a sha")              # typing the next share
        await d.type(CTRL_C)
        assert screen.state.stage is UnsealStage.CONFIRM_LEAVE and screen.share.text == ""
        seen.append("".join(t for _, t in screen._message_text()))
        await d.type("n")
        assert screen.state.stage is UnsealStage.PICK and not screen.state.interrupted
        await d.type(CTRL_C + "y")
    drive(pipe, screen, script)
    assert screen.state.interrupted
    said = " ".join(seen[0].split())
    assert said.startswith("Leave the ceremony? In flight: node1 1/3, node2 1/3, node3 1/3.")
    assert "zeroed if you leave: alice." in said and said.endswith("[y/n]")
    assert all(len(line) <= 200 - screen.names_width - 4 for line in seen[0].splitlines())
    assert len(cer.held) == 1  # the screen left; the command's finish() zeroes them (run_unseal)


def test_run_unseal_turns_ctrl_c_into_an_interrupt(pipe: PipeInput, raws: list[bytes], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The README promises exit 130: run_unseal raises KeyboardInterrupt after finishing the ceremony."""
    cer, _ = make(raws, tmp_path)
    monkeypatch.setattr("prompt_toolkit.application.Application.run",
                        lambda self, **kw: self.pre_run_callables and None)
    real = tui_app.SCREENS["unseal"]

    def interrupted(**kw: Any) -> Any:
        screen = real(**kw)
        screen.state.interrupted = True
        return screen
    monkeypatch.setitem(tui_app.SCREENS, "unseal", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tui_app.run_unseal(cer)
    assert [e["action"] for e in Journal(tmp_path / "journal.jsonl").entries()][-1] == "unseal.finished"


def test_the_node_table_keeps_its_columns(raws: list[bytes], tmp_path: Path) -> None:
    """Fixed widths: the columns stay where they are whatever the rows say."""
    cer, cluster = make(raws, tmp_path)
    cols = Columns.fixed([c.name for c in cluster], ["alice", "bob", "carol", "dave", "erin"])

    def starts() -> list[list[int]]:
        text = "".join(t for _, t in nodes_text(cer.refresh(), cols, 120))
        return [[i for i in range(1, len(line)) if line[i - 1] == " " and line[i] != " " and line[i - 2:i] == "  "]
                [:3] for line in text.splitlines()]
    before = starts()
    cluster[1].seal.unreachable = True
    cer.submit(b64(raws[0]), keyholder="alice")
    cer.submit(b64(raws[1]), keyholder="bob")
    after = starts()
    assert before[0] == after[0] and all(row == before[0] for row in before + after)
    lines = "".join(t for _, t in nodes_text(cer.snapshot(), cols, 60)).splitlines()
    assert all(len(line) <= 60 for line in lines) and any(line.endswith("…") for line in lines)


def test_panes_have_fixed_sizes_and_messages_wrap(pipe: PipeInput, raws: list[bytes], tmp_path: Path) -> None:
    cer, _ = make(raws, tmp_path)
    cer.start()
    screen = UnsealScreen(cer, refresh_interval=0.02)
    assert screen.names.width is not None
    width = screen.names.preferred_width(200)
    assert width is not None and width.preferred == width.max == width.min
    messages = [w for w in _windows(screen.container()) if w.height is not None and w.wrap_lines()
                and w.preferred_height(60, 40).preferred == MESSAGE_ROWS]
    assert messages, "the message window wraps, with a fixed height"


def test_the_share_input_opens_when_the_nodes_answered(pipe: PipeInput, raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path)
    screen = UnsealScreen(cer, refresh_interval=0.02)
    screen.pick()
    assert screen.state.stage is UnsealStage.PICK  # nothing answered yet: no input
    assert "asking every node" in "".join(t for _, t in screen._nodes_text())

    async def script(d: PipeDriver) -> None:
        await d.type(ENTER)
        assert screen.state.stage is UnsealStage.SHARE
    cer.start()
    drive(pipe, screen, script, quit_after=True)


def test_a_hidden_unseal_screen_asks_nobody(pipe: PipeInput, raws: list[bytes], tmp_path: Path) -> None:
    """Defect 2: the console's unseal screen refreshed (and journalled) before anyone opened it."""
    from vaultops.tui.console import make_console

    cer, cluster = make(raws, tmp_path, sealed=False)
    other = UnsealScreen(UnsealCeremony(fake_cluster(raws, 1), manifest=make_manifest(raws)), refresh_interval=0.02)
    other.name = "first"
    screen = UnsealScreen(cer, refresh_interval=0.02)
    app, shell, _ = make_console([other, screen], title="t")
    d = PipeDriver(pipe)

    async def main() -> None:
        task = asyncio.ensure_future(app.run_async())
        await d.until(lambda: other.state.snapshot is not None)
        await asyncio.sleep(0.2)
        assert screen.state.snapshot is None
        pipe.send_text("\x11")
        await asyncio.wait_for(task, 10)
    asyncio.run(main())
    assert all(c.seal.__dict__["_node"].requests == 0 for c in cluster)  # not even seal-status
    assert not (tmp_path / "journal.jsonl").exists()


def _windows(container: Any) -> list[Window]:
    from prompt_toolkit.layout import walk
    from prompt_toolkit.layout.containers import to_container

    return [c for c in walk(to_container(container)) if isinstance(c, Window)]
