"""The environment handed to child processes: the parent's, without credentials.

ssh, pg_dump, gpg, runbook shell steps and OpenBao servers never need the
operator's Vault token or AWS secrets, so they never see them.
"""

from __future__ import annotations

import os

SECRET_VARS = frozenset({"VAULT_TOKEN", "BAO_TOKEN", "VAULT_UNSEAL_KEY", "AWS_SECRET_ACCESS_KEY",
                         "AWS_SESSION_TOKEN", "PGPASSWORD"})


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS and not k.startswith(("VAULT_", "BAO_"))}
    env.update(extra or {})
    return env
