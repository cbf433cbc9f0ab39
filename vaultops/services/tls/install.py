"""Put a key and chain on a node through its driver, keeping the previous pair for rollback."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vaultops.drivers.base import NodeDriver
from vaultops.errors import DriverError
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
    """Check the pair, save the current one beside it (.previous), write the new one. Returns the old pair."""
    check_pair(node.name, pair)
    previous = read_current(driver, node)
    if previous is not None:
        _write(driver, node, previous, suffix=PREVIOUS)
    try:
        _write(driver, node, pair)
    except DriverError:
        if previous is not None:
            _write(driver, node, previous)
        raise
    log.debug("%s: new certificate written to %s", node.name, node.cert_file)
    return previous


def restore(driver: NodeDriver, node: NodeTls, previous: Pair) -> None:
    _write(driver, node, previous)


def _write(driver: NodeDriver, node: NodeTls, pair: Pair, *, suffix: str = "") -> None:
    # Key first: a listener reload only happens when we ask for it, after both are in place.
    # Owner and group are set before each rename, so the server never sees a file it cannot read.
    driver.write_file(node.key_file + suffix, pair.key_pem, mode=KEY_MODE, owner=node.owner, group=node.group)
    driver.write_file(node.cert_file + suffix, pair.chain_pem, mode=CERT_MODE, owner=node.owner, group=node.group)
