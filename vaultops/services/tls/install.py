"""Put a key and chain on a node through its driver, keeping the previous pair for rollback.

A commit point with nothing half-done: the key and the certificate are two files, so between
the two writes the node holds a pair that does not match. Any failure from there on (a full or
read-only disk, an I/O error, a driver bug, Ctrl-C) puts the previous pair back, and the pair on
the node is read back and checked to match before install() returns -- that is, before anybody
reloads the listener. If even the previous pair cannot be put back, the error says so and that
the node must not be reloaded or restarted until its files are fixed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vaultops.drivers.base import NodeDriver
from vaultops.errors import DriverError, VaultOpsError
from vaultops.services.tls.inspect import TLSError, key_matches_cert
from vaultops.services.tls.settings import NodeTls

log = logging.getLogger("vaultops.tls.install")

KEY_MODE = 0o600
CERT_MODE = 0o644
PREVIOUS = ".previous"


@dataclass(frozen=True)
class Pair:
    key_pem: bytes
    chain_pem: bytes

    def __repr__(self) -> str:  # never show the key
        return f"Pair(chain={len(self.chain_pem)} bytes)"


def check_pair(node: str, pair: Pair) -> None:
    if not key_matches_cert(pair.key_pem, pair.chain_pem):
        raise TLSError(f"{node}: the new private key does not match the new certificate; nothing was replaced",
                       hint="this is a bug or a corrupted download: run the renewal again")


def read_current(driver: NodeDriver, node: NodeTls) -> Pair | None:
    try:
        return Pair(key_pem=driver.read_file(node.key_file), chain_pem=driver.read_file(node.cert_file))
    except DriverError:
        return None


def install(driver: NodeDriver, node: NodeTls, pair: Pair) -> Pair | None:
    """Check the pair, save the current one beside it (.previous), write the new one, read it back.

    Returns the old pair. Raises TLSError when the new pair is not in place and checked; the
    previous pair is then back in place (checked too), or the message says it could not be.
    """
    check_pair(node.name, pair)
    previous = read_current(driver, node)
    if previous is not None:
        try:
            _write(driver, node, previous, suffix=PREVIOUS)
        except Exception as exc:  # noqa: BLE001 - the live pair is untouched: refuse, whatever went wrong
            raise TLSError(f"{node.name}: cannot keep the current pair as {PREVIOUS} ({_reason(exc)}); "
                           "nothing was replaced", hint=_hint(exc)) from exc
    try:
        _write(driver, node, pair)
        verify_on_node(driver, node, pair)
    except BaseException as exc:
        undone = _put_back(driver, node, previous)
        if not isinstance(exc, Exception):
            raise  # Ctrl-C: put back, then stop
        raise TLSError(f"{node.name}: cannot install the new pair ({_reason(exc)}); {undone}",
                       hint=_hint(exc)) from exc
    log.debug("%s: new certificate written to %s", node.name, node.cert_file)
    return previous


def restore(driver: NodeDriver, node: NodeTls, previous: Pair) -> None:
    """Put *previous* back and check it on the node (raises when that fails).

    Only a file that differs is rewritten: after a disk filled up between the key and the
    certificate, only the key needs space again -- about what the new key just took.
    """
    for path, data, mode in ((node.key_file, previous.key_pem, KEY_MODE),
                             (node.cert_file, previous.chain_pem, CERT_MODE)):
        if _read_or_none(driver, path) != data:
            driver.write_file(path, data, mode=mode, owner=node.owner, group=node.group)
    verify_on_node(driver, node, previous)


def verify_on_node(driver: NodeDriver, node: NodeTls, pair: Pair) -> None:
    """Read the key and certificate back: they must be *pair*, which matches, or nothing reloads."""
    on_node = Pair(key_pem=driver.read_file(node.key_file), chain_pem=driver.read_file(node.cert_file))
    if on_node != pair or not key_matches_cert(on_node.key_pem, on_node.chain_pem):
        raise TLSError(f"{node.name}: the key and certificate read back from {node.key_file} and "
                       f"{node.cert_file} are not the pair just written", hint="is another tool writing them?")


def _put_back(driver: NodeDriver, node: NodeTls, previous: Pair | None) -> str:
    """What undoing a half-done install came to, as the rest of a one-line message."""
    if previous is None:
        return (f"there was no readable previous pair to put back: check {node.key_file} and {node.cert_file} "
                "before the node reloads or restarts")
    try:
        restore(driver, node, previous)
    except Exception as exc:  # noqa: BLE001 - reported, with what to do by hand
        log.debug("%s: putting the previous pair back failed", node.name, exc_info=True)
        return (f"PUTTING THE PREVIOUS PAIR BACK FAILED TOO ({_reason(exc)}): the key and certificate on disk may "
                f"not match; do not reload or restart {node.name} until {node.key_file}{PREVIOUS} and "
                f"{node.cert_file}{PREVIOUS} are copied back")
    return "the previous pair is back in place and matches"


def _read_or_none(driver: NodeDriver, path: str) -> bytes | None:
    try:
        return driver.read_file(path)
    except DriverError:
        return None


def _write(driver: NodeDriver, node: NodeTls, pair: Pair, *, suffix: str = "") -> None:
    # Key first: a listener reload only happens when we ask for it, after both are in place.
    # Owner and group are set before each rename, so the server never sees a file it cannot read.
    driver.write_file(node.key_file + suffix, pair.key_pem, mode=KEY_MODE, owner=node.owner, group=node.group)
    driver.write_file(node.cert_file + suffix, pair.chain_pem, mode=CERT_MODE, owner=node.owner, group=node.group)


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, VaultOpsError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]  # one line


def _hint(exc: BaseException) -> str:
    if isinstance(exc, VaultOpsError) and exc.hint:
        return exc.hint
    return "fix the node's file system (space, permissions, read-only mount), then run the renewal again"
