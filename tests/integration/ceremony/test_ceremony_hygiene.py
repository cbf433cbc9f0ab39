"""Secret hygiene: after `vaultops init` and unseal ceremonies on a real 3-node cluster, no share
(base64, hex, mnemonic words, raw bytes) and no root token is in any log, journal, manifest,
config, state file, or the bao processes' argv and environment."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from ceremony_helpers import run_vaultops, statuses

from vaultops.services.ceremony import shares as codecs
from vaultops.services.ceremony.manifest import Manifest
from vaultops.testing.sandbox import Sandbox

pytestmark = pytest.mark.integration
NAMES = ("alice", "bob", "carol", "dave", "erin")


def needles(raws: list[bytes], token: str, mnemonic: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {"root token": token.encode()}
    for i, raw in enumerate(raws):
        forms = {"b64": base64.b64encode(raw).decode(), "hex": raw.hex(), "HEX": raw.hex().upper(),
                 "b64 key": base64.b64encode(raw[:32]).decode().rstrip("=")}
        for kind, text in forms.items():
            out[f"share {i} {kind}"] = text.encode()
        out[f"share {i} raw"] = raw
    words = mnemonic.split()
    for j in range(0, len(words) - 2, 3):
        out[f"mnemonic words {j}-{j + 2}"] = " ".join(words[j:j + 3]).encode()
    return out


def leaks(blob: bytes, found: dict[str, bytes]) -> list[str]:
    low = blob.lower()
    return [name for name, needle in found.items()
            if needle in blob or (name.startswith("mnemonic") and needle in low)]


def test_no_secret_anywhere_after_init_and_unseal(uninit3: Sandbox, tmp_path: Path) -> None:
    held = tmp_path / "keyholders-own-files"  # files the keyholders asked for: not scanned
    held.mkdir()
    files = [f"{n}={held / n}.share" for n in NAMES]
    init = run_vaultops(uninit3, "--debug", "init", "--shares", "5", "--threshold", "3",
                        "--keyholder", ",".join(NAMES), "--root-token-file", str(held / "root"),
                        *[a for f in files for a in ("--share-file", f)])
    assert init.returncode == 0, init.stderr
    shares = {n: (held / f"{n}.share").read_text().strip() for n in NAMES}
    assert all(oct((held / f"{n}.share").stat().st_mode)[-3:] == "600" for n in NAMES)
    token = (held / "root").read_text().strip()
    raws = [codecs.decode(shares[n]).raw for n in NAMES]
    manifest = Manifest.load(uninit3.dir / "keyholders.yaml")
    assert [k.name for k in manifest.keyholders] == list(NAMES)
    mnemonic = codecs.encode(raws[2], "mnemonic")
    round1 = (f"alice: {shares['alice']}\n" f"bob: {raws[1].hex()}\n" f"carol: {mnemonic}\n")
    round2 = f"dave: {shares['dave']}\nerin: {shares['erin']}\n{raws[0].hex().upper()}\n"
    outputs = [init.stdout, init.stderr]
    for stdin in (round1, round2):
        r = run_vaultops(uninit3, "--debug", "unseal", "--share-stdin", stdin=stdin)
        outputs += [r.stdout, r.stderr]
    assert r.returncode == 0, r.stderr
    assert all(not st.sealed for st in statuses(uninit3).values())

    found = needles(raws, token, mnemonic)
    problems = [f"output: {leaks(o.encode(), found)}" for o in outputs if leaks(o.encode(), found)]
    home = Path(os.environ["HOME"])
    for root in (uninit3.dir, home, tmp_path):
        for path in root.rglob("*"):
            if path.is_file() and held not in path.parents and not path.is_symlink():
                hit = leaks(path.read_bytes(), found)
                if hit:
                    problems.append(f"{path}: {hit}")
    for name, drv in uninit3.drivers().items():
        pid = drv.pid()
        assert pid is not None
        for part in ("cmdline", "environ"):
            hit = leaks(Path(f"/proc/{pid}/{part}").read_bytes(), found)
            if hit:
                problems.append(f"{name} /proc/{pid}/{part}: {hit}")
    assert not problems, problems
    scanned = {p.name for p in uninit3.dir.rglob("*") if p.is_file()}
    assert {"journal.jsonl", "keyholders.yaml", "vaultops.yaml", "bao.log"} <= scanned
