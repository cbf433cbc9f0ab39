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
