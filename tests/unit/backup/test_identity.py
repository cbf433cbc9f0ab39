from __future__ import annotations

import base64
import json

import pytest

from vaultops.errors import ConfigError, VaultAuthError
from vaultops.services.backup import identity
from vaultops.testing.fake_vault import FakeVault
from vaultops.vault.client import NodeClient


class FakeClient(NodeClient):
    """A node of its own fake Vault (vaultops.testing.fake_vault), unsealed: logins and revocations as it saw them."""

    def __init__(self, name: str = "n1", *, policies=("default",), refuse: bool = False) -> None:
        vault = FakeVault([name], sealed=False, tokens={"s.root": list(policies)}, login_policies=policies,
                          refuse_logins=refuse)
        self._node = vault.node(name)
        super().__init__(name, self._node.address, transport=vault.transport(name))

    @property
    def logins(self) -> list:
        return self._node.logins

    @property
    def revoked(self) -> int:
        return self._node.revoked


def test_approle_reads_secret_id_file_and_revokes(make_cfg, tmp_path) -> None:
    secret = tmp_path / "sid"
    secret.write_text("the-secret-id\n")
    cfg = make_cfg({"sinks": []}, storage="raft")
    clients = [FakeClient("a"), FakeClient("b")]
    ident = identity.login(clients, {"method": "approle", "role_id": "rid", "secret_id_file": str(secret)}, cfg,
                           warn=pytest.fail)
    assert clients[0].logins == [("approle/login", {"role_id": "rid", "secret_id": "the-secret-id"})]
    assert all(c.token == "s.login-token" for c in clients)
    identity.logout(clients, ident)
    assert clients[0].revoked == 1


def test_approle_refused_names_no_secret(make_cfg, tmp_path) -> None:
    secret = tmp_path / "sid"
    secret.write_text("the-secret-id")
    cfg = make_cfg({"sinks": []}, storage="raft")
    with pytest.raises(VaultAuthError) as err:
        identity.login([FakeClient(refuse=True)], {"method": "approle", "role_id": "r", "secret_id_file": str(secret)},
                       cfg, warn=pytest.fail)
    assert "the-secret-id" not in str(err.value)


def test_missing_settings(make_cfg, tmp_path) -> None:
    cfg = make_cfg({"sinks": []}, storage="raft")
    with pytest.raises(ConfigError, match="role_id"):
        identity.login([FakeClient()], {"method": "approle"}, cfg, warn=pytest.fail)
    with pytest.raises(ConfigError, match="secret_id_file file not found"):
        identity.login([FakeClient()], {"method": "approle", "role_id": "r", "secret_id_file": "/nope"}, cfg,
                       warn=pytest.fail)
    with pytest.raises(ConfigError, match="method"):
        identity.login([FakeClient()], {"method": "kerberos"}, cfg, warn=pytest.fail)


def test_root_token_warns(make_cfg, monkeypatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s.root")
    cfg = make_cfg({"sinks": []}, storage="raft")
    warnings: list[str] = []
    ident = identity.login([FakeClient(policies=["root"])], {}, cfg, warn=warnings.append)
    assert not ident.revoke and "root token" in warnings[0]


def test_aws_iam_body_is_a_signed_get_caller_identity(make_cfg, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key-never-sent")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    cfg = make_cfg({"sinks": []}, storage="raft")
    client = FakeClient()
    identity.login([client], {"method": "aws", "role": "backup", "header_value": "vault.example.com",
                              "region": "eu-west-1"}, cfg, warn=pytest.fail)
    path, body = client.logins[0]
    assert path == "aws/login" and body["role"] == "backup" and body["iam_http_request_method"] == "POST"
    assert base64.b64decode(body["iam_request_url"]) == b"https://sts.amazonaws.com/"
    assert base64.b64decode(body["iam_request_body"]) == b"Action=GetCallerIdentity&Version=2011-06-15"
    headers = json.loads(base64.b64decode(body["iam_request_headers"]))
    assert headers["X-Vault-AWS-IAM-Server-ID"] == ["vault.example.com"]
    assert headers["X-Amz-Security-Token"] == ["session-token"]
    auth = headers["Authorization"][0]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/eu-west-1/sts/aws4_request" in auth
    assert "secret-key-never-sent" not in json.dumps(body)


def test_policy_is_minimal() -> None:
    text = identity.policy_text()
    paths = [line.split('"')[1] for line in text.splitlines() if line.startswith("path ")]
    assert paths == ["sys/storage/raft/snapshot"]
    assert 'capabilities = ["read"]' in text
