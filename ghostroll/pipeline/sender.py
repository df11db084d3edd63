"""The stream's uploads in a process of their own. boto3 spends about a millisecond of
Python per request; ~2000 small objects in the card process hold the GIL the copy needs
between its reads, fsyncs and commits, so the card phase of many small pictures took
twice as long beside the uploads. The child only sends: the parent keeps the upload
ledger (and every database write), checks what is already sent, passes the `upload`
fault point once per object as `upload_all` would, and records what the child sent."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ghostroll import faults
from ghostroll.config.sections import S3Config
from ghostroll.publish.upload import MemoryLedger, UploadLedger, UploadReport, UploadTask

_client: Any = None  # the child's one S3 client
PR_SET_PDEATHSIG = 1


def _start(s3: S3Config, parent: int) -> None:
    """In the child: it dies with its parent (a killed card run must leave no process
    behind holding its output open), and the parent passes the fault points."""
    global _client
    _die_with(parent)
    os.environ.pop(faults.FAULT_ENV, None)
    os.environ.pop(faults.DELAY_ENV, None)
    faults.reload()
    from ghostroll.publish.s3client import make_client
    _client = make_client(s3)


def _die_with(parent: int) -> None:
    """PR_SET_PDEATHSIG: SIGKILL when the thread that started this process ends (the
    uploader thread, which shuts this process down before it ends)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's shutdown still ends it
        pass
    if os.getppid() != parent:  # the parent died before the call above
        os._exit(1)


def _ready() -> None:
    """Nothing: submitted at once so the child imports boto3 before the first round."""


def _send(bucket: str, tasks: list[UploadTask], workers: int,
          threshold: int) -> tuple[UploadReport, list[tuple[str, str, int, str]]]:
    from ghostroll.publish.upload import upload_all

    ledger = MemoryLedger()
    report = upload_all(_client, bucket, tasks, ledger, workers=workers,
                        multipart_threshold_bytes=threshold)
    return report, [(key, *row) for key, row in ledger.rows.items()]


class UploadProcess:
    """`upload_all` with the requests sent by a child process (spawned: the parent has
    threads). A child that dies raises `BrokenProcessPool` from `upload_all`."""

    def __init__(self, s3: S3Config) -> None:
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start, initargs=(s3, os.getpid()))
        self.pool.submit(_ready)

    def upload_all(self, bucket: str, tasks: list[UploadTask], ledger: UploadLedger, *,
                   workers: int, multipart_threshold_bytes: int) -> UploadReport:
        """What `publish.upload.upload_all` does, with the same report; each success is
        in `ledger` before this returns."""
        report, send = UploadReport(), []
        for task in tasks:
            if ledger.uploaded_sha(task.key) == task.sha256:
                report.skipped.append(task.key)
                continue
            try:
                faults.fault("upload")
            except OSError as exc:
                report.failed[task.key] = f"{type(exc).__name__}: {exc}"
                continue
            send.append(task)
        if send:
            sent, rows = self.pool.submit(_send, bucket, send, workers,
                                          multipart_threshold_bytes).result()
            for row in rows:
                ledger.record_upload(*row)
            report.uploaded += sent.uploaded
            report.failed.update(sent.failed)
            report.bytes_sent += sent.bytes_sent
        return report

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
