from __future__ import annotations

from pathlib import Path

import pytest

from vaultops.config import load_config, parse_config_file
from vaultops.errors import ConfigError

GOOD = """
cluster: {name: prod, storage: raft}
nodes:
  - {name: v1, address: "https://v1.example.com:8200"}
  - {name: v2, address: "https://v2.example.com:8200/", driver: {type: ssh, host: v2}}
backup: {sinks: []}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "vaultops.yaml"
    p.write_text(text)
    return p


def test_parses_nodes_and_keeps_later_sections(tmp_path: Path) -> None:
    cfg = parse_config_file(write(tmp_path, GOOD))
    assert [n.name for n in cfg.nodes] == ["v1", "v2"]
    assert cfg.nodes[1].address == "https://v2.example.com:8200"
    assert cfg.nodes[1].driver == {"type": "ssh", "host": "v2"}
    assert cfg.section("backup") == {"sinks": []}
    assert cfg.node("v2").name == "v2"
    with pytest.raises(ConfigError, match="unknown node 'v9'.*known nodes: v1, v2"):
        cfg.node("v9")


@pytest.mark.parametrize(("text", "expected"), [
    ("cluster: {storage: zookeeper}\nnodes: [{name: a, address: 'https://a:8200'}]", "cluster.storage"),
    ("nodes: []", "nodes: expected a list of length >= 1"),
    ("nodes: [{address: 'https://a:8200'}]", r"nodes\[0\]: missing key 'name'"),
    ("nodes: [{name: a, address: 'ftp://a'}]", r"nodes\[0\].address: 'ftp://a' is not an http\(s\) URL"),
    ("nodes: [{name: a, address: 'https://a'}, {name: a, address: 'https://b'}]", "used twice"),
    ("nodes: [{name: a, address: 'https://a', colour: red}]", "unknown key 'colour'"),
    ("nodez: []", "unknown key 'nodez'"),
    ("nodes: [{name: a, address: 'https://a'}]\nbackup: 3", "backup: expected a mapping, got an integer"),
    ("cluster: {ca_cert: /nonexistent/ca.pem}\nnodes: [{name: a, address: 'https://a'}]", "does not exist"),
    ("nodes: [{name: a, address: 'https://a'}\n", "not valid YAML"),
])
def test_invalid_config_names_file_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        parse_config_file(path)
    assert str(path) in str(info.value)


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="VAULT_ADDR"):
        load_config()
    monkeypatch.setenv("BAO_ADDR", "https://bao.example.com:8200")
    assert load_config().nodes[0].address == "https://bao.example.com:8200"
    monkeypatch.setenv("VAULT_ADDR", "https://vault.example.com:8200")
    assert load_config().nodes[0].name == "vault.example.com"
    home_cfg = Path.home() / ".config" / "vaultops" / "vaultops.yaml"
    home_cfg.parent.mkdir(parents=True, exist_ok=True)
    home_cfg.write_text(GOOD.replace("prod", "home"))
    try:
        assert load_config().cluster_name == "home"
        write(no_config_dir, GOOD.replace("prod", "cwd"))
        assert load_config().cluster_name == "cwd"
        other = tmp_path / "other.yaml"
        other.write_text(GOOD.replace("prod", "env"))
        monkeypatch.setenv("VAULTOPS_CONFIG", str(other))
        assert load_config().cluster_name == "env"
        explicit = tmp_path / "x.yaml"
        explicit.write_text(GOOD.replace("prod", "explicit"))
        assert load_config(str(explicit)).cluster_name == "explicit"
        with pytest.raises(ConfigError, match="does not exist"):
            load_config(str(tmp_path / "missing.yaml"))
    finally:
        home_cfg.unlink()
