"""Each console screen driven through pipe input (DummyOutput), asserting on state and effects."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from ceremony_fakes import b64, make_manifest, make_shares
from ceremony_fakes import fake_cluster as sealed_cluster
from console_harness import CTRL_Q, DOWN, ENTER, ESC, UP, F, Harness, fake_cluster
from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import ColorDepth, DummyOutput
from prompt_toolkit.output.vt100 import Vt100_Output

from vaultops.errors import BackupError
from vaultops.journal import Journal
from vaultops.runbook.state import RunState, RunStatus, StepState, StepStatus
from vaultops.services.backup.manifest import BackupEntry, State
from vaultops.services.ceremony.unseal import UnsealCeremony
from vaultops.services.dashboard import Dashboard
from vaultops.tui.backup_screen import BackupScreen
from vaultops.tui.console import monochrome
from vaultops.tui.dashboard_screen import DashboardScreen
from vaultops.tui.journal_screen import JournalScreen
from vaultops.tui.tls_screen import TlsScreen
from vaultops.tui.upgrade_screen import Plan, UpgradeScreen


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


def dashboard_screen(**kwargs: Any) -> tuple[DashboardScreen, list]:
    nodes = fake_cluster(3)
    steps: list[str] = []
    screen = DashboardScreen(Dashboard(nodes, cluster="c", storage="raft", timeout=1),
                             step_down=steps.append, interval=0.05, **kwargs)
    return screen, steps


# -- dashboard and the console shell -------------------------------------------------------


def test_step_down_asks_first_and_steps_down_the_active_node(pipe: PipeInput) -> None:
    screen, steps = dashboard_screen()
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.until(lambda: screen.snapshot().active == "node1")
        await h.type("s")
        assert screen.state.confirm is not None and "node1" in screen.state.confirm.question
        await h.type("n")
        assert steps == [] and screen.state.confirm is None
        await h.type("sy")
        await h.until(lambda: screen.stepped_down == ["node1"])
    h.run(script)
    assert steps == ["node1"]
    assert screen.refreshes >= 2


def test_step_down_without_a_token_explains(pipe: PipeInput) -> None:
    screen = DashboardScreen(Dashboard(fake_cluster(2), cluster="c", storage="raft"), step_down=None)
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.type("s")
        assert screen.state.confirm is None and "needs a token" in screen.state.error
    h.run(script)


def test_help_overlay_and_screen_switching(pipe: PipeInput, tmp_path: Path) -> None:
    dash, _ = dashboard_screen()
    journal = JournalScreen(Journal(tmp_path / "j.jsonl"))
    h = Harness(pipe, [dash, journal])

    async def script(h: Harness) -> None:
        await h.type("?")
        assert h.console.help
        await h.type(ESC)
        await h.until(lambda: not h.console.help)
        await h.type(F[2])
        assert h.shell.screen == "journal"
        await h.type("s")  # the dashboard's key does nothing while the journal is shown
        assert dash.state.confirm is None
        await h.type(F[1])
        assert h.shell.screen == "dashboard"
    h.run(script)


def test_monochrome_when_asked_or_no_color_is_set(pipe: PipeInput, monkeypatch: pytest.MonkeyPatch) -> None:
    screen, _ = dashboard_screen()
    h = Harness(pipe, [screen], no_color=True)
    assert h.app.color_depth is ColorDepth.MONOCHROME
    monkeypatch.setenv("NO_COLOR", "1")
    assert Harness(pipe, [screen]).app.color_depth is ColorDepth.MONOCHROME
    monkeypatch.delenv("NO_COLOR")
    assert not monochrome() and monochrome(no_color=True)


def test_everything_fits_80x24_including_the_help(tmp_path: Path) -> None:
    """Rendered to a real VT100 stream of 80x24: tabs, rows and every help entry are on screen."""
    screens = [dashboard_screen()[0], BackupScreen(FakeBackup()), UpgradeScreen(FakeUpgrade(sealed_cluster(
        make_shares(), 1), make_shares())), TlsScreen(FakeTls()), JournalScreen(Journal(tmp_path / "j"))]
    buf = io.StringIO()
    out = Vt100_Output(buf, lambda: Size(rows=24, columns=80), term="xterm")
    with create_pipe_input() as inp, create_app_session(input=inp, output=out):
        h = Harness(inp, screens)

        async def script(h: Harness) -> None:
            await h.until(lambda: screens[0].snapshot().active is not None)
            await h.type("?")
            await h.until(lambda: "hash chain" in buf.getvalue())
        h.run(script)
    text = buf.getvalue()
    for words in ("[F2] Backup", "Journal", "node3", "step down active", "force renewal", "Ctrl-Q"):
        assert words in text, words


# -- backup ------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    ok: bool = True
    size: int = 100
    duration: float = 0.5
    error: str | None = None


@dataclass
class Drill:
    name: str
    ok: bool = True
    rto_seconds: float = 3.0
    rpo_seconds: float = 60.0
    error: str | None = None


class FakeBackup:
    sinks = ("local:/b", "s3:bucket")

    def __init__(self) -> None:
        self.stored: list[BackupEntry] = []
        self.drill_shares: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()
        self.seen_progress: list[float] = []

    def entries(self) -> list[BackupEntry]:
        return list(self.stored)

    def run(self, emit: Any) -> Result:
        emit("run.start", name="c-1.snap")
        emit("snapshot.open", node="node1")
        self.release.wait(10)
        emit("snapshot.verified", name="c-1.snap", size=100, sha256="ab")
        emit("sink.published", sink="local:/b")
        emit("sink.published", sink="s3:bucket")
        emit("run.done", name="c-1.snap", ok=True)
        self.stored.insert(0, BackupEntry("c-1.snap", "c", datetime.now(timezone.utc), 100, State.VERIFIED))
        return Result("c-1.snap")

    def drill(self, shares: list[str], emit: Any) -> Drill:
        self.drill_shares.append(list(shares))
        emit("drill.start", name="c-1.snap")
        return Drill("c-1.snap")


def test_backup_now_moves_the_bar_and_lists_the_new_backup(pipe: PipeInput) -> None:
    ops = FakeBackup()
    screen = BackupScreen(ops)
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.type("b")
        assert "local:/b, s3:bucket" in screen.state.confirm.question
        ops.release.clear()
        await h.type("y")
        await h.until(lambda: screen.state.stage == "snapshot.open")
        assert 0.2 <= screen.state.progress < 0.8 and screen.state.busy
        await h.type("b")  # the UI stays live while the backup runs, and refuses a second one
        await h.type("y")
        assert "busy" in screen.state.error
        ops.release.set()
        await h.until(lambda: screen.state.runs == 1 and screen.state.entries)
    h.run(script)
    assert screen.state.progress == 1.0 and "verified and published" in screen.state.stage
    assert screen.state.entries[0].name == "c-1.snap"


def test_backup_cancelled_runs_nothing(pipe: PipeInput) -> None:
    screen = BackupScreen(FakeBackup())
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.type("bn")
    h.run(script)
    assert screen.state.runs == 0 and screen.state.confirm is None


def test_drill_collects_hidden_shares_and_keeps_none(pipe: PipeInput) -> None:
    ops = FakeBackup()
    screen = BackupScreen(ops)
    h = Harness(pipe, [screen])
    secret = ["S3CRET-share-one", "S3CRET-share-two"]

    async def script(h: Harness) -> None:
        await h.type("dy")
        assert screen.state.entering
        for s in secret:
            await h.type(s + ENTER)
        assert screen.state.drill_shares == 2
        await h.type(ENTER)
        await h.until(lambda: screen.state.drills == 1)
    h.run(script)
    assert ops.drill_shares == [secret]
    assert "PASSED" in screen.state.stage
    dump = repr(screen.state) + screen.share.text
    assert not any(s in dump for s in secret)


def test_a_failing_backup_listing_is_shown_not_raised(pipe: PipeInput) -> None:
    ops = FakeBackup()
    ops.entries = lambda: (_ for _ in ()).throw(BackupError("no sinks", hint="add one"))  # type: ignore[method-assign]
    screen = BackupScreen(ops)
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.until(lambda: "no sinks" in screen.state.error)
    h.run(script)


# -- tls ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    value: str


@dataclass
class NodeOutcome:
    node: str
    outcome: Outcome
    reason: str = ""
    error: str | None = None


@dataclass
class Report:
    nodes: tuple[NodeOutcome, ...]
    ok: bool = True


class CertStatus:
    def __init__(self, node: str, due: bool) -> None:
        self.node, self.due, self.served, self.disk, self.differ = node, due, None, None, False

    def renewal_reason(self, fraction: float) -> str | None:
        return "served certificate expires in 2.0 days" if self.due else None


class FakeTls:
    configured = True
    renew_fraction = 1 / 3

    def __init__(self) -> None:
        self.renewals: list[bool] = []

    def status(self) -> list[CertStatus]:
        return [CertStatus("node1", False), CertStatus("node2", True)]

    def renew(self, *, force: bool, emit: Any) -> Report:
        self.renewals.append(force)
        emit({"event": "renewed", "node": "node2"})
        return Report((NodeOutcome("node1", Outcome("unchanged")), NodeOutcome("node2", Outcome("renewed"))))


def test_tls_renew_names_the_due_nodes_and_force_asks_for_all(pipe: PipeInput) -> None:
    ops = FakeTls()
    screen = TlsScreen(ops)
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.until(lambda: len(screen.state.statuses) == 2)
        await h.type("n")
        assert "of node2 via ACME" in screen.state.confirm.question
        await h.type("y")
        await h.until(lambda: screen.state.renewals == 1)
        await h.type("f")
        assert "every node" in screen.state.confirm.question
        await h.type("n")
    h.run(script)
    assert ops.renewals == [False]
    assert any("renewed" in line.text for line in screen.state.log)


def test_tls_without_a_section_says_so(pipe: PipeInput) -> None:
    ops = FakeTls()
    ops.configured = False
    screen = TlsScreen(ops)
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.type("n")
    h.run(script)
    assert "no tls: section" in screen.state.error and ops.renewals == []


# -- journal -----------------------------------------------------------------------------


def test_journal_screen_shows_entries_and_catches_tampering(pipe: PipeInput, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", operator="ann")
    for i in range(20):
        journal.append(f"test.{i}", node="node1", details={"i": i})
    screen = JournalScreen(journal)
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.until(lambda: len(screen.state.lines) == 20)
        await h.type("v")
        await h.until(lambda: screen.state.verdict == "chain intact")
        await h.type(UP + UP + DOWN)
        assert screen.state.scroll == 1
        lines = journal.path.read_text().splitlines()
        journal.path.write_text("\n".join(lines[:5] + lines[6:]) + "\n")
        await h.type("l")
        await h.until(lambda: len(screen.state.lines) == 19 and not screen.state.busy)
        await h.type("v")
        await h.until(lambda: "TAMPERED" in screen.state.verdict)
    h.run(script)
    assert screen.state.lines[-1].action == "test.19"


# -- upgrade -----------------------------------------------------------------------------


def _run_state(nodes: list[str]) -> RunState:
    steps = [StepState(id=f"standby[{n}].{a}", name=a, action=a, params={}, node=n)
             for n in nodes for a in ("stop", "unseal")]
    return RunState(run_id="r1", runbook="upgrade", runbook_path="x", runbook_digest="d", cluster="c",
                    variables={"to": "2.7.2"}, steps=steps)


class FakeUpgrade:
    """Walks a RunState through its steps like the engine; the unseal step asks the screen's unsealer."""

    cluster = "c"

    def __init__(self, cluster: list, raws: list[bytes]) -> None:
        self.nodes = cluster
        self.raws = raws
        self.keyholders = ("alice", "bob", "carol")
        self.asked: list[bool] = []

    def last(self) -> RunState | None:
        return None

    def plan(self, to: str) -> Plan:
        return Plan(current="2.6.2", to=to, leader="node1", steps=tuple(_run_state(["node2"]).steps))

    def run(self, to: str, *, listener: Any, unsealer: Any, ask: Any, emit: Any) -> RunState:
        state = _run_state([n.name for n in self.nodes])
        self.asked.append(ask("Take node1 down"))
        for step in state.steps:
            step.status = StepStatus.RUNNING
            state.nodes = {n.name: {"role": "standby", "version": "2.7.2", "sealed": n.seal.sealed}
                           for n in self.nodes}
            listener(state)
            if step.action == "stop":
                self.nodes[0].seal.restart()
            else:
                step.message = unsealer.unseal(self.nodes[0], node=step.node)["summary"]
            step.status = StepStatus.DONE
            emit(f"{step.id} done")
            listener(state)
        state.status = RunStatus.DONE
        listener(state)
        return state

    def resume(self, **kwargs: Any) -> RunState:
        raise AssertionError("not used")

    def ceremony(self, node: str) -> UnsealCeremony:
        cer = UnsealCeremony([n for n in self.nodes if n.name == node], manifest=make_manifest(self.raws),
                             journal=None, retry_for=0.05)
        real = cer.submit_line
        self.lines: list[Any] = []

        def submit_line(line: Any, **kw: Any) -> Any:  # what the screen hands over, to check it is zeroed
            self.lines.append(line)
            return real(line, **kw)
        cer.submit_line = submit_line  # type: ignore[method-assign]
        return cer


