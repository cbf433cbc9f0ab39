"""`vaultops init --age-key`: shares handed out encrypted to the keyholders' age / ssh keys open
with their identities (the reference `age` binary and vaultops itself) and unseal the cluster;
only ciphertext is written or printed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ceremony_helpers import run_vaultops, start_uninitialized, statuses

from vaultops.crypto import age
from vaultops.crypto.agekeys import parse_identities
from vaultops.services.ceremony import shares as codecs
from vaultops.services.ceremony.manifest import Manifest
from vaultops.testing.sandbox import Sandbox

pytestmark = pytest.mark.integration
NAMES = ("alice", "bob", "carol")


@pytest.fixture
def uninit1(tmp_path: Path) -> Iterator[Sandbox]:
    box = start_uninitialized(tmp_path / "boxes", name="initage", nodes=1)
    yield box
    box.stop()


def make_keys(folder: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (public key file, identity file): alice age X25519, bob ssh-ed25519, carol ssh-rsa."""
    tool = shutil.which("age-keygen")
    assert tool, "age-keygen is not installed: scripts/test installs the Debian package 'age'"
    subprocess.run([tool, "-o", str(folder / "alice.key")], check=True, capture_output=True)
    (folder / "alice.pub").write_text(subprocess.run([tool, "-y", str(folder / "alice.key")], check=True,
                                                     capture_output=True, text=True).stdout)
    for name, args in (("bob", ["-t", "ed25519"]), ("carol", ["-t", "rsa", "-b", "2048"])):
        subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-C", name, "-f", str(folder / f"{name}.key")], check=True)
        (folder / f"{name}.key.pub").rename(folder / f"{name}.pub")
    return {n: (folder / f"{n}.pub", folder / f"{n}.key") for n in NAMES}


def test_age_shares_from_init_open_with_the_keyholders_identities_and_unseal(uninit1: Sandbox,
                                                                             tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    out = tmp_path / "handed-out"
    out.mkdir()
    args = ["init", "--shares", "3", "--threshold", "2", "--keyholder", ",".join(NAMES),
            "--root-token-file", str(out / "root")]
    for n in NAMES:
        args += ["--age-key", f"{n}={keys[n][0]}", "--share-file", f"{n}={out / n}.age"]
    init = run_vaultops(uninit1, *args)
    assert init.returncode == 0, init.stderr
    armored = {n: (out / f"{n}.age").read_text() for n in NAMES}
    assert all(t.startswith(age.ARMOR_BEGIN) for t in armored.values())

    reference = subprocess.run(["age", "-d", "-i", str(keys["alice"][1]), str(out / "alice.age")],
                               capture_output=True, text=True, check=True).stdout.strip()
    bob = age.decrypt(age.dearmor(armored["bob"]), parse_identities(keys["bob"][1].read_bytes())).decode().strip()
    carol = subprocess.run(["age", "-d", "-i", str(keys["carol"][1]), str(out / "carol.age")],
                           capture_output=True, text=True, check=True).stdout.strip()
    manifest = Manifest.load(uninit1.dir / "keyholders.yaml")
    for name, text in (("alice", reference), ("bob", bob), ("carol", carol)):
        share = codecs.decode(text)
        assert manifest.check(name, share).ok            # init enrolled the verifier of the real share
        assert manifest.keyholder(name).age_recipient
    enrolled = run_vaultops(uninit1, "keyholders", "enroll", "--keyholder", "bob", "--replace",
                            "--age-encrypted", str(out / "bob.age"), "--identity", str(keys["bob"][1]))
    assert enrolled.returncode == 0, enrolled.stderr

    plaintexts = [reference, bob, carol]
    outputs = init.stdout + init.stderr + enrolled.stdout + enrolled.stderr
    for path in [uninit1.dir / "keyholders.yaml", *uninit1.dir.rglob("journal.jsonl"), *out.glob("*.age")]:
        outputs += path.read_text()
    assert not [p for p in plaintexts if p in outputs], "a plaintext share was written or printed"

    unseal = run_vaultops(uninit1, "unseal", "--share-stdin", stdin=f"alice: {reference}\nbob: {bob}\n")
    assert unseal.returncode == 0, unseal.stderr
    assert all(st is not None and not st.sealed for st in statuses(uninit1).values())


def test_age_and_pgp_keys_are_not_mixed(uninit1: Sandbox, tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    (tmp_path / "dummy.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY "
                                        "BLOCK-----\n")
    args = ["init", "--shares", "3", "--threshold", "2", "--keyholder", ",".join(NAMES),
            "--root-token-file", str(tmp_path / "root"), "--age-key", f"alice={keys['alice'][0]}"]
    for n in NAMES:
        args += ["--pgp-key", f"{n}={tmp_path / 'dummy.asc'}", "--share-file", f"{n}={tmp_path / n}"]
    res = run_vaultops(uninit1, *args)
    assert res.returncode == 2 and "not both" in res.stderr
    assert all(st is not None and not st.initialized for st in statuses(uninit1).values())
