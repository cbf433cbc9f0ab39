"""RFC 2136 dynamic updates signed with TSIG (BIND, Knot, PowerDNS...).

    dns_provider:
      type: rfc2136
      server: 10.0.0.53:53          # the primary that accepts updates
      key_name: acme-key
      key_algorithm: hmac-sha256    # default
      key_file: /etc/vaultops/tsig.key   # `tsig-keygen` output, or just the base64 secret
      zone: example.com             # optional: found by an SOA walk otherwise
      nameservers: [10.0.0.53:53]   # optional: authoritative servers to check (default: the zone's NS)

The secret is read from key_file (never from the YAML) and never logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vaultops.dns.base import DNSProvider, Server, normalise
from vaultops.errors import ConfigError, DNSError

_SECRET_RE = re.compile(r'secret\s+"([^"]+)"')
_ALGO_RE = re.compile(r"algorithm\s+([\w-]+)\s*;")


class RFC2136Provider(DNSProvider):
    kind = "rfc2136"

    def __init__(self, settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        for key in ("server", "key_name", "key_file"):
            if not self.settings.get(key):
                raise ConfigError(f"tls.dns_provider.{key} is required for rfc2136",
                                  hint="an rfc2136 dns_provider needs server, key_name and key_file")
        self.server = Server.parse(self.settings["server"])
        self.key_name = str(self.settings["key_name"])
        self._secret, file_algo = _read_key(Path(self.settings["key_file"]).expanduser())
        self.algorithm = str(self.settings.get("key_algorithm") or file_algo or "hmac-sha256")
        if not self.nameservers and not self.resolvers:
            self.nameservers = (self.server,)

    def _add_txt(self, name: str, value: str) -> None:
        update = self._update(name)
        update.add(normalise(name) + ".", self.ttl, "TXT", _quoted(value))
        self._send(update, f"add TXT at {name}")

    def _remove_txt(self, name: str, value: str) -> None:
        update = self._update(name)
        update.delete(normalise(name) + ".", "TXT", _quoted(value))
        self._send(update, f"remove TXT at {name}")

    def _update(self, name: str) -> Any:
        import dns.tsig
        import dns.update

        key = dns.tsig.Key(self.key_name, self._secret, self.algorithm)
        return dns.update.UpdateMessage(self.zone_name(name) + ".", keyring=key)

    def _send(self, update: Any, what: str) -> None:
        import dns.exception
        import dns.query
        import dns.rcode

        try:
            resp = dns.query.tcp(update, self.server.host, port=self.server.port, timeout=10)
        except dns.exception.DNSException as exc:  # includes TSIG verification failures
            raise DNSError(f"rfc2136 {what} at {self.server}: {type(exc).__name__}: {exc}",
                           hint="check key_name, key_algorithm and the key secret match the server") from exc
        except OSError as exc:
            raise DNSError(f"rfc2136 {what}: cannot reach {self.server}: {exc.strerror or exc}",
                           hint="check dns_provider.server and that updates are allowed over TCP") from exc
        rcode = resp.rcode()
        if rcode != dns.rcode.NOERROR:
            raise DNSError(f"rfc2136 {what} refused by {self.server}: {dns.rcode.to_text(rcode)}",
                           hint="the server's update-policy must grant this key TXT at _acme-challenge names")


def _read_key(path: Path) -> tuple[str, str | None]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"tls.dns_provider.key_file {path}: cannot read ({exc.strerror})",
                          hint="point it at the tsig-keygen output") from None
    match = _SECRET_RE.search(text)
    algo = _ALGO_RE.search(text)
    secret = match.group(1) if match else text.strip()
    if not secret or any(c.isspace() for c in secret):
        raise ConfigError(f"tls.dns_provider.key_file {path} holds no TSIG secret",
                          hint="use the output of `tsig-keygen -a hmac-sha256 NAME`")
    return secret, algo.group(1) if algo else None


def _quoted(value: str) -> str:
    # ACME values are base64url: no quotes or backslashes to escape.
    return f'"{value}"'


__all__ = ["RFC2136Provider", "DNSError"]
