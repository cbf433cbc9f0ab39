"""The console's adaptors from the Session to the services (no prompt_toolkit here).

Each screen takes a small ops object (tui/*_screen.py names its Protocol);
these are the real ones, each wired by the console's Session (its config,
clients, journal and flags). Every method may be slow and is only ever called
from a worker thread by the screens.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.errors import RunbookError, VaultOpsError

if TYPE_CHECKING:
    from vaultops.config import Config
    from vaultops.journal import Journal
    from vaultops.runbook.state import RunState
    from vaultops.services.ceremony.unseal import UnsealCeremony
    from vaultops.services.upgrade.context import UpgradeContext
    from vaultops.services.upgrade.unseal import Unsealer
    from vaultops.session import Session
    from vaultops.tui.upgrade_screen import Plan


def sink_label(raw: dict[str, Any]) -> str:
    where = raw.get("path") or "/".join(str(x) for x in (raw.get("bucket"), raw.get("prefix")) if x)
    return f"{raw.get('type', '?')}:{where}"


class BackupOps:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.cfg = session.config
        self.sinks = tuple(sink_label(s) for s in self.cfg.section("backup").get("sinks") or ()) or ("(none)",)

    def _settings(self) -> Any:
        return self.session.backup_settings

    def _sink(self, settings: Any) -> Any:
        from vaultops.services.backup.runner import build_sinks

        return build_sinks(self.cfg, settings)[0]

    def entries(self) -> list[Any]:
        from vaultops.services.backup.catalog import list_backups

        settings = self._settings()
        return list_backups(self._sink(settings), cluster=settings.cluster)

    def run(self, emit: Callable[..., None]) -> Any:
        from vaultops.services.backup.runner import run_backup

        # its own clients: the backup identity logs in on them (the dashboard's keep their token)
        return run_backup(self.cfg, self._settings(), emit=emit, connect=self.session.new_clients,
                          journal=self.session.journal)

    def drill(self, shares: list[str], emit: Callable[..., None]) -> Any:
        """Every input checked first (services/backup/drill.plan_drill), as `vaultops backup drill` does."""
        from vaultops.errors import ConfigError
        from vaultops.services.backup.drill import plan_drill, run_drill

        settings = self._settings()
        sink = self._sink(settings)
        path = self.session.manifest_path()
        if path is not None and not path.exists():
            raise ConfigError(f"keyholder manifest {path} (from vaultops.yaml) does not exist",
                              hint="restore it: the drill checks the shares against it before restoring")
        plan = plan_drill(settings, sink, lines=shares, name=None, keyholder_manifest=path,
                          warn=lambda m: emit("warning", message=m))
        return run_drill(self.cfg, settings, sink, plan, keep=False, emit=emit, journal=self.session.journal)


class TlsOps:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.configured = bool(session.config.section("tls"))

    @property
    def settings(self) -> Any:
        return self.session.tls_settings

    @property
    def renew_fraction(self) -> float:
        return float(self.settings.acme.renew_fraction) if self.configured else 1 / 3

    def status(self) -> list[Any]:
        from vaultops.services.tls.status import drivers_for, tls_status

        return tls_status(self.settings, drivers_for(self.settings))

    def renew(self, *, force: bool, emit: Callable[[dict[str, Any]], None]) -> Any:
        from vaultops.dns import get_provider
        from vaultops.services.tls.acme_client import AcmeIssuer
        from vaultops.services.tls.cron import journal_renewal, renewal_lock, write_metrics
        from vaultops.services.tls.renew import cluster_roles, renew
        from vaultops.services.tls.status import drivers_for

        s = self.settings
        try:
            roles = cluster_roles(self.session.clients(token=False, timeout=5.0))
        except VaultOpsError:
            roles = {}  # unknown roles: reload in config order
        with renewal_lock(s.lock_file):
            issuer = AcmeIssuer(s.acme, get_provider(s.dns_provider))
            report = renew(s, drivers=drivers_for(s), issuer=issuer, roles=roles, force=force, emit=emit)
            write_metrics(s.metrics_file, report)
            journal_renewal(self.session.journal, self.session.config.cluster_name, report)
        return report


class UpgradeOps:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.cfg, self.operator = session.config, session.operator
        self.cluster = self.cfg.cluster_name
        self.keyholders = tuple(_keyholders(self.cfg))

    def last(self) -> RunState | None:
        from vaultops.runbook.state import load_state
        from vaultops.services.upgrade.service import state_path

        path = state_path(self.cfg, "upgrade")
        return load_state(path) if path.exists() else None

    def _context(self, unsealer: Unsealer, ask: Callable[[str], bool] | None = None,
                 emit: Callable[[str], None] = lambda _m: None) -> UpgradeContext:
        from vaultops.services.upgrade.context import Prompter, build_context
        from vaultops.services.upgrade.service import make_unsealer
        from vaultops.services.upgrade.unseal import KeyholderPause

        s = self.session
        chosen = make_unsealer(self.cfg, None,  # auto-unseal clusters need no keyholders
                               clients=s.clients(token=False), journal=s.journal)
        return build_context(self.cfg, clients=s.clients(), drivers=s.drivers(), journal=s.journal,
                             unsealer=unsealer if isinstance(chosen, KeyholderPause) else chosen,
                             prompter=Prompter(ask=ask), emit=emit, consul=s.consul(),
                             connect=lambda: s.new_clients(token=True))

    def plan(self, to: str) -> Plan:
        from vaultops.services.upgrade.service import default_runbook, make_plan
        from vaultops.services.upgrade.unseal import KeyholderPause
        from vaultops.tui.upgrade_screen import Plan

        ctx = self._context(KeyholderPause(list(self.keyholders)))
        _, variables, steps = make_plan(ctx, default_runbook(self.cfg), {"to": to})
        _precheck(ctx)(variables)
        return Plan(current=variables["current_version"], to=to, leader=variables["leader"], steps=tuple(steps))

    def run(self, to: str, *, listener: Callable[[RunState], None], unsealer: Unsealer,
            ask: Callable[[str], bool], emit: Callable[[str], None]) -> RunState:
        from vaultops.services.upgrade.service import default_runbook, start_run

        ctx = self._context(unsealer, ask, emit)
        return start_run(self.cfg, ctx, runbook_path=default_runbook(self.cfg), params={"to": to},
                         operator=self.operator, listener=listener, emit=emit, precheck=_precheck(ctx))

    def resume(self, *, listener: Callable[[RunState], None], unsealer: Unsealer,
               ask: Callable[[str], bool], emit: Callable[[str], None]) -> RunState:
        from vaultops.services.upgrade.service import resume_run

        ctx = self._context(unsealer, ask, emit)
        return resume_run(self.cfg, ctx, operator=self.operator, listener=listener, emit=emit)

    def ceremony(self, node: str) -> UnsealCeremony:
        clients = [c for c in self.session.clients(token=False) if c.name == node]
        return make_ceremony(self.cfg, clients, journal=self.session.journal)


def _precheck(ctx: UpgradeContext) -> Callable[[dict[str, Any]], None]:
    """No mixed versions, no downgrades, no no-ops: refused before a run is recorded."""
    from vaultops.services.upgrade.preflight import check_target

    def check(variables: dict[str, Any]) -> None:
        if "," in variables["current_version"]:
            raise RunbookError(f"the nodes run different versions: {variables['current_version']}",
                               hint="an interrupted upgrade? resume it (r)")
        try:
            history = ctx.clients[variables["leader"]].ha.version_history()
        except VaultOpsError:
            history = []
        check_target(variables["current_version"], variables["to"], history)
    return check


def _keyholders(cfg: Config) -> list[str]:
    loaded = load_manifest(cfg)
    return [k.name for k in loaded[0].keyholders] if loaded else []


def load_manifest(cfg: Config) -> tuple[Any, Path] | None:
    """The keyholder manifest named in vaultops.yaml, or None (the ceremony then warns: unchecked)."""
    from vaultops.services.ceremony.manifest import Manifest, manifest_path

    if not cfg.section("keyholders").get("manifest"):
        return None
    path = manifest_path(cfg)
    try:
        return Manifest.load(path), path
    except VaultOpsError:
        return None


def make_ceremony(cfg: Config, clients: list[Any], *, journal: Journal | None) -> UnsealCeremony:
    from vaultops.services.ceremony.unseal import UnsealCeremony

    loaded = load_manifest(cfg)
    return UnsealCeremony(clients, manifest=loaded[0] if loaded else None, manifest_path=loaded[1] if loaded else None,
                          journal=journal)


__all__ = ["BackupOps", "TlsOps", "UpgradeOps", "load_manifest", "make_ceremony", "sink_label"]
