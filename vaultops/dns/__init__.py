"""DNS-01 providers, chosen by name from `tls.dns_provider.type`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from vaultops.dns.base import ChallengeRecords, DNSProvider, Server, TxtRecord
from vaultops.errors import ConfigError

# name -> "module:Class"; a new provider is one module and one line here. Tests that want the
# in-memory fake by name register it themselves (vaultops.testing.dns.register): it is no provider.
PROVIDERS = {
    "rfc2136": "vaultops.dns.rfc2136:RFC2136Provider",
    "route53": "vaultops.dns.route53:Route53Provider",
}


def get_provider(settings: Mapping[str, Any], **kwargs: Any) -> DNSProvider:
    kind = settings.get("type")
    target = PROVIDERS.get(str(kind))
    if target is None:
        raise ConfigError(f"tls.dns_provider.type is {kind!r}",
                          hint=f"use one of {', '.join(PROVIDERS)}")
    module, cls = target.split(":")
    provider: DNSProvider = getattr(importlib.import_module(module), cls)(settings, **kwargs)
    return provider


__all__ = ["PROVIDERS", "ChallengeRecords", "DNSProvider", "Server", "TxtRecord", "get_provider"]
