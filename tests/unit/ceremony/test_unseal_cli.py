"""`vaultops unseal --share-stdin` in-process against the fake cluster: bad input, exit codes."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
from ceremony_fakes import b64, fake_cluster, make_manifest, make_shares

from vaultops.cli import main
from vaultops.journal import Journal
from vaultops.services.ceremony.unseal import UnsealCeremony
from vaultops.services.ceremony.shares import encode


@pytest.fixture
def raws() -> list[bytes]:
    return make_shares()


@pytest.fixture
def cluster(raws: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    nodes = fake_cluster(raws, 3)

    def build(session: object, args: object) -> UnsealCeremony:
        return UnsealCeremony(nodes, manifest=make_manifest(raws),
                              journal=Journal(tmp_path / "journal.jsonl", cluster="test"), retry_for=0.1)

    monkeypatch.setattr("vaultops.cli.unseal_cmd.build_ceremony", build)
    return nodes


def run(monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["unseal", "--share-stdin", "--timeout", "1", *args])


def malformed(raw: bytes) -> list[str]:
    from shamir_mnemonic import generate_mnemonics

    good_b64, good_hex = b64(raw), raw.hex()
    words = encode(raw, "mnemonic").split()
    swapped = words[:]
    swapped[3], swapped[4] = swapped[4], swapped[3]
    if swapped == words:
        swapped[3] = "academic" if words[3] != "academic" else "acid"
    wallet = str(generate_mnemonics(1, [(1, 1)], os.urandom(16))[0][0])
    return [
        "", "   ", "\t", good_b64[:-1], good_b64[:-4], good_b64 + "A", good_b64 + "AAAA",
        good_hex[:-1], good_hex[:-2], good_hex + "00", "0x" + good_hex,
        good_b64[:20] + " " + good_b64[20:], good_hex[:30] + " " + good_hex[30:],
        good_b64[:20] + "\t" + good_b64[20:], good_b64[:7] + "\x07" + good_b64[8:],
        good_b64[:7] + "\x1b" + good_b64[8:], good_b64[:7] + "\x00" + good_b64[8:],
        good_b64[:7] + "é" + good_b64[8:], "\u201c" + good_b64 + "\u201d",
        good_b64[:10] + "-" + good_b64[11:20] + "_" + good_b64[21:],
        good_b64[:10] + "-" + good_b64[11:20] + "+" + good_b64[21:],
        good_b64[:20] + "=" + good_b64[21:], good_b64[:-2] + "==" + "==",
        base64.b64encode(raw[:32]).decode(), base64.b64encode(raw + b"\x01").decode(),
        raw[:32].hex(), base64.b64encode(raw[:32] + b"\x00").decode(),
        good_hex[:20] + "g" + good_hex[21:],
        " ".join(words[:-1]), " ".join(words + words[:1]), " ".join(swapped),
        " ".join(words[:5] + [words[5][:-1] + "q"] + words[6:]), wallet,
        " ".join(words[:10] + [good_b64[:8]] + words[11:]), "academic",
        "hello world this is not a share",
    ]


def test_every_malformed_line_is_rejected_and_nothing_is_sent(
        raws: list[bytes], cluster: list, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = malformed(raws[0])
    assert len(bad) >= 30
    code = run(monkeypatch, "\n".join(bad) + "\n")
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("rejected, nothing sent") == len(bad)
    assert all(node.seal.calls == 0 for node in cluster)
    journal = (tmp_path / "journal.jsonl").read_text()
    for form in (b64(raws[0]), raws[0].hex()):
        for i in range(0, len(form) - 12, 4):
            assert form[i:i + 12] not in out + err + journal


def test_named_and_bare_lines_unseal(raws: list[bytes], cluster: list,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    stdin = f"alice: {b64(raws[0])}\n{raws[1].hex()}\ncarol: {encode(raws[2], 'mnemonic')}\n"
    assert run(monkeypatch, stdin) == 0
    out = capsys.readouterr().out
    assert "keyholder bob submitted share #2" in out and "unsealed" in out
    assert b64(raws[0]) not in out


def test_exit_codes(raws: list[bytes], cluster: list, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, f"{b64(raws[0])}\n") == 11  # accepted, still sealed
    assert run(monkeypatch, f"{b64(raws[1])}\n", "--keyholder", "alice") == 3  # bob's share
    cluster[2].seal.unreachable = True
    assert run(monkeypatch, f"{b64(raws[1])}\n{b64(raws[2])}\n") == 12
    assert "node3 is unreachable" in capsys.readouterr().err


def test_keyholder_option_needs_share_stdin(cluster: list, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["unseal", "--keyholder", "alice"]) == 2
    assert "--keyholder goes with --share-stdin" in capsys.readouterr().err

