"""What the console's end-to-end tests found (tests/integration/console/test_console_every_screen.py),
each pinned here where it can be checked without servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_harness import F, Harness
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from vaultops.cli import build_parser
from vaultops.journal import Journal
from vaultops.services.tls.cron import journal_renewal
from vaultops.services.tls.renew import NodeOutcome, Outcome, RenewReport
from vaultops.tui.journal_screen import JournalScreen
from vaultops.tui.rekey_screen import Board, ScreenState, render


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


def test_the_journal_screen_reads_again_when_it_is_opened(pipe: PipeInput, tmp_path: Path) -> None:
    """It used to list only what was there when the console started: nothing the operator just did."""
    journal = Journal(tmp_path / "j.jsonl", operator="ann")
    journal.append("test.before")
    other, screen = JournalScreen(None), JournalScreen(journal)
    other.name = "other"
    h = Harness(pipe, [other, screen])

    async def script(h: Harness) -> None:
        await h.until(lambda: len(screen.state.lines) == 1 and not screen.state.busy)
        journal.append("test.after")
        await h.type(F[2])
        await h.until(lambda: len(screen.state.lines) == 2)
    h.run(script)
    assert screen.state.lines[-1].action == "test.after"


def test_rekey_without_an_action_takes_manifest_and_an_action_keeps_it() -> None:
    """`vaultops rekey` (the ceremony screen the console's k key opens) died on args.manifest."""
    assert build_parser(["rekey"]).parse_args(["rekey"]).manifest is None
    assert build_parser(["rekey"]).parse_args(["rekey", "--manifest", "m.yaml"]).manifest == "m.yaml"
    assert build_parser(["rekey"]).parse_args(["rekey", "--manifest", "m.yaml", "status"]).manifest == "m.yaml"
    assert build_parser(["rekey"]).parse_args(["rekey", "status", "--manifest", "n.yaml"]).manifest == "n.yaml"


def test_the_hand_out_names_what_it_reveals_and_no_rekey_says_how_to_start() -> None:
    state = ScreenState(title="t", secret_kind="root token", reveal=[("the operator", "s.x")], revealed=True)
    assert "the operator, your new root token (shown once)" in "".join(t for _, t in render(state))
    idle = ScreenState(title="t", board=Board(("no rekey in progress: start one",), (), 0, 0, (), done=True))
    assert "progress 0/0" not in "".join(t for _, t in render(idle))


def test_a_renewal_is_journalled_per_node_that_changed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", operator="ann")
    report = RenewReport(nodes=(NodeOutcome("node1", Outcome.RENEWED, "forced"),
                                NodeOutcome("node2", Outcome.UNCHANGED),
                                NodeOutcome("node3", Outcome.ROLLED_BACK, "expiring", error="bad key")),
                         statuses=())
    journal_renewal(journal, "c", report)
    entries = list(journal.entries())
    assert [(e["action"], e["node"], e["outcome"]) for e in entries] == [
        ("tls.renew", "node1", "ok"), ("tls.renew", "node3", "rolled_back")]
    assert entries[1]["details"]["error"] == "bad key"
