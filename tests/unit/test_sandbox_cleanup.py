"""What `sandbox down` removes from a shared state folder (services/sandbox/cleanup.py): exact names only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vaultops.errors import UsageError
from vaultops.services.sandbox.cleanup import cluster_of, nested_sandboxes, rehearsal_dirs, state_leftovers
from vaultops.services.sandbox.cluster import create_folder


def _run_state(path: Path, cluster: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run_id": "abc", "cluster": cluster, "steps": []}))
    return path


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


def test_only_the_named_sandboxs_files_are_found(tmp_path: Path) -> None:
    ours = [
        _touch(tmp_path / "backup-sandbox-a.lock"), _touch(tmp_path / "backup-sandbox-a-last-run.json"),
        _touch(tmp_path / "upgrade-snapshots" / "sandbox-a-20261130T101010Z.snap"),
        _run_state(tmp_path / "runs" / "sandbox-a-upgrade.json", "sandbox-a"),
        _touch(tmp_path / "runs" / "sandbox-a-upgrade.json.lock"),
        _run_state(tmp_path / "runs" / "sandbox-a-upgrade.0123abcd.json", "sandbox-a"),
    ]
    theirs = [   # sandbox "a-b" shares the prefix "sandbox-a-"; a production cluster's files; a look-alike
        _touch(tmp_path / "backup-sandbox-a-b.lock"), _touch(tmp_path / "backup-sandbox-a-b-last-run.json"),
        _touch(tmp_path / "upgrade-snapshots" / "sandbox-a-b-20261130T101010Z.snap"),
        _run_state(tmp_path / "runs" / "sandbox-a-b-upgrade.json", "sandbox-a-b"),
        _touch(tmp_path / "runs" / "sandbox-a-b-upgrade.json.lock"),
        _touch(tmp_path / "runs" / "sandbox-a-garbage.json"),          # unreadable: not provably ours
        _touch(tmp_path / "backup-prod.lock"), _touch(tmp_path / "journal.jsonl"),
    ]
    found = state_leftovers(tmp_path, "a")
    assert sorted(found) == sorted(ours)
    assert not set(found) & set(theirs)
    assert sorted(state_leftovers(tmp_path, "a-b")) == sorted(theirs[:5])


def test_symlinks_are_never_followed_or_removed(tmp_path: Path) -> None:
    outside = _touch(tmp_path / "elsewhere" / "precious")
    (tmp_path / "state").mkdir()
    os.symlink(outside, tmp_path / "state" / "backup-sandbox-a.lock")
    os.symlink(tmp_path / "elsewhere", tmp_path / "state" / "runs")
    assert state_leftovers(tmp_path / "state", "a") == []


@pytest.mark.parametrize("name", ["../x", "-rf", "a/b", ""])
def test_names_are_validated_first(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        cluster_of(name)


def test_kept_rehearsal_copies_are_found_only_when_marked(tmp_path: Path) -> None:
    rehearsals = tmp_path / "tour" / "state" / "rehearsals"
    marked = rehearsals / "sandbox-tour" / "vaultops-rehearsal-x1" / "rehearsal"
    create_folder(marked)
    (marked / "sandbox.json").write_text("{}")
    unmarked = rehearsals / "sandbox-tour" / "vaultops-rehearsal-x2" / "rehearsal"
    unmarked.mkdir(parents=True)
    (unmarked / "sandbox.json").write_text("{}")
    os.symlink(marked.parent, rehearsals / "sandbox-tour" / "link")
    assert nested_sandboxes(rehearsals) == [marked]
    assert rehearsal_dirs(tmp_path / "tour" / "state", "tour") == [rehearsals / "sandbox-tour"]
    assert rehearsal_dirs(tmp_path / "tour" / "state", "tou") == []
