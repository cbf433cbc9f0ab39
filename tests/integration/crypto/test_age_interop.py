"""Our age files open with the reference `age` binary (Debian's `age` package, installed by
scripts/test), and its files open with ours: X25519, ssh-ed25519 and ssh-rsa, across several
64 KiB chunks and at the chunk edge."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vaultops.crypto import age
from vaultops.crypto.agekeys import parse_identities, parse_recipient

pytestmark = pytest.mark.integration


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: scripts/test installs the Debian packages 'age' and 'openssh-client'"
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """kind -> (recipient text, identity file), made by the reference tools."""
    d = tmp_path_factory.mktemp("agekeys")
    subprocess.run([tool("age-keygen"), "-o", str(d / "x25519.txt")], check=True, capture_output=True)
    public = subprocess.run([tool("age-keygen"), "-y", str(d / "x25519.txt")], check=True, capture_output=True,
                            text=True).stdout.strip()
    out = {"X25519": (public, d / "x25519.txt")}
    for kind, extra in (("ssh-ed25519", ["-t", "ed25519"]), ("ssh-rsa", ["-t", "rsa", "-b", "2048"])):
        key = d / kind
        subprocess.run([tool("ssh-keygen"), "-q", *extra, "-N", "", "-C", "interop", "-f", str(key)], check=True)
        out[kind] = ((d / f"{kind}.pub").read_text().strip(), key)
    return out


@pytest.mark.parametrize("size", [0, age.CHUNK, 3 * age.CHUNK + 5])
@pytest.mark.parametrize("kind", ["X25519", "ssh-ed25519", "ssh-rsa"])
def test_ours_opens_with_age_and_theirs_with_ours(keys, tmp_path: Path, kind: str, size: int):
    public, identity = keys[kind]
    plain = os.urandom(size)
    ours = tmp_path / "ours.age"
    ours.write_bytes(age.encrypt(plain, [parse_recipient(public)]))
    opened = subprocess.run([tool("age"), "-d", "-i", str(identity), str(ours)], capture_output=True)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == plain

    (tmp_path / "recipients").write_text(public + "\n")
    (tmp_path / "plain").write_bytes(plain)
    theirs = tmp_path / "theirs.age"
    subprocess.run([tool("age"), "-R", str(tmp_path / "recipients"), "-o", str(theirs), str(tmp_path / "plain")],
                   check=True)
    assert age.decrypt(theirs.read_bytes(), parse_identities(identity.read_bytes())) == plain


def test_fingerprints_match_ssh_keygen(keys):
    for kind in ("ssh-ed25519", "ssh-rsa"):
        public, identity = keys[kind]
        listed = subprocess.run([tool("ssh-keygen"), "-lf", f"{identity}.pub"], check=True, capture_output=True,
                                text=True).stdout.split()[1]
        assert parse_recipient(public).fingerprint == listed


def test_age_refuses_what_we_refuse(keys, tmp_path: Path):
    """A flipped payload byte: the reference binary refuses it too (we test ours in the unit tests)."""
    public, identity = keys["X25519"]
    data = bytearray(age.encrypt(os.urandom(100_000), [parse_recipient(public)]))
    data[-7] ^= 0x40
    (tmp_path / "bad.age").write_bytes(bytes(data))
    res = subprocess.run([tool("age"), "-d", "-i", str(identity), str(tmp_path / "bad.age")], capture_output=True)
    assert res.returncode != 0
