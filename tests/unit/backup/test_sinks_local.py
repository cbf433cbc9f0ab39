from __future__ import annotations

import os
import stat

import pytest

from vaultops.storage.base import get_sink
from vaultops.storage.local import LocalSink
from vaultops.testing.storage import FakeSink, SinkContract


class TestLocalSink(SinkContract):
    @pytest.fixture
    def sink(self, tmp_path):
        return LocalSink(tmp_path / "backups")


class TestFakeSink(SinkContract):
    @pytest.fixture
    def sink(self):
        return FakeSink()


def test_local_files_are_private_and_temp_removed_on_abort(tmp_path) -> None:
    sink = get_sink({"type": "local", "path": str(tmp_path / "b")})
    up = sink.open_upload("x.snap")
    up.write(b"data")
    temps = [p for p in (tmp_path / "b").iterdir()]
    assert len(temps) == 1 and temps[0].name.startswith(".partial-")
    up.abort()
    assert list((tmp_path / "b").iterdir()) == []
    up = sink.open_upload("y.snap")
    up.write(b"data")
    up.commit()
    assert stat.S_IMODE(os.stat(tmp_path / "b" / "y.snap").st_mode) == 0o600


def test_unknown_sink_type(tmp_path) -> None:
    from vaultops.errors import ConfigError
    with pytest.raises(ConfigError, match="unknown sink type"):
        get_sink({"type": "ftp"})


def test_write_behind_hands_each_written_range_to_writeback_once(tmp_path, monkeypatch) -> None:
    from vaultops.storage import local

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(local, "_writeback_call", lambda: lambda fd, off, n, flags: calls.append((off, n)) or 0)
    block = os.urandom(3 << 20)
    up = LocalSink(tmp_path / "b").open_upload("x.snap")
    for _ in range(6):
        up.write(block)
    result = up.commit()
    assert calls == [(0, 9 << 20), (9 << 20, 9 << 20)]   # every WRITE_BEHIND bytes, contiguous, no overlap
    assert (tmp_path / "b" / "x.snap").read_bytes() == block * 6 and result.size == 18 << 20


def test_write_behind_refused_or_missing_leaves_the_work_to_the_commit(tmp_path, monkeypatch) -> None:
    from vaultops.storage import local

    for call in (None, lambda fd, off, n, flags: -1):
        monkeypatch.setattr(local, "_writeback_call", lambda call=call: call)
        up = LocalSink(tmp_path / "b").open_upload("y.snap")
        up.write(b"z" * (9 << 20))
        up.commit()
        assert (tmp_path / "b" / "y.snap").read_bytes() == b"z" * (9 << 20)


def test_write_behind_flush_failure_is_one_sink_error_and_removes_the_temp_file(tmp_path, monkeypatch) -> None:
    from vaultops.storage import local
    from vaultops.storage.base import SinkError

    monkeypatch.setattr(local, "_writeback_call", lambda: lambda fd, off, n, flags: 0)
    up = LocalSink(tmp_path / "b").open_upload("z.snap")

    def full() -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(up._fh, "flush", full)
    with pytest.raises(SinkError, match="No space left"):
        up.write(b"z" * (9 << 20))
    assert list((tmp_path / "b").iterdir()) == []
