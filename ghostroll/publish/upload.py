"""Sending files to S3 exactly once: parallel, multipart when large, retried with backoff.

`upload_all()` takes a list of `UploadTask`s and a ledger (the `uploads` table of the
database, or `MemoryLedger` in tests). A key whose recorded sha256 equals the task's is
skipped without any request; every successful PUT is recorded at once, from the worker
that made it, so a crash or a dropped network loses at most the uploads in flight and a
re-run sends only what is missing.

Network errors, 5xx and throttling are retried (exponential backoff, full jitter,
bounded attempts); anything else fails that key with a message. When one key runs out
of attempts on a connection error the endpoint is treated as down: keys not yet started
are reported failed ("not attempted") instead of each waiting through its own retries.
Progress callbacks run on the calling thread.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ghostroll import faults
from ghostroll.hashing import sha256_unchanged

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
DEFAULT_PART_BYTES = 8 * MIB
PARTS_AT_ONCE = 3  # of one file; of all files together, max(this, upload workers)

NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"

# Keys rewritten while the gallery fills in, or overwritten by `reshare`.
_MUTABLE_NAMES = {"index.html", "progress.json"}

_CONTENT_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
    ".webp": "image/webp", ".gif": "image/gif", ".avif": "image/avif",
    ".heic": "image/heic", ".heif": "image/heif", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
    ".json": "application/json", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml", ".zip": "application/zip",
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
    ".mts": "video/mp2t", ".m2ts": "video/mp2t", ".avi": "video/x-msvideo",
    ".webm": "video/webm", ".mkv": "video/x-matroska",
}

_THROTTLE_CODES = {
    "Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded",
    "TooManyRequests", "TooManyRequestsException", "RequestTimeout", "InternalError",
    "ServiceUnavailable", "503",
}


# The body arrived other than it left (its Content-MD5 or checksum did not match): the
# server kept nothing, and sending it again is the fix.
_DAMAGED = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}


def content_type_for(key: str) -> str:
    """Content-Type for an S3 key. Short-link pages (`L/<token>`) have no extension and
    are HTML; unknown extensions are application/octet-stream."""
    name = key.rsplit("/", 1)[-1]
    if key.startswith("L/") and "." not in name:
        return "text/html; charset=utf-8"
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot >= 0 else ""
    return _CONTENT_TYPES.get(ext, "application/octet-stream")


def cache_control_for(key: str) -> str:
    """no-cache for what changes at the same key (index.html, progress.json, short-link
    pages); a year, immutable, for the rest (a key's content never changes)."""
    name = key.rsplit("/", 1)[-1]
    if name in _MUTABLE_NAMES or key.startswith("L/"):
        return NO_CACHE
    return IMMUTABLE


@dataclass(frozen=True)
class UploadTask:
    key: str
    path: Path
    sha256: str  # hex, of the file's content
    size: int  # bytes
    content_type: str
    cache_control: str
    storage_class: str = ""  # "" leaves the bucket's default (STANDARD)

    @classmethod
    def for_file(cls, key: str, path: Path, sha256: str | None = None) -> UploadTask:
        """A task with size read from disk, sha256 computed when not given, and
        Content-Type / Cache-Control from the key."""
        path = Path(path)
        if sha256 is None:
            sha256 = sha256_unchanged(path)
        return cls(key, path, sha256, path.stat().st_size, content_type_for(key),
                   cache_control_for(key))


class UploadLedger(Protocol):
    """What is already in the bucket. The database implements it; must be thread-safe."""

    def uploaded_sha(self, key: str) -> str | None: ...

    def record_upload(self, key: str, sha256: str, size: int, etag: str) -> None: ...

    def record_uploads(self, rows: list[tuple[str, str, int, str]]) -> None: ...


class MemoryLedger:
    """UploadLedger in a dict (tests, one-off runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: dict[str, tuple[str, int, str]] = {}  # key -> (sha256, size, etag)

    def uploaded_sha(self, key: str) -> str | None:
        with self._lock:
            row = self.rows.get(key)
            return row[0] if row else None

    def record_upload(self, key: str, sha256: str, size: int, etag: str) -> None:
        with self._lock:
            self.rows[key] = (sha256, size, etag)

    def record_uploads(self, rows: list[tuple[str, str, int, str]]) -> None:
        for key, sha256, size, etag in rows:
            self.record_upload(key, sha256, size, etag)


class BufferedLedger:
    """Records kept in memory until `flush()` writes them in one transaction: one commit
    per round of uploads instead of one per object (2000 small objects made 2000 fsyncs,
    and their write locks stalled the card phase). A crash before the flush loses only
    the records, so those objects are sent once more: uploads are idempotent."""

    def __init__(self, ledger: UploadLedger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self.rows: dict[str, tuple[str, int, str]] = {}

    def uploaded_sha(self, key: str) -> str | None:
        with self._lock:
            if key in self.rows:
                return self.rows[key][0]
        return self.ledger.uploaded_sha(key)

    def record_upload(self, key: str, sha256: str, size: int, etag: str) -> None:
        with self._lock:
            self.rows[key] = (sha256, size, etag)

    def flush(self) -> None:
        with self._lock:
            rows, self.rows = self.rows, {}
        if rows:
            self.ledger.record_uploads([(k, *v) for k, v in rows.items()])


@dataclass(frozen=True)
class UploadEvent:
    key: str
    outcome: str  # uploaded | skipped | failed
    done: int  # tasks finished so far, this one included
    total: int
    message: str = ""


@dataclass
class UploadReport:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> message
    bytes_sent: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (f"{len(self.uploaded)} uploaded, {len(self.skipped)} already there, "
                f"{len(self.failed)} failed")
        if self.failed:
            key, message = next(iter(self.failed.items()))
            text += f" (first: {key}: {message})"
        return text


# ------------------------------------------------------------------ pure decisions


def backoff_delay(attempt: int, *, base_s: float, cap_s: float,
                  rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)); attempt counts from 0."""
    return rand() * min(cap_s, base_s * (2 ** attempt))


def part_size(size: int, preferred: int = DEFAULT_PART_BYTES) -> int:
    """Part size for a multipart upload of `size` bytes: at least 5 MiB and few enough
    parts (<= 10,000)."""
    needed = -(-size // MAX_PARTS)
    return max(MIN_PART_BYTES, preferred, needed)


def classify_error(exc: BaseException) -> tuple[bool, bool, str]:
    """(retryable, endpoint_down, message) for an exception from a request."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.NoCredentialsError):
        return False, False, "no AWS credentials (set s3_access_key_id or the AWS chain)"
    if isinstance(exc, bex.ConnectionError):
        return True, True, f"cannot reach S3: {exc}"
    if isinstance(exc, bex.HTTPClientError):  # read timeouts, dropped connections
        return True, True, f"connection to S3 failed: {exc}"
    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = f"S3 refused ({status} {code}): {err.get('Message', '')}".rstrip(": ")
        retry = status >= 500 or status == 429 or code in _THROTTLE_CODES or code in _DAMAGED
        return retry, False, message
    if isinstance(exc, OSError):
        return False, False, f"cannot read the file: {exc}"
    return False, False, f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------ I/O


HeldParts = dict[int, tuple[int, str]]  # a multipart upload's parts: number -> (size, MD5 hex)


class _EndpointDown(Exception):
    pass


class _Uploader:
    def __init__(self, client: Any, bucket: str, *, multipart_threshold_bytes: int,
                 max_attempts: int, base_delay_s: float, max_delay_s: float,
                 sleep: Callable[[float], None], parts_in_flight: int = PARTS_AT_ONCE) -> None:
        self.client = client
        # every file's parts together: the memory they hold stays that many parts
        self.part_slots = threading.BoundedSemaphore(max(1, parts_in_flight))
        self.bucket = bucket
        self.threshold = multipart_threshold_bytes
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.sleep = sleep
        self.endpoint_down = threading.Event()
        self.down_reason = ""

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one request with retries; raise RuntimeError(message) when it gives up."""
        for attempt in range(self.max_attempts):
            try:
                return fn()
            except Exception as exc:
                retryable, down, message = classify_error(exc)
                last = attempt + 1 == self.max_attempts
                if not retryable or last:
                    if down:
                        self.down_reason = message
                        self.endpoint_down.set()
                    raise RuntimeError(message) from exc
                delay = backoff_delay(attempt, base_s=self.base_delay_s, cap_s=self.max_delay_s)
                log.debug("%s: attempt %d failed (%s), retrying in %.2f s",
                          what, attempt + 1, message, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def upload(self, task: UploadTask) -> tuple[str, int]:
        """Send one file; (etag, bytes sent)."""
        if self.endpoint_down.is_set():
            raise _EndpointDown(f"not attempted: {self.down_reason}")
        faults.fault("upload")
        try:
            size = task.path.stat().st_size
        except OSError as exc:
            raise RuntimeError(f"cannot read {task.path}: {exc.strerror or exc}") from exc
        if size != task.size:
            raise RuntimeError(f"{task.path} is {size} bytes, {task.size} when queued: "
                               "it changed since; queue it again")
        if size > self.threshold:
            return self._multipart(task), size
        return self._single(task), size

    def _single(self, task: UploadTask) -> str:
        data_md5 = _md5_b64(task.path, 0, task.size)

        def put() -> Any:
            with task.path.open("rb") as body:
                return self.client.put_object(
                    Bucket=self.bucket, Key=task.key, Body=body, ContentLength=task.size,
                    ContentMD5=data_md5, ContentType=task.content_type,
                    CacheControl=task.cache_control, **_storage(task))

        return str(self._call(task.key, put).get("ETag", "")).strip('"')

    def _multipart(self, task: UploadTask) -> str:
        """Parts an interrupted run left in the bucket (same number, size and MD5 as
        this file's) are kept; only the others are sent, `PARTS_AT_ONCE` at a time (one
        stream at a time leaves a local server's cores and a fast uplink idle)."""
        step = part_size(task.size)
        upload_id, held = self._resume_or_create(task)
        try:
            with task.path.open("rb") as f, ThreadPoolExecutor(
                    PARTS_AT_ONCE, thread_name_prefix="ghostroll-part") as pool:
                futures = [pool.submit(self._part, task, upload_id, held, f.fileno(),
                                       number, offset, step)
                           for number, offset in enumerate(range(0, task.size, step), start=1)]
                try:
                    parts = [future.result() for future in futures]
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
            done = self._call(task.key, lambda: self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=task.key, UploadId=upload_id,
                MultipartUpload={"Parts": parts}))
        except BaseException:
            self._abort(task.key, upload_id)
            raise
        return str(done.get("ETag", "")).strip('"')

    def _part(self, task: UploadTask, upload_id: str, held: HeldParts, fd: int, number: int,
              offset: int, step: int) -> dict[str, Any]:
        """One part, read where it lies in the file (each part's own read: only the parts
        in flight are in memory)."""
        with self.part_slots:
            if self.endpoint_down.is_set():
                raise RuntimeError(f"stopped: {self.down_reason}")
            chunk = os.pread(fd, step, offset)
            digest = hashlib.md5(chunk)
            if held.get(number) == (len(chunk), digest.hexdigest()):
                return {"PartNumber": number, "ETag": f'"{digest.hexdigest()}"'}
            faults.fault("upload.part")
            md5 = base64.b64encode(digest.digest()).decode()
            response = self._call(f"{task.key} part {number}", lambda: self.client.upload_part(
                Bucket=self.bucket, Key=task.key, UploadId=upload_id, PartNumber=number,
                Body=chunk, ContentMD5=md5))
            return {"PartNumber": number, "ETag": response["ETag"]}

    def _resume_or_create(self, task: UploadTask) -> tuple[str, HeldParts]:
        """The newest unfinished multipart upload of this key (a killed run's) and its
        parts (number -> (size, MD5 hex)); older ones are aborted. A new upload when
        there is none."""
        listed = self._call(task.key, lambda: self.client.list_multipart_uploads(
            Bucket=self.bucket, Prefix=task.key))
        found = sorted((u for u in listed.get("Uploads", []) if u.get("Key") == task.key
                        and (not task.storage_class
                             or u.get("StorageClass", task.storage_class) == task.storage_class)),
                       key=lambda u: u.get("Initiated") or 0)
        for stale in found[:-1]:
            self._abort(task.key, stale["UploadId"])
        if found:
            upload_id = found[-1]["UploadId"]
            held = self._call(task.key, lambda: self._held_parts(task.key, upload_id))
            log.info("%s: resuming an interrupted upload, %d part(s) already there",
                     task.key, len(held))
            return upload_id, held
        created = self._call(task.key, lambda: self.client.create_multipart_upload(
            Bucket=self.bucket, Key=task.key, ContentType=task.content_type,
            CacheControl=task.cache_control, **_storage(task)))
        return created["UploadId"], {}

    def _held_parts(self, key: str, upload_id: str) -> HeldParts:
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=key, UploadId=upload_id)
        return {part["PartNumber"]: (int(part["Size"]), str(part["ETag"]).strip('"'))
                for page in pages for part in page.get("Parts", [])}

    def _abort(self, key: str, upload_id: str) -> None:
        if self.endpoint_down.is_set():
            return  # it would fail too; a lifecycle rule cleans incomplete uploads
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:
            log.debug("abort of multipart upload %s failed: %s", key, exc)


def _md5_b64(path: Path, offset: int, length: int) -> str:
    digest = hashlib.md5()  # Content-MD5 is what S3 checks, not security
    with path.open("rb") as f:
        f.seek(offset)
        remaining = length
        while remaining > 0:
            block = f.read(min(MIB, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return base64.b64encode(digest.digest()).decode()


def upload_all(client: Any, bucket: str, tasks: Iterable[UploadTask], ledger: UploadLedger,
               *, workers: int, multipart_threshold_bytes: int,
               on_progress: Callable[[UploadEvent], None] | None = None,
               sleep: Callable[[float], None] = time.sleep, max_attempts: int = 5,
               base_delay_s: float = 0.5, max_delay_s: float = 20.0) -> UploadReport:
    """Upload every task whose content is not already at its key; never raises for a
    failed key (see report.failed). Each success is in the ledger before this returns."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    tasks = list(tasks)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"the same key appears twice in one upload: {dupes[:3]}")
    report = UploadReport()
    total = len(tasks)
    done = 0

    def emit(key: str, outcome: str, message: str = "") -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(UploadEvent(key, outcome, done, total, message))

    pending: list[UploadTask] = []
    for task in tasks:
        if ledger.uploaded_sha(task.key) == task.sha256:
            report.skipped.append(task.key)
            emit(task.key, "skipped")
        else:
            pending.append(task)
    if not pending:
        return report

    uploader = _Uploader(client, bucket, multipart_threshold_bytes=multipart_threshold_bytes,
                         max_attempts=max_attempts, base_delay_s=base_delay_s,
                         max_delay_s=max_delay_s, sleep=sleep,
                         parts_in_flight=max(workers, PARTS_AT_ONCE))

    def run(task: UploadTask) -> int:
        etag, sent = uploader.upload(task)
        ledger.record_upload(task.key, task.sha256, task.size, etag)
        return sent

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload") as pool:
        futures: dict[Future[int], UploadTask] = {pool.submit(run, t): t for t in pending}
        order = {f: i for i, f in enumerate(futures)}
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            # Same-time completions in submission order: reports read in queue order.
            for future in sorted(finished, key=lambda f: order[f]):
                task = futures[future]
                try:
                    report.bytes_sent += future.result()
                except (RuntimeError, _EndpointDown) as exc:
                    report.failed[task.key] = str(exc)
                    emit(task.key, "failed", str(exc))
                    continue
                except Exception as exc:  # a ledger or programming error: still per key
                    report.failed[task.key] = f"{type(exc).__name__}: {exc}"
                    emit(task.key, "failed", report.failed[task.key])
                    continue
                report.uploaded.append(task.key)
                emit(task.key, "uploaded")
    if report.failed:
        log.warning("upload to bucket %s: %s", bucket, report.summary())
    return report


def _storage(task: UploadTask) -> dict[str, str]:
    return {"StorageClass": task.storage_class} if task.storage_class else {}
