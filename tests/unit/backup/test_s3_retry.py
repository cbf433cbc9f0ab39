"""S3Sink.call: the one retry policy of the S3 sink (no server: a scripted client function)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, SSLError

from vaultops.errors import ConfigError
from vaultops.storage import s3
from vaultops.storage.base import SinkError
from vaultops.storage.s3 import S3Sink


def sink(retry_seconds: float = 5.0) -> S3Sink:
    return S3Sink(bucket="b", client=object(), retry_seconds=retry_seconds)


def failing(errors: list[BaseException], result: object = "done"):
    calls: list[float] = []

    def fn(**kwargs: object) -> object:
        calls.append(time.monotonic())
        if errors:
            raise errors.pop(0)
        return result
    return fn, calls


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "FIRST_DELAY", 0.05)
    monkeypatch.setattr(s3, "MAX_DELAY", 0.2)


def test_transient_failures_are_retried_until_they_pass() -> None:
    errors = [EndpointConnectionError(endpoint_url="http://x"), client_error("SlowDown", 503),
              client_error("InternalError", 500)]
    fn, calls = failing(errors)
    assert sink().call("put x", fn) == "done" and len(calls) == 4


@pytest.mark.parametrize("error", [client_error("AccessDenied", 403), client_error("NoSuchBucket", 404),
                                   SSLError(endpoint_url="https://x", error="bad certificate")])
def test_permanent_failures_are_not_retried(error: BaseException) -> None:
    fn, calls = failing([error])
    with pytest.raises(SinkError):
        sink().call("put x", fn)
    assert len(calls) == 1


def test_the_budget_bounds_the_whole_call() -> None:
    fn, calls = failing([EndpointConnectionError(endpoint_url="http://x")] * 1000)
    t0 = time.monotonic()
    with pytest.raises(SinkError, match="put x failed"):
        sink(retry_seconds=0.6).call("put x", fn)
    assert 0.6 <= time.monotonic() - t0 < 1.5 and len(calls) >= 3


def test_stop_ends_the_retries_of_an_aborted_upload() -> None:
    stop = threading.Event()
    fn, calls = failing([EndpointConnectionError(endpoint_url="http://x")] * 1000)
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(SinkError):
        sink(retry_seconds=30).call("upload part 1", fn, stop=stop)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize(("key", "value"), [("retry_seconds", "60"), ("retry_seconds", -1),
                                            ("abort_stale_after_hours", True), ("part_size_mib", 4),
                                            ("concurrency", "two")])
def test_numeric_settings_are_checked(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        S3Sink.from_settings({"bucket": "b", key: value}, resolve_path=Path)
