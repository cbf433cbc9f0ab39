"""The release table's `config` checks, run by the preflight against each node's server configuration.

The configuration is read through the node's driver (`driver.config_file`; the
local driver knows its own), so the check sees what the server will read when
it restarts on the target -- not what vaultops.yaml believes. Only the few
facts the checks need are scanned (seal and `plugin "kms"` stanzas,
plugin_directory); the file is never echoed into evidence or errors.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vaultops.errors import RunbookError, VaultOpsError
from vaultops.services.upgrade.releases_known import PLUGIN_FORM_SINCE, REMOVED_SEALS, PairReport
from vaultops.services.upgrade.versions import parse_version

if TYPE_CHECKING:
    from vaultops.drivers import NodeDriver

CONFIG_CAP = 1 << 20
_COMMENT = re.compile(r'("(?:[^"\\]|\\.)*")|#[^\n]*|//[^\n]*|/\*.*?\*/', re.S)
_BLOCK = re.compile(r'^\s*(seal|plugin)\s+((?:"[^"\n]*"\s*)+)\{', re.M)
_ATTR = r'(?m)^\s*{key}\s*=\s*"([^"\n]*)"'


@dataclass(frozen=True)
class ServerConfig:
    """The facts of one node's server configuration that the release checks read."""

    seals: tuple[str, ...]                     # seal stanza types, in order
    kms_plugins: dict[str, dict[str, str]]     # plugin "kms" NAME -> {command, sha256sum}
    plugin_directory: str | None


def parse_server_config(text: str) -> ServerConfig:
    text = _COMMENT.sub(lambda m: m.group(1) or "", text)
    seals: list[str] = []
    plugins: dict[str, dict[str, str]] = {}
    for match in _BLOCK.finditer(text):
        labels = re.findall(r'"([^"\n]*)"', match.group(2))
        body = _body(text, match.end())
        if match.group(1) == "seal" and labels:
            seals.append(labels[0])
        elif match.group(1) == "plugin" and len(labels) >= 2 and labels[0] == "kms":
            plugins[labels[1]] = {k: v for k in ("command", "sha256sum") if (v := _attr(body, k)) is not None}
    return ServerConfig(tuple(seals), plugins, _attr(_flatten(text), "plugin_directory"))


def _body(text: str, start: int) -> str:
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start:i - 1]


def _flatten(text: str) -> str:
    """Nested blocks removed innermost first, so what is left is the top level."""
    while True:
        reduced = re.sub(r"\{[^{}]*\}", "", text)
        if reduced == text:
            return text
        text = reduced


def _attr(body: str, key: str) -> str | None:
    found = re.search(_ATTR.format(key=re.escape(key)), body)
    return found.group(1) if found else None


def config_file(driver: NodeDriver) -> str | None:
    """The server's HCL file on the node: an optional driver attribute (not every driver knows it)."""
    value = getattr(driver, "config_file", None)
    return value if isinstance(value, str) and value else None


def run_config_checks(report: PairReport, drivers: dict[str, NodeDriver], *, seal_type: str) -> dict[str, Any]:
    """Every `config` check of *report* on every node; RunbookError naming node, stanza and fix on the first miss."""
    if not any(t.kind == "config" for t in report.checks):
        return {}
    results: dict[str, Any] = {}
    for node, driver in drivers.items():
        results[node] = _seal_move(node, driver, report, seal_type)
    return results


def _seal_move(node: str, driver: NodeDriver, report: PairReport, seal_type: str) -> str:
    path = config_file(driver)
    if path is None:
        if seal_type in REMOVED_SEALS:
            raise RunbookError(
                f"preflight: the cluster's seal is {seal_type}, which OpenBao {report.target} no longer has built "
                f"in, and vaultops cannot read {node}'s server configuration",
                hint=f"set nodes[{node}].driver.config_file to the server's HCL file so the preflight can check "
                     "its seal and plugin stanzas (`vaultops config from-terraform` writes it)")
        return f"not read (no driver.config_file); the cluster's seal is {seal_type}"
    cfg = parse_server_config(_read(node, driver, path).decode("utf-8", "replace"))
    for seal in cfg.seals:
        if seal in REMOVED_SEALS:
            _plugin_ready(node, driver, path, seal, cfg, report)
    return f"{path}: seal {', '.join(cfg.seals) or 'shamir'}; ok for {report.target}"


def _plugin_ready(node: str, driver: NodeDriver, path: str, seal: str, cfg: ServerConfig,
                  report: PairReport) -> None:
    binary = REMOVED_SEALS[seal]
    stanza = f'seal "{seal}"'
    fix = (f'install the KMS plugin binary {binary} in plugin_directory on {node} and add '
           f'`plugin "kms" "{seal}" {{ command = "{binary}"  sha256sum = "<sha256 of the binary>" }}` '
           f"beside the {stanza} stanza in {path}")
    if parse_version(report.current) < PLUGIN_FORM_SINCE:
        fix = (f"upgrade to 2.6.x first (the plugin form exists since 2.6.0), then {fix}")
    plugin = cfg.kms_plugins.get(seal)
    why = None
    if plugin is None or "command" not in plugin:
        why = f'it has {stanza} but no `plugin "kms" "{seal}"` stanza with a command'
    elif cfg.plugin_directory is None:
        why = f'it has `plugin "kms" "{seal}"` but no plugin_directory'
    else:
        why = _binary_problem(node, driver, cfg.plugin_directory, plugin)
    if why is not None:
        raise RunbookError(
            f"preflight: {node}: {path}: {stanza} is no longer built into OpenBao {report.target}: {why}",
            hint=f"{fix}; restart {node} on {report.current} to prove it, then run the upgrade again",
            evidence={"node": node, "config_file": path, "stanza": stanza, "plugin_binary": binary,
                      "plugin_directory": cfg.plugin_directory, "check": "seal-plugins-2.7"})


def _binary_problem(node: str, driver: NodeDriver, directory: str, plugin: dict[str, str]) -> str | None:
    command = plugin["command"].split()[0] if plugin["command"].strip() else ""
    if not command or "/" in command or command in (".", ".."):
        return f"the plugin command {command!r} must be a file name inside plugin_directory"
    where = f"{directory.rstrip('/')}/{command}"
    try:
        data = driver.read_file(where)
    except VaultOpsError:
        return f"the plugin binary {where} is not there"
    want = plugin.get("sha256sum")
    if want and hashlib.sha256(data).hexdigest() != want.lower():
        return f"the plugin binary {where} does not match the stanza's sha256sum"
    return None


def _read(node: str, driver: NodeDriver, path: str) -> bytes:
    try:
        data = driver.read_file(path)
    except VaultOpsError as exc:
        raise RunbookError(f"preflight: cannot read {node}'s server configuration {path}: {exc.message}",
                           hint="fix nodes[].driver.config_file or the node's access, then run again") from None
    if len(data) > CONFIG_CAP:
        raise RunbookError(f"preflight: {node}: {path} is larger than {CONFIG_CAP >> 20} MiB",
                           hint="point driver.config_file at the server's HCL configuration")
    return data
