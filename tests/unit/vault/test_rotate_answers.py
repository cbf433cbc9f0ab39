"""sys/rekey and sys/rotate/root answers are frozen values; the new shares never show in a repr."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from vaultops.errors import VaultBadResponse
from vaultops.vault.models import RotationUpdate, RotationVerification
from vaultops.vault.sys_rotate import REKEY, RotateEndpoints

NEW = [base64.b64encode(os.urandom(32) + bytes([i])).decode() for i in (1, 2, 3)]


class Canned:
    """A transport that answers every request with one body, and records what was asked."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.asked: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, *, body: Any = None, auth: bool = False,
                timeout: float | None = None) -> Any:
        self.asked.append((method, path, body))
        return type("R", (), {"data": self.data})()


def test_the_last_share_returns_new_shares_that_no_repr_shows() -> None:
    answer = {"nonce": "n1", "complete": True, "keys": [k + "hex" for k in NEW], "keys_base64": NEW,
              "verification_required": True, "verification_nonce": "v1"}
    res = RotateEndpoints(Canned(answer), prefix=REKEY).update(key="k", nonce="n1")  # type: ignore[arg-type]
    assert res.complete and res.keys_b64 == tuple(NEW) and res.verification_nonce == "v1"
    text = repr(res) + str(res) + repr([res])
    assert not any(k in text for k in NEW) and "3 new shares" in text


def test_progress_answers_nested_under_data_or_at_top_level() -> None:
    for raw in ({"data": {"nonce": "n", "progress": 2, "required": 3}}, {"nonce": "n", "progress": 2, "required": 3}):
        res = RotationUpdate.from_api(raw)
        assert (res.complete, res.progress, res.required, res.keys_b64) == (False, 2, 3, ())
    ver = RotateEndpoints(Canned({"data": {"nonce": "v", "started": True, "t": 2, "n": 3, "progress": 1}})
                          ).verify_status()  # type: ignore[arg-type]
    assert ver == RotationVerification(nonce="v", started=True, complete=False, progress=1, t=2, n=3)


@pytest.mark.parametrize("keys", ["AAAA", [1, 2], {"a": "b"}])
def test_new_shares_of_the_wrong_shape_are_one_bad_response(keys: Any) -> None:
    with pytest.raises(VaultBadResponse, match="unexpected shape"):
        RotationUpdate.from_api({"complete": True, "keys_base64": keys})
