"""`vaultops shares ...` in-process: stdin only, exit codes, nothing secret on stderr."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from shares_helpers import FAST, assert_no_material, assert_no_words, make_raw

from vaultops.cli import main
from vaultops.services.ceremony import manifest as manifest_mod
from vaultops.services.ceremony.manifest import Manifest
from vaultops.services.ceremony.shares import Share, decode, encode


class TtyInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
        stdin: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest_mod, "DEFAULT_PARAMS", FAST)


@pytest.fixture
def team() -> dict[str, bytes]:
    return {"alice": make_raw(3), "bob": make_raw(7)}


@pytest.fixture
def manifest_file(tmp_path: Path, team: dict[str, bytes]) -> Path:
    m = Manifest(cluster_id="c0ffee", threshold=2, shares=3)
    for name, raw in team.items():
        m = m.enroll(name, Share(raw), params=FAST)
    path = tmp_path / "keyholders.yaml"
    m.save(path)
    return path


# -- encode / decode ---------------------------------------------------------------

@pytest.mark.parametrize("to", ["base64", "hex", "mnemonic"])
def test_encode_from_base64(monkeypatch, capsys, raw: bytes, to: str) -> None:
    code, out, err = run(monkeypatch, capsys, ["shares", "encode", "--to", to],
                         base64.b64encode(raw).decode() + "\n")
    assert code == 0 and err == ""
    assert out.endswith("\n") and out.count("\n") == 1
    assert decode(out).raw == raw


def test_encode_mnemonic_with_passphrase_then_decode(monkeypatch, capsys, raw: bytes) -> None:
    code, out, err = run(monkeypatch, capsys,
                         ["shares", "encode", "--to", "mnemonic", "--passphrase-stdin"],
                         raw.hex() + "\nsecret words\n")
    assert code == 0 and err == ""
    mnemonic = out.strip()
    assert decode(mnemonic, b"secret words").raw == raw
    code, out, err = run(monkeypatch, capsys, ["shares", "decode", "--to", "hex",
                                               "--passphrase-stdin"], mnemonic + "\nsecret words")
    assert (code, out, err) == (0, raw.hex() + "\n", "")


@pytest.mark.parametrize("to", ["base64", "hex"])
def test_decode_mnemonic(monkeypatch, capsys, raw: bytes, to: str) -> None:
    code, out, err = run(monkeypatch, capsys, ["shares", "decode", "--to", to],
                         encode(raw, "mnemonic") + "\n")
    assert code == 0 and err == ""
    assert out.strip() == encode(raw, to)


def test_encode_refuses_a_mnemonic(monkeypatch, capsys, raw: bytes) -> None:
    mnemonic = encode(raw, "mnemonic")
    code, out, err = run(monkeypatch, capsys, ["shares", "encode", "--to", "hex"], mnemonic)
    assert code == 2 and out == ""
    assert "shares decode" in err
    assert_no_words(err, mnemonic)


@pytest.mark.parametrize("stdin,problem", [
    ("", "empty share"),
    ("AAAA\nBBBB\n", "more than one non-empty line"),
    ("x" * 5000, "more than one share"),
])
def test_bad_stdin(monkeypatch, capsys, stdin: str, problem: str) -> None:
    code, out, err = run(monkeypatch, capsys, ["shares", "decode", "--to", "hex"], stdin)
    assert code == 2 and out == "" and problem in err


def test_passphrase_stdin_needs_a_second_line(monkeypatch, capsys, raw: bytes) -> None:
    code, out, err = run(monkeypatch, capsys,
                         ["shares", "decode", "--to", "hex", "--passphrase-stdin"], raw.hex())
    assert code == 2 and "no passphrase line" in err


@pytest.mark.parametrize("mangle", [
    lambda raw: raw.hex()[:64],
    lambda raw: base64.b64encode(raw).decode()[:30] + " " + base64.b64encode(raw).decode()[30:],
    lambda raw: raw[:32].hex() + "00",
    lambda raw: " ".join(encode(raw, "mnemonic").split()[:34]),
])
def test_malformed_share_exit_2_and_nothing_secret_on_stderr(monkeypatch, capsys, raw: bytes,
                                                            mangle) -> None:
    text = mangle(raw)
    code, out, err = run(monkeypatch, capsys, ["shares", "decode", "--to", "base64"], text)
    assert code == 2 and out == ""
    assert err.startswith("vaultops: error: ")
    assert_no_material(err, raw)
    assert_no_words(err, text)


def test_a_share_on_the_command_line_is_refused(capsys, raw: bytes) -> None:
    assert main(["shares", "decode", "--to", "hex", raw.hex()]) == 2
    captured = capsys.readouterr()
    assert_no_material(captured.out + captured.err, raw)


def test_tty_input_uses_hidden_prompts(monkeypatch, capsys, raw: bytes) -> None:
    mnemonic = encode(raw, "mnemonic", b"pw")
    answers = iter([mnemonic, "pw"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr("sys.stdin", TtyInput(""))
    assert main(["shares", "decode", "--to", "hex"]) == 0
    out, err = capsys.readouterr()
    assert out == raw.hex() + "\n" and err == ""
    assert prompts == ["Unseal share (input hidden): ", "Mnemonic passphrase (Enter for none): "]


# -- check -------------------------------------------------------------------------

def test_check_right_share(monkeypatch, capsys, manifest_file: Path, team) -> None:
    argv = ["shares", "check", "--manifest", str(manifest_file), "--keyholder", "alice"]
    code, out, err = run(monkeypatch, capsys, argv, encode(team["alice"], "mnemonic"))
    assert (code, err) == (0, "")
    assert out == "match: share #3 matches keyholder alice\n"


def test_check_other_keyholders_share_json(monkeypatch, capsys, manifest_file: Path, team) -> None:
    argv = ["shares", "check", "--manifest", str(manifest_file), "--keyholder", "alice",
            "--format", "json"]
    code, out, err = run(monkeypatch, capsys, argv, encode(team["bob"], "base64"))
    assert code == 3 and err == ""
    doc = json.loads(out)
    assert doc["status"] == "other-keyholder" and doc["owner"] == "bob" and doc["verified"]
    assert doc["share_index"] == 7 and doc["ok"] is False
    assert_no_material(out, team["bob"])


def test_check_random_share(monkeypatch, capsys, manifest_file: Path) -> None:
    raw = make_raw(3)
    argv = ["shares", "check", "--manifest", str(manifest_file), "--keyholder", "alice"]
    code, out, err = run(monkeypatch, capsys, argv, raw.hex())
    assert code == 3 and out.startswith("no-match: ") and err == ""
    assert_no_material(out, raw)


def test_check_unknown_keyholder_and_broken_manifest(monkeypatch, capsys, manifest_file: Path,
                                                      raw: bytes) -> None:
    argv = ["shares", "check", "--manifest", str(manifest_file), "--keyholder", "zed"]
    code, out, err = run(monkeypatch, capsys, argv, raw.hex())
    assert code == 2 and "no keyholder named 'zed'" in err
    manifest_file.write_text(manifest_file.read_text().replace("share_index: 3", "share_index: x"))
    argv[-1] = "alice"
    code, out, err = run(monkeypatch, capsys, argv, raw.hex())
    assert code == 2 and f"{manifest_file}: keyholders[0].share_index" in err
    assert_no_material(err, raw)


# -- enroll ------------------------------------------------------------------------

def test_enroll_creates_then_updates_with_history(monkeypatch, capsys, tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    a, b = make_raw(1), make_raw(2)
    base = ["shares", "enroll", "--manifest", str(path)]
    code, out, err = run(monkeypatch, capsys, base + ["--keyholder", "ann"], a.hex())
    assert code == 2 and "--cluster-id" in err
    create = ["--cluster-id", "c1", "--threshold", "2", "--shares", "3"]
    code, out, err = run(monkeypatch, capsys, base + ["--keyholder", "ann", *create], a.hex())
    assert (code, err) == (0, "") and "enrolled ann with share #1" in out
    code, out, err = run(monkeypatch, capsys, base + ["--keyholder", "ben"], encode(b, "mnemonic"))
    assert code == 0 and "previous version kept" in out
    assert len(list((tmp_path / "keys.history").iterdir())) == 1
    code, out, err = run(monkeypatch, capsys, base + ["--keyholder", "ben"], b.hex())
    assert code == 2 and "already enrolled" in err
    m = Manifest.load(path)
    assert m.check("ben", Share(b)).ok and m.check("ann", Share(a)).ok
    assert_no_material(path.read_text(), a)
    assert_no_material(path.read_text(), b)


def test_manifest_path_comes_from_vaultops_yaml(monkeypatch, capsys, manifest_file: Path,
                                                team) -> None:
    config = manifest_file.parent / "vaultops.yaml"
    config.write_text("nodes:\n  - {name: v1, address: 'https://127.0.0.1:8200'}\n"
                      f"keyholders: {{manifest: {manifest_file.name}}}\n")
    argv = ["shares", "check", "--config", str(config), "--keyholder", "bob"]
    code, out, err = run(monkeypatch, capsys, argv, encode(team["bob"], "hex"))
    assert (code, err) == (0, "") and "matches keyholder bob" in out
    config.write_text("nodes:\n  - {name: v1, address: 'https://127.0.0.1:8200'}\n")
    code, out, err = run(monkeypatch, capsys, argv, encode(team["bob"], "hex"))
    assert code == 2 and "keyholders.manifest: not set" in err
