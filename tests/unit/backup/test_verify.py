from __future__ import annotations

import gzip

import pytest

from vaultops.errors import VerificationError
from vaultops.services.backup.inspect import StateStats
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier, verify_chunks
from vaultops.testing.snapshots import make_archive, raft_meta, tar_gz


def run(data: bytes, kind: ArchiveKind = ArchiveKind.RAFT, chunk: int = 4096):
    return verify_chunks((data[i:i + chunk] for i in range(0, len(data), chunk)), ArchiveVerifier(kind))


@pytest.mark.parametrize("chunk", [1, 7, 512, 1 << 20])
def test_good_archive_passes_at_any_chunking(chunk: int) -> None:
    data = make_archive(entries=[("core/a", b"v" * 5000), ("logical/x/y", b"w" * 70000)],
                        meta=raft_meta(index=77, term=5))
    report = run(data, chunk=chunk)
    assert report.meta["Index"] == 77 and report.meta["Term"] == 5
    assert set(report.members) == {"meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"}
    assert report.size == len(data)


def test_no_flipped_byte_lets_damaged_content_through() -> None:
    data = make_archive(entries=[("core/a", b"v" * 300)])
    original = gzip.decompress(data)
    rejected = 0
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        try:
            run(bytes(bad), chunk=97)
        except VerificationError:
            rejected += 1
        else:
            # Only flips that leave the content intact may pass: gzip header fields (mtime, OS)
            # or an unused code length in a dynamic Huffman header.
            assert gzip.decompress(bytes(bad)) == original, pos
    assert rejected >= len(data) - 12


@pytest.mark.parametrize("cut", [1, 10, 100, 0.5, -1, -8])
def test_truncated_archive_is_rejected(cut: float) -> None:
    data = make_archive(entries=[("core/a", b"v" * 3000)])
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut > 0 else len(data) + cut)
    with pytest.raises(VerificationError, match="truncated|corrupt|lacks"):
        run(data[:n])


def test_empty_archive_is_rejected() -> None:
    with pytest.raises(VerificationError, match="empty"):
        run(b"")


def test_extra_member_is_rejected() -> None:
    data = make_archive(extra_members=[("evil.sh", b"#!/bin/sh\n")])
    with pytest.raises(VerificationError, match="unexpected member 'evil.sh'"):
        run(data)


def test_missing_member_is_rejected() -> None:
    with pytest.raises(VerificationError, match="lacks SHA256SUMS.sealed"):
        run(make_archive(omit=["SHA256SUMS.sealed"]))


def test_duplicate_member_is_rejected() -> None:
    with pytest.raises(VerificationError, match="twice"):
        run(make_archive(extra_members=[("meta.json", b"{}")]))


def test_sum_mismatch_is_rejected() -> None:
    sums = ("0" * 64 + "  meta.json\n" + "1" * 64 + "  state.bin\n").encode()
    with pytest.raises(VerificationError, match="does not match SHA256SUMS"):
        run(make_archive(sums_override=sums))


def test_empty_sealed_sums_rejected_for_raft() -> None:
    with pytest.raises(VerificationError, match="SHA256SUMS.sealed is empty"):
        run(make_archive(sealed=b""))


def test_consul_archive_has_no_sealed_sums() -> None:
    assert run(make_archive(kind="consul"), ArchiveKind.CONSUL).members["state.bin"] > 0
    with pytest.raises(VerificationError, match="unexpected member 'SHA256SUMS.sealed'"):
        run(make_archive(kind="raft"), ArchiveKind.CONSUL)


def test_trailing_data_after_gzip_is_rejected() -> None:
    with pytest.raises(VerificationError, match="after the end of the gzip"):
        run(make_archive() + b"garbage")


def test_not_gzip_is_rejected() -> None:
    with pytest.raises(VerificationError, match="corrupted gzip"):
        run(b"PK\x03\x04 this is a zip file" * 10)


def test_plain_tar_without_end_marker_rejected() -> None:
    data = gzip.decompress(make_archive())
    cut = data.rstrip(b"\0")
    cut += b"\0" * ((-len(cut)) % 512)
    with pytest.raises(VerificationError, match="end-of-archive"):
        run(gzip.compress(cut))


def test_non_regular_member_rejected() -> None:
    import io
    import tarfile
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("meta.json")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(VerificationError, match="entry type"):
        run(gzip.compress(raw.getvalue()))


def test_inspect_counts_prefixes() -> None:
    entries = [("core/a", b"1" * 10), ("core/b", b"2" * 20), ("logical/u1/k", b"3" * 30), ("sys/t", b"")]
    stats = StateStats(depth=1)
    verify_chunks([make_archive(entries=entries)], ArchiveVerifier(ArchiveKind.RAFT, on_state=stats.feed))
    stats.finish()
    assert stats.table() == [{"prefix": "core/", "entries": 2, "bytes": 30},
                             {"prefix": "logical/", "entries": 1, "bytes": 30},
                             {"prefix": "sys/", "entries": 1, "bytes": 0}]
    deeper = StateStats(depth=2)
    verify_chunks([make_archive(entries=entries)], ArchiveVerifier(ArchiveKind.RAFT, on_state=deeper.feed))
    assert {r["prefix"] for r in deeper.table()} == {"core/a", "core/b", "logical/u1/", "sys/t"}


def test_pax_sized_member_accepted() -> None:
    import io
    import tarfile
    good = gzip.decompress(make_archive())
    members = []
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        for m in tar:
            members.append((m, tar.extractfile(m).read()))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m, data in members:
            m.pax_headers = {"comment": "go writes pax for big sizes"}
            tar.addfile(m, io.BytesIO(data))
    assert run(gzip.compress(raw.getvalue())).members["state.bin"] == members[1][0].size


def test_tar_member_is_not_first_block_of_zeroes() -> None:
    with pytest.raises(VerificationError):
        run(tar_gz([]))
