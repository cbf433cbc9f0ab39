"""Node drivers, chosen by name from the node's `driver.type`."""

from __future__ import annotations

import importlib
from typing import Any

from vaultops.drivers.base import NodeDriver, Result
from vaultops.errors import ConfigError

# name -> "module:Class"; a new driver is one module and one line here.
DRIVERS = {
    "local": "vaultops.drivers.local:LocalDriver",
    "ssh": "vaultops.drivers.ssh:SSHDriver",
}


def get_driver(node: str, settings: dict[str, Any]) -> NodeDriver:
    kind = settings.get("type", "ssh")
    target = DRIVERS.get(kind)
    if target is None:
        raise ConfigError(f"node {node}: unknown driver type {kind!r}", hint=f"use one of {', '.join(DRIVERS)}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(node, settings)


__all__ = ["DRIVERS", "NodeDriver", "Result", "get_driver"]
