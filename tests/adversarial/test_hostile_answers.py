"""Answers of the wrong shape (a proxy, a hostile or future server) are one VaultBadResponse, never a traceback."""

from __future__ import annotations

import pytest

from vaultops.errors import VaultBadResponse
from vaultops.vault import models

HOSTILE = [{"t": "abc"}, {"progress": [1]}, {"data": {"nodes": "x"}}, {"data": {"config": {"servers": [1]}}},
           {"keys_base64": 5}, {"servers": {"a": 1}}, {"nonce": {"x": 1}, "t": {}}, {"data": {"keys": 3}}]
PARSERS = {
    "SealStatus": models.SealStatus.from_api, "Leader": models.Leader.from_api, "HAStatus": models.HAStatus.from_api,
    "RaftConfiguration": models.RaftConfiguration.from_api, "AutopilotState": models.AutopilotState.from_api,
    "InitResult": models.InitResult.from_api, "RotationStatus": models.RotationStatus.from_api,
    "GenerateRootStatus": models.GenerateRootStatus.from_api, "RotationUpdate": models.RotationUpdate.from_api,
    "RotationVerification": models.RotationVerification.from_api,
    "Health": lambda raw: models.Health.from_api(200, raw),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("raw", HOSTILE, ids=[f"answer{i}" for i in range(len(HOSTILE))])
def test_wrong_shapes_are_one_bad_response(name: str, raw: dict) -> None:
    try:
        PARSERS[name](raw)
    except VaultBadResponse as exc:
        assert "\n" not in str(exc) and "unexpected shape" in str(exc)


def test_a_wrong_type_is_caught_not_parsed_into_garbage() -> None:
    with pytest.raises(VaultBadResponse):
        models.SealStatus.from_api({"t": "abc", "sealed": True})
