"""Offline parts of the rekey and generate-root ceremonies: OTP, token decoding, plans, share files."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from kh_helpers import make_share, team_manifest

from vaultops.errors import ConfigError, SecurityError, UsageError, VaultError
from vaultops.services.ceremony import root as gr
from vaultops.services.ceremony import rekey
from vaultops.services.ceremony.pending import save_pending, validate_plan
from vaultops.services.ceremony.rekey import NewKeyholder, Pending, Phase, RotationApi


def test_otp_is_base62_of_the_announced_length() -> None:
    otp = gr.make_otp(26)
    assert len(otp) == 26 and set(otp) <= set(gr.BASE62)
    assert gr.make_otp(26) != otp
    with pytest.raises(VaultError, match="OTP length"):
        gr.make_otp(0)


def test_decode_token_is_unpadded_base64_xor_otp() -> None:
    token, otp = "s.AbCdEfGhIjKlMnOpQrStUvWx", gr.make_otp(26)
    encoded = base64.b64encode(bytes(a ^ b for a, b in zip(token.encode(), otp.encode()))).decode()
    assert gr.decode_token(encoded.rstrip("="), otp) == token
    assert gr.decode_token(encoded, otp) == token


def test_decode_token_refuses_mismatches() -> None:
    with pytest.raises(VaultError, match="not base64"):
        gr.decode_token("!!!", "a" * 26)
    with pytest.raises(VaultError, match="OTP 26"):
        gr.decode_token(base64.b64encode(b"x" * 24).decode(), "a" * 26)


def test_pending_round_trip_holds_no_secret(tmp_path: Path) -> None:
    share = make_share(9)
    draft = team_manifest({"frank": share}, threshold=1, total=1)
    p = Pending(nonce="n-1", api=RotationApi.ROTATE_ROOT, shares=1, threshold=1,
                keyholders=(NewKeyholder("frank", pgp_key="PUBKEYDATA", pgp_fingerprint=None),),
                old_threshold=3, old_shares=5, started="2026-01-01T00:00:00+00:00", phase=Phase.VERIFYING,
                draft=draft)
    manifest_path = tmp_path / "keyholders.yaml"
    save_pending(manifest_path, p)
    text = rekey.pending_path(manifest_path).read_text()
    assert "PUBKEYDATA" not in text
    assert base64.b64encode(share.raw).decode() not in text and share.raw.hex() not in text
    back = rekey.load_pending(manifest_path)
    assert back is not None and back.draft is not None
    assert (back.nonce, back.phase, back.api) == ("n-1", Phase.VERIFYING, RotationApi.ROTATE_ROOT)
    assert back.draft.check("frank", share).ok


def test_pending_file_that_is_not_ours(tmp_path: Path) -> None:
    manifest_path = tmp_path / "keyholders.yaml"
    rekey.pending_path(manifest_path).write_text("version: 7\n")
    with pytest.raises(ConfigError, match="not a vaultops rekey record"):
        rekey.load_pending(manifest_path)
    assert rekey.load_pending(tmp_path / "other.yaml") is None


@pytest.mark.parametrize(("shares", "threshold", "names", "match"), [
    (3, 4, ["a", "b", "c"], "between 1 and shares"),
    (3, 1, ["a", "b", "c"], "any single keyholder"),
    (3, 2, ["a", "b"], "3 distinct keyholder names"),
    (3, 2, ["a", "b", "b"], "3 distinct keyholder names"),
    (256, 2, [str(i) for i in range(256)], "at most 255"),
])
def test_rekey_plan_validation(shares: int, threshold: int, names: list[str], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        validate_plan(shares, threshold, [NewKeyholder(n) for n in names])


def test_pgp_for_some_keyholders_only_is_refused() -> None:
    with pytest.raises(UsageError, match="some new keyholders but not all"):
        validate_plan(2, 2, [NewKeyholder("a", pgp_key="K"), NewKeyholder("b")])


def test_share_file_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "alice.share"
    rekey.write_share_file(path, "SHARETEXT")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == "SHARETEXT\n"
    with pytest.raises(SecurityError, match="never overwritten"):
        rekey.write_share_file(path, "OTHER")
    assert path.read_text() == "SHARETEXT\n"


def test_issued_repr_hides_shares() -> None:
    share = make_share(5)
    issued = rekey.Issued(items=(rekey.IssuedShare(NewKeyholder("a"), share),), verification_nonce="v")
    text = repr(issued) + repr(issued.items[0])
    assert base64.b64encode(share.raw).decode() not in text and share.raw.hex() not in text
