"""Server versions: parse and compare 'X.Y.Z' (a '+ent' or '-rc1' suffix is kept apart)."""

from __future__ import annotations

import re

from vaultops.errors import UsageError

_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


def parse_version(text: str) -> tuple[int, int, int]:
    match = _RE.match(text.strip())
    if not match:
        raise UsageError(f"{text!r} is not a version", hint="write it as X.Y.Z, e.g. 2.7.2")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def is_newer(target: str, current: str) -> bool:
    return parse_version(target) > parse_version(current)
