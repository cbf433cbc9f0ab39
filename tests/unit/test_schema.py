"""The schemas of the files vaultops reads: every key is described (the key reference is generated from them)."""

from __future__ import annotations

from typing import Any

import pytest

from vaultops.files.loader import schema
from vaultops.files.model import SandboxSecrets
from vaultops.schema import ConfigFile
from vaultops.services.backup.inspect import RaftMeta
from vaultops.services.ceremony.manifest import ManifestFile
from vaultops.services.ceremony.rekey import PendingFile


def undescribed(doc: dict[str, Any]) -> list[str]:
    missing = []
    for name, definition in doc["$defs"].items():
        for key, prop in definition.get("properties", {}).items():
            tag = len(prop.get("enum", ())) == 1  # a tagged union's `type: local`
            if not prop.get("description") and not tag:
                missing.append(f"{name}.{key}")
    return missing


@pytest.mark.parametrize("model", [ConfigFile, ManifestFile, PendingFile, SandboxSecrets, RaftMeta],
                         ids=lambda m: m.__name__)
def test_every_key_carries_a_description(model: type) -> None:
    assert undescribed(schema(model)) == []


def test_the_config_schema_knows_the_keys_other_features_add() -> None:
    defs = schema(ConfigFile)["$defs"]
    assert "anchor" in defs["JournalSection"]["properties"]
    assert "lease" in defs["UpgradeSection"]["properties"]
    s3 = defs["S3SinkSettings"]["properties"]
    assert {"retry_seconds", "abort_stale_after_hours"} <= set(s3)
    assert "allow_insecure_http" not in defs["ConsulSettings"]["properties"]
