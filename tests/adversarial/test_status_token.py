"""`status` with a token the cluster does not accept: exit 14 and one line, the table still printed.

Against a real 1-node raft sandbox. Before, every rejected token (bogus, expired, revoked, or
without the policy) gave "healthy", exit 0, and the skipped raft check showed only as
raft_error in JSON. A missing token keeps exit 0, but the table says the raft check was skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vaultops.cli import main
from vaultops.testing.sandbox import Sandbox, start_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = start_sandbox(tmp_path_factory.mktemp("status-token"), name="statustoken", nodes=1)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def config(box: Sandbox, tmp_path: Path) -> Path:
    """The sandbox's config without its secrets file, so no root token is found by default."""
    doc = yaml.safe_load(box.config_path.read_text())
    doc.pop("sandbox", None)
    path = tmp_path / "vaultops.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def child_token(box: Sandbox, *, ttl: str = "1h", policies: tuple[str, ...] = ("root",)) -> str:
    client = box.clients()[0]
    data = client.write("auth/token/create", {"ttl": ttl, "policies": list(policies), "no_parent": True})
    return str(data["auth"]["client_token"])


def status(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["status", "--config", str(config), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_rejected(code: int, out: str, err: str) -> None:
    assert code == 14, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaultops: error: ") and "token was rejected" in lines[0], err
    assert "Traceback" not in err
    assert "node1" in out and "unsealed" in out and "raft not checked: the token was rejected" in out
    assert out.rstrip().endswith("token_rejected")


def test_a_bogus_token_is_exit_14_with_the_table(box: Sandbox, config: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s.this-token-does-not-exist")
    assert_rejected(*status(capsys, config))
    code, out, err = status(capsys, config, "--format", "json")
    doc = json.loads(out)
    assert code == 14 and doc["cluster"]["exit"] == "token_rejected" and not doc["cluster"]["healthy"]
    assert doc["raft"] is None and "permission denied" in doc["raft_error"]
    assert len(err.splitlines()) == 1


def test_an_expired_token_is_rejected(box: Sandbox, config: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    token = child_token(box, ttl="2s")
    monkeypatch.setenv("VAULT_TOKEN", token)
    assert status(capsys, config)[0] == 0  # works while it lives
    time.sleep(3.5)
    code, out, err = status(capsys, config)
    assert_rejected(code, out, err)
    assert token not in out + err


def test_a_revoked_token_is_rejected(box: Sandbox, config: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    token = child_token(box)
    root = box.clients()[0]
    root.write("auth/token/revoke", {"token": token})
    monkeypatch.setenv("VAULT_TOKEN", token)
    assert_rejected(*status(capsys, config))


def test_a_token_without_the_policy_is_rejected(box: Sandbox, config: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VAULT_TOKEN", child_token(box, policies=("default",)))
    assert_rejected(*status(capsys, config))


def test_a_token_that_cannot_be_sent_is_one_line(box: Sandbox, config: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for token in ("s.abc\ndef", "s.abc\x1b[2Jdef", "s.äbc"):
        monkeypatch.setenv("VAULT_TOKEN", token)
        code, out, err = status(capsys, config)
        assert code in (2, 14), (token, out, err)  # refused where it is read (2) or where it would be sent (14)
        assert len(err.splitlines()) == 1 and "Traceback" not in err and "\x1b" not in err + out
        assert "abc" not in err.replace("s.abc", "")  # the token's text is not echoed


def test_a_missing_token_skips_the_raft_check_and_says_so(box: Sandbox, config: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = status(capsys, config)
    assert code == 0 and err == ""
    assert "raft not checked: no token" in out and "healthy (as far as seen: raft not checked)" in out
    code, out, _ = status(capsys, config, "--format", "json")
    assert code == 0 and "no token" in json.loads(out)["raft_error"]


def test_a_good_token_checks_raft(box: Sandbox, config: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VAULT_TOKEN", box.root_token)
    code, out, err = status(capsys, config)
    assert code == 0 and err == "" and "raft healthy" in out and "not checked" not in out
