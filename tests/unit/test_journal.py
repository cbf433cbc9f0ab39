from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.journal import Journal


def make(tmp_path: Path, n: int = 4) -> Journal:
    j = Journal(tmp_path / "journal.jsonl", operator="ops", cluster="prod")
    for i in range(n):
        j.append("test.event", node=f"node{i}", details={"i": i})
    return j


def lines(j: Journal) -> list[str]:
    return j.path.read_text().splitlines()


def test_chain_intact_and_fields(tmp_path: Path) -> None:
    j = make(tmp_path)
    assert j.verify() == []
    first = list(j.entries())[0]
    assert first["operator"] == "ops" and first["cluster"] == "prod" and first["action"] == "test.event"
    assert first["prev"] == "0" * 64 and first["user"]


@pytest.mark.parametrize("tamper", ["edit", "remove", "reorder"])
def test_tampering_is_located(tmp_path: Path, tamper: str) -> None:
    j = make(tmp_path)
    ls = lines(j)
    if tamper == "edit":
        entry = json.loads(ls[1])
        entry["outcome"] = "failed"
        ls[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    elif tamper == "remove":
        del ls[1]
    else:
        ls[1], ls[2] = ls[2], ls[1]
    j.path.write_text("\n".join(ls) + "\n")
    problems = j.verify()
    assert problems and problems[0].line == 2 if tamper != "edit" else problems[0].line == 3


def test_concurrent_appends_keep_chain(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    threads = [threading.Thread(target=lambda: [j.append("x") for _ in range(20)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(lines(j)) == 80 and j.verify() == []


def test_cli_verify_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    j = make(tmp_path)
    assert main(["journal", "verify", "--journal", str(j.path)]) == 0
    assert main(["journal", "show", "--journal", str(j.path), "--format", "json", "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert len(json.loads(out[out.index("["):])) == 2
    ls = lines(j)
    j.path.write_text("\n".join(ls[:1] + ls[2:]) + "\n")
    assert main(["journal", "verify", "--journal", str(j.path)]) == 9
    err = capsys.readouterr().err
    assert "tampered with at line 2" in err and err.count("\n") == 1
