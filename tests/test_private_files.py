"""Files holding working share links are private: the database, share.txt,
share-qr.png, link.json and status.json are 0600 (0640 when the process runs as the
appliance's ghostroll group), whatever the umask."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from ghostroll.appliance.machine import State
from ghostroll.appliance.simulate import simulate
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.job import run_job
from ghostroll.publish.links import short_link_policy
from ghostroll.storage.db import Database
from ghostroll.storage.session import private_mode
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, as a careless service manager might leave."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def test_private_mode_is_0600_or_0640_for_the_appliance_group() -> None:
    assert private_mode("ghostroll") == 0o640
    assert private_mode("root") == private_mode("staff") == private_mode("") == 0o600
    assert private_mode() in (0o600, 0o640)


def test_link_files_and_database_are_private_after_publishing(
        tmp_path: Path, s3_bucket: S3Bucket, open_umask: None) -> None:
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    job = run_job(make_demo_card(tmp_path / "card", photos=2), cfg, out=io.StringIO())
    assert job.exit_code == 0 and job.ingest.session is not None
    session = job.ingest.session.path
    want = private_mode()
    db = cfg.storage.db_path
    with Database(db) as open_db:  # -wal and -shm exist while it is open
        open_db.enqueue_publish(job.ingest.session.id)
        sidecars = [db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        for path in (db, *sidecars, session / "share.txt", session / "share-qr.png",
                     session / "derived" / "link.json"):
            assert path.exists(), path
            assert mode(path) == want, f"{path.name} is {oct(mode(path))}, want {oct(want)}"
    share = (session / "share.txt").read_text().strip()
    qr = Image.open(session / "share-qr.png").convert("L")
    assert zxingcpp.read_barcodes(qr)[0].text == share


def test_a_database_made_world_readable_earlier_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "ghostroll.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o644)
    with Database(path) as db:
        assert db.integrity_check() == "ok"
    assert mode(path) == 0o644 & private_mode()


def test_status_json_and_its_mirror_are_private(tmp_path: Path, s3_bucket: S3Bucket,
                                                open_umask: None) -> None:
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.name,
                                       Policy=json.dumps(short_link_policy(s3_bucket.name)))
    cfg = make_config(tmp_path, clock_trusted=True, runtime_dir=tmp_path / "run",
                      **s3_bucket.config_flags())
    model = simulate(cfg, make_demo_card(tmp_path / "card", photos=2), tmp_path / "frames",
                     "waveshare-2in13-v4", [])
    assert model.state == State.DONE and model.link
    mirror = cfg.storage.base_dir / "status.json"
    assert json.loads(mirror.read_text())["url"] == model.link
    assert mode(mirror) == private_mode()
