"""Shares do not stay in memory after a submission (issue 13, defect 19).

A child process submits one share through the checked unseal ceremony to a sealed Vault over HTTP
(with the keeping of shares for re-sending off, except in the test of that keeping)
(vaultops/testing/sealed_vault.py, served from this process), then idles; this process reads the
child's memory (/proc/PID/maps + /proc/PID/mem, tests/adversarial/memscan.py) and counts the share's
base64, raw bytes and hex. Scanning from the parent keeps the needles out of the scanned process.

Measured before the change (same harness): a str submission left 1 base64 copy, the live unseal
screen 2 -- one of them still referenced by prompt_toolkit's Document cache -- and a bytearray
submission was not possible (decode() took only str). Now everything vaultops does with a share
(decode, manifest check, base64 for sys/unseal, the JSON request body) happens in bytearrays that
are zeroed: a bytearray submission leaves 0 copies. What remains is not vaultops's to wipe: the
caller's own str, and the str objects prompt_toolkit builds from keystrokes, which the screen stops
referring to at once but cannot zero.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultops.services.ceremony.manifest import Manifest, ScryptParams
from vaultops.services.ceremony.shares import Share
from vaultops.testing.sealed_vault import SealedVault, serve

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from memscan import count  # noqa: E402

FAST = ScryptParams(n=16, r=1, p=1)
RAW = bytes(range(101, 133)) + bytes([7])  # fixed (replayable); x-coordinate 7
B64 = base64.b64encode(RAW)
NEEDLES = {"base64": B64, "raw": RAW, "hex": RAW.hex().encode(), "HEX": RAW.hex().upper().encode()}

pytestmark = pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs /proc/PID/mem")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "keyholders.yaml"
    Manifest(cluster_id="c", threshold=3, shares=5).enroll("alice", Share(RAW), params=FAST).save(path)
    return path


@pytest.fixture
def vault() -> Iterator[tuple[SealedVault, str]]:
    sealed = SealedVault()
    with serve(sealed) as address:
        yield sealed, address


def needle_hash() -> int:
    """hash() of the share's base64 str under PYTHONHASHSEED=0, computed in a process of its own."""
    out = subprocess.run([sys.executable, "-c", "import sys; print(hash(sys.stdin.read()))"], input=B64,
                         capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=30, check=True)
    return int(out.stdout)


def submit_in_child(address: str, manifest: Path, mode: str, text: bytes, *, hold: float = 0.0,
                    after: dict[str, int] | None = None) -> tuple[dict[str, int], str]:
    """Run one submission in a child; return the needle counts in its memory and what it printed.
    With *hold* the child keeps the share to re-send; *after* gets the counts once it finished the ceremony."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update(PYTHONHASHSEED="0", NEEDLE_HASH=str(needle_hash()), MEMTEST_HOLD=str(hold))
    with subprocess.Popen([sys.executable, str(HERE / "share_memory_child.py"), address, str(manifest),
                           str(manifest.parent / "journal.jsonl"), mode],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        try:
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            proc.stdin.write(text)
            proc.stdin.close()
            said = [proc.stdout.readline().decode() for _ in range(2)]
            if said[-1].strip() != "ready":
                proc.kill()
                pytest.fail(f"the child did not get ready: {said} {proc.stderr.read().decode()[-2000:]}")
            found = count(proc.pid, NEEDLES)
            if after is not None:
                proc.send_signal(signal.SIGUSR1)
                assert proc.stdout.readline().decode().strip() == "finished"
                after.update(count(proc.pid, NEEDLES))
            return found, said[0]
        finally:
            proc.kill()


@pytest.mark.parametrize(("mode", "text"), [  # ids name the form: a share in a test id lands in the environment
    pytest.param("buffer", B64, id="base64"),
    pytest.param("buffer", RAW.hex().encode(), id="hex"),
    pytest.param("buffer", b"  " + RAW.hex().upper().encode() + b"\n", id="HEX-in-whitespace"),
    pytest.param("line", b"alice: " + B64, id="named-line"),
    pytest.param("line", B64 + b"\n", id="bare-line"),
])
def test_a_bytearray_submission_leaves_no_copy_of_the_share(manifest: Path, vault: tuple[SealedVault, str],
                                                            mode: str, text: bytes) -> None:
    sealed, address = vault
    found, said = submit_in_child(address, manifest, mode, text)
    assert "alice ['accepted']" in said  # checked against the manifest and sent
    assert sealed.received == [B64.decode()]
    assert found == {"base64": 0, "raw": 0, "hex": 0, "HEX": 0}


def test_a_share_kept_for_re_sending_is_one_buffer_zeroed_when_the_ceremony_ends(
        manifest: Path, vault: tuple[SealedVault, str]) -> None:
    """Issue 15: a checked share is kept to re-send to nodes that join later -- in one bytearray of
    its own (no base64 or hex of it), zeroed when the ceremony ends."""
    sealed, address = vault
    after: dict[str, int] = {}
    found, said = submit_in_child(address, manifest, "buffer", B64, hold=900, after=after)
    assert "alice ['accepted']" in said
    assert found == {"base64": 0, "raw": 1, "hex": 0, "HEX": 0}
    assert after == {"base64": 0, "raw": 0, "hex": 0, "HEX": 0}


def test_a_str_submission_leaves_only_the_callers_own_str(manifest: Path, vault: tuple[SealedVault, str]) -> None:
    sealed, address = vault
    found, _ = submit_in_child(address, manifest, "str", B64)
    assert sealed.received == [B64.decode()]
    assert found["base64"] <= 1 and found["raw"] == 0 and found["hex"] == 0


def test_the_live_unseal_screen_keeps_no_reference_to_a_submitted_share(
        manifest: Path, vault: tuple[SealedVault, str]) -> None:
    """Keystrokes into the real screen; afterwards no object the gc can reach refers to the share's
    str (prompt_toolkit's caches did), and vaultops adds no copy of its own (raw bytes: 0)."""
    sealed, address = vault
    found, said = submit_in_child(address, manifest, "tui", B64)
    assert sealed.received == [B64.decode()]
    assert "live references 0" in said, said
    assert found["raw"] == 0
    # What stays: freed str objects prompt_toolkit made from the input (the decoded keystrokes and
    # the Buffer's text); they are unreferenced and cannot be zeroed from Python.
    assert found["base64"] <= 2, found
