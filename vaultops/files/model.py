"""Base classes for the models of the files vaultops reads (see vaultops.files.loader).

    class NodeSection(Model):
        name: Annotated[str, Meta(description="...")]
        def __post_init__(self) -> None:
            check_name("node", self.name, "name")     # raises Invalid naming the key

Every field carries a description: the reference of each file's keys is generated from it.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from vaultops.errors import UsageError
from vaultops.files.loader import Invalid


class Model(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A mapping in a file vaultops writes or owns: unknown keys are refused."""


class Foreign(msgspec.Struct, kw_only=True):
    """A mapping in a file another program writes (a snapshot's meta.json): unknown keys are ignored."""


def check_name(kind: str, value: str, key: str) -> None:
    """vaultops.names.check_name as a model check: the error names *key*."""
    from vaultops.names import check_name as check

    try:
        check(kind, value)
    except UsageError as exc:
        raise Invalid(key, exc.message, exc.hint) from None


def check_url(value: str, key: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(key, f"{value[:80]!r} is not an http(s) URL", "write it as https://HOST:8200")


class SandboxSecrets(Model, kw_only=True):
    """A sandbox's SANDBOX-SECRETS file (0600): throwaway shares and root token."""

    warning: Annotated[str, Meta(description="says this is sandbox material")] = ""
    root_token: Annotated[str, Meta(description="the sandbox's root token")]
    unseal_shares_b64: Annotated[list[str], Meta(description="the unseal shares, base64")] = []
    keyholders: Annotated[dict[str, str], Meta(description="demo keyholder -> their share")] = {}


__all__ = ["Foreign", "Invalid", "Model", "SandboxSecrets", "check_name", "check_url"]
