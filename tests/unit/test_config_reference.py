"""docs/configuration.md and `vaultops config example` come from the schema the loader validates.

The reference is regenerated here and compared with the checked-in file, so a key added to a
model without regenerating it fails (`vaultops config reference > docs/configuration.md`). Every
example, whole and per section, passes `vaultops config check`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.cli.config_cmd import SECTIONS
from vaultops.cli.config_example import ACTIVE, SAMPLES, example, sections
from vaultops.cli.config_ref import markdown
from vaultops.cli.config_ref import sections as mappings

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "configuration.md"


def test_the_checked_in_reference_is_the_schema() -> None:
    assert REFERENCE.read_text() == markdown(), \
        "docs/configuration.md is stale: run `vaultops config reference > docs/configuration.md`"


def test_the_reference_has_every_section_and_key_with_a_description() -> None:
    from vaultops.files.loader import schema
    from vaultops.schema import ConfigFile

    text = REFERENCE.read_text()
    defs = schema(ConfigFile)["$defs"]
    for name, spec in defs.items():
        for key, prop in spec.get("properties", {}).items():
            assert f"| `{key}` |" in text or f"| [`{key}`]" in text, f"{name}.{key} is missing from the reference"
            assert prop.get("description") or key == "type", f"{name}.{key} has no description"
    assert [s for s in sections()] == list(SECTIONS), "config_cmd.SECTIONS differs from the schema's sections"
    assert {m.path.split(".")[0].removesuffix("[]") for m in mappings()} == set(SECTIONS)


def key_paths() -> set[str]:
    out = set()
    for mapping in mappings():
        for key in mapping.keys:
            path = f"{mapping.base}.{key.name}"
            out.add(path + {"list": "[]", "dict": ".<name>"}.get(key.kind, ""))
    return out | set(SECTIONS) | {"nodes[]"}


def test_example_values_name_keys_that_exist() -> None:
    unknown = (set(ACTIVE) | set(SAMPLES)) - key_paths()
    assert not unknown, f"example values for keys the schema does not have: {sorted(unknown)}"


def check(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["config", "check", "--config", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("section", [None, *SECTIONS])
def test_every_example_passes_config_check(section: str | None, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["config", "example"] + ([section] if section else [])
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text == example(section)
    path = tmp_path / "vaultops.yaml"
    path.write_text(text)
    code, out, err = check(capsys, path)
    assert (code, err) == (0, ""), err
    assert out.startswith(f"{path}: OK (3 nodes") and out.count("\n") == 1
    if section is not None:
        assert f"\n{section}:" in "\n" + text or f"\n#{section}:" in "\n" + text


def test_an_example_shows_every_key_of_its_section() -> None:
    text = example("backup")
    for key in ("sinks", "retention", "keep_last", "object_lock_days", "sentinels", "prune_after_run"):
        assert key in text


def test_config_check_names_the_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "vaultops.yaml"
    path.write_text("nodes: [{name: n1, address: 'https://vault:8200'}]\nbackup: {sinks: [{type: ftp}]}\n")
    code, out, err = check(capsys, path)
    assert code == 2 and out == "" and err.count("\n") == 1 and "backup.sinks[0]" in err
    code, out, err = check(capsys, path, "--format", "json")
    assert code == 2 and json.loads(out)["error"]["type"] == "ConfigError"
    assert json.loads(err)["exit_code"] == 2


def test_config_check_runs_what_each_section_owner_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Free-form mappings are checked by their owner: a driver type, the journal anchor."""
    path = tmp_path / "vaultops.yaml"
    path.write_text("nodes: [{name: n1, address: 'https://vault:8200'}]\njournal: {anchor: {kv: 3}}\n")
    code, _, err = check(capsys, path)
    assert code == 2 and "journal.anchor.kv" in err


def test_config_check_without_a_file(capsys: pytest.CaptureFixture[str], no_config_dir: Path) -> None:
    assert main(["config", "check"]) == 2
    assert "no vaultops.yaml to check" in capsys.readouterr().err


def test_an_unknown_section_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "example", "nodez"]) == 2
    assert "invalid choice" in capsys.readouterr().err
