"""Helpers for the keyholder-lifecycle integration tests (uniquely named: tests import it)."""

from __future__ import annotations

import base64
from pathlib import Path

from vaultops.testing.sandbox import Sandbox


def ensure_manifest(box: Sandbox) -> Path:
    """The sandbox writes keyholders.yaml at init; older sandboxes did not: enroll the demo shares."""
    path = box.dir / "keyholders.yaml"
    if not path.exists():
        from vaultops.services.ceremony.manifest import Manifest
        from vaultops.services.ceremony.shares import decode

        m = Manifest(cluster_id="sandbox", threshold=3, shares=5)
        for name, key in box.secrets["keyholders"].items():
            m = m.enroll(name, decode(key))
        m.save(path)
    return path


def share_lines(box: Sandbox, *names: str) -> str:
    keys = box.secrets["keyholders"]
    return "".join(f"{n}: {keys[n]}\n" for n in names)


def share_forms(text: str) -> list[str]:
    """A share (any codec) in every plain form it could leak in."""
    from vaultops.services.ceremony.shares import decode

    raw = decode(text).raw
    forms = [text.strip(), base64.b64encode(raw).decode(), raw.hex(), raw.hex().upper()]
    return list(dict.fromkeys(forms))
