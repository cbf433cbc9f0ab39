"""`vaultops init` is a commit point: every output is proven writable BEFORE sys/init, and a secret
that still cannot be written after it is shown on the terminal or rescued -- never lost.

Against a fresh, sealed, UNINITIALISED 1-node raft sandbox. Before, a manifest or share file under
a parent that is a regular file was noticed only after sys/init (FileExistsError traceback): the
cluster was initialised and no share, no token reached anybody.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.services.ceremony.manifest import Manifest
from vaultops.services.ceremony.shares import decode
from vaultops.testing.sandbox import Sandbox, start_sandbox

pytestmark = pytest.mark.integration
KEYHOLDERS = ("alice", "bob")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox node that was started and never initialised (its bootstrap's init is skipped)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("vaultops.services.sandbox.bootstrap._initialize", lambda client, box: None)
        mp.setattr("vaultops.services.sandbox.bootstrap._write_secrets", lambda box, result: None)
        box = start_sandbox(tmp_path_factory.mktemp("init-commit"), name="initcommit", nodes=1, cold=True)
    yield box
    box.stop()


def initialised(box: Sandbox) -> bool:
    return bool(box.clients(token=False)[0].seal.status().initialized)


@pytest.fixture
def fast_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultops.services.ceremony.manifest import ScryptParams

    monkeypatch.setattr("vaultops.services.ceremony.manifest.DEFAULT_PARAMS", ScryptParams(n=2**4, r=1, p=1))


@pytest.fixture
def outputs(tmp_path: Path) -> dict[str, Path]:
    out = tmp_path / "out"
    out.mkdir()
    return {"manifest": out / "keyholders.yaml", "token": out / "root.token",
            **{name: out / f"{name}.share" for name in KEYHOLDERS}}


def init_argv(box: Sandbox, outputs: dict[str, Path]) -> list[str]:
    return ["--config", str(box.config_path), "init", "--shares", "2", "--threshold", "2",
            "--keyholder", ",".join(KEYHOLDERS), "--codec", "hex", "--manifest", str(outputs["manifest"]),
            "--root-token-file", str(outputs["token"]),
            *[a for name in KEYHOLDERS for a in ("--share-file", f"{name}={outputs[name]}")]]


def snapshot(folder: Path) -> dict[str, bytes]:
    """The sandbox's own files (journal, manifest, config), not its node's log and data."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- places that cannot hold an output --------------------------------------------------------------

@contextlib.contextmanager
def mounted(target: Path, *args: str) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", *args, str(target)], capture_output=True, timeout=30).returncode != 0:
        pytest.skip(f"cannot mount here ({' '.join(args)})")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@contextlib.contextmanager
def place(kind: str, tmp_path: Path) -> Iterator[Path]:
    """A folder in which nothing can be created, of the given kind."""
    if kind == "file-as-folder":
        parent = tmp_path / "a-file"
        parent.write_text("I am a file\n")
        yield parent
    elif kind == "missing-folder":
        yield tmp_path / "missing" / "deeper"
    elif kind == "read-only-mount":
        source = tmp_path / "ro-source"
        source.mkdir()
        with mounted(tmp_path / "ro", "-o", "bind,ro", str(source)):
            yield tmp_path / "ro"
    elif kind == "full-tmpfs":
        with mounted(tmp_path / "full", "-t", "tmpfs", "-o", "size=64k", "tmpfs"):
            _fill(tmp_path / "full" / "filler")
            yield tmp_path / "full"
    elif kind == "nearly-full-tmpfs":  # room for a name and a few blocks, not for the reservation
        with mounted(tmp_path / "nearly", "-t", "tmpfs", "-o", "size=64k", "tmpfs"):
            _fill(tmp_path / "nearly" / "filler")
            os.truncate(tmp_path / "nearly" / "filler", os.path.getsize(tmp_path / "nearly" / "filler") - 8192)
            yield tmp_path / "nearly"
    else:
        raise AssertionError(kind)


def _fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 4096)


PLACES = ["file-as-folder", "missing-folder", "read-only-mount", "full-tmpfs", "nearly-full-tmpfs"]


