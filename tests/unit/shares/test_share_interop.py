"""Interop: vaultops mnemonics decode with the reference `shamir recover` (shamir-mnemonic).

The mnemonic reaches the child through its terminal, never its argv.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pexpect
import pytest
from shares_helpers import make_raw

from vaultops.services.ceremony.shares import VERSION_BYTE, encode

SHAMIR = Path(sys.executable).parent / "shamir"
SECRET_LINE = re.compile(rb"Your master secret is: ([0-9a-f]+)")


def recover(mnemonic: str, passphrase: str | None = None) -> bytes:
    args = ["recover", "-p"] if passphrase is not None else ["recover"]
    child = pexpect.spawn(str(SHAMIR), args, timeout=30, env={"PATH": "/usr/bin:/bin",
                                                              "LANG": "C.UTF-8"})
    try:
        child.expect("Enter a recovery share")
        child.sendline(mnemonic)
        if passphrase is not None:
            child.expect("Enter passphrase")
            child.sendline(passphrase)
            child.expect("Repeat for confirmation")
            child.sendline(passphrase)
        child.expect(SECRET_LINE)
        secret = bytes.fromhex(child.match.group(1).decode())
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    return secret


@pytest.mark.parametrize("index", [1, 200])
def test_shamir_recover_reads_a_vaultops_mnemonic(index: int) -> None:
    raw = make_raw(index)
    assert recover(encode(raw, "mnemonic")) == bytes([VERSION_BYTE]) + raw


def test_shamir_recover_with_passphrase() -> None:
    raw = make_raw()
    mnemonic = encode(raw, "mnemonic", b"open sesame")
    assert recover(mnemonic, "open sesame") == bytes([VERSION_BYTE]) + raw
