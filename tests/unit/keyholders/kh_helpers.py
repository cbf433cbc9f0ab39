"""Helpers for the keyholder tests (uniquely named: tests import it directly)."""

from __future__ import annotations

import base64
from datetime import date

from vaultops.services.ceremony.manifest import Manifest, ScryptParams
from vaultops.services.ceremony.shares import Share
from vaultops.testing import seed

FAST = ScryptParams(n=16, r=1, p=1)  # tests only: real verifiers use DEFAULT_PARAMS


def make_share(index: int) -> Share:
    return Share(seed.randbytes(32) + bytes([index]))   # replayable: VAULTOPS_TEST_SEED


def team_manifest(shares: dict[str, Share], *, threshold: int = 2, total: int = 5) -> Manifest:
    m = Manifest(cluster_id="c0ffee", threshold=threshold, shares=total)
    for name, share in shares.items():
        m = m.enroll(name, share, params=FAST, added=date(2025, 1, 2))
    return m


def forms(share: Share) -> list[str]:
    """Every plain form the share could leak in."""
    return [base64.b64encode(share.raw).decode(), share.raw.hex(), share.raw.hex().upper(),
            base64.b64encode(share.raw[:32]).decode(), share.raw[:32].hex()]
