"""Uploads against a real SeaweedFS: private objects, presigned reads, exactly-once
sending (PUTs counted on the wire), multipart, a server killed mid-upload, S3 down at
the start. Plus the pure pieces (types, cache rules, backoff, error classes)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from ghostroll.publish.links import presign_get
from ghostroll.publish.s3client import make_client
from ghostroll.publish.upload import (
    IMMUTABLE,
    MIB,
    NO_CACHE,
    PARTS_AT_ONCE,
    MemoryLedger,
    UploadEvent,
    UploadTask,
    backoff_delay,
    cache_control_for,
    classify_error,
    content_type_for,
    part_size,
    upload_all,
)
from tests.support import s3 as s3_support
from tests.support.s3 import RequestCounter, S3Bucket, unsigned_get, write_file

s3_server = s3_support.s3_server
s3_bucket = s3_support.s3_bucket

pytestmark = pytest.mark.s3

SESSION = "sessions/shoot-2024-05-01_120000/"
REPO = Path(__file__).resolve().parents[1]


def session_files(root: Path, count: int = 3, size: int = 40_000) -> list[UploadTask]:
    names = ["index.html", "progress.json", "share.zip"]
    names += [f"thumbs/IMG_{i:04d}.jpg" for i in range(count)]
    names += [f"share/IMG_{i:04d}.jpg" for i in range(count)]
    names.append("share/MVI_0001.mp4")
    tasks = []
    for i, name in enumerate(names):
        path = write_file(root / name, size + i, seed=i)
        tasks.append(UploadTask.for_file(SESSION + name, path))
    return tasks


def no_sleep(_: float) -> None:
    pass


def test_every_uploaded_object_is_private_and_its_presigned_url_works(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    tasks = session_files(tmp_path)
    ledger = MemoryLedger()
    client = make_client(s3_bucket.s3_config())
    report = upload_all(client, s3_bucket.name, tasks, ledger, workers=3,
                        multipart_threshold_bytes=16 * MIB)
    assert report.ok, report.summary()
    assert sorted(report.uploaded) == sorted(t.key for t in tasks)
    assert s3_bucket.keys() == sorted(t.key for t in tasks)
    for task in tasks:
        status, _ = unsigned_get(s3_bucket.url(task.key))
        assert status == 403, task.key
        url = presign_get(client, s3_bucket.name, task.key, 600)
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
        status, body = unsigned_get(url)
        assert status == 200, task.key
        assert body == task.path.read_bytes()
        head = client.head_object(Bucket=s3_bucket.name, Key=task.key)
        assert head["ContentType"] == content_type_for(task.key)
        assert head["CacheControl"] == cache_control_for(task.key)
        assert ledger.rows[task.key][0] == task.sha256
        assert ledger.rows[task.key][1] == task.size
    assert unsigned_get(f"{s3_bucket.server.endpoint_url}/{s3_bucket.name}/")[0] == 403


def test_a_second_run_sends_nothing_and_a_changed_file_is_sent_once(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    tasks = session_files(tmp_path)
    ledger = MemoryLedger()
    client = make_client(s3_bucket.s3_config())
    counter = RequestCounter(client)
    events: list[UploadEvent] = []
    first = upload_all(client, s3_bucket.name, tasks, ledger, workers=4,
                       multipart_threshold_bytes=16 * MIB, on_progress=events.append)
    assert first.ok
    assert counter.count() == len(tasks)
    assert sorted(counter.put_keys(s3_bucket.name)) == sorted(t.key for t in tasks)
    assert [e.done for e in events] == list(range(1, len(tasks) + 1))
    assert {e.outcome for e in events} == {"uploaded"}

    counter.reset()
    second = upload_all(client, s3_bucket.name, tasks, ledger, workers=4,
                        multipart_threshold_bytes=16 * MIB)
    assert counter.sent == []
    assert sorted(second.skipped) == sorted(t.key for t in tasks)
    assert second.uploaded == []

    changed = tasks[0]
    changed.path.write_text("<p>final gallery</p>")
    tasks[0] = UploadTask.for_file(changed.key, changed.path)
    third = upload_all(client, s3_bucket.name, tasks, ledger, workers=4,
                       multipart_threshold_bytes=16 * MIB)
    assert third.uploaded == [changed.key]
    assert counter.put_keys(s3_bucket.name) == [changed.key]
    body = client.get_object(Bucket=s3_bucket.name, Key=changed.key)["Body"].read()
    assert body == b"<p>final gallery</p>"


def test_large_files_go_up_in_parts(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    big = write_file(tmp_path / "share.zip", 11 * MIB + 123, seed=7)
    task = UploadTask.for_file(SESSION + "share.zip", big)
    client = make_client(s3_bucket.s3_config())
    counter = RequestCounter(client)
    report = upload_all(client, s3_bucket.name, [task], MemoryLedger(), workers=2,
                        multipart_threshold_bytes=5 * MIB)
    assert report.ok, report.summary()
    assert counter.count("CreateMultipartUpload") == 1
    assert counter.count("UploadPart") == 2  # 8 MiB + the rest
    assert counter.count("CompleteMultipartUpload") == 1
    assert counter.count("PutObject") == 0
    status, body = unsigned_get(presign_get(client, s3_bucket.name, task.key, 300))
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == task.sha256
    head = client.head_object(Bucket=s3_bucket.name, Key=task.key)
    assert head["ContentType"] == "application/zip"
    assert head["ContentLength"] == task.size


UPLOAD_ONE = """
import json, sys
from pathlib import Path
from ghostroll import config
from ghostroll.publish.s3client import make_client
from ghostroll.publish.upload import MIB, MemoryLedger, UploadTask, upload_all
flags, bucket, key, path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
client = make_client(config.load(config_file=None, env={}, flags=flags).s3)
report = upload_all(client, bucket, [UploadTask.for_file(key, Path(path))], MemoryLedger(),
                    workers=1, multipart_threshold_bytes=5 * MIB)
