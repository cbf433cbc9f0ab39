"""The certificate screen: what each node serves and has on disk, and renewal.

Keys: l reload; n renew the certificates that are due (asks y/n);
f force renewal of every node (asks y/n).

Renewal reloads standbys first and the active node last, verifying each
served certificate by a TLS handshake and rolling back a node whose new
certificate does not serve (services/tls/renew.py); every event lands in the
log below as it happens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import AnyContainer, Dimension, FormattedTextControl, HSplit, Window
from prompt_toolkit.widgets import Frame

from vaultops.tui.console_kit import ConsoleScreen, ScreenState, log_text

Emit = Callable[[dict[str, Any]], None]


class TlsOps(Protocol):
    configured: bool

    @property
    def renew_fraction(self) -> float: ...

    def status(self) -> list[Any]: ...                      # NodeCertStatus per node
    def renew(self, *, force: bool, emit: Emit) -> Any: ...  # RenewReport


@dataclass
class TlsState(ScreenState):
    statuses: list[Any] = field(default_factory=list)
    report: Any = None
    renewals: int = 0


class TlsScreen(ConsoleScreen):
    name = "tls"
    title = "TLS"
    state: TlsState

    def __init__(self, ops: TlsOps) -> None:
        super().__init__()
        self.ops = ops
        self.state = TlsState()

    def container(self) -> AnyContainer:
        return HSplit([
            self.home,
            Frame(Window(FormattedTextControl(self._table), height=Dimension(min=2, max=8)),
                  title="Certificates (days left)"),
            Window(FormattedTextControl(self._report_text), height=Dimension(max=4)),
            Window(FormattedTextControl(lambda: log_text(self.state, 6)), height=Dimension(max=6)),
            self.message_window(),
        ])

    def key_bindings(self) -> KeyBindings:
        kb = KeyBindings()
        idle = self.idle()

        @kb.add("l", filter=idle)
        def _reload(event: KeyPressEvent) -> None:
            self.reload()

        @kb.add("n", filter=idle)
        def _renew(event: KeyPressEvent) -> None:
            self.ask_renew(force=False)

        @kb.add("f", filter=idle)
        def _force(event: KeyPressEvent) -> None:
            self.ask_renew(force=True)

        return self.confirm_bindings(kb)

    def help(self) -> str:
        if self.state.confirm is not None:
            return "y confirm · n cancel"
        return "l reload · n renew due · f force renew all · ? help"

    def keys_help(self) -> list[tuple[str, str]]:
        return [("l", "reload certificate status"), ("n", "renew those due (asks)"),
                ("f", "force renewal of all (asks)")]

    def start(self, app: Any, shell: Any) -> None:
        super().start(app, shell)
        if self.ops.configured:
            self.reload()

    # -- actions ------------------------------------------------------------------

    def reload(self) -> None:
        if not self._configured():
            return
        self.work("reading certificates", self.ops.status, on_done=self._loaded)

    def _loaded(self, statuses: list[Any]) -> None:
        self.state.statuses = list(statuses)

    def ask_renew(self, *, force: bool) -> None:
        if not self._configured():
            return
        due = [s.node for s in self.state.statuses if s.renewal_reason(self.ops.renew_fraction)]
        what = ("every node" if force else ", ".join(due) if due else
                "the nodes found due (none known now; status is read again)")
        self.ask(f"Renew the certificates of {what} via ACME, reloading standbys first and the active node "
                 "last?", lambda: self._renew(force))

    def _renew(self, force: bool) -> None:
        self.state.report = None
        self.work("renewing certificates", lambda: self.ops.renew(force=force, emit=self._emit),
                  on_done=self._renewed)

    def _renewed(self, report: Any) -> None:
        self.state.renewals += 1
        self.state.report = report
        if not report.ok:
            self.state.error = "renewal failed: served certificates were left unchanged or rolled back"
        self.reload()

    def _emit(self, event: dict[str, Any]) -> None:
        text = " ".join(f"{k}={v}" for k, v in event.items())
        self.state.add_log("warn" if "fail" in str(event.get("event", "")) else "info", text)
        self.invalidate()

    def _configured(self) -> bool:
        if not self.ops.configured:
            self.state.error = "vaultops.yaml has no tls: section: `vaultops config example tls` prints one"
        return self.ops.configured

    # -- rendering ----------------------------------------------------------------------

    def _table(self) -> StyleAndTextTuples:
        if not self.ops.configured:
            return [("class:hint", "no tls: section in vaultops.yaml")]
        if not self.state.statuses:
            return [("class:hint", "…")]
        out: StyleAndTextTuples = [("bold", f"{'NODE':<10} {'SERVED':>7} {'DISK':>7}  NOTE\n")]
        for st in self.state.statuses:
            served = f"{st.served.days_left():.0f}d" if st.served else "error"
            disk = f"{st.disk.days_left():.0f}d" if st.disk else "-"
            reason = st.renewal_reason(self.ops.renew_fraction)
            note = reason or ("served differs from disk" if st.disk and st.differ else "ok")
            style = "class:level.warn" if reason else ""
            out.append((style, f"{st.node:<10} {served:>7} {disk:>7}  {note[:50]}\n"))
        return out

    def _report_text(self) -> StyleAndTextTuples:
        report = self.state.report
        if report is None:
            return []
        return [("class:error" if n.outcome.value in ("failed", "rolled_back") else "",
                 f" {n.node}: {n.outcome.value} {n.reason} {n.error or ''}\n") for n in report.nodes]


__all__ = ["TlsOps", "TlsScreen"]
