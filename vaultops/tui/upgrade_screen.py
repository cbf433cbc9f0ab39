"""The upgrade screen: plan, run and resume the upgrade runbook, live; keyholders unseal restarted nodes here.

Keys: t enter the target version and plan it (then y runs it); r resume the
recorded run; x stop waiting for keyholders (the run pauses; resume later);
Enter submits a share (hidden input) while a node waits for its keyholders.

The engine runs in a worker thread and calls the listener after every step
change; the screen renders a copy of that RunState: per-node state, the
current step, health, and the halt or pause explanation. When a restarted
node is sealed, the ConsoleUnsealer shows the keyholder prompt and waits
until the node reports unsealed; each keyholder pastes their share into the
hidden input and the unseal ceremony checks it against the manifest before
sending it (the same path as the Unseal screen). The share is copied out of
the input into a bytearray, the input reset, and the bytearray zeroed once
submitted. Engine confirmations (`confirm` steps) appear as y/n questions.
"""

from __future__ import annotations

import asyncio
import copy
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import DummyHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import AnyContainer, Dimension, FormattedTextControl, HSplit, Window
from prompt_toolkit.widgets import Frame, TextArea

from vaultops.errors import VaultOpsError
from vaultops.runbook.state import RunState, RunStatus, StepStatus
from vaultops.services.ceremony.shares import wipe
from vaultops.services.upgrade.pnr import pnr_index
from vaultops.services.upgrade.prompted import ConsoleUnsealer, UnsealPrompt
from vaultops.services.upgrade.unseal import Unsealer
from vaultops.tui.console_kit import Confirm, ConsoleScreen, ScreenState, clip, conditional, log_text
from vaultops.tui.secret_input import forget, hidden_input, take_secret

if TYPE_CHECKING:
    from vaultops.services.ceremony.unseal import UnsealCeremony

STEP_ROWS = 7
PNR_NOTE = "  <- point of no return"
MARKS = {StepStatus.DONE: "[x]", StepStatus.RUNNING: "[>]", StepStatus.PENDING: "[ ]",
         StepStatus.FAILED: "[!]", StepStatus.PAUSED: "[~]"}


@dataclass(frozen=True)
class Plan:
    current: str
    to: str
    leader: str
    steps: tuple[Any, ...]     # PlannedStep: id, name, action, node


class UpgradeOps(Protocol):
    """What the screen needs from the upgrade service (console.py adapts the real one)."""

    cluster: str
    keyholders: tuple[str, ...]

    def last(self) -> RunState | None: ...
    def plan(self, to: str) -> Plan: ...
    def run(self, to: str, *, listener: Callable[[RunState], None], unsealer: Unsealer,
            ask: Callable[[str], bool], emit: Callable[[str], None]) -> RunState: ...
    def resume(self, *, listener: Callable[[RunState], None], unsealer: Unsealer,
               ask: Callable[[str], bool], emit: Callable[[str], None]) -> RunState: ...
    def ceremony(self, node: str) -> UnsealCeremony: ...


@dataclass
class UpgradeState(ScreenState):
    run: RunState | None = None
    plan: Plan | None = None
    prompt: UnsealPrompt | None = None
    entering: str = ""            # "target" | "share" | ""
    submissions: int = 0


