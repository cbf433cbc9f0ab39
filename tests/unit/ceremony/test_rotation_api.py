"""Which share-rotation API a rekey uses is decided by the facts in vault/sys_rotate.ROTATION_APIS."""

from __future__ import annotations

from typing import Any

import pytest

from vaultops.errors import VaultError, VaultNotFound
from vaultops.services.ceremony.pending import RotationApi
from vaultops.services.ceremony.rekey import detect_api
from vaultops.vault.client import NodeClient
from vaultops.vault.http import Response, error_for
from vaultops.vault.sys_rotate import ROTATION_APIS, rotate_root_is_safe

IDLE = {"started": False, "nonce": "", "t": 0, "n": 0, "progress": 0, "required": 0,
        "verification_required": False, "pgp_fingerprints": None, "backup": False}


class Server:
    """An OpenBao of *version* whose listener does (not) allow the unauthenticated sys/rekey."""

    def __init__(self, version: str, *, rotate_root: bool = True, rekey: bool = True) -> None:
        self.version, self.rotate_root, self.rekey = version, rotate_root, rekey
        self.node, self.address, self.token = "node1", "http://127.0.0.1:8200", "s.token"

    def request(self, method: str, path: str, *, body: Any = None, auth: bool = False,
                ok: tuple[int, ...] = (200, 204), timeout: float | None = None) -> Response:
        if path == "sys/seal-status":
            return Response(200, {"type": "shamir", "initialized": True, "sealed": False, "t": 3, "n": 5,
                                  "progress": 0, "nonce": "", "version": self.version}, {})
        offered = {"sys/rotate/root/init": self.rotate_root, "sys/rekey/init": self.rekey}
        if offered.get(path):
            return Response(200, dict(IDLE), {})
        raise error_for(404, {"errors": []}, node=self.node, path=path)

    def stream(self, *a: Any, **k: Any) -> Any:
        raise VaultNotFound("no streams")

    def upload(self, *a: Any, **k: Any) -> Response:
        raise VaultNotFound("no uploads")

    def close(self) -> None:
        pass


def client(server: Server) -> NodeClient:
    return NodeClient("node1", server.address, token=server.token, transport=server)


@pytest.mark.parametrize(("version", "expected"), [
    ("2.7.2", RotationApi.ROTATE_ROOT),
    ("2.5.2", RotationApi.ROTATE_ROOT),
    ("2.5.1", RotationApi.REKEY),     # its sys/rotate/root would wipe the shares: the old API
    ("2.4.0", RotationApi.REKEY),
])
def test_rotate_root_only_where_it_keeps_the_shares(version: str, expected: RotationApi) -> None:
    assert detect_api(client(Server(version))) is expected


def test_vault_without_rotate_root_uses_rekey() -> None:
    assert detect_api(client(Server("1.18.3", rotate_root=False))) is RotationApi.REKEY


def test_an_unsafe_openbao_without_rekey_is_refused_with_what_to_do() -> None:
    with pytest.raises(VaultError) as info:
        detect_api(client(Server("2.5.1", rekey=False)))
    assert "2.5.2" in str(info.value) and "upgrade" in str(info.value)


@pytest.mark.parametrize(("version", "safe"), [("2.5.2", True), ("v2.6.0+ent", True), ("2.5.1", False),
                                               ("2.4.9", False), ("", False), ("dev", False)])
def test_rotate_root_is_safe(version: str, safe: bool) -> None:
    assert rotate_root_is_safe(version) is safe


def test_the_facts_are_stated_once_and_the_help_is_built_from_them(capsys: pytest.CaptureFixture[str]) -> None:
    import pathlib
    import re

    from vaultops.cli import main

    with pytest.raises(SystemExit):
        main(["rekey", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert " ".join(ROTATION_APIS.split()) in helptext
    root = pathlib.Path(__file__).resolve().parents[3]
    # No other place restates a version bound of sys/rotate/root (they refer to ROTATION_APIS).
    for path in [*(root / "vaultops").rglob("*.py"), root / "README.md"]:
        if path.name == "sys_rotate.py":
            continue
        for line in path.read_text().splitlines():
            assert not re.search(r"rotate/root.*>=? ?2\.\d|2\.\d.*rotate/root", line), f"{path}: {line}"