print(report.summary())
"""


def test_a_multipart_upload_killed_midway_continues_its_parts_next_run(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """SIGKILL at the 4th of 5 parts (fault point upload.part): the next run finds the
    unfinished upload in the bucket, keeps the parts that landed (size and MD5 match the
    file) and sends only the others. Parts go out several at a time, so which of parts
    1-3 had landed varies; at least one had (the 4th starts only when a sender is free)."""
    big = write_file(tmp_path / "MVI_0001.MOV", 4 * 8 * MIB + 123, seed=11)
    key = "originals/shoot-2024-05-01_120000/MVI_0001.MOV"
    env = {**os.environ, "GHOSTROLL_FAULT": "upload.part:kill@4", "PYTHONPATH": str(REPO)}
    killed = subprocess.run([sys.executable, "-c", UPLOAD_ONE, json.dumps(
        s3_bucket.config_flags()), s3_bucket.name, key, str(big)], env=env, cwd=REPO,
        capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    client = make_client(s3_bucket.s3_config())
    [left] = client.list_multipart_uploads(Bucket=s3_bucket.name)["Uploads"]
    held = client.list_parts(Bucket=s3_bucket.name, Key=key, UploadId=left["UploadId"])
    landed = [p["PartNumber"] for p in held["Parts"]]
    assert landed and set(landed) <= {1, 2, 3}, landed
    assert s3_bucket.keys("originals/") == []  # nothing visible before it completes
    counter = RequestCounter(client)
    task = UploadTask.for_file(key, big)
    report = upload_all(client, s3_bucket.name, [task], MemoryLedger(), workers=1,
                        multipart_threshold_bytes=5 * MIB)
    assert report.ok, report.summary()
    assert counter.count("CreateMultipartUpload") == 0
    assert counter.count("UploadPart") == 5 - len(landed)  # only the parts not there
    assert counter.count("CompleteMultipartUpload") == 1
    body = client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == task.sha256
    assert client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_a_part_left_with_other_bytes_is_sent_again(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """An unfinished upload whose parts hold other content (the file changed since) is
    not trusted part by part: a part whose MD5 differs is sent again."""
    key = "originals/shoot-2024-05-01_120000/MVI_0002.MOV"
    client = make_client(s3_bucket.s3_config())
    upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key=key)["UploadId"]
    client.upload_part(Bucket=s3_bucket.name, Key=key, UploadId=upload, PartNumber=1,
                       Body=b"x" * (8 * MIB))
    big = write_file(tmp_path / "MVI_0002.MOV", 8 * MIB + 5 * MIB, seed=12)
    counter = RequestCounter(client)
    task = UploadTask.for_file(key, big)
    report = upload_all(client, s3_bucket.name, [task], MemoryLedger(), workers=1,
                        multipart_threshold_bytes=5 * MIB)
    assert report.ok, report.summary()
    assert counter.count("UploadPart") == 2 and counter.count("CreateMultipartUpload") == 0
    body = client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == task.sha256


def test_server_killed_mid_upload_then_restarted_resumes_without_resending(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    tasks = session_files(tmp_path, count=8, size=60_000)
    ledger = MemoryLedger()
    client = make_client(s3_bucket.s3_config(), connect_timeout_s=2, read_timeout_s=5)
    counter = RequestCounter(client)
    server = s3_bucket.server

    def kill_after_four(event: UploadEvent) -> None:
        if event.outcome == "uploaded" and event.done == 4:
            server.kill()

    first = upload_all(client, s3_bucket.name, tasks, ledger, workers=2,
                       multipart_threshold_bytes=16 * MIB, on_progress=kill_after_four,
                       sleep=no_sleep)
    assert not server.running
    assert not first.ok
    assert len(first.uploaded) >= 4
    recorded = set(ledger.rows)
    assert recorded == set(first.uploaded)
    assert set(first.failed) == {t.key for t in tasks} - recorded

    server.start()
    counter.reset()
    second = upload_all(client, s3_bucket.name, tasks, ledger, workers=2,
                        multipart_threshold_bytes=16 * MIB, sleep=no_sleep)
    assert second.ok, second.summary()
    resent = counter.put_keys(s3_bucket.name)
    assert set(resent).isdisjoint(recorded)
    assert sorted(resent) == sorted(first.failed)
    assert sorted(second.skipped) == sorted(recorded)
    for task in tasks:
        body = client.get_object(Bucket=s3_bucket.name, Key=task.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == task.sha256, task.key


def test_s3_down_at_start_fails_clearly_and_a_later_run_uploads_everything(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    tasks = session_files(tmp_path, count=2)
    ledger = MemoryLedger()
    client = make_client(s3_bucket.s3_config(), connect_timeout_s=2, read_timeout_s=5)
    counter = RequestCounter(client)
    s3_bucket.server.stop()
    sleeps: list[float] = []
    down = upload_all(client, s3_bucket.name, tasks, ledger, workers=1,
                      multipart_threshold_bytes=16 * MIB, sleep=sleeps.append,
                      max_attempts=4, base_delay_s=0.5, max_delay_s=8)
    assert down.uploaded == []
    assert set(down.failed) == {t.key for t in tasks}
    messages = sorted(down.failed.values())
    tried = [m for m in messages if not m.startswith("not attempted: ")]
    # One key used its retries; the endpoint is then known down: no retry storm.
    assert len(tried) == 1
    assert tried[0].startswith("cannot reach S3")
    assert s3_bucket.server.endpoint_url in tried[0]
    assert all("cannot reach S3" in m for m in messages)
    assert len(sleeps) == 3
    assert counter.count() == 4  # one request per attempt: botocore itself never retries
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (0.5, 1.0, 2.0), strict=True))
    assert ledger.rows == {}
    assert f"{len(tasks)} failed" in down.summary()

    s3_bucket.server.start()
    up = upload_all(client, s3_bucket.name, tasks, ledger, workers=2,
                    multipart_threshold_bytes=16 * MIB, sleep=no_sleep)
    assert up.ok, up.summary()
    assert s3_bucket.keys() == sorted(t.key for t in tasks)


def test_a_missing_or_changed_file_fails_that_key_only(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    tasks = session_files(tmp_path, count=1)
    gone, changed = tasks[3], tasks[4]
    gone.path.unlink()
    changed.path.write_bytes(b"shorter")
    client = make_client(s3_bucket.s3_config())
    report = upload_all(client, s3_bucket.name, tasks, MemoryLedger(), workers=2,
                        multipart_threshold_bytes=16 * MIB, sleep=no_sleep)
    assert set(report.failed) == {gone.key, changed.key}
    assert "cannot read" in report.failed[gone.key]
    assert "changed since" in report.failed[changed.key]
    assert len(report.uploaded) == len(tasks) - 2


def test_same_key_twice_in_one_batch_is_refused(tmp_path: Path) -> None:
    path = write_file(tmp_path / "a.jpg", 10)
    task = UploadTask.for_file("k/a.jpg", path)
    with pytest.raises(ValueError, match="twice"):
        upload_all(None, "b", [task, task], MemoryLedger(), workers=1,
                   multipart_threshold_bytes=MIB)


# ------------------------------------------------------------------ pure pieces


@pytest.mark.parametrize(("key", "ctype", "cache"), [
    (SESSION + "index.html", "text/html; charset=utf-8", NO_CACHE),
    (SESSION + "progress.json", "application/json", NO_CACHE),
    (SESSION + "share.zip", "application/zip", IMMUTABLE),
    (SESSION + "thumbs/IMG_0001.JPG", "image/jpeg", IMMUTABLE),
    (SESSION + "share/IMG_0001.jpeg", "image/jpeg", IMMUTABLE),
    (SESSION + "share/MVI_0001.MP4", "video/mp4", IMMUTABLE),
    (SESSION + "share/clip.mov", "video/quicktime", IMMUTABLE),
    (SESSION + "assets/gallery.css", "text/css; charset=utf-8", IMMUTABLE),
    ("L/ABCDEFGHIJKLMNOPQRSTUVWXYZ", "text/html; charset=utf-8", NO_CACHE),
    (SESSION + "notes", "application/octet-stream", IMMUTABLE),
])
def test_content_type_and_cache_control(key: str, ctype: str, cache: str) -> None:
    assert content_type_for(key) == ctype
    assert cache_control_for(key) == cache


def test_backoff_is_full_jitter_and_capped() -> None:
    assert [backoff_delay(a, base_s=0.5, cap_s=4, rand=lambda: 1.0) for a in range(6)] == [
        0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_delay(3, base_s=0.5, cap_s=4, rand=lambda: 0.0) == 0.0


def test_part_size_respects_s3_limits() -> None:
    assert part_size(11 * MIB) == 8 * MIB
    assert part_size(1, preferred=1) == 5 * MIB
    huge = 200_000 * MIB
    assert -(-huge // part_size(huge)) <= 10_000


def _client_error(status: int, code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(("exc", "retryable", "down"), [
    (_client_error(503, "SlowDown"), True, False),
    (_client_error(500, "InternalError"), True, False),
    (_client_error(429, "TooManyRequests"), True, False),
    (_client_error(400, "RequestTimeout"), True, False),
    (_client_error(403, "AccessDenied"), False, False),
    (_client_error(403, "RequestTimeTooSkewed"), False, False),
    (_client_error(404, "NoSuchBucket"), False, False),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True, True),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True, True),
    (FileNotFoundError(2, "No such file"), False, False),
])
def test_which_errors_are_retried(exc: BaseException, retryable: bool, down: bool) -> None:
    got_retryable, got_down, message = classify_error(exc)
    assert (got_retryable, got_down) == (retryable, down)
    assert message


def test_parts_go_out_together_and_their_memory_stays_bounded(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """A large file's parts are sent several at a time, and all files' parts together
    never exceed max(upload workers, PARTS_AT_ONCE) in flight: each holds a part-sized
    buffer, and a Pi has little memory to spare."""
    import threading

    files = [write_file(tmp_path / f"MVI_000{i}.MOV", 2 * 8 * MIB + 1, seed=30 + i)
             for i in range(3)]
    client = make_client(s3_bucket.s3_config())
    lock, in_flight, most = threading.Lock(), [0], [0]

    def started(**_: object) -> None:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])

    def ended(**_: object) -> None:
        with lock:
            in_flight[0] -= 1

    client.meta.events.register("before-call.s3.UploadPart", started)
    client.meta.events.register("after-call.s3.UploadPart", ended)
    tasks = [UploadTask.for_file(f"originals/{f.name}", f) for f in files]
    report = upload_all(client, s3_bucket.name, tasks, MemoryLedger(), workers=3,
                        multipart_threshold_bytes=5 * MIB)
    assert report.ok, report.summary()
    assert 1 < most[0] <= max(3, PARTS_AT_ONCE), most[0]
    for task, path in zip(tasks, files, strict=True):
        body = client.get_object(Bucket=s3_bucket.name, Key=task.key)["Body"].read()
        assert body == path.read_bytes()
