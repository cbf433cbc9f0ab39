"""The unseal screen driven through prompt_toolkit pipe input, asserting on state and effects."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ceremony_fakes import b64, fake_cluster, make_manifest, make_shares
from prompt_toolkit.application import create_app_session
from pipe_driver import PipeDriver
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from vaultops.journal import Journal
from vaultops.services.ceremony.unseal import UnsealCeremony
from vaultops.services.ceremony.shares import encode, resolve_word
from vaultops.tui.app import SCREENS, build_app
from vaultops.tui.state import UnsealStage
from vaultops.tui.unseal_screen import UNCHECKED, UnsealScreen

DOWN, ENTER, ESC, TAB, CTRL_R, CTRL_Q = "\x1b[B", "\r", "\x1b", "\t", "\x12", "\x11"


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


class Harness(PipeDriver):
    def __init__(self, pipe: PipeInput, cer: UnsealCeremony) -> None:
        super().__init__(pipe)
        self.cer = cer
        self.screen = UnsealScreen(cer, refresh_interval=0.02)
        self.app, self.shell = build_app([self.screen], title="test")

    def run(self, script: Callable[[Harness], object]) -> None:
        async def main() -> None:
            task = asyncio.ensure_future(self.app.run_async())
            await self.until(lambda: self.screen.state.snapshot is not None)
            await script(self)  # type: ignore[misc]
            self.pipe.send_text(CTRL_Q)
            await asyncio.wait_for(task, 10)
        self.cer.start()
        asyncio.run(main())



@pytest.fixture
def raws() -> list[bytes]:
    return make_shares()


def harness(pipe: PipeInput, raws: list[bytes], tmp_path: Path, *, manifest: bool = True,
            nodes: int = 3) -> tuple[Harness, list]:
    cluster = fake_cluster(raws, nodes)
    cer = UnsealCeremony(cluster, manifest=make_manifest(raws) if manifest else None,
                         journal=Journal(tmp_path / "journal.jsonl", cluster="t"), retry_for=0.05)
    return Harness(pipe, cer), cluster


def test_three_keyholders_unseal_through_the_screen(pipe: PipeInput, raws: list[bytes],
                                                   tmp_path: Path) -> None:
    h, cluster = harness(pipe, raws, tmp_path)

    async def script(h: Harness) -> None:
        for i in range(3):
            await h.type(ENTER + b64(raws[i]) + ENTER)
            await h.until(lambda i=i: h.screen.state.submissions == i + 1)
            assert h.screen.share.text == "" and h.screen.state.stage is UnsealStage.PICK
            await h.type(DOWN)
        await h.until(lambda: h.screen.state.snapshot.all_unsealed)

    h.run(script)
    assert all(not n.seal.sealed for n in cluster)
    log = "\n".join(line.text for line in h.screen.state.log)
    assert "keyholder alice submitted share #1 to [node1, node2, node3]" in log
    assert "keyholder carol submitted" in log and "every node is unsealed" in log
    assert b64(raws[0]) not in log


def test_another_keyholders_share_is_refused_on_screen(pipe: PipeInput, raws: list[bytes],
                                                      tmp_path: Path) -> None:
    h, cluster = harness(pipe, raws, tmp_path)

    async def script(h: Harness) -> None:
        await h.type(ENTER + b64(raws[1]) + ENTER)  # alice is selected, bob's share typed
        await h.until(lambda: bool(h.screen.state.error))

    h.run(script)
    s = h.screen.state
    assert "belongs to keyholder bob, not to alice" in s.error
    assert s.submissions == 0 and all(n.seal.calls == 0 for n in cluster)
    assert h.screen.share.text == ""  # a refused (well-formed) share is not kept


def test_typo_in_a_mnemonic_is_kept_for_fixing_with_suggestions(pipe: PipeInput, raws: list[bytes],
                                                               tmp_path: Path) -> None:
    h, cluster = harness(pipe, raws, tmp_path)
    words = encode(raws[0], "mnemonic").split()
    typo = words[:]
    # One wrong letter that makes no SLIP-39 word: "flea" -> "flex" would be a valid 4-letter abbreviation
    # (of "flexible") and only the checksum would catch it (that was the flake: 1 word in 1024, seed 38).
    typo[6] = next(t for c in "xzqj" if resolve_word(t := words[6][:-1] + c) is None)

    async def script(h: Harness) -> None:
        await h.type(ENTER + " ".join(typo) + ENTER)
        await h.until(lambda: h.screen.state.stage is UnsealStage.PASSPHRASE)
        await h.type(ENTER)  # no passphrase
        await h.until(lambda: bool(h.screen.state.error))
        assert h.screen.state.stage is UnsealStage.SHARE
        assert h.screen.share.text == " ".join(typo)
        assert "word 7 is not a SLIP-39 word" in h.screen.state.error
        assert h.screen.state.suggestions and words[6] not in h.screen.state.error
        await h.type(ESC)
        await h.until(lambda: h.screen.state.stage is UnsealStage.PICK)
        assert h.screen.share.text == ""

    h.run(script)
    assert all(n.seal.calls == 0 for n in cluster)
    assert h.screen.share.buffer.history.get_strings() == []


def test_tab_completes_words_and_mnemonic_submits(pipe: PipeInput, raws: list[bytes],
                                                 tmp_path: Path) -> None:
    h, cluster = harness(pipe, raws, tmp_path)
    words = encode(raws[2], "mnemonic").split()
    short = " ".join(w[:4] for w in words[:-1])  # 4-letter prefixes are unique

    async def script(h: Harness) -> None:
        await h.type(DOWN + DOWN + ENTER + short + " " + words[-1][:4] + TAB)
        await h.until(lambda: bool(h.screen.state.hint))     # not a fixed pause: a loaded machine is slower
        assert h.screen.share.text.split()[-1] == words[-1]
        assert "word 35 completed" == h.screen.state.hint
        await h.type(ENTER + ENTER)
        await h.until(lambda: h.screen.state.submissions == 1)

    h.run(script)
    assert all(c.seal.received == [raws[2]] for c in cluster)


def test_reset_asks_first(pipe: PipeInput, raws: list[bytes], tmp_path: Path) -> None:
    h, cluster = harness(pipe, raws, tmp_path)

    async def script(h: Harness) -> None:
        await h.type(ENTER + b64(raws[0]) + ENTER)
        await h.until(lambda: h.screen.state.submissions == 1)
        await h.type(CTRL_R)
        assert h.screen.state.stage is UnsealStage.CONFIRM_RESET
        await h.type("n")
        assert h.screen.state.resets == 0 and cluster[0].seal.received
        await h.type(CTRL_R + "y")
        await h.until(lambda: h.screen.state.resets == 1)

    h.run(script)
    assert all(not n.seal.received for n in cluster)
    assert any("progress reset" in line.text for line in h.screen.state.log)


def test_without_manifest_the_screen_warns(pipe: PipeInput, raws: list[bytes], tmp_path: Path) -> None:
    h, cluster = harness(pipe, raws, tmp_path, manifest=False)

    async def script(h: Harness) -> None:
        await h.type(ENTER + b64(raws[4]) + ENTER)
        await h.until(lambda: h.screen.state.submissions == 1)

    h.run(script)
    assert h.screen.state.keyholders == [UNCHECKED]
    assert "no keyholder manifest" in h.shell.status
    assert any("cannot be checked" in line.text for line in h.screen.state.log)
    assert cluster[0].seal.received == [raws[4]]


def test_unreachable_node_shows_while_others_proceed(pipe: PipeInput, raws: list[bytes],
                                                    tmp_path: Path) -> None:
    h, cluster = harness(pipe, raws, tmp_path)
    cluster[1].seal.unreachable = True

    async def script(h: Harness) -> None:
        await h.until(lambda: h.screen.state.snapshot.node("node2").phase.value == "unreachable")
        await h.type(ENTER + b64(raws[0]) + ENTER)
        await h.until(lambda: h.screen.state.submissions == 1)
        rendered = "".join(t for _, t in h.screen._nodes_text())
        assert "UNREACHABLE" in rendered and "retrying" in rendered

    h.run(script)
    assert cluster[0].seal.received and not cluster[1].seal.received


def test_screen_registry_builds_the_unseal_screen(raws: list[bytes], tmp_path: Path) -> None:
    cer = UnsealCeremony(fake_cluster(raws, 1), manifest=make_manifest(raws))
    screen = SCREENS["unseal"](ceremony=cer)
    assert isinstance(screen, UnsealScreen) and screen.name == "unseal"
    assert os.environ.get("VAULT_TOKEN") is None


def test_killed_share_text_is_not_kept_in_a_kill_ring(pipe: PipeInput, raws: list[bytes], tmp_path: Path) -> None:
    h, _ = harness(pipe, raws, tmp_path)
    share = b64(raws[0])
    seen: list[str] = []

    async def script(h: Harness) -> None:
        await h.type(ENTER + share)
        await h.type("\x01\x0b")  # Ctrl-A, Ctrl-K: kill the whole line
        assert h.screen.share.text == ""
        await h.type("\x19")  # Ctrl-Y would paste it back from the kill ring
        seen.append(h.screen.share.text)
        seen.append(h.app.clipboard.get_data().text)

    h.run(script)
    assert seen == ["", ""]
