"""The composition root (vaultops/session.py): one config load per invocation, every client built with
the operator's --allow-insecure-http, clients shared per (token, timeout), everything closed at the end;
and the layering it exists for (no TUI module imports the CLI, no service wires itself)."""

from __future__ import annotations

import ast
import io
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from vaultops.cli import main
from vaultops.errors import ConfigError, SecurityError
from vaultops.session import Session

PACKAGE = Path(__file__).resolve().parents[2] / "vaultops"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, *, host: str = "127.0.0.1") -> Path:
    data = {"cluster": {"name": "unit"},
            "nodes": [{"name": f"node{i}", "address": f"http://{host}:{closed_port()}"} for i in (1, 2)],
            "journal": {"path": str(tmp_path / "journal.jsonl"), "anchor": {"kv": False}},
            "backup": {"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                       "state_file": str(tmp_path / "backup-state.json")}}
    path = tmp_path / "vaultops.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every vaultops.yaml parsed, in order."""
    import vaultops.config

    seen: list[Path] = []
    real = vaultops.config.parse_config_file

    def counting(path: Path) -> Any:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(vaultops.config, "parse_config_file", counting)
    return seen


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every cluster_clients call (the session's one builder)."""
    import vaultops.vault

    calls: list[dict[str, Any]] = []
    real = vaultops.vault.cluster_clients

    def spy(cfg: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(cfg, **kwargs)

    monkeypatch.setattr(vaultops.vault, "cluster_clients", spy)
    return calls


# -- one config load per invocation ----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["status", "--timeout", "0.5"],                      # clients
    ["backup", "run"],                                   # settings, clients, journal, then the anchoring
    ["backup", "list"],
    ["journal", "verify"],                               # a config found, then the anchors' token clients
    ["upgrade", "status"],
    ["keyholders", "list"],                              # the manifest named in vaultops.yaml
], ids=lambda argv: " ".join(argv[:2]))
def test_one_invocation_loads_the_config_once(argv: list[str], tmp_path: Path, loads: list[Path],
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s.unit-test-token")
    config = write_config(tmp_path)
    main(["--config", str(config), *argv])   # the outcome does not matter here, only the loads
    capsys.readouterr()
    assert loads == [config]


def test_a_command_without_a_cluster_loads_no_config(loads: list[Path], monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("01" + "ab" * 32 + "\n"))
    assert main(["--config", "/nonexistent/vaultops.yaml", "shares", "encode", "--to", "base64"]) == 0
    assert loads == []
    assert capsys.readouterr().out.strip()


def test_main_hands_the_handler_its_session_and_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Session] = []
    closed: list[Session] = []
    real_close = Session.close
    monkeypatch.setattr(Session, "close", lambda self: (closed.append(self), real_close(self))[1])

    def handler(session: Session, args: Any) -> int:
        seen.append(session)
        return 0

    monkeypatch.setattr("vaultops.cli.status.cmd_status", handler)
    assert main(["--operator", "alice", "--allow-insecure-http", "status"]) == 0
    [session] = seen
    assert (session.operator, session.allow_insecure_http) == ("alice", True)
    assert closed == [session]


# -- the insecure flag reaches every client ---------------------------------------------------------

def test_the_flag_reaches_every_client_the_session_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s.unit-test-token")
    config = write_config(tmp_path, host="vault.example.com")
    strict = Session(config_path=str(config))
    for build in (strict.clients, lambda: strict.clients(token=False), strict.new_clients):
        with pytest.raises(SecurityError, match="refusing plain http"):
            build()
    allowed = Session(config_path=str(config), allow_insecure_http=True)
    clients = [*allowed.clients(), *allowed.clients(token=False, timeout=2), *allowed.new_clients(),
               allowed.client("node2"), *(allowed.authenticated(1.0) or [])]
    assert len(clients) == 9 and all(c.allow_insecure_http for c in clients)
    assert {c.token for c in allowed.clients()} == {"s.unit-test-token"}
    assert {c.token for c in allowed.clients(token=False)} == {None}
    allowed.close()


@pytest.mark.parametrize("flag", [[], ["--allow-insecure-http"]])
def test_the_flag_given_on_the_command_line_reaches_every_client(flag: list[str], tmp_path: Path,
                                                                  built: list[dict[str, Any]],
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s.unit-test-token")
    config = write_config(tmp_path)
    for argv in (["status", "--timeout", "0.5"], ["backup", "run"], ["tls", "status"], ["upgrade", "plan", "--to", "2.7.2"], ["unseal", "--share-stdin"]):
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        main(["--config", str(config), *flag, *argv])
    capsys.readouterr()
    assert len(built) >= 5
    assert {call["allow_insecure_http"] for call in built} == {bool(flag)}


def test_the_console_children_inherit_the_flags(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    session = Session(config_path=str(config), operator="alice", allow_insecure_http=True)
    assert session.child_argv() == ["--config", str(config), "--operator", "alice", "--allow-insecure-http"]
    assert Session(config_path=str(config)).child_argv() == ["--config", str(config)]


# -- clients cached per (token, timeout); close() ----------------------------------------------------

def test_clients_are_shared_per_token_and_timeout(tmp_path: Path, built: list[dict[str, Any]]) -> None:
    session = Session(config_path=str(write_config(tmp_path)))
    first = session.clients()
    assert session.clients() is first and session.clients(timeout=None) is first
    assert session.client("node2") is first[1]
    unauth = session.clients(token=False)
    short = session.clients(token=False, timeout=2.0)
    assert len({id(first), id(unauth), id(short)}) == 3
    assert session.clients(token=False, timeout=2.0) is short
    assert len(built) == 3
    own = session.new_clients()
    assert session.new_clients() is not own and not set(map(id, own)) & set(map(id, unauth))
    with pytest.raises(ConfigError, match="node9"):
        session.client("node9")


def test_close_closes_every_client_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultops.vault import NodeClient

    closed: list[int] = []
    monkeypatch.setattr(NodeClient, "close", lambda self: closed.append(id(self)))
    session = Session(config_path=str(write_config(tmp_path)))
    made = [*session.clients(), *session.clients(token=False), *session.new_clients()]
    session.close()
    assert sorted(closed) == sorted(map(id, made))
    session.close()
    assert len(closed) == len(made)
    assert session.clients()[0] not in made       # a session can be used again after close()


def test_the_session_is_lazy(tmp_path: Path, loads: list[Path]) -> None:
    session = Session(config_path=str(write_config(tmp_path)))
    assert loads == []
    assert session.journal is session.journal and session.config is session.config
    assert session.backup_settings is session.backup_settings
    assert len(loads) == 1


# -- the layering the session exists for ----------------------------------------------------------

def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return found | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_no_tui_module_imports_the_cli() -> None:
    offenders = [p.name for p in (PACKAGE / "tui").glob("*.py")
                 if any(m == "vaultops.cli" or m.startswith("vaultops.cli.") for m in _imports(p))]
    assert offenders == []


def test_no_service_builds_its_own_config_clients_or_journal() -> None:
    allowed = {PACKAGE / "services" / "sandbox" / "cluster.py"}   # the sandbox's clients of its own cluster
    offenders = [f"{p.relative_to(PACKAGE)}: {call}" for p in sorted((PACKAGE / "services").rglob("*.py"))
                 if p not in allowed for call in ("load_config(", "cluster_clients(", "journal_for(")
                 if call in p.read_text(encoding="utf-8")]
    assert offenders == []
