"""A fake in-memory sink for unit tests, and the contract every real sink's tests reuse.

    class TestLocalSink(SinkContract):
        @pytest.fixture
        def sink(self, tmp_path): return LocalSink(tmp_path)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from vaultops.storage.base import CHUNK, CommitResult, ObjectInfo, Sink, SinkError, Upload, check_key


class FakeUpload:
    def __init__(self, sink: FakeSink, key: str) -> None:
        self._sink, self.key = sink, key
        self._parts: list[bytes] = []
        self.aborted = False
        self.committed = False

    def write(self, chunk: bytes) -> None:
        written = sum(map(len, self._parts)) + len(chunk)
        if self._sink.fail_after is not None and written > self._sink.fail_after:
            raise SinkError(f"{self._sink.name}: injected failure after {self._sink.fail_after} bytes",
                            hint="this is a test double")
        self._parts.append(chunk)

    def commit(self) -> CommitResult:
        data = b"".join(self._parts)
        self._sink.objects[self.key] = (data, self._sink.clock())
        self.committed = True
        return CommitResult(key=self.key, size=len(data), location=f"{self._sink.name}/{self.key}")

    def abort(self) -> None:
        self.aborted = True
        self._parts.clear()


class FakeSink:
    """Objects in a dict; `fail_after` makes uploads fail after that many bytes; `page_size` paginates."""

    def __init__(self, name: str = "fake", *, fail_after: int | None = None, page_size: int = 1000) -> None:
        self.name = name
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.fail_after = fail_after
        self.page_size = page_size
        self.uploads: list[FakeUpload] = []
        self.pages_served = 0
        self._lock = threading.Lock()
        self._t = datetime(2025, 1, 1, tzinfo=timezone.utc)

    def clock(self) -> datetime:
        with self._lock:
            self._t += timedelta(seconds=1)
            return self._t

    def open_upload(self, key: str) -> FakeUpload:
        up = FakeUpload(self, check_key(key))
        self.uploads.append(up)
        return up

    def put_bytes(self, key: str, data: bytes) -> None:
        self.objects[check_key(key)] = (data, self.clock())

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key][0]
        except KeyError:
            raise SinkError(f"{self.name}: {key} not found", hint="run 'vaultops backup list'") from None

    def read_chunks(self, key: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]:
        data = self.get_bytes(key)
        for i in range(0, len(data), chunk_size):
            yield data[i:i + chunk_size]

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        keys = sorted(k for k in self.objects if k.startswith(prefix))
        for start in range(0, len(keys), self.page_size):  # emulate pagination
            self.pages_served += 1
            for k in keys[start:start + self.page_size]:
                data, when = self.objects[k]
                yield ObjectInfo(k, len(data), when)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self.objects


class SinkContract:
    """Behaviour every sink must show. Subclasses provide a `sink` fixture."""

    @pytest.fixture
    def sink(self) -> Sink:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_is_a_sink(self, sink: Sink) -> None:
        assert isinstance(sink, Sink)
        up = sink.open_upload("probe")
        try:
            assert isinstance(up, Upload)
        finally:
            up.abort()

    def test_upload_visible_only_after_commit(self, sink: Sink) -> None:
        up = sink.open_upload("a/b.snap")
        for chunk in (b"x" * 1000, b"y" * 3000):
            up.write(chunk)
        assert not sink.exists("a/b.snap")
        assert [o.key for o in sink.list("a/")] == []
        res = up.commit()
        assert res.size == 4000
        assert sink.get_bytes("a/b.snap") == b"x" * 1000 + b"y" * 3000
        assert [(o.key, o.size) for o in sink.list("a/")] == [("a/b.snap", 4000)]

    def test_abort_leaves_nothing(self, sink: Sink) -> None:
        up = sink.open_upload("gone.snap")
        up.write(b"z" * 100)
        up.abort()
        assert not sink.exists("gone.snap")
        assert [o.key for o in sink.list("")] == []

    def test_read_chunks_streams_whole_object(self, sink: Sink) -> None:
        data = bytes(range(256)) * 40
        sink.put_bytes("c.bin", data)
        chunks = list(sink.read_chunks("c.bin", chunk_size=1000))
        assert b"".join(chunks) == data
        assert max(map(len, chunks)) <= 1000

    def test_missing_object_raises_sink_error(self, sink: Sink) -> None:
        with pytest.raises(SinkError):
            sink.get_bytes("nope")

    def test_delete_and_list_prefix(self, sink: Sink) -> None:
        for k in ("p-1", "p-2", "q-1"):
            sink.put_bytes(k, k.encode())
        assert sorted(o.key for o in sink.list("p-")) == ["p-1", "p-2"]
        sink.delete("p-1")
        sink.delete("p-1")  # idempotent
        assert sorted(o.key for o in sink.list("")) == ["p-2", "q-1"]

    def test_rejects_escaping_keys(self, sink: Sink) -> None:
        for bad in ("../x", "/abs", "a//b", ""):
            with pytest.raises(SinkError):
                sink.put_bytes(bad, b"x")
