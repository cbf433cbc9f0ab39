"""TLS install under disk faults: the node never keeps a key beside a certificate it does not match.

Faults (ENOSPC, EIO, EROFS, a raw OSError from a driver, Ctrl-C, a write that lands wrong) at each
write -- key.previous, cert.previous, key, cert -- through a fake driver, and through the real
local driver on a real full tmpfs and a file system remounted read-only between the writes.
Safe outcome: the old matching pair is on the node (or, when the file system refuses every
write, the one-line error says the pair may not match and not to reload), and nothing reloads.
Before, ENOSPC writing the certificate left the new key beside the old certificate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vaultops.config import parse_config
from vaultops.drivers.base import Result
from vaultops.drivers.local import LocalDriver
from vaultops.errors import DriverError
from vaultops.services.tls.acme_client import Issued, make_private_key
from vaultops.services.tls.inspect import TLSError, key_matches_cert
from vaultops.services.tls.install import PREVIOUS, Pair, install
from vaultops.services.tls.renew import Outcome, _install_and_verify
from vaultops.services.tls.settings import KeyType, NodeTls, load_tls_settings

ERRNOS = [errno.ENOSPC, errno.EIO, errno.EROFS]
WRITES = ["key.previous", "cert.previous", "key", "cert"]


def self_signed(key_pem: bytes, name: str, *, pad: int = 0) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = serialization.load_pem_private_key(key_pem, password=None)
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=90))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)] + [
                   x509.DNSName(f"pad{i}.{name}") for i in range(pad)]), critical=False))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def new_pair(name: str = "v1.example.com", *, pad: int = 0) -> Pair:
    key = make_private_key(KeyType.EC256)
    return Pair(key, self_signed(key, name, pad=pad))


def node_tls(tmp_path: Path, folder: Path) -> NodeTls:
    doc = {"cluster": {"name": "c"},
           "nodes": [{"name": "v1", "address": "https://127.0.0.1:8200", "tls_server_name": "v1.example.com"}],
           "tls": {"nodes": {"v1": {"cert_file": str(folder / "cert.pem"), "key_file": str(folder / "key.pem")}},
                   "acme": {"directory": "staging"}, "dns_provider": {"type": "rfc2136"}}}
    return load_tls_settings(parse_config(doc, path=tmp_path / "vaultops.yaml")).node("v1")


# -- a fake driver: files in memory, space counted like temp file + rename --------------------------

class FaultyDriver:
    """Writes need len(data) free bytes while the old file still exists (atomic replace).

    *fail* maps a path suffix to (errno, sticky): the first write to it fails; a sticky fault
    makes every later write fail as well (the disk went read-only or bad).
    """

    node = "v1"

    def __init__(self, files: dict[str, bytes], *, free: int = 1 << 20, fail: dict[str, tuple[int, bool]] | None = None,
                 raw: bool = False, mangle: str | None = None) -> None:
        self.files, self.free = dict(files), free
        self.fail, self.raw, self.mangle = dict(fail or {}), raw, mangle
        self.sticky: int | None = None
        self.reloads = 0
        self.writes: list[str] = []

    def _fault(self, path: str) -> int | None:
        if self.sticky is not None:
            return self.sticky
        for suffix, (code, sticky) in list(self.fail.items()):
            if path.endswith(suffix):
                del self.fail[suffix]
                if sticky:
                    self.sticky = code
                return code
        return None

    def write_file(self, path: str, data: bytes, *, mode: int = 0o600, owner: str | None = None,
                   group: str | None = None) -> Result:
        code = self._fault(path)
        if code is None and len(data) > self.free:
            code = errno.ENOSPC
        if code is not None:
            exc = OSError(code, os.strerror(code), path)
            if self.raw:
                raise exc
            raise DriverError(f"v1: cannot write {path}: {os.strerror(code)}", hint="fix the disk")
        self.free += len(self.files.get(path, b"")) - len(data)
        self.files[path] = data[: len(data) // 2] if self.mangle and path.endswith(self.mangle) else data
        self.writes.append(path)
        return Result.of(f"write {path}", 0)

    def read_file(self, path: str) -> bytes:
        if path not in self.files:
            raise DriverError(f"v1: no {path}", hint="x")
        return self.files[path]

    def reload(self) -> Result:
        self.reloads += 1
        return Result.of("reload", 0)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[NodeTls, Pair, Pair]:
    return node_tls(tmp_path, Path("/etc/vault/tls")), new_pair(), new_pair()


def on_node(drv: FaultyDriver, node: NodeTls) -> Pair:
    return Pair(drv.files[node.key_file], drv.files[node.cert_file])


def assert_one_line(exc: BaseException) -> None:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text and len(text) < 900, text


@pytest.mark.parametrize("raw", [False, True], ids=["DriverError", "raw OSError"])
@pytest.mark.parametrize("where", WRITES)
@pytest.mark.parametrize("code", ERRNOS, ids=errno.errorcode.get)
def test_a_fault_at_any_write_leaves_the_old_matching_pair(code: int, where: str, raw: bool,
                                                           setup: tuple[NodeTls, Pair, Pair]) -> None:
    node, old, new = setup
    suffix = {"key.previous": "key.pem" + PREVIOUS, "cert.previous": "cert.pem" + PREVIOUS,
              "key": "key.pem", "cert": "cert.pem"}[where]
    drv = FaultyDriver({node.key_file: old.key_pem, node.cert_file: old.chain_pem}, fail={suffix: (code, False)},
                       raw=raw)
    with pytest.raises(TLSError) as err:
        install(drv, node, new)  # type: ignore[arg-type]
    assert_one_line(err.value)
    assert on_node(drv, node) == old and key_matches_cert(old.key_pem, old.chain_pem)
    assert os.strerror(code) in str(err.value)
    assert drv.reloads == 0


@pytest.mark.parametrize("where", ["key", "cert"])
def test_a_disk_that_fills_up_is_rolled_back_with_the_space_the_new_key_freed(
        where: str, setup: tuple[NodeTls, Pair, Pair]) -> None:
    node, old, _ = setup
    big = new_pair(pad=120)  # a certificate much larger than the key
    files = {node.key_file: old.key_pem, node.cert_file: old.chain_pem}
    # .previous takes a copy of the old pair; then the new key needs its size while the old one exists.
    room = len(old.key_pem) + len(old.chain_pem) + len(big.key_pem) - (1 if where == "key" else 0)
    drv = FaultyDriver(files, free=room)
    with pytest.raises(TLSError, match="previous pair is back in place and matches"):
        install(drv, node, big)  # type: ignore[arg-type]
    assert on_node(drv, node) == old


@pytest.mark.parametrize("code", [errno.EROFS, errno.EIO], ids=errno.errorcode.get)
def test_a_disk_that_refuses_everything_after_the_key_is_reported_not_reloaded(
        code: int, tmp_path: Path, setup: tuple[NodeTls, Pair, Pair]) -> None:
    node, old, new = setup
    drv = FaultyDriver({node.key_file: old.key_pem, node.cert_file: old.chain_pem},
                       fail={"cert.pem": (code, True)})
    settings: Any = load_tls_settings(parse_config(
        {"cluster": {"name": "c"}, "nodes": [{"name": "v1", "address": "https://127.0.0.1:8200"}],
         "tls": {"nodes": {"v1": {"cert_file": node.cert_file, "key_file": node.key_file}},
                 "acme": {"directory": "staging"}, "dns_provider": {"type": "rfc2136"}}},
        path=tmp_path / "vaultops.yaml"))
    events: list[dict[str, Any]] = []
    outcome = _install_and_verify(settings, node, drv, Issued(("v1.example.com",), new.key_pem, new.chain_pem),  # type: ignore[arg-type]
                                  "forced", events.append)
    assert outcome.outcome is Outcome.FAILED and drv.reloads == 0
    assert "do not reload or restart v1" in (outcome.error or "") and PREVIOUS in (outcome.error or "")
    assert drv.files[node.key_file + PREVIOUS] == old.key_pem  # what to copy back by hand is there
    assert events[-1]["event"] == "install_failed"


def test_a_write_that_lands_wrong_is_caught_by_the_read_back(setup: tuple[NodeTls, Pair, Pair]) -> None:
    node, old, new = setup
    drv = FaultyDriver({node.key_file: old.key_pem, node.cert_file: old.chain_pem}, mangle="cert.pem")
    with pytest.raises(TLSError, match="read back"):
        install(drv, node, new)  # type: ignore[arg-type]
    # the previous certificate was mangled as well on its way back: reported, never reloaded
    drv2 = FaultyDriver({node.key_file: old.key_pem, node.cert_file: old.chain_pem}, mangle="key.pem")
    with pytest.raises(TLSError) as err:
        install(drv2, node, new)  # type: ignore[arg-type]
    assert_one_line(err.value)
    assert drv.reloads == drv2.reloads == 0


def test_ctrl_c_between_the_writes_puts_the_old_pair_back(setup: tuple[NodeTls, Pair, Pair]) -> None:
    node, old, new = setup

    class Interrupted(FaultyDriver):
        def write_file(self, path: str, data: bytes, **kwargs: Any) -> Result:
            if path == node.cert_file and data == new.chain_pem:
                raise KeyboardInterrupt
            return super().write_file(path, data, **kwargs)

    drv = Interrupted({node.key_file: old.key_pem, node.cert_file: old.chain_pem})
    with pytest.raises(KeyboardInterrupt):
        install(drv, node, new)  # type: ignore[arg-type]
    assert on_node(drv, node) == old


# -- the local driver on real file systems -----------------------------------------------------------

@contextlib.contextmanager
def tmpfs(target: Path, size: str = "64k") -> Iterator[Path]:
    target.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                      capture_output=True, timeout=30).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def test_local_driver_on_a_full_tmpfs_keeps_the_old_matching_pair(tmp_path: Path) -> None:
    """Room for .previous and the new key, not for the new (two-page) certificate: ENOSPC at the cert."""
    with tmpfs(tmp_path / "tls") as folder:
        node, old, big = node_tls(tmp_path, folder), new_pair(), new_pair(pad=120)
        assert len(big.chain_pem) > 4096 >= len(old.chain_pem)
        Path(node.key_file).write_bytes(old.key_pem)
        Path(node.cert_file).write_bytes(old.chain_pem)
        page = os.statvfs(folder).f_frsize
        with open(folder / "filler", "wb", buffering=0) as fh:
            fh.write(b"\0" * (free_bytes(folder) - 3 * page))  # .previous (2 pages) + the new key (1)
        assert free_bytes(folder) == 3 * page
        drv = LocalDriver("v1", {"dir": str(tmp_path)})
        with pytest.raises(TLSError) as err:
            install(drv, node, big)
        assert_one_line(err.value)
        assert "No space left on device" in str(err.value) and "previous pair is back in place" in str(err.value)
        assert Path(node.key_file).read_bytes() == old.key_pem and Path(node.cert_file).read_bytes() == old.chain_pem
        assert sorted(p.name for p in folder.iterdir()) == ["cert.pem", "cert.pem.previous", "filler", "key.pem",
                                                            "key.pem.previous"]  # no temp file left


def test_local_driver_on_a_full_tmpfs_refuses_at_previous(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "tls") as folder:
        node, old, new = node_tls(tmp_path, folder), new_pair(), new_pair()
        Path(node.key_file).write_bytes(old.key_pem)
        Path(node.cert_file).write_bytes(old.chain_pem)
        with open(folder / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 1024)
        with pytest.raises(TLSError, match="nothing was replaced") as err:
            install(LocalDriver("v1", {"dir": str(tmp_path)}), node, new)
        assert_one_line(err.value)
        assert Path(node.key_file).read_bytes() == old.key_pem and Path(node.cert_file).read_bytes() == old.chain_pem


def test_local_driver_when_the_file_system_turns_read_only_after_the_key(tmp_path: Path) -> None:
    """EROFS from the certificate on: nothing can be put back. The error says so; it is one line."""
    with tmpfs(tmp_path / "tls", size="1m") as folder:
        node, old, new = node_tls(tmp_path, folder), new_pair(), new_pair()
        Path(node.key_file).write_bytes(old.key_pem)
        Path(node.cert_file).write_bytes(old.chain_pem)

        class TurnsReadOnly(LocalDriver):
            def write_file(self, path: str, data: bytes, **kwargs: Any) -> Result:
                if path == node.cert_file and data == new.chain_pem:
                    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, timeout=30)
                return super().write_file(path, data, **kwargs)

        with pytest.raises(TLSError) as err:
            install(TurnsReadOnly("v1", {"dir": str(tmp_path)}), node, new)
        text = str(err.value)
        assert_one_line(err.value)
        assert "Read-only file system" in text and "do not reload or restart v1" in text
        assert Path(node.key_file + PREVIOUS).read_bytes() == old.key_pem  # the way back is on disk
        subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True, timeout=30)


def test_local_driver_maps_every_os_error(tmp_path: Path) -> None:
    drv = LocalDriver("v1", {"dir": str(tmp_path)})
    (tmp_path / "file").write_text("x")
    for path, needle in [(tmp_path / "file" / "key.pem", "File exists|Not a directory"),
                         (Path("/proc/vaultops-test/key.pem"), "cannot write"),
                         (tmp_path, "Is a directory")]:
        with pytest.raises(DriverError, match=needle) as err:
            drv.write_file(str(path), b"x")
        assert_one_line(err.value)