def test_upgrade_runs_live_and_keyholders_unseal_the_restarted_node(pipe: PipeInput) -> None:
    raws = make_shares()
    nodes = sealed_cluster(raws, 1)
    nodes[0].seal.sealed = False
    ops = FakeUpgrade(nodes, raws)
    screen = UpgradeScreen(ops)
    screen.unsealer.poll = 0.01
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.type("t")
        assert screen.state.entering == "target"
        await h.type("2.7.2" + ENTER)
        await h.until(lambda: screen.state.confirm is not None)
        assert "from 2.6.2 to 2.7.2" in screen.state.confirm.question
        await h.type("y")
        await h.until(lambda: screen.state.confirm is not None)  # the engine's own confirm step
        assert screen.state.confirm.question == "Take node1 down?"
        await h.type("y")
        await h.until(lambda: screen.state.prompt is not None)
        assert screen.state.prompt.node == "node1" and screen.state.prompt.threshold == 3
        assert screen.state.run.current.id == "standby[node1].unseal"
        # what it waits for and for how long, word-wrapped (never cut mid-word at the pane's edge)
        await h.until(lambda: screen.state.prompt is not None and screen.state.prompt.waited >= 1.0)
        shown = "".join(text for _, text in screen._prompt_text())
        assert re.search(r"progress 0/3, waiting 0:0[1-9] of up to 1:00:00\. Enter to paste a share\.$",
                         shown.replace("\n", " ")), shown
        assert all(len(line) <= 78 for line in shown.splitlines())
        for i, raw in enumerate(raws[:3], 1):
            await h.type(ENTER)
            assert screen.state.entering == "share"
            await h.type(b64(raw) + ENTER)
            await h.until(lambda: screen.state.submissions == i)
        await h.until(lambda: screen.state.run is not None and screen.state.run.status == RunStatus.DONE)
    h.run(script)
    assert ops.asked == [True]
    assert screen.state.submissions == 3 and not nodes[0].seal.sealed
    assert screen.state.prompt is None
    assert screen.state.run.steps[-1].message == "unsealed by the keyholders at the console"
    assert not any(b64(r)[:12] in line.text for r in raws for line in screen.state.log)
    # each share went over as a bytearray, zeroed once submitted; the input keeps nothing
    assert len(ops.lines) == 3 and all(isinstance(b, bytearray) and not any(b) for b in ops.lines)
    assert screen.share.text == ""


