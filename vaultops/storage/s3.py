"""An S3 sink: streamed multipart uploads with SSE and a full-object CRC32 checksum.

Settings: {type: s3, bucket, prefix, region, endpoint_url, sse: AES256|aws:kms, kms_key_id,
storage_class, part_size_mib (>= 5, default 8), concurrency (default 2), retry_seconds (default
60), abort_stale_after_hours (default 24)}. Credentials come from the usual boto3 chain
(environment, profile, instance role).

Memory is bounded: at most `concurrency` parts in flight plus the one being filled. Parts are
uploaded in background threads, so the download keeps flowing while a part travels.

Outages: every S3 call goes through `S3Sink.call`, the one place calls are translated and
retried. botocore's standard retry mode handles a quick blip (3 attempts, under a second); on
a transient failure left after that (connection refused/reset/timed out, 5xx, throttling) the
call is tried again with capped exponential backoff until `retry_seconds` have passed since it
began, so an outage of tens of seconds delays a run instead of failing it. Aborts are retried
the same way; an abort that still fails is remembered in `left_open` (the run records it and
the next run aborts it), and uploads older than `abort_stale_after_hours` under the prefix are
aborted by every run and `backup prune` (see catalog.sweep_open_uploads).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vaultops.errors import ConfigError
from vaultops.retry import retry
from vaultops.storage.base import (CHUNK, CommitResult, ObjectInfo, OpenUpload, SinkError, check_key,
                                   number_setting, stale_after)
from vaultops.storage.crc import crc32_combine

log = logging.getLogger("vaultops.storage.s3")

MIN_PART = 5 << 20
SSE_MODES = ("AES256", "aws:kms")
RETRY_SECONDS = 60.0          # default total time one call may spend retrying
FIRST_DELAY, MAX_DELAY = 0.5, 5.0
BOTO_ATTEMPTS = 3
TRANSIENT_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                             "InternalError", "ServiceUnavailable", "RequestLimitExceeded"})
GONE_CODES = frozenset({"NoSuchUpload", "404", "NoSuchKey", "NotFound"})


@contextlib.contextmanager
def translate(what: str, sink: str) -> Iterator[None]:
    """The one place botocore failures become SinkError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise SinkError(f"{sink}: {what} failed: {err.get('Code', '?')}: {err.get('Message', '')}".rstrip(),
                        hint="check the bucket, the credentials and the IAM policy") from exc
    except BotoCoreError as exc:
        raise SinkError(f"{sink}: {what} failed: {exc}",
                        hint="check the endpoint and network, then run the backup again") from exc


