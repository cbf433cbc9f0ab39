"""Initialise a new cluster: shares, threshold, one named keyholder per share.

`vaultops init` and `vaultops sandbox up` both come through here. Share i of
the init answer belongs to keyholders[i].

The keyholder manifest is written at once: per keyholder the share's
x-coordinate and a salted scrypt verifier (never the share). Its cluster_id
cannot be known yet -- a sealed node does not report one -- so it is written as
PENDING_CLUSTER_ID and the unseal ceremony records the real id the first time
a node answers unsealed (services/ceremony/unseal.py). With PGP keys the shares come
back encrypted and vaultops never sees their plaintext or x-coordinates: the
manifest then lists no keyholders and each keyholder enrolls their own share
(`vaultops shares enroll`) after decrypting it.

sys/init is a commit point: it happens once, and a share that is not delivered is
lost. So every output is opened and write-tested BEFORE it (reserve(): each share
and token file is created exclusively, 0600, and filled with a placeholder of
RESERVED_BYTES, fsynced, and kept open; check_manifest_target() probes the
manifest's folder), and after it the secrets go first, manifest and journal after.
A reserved file's later write reuses blocks it already holds: no new name, folder,
permission or free space is needed any more.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.errors import UsageError, VaultError, VaultOpsError

if TYPE_CHECKING:
    from vaultops.services.ceremony.manifest import Manifest, ScryptParams
    from vaultops.vault import NodeClient
    from vaultops.vault.models import InitResult

PENDING_CLUSTER_ID = "pending-first-unseal"
RESERVED_BYTES = 16 << 10  # more than any share (PGP-encrypted or mnemonic) or token needs
PLACEHOLDER = b"# vaultops init: reserved for a secret that was never written here (init did not finish).\n"


def initialize_cluster(client: NodeClient, *, shares: int, threshold: int, keyholders: list[str],
                       manifest_path: Path | None = None, pgp_keys: list[str] | None = None,
                       params: ScryptParams | None = None) -> InitResult:
    """PUT sys/init on *client*; write the keyholder manifest to *manifest_path* if given."""
    validate_plan(shares=shares, threshold=threshold, keyholders=keyholders, pgp_keys=pgp_keys)
    if manifest_path is not None:
        check_manifest_target(manifest_path)
    if client.seal.status().initialized:
        raise VaultError(f"{client.name} is already initialised",
                         hint="use vaultops rekey to change the shares")
    result = client.seal.init(shares=shares, threshold=threshold, pgp_keys=pgp_keys)
    if manifest_path is not None:
        save_manifest(result, manifest_path, keyholders=keyholders, threshold=threshold,
                      encrypted=bool(pgp_keys), params=params)
    return result


def save_manifest(result: InitResult, path: Path, *, keyholders: list[str], threshold: int,
                  encrypted: bool = False, params: ScryptParams | None = None,
                  age_recipients: dict[str, str] | None = None) -> None:
    """Write the manifest after init; a failure names the way to rebuild it."""
    manifest = init_manifest(result, keyholders=keyholders, threshold=threshold, encrypted=encrypted,
                             params=params, age_recipients=age_recipients)
    try:
        manifest.save(path)
    except OSError as exc:
        raise VaultOpsError(f"the keyholder manifest could not be written to {path} ({_why(exc)})",
                            hint="each keyholder can enroll their share again: vaultops shares enroll") from exc


def init_manifest(result: InitResult, *, keyholders: list[str], threshold: int,
                  encrypted: bool = False, params: ScryptParams | None = None,
                  age_recipients: dict[str, str] | None = None) -> Manifest:
    """The manifest for a fresh init: one verified entry per plaintext share (age keyholders' shares
    are plaintext here too: vaultops encrypts them itself, see age_shares.py), with their age key."""
    from vaultops.services.ceremony import manifest as mf
    from vaultops.services.ceremony.shares import decode

    m = mf.Manifest(cluster_id=PENDING_CLUSTER_ID, threshold=threshold, shares=len(keyholders))
    if encrypted:
        return m
    for name, key in zip(keyholders, result.keys_b64, strict=True):
        m = m.enroll(name, decode(key), params=params or mf.DEFAULT_PARAMS,
                     age_recipient=(age_recipients or {}).get(name))
    return m


def validate_plan(*, shares: int, threshold: int, keyholders: list[str],
                  pgp_keys: list[str] | None, age_recipients: dict[str, str] | None = None) -> None:
    if not 1 <= threshold <= shares:
        raise UsageError(f"threshold {threshold} must be between 1 and shares ({shares})",
                         hint="e.g. --shares 5 --threshold 3")
    if shares > 1 and threshold < 2:
        raise UsageError("a threshold of 1 with several shares lets any one keyholder unseal",
                         hint="use a threshold of at least 2")
    names = [k.strip() for k in keyholders]
    if len(names) != shares or len(set(names)) != shares or not all(names):
        raise UsageError(f"{shares} shares need {shares} distinct keyholder names, got "
                         f"{len(set(n for n in names if n))}", hint="name one keyholder per share")
    bad = [n for n in names if not all(c.isalnum() or c in "-_." for c in n)]
    if bad:
        raise UsageError(f"keyholder name {bad[0]!r} may use only letters, digits, '-', '_', '.'",
                         hint="rename the keyholder")
    if pgp_keys is not None and len(pgp_keys) != shares:
        raise UsageError(f"{len(pgp_keys)} PGP keys for {shares} shares",
                         hint="give one PGP public key per keyholder, in keyholder order")
    unknown = sorted(set(age_recipients or {}) - set(names))
    if unknown:
        raise UsageError(f"an age key for {unknown[0]!r}, who is not one of the keyholders", hint="check NAME=")
    if pgp_keys is not None and age_recipients:
        raise UsageError("a share is encrypted either by Vault to PGP keys or by vaultops to age keys, not both",
                         hint="give --pgp-key or --age-key")


# -- outputs opened before sys/init -------------------------------------------------------------

class Slot:
    """A secret's file, created and filled with a placeholder before sys/init; fill() writes the secret."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def open(self) -> bool:
        return self._fd is not None

    def fill(self, text: str) -> None:
        """Overwrite the placeholder in place (raises OSError; the slot is then discarded)."""
        fd = self._take()
        try:
            data = text.encode()
            _write_all(fd, data)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        except OSError:
            self._unlink()
            raise
        finally:
            os.close(fd)

    def discard(self) -> None:
        """Close and remove a slot that was never filled (nothing happens to a filled one)."""
        if self._fd is not None:
            os.close(self._take())
            self._unlink()

    def _take(self) -> int:
        fd, self._fd = self._fd, None
        if fd is None:
            raise ValueError(f"{self.path} was already written or discarded")
        return fd

    def _unlink(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def reserve(path: Path, *, what: str) -> Slot:
    """Create *path* exclusively (0600, no symlink followed) and write-test it; UsageError if impossible."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise UsageError(f"{what} {path} exists: a secret's file is never overwritten",
                         hint="choose a new path") from None
    except OSError as exc:
        raise _refusal(what, path, exc) from None
    slot = Slot(path, fd)
    try:
        os.fchmod(fd, 0o600)
        _write_all(fd, PLACEHOLDER.ljust(RESERVED_BYTES, b" "))
        os.fsync(fd)
        _sync_dir(path.parent)
    except OSError as exc:
        slot.discard()
        raise _refusal(what, path, exc) from None
    return slot


@contextlib.contextmanager
def reserved(paths: dict[str, Path], what: dict[str, str]) -> Iterator[dict[str, Slot]]:
    """Slots for every path (all or none); on leaving, slots never filled are removed."""
    slots: dict[str, Slot] = {}
    try:
        for key, path in paths.items():
            slots[key] = reserve(path, what=what[key])
        yield slots
    finally:
        for slot in slots.values():
            slot.discard()


def check_manifest_target(path: Path) -> None:
    """The manifest (0644, replaced atomically) must be writable where it goes: probe its folder."""
    folder = path.parent
    if path.exists() and not path.is_file():
        raise UsageError(f"keyholder manifest {path} exists and is not a regular file",
                         hint="choose another --manifest path")
    history = folder / f"{path.stem}.history"
    if history.exists() and not history.is_dir():
        raise UsageError(f"{history} is not a folder: the manifest keeps replaced versions there",
                         hint="move that file away or choose another --manifest path")
    try:
        if path.exists():
            path.read_bytes()
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        try:
            _write_all(fd, b" " * RESERVED_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise _refusal("keyholder manifest", path, exc) from None


def write_rescue(state_dir: Path, items: list[tuple[str, str]], *, cluster: str) -> Path:
    """Undelivered secrets into a new 0600 file in a 0700 folder of the state directory (raises OSError)."""
    folder = state_dir / "init-rescue"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{''.join(c if c.isalnum() or c in '-_' else '_' for c in cluster)}-{stamp}.txt"
    body = ("# vaultops init could not deliver these secrets where asked. Hand each to its owner,\n"
            "# then destroy this file (shred -u).\n" + "".join(f"{label}: {text}\n" for label, text in items))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, body.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _write_all(fd: int, data: bytes) -> None:
    """From offset 0; a short write (the disk filling up) goes on until the OSError comes."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], done)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_HINTS = {
    errno.ENOENT: "create the folder first, or choose another path",
    errno.ENOTDIR: "a part of that path is a file, not a folder: choose another path",
    errno.EACCES: "choose a folder you may write to",
    errno.EPERM: "choose a folder you may write to",
    errno.EROFS: "that file system is read-only: choose another path",
    errno.ENOSPC: "that file system is full: free space or choose another path",
    errno.EDQUOT: "your quota there is used up: free space or choose another path",
}


def _refusal(what: str, path: Path, exc: OSError) -> UsageError:
    return UsageError(f"{what} {path} cannot be written ({_why(exc)}); the cluster was not initialised",
                      hint=_HINTS.get(exc.errno or 0, "choose another path"))


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
