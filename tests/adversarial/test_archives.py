"""Hostile archives: every damaged or crafted snapshot is refused in one line, in bounded time.

The verifier runs in a helper thread joined with a time limit, so a hang fails the test instead
of stalling the suite. The fuzz tests mutate a real-format snapshot (vaultops.testing.snapshots)
at the tar layer and recompress it, so the mutation reaches the tar reader past the gzip CRC;
an accepted mutation must be one Python's tarfile reads back as the same members.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaultops.cli import main
from vaultops.errors import VerificationError
from vaultops.services.backup import verify
from vaultops.services.backup.catalog import verify_backup
from vaultops.services.backup.manifest import CHECK_FAILED, CHECK_OK, MANIFEST_SUFFIX, Manifest
from vaultops.services.backup.verify import (ArchiveKind, ArchiveVerifier, ReadIncomplete, parse_sha256sums,
                                             verify_chunks)
from vaultops.testing.snapshots import make_archive, raft_meta
from vaultops.testing.storage import FakeSink

LIMIT = 10.0
SEALED = bytes(range(185))
BASE = make_archive(entries=[("core/a", b"v" * 700), ("logical/x/y", b"w" * 1300), ("sys/t", b"")],
                   meta=raft_meta(index=9, term=2), sealed=SEALED)
TAR = gzip.decompress(BASE)
NAME = "unit-20250101T000000.000Z.snap"


# -- helpers ---------------------------------------------------------------------------------

def bounded_call(fn: Any, *args: Any, limit: float = LIMIT) -> tuple[Any, BaseException | None]:
    """fn(*args) in a daemon thread; fails the test if it is still running after *limit*."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            box["error"] = exc

    t0 = time.monotonic()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still running after {limit}s: a hang"
    box["seconds"] = time.monotonic() - t0
    return box.get("value"), box.get("error")


