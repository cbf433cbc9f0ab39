"""The age implementation against the C2SP/CCTV test vectors (testkit/README.md).

Every vector is decrypted (in 1-byte, odd-sized and whole-file feeds: a streaming parser must
not depend on where chunks end); the outcome must be the one the vector expects, and the
plaintext released before any failure must hash to the vector's `payload`. Success vectors
are also re-encrypted with their file key and nonce and must round-trip byte for byte.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import pytest

from vaultops.crypto import age
from vaultops.crypto.agekeys import parse_identities
from vaultops.crypto.stanza import AgeError, HeaderError, HeaderMacError, NoIdentityMatch, PayloadError

KIT = Path(__file__).parent / "testkit"
VECTORS = sorted(p for p in KIT.iterdir() if p.suffix != ".md")
OUTCOME = {"success": None, "header failure": HeaderError, "no match": NoIdentityMatch,
           "HMAC failure": HeaderMacError, "payload failure": PayloadError}


def load(path: Path) -> tuple[dict[str, list[str]], bytes]:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    meta: dict[str, list[str]] = {}
    for line in head.decode().splitlines():
        key, _, value = line.partition(": ")
        meta.setdefault(key, []).append(value)
    if meta.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return meta, body


def run(body: bytes, identities: list, step: int | None) -> tuple[bytes, Exception | None]:
    dec = age.Decryptor(identities)
    out = bytearray()
    try:
        pieces = [body] if step is None else [body[i:i + step] for i in range(0, len(body), step)]
        for piece in pieces:
            out += dec.update(piece)
        out += dec.finish()
    except AgeError as exc:
        return bytes(out), exc
    return bytes(out), None


def test_the_vectors_are_there():
    assert len(VECTORS) >= 60


@pytest.mark.parametrize("step", [None, 1, 7919], ids=["whole", "bytewise", "odd"])
@pytest.mark.parametrize("path", VECTORS, ids=[p.name for p in VECTORS])
def test_vector(path: Path, step: int | None):
    meta, body = load(path)
    if step == 1 and len(body) > 200_000:
        step = 4093  # the 257-chunk vectors byte by byte take minutes
    identities = [i for text in meta.get("identity", []) for i in parse_identities(text.encode())]
    plain, error = run(body, identities, step)
    expected = OUTCOME[meta["expect"][0]]
    if expected is None:
        assert error is None, f"{path.name}: {error!r}"
    else:
        assert type(error) is expected, f"{path.name}: expected {expected.__name__}, got {error!r}"
    if "payload" in meta:
        assert hashlib.sha256(plain).hexdigest() == meta["payload"][0]


@pytest.mark.parametrize("path", [p for p in VECTORS if load(p)[0]["expect"] == ["success"]],
                         ids=lambda p: p.name)
def test_success_vectors_reencrypt_identically(path: Path):
    """Header encoding and STREAM encryption round-trip: same file key, stanzas and nonce -> same bytes."""
    meta, body = load(path)
    file_key = bytes.fromhex(meta["file key"][0])
    header = age.read_header(body)
    assert age.encode_header(header.stanzas, file_key) == body[:header.size]
    nonce = body[header.size:header.size + age.NONCE]
    plain, _ = run(body, [i for t in meta.get("identity", []) for i in parse_identities(t.encode())], None)
    queue = list(header.stanzas)
    enc = age.Encryptor([_Fixed(queue) for _ in queue], file_key=file_key, nonce=nonce)
    assert enc.update(plain) + enc.finish() == body


class _Fixed:
    """A 'recipient' that writes the vector's own stanzas (they wrap the vector's file key)."""

    type, text, fingerprint = "fixed", "fixed", "fixed"

    def __init__(self, queue):
        self.stanzas = queue

    def wrap(self, file_key):
        return self.stanzas.pop(0)
