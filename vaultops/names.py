"""Names that reach a path, an argv or a remote shell, validated once at the edge, by kind.

Every kind refuses a leading '-' (it would read as an option), '/' where a single path
component is meant, '..', NUL and control characters; each kind then has a strict pattern.

    check_name("sandbox", args.name)                      # UsageError on a bad CLI value
    check_name("node", raw, where="vaultops.yaml nodes[0].name", error=ConfigError)
"""

from __future__ import annotations

import re
from enum import StrEnum

from vaultops.errors import UsageError


class Kind(StrEnum):
    SANDBOX = "sandbox"
    NODE = "node"
    CLUSTER = "cluster"
    KEYHOLDER = "keyholder"
    HOST = "host"          # what ssh is given: alias, host, user@host, IPv4/IPv6
    SERVICE = "service"    # a systemd unit
    BINARY = "binary"      # a program name or absolute path
    PACKAGE = "package"    # a Debian/RPM package name
    ACCOUNT = "account"    # a user or group name, or a numeric id
    BACKUP = "backup"      # a backup name (one object key component)
    OBJECT_KEY = "object key"  # a sink key: relative, '/'-separated components


_PATTERNS: dict[Kind, re.Pattern[str]] = {
    Kind.SANDBOX: re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}"),
    Kind.NODE: re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"),
    Kind.CLUSTER: re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"),
    Kind.KEYHOLDER: re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"),
    Kind.HOST: re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]{0,31}@)?[A-Za-z0-9_:][A-Za-z0-9_.:%-]{0,252}"),
    Kind.SERVICE: re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:-]{0,127}"),
    Kind.BINARY: re.compile(r"/?[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*"),
    Kind.PACKAGE: re.compile(r"[a-z0-9][a-z0-9+.-]{0,127}"),
    Kind.ACCOUNT: re.compile(r"[a-z_][a-z0-9_-]{0,31}[$]?|[0-9]{1,10}"),
    Kind.BACKUP: re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,254}"),
    Kind.OBJECT_KEY: re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+=-]*(/[A-Za-z0-9_][A-Za-z0-9_.:+=-]*)*"),
}
_HINTS: dict[Kind, str] = {
    Kind.SANDBOX: "use letters, digits, '-' and '_' (at most 40)",
    Kind.NODE: "use letters, digits, '-', '_' and '.'",
    Kind.CLUSTER: "use letters, digits, '-', '_' and '.'",
    Kind.KEYHOLDER: "use letters, digits, '-', '_' and '.'",
    Kind.HOST: "give a host name, an address or user@host; ssh options belong in driver.options",
    Kind.SERVICE: "give a systemd unit name such as vault or vault.service",
    Kind.BINARY: "give a program name or an absolute path without spaces or shell characters",
    Kind.PACKAGE: "give a package name such as vault or openbao",
    Kind.ACCOUNT: "use a name like vault or a number like 995",
    Kind.BACKUP: "use a name from 'vaultops backup list'",
    Kind.OBJECT_KEY: "use a relative name like prod-2025.snap",
}


def check_name(kind: Kind | str, value: object, *, where: str | None = None,
               error: type[UsageError] = UsageError) -> str:
    """*value* if it is a plain name of *kind*; otherwise raise *error* with one line naming the problem."""
    kind = Kind(kind)
    label = f"{where}: " if where else ""
    if not isinstance(value, str):
        raise error(f"{label}{kind.value} name must be a string, got {type(value).__name__}",
                    hint=_HINTS[kind])
    problem = _problem(kind, value)
    if problem:
        raise error(f"{label}{kind.value} name {shown(value)} {problem}", hint=_HINTS[kind])
    return value


def is_name(kind: Kind | str, value: object) -> bool:
    return isinstance(value, str) and _problem(Kind(kind), value) is None


def _problem(kind: Kind, value: str) -> str | None:
    if not value:
        return "is empty"
    if value.startswith("-"):
        return "starts with '-' (it would be read as an option)"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "holds a control character"
    parts = value.split("/")
    if ".." in parts or "." in parts:
        return "holds a '.' or '..' path component"
    if "/" in value and kind not in (Kind.BINARY, Kind.OBJECT_KEY):
        return "holds a '/'"
    if not _PATTERNS[kind].fullmatch(value):
        return "holds characters that are not allowed"
    return None


def shown(value: str, limit: int = 40) -> str:
    """A value safe to print: ASCII-escaped and cut, so a hostile name cannot drive the terminal."""
    text = ascii(value[:limit])
    return text + ("…" if len(value) > limit else "")


__all__ = ["Kind", "check_name", "is_name", "shown"]