@pytest.mark.parametrize("which", ["manifest", "token", "bob"])
@pytest.mark.parametrize("kind", PLACES)
def test_an_unwritable_output_is_refused_before_init(which: str, kind: str, fresh: Sandbox, tmp_path: Path,
                                                     outputs: dict[str, Path], fast_manifest: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(fresh.dir)
    with place(kind, tmp_path) as folder:
        outputs[which] = folder / outputs[which].name
        code = main(init_argv(fresh, outputs))
        err = capsys.readouterr().err
        assert code == 2, err
        assert len(err.splitlines()) == 1 and "Traceback" not in err and "not initialised" in err, err
        assert str(folder) in err
        assert not initialised(fresh)
        assert not any(p.exists() for p in outputs.values())  # the reserved files were removed again
    assert snapshot(fresh.dir) == before  # no journal entry, no manifest


@pytest.mark.parametrize("which", ["token", "bob"])
@pytest.mark.parametrize("existing", ["file", "dangling-symlink", "folder"])
def test_an_existing_secret_file_is_never_overwritten(which: str, existing: str, fresh: Sandbox,
                                                      outputs: dict[str, Path], fast_manifest: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    target = outputs[which]
    if existing == "file":
        target.write_text("keep me\n")
    elif existing == "dangling-symlink":
        target.symlink_to(target.parent / "nowhere")
    else:
        target.mkdir()
    code = main(init_argv(fresh, outputs))
    err = capsys.readouterr().err
    assert code == 2 and "never overwritten" in err and len(err.splitlines()) == 1, err
    assert not initialised(fresh)
    assert existing != "file" or target.read_text() == "keep me\n"
    assert not (target.parent / "nowhere").exists()


def test_two_secrets_for_one_file_and_a_folder_as_manifest_are_refused(
        fresh: Sandbox, outputs: dict[str, Path], fast_manifest: None, capsys: pytest.CaptureFixture[str]) -> None:
    same = dict(outputs, bob=outputs["alice"])
    assert main(init_argv(fresh, same)) == 2
    assert "same file" in capsys.readouterr().err
    outputs["manifest"].mkdir()
    assert main(init_argv(fresh, outputs)) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert not initialised(fresh)


# -- after sys/init: nothing is lost ---------------------------------------------------------------

@pytest.fixture
def own_fresh(tmp_path: Path) -> Iterator[Sandbox]:
    """A node of its own: these tests initialise it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("vaultops.services.sandbox.bootstrap._initialize", lambda client, box: None)
        mp.setattr("vaultops.services.sandbox.bootstrap._write_secrets", lambda box, result: None)
        box = start_sandbox(tmp_path / "own", name="initafter", nodes=1, cold=True)
    yield box
    box.stop()


def failing_fill(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """The write after init into *path* fails (an I/O error after the reservation succeeded)."""
    from vaultops.services.ceremony.init import Slot

    real = Slot.fill

    def fill(self: Slot, text: str) -> None:
        if self.path == path:
            self.discard()
            raise OSError(5, "Input/output error")
        real(self, text)

    monkeypatch.setattr(Slot, "fill", fill)


def test_an_undelivered_share_goes_to_a_rescue_file_without_a_terminal(
        own_fresh: Sandbox, outputs: dict[str, Path], fast_manifest: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    failing_fill(monkeypatch, outputs["bob"])
    code = main(init_argv(own_fresh, outputs))
    out, err = capsys.readouterr()
    assert code == 1 and initialised(own_fresh)
    assert len([ln for ln in err.splitlines() if ln.startswith("vaultops: error:")]) == 1, err
    assert "1 secret(s) could not be delivered" in err and "init-rescue" in err
    rescue = next((Path(os.environ["VAULTOPS_STATE_DIR"]) / "init-rescue").glob("*.txt"))
    assert stat.S_IMODE(rescue.stat().st_mode) == 0o600 and stat.S_IMODE(rescue.parent.stat().st_mode) == 0o700
    bob_line = next(ln for ln in rescue.read_text().splitlines() if ln.startswith("bob's share"))
    bob = decode(bob_line.split(": ", 1)[1])
    assert bob.raw.hex() not in out + err  # never on a stream that is not a terminal
    alice = decode(outputs["alice"].read_text())
    manifest = Manifest.load(outputs["manifest"])  # written after the secrets, even so
    assert manifest.check("alice", alice).ok and manifest.check("bob", bob).ok
    assert outputs["token"].read_text().strip() and not outputs["bob"].exists()
    entry = json.loads((own_fresh.dir / "journal.jsonl").read_text().splitlines()[-1])
    assert entry["action"] == "cluster.initialized" and entry["details"]["undelivered"] == 1
    rescue.unlink()
    own_fresh.unseal_all(shares=[alice.raw.hex(), bob.raw.hex()])  # the rescued share works


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_undelivered_share_and_token_are_shown_on_the_terminal(
        own_fresh: Sandbox, outputs: dict[str, Path], fast_manifest: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    failing_fill(monkeypatch, outputs["alice"])
    failing_fill(monkeypatch, outputs["token"])
    monkeypatch.setattr("sys.stdin", Terminal("\nwritten\n" * 2))
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    code = main(init_argv(own_fresh, outputs))
    out, err = capsys.readouterr()
    assert code == 1 and initialised(own_fresh)
    assert "2 secret(s) could not be delivered where asked: shown on the terminal instead" in err
    assert "NOT DELIVERED, shown here instead: alice's share" in out
    assert "NOT DELIVERED, shown here instead: root token" in out
    assert not list((Path(os.environ["VAULTOPS_STATE_DIR"]) / "init-rescue").glob("*"))
    assert decode(outputs["bob"].read_text())


def test_when_even_the_rescue_fails_the_error_says_what_to_do(
        own_fresh: Sandbox, outputs: dict[str, Path], fast_manifest: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    failing_fill(monkeypatch, outputs["bob"])

    def no_rescue(*args: object, **kwargs: object) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("vaultops.services.ceremony.init.write_rescue", no_rescue)
    code = main(init_argv(own_fresh, outputs))
    out, err = capsys.readouterr()
    assert code == 1 and "LOST" in err and "wipe its storage and run init again" in err
    assert "Traceback" not in err
