from __future__ import annotations

import pytest

from vaultops.childenv import clean_env


def test_credentials_never_reach_children(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VAULT_TOKEN", "BAO_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "VAULT_ADDR"):
        monkeypatch.setenv(var, "s3cr3t-value")
    monkeypatch.setenv("PATH", "/usr/bin")
    env = clean_env({"PGPASSFILE": "/x"})
    assert "s3cr3t-value" not in env.values()
    assert env["PATH"] == "/usr/bin" and env["PGPASSFILE"] == "/x"


def test_ssh_driver_hands_children_a_clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A stand-in ssh prints its environment: the operator's token must not be in it."""
    fake = tmp_path / "ssh"
    fake.write_text("#!/bin/sh\nenv\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.operator-token")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    from vaultops.drivers.ssh import SSHDriver

    drv = SSHDriver("n1", {"type": "ssh", "host": "n1", "ssh": str(fake)})
    out = drv.run("true").stdout
    assert "PATH=" in out and "hvs.operator-token" not in out
