"""Backups of Consul through vaultops.testing.consul_double (a test double, not Consul)."""
from __future__ import annotations

import json

import pytest

from vaultops.cli import main
from vaultops.services.backup.catalog import list_backups
from vaultops.services.backup.stored import read_manifest
from vaultops.services.backup.settings import load_settings


def consul_cfg(make_cfg, consul, tmp_path, token: str | None = None):
    token_file = tmp_path / "consul-token"
    token_file.write_text((token or consul.token) + "\n")
    return make_cfg({"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                     "consul": {"address": consul.address, "token_file": str(token_file)},
                     "metrics_file": str(tmp_path / "m.prom")})


def files(tmp_path):
    out = tmp_path / "out"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_consul_backup_is_published_with_manifest(make_cfg, consul, tmp_path, capsys) -> None:
    consul.kv["vault/core/keyring"] = b"k" * 100
    cfg = consul_cfg(make_cfg, consul, tmp_path)
    assert main(["--config", str(cfg.path), "backup", "run", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["verified"]
    settings = load_settings(cfg)
    sink_entries = list_backups(__import__("vaultops.storage", fromlist=["get_sink"]).get_sink(
        settings.sinks[0]), cluster="unit")
    assert len(sink_entries) == 1
    from vaultops.storage import get_sink
    manifest = read_manifest(get_sink(settings.sinks[0]), sink_entries[0].name)
    assert manifest.kind == "consul" and manifest.consul_index == consul.index
    assert "SHA256SUMS.sealed" not in manifest.members
    assert "vaultops_backup_last_success_timestamp_seconds" in (tmp_path / "m.prom").read_text()


def test_wrong_acl_token_fails_and_publishes_nothing(make_cfg, consul, tmp_path, capsys) -> None:
    cfg = consul_cfg(make_cfg, consul, tmp_path, token="wrong")
    assert main(["--config", str(cfg.path), "backup", "run"]) == 6
    err = capsys.readouterr().err
    assert "permission denied" in err
    assert files(tmp_path) == []
    assert "vaultops_backup_last_run_success{cluster=\"unit\"} 0" in (tmp_path / "m.prom").read_text()


@pytest.mark.parametrize("fault", ["truncate_next", "corrupt_next"])
def test_broken_consul_snapshot_is_not_published(make_cfg, consul, tmp_path, capsys, fault) -> None:
    cfg = consul_cfg(make_cfg, consul, tmp_path)
    setattr(consul, fault, True)
    assert main(["--config", str(cfg.path), "backup", "run"]) == 6
    assert files(tmp_path) == []  # no temp file either
    assert consul.snapshots_served == 1


def test_consul_restore_round_trip(make_cfg, consul, tmp_path, capsys) -> None:
    consul.kv["vault/sys/token/x"] = b"before"
    cfg = consul_cfg(make_cfg, consul, tmp_path)
    assert main(["--config", str(cfg.path), "backup", "run"]) == 0
    consul.kv["vault/sys/token/x"] = b"after"
    assert main(["--config", str(cfg.path), "backup", "restore", "latest", "--yes"]) == 0
    assert consul.restores == 1 and consul.kv["vault/sys/token/x"] == b"before"


def test_consul_inspect_and_verify(make_cfg, consul, tmp_path, capsys) -> None:
    cfg = consul_cfg(make_cfg, consul, tmp_path)
    assert main(["--config", str(cfg.path), "backup", "run"]) == 0
    capsys.readouterr()
    assert main(["--config", str(cfg.path), "backup", "verify", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["--config", str(cfg.path), "backup", "inspect", "--format", "json"]) == 0
    ins = json.loads(capsys.readouterr().out)
    assert ins["manifest"]["kind"] == "consul" and ins["meta"]["ID"].endswith("double")


def test_prune_after_run_keeps_policy(make_cfg, consul, tmp_path, capsys) -> None:
    token_file = tmp_path / "consul-token"
    token_file.write_text(consul.token)
    cfg = make_cfg({"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                    "consul": {"address": consul.address, "token_file": str(token_file)},
                    "retention": {"keep_last": 2, "min_keep": 1}, "prune_after_run": True})
    for _ in range(4):
        assert main(["--config", str(cfg.path), "backup", "run"]) == 0
    snaps = [n for n in files(tmp_path) if n.endswith(".snap")]
    assert len(snaps) == 2 and len([n for n in files(tmp_path) if n.endswith(".manifest.json")]) == 2
    assert '"event": "prune.deleted"' in capsys.readouterr().err
    # a failed run blocks pruning
    consul.truncate_next = True
    assert main(["--config", str(cfg.path), "backup", "run"]) == 6
    assert main(["--config", str(cfg.path), "backup", "prune"]) == 6
    assert "not pruning" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["http://consul.example.com:8500", "http://10.0.0.5:8500",
                                     "http://[2001:db8::1]:8500", "http://127.0.0.1.nip.io:8500"])
def test_plain_http_to_a_remote_consul_is_refused(make_cfg, tmp_path, capsys, address) -> None:
    """The ACL token would cross the network in clear: refused before any connection, like Vault."""
    token_file = tmp_path / "consul-token"
    token_file.write_text("secret-acl-token")
    cfg = make_cfg({"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                    "consul": {"address": address, "token_file": str(token_file)},
                    "metrics_file": str(tmp_path / "m.prom"), "state_file": str(tmp_path / "state.json")})
    assert main(["--config", str(cfg.path), "backup", "run"]) == 3
    err = capsys.readouterr().err
    assert "refusing plain http to Consul" in err and "secret-acl-token" not in err and "Traceback" not in err
    assert files(tmp_path) == []
    # a run refused before any byte moved is still a failed run: one event, state, metrics, journal
    assert [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")] == ["run.failed"]
    assert json.loads((tmp_path / "state.json").read_text())["ok"] is False
    assert 'vaultops_backup_last_run_success{cluster="unit"} 0' in (tmp_path / "m.prom").read_text()
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [(j["action"], j["outcome"]) for j in journal] == [("backup.run", "failed")]


def test_allow_insecure_http_lets_plain_http_through(make_cfg, tmp_path) -> None:
    """Consul follows the Vault clients the session built: plain http only when they were allowed it."""
    from vaultops.errors import SecurityError
    from vaultops.services.backup.formats import make_source
    from vaultops.services.backup.formats.consul import ConsulSource
    from vaultops.services.backup.settings import load_settings
    from vaultops.vault import NodeClient

    cfg = make_cfg({"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                    "consul": {"address": "http://consul.example.com:8500"}})
    settings = load_settings(cfg)
    allowed = [NodeClient("node1", "http://vault.example.com:8200", allow_insecure_http=True)]
    source = make_source("consul", clients=allowed, settings=settings)
    assert isinstance(source, ConsulSource)
    for clients in ([], [NodeClient("node1", "http://127.0.0.1:8200")]):
        with pytest.raises(SecurityError, match="refusing plain http to Consul"):
            make_source("consul", clients=clients, settings=settings)
    for loopback in ("http://127.0.0.1:8500", "http://localhost:8500", "http://[::1]:8500"):
        assert ConsulSource(loopback, token=None).address == loopback


@pytest.mark.parametrize("content", [b"line1\nline2\n", b"\xff\xfe token", b"", b"tok\x00en"])
def test_a_damaged_consul_token_file_is_one_line(make_cfg, tmp_path, capsys, content) -> None:
    token_file = tmp_path / "consul-token"
    token_file.write_bytes(content)
    cfg = make_cfg({"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                    "consul": {"address": "http://127.0.0.1:9", "token_file": str(token_file)}})
    assert main(["--config", str(cfg.path), "backup", "run"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "token_file" in err
