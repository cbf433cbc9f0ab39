"""`upgrade rollback` moves raft data aside through the ssh driver too (a real sshd on 127.0.0.1):
the raft path is read from the node's server configuration through the driver, `raft` and
`vault.db` are renamed (never deleted) and the node-id file stays; a node whose raft path nothing
names is found by the first step's check, before the cluster is taken down."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vaultops.config import parse_config
from vaultops.drivers import get_driver
from vaultops.errors import RunbookError
from vaultops.services.recovery.layout import RaftData
from vaultops.services.upgrade.restore_steps import movable, rollback_loss, set_aside
from vaultops.testing.sshd import SSHServer

pytestmark = pytest.mark.integration


def _node(folder: Path) -> Path:
    data = folder / "data"
    (data / "raft").mkdir(parents=True)
    (data / "raft" / "raft.db").write_bytes(b"log")
    (data / "vault.db").write_bytes(b"fsm")
    (data / "node-id").write_text("vault-1\n")
    (folder / "openbao.hcl").write_text(f'# the node\'s own config\nstorage "raft" {{\n  path = "{data}"\n'
                                        f'  node_id = "vault-1"\n}}\ncluster_addr = "https://10.0.0.1:8201"\n')
    return data


def _context(sshd: SSHServer, tmp_path: Path, recovery: dict[str, Any]) -> Any:
    ssh = {"type": "ssh", "host": "127.0.0.1", "port": sshd.port, "options": sshd.options()}
    cfg = parse_config({"cluster": {"name": "c", "storage": "raft"},
                        "nodes": [{"name": n, "address": f"https://{n}.example:8200", "driver": ssh}
                                  for n in ("vault-1", "vault-2")],
                        "recovery": {"nodes": recovery}}, path=tmp_path / "vaultops.yaml")
    drivers = {n.name: get_driver(n.name, n.driver) for n in cfg.nodes}
    return SimpleNamespace(cfg=cfg, drivers=drivers, raft_data=RaftData(cfg, drivers), storage="raft")


def test_the_ssh_driver_sets_raft_data_aside_where_the_server_config_says(sshd: SSHServer, tmp_path: Path) -> None:
    data = _node(tmp_path / "vault-1")
    ctx = _context(sshd, tmp_path, {"vault-1": {"server_config": str(tmp_path / "vault-1" / "openbao.hcl")},
                                    "vault-2": {"raft_path": str(tmp_path / "vault-2" / "data")}})
    assert movable(ctx) == []
    evidence = set_aside.run(ctx, node="vault-1", label="before-rollback")
    assert len(evidence["moved"]) == 2
    kept = sorted(p.name for p in data.iterdir())
    assert "raft" not in kept and "vault.db" not in kept and "node-id" in kept
    assert {p.split(".before-rollback-")[0] for p in kept if ".before-rollback-" in p} == {"raft", "vault.db"}
    assert (data / next(p for p in kept if p.startswith("raft.")) / "raft.db").read_bytes() == b"log"
    assert set_aside.run(ctx, node="vault-2", label="before-rollback")["summary"] == "no raft data there"


def test_a_node_whose_raft_path_nothing_names_stops_the_rollback_before_anything_is_down(
        sshd: SSHServer, tmp_path: Path) -> None:
    _node(tmp_path / "vault-1")
    ctx = _context(sshd, tmp_path, {"vault-1": {"server_config": str(tmp_path / "vault-1" / "openbao.hcl")}})
    problems = movable(ctx)
    assert len(problems) == 1 and "vault-2: where it keeps its raft data is unknown" in problems[0]
    touched: list[str] = []
    ctx.drivers["vault-1"].stop = lambda **_k: touched.append("stop")   # nothing may be stopped
    with pytest.raises(RunbookError, match="cannot roll back: vault-2: where it keeps its raft data is unknown"):
        rollback_loss.run(ctx, snapshot="x.snap", sha256="", source="file", snapshot_at="t", upgrade_run="r",
                          to="2.6.2")
    assert touched == [] and (tmp_path / "vault-1" / "data" / "raft").is_dir()
