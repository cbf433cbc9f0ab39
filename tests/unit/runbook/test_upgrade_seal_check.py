"""The preflight's Shamir check for every unsealer, the console's among them (issue 13, defect 18).

A console run holds no shares: keyholders type theirs at the prompt while the node waits. So the
preflight must see `shares_given == 0` and require the keyholder manifest to list at least the
threshold -- exactly as for a CLI run without --share-stdin (KeyholderPause).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ceremony"))
from ceremony_fakes import b64, make_manifest, make_shares  # noqa: E402

from vaultops.errors import RunbookError  # noqa: E402
from vaultops.services.upgrade.preflight import _seal_check  # noqa: E402
from vaultops.services.upgrade.unseal import (AutoUnsealer, CeremonyUnsealer, KeyholderPause,  # noqa: E402
                                              SharesUnsealer)
from vaultops.services.upgrade.prompted import ConsoleUnsealer  # noqa: E402
from vaultops.vault.models import SealStatus  # noqa: E402

FIVE = ("alice", "bob", "carol", "dave", "erin")


def active(seal_type: str = "shamir", t: int = 3, n: int = 5) -> Any:
    st = SealStatus(type=seal_type, initialized=True, sealed=False, t=t, n=n, progress=0, nonce="", version="2.6.2")
    return SimpleNamespace(seal=SimpleNamespace(status=lambda: st))


def check(unsealer: Any, **kw: Any) -> dict[str, Any]:
    return _seal_check(SimpleNamespace(unsealer=unsealer), active(**kw))  # type: ignore[arg-type]


def test_a_console_run_relies_on_the_enrolled_keyholders() -> None:
    out = check(ConsoleUnsealer(lambda _p: None, keyholders=FIVE))
    assert out["shares_given"] == 0 and out["keyholders"] == list(FIVE)


def test_a_console_run_without_enough_keyholders_is_refused_like_the_cli() -> None:
    for unsealer in (ConsoleUnsealer(lambda _p: None, keyholders=FIVE[:2]), KeyholderPause(list(FIVE[:2]))):
        with pytest.raises(RunbookError, match="manifest lists 2 keyholders, the threshold is 3"):
            check(unsealer)


def test_shares_given_are_counted_against_the_threshold() -> None:
    raws = make_shares()
    assert check(SharesUnsealer([b64(r) for r in raws[:3]]))["shares_given"] == 3
    with pytest.raises(RunbookError, match="2 shares given, the threshold is 3"):
        check(SharesUnsealer([b64(r) for r in raws[:2]]))
    lines = [f"{name}: {b64(r)}" for name, r in zip(FIVE, raws[:3])]
    assert check(CeremonyUnsealer(lines, manifest=make_manifest(raws)))["shares_given"] == 3


def test_auto_unseal_needs_neither() -> None:
    assert check(AutoUnsealer(), seal_type="awskms") == {"type": "awskms", "threshold": 3, "shares": 5}
