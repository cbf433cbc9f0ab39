"""The pre-upgrade backup logs in (and revokes its token) on clients of its own, never the steps' clients."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from vaultops.errors import RunbookError
from vaultops.services.upgrade import snapshot


def _ctx(connect: Any) -> Any:
    cfg = SimpleNamespace(section=lambda name: {"sinks": [{"type": "local", "path": "/x"}]} if name == "backup" else {})
    steps_clients = {"node1": SimpleNamespace(name="node1", token="operator-token")}
    return SimpleNamespace(backup="required", cfg=cfg, clients=steps_clients, connect=connect, journal=None,
                           storage="raft")


def test_the_backup_gets_the_contexts_fresh_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = [SimpleNamespace(name="node1", token="operator-token")]
    seen: dict[str, Any] = {}

    def run_backup(cfg: Any, settings: Any, *, emit: Any, connect: Any, journal: Any) -> Any:
        clients = connect()
        for c in clients:           # what an AppRole identity does: log in, then revoke
            c.token = "revoked"
        seen["clients"] = clients
        return SimpleNamespace(ok=True, verified=True, name="b", size=1, manifest=None, sinks={}, error=None)

    monkeypatch.setattr("vaultops.services.backup.runner.run_backup", run_backup)
    monkeypatch.setattr("vaultops.services.backup.settings.load_settings", lambda cfg: None)
    ctx = _ctx(lambda: fresh)
    snapshot._backup_service(ctx)
    assert seen["clients"] is fresh
    assert ctx.clients["node1"].token == "operator-token"   # the steps keep a working token


def test_without_a_factory_the_backup_step_halts_with_a_way_on() -> None:
    with pytest.raises(RunbookError, match="no clients for the pre-upgrade backup") as err:
        snapshot._backup_service(_ctx(None))
    assert "--no-backup" in (err.value.hint or "")