def transient(exc: BaseException | None) -> bool:
    """A failure that may pass if the same call is tried again later."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, SSLError

    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or status == 429 or exc.response.get("Error", {}).get("Code") in TRANSIENT_CODES
    return isinstance(exc, (ConnectionError, HTTPClientError)) and not isinstance(exc, SSLError)


def error_code(exc: BaseException) -> str | None:
    """The S3 error code behind a SinkError (or None)."""
    from botocore.exceptions import ClientError

    cause = exc.__cause__
    return cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None


def _b64crc(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode()


class S3Upload:
    def __init__(self, sink: S3Sink, key: str) -> None:
        self._sink, self.key, self._full = sink, key, sink.full_key(key)
        self._buf = bytearray(sink.part_size)  # filled in place, handed to botocore as the part body
        self._buffers = 1
        self._spare: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._fill = 0
        self._part_crc = 0
        self._crc = 0       # of the whole object, combined from the part CRCs: one pass over the data
        self._size = 0
        self._futures: list[Future[dict[str, Any]]] = []
        self._stop = threading.Event()  # set by abort(): parts stop retrying
        resp = sink.call("create multipart upload", sink.client.create_multipart_upload,
                         Bucket=sink.bucket, Key=self._full, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT",
                         **sink.put_args())
        self._upload_id: str | None = resp["UploadId"]
        self._started = datetime.now(timezone.utc)
        self._pool = ThreadPoolExecutor(max_workers=sink.concurrency, thread_name_prefix="s3-part")

    def write(self, chunk: bytes | bytearray) -> None:
        self._raise_failed_part()
        self._size += len(chunk)
        with memoryview(chunk) as view:
            while view:
                take = min(len(view), len(self._buf) - self._fill)
                piece = view[:take]
                self._buf[self._fill:self._fill + take] = piece
                self._part_crc = zlib.crc32(piece, self._part_crc)
                piece.release()
                self._fill += take
                view = view[take:]
                if self._fill == len(self._buf):
                    self._flush()

    def _flush(self, *, last: bool = False) -> None:
        buf = self._buf
        data = buf if self._fill == len(buf) else buf[:self._fill]
        crc, self._crc = self._part_crc, crc32_combine(self._crc, self._part_crc, self._fill)
        number = len(self._futures) + 1
        fut = self._pool.submit(self._upload_part, number, data, crc)
        fut.add_done_callback(lambda _f: self._spare.put(buf))  # also after a failure: never strand a waiter
        self._futures.append(fut)
        self._fill, self._part_crc = 0, 0
        if not last:
            self._buf = self._next_buffer()

    def _next_buffer(self) -> bytearray:
        # A fixed set of concurrency + 1 part buffers, reused: memory stays bounded and freed
        # 8 MiB buffers never pile up in the allocator's heap.
        try:
            return self._spare.get_nowait()
        except queue.Empty:
            if self._buffers <= self._sink.concurrency:
                self._buffers += 1
                return bytearray(self._sink.part_size)
        return self._spare.get()  # backpressure: wait until a part upload finishes

    def _upload_part(self, number: int, data: bytearray, crc_value: int) -> dict[str, Any]:
        crc = _b64crc(crc_value)
        resp = self._sink.call(f"upload part {number}", self._sink.client.upload_part, stop=self._stop,
                               Bucket=self._sink.bucket, Key=self._full, UploadId=self._upload_id,
                               PartNumber=number, Body=data, ChecksumCRC32=crc)
        return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumCRC32": crc}

    def _raise_failed_part(self) -> None:
        for fut in self._futures:
            if fut.done() and fut.exception() is not None:
                self.abort()
                raise fut.exception()  # type: ignore[misc]

    def commit(self) -> CommitResult:
        if self._fill or not self._futures:
            self._flush(last=True)
        try:
            parts = [f.result() for f in self._futures]
            full = _b64crc(self._crc)
            self._complete(parts, full)
            self._upload_id = None
            self._check_stored(full)
        except BaseException:
            self.abort()
            raise
        finally:
            self._pool.shutdown(wait=False)
        return CommitResult(key=self.key, size=self._size, location=f"s3://{self._sink.bucket}/{self._full}",
                            checksum=f"crc32:{full}")

    def _complete(self, parts: list[dict[str, Any]], full: str) -> None:
        try:
            self._sink.call("complete multipart upload", self._sink.client.complete_multipart_upload,
                            Bucket=self._sink.bucket, Key=self._full, UploadId=self._upload_id,
                            MultipartUpload={"Parts": parts}, ChecksumCRC32=full, ChecksumType="FULL_OBJECT")
        except SinkError as exc:
            # A retried complete whose first answer was lost finds the upload gone: the object
            # then exists, and _check_stored decides whether it is ours, whole.
            if error_code(exc) != "NoSuchUpload" or not self._sink.exists(self.key):
                raise

    def _check_stored(self, expected: str) -> None:
        # S3 rejects a wrong full-object checksum itself; read it back anyway (emulators may not).
        head = self._sink.call("head object", self._sink.client.head_object,
                               Bucket=self._sink.bucket, Key=self._full, ChecksumMode="ENABLED")
        stored = head.get("ChecksumCRC32")
        if head.get("ContentLength") != self._size or (stored and stored != expected):
            with contextlib.suppress(SinkError):
                self._sink.delete(self.key)
            raise SinkError(f"{self._sink.name}: {self.key} stored with size/checksum "
                            f"{head.get('ContentLength')}/{stored}, expected {self._size}/{expected}; deleted",
                            hint="the upload was corrupted in transit; run the backup again")

    def abort(self) -> None:
        """Never raises: an abort that fails even after retries is remembered in sink.left_open."""
        self._stop.set()
        for fut in self._futures:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._upload_id is not None:
            upload = OpenUpload(self.key, self._upload_id, self._started)
            self._upload_id = None
            try:
                self._sink.abort_open_upload(upload)
            except SinkError as exc:
                log.warning("%s: upload of %s left open: %s", self._sink.name, self.key, exc)
                self._sink.left_open.append(upload)


class S3Sink:
    def __init__(self, *, bucket: str, prefix: str = "", region: str | None = None,
                 endpoint_url: str | None = None, sse: str | None = None, kms_key_id: str | None = None,
                 storage_class: str | None = None, part_size: int = 8 << 20, concurrency: int = 2,
                 retry_seconds: float = RETRY_SECONDS, stale: timedelta | None = None,
                 object_lock: tuple[str, float] | None = None, client: Any = None) -> None:
        if sse is not None and sse not in SSE_MODES:
            raise ConfigError(f"backup.sinks: s3 sse {sse!r} is not supported", hint="use AES256 or aws:kms")
        if kms_key_id and sse != "aws:kms":
            raise ConfigError("backup.sinks: kms_key_id needs sse: aws:kms", hint="set sse: aws:kms")
        if part_size < MIN_PART:
            raise ConfigError("backup.sinks: s3 part_size_mib must be at least 5", hint="S3 rejects smaller parts")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.sse, self.kms_key_id, self.storage_class = sse, kms_key_id, storage_class
        self.part_size, self.concurrency = part_size, max(1, concurrency)
        self.name = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.retry_seconds = retry_seconds
        self.object_lock = object_lock   # (mode, days): every object written is locked until then
        self.stale_after = stale if stale is not None else stale_after({})
        self.left_open: list[OpenUpload] = []
        self.client = client if client is not None else _make_client(region, endpoint_url)

    @classmethod
    def from_settings(cls, settings: dict[str, Any], *, resolve_path: Callable[[str], Path]) -> S3Sink:
        bucket = settings.get("bucket")
        if not isinstance(bucket, str) or not bucket:
            raise ConfigError("backup.sinks: an s3 sink needs 'bucket'", hint="e.g. {type: s3, bucket: my-backups}")
        return cls(bucket=bucket, prefix=str(settings.get("prefix") or ""), region=settings.get("region"),
                   endpoint_url=settings.get("endpoint_url"), sse=settings.get("sse"),
                   kms_key_id=settings.get("kms_key_id"), storage_class=settings.get("storage_class"),
                   part_size=int(number_setting(settings, "part_size_mib", 8, minimum=5)) << 20,
                   concurrency=int(number_setting(settings, "concurrency", 2, minimum=1)),
                   retry_seconds=number_setting(settings, "retry_seconds", RETRY_SECONDS),
                   stale=stale_after(settings), object_lock=_object_lock(settings))

    def call(self, what: str, fn: Callable[..., Any], /, *, stop: threading.Event | None = None,
             **kwargs: Any) -> Any:
        """fn(**kwargs), translated; transient failures retried until retry_seconds have passed."""
        began = time.monotonic()

        def once() -> Any:
            with translate(what, self.name):
                return fn(**kwargs)

        def final(exc: BaseException) -> bool:
            if not transient(exc.__cause__):
                return True
            log.info("%s: %s failed (%s); retrying for %.0fs more", self.name, what, getattr(exc, "message", exc),
                     self.retry_seconds - (time.monotonic() - began))
            return False
        return retry(once, on=(SinkError,), budget=self.retry_seconds, first=FIRST_DELAY, cap=MAX_DELAY,
                     stop=stop, give_up=final)

    def full_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        if self.object_lock:
            mode, days = self.object_lock
            args["ObjectLockMode"] = mode
            args["ObjectLockRetainUntilDate"] = datetime.now(timezone.utc) + timedelta(days=days)
        return args

    def open_upload(self, key: str) -> S3Upload:
        return S3Upload(self, key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.call(f"put {key}", self.client.put_object, Bucket=self.bucket, Key=self.full_key(key), Body=data,
                  **self.put_args())

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.read_chunks(key))

    def read_chunks(self, key: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]:
        body = self.call(f"get {key}", self.client.get_object, Bucket=self.bucket, Key=self.full_key(key))["Body"]
        with translate(f"get {key}", self.name):
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

    def _pages(self, what: str, fn: Callable[..., Any], prefix: str, markers: tuple[str, ...]) -> Iterator[Any]:
        """Pages of a list call, each page retried on its own (a paginator cannot resume)."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._base + prefix}
        while True:
            page = self.call(what, fn, **args)
            yield page
            if not page.get("IsTruncated"):
                return
            args.update({m: page[f"Next{m}"] for m in markers if page.get(f"Next{m}")})

    @property
    def _base(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self._base
        for page in self._pages("list objects", self.client.list_objects_v2, prefix, ("ContinuationToken",)):
            for obj in page.get("Contents") or ():
                yield ObjectInfo(obj["Key"][len(base):], int(obj["Size"]), obj["LastModified"])

    def delete(self, key: str) -> None:
        self.call(f"delete {key}", self.client.delete_object, Bucket=self.bucket, Key=self.full_key(key))

    def exists(self, key: str) -> bool:
        try:
            self.call(f"head {key}", self.client.head_object, Bucket=self.bucket, Key=self.full_key(key))
        except SinkError as exc:
            if error_code(exc) in GONE_CODES:
                return False
            raise
        return True

    def open_uploads(self, prefix: str = "") -> Iterator[OpenUpload]:
        base = self._base
        pages = self._pages("list multipart uploads", self.client.list_multipart_uploads, prefix,
                            ("KeyMarker", "UploadIdMarker"))
        for page in pages:
            for up in page.get("Uploads") or ():
                yield OpenUpload(up["Key"][len(base):], up["UploadId"], up["Initiated"])

    def abort_open_upload(self, upload: OpenUpload) -> None:
        try:
            self.call(f"abort upload of {upload.key}", self.client.abort_multipart_upload, Bucket=self.bucket,
                      Key=self._base + upload.key, UploadId=upload.upload_id)
        except SinkError as exc:
            if error_code(exc) not in GONE_CODES:
                raise


def _object_lock(settings: dict[str, Any]) -> tuple[str, float] | None:
    """object_lock_days (+ object_lock_mode, default GOVERNANCE): the bucket must have Object Lock enabled."""
    if settings.get("object_lock_days") is None:
        return None
    days = number_setting(settings, "object_lock_days", 1, minimum=1)
    mode = settings.get("object_lock_mode", "GOVERNANCE")
    if mode not in ("GOVERNANCE", "COMPLIANCE"):
        raise ConfigError(f"backup.sinks: object_lock_mode {mode!r} is not GOVERNANCE or COMPLIANCE",
                          hint="COMPLIANCE cannot be lifted even by the account's root user; GOVERNANCE can")
    return mode, days


def _make_client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    return session.client("s3", endpoint_url=endpoint_url, config=Config(
        retries={"max_attempts": BOTO_ATTEMPTS, "mode": "standard"}, connect_timeout=5, read_timeout=120,
        max_pool_connections=8))
