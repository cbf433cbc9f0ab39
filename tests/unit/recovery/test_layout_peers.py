"""Where a node keeps its raft data (server config, settings, node-id file), and peers.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vaultops.drivers.local import LocalDriver
from vaultops.errors import ConfigError, UsageError
from vaultops.services.recovery import layout, peers
from vaultops.services.recovery.settings import RecoveryNode, RecoverySection

HCL = '''# a server config
storage "raft" {
  path = "/opt/openbao/data"   # the raft path
  node_id = "vault-1"
  retry_join {
    leader_api_addr = "https://vault-2:8200"
    path = "not this one"
  }
}
listener "tcp" {
  address = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
}
api_addr = "https://vault-1:8200"
cluster_addr = "https://10.0.0.1:8201"   // the raft address
'''


def test_the_three_settings_are_read_from_the_server_config() -> None:
    assert layout.server_settings(HCL) == {"path": "/opt/openbao/data", "node_id": "vault-1",
                                           "cluster_addr": "https://10.0.0.1:8201"}


def test_a_local_node_is_read_from_its_config_hcl_and_node_id_file(tmp_path: Path) -> None:
    (tmp_path / "config.hcl").write_text(HCL.replace('  node_id = "vault-1"\n', "").replace(
        "/opt/openbao/data", str(tmp_path / "data")))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "node-id").write_text("3f1c-uuid\n")
    drv = LocalDriver("n1", {"type": "local", "dir": str(tmp_path)})
    found = layout.resolve("n1", drv, RecoverySection(), driver_settings={"type": "local", "dir": str(tmp_path)})
    assert found == layout.NodeLayout("n1", str(tmp_path / "data"), "3f1c-uuid", "10.0.0.1:8201")
    assert found.data_file("raft/raft.db") == str(tmp_path / "data" / "raft" / "raft.db")


def test_settings_win_and_the_recorded_membership_fills_the_address() -> None:
    section = RecoverySection(nodes={"n1": RecoveryNode(raft_path="/data", raft_id="id-1")})
    found = layout.resolve("n1", None, section, driver_settings={}, seen={"id-1": {"address": "10.9.9.9:8201"}})
    assert (found.raft_path, found.raft_id, found.cluster_address) == ("/data", "id-1", "10.9.9.9:8201")
    unknown = layout.resolve("n2", None, section, driver_settings={})
    with pytest.raises(ConfigError, match="recovery.nodes.n2.raft_path"):
        unknown.need_path()
    with pytest.raises(ConfigError, match="cluster_address"):
        unknown.need_address()


def test_peers_json_is_the_new_style_list_written_0600(tmp_path: Path) -> None:
    (tmp_path / "data" / "raft").mkdir(parents=True)
    lay = layout.NodeLayout("n1", str(tmp_path / "data"), "node1", "127.0.0.1:8201")
    drv = LocalDriver("n1", {"type": "local", "dir": str(tmp_path)})
    path = peers.write(drv, lay, peers.peers_for([lay]))
    assert json.loads(Path(path).read_text()) == [{"id": "node1", "address": "127.0.0.1:8201", "non_voter": False}]
    assert Path(path).stat().st_mode & 0o777 == 0o600
    assert peers.present(drv, lay)
    Path(path).unlink()
    assert not peers.present(drv, lay)


def test_peers_refuses_duplicates_and_addresses_that_are_not_host_port() -> None:
    a = layout.NodeLayout("a", "/d", "x", "10.0.0.1:8201")
    with pytest.raises(UsageError, match="twice"):
        peers.peers_for([a, layout.NodeLayout("b", "/d", "x", "10.0.0.2:8201")])
    with pytest.raises(UsageError, match="not host:port"):
        peers.peers_for([layout.NodeLayout("c", "/d", "c", "https://10.0.0.3")])


def test_set_aside_renames_and_never_deletes(tmp_path: Path) -> None:
    drv = LocalDriver("n1", {"type": "local", "dir": str(tmp_path)})
    (tmp_path / "raft").mkdir()
    (tmp_path / "raft" / "raft.db").write_bytes(b"log")
    res = drv.set_aside(str(tmp_path / "raft"), suffix=".aside-1")
    assert res.ok and (tmp_path / "raft.aside-1" / "raft.db").read_bytes() == b"log"
    assert "nothing there" in drv.set_aside(str(tmp_path / "raft"), suffix=".aside-2").stdout
    from vaultops.errors import DriverError
    for bad in ("/x", ".a/b", ". -rf", "", ".a" * 40):
        with pytest.raises(DriverError):
            drv.set_aside(str(tmp_path / "raft.aside-1"), suffix=bad)
