"""The embedded SeaweedFS: loopback only, credentials always, nothing leaks in repr."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ghostroll.devtools.s3local import LocalS3
from ghostroll.errors import PublishError
from tests.support import s3 as s3_support
from tests.support.s3 import S3Bucket, unsigned_get

s3_server = s3_support.s3_server
s3_bucket = s3_support.s3_bucket

pytestmark = pytest.mark.s3


def listening_addresses(pid: int) -> set[str]:
    """Local addresses of the TCP sockets `pid` listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(fields[1].rsplit(":", 1)[0])
    return found


def test_listens_on_loopback_only_and_demands_credentials(s3_bucket: S3Bucket) -> None:
    server = s3_bucket.server
    assert server.pid is not None
    addresses = listening_addresses(server.pid)
    assert addresses == {"0100007F"}  # 127.0.0.1, little-endian hex; nothing on 0.0.0.0
    assert server.endpoint_url.startswith("http://127.0.0.1:")
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="secret.jpg", Body=b"x")
    assert unsigned_get(s3_bucket.url("secret.jpg"))[0] == 403
    assert unsigned_get(f"{server.endpoint_url}/")[0] == 403
    assert server.secret_key not in repr(server)
    assert server.secret_key not in server.log_path.read_text(errors="replace")


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    server = LocalS3(tmp_path / "data", weed=tmp_path / "no-such-weed")
    with pytest.raises(PublishError, match="missing or not executable"):
        server.start()
    assert not server.running


def test_one_server_holds_many_buckets(tmp_path: Path) -> None:
    """A test session creates a bucket per test; with weed's default volume limit (free
    disk / 128 MB) a fuller disk ran out after ~57 buckets and every later PUT was a 500."""
    with LocalS3(tmp_path / "s3", bucket="first") as server:
        client = server.client()
        for n in range(90):
            name = f"many-{n}"
            server.create_bucket(name)
            client.put_object(Bucket=name, Key="k", Body=b"x")
            assert client.get_object(Bucket=name, Key="k")["Body"].read() == b"x"
