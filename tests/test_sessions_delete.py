"""`ghostroll sessions delete`: originals and derivatives gone, unpublished, and the
contents no copy holds any more forgotten, so the card is stored again next time."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.job import run_job
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database
from tests.support import s3 as s3_support
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket

REPO = Path(__file__).resolve().parents[1]
s3_server = s3_support.s3_server
s3_bucket = s3_support.s3_bucket


def ghostroll(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {"GHOSTROLL_BASE_DIR": str(tmp / "sessions"),
            "GHOSTROLL_DB_PATH": str(tmp / "ghostroll.db"), "HOME": str(tmp),
            "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "ghostroll", *args], capture_output=True,
                          text=True, env=full, cwd=REPO, timeout=180, stdin=subprocess.DEVNULL)


def run(tmp: Path, card: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return ghostroll(tmp, "run", str(card), "--volume-id", "fat:CAFE-0002", **env)


@pytest.fixture
def archive() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="gr-archive-", dir="/dev/shm"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_delete_asks_then_forgets_so_the_card_is_stored_again(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=3)
    first = run(tmp_path, card)
    assert first.returncode == 0, first.stderr
    with Database(tmp_path / "ghostroll.db") as db:
        session = db.sessions()[0]
        contents = len(db.contents())
    unasked = ghostroll(tmp_path, "sessions", "delete", "1")
    assert unasked.returncode == 2 and "--yes" in unasked.stderr
    assert session.path.is_dir()
    deleted = ghostroll(tmp_path, "sessions", "delete", "1", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert f"{contents} photo/video content(s) will be held nowhere" in deleted.stdout
    assert not session.path.exists()
    assert not list((tmp_path / "sessions").glob(".deleting-*"))
    with Database(tmp_path / "ghostroll.db") as db:
        assert db.sessions() == [] and db.contents() == [] and db.copies() == []
        assert db.seen_on_volume("fat:CAFE-0002") == {}
    assert ghostroll(tmp_path, "verify").returncode == 0
    again = run(tmp_path, card)
    assert f"{contents} new" in again.stdout, again.stdout
    with Database(tmp_path / "ghostroll.db") as db:
        assert len(db.contents()) == contents and len(db.sessions()) == 1
    assert ghostroll(tmp_path, "verify", "--read-data").returncode == 0


def test_delete_keeps_what_the_archive_disk_holds(tmp_path: Path, archive: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=2)
    assert run(tmp_path, card, GHOSTROLL_ARCHIVE_DIR=str(archive)).returncode == 0
    deleted = ghostroll(tmp_path, "sessions", "delete", "1", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "0 photo/video content(s) will be held nowhere" in deleted.stdout
    assert "stay on the archive disk" in deleted.stdout
    with Database(tmp_path / "ghostroll.db") as db:
        held = db.copies()
        assert held and {c.location for c in held} == {dbm.ARCHIVE_DISK}
    assert ghostroll(tmp_path, "verify", "--read-data").returncode == 0
    again = run(tmp_path, card, GHOSTROLL_ARCHIVE_DIR=str(archive))
    assert "0 new" in again.stdout
    assert again.stdout.rstrip().endswith("1 copy · safe to remove")


def test_delete_unpublishes(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    job = run_job(make_demo_card(tmp_path / "card", photos=2), cfg, out=io.StringIO())
    assert job.ingest.session is not None
    sid = job.ingest.session.id
    assert s3_bucket.keys(f"sessions/{sid}/")
    env = {"GHOSTROLL_CLOCK_TRUSTED": "1",
           **{f"GHOSTROLL_{k.upper()}": v for k, v in s3_bucket.config_flags().items()}}
    env["GHOSTROLL_BASE_DIR"] = str(cfg.storage.base_dir)
    env["GHOSTROLL_DB_PATH"] = str(cfg.storage.db_path)
    deleted = ghostroll(tmp_path, "sessions", "delete", sid, "--yes", **env)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "unpublish" in deleted.stdout
    assert s3_bucket.keys(f"sessions/{sid}/") == []
    with Database(cfg.storage.db_path) as db:
        ledger = db.upload_ledger(cfg.s3.endpoint_id, cfg.s3.s3_bucket)
        assert ledger.keys(f"sessions/{sid}/") == [] and db.publish_entry(sid) is None
    assert os.path.exists(cfg.storage.db_path)
