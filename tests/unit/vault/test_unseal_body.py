"""sys/unseal with a bytearray key: the JSON body is built in a bytearray, sent as is, and zeroed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vaultops.testing.sealed_vault import SealedVault, serve
from vaultops.vault import NodeClient
from vaultops.vault.sys_seal import SealEndpoints

STATUS = {"type": "shamir", "initialized": True, "sealed": True, "t": 3, "n": 5, "progress": 1,
          "nonce": "n", "version": "2.7.2"}


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[Any] = []

    def request(self, method: str, path: str, *, body: Any = None, timeout: float | None = None) -> Any:
        self.bodies.append((body, bytes(body) if isinstance(body, bytearray) else body))
        return type("R", (), {"data": STATUS})()


def test_a_bytearray_key_goes_out_as_a_json_bytearray_then_zeroed() -> None:
    rec = Recorder()
    SealEndpoints(rec).unseal(bytearray(b"QUJD+/=="))  # type: ignore[arg-type]
    body, sent = rec.bodies[0]
    assert isinstance(body, bytearray) and json.loads(sent) == {"key": "QUJD+/=="}
    assert not any(body)  # zeroed once the request returned


def test_a_str_key_is_sent_as_before() -> None:
    rec = Recorder()
    SealEndpoints(rec).unseal("abcd")  # type: ignore[arg-type]
    assert rec.bodies[0][0] == {"key": "abcd"}


@pytest.mark.parametrize("bad", [b"", b'ab"cd', b"ab\\cd", b"ab cd", b"ab\ncd", "é".encode()])
def test_a_key_that_could_break_the_json_is_refused_before_sending(bad: bytes) -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="base64 or hex"):
        SealEndpoints(rec).unseal(bytearray(bad))  # type: ignore[arg-type]
    assert rec.bodies == []


def test_over_http_the_server_gets_the_same_json() -> None:
    vault = SealedVault()
    with serve(vault) as address:
        st = NodeClient("n", address).seal.unseal(bytearray(b"QUJD"))
    assert st.progress == 1 and vault.bodies == [b'{"key": "QUJD"}'] and vault.received == ["QUJD"]