def chunked(data: bytes, size: int = 4096) -> Iterator[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


def refused(chunks: Iterable[bytes] | bytes, kind: ArchiveKind = ArchiveKind.RAFT) -> VerificationError:
    """The verifier's error for *chunks*; fails unless it is a one-line VerificationError."""
    source = chunked(chunks) if isinstance(chunks, bytes) else chunks
    report, error = bounded_call(lambda: verify_chunks(source, ArchiveVerifier(kind)))
    assert report is None, "a damaged archive was accepted"
    assert isinstance(error, VerificationError), f"not a VerificationError: {error!r}"
    assert "\n" not in str(error)
    return error


def block(name: bytes = b"meta.json", *, size: int | bytes = 2, kind: bytes = b"0",
          magic: bytes = b"ustar\x0000", mode: bytes = b"0000600\x00", chksum: bytes | None = None,
          mtime: bytes = b"14560331200\x00", prefix: bytes = b"") -> bytes:
    """One ustar header block; the checksum is correct unless given."""
    b = bytearray(512)
    b[0:len(name)] = name
    b[100:108] = mode
    b[108:116] = b[116:124] = b"0000000\x00"
    b[124:136] = size if isinstance(size, bytes) else b"%011o\x00" % size
    b[136:148] = mtime
    b[156:157] = kind
    b[257:265] = magic
    b[329:337] = b[337:345] = b"0000000\x00"
    b[345:345 + len(prefix)] = prefix
    b[148:156] = b" " * 8
    b[148:156] = chksum if chksum is not None else b"%06o\x00 " % sum(b)
    return bytes(b)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def pax(*records: bytes | tuple[str, str], size: int | None = None) -> bytes:
    body = b"".join(r if isinstance(r, bytes) else record(*r) for r in records)
    return block(b"PaxHeaders.0/meta.json", kind=b"x", size=len(body) if size is None else size) + padded(body)


def record(key: str, value: str) -> bytes:
    text = f" {key}={value}\n".encode()
    n = len(text) + 1
    while len(str(n)) + len(text) != n:
        n += 1
    return str(n).encode() + text


END = bytes(1024)


def gz(*parts: bytes) -> bytes:
    return gzip.compress(b"".join(parts), compresslevel=1, mtime=0)


# -- hostile headers ---------------------------------------------------------------------------

PAX_CASES = {
    "negative size": pax(("size", "-100")),
    "non-numeric size": pax(("size", "abc")),
    "exponent size": pax(("size", "1e3")),
    "signed size": pax(("size", "+5")),
    "spaced size": pax(("size", " 12")),
    "empty size": pax(("size", "")),
    "hex size": pax(("size", "0x10")),
    "huge size": pax(("size", "9" * 30)),
    "size beyond 1 TiB": pax(("size", str(1 << 41))),
    "record length too long": pax(b"99 path=meta.json\n"),
    "record length zero": pax(b"0 path=x\n"),
    "record length negative": pax(b"-9 path=x\n"),
    "record length not a number": pax(b"ab path=x\n"),
    "record without newline": pax(b"11 path=abc"),
    "record without =": pax(record("pathmeta.json", "")[:-1].replace(b"=", b"") + b"\n"),
    "duplicate key": pax(("path", "meta.json"), ("path", "state.bin")),
    "value not UTF-8": pax(b"13 path=\xff\xfe\xfd\n"),
    "linkpath": pax(("linkpath", "/etc/passwd")),
    "sparse": pax(("GNU.sparse.size", "10")),
    "unknown key": pax(("evil", "1")),
    "empty path": pax(("path", "")),
    "PAX header of 1 GiB": pax(("path", "meta.json"), size=1 << 30),
    "empty PAX header": block(b"PaxHeaders.0/x", kind=b"x", size=0),
}


@pytest.mark.parametrize("case", list(PAX_CASES))
def test_hostile_pax_headers_are_refused(case: str) -> None:
    refused(gz(PAX_CASES[case], block(), padded(b"{}"), END))


def test_two_pax_headers_in_a_row_and_a_dangling_one() -> None:
    refused(gz(pax(("path", "meta.json")), pax(("path", "meta.json")), block(), padded(b"{}"), END))
    refused(gz(pax(("path", "meta.json")), END))


SIZE_FIELDS = {
    "negative base-256": b"\xff" * 12,
    "huge base-256": b"\x80" + b"\xff" * 11,
    "letters": b"abc\x00" + bytes(8),
    "minus sign": b"-0000000100\x00",
    "digits 8 and 9": b"00000000089\x00",
    "embedded space": b"0000 000010\x00",
    "garbage after NUL": b"00000000010\x00"[:-1] + b"x",
    "beyond 1 TiB": b"77777777777\x00",
}


@pytest.mark.parametrize("case", list(SIZE_FIELDS))
def test_hostile_size_fields_are_refused(case: str) -> None:
    refused(gz(block(size=SIZE_FIELDS[case]), padded(b"{}"), END))


@pytest.mark.parametrize("field", ["chksum", "mode", "mtime"])
@pytest.mark.parametrize("value", [b"zzzzzzz\x00", b"-000001\x00", b"\xff" * 8])
def test_hostile_numeric_fields_are_refused(field: str, value: bytes) -> None:
    kwargs: dict[str, Any] = {field: value if field != "mtime" else value + b"\x00" * 4}
    refused(gz(block(**kwargs), padded(b"{}"), END))


@pytest.mark.parametrize("kind", [bytes([k]) for k in range(256) if bytes([k]) not in (b"0", b"\x00", b"x")])
def test_every_other_member_type_is_refused(kind: bytes) -> None:
    """Links, directories, devices, FIFOs, GNU long names, global and sparse headers, garbage."""
    refused(gz(block(kind=kind, size=0), END))


@pytest.mark.parametrize("member", ["symlink", "hardlink", "directory", "char device", "fifo"])
def test_non_regular_members_from_tarfile_are_refused(member: str) -> None:
    types = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "directory": tarfile.DIRTYPE,
             "char device": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("meta.json")
        info.type, info.linkname = types[member], "/etc/passwd"
        tar.addfile(info)
    assert "entry type" in refused(gzip.compress(raw.getvalue())).message


@pytest.mark.parametrize("case", ["bad magic", "v7 without magic", "name not UTF-8", "garbage after name",
                                  "padding not zero", "no name"])
def test_other_malformed_headers_are_refused(case: str) -> None:
    parts = {
        "bad magic": [block(magic=b"ustaR\x0000"), padded(b"{}"), END],
        "v7 without magic": [block(magic=bytes(8)), padded(b"{}"), END],
        "name not UTF-8": [block(name=b"meta\xff.json"), padded(b"{}"), END],
        "garbage after name": [block(name=b"meta.json\x00evil"), padded(b"{}"), END],
        "padding not zero": [block(), b"{}" + b"\x01" * 510, END],
        "no name": [block(name=b""), padded(b"{}"), END],
    }[case]
    refused(gz(*parts))


def test_checksum_mismatch_is_refused() -> None:
    good = block()
    assert "checksum" in refused(gz(good[:148] + b"0000001\x00" + good[156:], padded(b"{}"), END)).message


# -- endless and explosive streams --------------------------------------------------------------

def endless_gzip_of_zeros() -> Iterator[bytes]:
    z = zlib.compressobj(wbits=31)
    zeros = bytes(1 << 20)
    while True:
        yield z.compress(zeros) + z.flush(zlib.Z_SYNC_FLUSH)


def endless_empty_deflate_blocks() -> Iterator[bytes]:
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    while True:
        yield b"\x00\x00\x00\xff\xff" * 20000  # stored blocks of length 0: input without output


def bomb(declared: int = 1 << 30) -> Iterator[bytes]:
    z = zlib.compressobj(wbits=31)
    yield z.compress(block(b"state.bin", size=declared))
    zeros = bytes(1 << 20)
    for _ in range(declared >> 20):
        yield z.compress(zeros) + z.flush(zlib.Z_SYNC_FLUSH)
    yield z.flush()


@pytest.mark.parametrize(("stream", "words"), [
    (endless_gzip_of_zeros, "padding after the end-of-archive"),
    (endless_empty_deflate_blocks, "weighs far more"),
    (bomb, "inflates more than"),
])
def test_endless_and_explosive_streams_are_cut_off(stream: Any, words: str) -> None:
    t0 = time.monotonic()
    assert words in refused(stream()).message
    assert time.monotonic() - t0 < 5


def test_zeros_after_a_good_archive_are_bounded() -> None:
    z = zlib.compressobj(wbits=31)

    def chunks() -> Iterator[bytes]:
        yield z.compress(TAR)
        while True:
            yield z.compress(bytes(1 << 20)) + z.flush(zlib.Z_SYNC_FLUSH)
    refused(chunks())
    assert verify_chunks(chunked(gz(TAR, bytes(10240))), ArchiveVerifier(ArchiveKind.RAFT)).size > 0


# -- budgets of reads from a sink ---------------------------------------------------------------

class SlowSink(FakeSink):
    """read_chunks yields the first bytes, then *mode*: 'stall' blocks, 'drip' sends a byte per 50 ms,
    'grow' sends more than the object holds."""

    def __init__(self, data: bytes, mode: str) -> None:
        super().__init__("slow")
        self.mode, self.release = mode, threading.Event()
        manifest = Manifest(name=NAME, kind="raft", cluster_name="c", cluster_id="i", server_version="2.7.2",
                            source_node="n", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                            started_at="2025-01-01T00:00:00.000+00:00", finished_at="2025-01-01T00:00:01.000+00:00")
        self.objects[NAME] = (data, self.clock())
        self.objects[NAME + MANIFEST_SUFFIX] = (manifest.to_json(), self.clock())

    def read_chunks(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        data = self.objects[key][0]
        yield data[:100]
        if self.mode == "stall":
            self.release.wait(60)
        elif self.mode == "drip":
            for i in range(100, len(data)):
                if self.release.wait(0.05):
                    return
                yield data[i:i + 1]
        else:
            yield data[100:]
            while not self.release.is_set():
                yield b"\0" * 4096


@pytest.fixture
def fast_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(verify, "BASE_SECONDS", 1.5)
    monkeypatch.setattr(verify, "MIN_RATE", 1 << 30)


@pytest.mark.parametrize(("mode", "words"), [("stall", "no data for 0.5s"), ("drip", "time budget"),
                                             ("grow", "more than the")])
def test_a_stalled_slow_or_growing_object_is_cut_off(fast_budget: None, mode: str, words: str) -> None:
    sink = SlowSink(BASE, mode)
    try:
        result, error = bounded_call(verify_backup, sink, NAME, limit=6)
    finally:
        sink.release.set()
    if mode == "grow":  # a verdict: the stored copy is not what was published
        assert error is None and not result.ok and words in result.detail
        assert NAME + CHECK_FAILED in sink.objects
    else:  # no verdict: the backup may be fine, the sink was not
        assert isinstance(error, ReadIncomplete) and words in str(error) and "\n" not in str(error)
        assert NAME + CHECK_FAILED not in sink.objects and NAME + CHECK_OK not in sink.objects


# -- through the CLI: verify, inspect, restore --------------------------------------------------

@pytest.fixture
def hostile_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A vaultops.yaml with one local sink; put(name, archive, kind) stores an archive with a manifest."""
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))
    out = tmp_path / "sink"
    out.mkdir()
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text(yaml.safe_dump({
        "cluster": {"name": "unit", "storage": "consul"},
        "nodes": [{"name": "n1", "address": "http://127.0.0.1:9"}],
        "journal": {"path": str(tmp_path / "journal.jsonl")},
        "backup": {"sinks": [{"type": "local", "path": str(out)}], "consul": {"address": "http://127.0.0.1:9"}}}))

    def put(data: bytes, kind: str = "raft") -> str:
        manifest = Manifest(name=NAME, kind=kind, cluster_name="unit", cluster_id="i", server_version="2.7.2",
                            source_node="n", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                            started_at="2025-01-01T00:00:00.000+00:00", finished_at="2025-01-01T00:00:01.000+00:00")
        (out / NAME).write_bytes(data)
        (out / (NAME + MANIFEST_SUFFIX)).write_bytes(manifest.to_json())
        return str(cfg)
    put.out = out  # type: ignore[attr-defined]
    return put


HOSTILE = {
    "pax size -100": gz(PAX_CASES["negative size"], block(), padded(b"{}"), END),
    "pax size abc": gz(PAX_CASES["non-numeric size"], block(), padded(b"{}"), END),
    "symlink": gz(block(kind=b"2", size=0), END),
    "negative base-256 size": gz(block(size=SIZE_FIELDS["negative base-256"]), padded(b"{}"), END),
}


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("command", ["verify", "inspect", "restore"])
def test_cli_refuses_hostile_stored_archives_in_one_line(hostile_sink: Any, capsys: pytest.CaptureFixture[str],
                                                        case: str, command: str) -> None:
    kind = "consul" if command == "restore" else "raft"  # a Consul restore needs no Vault to plan
    cfg = hostile_sink(HOSTILE[case], kind)
    argv = {"verify": ["backup", "verify", NAME], "inspect": ["backup", "inspect", NAME],
            "restore": ["backup", "restore", NAME, "--yes"]}[command]
    code, error = bounded_call(main, ["--config", cfg, *argv])
    assert error is None, f"raised {error!r}"
    assert code == 6
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    failure = [line for line in text.splitlines() if "damaged" in line]
    assert len(failure) == 1, text


@pytest.mark.parametrize("case", list(HOSTILE))
def test_cli_verify_file_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             hostile_sink: Any, case: str) -> None:
    cfg = hostile_sink(BASE)
    path = tmp_path / "x.snap"
    path.write_bytes(HOSTILE[case])
    code, error = bounded_call(main, ["--config", cfg, "backup", "verify", "--file", str(path)])
    assert error is None and code == 6
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "FAILED" in out


def test_cli_verify_of_a_stalled_file_gives_up(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               hostile_sink: Any, fast_budget: None) -> None:
    """A FIFO nobody writes to: even opening it blocks; the read is cut off after the stall time."""
    cfg = hostile_sink(BASE)
    fifo = hostile_sink.out / "stalled.snap"
    os.mkfifo(fifo)
    try:
        code, error = bounded_call(main, ["--config", cfg, "backup", "verify", "--file", str(fifo)], limit=6)
        assert error is None and code == 6
        assert "no data for 0.5s" in capsys.readouterr().out
    finally:
        fd = os.open(fifo, os.O_WRONLY)  # releases the reader thread still blocked in open()
        os.close(fd)


# -- fuzz -------------------------------------------------------------------------------------

def members(tar: bytes) -> dict[str, bytes] | None:
    """What Python's tarfile reads from *tar* (regular files only), or None."""
    try:
        out: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
            for m in tf:
                f = tf.extractfile(m)
                if not m.isfile() or f is None or m.name in out:
                    return None
                out[m.name] = f.read()
        return out
    except (tarfile.TarError, OSError, ValueError, UnicodeError, EOFError):
        return None


ORIGINAL = members(TAR)


def judge(tar: bytes) -> None:
    """Refused in one line, or accepted only if the members an independent reader sees are intact."""
    data = gz(tar)
    report, error = bounded_call(lambda: verify_chunks(chunked(data, 777), ArchiveVerifier(ArchiveKind.RAFT)))
    if error is not None:
        assert isinstance(error, VerificationError), f"{type(error).__name__}: {error}"
        assert "\n" not in str(error)
        return
    seen = members(tar)
    assert ORIGINAL is not None and seen is not None, "accepted what tarfile cannot read"
    assert set(seen) == set(ORIGINAL)
    assert seen["meta.json"] == ORIGINAL["meta.json"] and seen["state.bin"] == ORIGINAL["state.bin"]
    assert parse_sha256sums(seen["SHA256SUMS"]) == parse_sha256sums(ORIGINAL["SHA256SUMS"])
    assert report.members["state.bin"] == len(ORIGINAL["state.bin"])


HEADERS = [i for i in range(0, len(TAR), 512) if TAR[i + 257:i + 262] == b"ustar"]
FIELDS = {"name": (0, 100), "mode": (100, 108), "uid": (108, 116), "size": (124, 136), "mtime": (136, 148),
          "chksum": (148, 156), "type": (156, 157), "magic": (257, 265), "prefix": (345, 500)}
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def rechecksum(tar: bytearray, at: int) -> None:
    tar[at + 148:at + 156] = b" " * 8
    tar[at + 148:at + 156] = b"%06o\x00 " % sum(tar[at:at + 512])


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(TAR) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_byte_changes(changes: list[tuple[int, int]]) -> None:
    tar = bytearray(TAR)
    for pos, value in changes:
        tar[pos] = value
    judge(bytes(tar))


@FUZZ
@given(st.sampled_from(HEADERS), st.sampled_from(list(FIELDS)),
       st.one_of(st.binary(max_size=12), st.from_regex(rb"\A[ 0-9+\-x\x00]{1,12}\Z")), st.booleans())
def test_fuzz_header_fields_with_valid_checksums(at: int, field: str, value: bytes, fix_sum: bool) -> None:
    """A field rewritten and the checksum made right again: the strict parsing must hold alone."""
    start, end = FIELDS[field]
    tar = bytearray(TAR)
    tar[at + start:at + end] = (value + bytes(end - start))[:end - start]
    if fix_sum:
        rechecksum(tar, at)
    judge(bytes(tar))


@FUZZ
@given(st.sampled_from(HEADERS),
       st.lists(st.one_of(st.tuples(st.sampled_from(["path", "size", "mtime", "uid", "linkpath", "comment",
                                                     "GNU.sparse.map", "SCHILY.x", "x"]),
                                    st.text(max_size=20)),
                          st.binary(max_size=30)), min_size=1, max_size=4))
def test_fuzz_pax_records(at: int, records: list[Any]) -> None:
    def enc(r: Any) -> bytes:
        return r if isinstance(r, bytes) else record(r[0], r[1].replace("\x00", ""))
    tar = TAR[:at] + pax(*[enc(r) for r in records]) + TAR[at:]
    judge(tar)


@FUZZ
@given(st.integers(0, len(TAR)), st.integers(0, 2048), st.binary(max_size=600))
def test_fuzz_cut_and_splice(at: int, cut: int, insert: bytes) -> None:
    judge(TAR[:at] + insert + TAR[at + cut:])


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_fuzz_gzip_layer(changes: list[tuple[int, int]]) -> None:
    data = bytearray(BASE)
    for pos, xor in changes:
        data[pos] ^= xor
    report, error = bounded_call(lambda: verify_chunks(chunked(bytes(data), 333), ArchiveVerifier(ArchiveKind.RAFT)))
    if error is not None:
        assert isinstance(error, VerificationError) and "\n" not in str(error)
    else:  # only bytes zlib ignores (gzip header mtime/OS, unused Huffman codes) may change
        assert gzip.decompress(bytes(data)) == TAR
