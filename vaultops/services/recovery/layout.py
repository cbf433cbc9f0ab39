"""Where a node keeps its raft data, its raft server id and its cluster address.

Asked in this order, first answer wins, each fact on its own:
1. `recovery.nodes.<node>` in vaultops.yaml;
2. the node's server configuration (HCL), read through its driver: `storage "raft" { path, node_id }`
   and the top-level `cluster_addr` (a local node's is `config.hcl` in its driver.dir; others name
   it as `recovery.nodes.<node>.server_config`);
3. the raft id only: `<raft path>/node-id`, the file OpenBao writes when node_id is not configured;
4. the membership the cluster last reported (`status` records it: lastseen.py), matched by id.

Only the three attributes are read from the HCL (a small scanner: strings, comments and braces),
not the whole language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from vaultops.errors import ConfigError, DriverError, VaultOpsError
from vaultops.services.recovery.settings import RecoveryNode, RecoverySection

if TYPE_CHECKING:
    from vaultops.config import Config

DATA = ("raft", "vault.db")     # what a raft node keeps under its path; its node-id file stays
_ATTR = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$')
_BLOCK = re.compile(r'^\s*([A-Za-z_]+)(?:\s+"([^"]*)")?\s*\{\s*$')


@dataclass(frozen=True)
class NodeLayout:
    node: str
    raft_path: str | None
    raft_id: str
    cluster_address: str | None

    def data_file(self, name: str) -> str:
        return str(PurePosixPath(self.need_path()) / name)

    def need_path(self) -> str:
        if not self.raft_path:
            raise ConfigError(f"{self.node}: where it keeps its raft data is unknown",
                              hint=f"set recovery.nodes.{self.node}.raft_path (or .server_config) in vaultops.yaml")
        return self.raft_path

    def need_address(self) -> str:
        if not self.cluster_address:
            raise ConfigError(f"{self.node}: its raft cluster address is unknown",
                              hint=f"set recovery.nodes.{self.node}.cluster_address (host:port) in vaultops.yaml")
        return self.cluster_address


def resolve(node: str, driver: Any, section: RecoverySection, *, driver_settings: Mapping[str, Any],
            seen: Mapping[str, Mapping[str, Any]] | None = None, default_id: str | None = None) -> NodeLayout:
    """The layout of *node*; *seen* is the recorded membership (raft id -> {address, ...})."""
    given = section.nodes.get(node) or RecoveryNode()
    hcl = _server_settings(node, driver, given, driver_settings)
    path = given.raft_path or hcl.get("path")
    raft_id = given.raft_id or hcl.get("node_id") or _node_id_file(driver, path) or default_id or node
    address = given.cluster_address or _host_port(hcl.get("cluster_addr"))
    if address is None and seen and raft_id in seen:
        address = str(seen[raft_id].get("address") or "") or None
    return NodeLayout(node=node, raft_path=path, raft_id=raft_id, cluster_address=address)


class RaftData:
    """Each node's raft data moved aside through its driver (renamed, never deleted), wherever the
    layout says it lives: `upgrade rollback` on drivers that cannot move a whole data folder (ssh)."""

    def __init__(self, cfg: Config, drivers: Mapping[str, Any]) -> None:
        self.cfg, self.drivers = cfg, drivers
        self._paths: dict[str, str] = {}

    def path(self, node: str) -> str:
        """Where *node* keeps its raft data (ConfigError when nothing says)."""
        if node not in self._paths:
            from vaultops.services.recovery.settings import recovery_section

            self._paths[node] = resolve(node, self.drivers.get(node), recovery_section(self.cfg),
                                        driver_settings=self.cfg.node(node).driver).need_path()
        return self._paths[node]

    def move_aside(self, node: str, suffix: str) -> list[str]:
        return move_aside(self.drivers[node], self.path(node), suffix)


def move_aside(driver: Any, raft_path: str, suffix: str) -> list[str]:
    """Set aside what a raft node keeps under *raft_path* through *driver*: the commands of the items
    moved (an item not there is skipped)."""
    moved = []
    for name in DATA:
        res = driver.set_aside(str(PurePosixPath(raft_path) / name), suffix=suffix)
        if "nothing there" not in res.stdout:
            moved.append(res.command)
    return moved


def _server_settings(node: str, driver: Any, given: RecoveryNode, driver_settings: Mapping[str, Any]) -> dict[str, str]:
    path = given.server_config
    if path is None and driver_settings.get("type") == "local" and driver_settings.get("dir"):
        path = str(PurePosixPath(str(driver_settings["dir"])) / "config.hcl")
    if path is None or driver is None:
        return {}
    try:
        text = driver.read_file(path).decode(errors="replace")
    except (DriverError, OSError):
        return {}
    return server_settings(text)


def server_settings(text: str) -> dict[str, str]:
    """`path` and `node_id` of the storage "raft" block, and the top-level `cluster_addr`."""
    out: dict[str, str] = {}
    stack: list[str] = []
    for raw in text.splitlines():
        line = _strip_comment(raw)
        block = _BLOCK.match(line)
        if block:
            stack.append(f"{block.group(1)}:{block.group(2) or ''}")
            continue
        if line.strip() == "}":
            if stack:
                stack.pop()
            continue
        attr = _ATTR.match(line)
        if not attr:
            continue
        key, value = attr.group(1), attr.group(2)
        if not stack and key == "cluster_addr":
            out[key] = value
        elif stack == ["storage:raft"] and key in ("path", "node_id"):
            out[key] = value
    return out


def _strip_comment(line: str) -> str:
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and (ch == "#" or line[i:i + 2] == "//"):
            return line[:i]
    return line


def _node_id_file(driver: Any, path: str | None) -> str | None:
    if driver is None or not path:
        return None
    try:
        value = driver.read_file(str(PurePosixPath(path) / "node-id")).decode(errors="replace").strip()
    except (VaultOpsError, OSError):
        return None
    return value if value and value.isprintable() and len(value) <= 128 else None


def _host_port(url: str | None) -> str | None:
    if not url:
        return None
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0] or None


__all__ = ["DATA", "NodeLayout", "RaftData", "move_aside", "resolve", "server_settings"]