class UpgradeScreen(ConsoleScreen):
    name = "upgrade"
    title = "Upgrade"
    state: UpgradeState

    def __init__(self, ops: UpgradeOps) -> None:
        super().__init__()
        self.ops = ops
        self.state = UpgradeState()
        self.unsealer = ConsoleUnsealer(self._on_prompt, keyholders=ops.keyholders)
        self.target = TextArea(multiline=False, height=1, history=DummyHistory(), accept_handler=self._on_target,
                               prompt="target version: ")
        self.share = hidden_input(self._on_share, prompt="share (hidden): ")
        self._ceremonies: dict[str, UnsealCeremony] = {}

    # -- Screen protocol ----------------------------------------------------------

    def container(self) -> AnyContainer:
        s = self.state
        return HSplit([
            self.home,
            Window(FormattedTextControl(self._headline), height=1),
            conditional(self.target, lambda: s.entering == "target"),
            Frame(Window(FormattedTextControl(self._nodes_text), height=Dimension(min=1, max=6)), title="Nodes"),
            Frame(Window(FormattedTextControl(self._steps_text), height=Dimension(min=3, max=STEP_ROWS)),
                  title="Steps"),
            conditional(Frame(HSplit([
                Window(FormattedTextControl(self._prompt_text), height=2, wrap_lines=True), self.share]),
                title="Keyholders needed"), lambda: s.prompt is not None),
            Window(FormattedTextControl(self._halt_text), height=Dimension(max=3), wrap_lines=True),
            Window(FormattedTextControl(lambda: log_text(s, 3)), height=Dimension(max=3)),
            self.message_window(),
        ])

    def key_bindings(self) -> KeyBindings:
        kb = KeyBindings()
        idle = self.idle()
        s = self.state

        @kb.add("t", filter=idle)
        def _target(event: KeyPressEvent) -> None:
            self.enter_target()

        @kb.add("r", filter=idle)
        def _resume(event: KeyPressEvent) -> None:
            self.ask_resume()

        @kb.add("x", filter=idle & Condition(lambda: s.prompt is not None))
        def _cancel(event: KeyPressEvent) -> None:
            self.ask_stop_waiting()

        @kb.add("enter", filter=idle & Condition(lambda: s.prompt is not None))
        def _share(event: KeyPressEvent) -> None:
            self.enter_share()

        @kb.add("escape", filter=Condition(lambda: bool(s.entering)))
        def _back(event: KeyPressEvent) -> None:
            self.back()

        return self.confirm_bindings(kb)

    def help(self) -> str:
        s = self.state
        if s.confirm is not None:
            return "y confirm · n cancel"
        if s.entering:
            return "Enter accept · Esc back (clears input)"
        if s.prompt is not None:
            return "Enter paste a share · x stop waiting · ? help"
        return "t plan a target version · r resume · ? help"

    def keys_help(self) -> list[tuple[str, str]]:
        return [("t", "plan a target version; y runs"), ("r", "resume the recorded run (asks)"),
                ("Enter", "paste a share when asked"), ("x", "stop waiting (run pauses)")]

    def start(self, app: Any, shell: Any) -> None:
        super().start(app, shell)
        app.create_background_task(self._on_exit())
        self.work("reading the recorded upgrade run", self.ops.last, on_done=self._loaded)

    async def _on_exit(self) -> None:
        """Background tasks are cancelled when the console quits: release a waiting engine thread."""
        try:
            await asyncio.Event().wait()
        finally:
            self.unsealer.cancel()  # the run pauses; `r` or `vaultops upgrade resume` continues it
            if self.state.confirm is not None:
                self.answer(False)

    def _loaded(self, run: RunState | None) -> None:
        if run is not None and self.state.run is None:
            self.state.run = run

    # -- actions ------------------------------------------------------------------

    def enter_target(self) -> None:
        self.state.entering = "target"
        self.focus(self.target)

    def enter_share(self) -> None:
        self.state.entering = "share"
        self.focus(self.share)

    def back(self) -> None:
        self.target.buffer.reset()
        forget(self.share)
        self.state.entering = ""
        self.go_home()

    def _on_target(self, buf: Buffer) -> bool:
        to = buf.text.strip()
        self.back()
        if not to:
            self.state.error = "no version typed: press t and type e.g. 2.7.2"
            return False
        self.work(f"planning the upgrade to {to}", lambda: self.ops.plan(to), on_done=self._planned)
        return False

    def _planned(self, plan: Plan) -> None:
        self.state.plan = plan
        self.ask(f"Upgrade {self.ops.cluster} from {plan.current} to {plan.to}: {len(plan.steps)} steps, "
                 f"one node at a time, {plan.leader} (active) last. Start?", lambda: self._run(plan.to))

    def _run(self, to: str) -> None:
        self.state.add_log("info", f"upgrade to {to} started")
        self.work(f"upgrading to {to}", lambda: self.ops.run(to, listener=self._listen, unsealer=self.unsealer,
                                                            ask=self._engine_ask, emit=self._progress),
                  on_done=self._finished, on_error=self._stopped)

    def ask_resume(self) -> None:
        run = self.state.run
        if run is None:
            self.state.error = "no recorded upgrade run: press t to plan one"
            return
        if run.status == RunStatus.DONE:
            self.state.error = f"run {run.run_id} already finished"
            return
        where = run.current.id if run.current else "?"
        self.ask(f"Resume upgrade run {run.run_id} ({run.status.value} at {where})? The cluster is checked "
                 "again first", self._resume)

    def _resume(self) -> None:
        self.work("resuming the upgrade", lambda: self.ops.resume(listener=self._listen, unsealer=self.unsealer,
                                                                  ask=self._engine_ask, emit=self._progress),
                  on_done=self._finished, on_error=self._stopped)

    def ask_stop_waiting(self) -> None:
        self.ask("Stop waiting for the keyholders? The run pauses; resume it later with r", self.unsealer.cancel)

    def _finished(self, run: RunState) -> None:
        self.state.run = run
        self.state.add_log("info", f"upgrade run {run.run_id}: {run.status.value}")

    def _stopped(self, exc: VaultOpsError) -> None:
        self.state.prompt = None
        self.state.add_log("warn", f"next: {exc.hint}" if exc.hint else "see the journal")

    # -- called from the engine's thread ---------------------------------------------

    def _listen(self, run: RunState) -> None:
        self.state.run = copy.deepcopy(run)  # the engine keeps changing its own copy
        self.invalidate()

    def _progress(self, message: str) -> None:
        self.state.add_log("info", message)
        self.invalidate()

    def _on_prompt(self, prompt: UnsealPrompt | None) -> None:
        self.state.prompt = prompt
        if prompt is None and self.state.entering == "share":
            self.back()
        self.invalidate()

    def _engine_ask(self, message: str) -> bool:
        """A runbook `confirm` step: ask here and block the engine thread (never the UI) for the answer."""
        answered = threading.Event()
        result: list[bool] = []

        def reply(yes: bool) -> None:
            result.append(yes)
            answered.set()
        self.state.confirm = Confirm(message.rstrip("?") + "?", lambda: reply(True), on_no=lambda: reply(False))
        self.invalidate()
        answered.wait()
        return result[0]

    # -- the keyholder's share ---------------------------------------------------------

    def _on_share(self, buf: Buffer) -> bool:
        secret, prompt = take_secret(self.share), self.state.prompt
        self.back()
        if prompt is None or not secret or secret.isspace():  # (strip() would copy it)
            wipe(secret)
            self.state.error = "no node is waiting for shares" if prompt is None else "empty share: paste it"
            return False
        cer = self._ceremony(prompt.node)

        def submit() -> Any:
            try:
                return cer.submit_line(secret)
            finally:
                wipe(secret)

        def done(sub: Any) -> None:
            self.state.submissions += 1
            for ev in cer.drain_events():
                self.state.add_log(ev.level.value, ev.message)
        self.state.add_log("info", f"checking a share for {prompt.node} ...")
        self.side_work(submit, on_done=done, on_error=lambda _e: self._drain(cer))
        return False

    def _ceremony(self, node: str) -> UnsealCeremony:
        if node not in self._ceremonies:
            cer = self.ops.ceremony(node)
            cer.start()
            self._ceremonies[node] = cer
        return self._ceremonies[node]

    def _drain(self, cer: UnsealCeremony) -> None:
        for ev in cer.drain_events():
            self.state.add_log(ev.level.value, ev.message)

    # -- rendering -------------------------------------------------------------------

    def _headline(self) -> StyleAndTextTuples:
        run, plan = self.state.run, self.state.plan
        if run is None:
            text = (f" planned {plan.current} -> {plan.to}: {len(plan.steps)} steps" if plan else
                    " no upgrade run recorded: press t to plan one")
            return [("", text)]
        cur = run.current
        step = f"step {run.done_count + (0 if cur is None else 1)}/{len(run.steps)}"
        where = f" {cur.id}" if cur else ""
        style = {RunStatus.DONE: "class:done", RunStatus.HALTED: "class:error",
                 RunStatus.PAUSED: "class:level.warn"}.get(run.status, "bold")
        to = run.variables.get("to", "?")
        return [(style, f" {run.status.value.upper()}"), ("", f"  to {to}  {step}{where}")]

    def _nodes_text(self) -> StyleAndTextTuples:
        run = self.state.run
        if run is None or not run.nodes:
            return [("class:hint", "no observation yet")]
        out: StyleAndTextTuples = []
        current = run.current.node if run.current else None
        for name, v in run.nodes.items():
            sealed = v.get("sealed")
            seal = ("class:phase.sealed", "sealed  ") if sealed else ("class:phase.unsealed", "unsealed")
            health = "" if "healthy" not in v else ("healthy" if v["healthy"] else "UNHEALTHY")
            mark = ">" if name == current else " "
            out += [("", f"{mark} {name:<10} "), seal,
                    ("", f"  {str(v.get('role') or '-'):<8} {str(v.get('version') or '-'):<8} "
                         f"{str(v.get('raft') or ''):<9} "),
                    ("class:error" if health == "UNHEALTHY" else "", health + "\n")]
        return out

    def _steps_text(self) -> StyleAndTextTuples:
        run, plan = self.state.run, self.state.plan
        if run is None and plan is None:
            return [("class:hint", "(none)")]
        if run is None:
            assert plan is not None
            mark = pnr_index(plan.steps)
            return [("", f"[ ] {p.id}{PNR_NOTE if i == mark else ''}\n")
                    for i, p in enumerate(plan.steps[:STEP_ROWS])]
        mark = pnr_index(run.steps)
        cur = run.current
        at = run.index_of(cur.id) if cur else len(run.steps) - 1
        lo = max(0, min(at - 2, len(run.steps) - STEP_ROWS))
        out: StyleAndTextTuples = []
        width = self._app.output.get_size().columns - 4 if self._app is not None else 76  # inside the frame
        for st in run.steps[lo:lo + STEP_ROWS]:
            style = "class:selected" if cur is not None and st.id == cur.id else ""
            pnr = PNR_NOTE if mark is not None and st is run.steps[mark] else ""
            head = f"{MARKS[st.status]} {st.id}{pnr}"
            note = f"  {clip(st.message, max(width - len(head) - 2, 12))}" if st.message else ""
            out.append((style, f"{head}{note}\n"))
        return out

    def _prompt_text(self) -> StyleAndTextTuples:
        p = self.state.prompt
        if p is None:
            return []
        who = ", ".join(p.keyholders) if p.keyholders else "the keyholders"
        text = (f"{p.node} is sealed: {p.threshold} of {p.shares} keyholders must submit ({who}); progress "
                f"{p.progress}/{p.threshold}, waiting {_clock(p.waited)}"
                + (f" of up to {_clock(p.timeout)}" if p.timeout else "") + ". Enter to paste a share.")
        width = self._app.output.get_size().columns - 3 if self._app is not None else 78
        return [("class:level.warn", textwrap.fill(text, max(width, 20), initial_indent=" "))]  # never mid-word

    def _halt_text(self) -> StyleAndTextTuples:
        run = self.state.run
        if run is None or not run.halt or run.status not in (RunStatus.HALTED, RunStatus.PAUSED):
            return []
        style = "class:error" if run.status == RunStatus.HALTED else "class:level.warn"
        return [(style, f" {run.status.value}: {run.halt.get('message')}\n"),
                ("class:hint", f" next: {run.halt.get('hint') or 'r to resume'}")]


def _clock(seconds: float) -> str:
    """0:07, 12:30, 1:00:00."""
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


__all__ = ["ConsoleUnsealer", "Plan", "UnsealPrompt", "UpgradeOps", "UpgradeScreen"]
