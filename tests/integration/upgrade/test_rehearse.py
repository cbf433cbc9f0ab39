"""`upgrade rehearse`: the newest verified snapshot restored into a throwaway sandbox, upgraded there."""

from __future__ import annotations

import pytest
from upgrade_helpers import FROM, TO, shares_text, versions

from vaultops.journal import journal_for
from vaultops.services.upgrade.context import build_context
from vaultops.services.upgrade.snapshot import take_verified_backup
from vaultops.services.upgrade.unseal import SharesUnsealer

pytestmark = pytest.mark.integration


def test_rehearsal_upgrades_a_copy_and_leaves_the_cluster_alone(make_box, cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    box = make_box("upreh")
    leader = box.client(next(c.name for c in box.clients() if c.ha.health().role == "active"))
    leader.write("sys/mounts/real", {"type": "kv", "options": {"version": "1"}})
    leader.write("real/marker", {"value": "from-production"})
    ctx = build_context(box.config, clients=box.clients(), drivers=box.drivers(), journal=journal_for(box.config),
                        unsealer=SharesUnsealer(box.shares_b64[:3]), connect=lambda: box.clients())
    snap = take_verified_backup(ctx)
    assert snap["verified"] is True
    rc, out, err = cli(box, "upgrade", "rehearse", "--to", TO, "--share-stdin", "--format", "json",
                       stdin=shares_text(box))
    assert rc == 0, out + err
    assert '"ok": true' in out and f'"to_version": "{TO}"' in out
    assert set(versions(box).values()) == {FROM}          # production untouched
