"""S3 outages: a moto server behind a link that the test cuts (connections reset, new ones refused).

Asserted: an outage of a few seconds mid-upload no longer fails the run; a run that fails while
the link is down leaves no open multipart upload (its abort is retried until the link is back,
or recorded and aborted by the next run); stale uploads are aborted by runs and `backup prune`
and shown by `backup list`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.backup.backup_helpers import AWS_ENV, MotoServer
from vaultops.cli import main
from vaultops.errors import BackupError
from vaultops.services.backup import runner
from vaultops.services.backup.sources import OpenSnapshot, SnapshotInfo
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier
from vaultops.testing.netem import LinkProxy
from vaultops.testing.snapshots import make_archive

pytestmark = pytest.mark.integration
MIB = 1 << 20


class CuttableLink(LinkProxy):
    """A LinkProxy whose link can be cut: open connections are reset, new ones refused, until heal()."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._timers: list[threading.Timer] = []
        super().__init__(upstream)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
        self._listener.close()  # the accept thread ends; connecting is refused
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()    # RST, as a broken path would end up
        self._socks = []

    def heal(self) -> None:
        if self._closed.is_set():
            return
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, name="netem-accept", daemon=True).start()

    def cut_for(self, seconds: float) -> threading.Timer:
        self.cut()
        timer = threading.Timer(seconds, self.heal)
        self._timers.append(timer)
        timer.start()
        return timer

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
            timer.join()
        super().stop()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto-outage"))
    yield server
    server.stop()


@pytest.fixture
def link(moto: MotoServer) -> Iterator[CuttableLink]:
    proxy = CuttableLink(("127.0.0.1", moto.port))
    yield proxy
    proxy.stop()


ARCHIVE = make_archive(kind="consul", entries=[(f"logical/k{i}", os.urandom(256 << 10)) for i in range(48)])  # 12 MiB


class Scripted:
    """A snapshot source that does something to the link after *after* chunks of 1 MiB."""

    kind, extension = "consul", "snap"

    def __init__(self, *, after: int = 0, action: Any = None, fail: bool = False) -> None:
        self.after, self.action, self.fail = after, action, fail

    def verifier(self, *, on_state: Any = None) -> ArchiveVerifier:
        return ArchiveVerifier(ArchiveKind.CONSUL)

    def _chunks(self) -> Iterator[bytes]:
        for i in range(0, len(ARCHIVE), MIB):
            if i // MIB == self.after and self.action is not None:
                time.sleep(0.3)  # let the first part reach the wire
                self.action()
                if self.fail:
                    raise BackupError("the source broke off", hint="test")
            yield ARCHIVE[i:i + MIB]

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenSnapshot]:
        yield OpenSnapshot(SnapshotInfo(source_node="n1", cluster_id="cid"), self._chunks())

    def restore(self, body: Any, *, force: bool) -> str:
        raise NotImplementedError