def test_stop_waiting_pauses_the_run(pipe: PipeInput) -> None:
    raws = make_shares()
    nodes = sealed_cluster(raws, 1)
    ops = FakeUpgrade(nodes, raws)
    ops.run = lambda to, **kw: kw["unsealer"].unseal(nodes[0], node="node1")  # type: ignore[method-assign]
    screen = UpgradeScreen(ops)
    screen.unsealer.poll = 0.01
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.type("t2.7.2" + ENTER)
        await h.until(lambda: screen.state.confirm is not None)
        await h.type("y")
        await h.until(lambda: screen.state.prompt is not None)
        await h.type("xy")
        await h.until(lambda: not screen.state.busy)
    h.run(script)
    assert screen.state.prompt is None
    assert "waits for 3 keyholders" in screen.state.error


def test_resume_without_a_recorded_run_explains(pipe: PipeInput) -> None:
    screen = UpgradeScreen(FakeUpgrade(sealed_cluster(make_shares(), 1), make_shares()))
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.type("r")
    h.run(script)
    assert "no recorded upgrade run" in screen.state.error


def test_quit_key_leaves(pipe: PipeInput) -> None:
    screen, _ = dashboard_screen()
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.type(CTRL_Q)
        await h.until(lambda: not h.app.is_running)
    h.run(script)


def test_a_bug_in_a_service_is_shown_and_the_console_keeps_running(pipe: PipeInput) -> None:
    ops = FakeBackup()
    ops.entries = lambda: {}["missing"]  # type: ignore[method-assign]
    screen = BackupScreen(ops)
    h = Harness(pipe, [screen])

    async def script(h: Harness) -> None:
        await h.until(lambda: "KeyError" in screen.state.error)
        await h.type("b")
        assert screen.state.confirm is not None  # keys still work
        await h.type("n")
    h.run(script)
