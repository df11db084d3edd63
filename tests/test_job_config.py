"""Bad settings never reach the card phase, and the card phase never depends on S3:
refused at load through the real CLI (exit 2, nothing written), and an early share link
that fails in any way leaves the copy running to the end."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ghostroll import faults
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.job import run_job
from ghostroll.publish import publisher
from ghostroll.storage.db import Database
from tests.support.ingest import make_config, originals
from tests.support.s3 import S3Bucket

REPO = Path(__file__).resolve().parents[1]


def ghostroll(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI with HOME in `tmp` (no user config) and sessions/db under it."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("AWS_") and k != "GHOSTROLL_CONFIG"}
    full.update({"PYTHONPATH": str(REPO), "HOME": str(tmp / "home"),
                 "GHOSTROLL_BASE_DIR": str(tmp / "sessions"),
                 "GHOSTROLL_DB_PATH": str(tmp / "state" / "ghostroll.db"), **env})
    return subprocess.run([sys.executable, "-m", "ghostroll", *args], env=full, cwd=tmp,
                          capture_output=True, text=True, timeout=120)


BUCKET = {"GHOSTROLL_S3_BUCKET": "photos", "GHOSTROLL_CLOCK_TRUSTED": "1"}


@pytest.mark.parametrize(("env", "key"), [
    ({**BUCKET, "GHOSTROLL_S3_ENDPOINT_URL": "not a url"}, "s3_endpoint_url"),
    ({**BUCKET, "GHOSTROLL_S3_REGION": "us east/1"}, "s3_region"),
    ({**BUCKET, "GHOSTROLL_S3_BUCKET": "a/b"}, "s3_bucket"),
    ({**BUCKET, "GHOSTROLL_S3_PREFIX_ROOT": "L/"}, "s3_prefix_root"),
    ({**BUCKET, "AWS_ENDPOINT_URL": "not a url"}, "AWS_ENDPOINT_URL"),
    ({**BUCKET, "AWS_REGION": "us east/1"}, "AWS_REGION"),
    ({"GHOSTROLL_POLL_SECONDS": "nan"}, "poll_seconds"),
    ({"GHOSTROLL_BASE_DIR": ""}, "base_dir"),
    ({"GHOSTROLL_DB_PATH": ""}, "db_path"),
])
def test_bad_settings_stop_run_before_anything_is_written(tmp_path: Path, env: dict,
                                                          key: str) -> None:
    card = make_demo_card(tmp_path / "card", photos=2)
    before = sorted(p.relative_to(card) for p in card.rglob("*"))
    result = ghostroll(tmp_path, "run", str(card), **env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"configuration error: {key} = " in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sessions").exists(), "a session folder was written"
    assert not (tmp_path / "state").exists(), "the database was created"
    assert sorted(p.relative_to(card) for p in card.rglob("*")) == before


def test_nan_poll_interval_stops_watch_with_a_message(tmp_path: Path) -> None:
    result = ghostroll(tmp_path, "watch", "--once", GHOSTROLL_POLL_SECONDS="nan")
    assert result.returncode == 2
    assert "poll_seconds = 'nan'" in result.stderr and "Traceback" not in result.stderr


def test_early_link_failing_mid_copy_never_stops_the_copy(
        tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    card = make_demo_card(tmp_path / "card", photos=6)
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    real = publisher.ensure_link
    raised = threading.Event()
    stored_when_raised: list[int] = []

    def broken_once(*args: object, **kwargs: object) -> publisher.ShareLink:
        if raised.is_set():
            return real(*args, **kwargs)  # type: ignore[arg-type]
        stored_when_raised.append(len(originals(cfg)))
        raised.set()
        raise RuntimeError("unexpected failure while signing the early link")

    def copy_chunk_hook(point: str, units: float = 1.0) -> None:
        # Once the session exists, the copy waits for the link to have failed: the
        # failure lands mid-copy, deterministically.
        if point == "copy.chunk" and any(cfg.storage.base_dir.glob("shoot-*")):
            raised.wait(60)

    monkeypatch.setattr(publisher, "ensure_link", broken_once)
    monkeypatch.setattr(faults, "delay", copy_chunk_hook)
    job = run_job(card, cfg, out=io.StringIO())
    assert job.ingest.complete and job.ingest.failed == 0
    stored = originals(cfg)
    assert len(stored) == job.ingest.new >= 10  # every photo, the RAW pair, the video
    assert stored_when_raised and stored_when_raised[0] < len(stored), \
        "the early link did not fail during the copy"
    for rel, copies in stored.items():
        assert [p.read_bytes() for p in copies] == [(card / rel).read_bytes()], rel
    session = job.ingest.session
    assert session is not None
    log_text = (session.path / "ghostroll.log").read_text()
    assert "share link for" in log_text and "RuntimeError" in log_text
    # the publisher made the link later, and the job is complete
    assert job.exit_code == 0 and job.publish is not None
    assert job.publish.published == [session.id]
    assert (session.path / "share.txt").exists()
    with Database(cfg.storage.db_path) as db:
        assert db.session(session.id).state == "published"  # type: ignore[union-attr]


def test_copy_never_waits_for_the_early_link(tmp_path: Path, s3_bucket: S3Bucket,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A link step that hangs (a bucket that accepts the connection and never answers)
    holds nothing up: it sees the card phase finish while it is still hanging."""
    card = make_demo_card(tmp_path / "card", photos=4)
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    real = publisher.ensure_link
    saw: list[str] = []

    def hanging(cfg_: object, db: Database, client: object, session: object,
                **kwargs: object) -> publisher.ShareLink:
        with Database(cfg.storage.db_path) as own:
            for _ in range(600):  # at most 60 s: a copy waiting for us would never finish
                state = own.session(session.id).state  # type: ignore[attr-defined, union-attr]
                if state != "copying":
                    break
                threading.Event().wait(0.1)
        saw.append(state)
        return real(cfg_, db, client, session, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(publisher, "ensure_link", hanging)
    job = run_job(card, cfg, out=io.StringIO())
    assert saw[0] == "copied", "the card phase waited for the link"
    assert job.exit_code == 0 and job.ingest.complete
    assert job.publish is not None and len(job.publish.published) == 1