class Env:
    def __init__(self, tmp_path: Path, moto: MotoServer, link: CuttableLink, monkeypatch: pytest.MonkeyPatch,
                 **sink: Any) -> None:
        for key, value in AWS_ENV.items():
            monkeypatch.setenv(key, value)
        self.moto, self.s3 = moto, moto.client()
        self.bucket = f"outage-{os.urandom(4).hex()}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.monkeypatch, self.tmp_path = monkeypatch, tmp_path
        self.cfg = tmp_path / "vaultops.yaml"
        self.cfg.write_text(yaml.safe_dump({
            "cluster": {"name": "unit", "storage": "consul"},
            "nodes": [{"name": "n1", "address": "http://127.0.0.1:9"}],
            "journal": {"path": str(tmp_path / "journal.jsonl")},
            "backup": {"sinks": [{"type": "s3", "bucket": self.bucket, "prefix": "vault", "region": "us-east-1",
                                  "endpoint_url": f"http://127.0.0.1:{link.port}", "part_size_mib": 5, **sink}],
                       "consul": {"address": "http://127.0.0.1:9"},
                       "state_file": str(tmp_path / "last-run.json"), "lock_file": str(tmp_path / "lock")}}))

    def run(self, source: Scripted) -> int:
        self.monkeypatch.setattr(runner, "make_source", lambda *a, **kw: source)
        return main(["--config", str(self.cfg), "backup", "run", "--format", "json"])

    def cli(self, *argv: str) -> int:
        return main(["--config", str(self.cfg), *argv])

    def open_uploads(self) -> list[dict[str, Any]]:
        return list(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads") or [])

    def objects(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents") or []]

    def state(self) -> dict[str, Any]:
        return json.loads((self.tmp_path / "last-run.json").read_text())


def events(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("seconds", [3, 5])
def test_an_outage_of_seconds_mid_upload_does_not_fail_the_run(tmp_path: Path, moto: MotoServer, link: CuttableLink,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str],
                                                              seconds: float) -> None:
    env = Env(tmp_path, moto, link, monkeypatch)
    timers: list[threading.Timer] = []
    t0 = time.monotonic()
    assert env.run(Scripted(after=6, action=lambda: timers.append(link.cut_for(seconds)))) == 0
    assert time.monotonic() - t0 >= seconds  # the outage really was in the run's way
    result = json.loads(capsys.readouterr().out)
    assert result["ok"]
    assert sorted(env.objects()) == sorted([f"vault/{result['name']}", f"vault/{result['name']}.manifest.json"])
    assert env.open_uploads() == []
    assert env.cli("backup", "verify") == 0


def test_a_run_failing_while_the_link_is_down_aborts_once_it_is_back(
        tmp_path: Path, moto: MotoServer, link: CuttableLink, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = Env(tmp_path, moto, link, monkeypatch)
    timers: list[threading.Timer] = []
    assert env.run(Scripted(after=6, action=lambda: timers.append(link.cut_for(3)), fail=True)) == 6
    err = capsys.readouterr().err
    assert [e["event"] for e in events(err)].count("run.failed") == 1
    assert env.open_uploads() == [] and env.objects() == []
    assert env.state()["left_open"] == []


def test_an_abort_that_outlasts_the_retry_budget_is_recorded_and_done_by_the_next_run(
        tmp_path: Path, moto: MotoServer, link: CuttableLink, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = Env(tmp_path, moto, link, monkeypatch, retry_seconds=1)
    timers: list[threading.Timer] = []
    assert env.run(Scripted(after=6, action=lambda: timers.append(link.cut_for(6)), fail=True)) == 6
    left = env.state()["left_open"]
    assert len(left) == 1
    warned = [e for e in events(capsys.readouterr().err) if e["event"] == "warning"]
    assert any("could not be aborted" in e["message"] for e in warned)
    timers[0].join()
    [upload] = env.open_uploads()
    assert upload["UploadId"] == left[0]["upload_id"]
    # visible to `backup list`
    assert env.cli("backup", "list", "--format", "json") == 0
    listed = json.loads(capsys.readouterr().out)["open_uploads"]
    assert [u["upload_id"] for u in listed] == [upload["UploadId"]]
    # the next run aborts it although it is young (default abort_stale_after_hours: 24)
    assert env.run(Scripted()) == 0
    aborted = [e for e in events(capsys.readouterr().err) if e["event"] == "sink.upload_aborted"]
    assert [(e["upload_id"], e["reason"]) for e in aborted] == [(upload["UploadId"], "left open by an earlier run")]
    assert env.open_uploads() == [] and env.state()["left_open"] == []


def test_stale_uploads_are_aborted_by_runs_and_prune_young_ones_are_listed(
        tmp_path: Path, moto: MotoServer, link: CuttableLink, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """As if earlier runs had been killed mid-upload (SIGKILL: no abort at all)."""
    env = Env(tmp_path, moto, link, monkeypatch, abort_stale_after_hours=0.0005)  # 1.8 s
    killed = [env.s3.create_multipart_upload(Bucket=env.bucket, Key=f"vault/unit-2025010{i}T000000.000Z.snap")
              for i in range(1, 3)]
    other = env.s3.create_multipart_upload(Bucket=env.bucket, Key="vault/othercluster-20250101T000000.000Z.snap")
    assert env.cli("backup", "list", "--format", "json") == 0
    assert len(json.loads(capsys.readouterr().out)["open_uploads"]) == 2  # young: listed, not touched
    time.sleep(2)
    assert env.run(Scripted()) == 0
    aborted = {e["upload_id"] for e in events(capsys.readouterr().err) if e["event"] == "sink.upload_aborted"}
    assert aborted == {k["UploadId"] for k in killed}
    assert [u["UploadId"] for u in env.open_uploads()] == [other["UploadId"]]  # not this cluster's
    # `backup prune` sweeps too
    again = env.s3.create_multipart_upload(Bucket=env.bucket, Key="vault/unit-20250103T000000.000Z.snap")
    time.sleep(2)
    env.cfg.write_text(env.cfg.read_text().replace("state_file:", "retention: {keep_last: 5}\n  state_file:"))
    assert env.cli("backup", "prune") == 0
    aborted = {e["upload_id"] for e in events(capsys.readouterr().err) if e["event"] == "sink.upload_aborted"}
    assert aborted == {again["UploadId"]}


def test_cron_soak_with_a_cut_every_third_run(tmp_path: Path, moto: MotoServer, link: CuttableLink,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's soak, shortened: runs whose link is cut for 3 s succeed; nothing stays open."""
    env = Env(tmp_path, moto, link, monkeypatch)
    timers: list[threading.Timer] = []
    for i in range(6):
        action = (lambda: timers.append(link.cut_for(3))) if i % 3 == 2 else None
        assert env.run(Scripted(after=6, action=action)) == 0, i
        assert env.open_uploads() == []
    capsys.readouterr()
    assert env.cli("backup", "list", "--format", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [b["state"] for b in listed["backups"]] == ["verified"] * 6 and listed["open_uploads"] == []
