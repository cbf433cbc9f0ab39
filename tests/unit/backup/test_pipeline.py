from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vaultops.errors import BackupError
from vaultops.services.backup.lock import run_lock
from vaultops.services.backup.manifest import MANIFEST_SUFFIX, Manifest
from vaultops.services.backup.runner import _run
from vaultops.services.backup.settings import BackupSettings
from vaultops.services.backup.sources import OpenSnapshot, SnapshotInfo
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier
from vaultops.testing.snapshots import make_archive, raft_meta
from vaultops.testing.storage import FakeSink


class BytesSource:
    kind, extension = "raft", "snap"

    def __init__(self, data: bytes, *, fail_at: int | None = None, chunk: int = 1000) -> None:
        self.data, self.fail_at, self.chunk = data, fail_at, chunk

    def verifier(self, *, on_state=None):
        return ArchiveVerifier(ArchiveKind.RAFT)

    def _chunks(self):
        for i in range(0, len(self.data), self.chunk):
            if self.fail_at is not None and i >= self.fail_at:
                raise BackupError("connection reset by peer", hint="test")
            yield self.data[i:i + self.chunk]

    @contextlib.contextmanager
    def open(self):
        yield OpenSnapshot(SnapshotInfo(source_node="n1", cluster_id="cid", server_version="2.7.2"), self._chunks())

    def restore(self, body, *, force):
        raise NotImplementedError


SETTINGS = BackupSettings(cluster="c", source="raft", sinks=())
_RNG = random.Random(7)
GOOD = make_archive(entries=[(f"logical/k{i}", _RNG.randbytes(3000)) for i in range(100)],
                    meta=raft_meta(index=900, term=7))


def events():
    seen: list[tuple[str, dict]] = []
    return seen, lambda event, **kw: seen.append((event, kw))


def test_verified_stream_is_published_everywhere_with_manifest() -> None:
    sinks = [FakeSink("a"), FakeSink("b")]
    seen, emit = events()
    result = _run(SETTINGS, BytesSource(GOOD), sinks, emit=emit)
    assert result.ok and result.size == len(GOOD)
    for sink in sinks:
        assert sink.get_bytes(result.name) == GOOD
        m = Manifest.from_json(sink.get_bytes(result.name + MANIFEST_SUFFIX), where="t")
        assert (m.raft_index, m.raft_term, m.cluster_id, m.source_node) == (900, 7, "cid", "n1")
        assert m.sha256 == result.manifest.sha256 and m.size == len(GOOD)
    assert [e for e, _ in seen][-1] == "run.done"


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "member"])
def test_bad_snapshot_publishes_nothing(damage: str) -> None:
    data = {"flip": GOOD[:500] + bytes([GOOD[500] ^ 0x10]) + GOOD[501:], "truncate": GOOD[:-100],
            "empty": b"", "member": make_archive(extra_members=[("x", b"1")])}[damage]
    sinks = [FakeSink("a"), FakeSink("b")]
    result = _run(SETTINGS, BytesSource(data), sinks, emit=lambda *a, **k: None)
    assert not result.ok and not result.verified
    for sink in sinks:
        assert sink.objects == {}
        assert all(u.aborted and not u.committed for u in sink.uploads)


def test_source_breaking_off_aborts_everything() -> None:
    sinks = [FakeSink("a")]
    result = _run(SETTINGS, BytesSource(GOOD, fail_at=5000), sinks, emit=lambda *a, **k: None)
    assert not result.ok and "connection reset" in (result.error or "")
    assert sinks[0].objects == {} and sinks[0].uploads[0].aborted


def test_one_failing_sink_does_not_stop_the_others() -> None:
    good, bad = FakeSink("good"), FakeSink("bad", fail_after=10_000)
    result = _run(SETTINGS, BytesSource(GOOD), [bad, good], emit=lambda *a, **k: None)
    assert not result.ok and result.verified
    assert result.sinks["good"] == "ok" and "injected failure" in result.sinks["bad"]
    assert good.get_bytes(result.name) == GOOD
    assert bad.objects == {} and bad.uploads[0].aborted


def test_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    lock = tmp_path / "l"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys,time; from pathlib import Path; from vaultops.services.backup.lock import run_lock\n"
        f"with run_lock(Path({str(lock)!r})):\n    print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BackupError, match=f"pid {holder.pid}"):
            with run_lock(lock):
                pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with run_lock(lock, wait=5):  # released by the kernel when the holder died
        pass


def test_metrics_keep_last_success_on_failure(tmp_path: Path) -> None:
    from vaultops.services.backup import metrics
    path = tmp_path / "b.prom"
    metrics.write(path, metrics.RunMetrics("c", 1000.0, True, 10, 1.0, True))
    metrics.write(path, metrics.RunMetrics("c", 2000.0, False, 0, 1.0, False))
    text = path.read_text()
    assert 'vaultops_backup_last_success_timestamp_seconds{cluster="c"} 1000.0' in text
    assert 'vaultops_backup_last_run_success{cluster="c"} 0' in text
    assert time.time() > 0


@pytest.mark.parametrize("when", ["mid-stream", "after the last chunk"])
def test_a_stop_whose_keyboardinterrupt_was_swallowed_still_publishes_nothing(when: str) -> None:
    """SIGTERM's KeyboardInterrupt is lost when it lands in a weakref callback ("Exception ignored");
    the recorded request stops the run at the next chunk, and never lets a verified stream commit."""
    from vaultops import interrupt

    class StopAsked(BytesSource):
        def _chunks(self):  # type: ignore[no-untyped-def]
            chunks = list(super()._chunks())
            for i, chunk in enumerate(chunks):
                if (when == "mid-stream" and i == 3) or (when != "mid-stream" and i == len(chunks) - 1):
                    interrupt.request()      # as the handler does, its raise swallowed
                yield chunk

    sinks = [FakeSink("a"), FakeSink("b")]
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(SETTINGS, StopAsked(GOOD), sinks, emit=lambda *a, **k: None)
    finally:
        interrupt.clear()
    for sink in sinks:
        assert sink.objects == {} and all(u.aborted and not u.committed for u in sink.uploads)
    assert _run(SETTINGS, BytesSource(GOOD), [FakeSink("c")], emit=lambda *a, **k: None).ok   # cleared: runs again
