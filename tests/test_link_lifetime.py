"""Links that live as long as asked (link_days) and die when told (unshare): the same
short link keeps working after its signature ran out and was re-signed, a link past its
end stays dead, and `ghostroll unshare` kills it at once. Checked in Debian's chromium
against SeaweedFS, as a recipient's phone would follow the link."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghostroll.appliance.idle_facts import read_idle_facts
from ghostroll.config import Config
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.job import run_job
from ghostroll.publish import links, publisher
from ghostroll.publish.lifetime import link_status, resign_due
from ghostroll.publish.s3client import make_client
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database
from ghostroll.storage.session import SessionLayout
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket, unsigned_get

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def short_link_config(tmp_path: Path, s3_bucket: S3Bucket) -> Config:
    s3_bucket.client.put_bucket_policy(
        Bucket=s3_bucket.name, Policy=json.dumps(links.short_link_policy(s3_bucket.name)))
    return make_config(tmp_path, clock_trusted=True, short_links="on", link_days=30,
                       **s3_bucket.config_flags())


def published(tmp_path: Path, cfg: Config) -> SessionLayout:
    job = run_job(make_demo_card(tmp_path / "card", photos=3), cfg, out=io.StringIO())
    assert job.exit_code == 0 and job.ingest.session is not None
    return SessionLayout(job.ingest.session.path)


def with_expiry(cfg: Config, seconds: int) -> Config:
    return replace(cfg, s3=replace(cfg.s3, presign_expiry_seconds=seconds))


def open_in_browser(browser: Any, url: str) -> tuple[int, int]:
    """Follow a short link in chromium at a phone viewport: (status of the gallery
    page it forwards to, or of the short link itself when that fails; tiles shown)."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        with page.expect_response(lambda r: "index.html" in r.url or r.status >= 400,
                                  timeout=20_000) as answer:
            page.goto(url)
        status = answer.value.status
        tiles = 0
        if status == 200:
            page.wait_for_selector(".tile img", timeout=20_000)
            page.wait_for_function("[...document.querySelectorAll('.tile img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)",
                                   timeout=20_000)
            tiles = page.locator(".tile").count()
        return status, tiles
    finally:
        page.close()


def cli(tmp_path: Path, cfg: Config, s3_bucket: S3Bucket,
        *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
           "GHOSTROLL_BASE_DIR": str(cfg.storage.base_dir),
           "GHOSTROLL_DB_PATH": str(cfg.storage.db_path), "GHOSTROLL_CLOCK_TRUSTED": "1",
           "GHOSTROLL_SHORT_LINKS": "on",
           **{f"GHOSTROLL_{k.upper()}": v for k, v in s3_bucket.config_flags().items()}}
    env.pop("GHOSTROLL_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "ghostroll", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180)


def test_same_short_link_works_after_resign_and_dies_on_unshare(
        tmp_path: Path, s3_bucket: S3Bucket, browser: Any) -> None:
    cfg = short_link_config(tmp_path, s3_bucket)
    layout = published(tmp_path, cfg)
    first = publisher.read_link(layout)
    assert first is not None and first.short_key and first.ends is not None
    assert first.ends - datetime.now(UTC) > timedelta(days=29)
    shown = open_in_browser(browser, first.url)
    assert shown[0] == 200 and shown[1] >= 3

    # The signature runs out while the device is offline (a 2-second test expiry)...
    short_lived = with_expiry(cfg, 2)
    with Database(cfg.storage.db_path) as db:
        session = db.session(layout.id)
        assert session is not None
        client = make_client(cfg.s3)
        publisher.ensure_link(short_lived, db, client, session, resign=True)
        publisher.publish_session(short_lived, db, client, session)
    time.sleep(3)
    lapsed = publisher.read_link(layout)
    assert lapsed is not None and lapsed.url == first.url
    assert open_in_browser(browser, first.url)[0] == 403
    assert "dead since" in link_status(lapsed, datetime.now(UTC))
    assert read_idle_facts(cfg.storage.db_path).problem == "link dead until online"

    # ...and once it is back, the next run re-signs: the same link works again.
    with Database(cfg.storage.db_path) as db:
        result = publisher.drain(cfg, db, make_client(cfg.s3))
    assert result.resigned == [layout.id] and not result.failed
    renewed = publisher.read_link(layout)
    assert renewed is not None and renewed.url == first.url and renewed.ends == first.ends
    assert renewed.index_url != lapsed.index_url
    assert (layout.root / "share.txt").read_text().strip() == first.url
    assert open_in_browser(browser, first.url) == shown

    prefix = publisher.prefix_for(cfg, layout.id)
    done = cli(tmp_path, cfg, s3_bucket, "unshare", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no longer opens" in done.stdout
    assert open_in_browser(browser, first.url)[0] in (403, 404)
    assert unsigned_get(renewed.index_url)[0] in (403, 404)
    assert f"{prefix}index.html" not in s3_bucket.keys(prefix)
    assert any(k.startswith(f"{prefix}share/") for k in s3_bucket.keys(prefix))
    listed = cli(tmp_path, cfg, s3_bucket, "sessions")
    assert "unshared" in listed.stdout, listed.stdout
    with Database(cfg.storage.db_path) as db:
        assert publisher.drain(cfg, db, make_client(cfg.s3)).published == []  # stays off
        session = db.session(layout.id)
        assert session is not None and session.state == dbm.PROCESSED

    gone = cli(tmp_path, cfg, s3_bucket, "unshare", "1", "--delete")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert s3_bucket.keys(prefix) == []

    again = cli(tmp_path, cfg, s3_bucket, "publish", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    shared = publisher.read_link(layout)
    assert shared is not None and shared.url != first.url  # a new link, the old one dead
    assert open_in_browser(browser, shared.url) == shown
    assert open_in_browser(browser, first.url)[0] in (403, 404)


def test_past_link_days_the_link_is_not_resigned(
        tmp_path: Path, s3_bucket: S3Bucket, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ghostroll")  # as the CLI sets it
    cfg = short_link_config(tmp_path, s3_bucket)
    layout = published(tmp_path, with_expiry(cfg, 2))
    session_log = layout.log.read_text()  # every phase, not only the card's
    for phase in ("card phase complete", "processing session", f"{layout.id} published"):
        assert phase in session_log, phase
    data = json.loads((layout.derived / "link.json").read_text())
    data["ends"] = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    (layout.derived / "link.json").write_text(json.dumps(data))
    time.sleep(3)
    with Database(cfg.storage.db_path) as db:
        assert publisher.drain(cfg, db, make_client(cfg.s3)).resigned == []
    link = publisher.read_link(layout)
    assert link is not None
    assert link_status(link, datetime.now(UTC)).startswith("expired ")
    assert unsigned_get(link.url)[0] == 200  # the short page still forwards...
    assert unsigned_get(link.index_url)[0] == 403  # ...to a gallery that is gone
    assert read_idle_facts(cfg.storage.db_path).problem == "last link expired"


def test_a_signature_never_outlives_the_link(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    cfg = short_link_config(tmp_path, s3_bucket)
    ends = datetime.now(UTC) + timedelta(hours=2)
    link = publisher.make_link(cfg, make_client(cfg.s3), "s1", True, links.new_token(), ends)
    assert link.ends == ends and link.expires <= ends + timedelta(seconds=1)
    plain = publisher.make_link(cfg, make_client(cfg.s3), "s1", False)
    assert plain.ends is None  # dies with its signature: the 7-day cap


def test_when_a_link_is_resigned() -> None:
    week = 604_800

    def link(expires_in: timedelta, ends_in: timedelta | None,
             short: bool = True) -> publisher.ShareLink:
        return publisher.ShareLink("u", "i", NOW + expires_in, "L/X" if short else None,
                                   NOW + ends_in if ends_in is not None else None)

    assert not resign_due(link(timedelta(days=5), timedelta(days=30)), week, NOW)
    assert resign_due(link(timedelta(days=3), timedelta(days=30)), week, NOW)
    assert resign_due(link(-timedelta(days=2), timedelta(days=30)), week, NOW)  # offline
    assert not resign_due(link(timedelta(days=1), timedelta(days=1)), week, NOW)  # last one
    assert not resign_due(link(-timedelta(days=1), -timedelta(hours=1)), week, NOW)  # over
    assert not resign_due(link(timedelta(days=1), None, short=False), week, NOW)
    assert link_status(link(timedelta(days=5), timedelta(days=30)), NOW) == (
        "works until 2026-07-01 12:00 UTC (re-signed while online)")
    assert link_status(link(timedelta(days=5), None, short=False), NOW) == (
        "works until 2026-06-06 12:00 UTC")


def test_short_links_from_a_second_public_bucket(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    from ghostroll.commands import doctor

    public = f"{s3_bucket.name}-links"
    s3_bucket.server.create_bucket(public)
    s3_bucket.client.put_bucket_policy(Bucket=public, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{public}/*"}]}))
    cfg = make_config(tmp_path, clock_trusted=True, short_link_bucket=public,
                      **s3_bucket.config_flags())  # short_links = "auto", no policy on s3_bucket
    checks = {c.name: c for c in doctor.check_s3(cfg)}
    assert checks["short-link bucket"].status == "ok", checks["short-link bucket"]
    assert "short links" not in checks
    layout = published(tmp_path, cfg)
    link = publisher.read_link(layout)
    assert link is not None and link.short_key and f"/{public}/L/" in link.url
    status, page = unsigned_get(link.url)
    assert status == 200 and b"http-equiv" in page
    assert unsigned_get(link.index_url)[0] == 200
    listing = s3_bucket.client.list_objects_v2(Bucket=public)
    assert [o["Key"] for o in listing["Contents"]] == [link.short_key]  # only the page
    assert not s3_bucket.keys("L/")
    assert unsigned_get(s3_bucket.url(publisher.prefix_for(cfg, layout.id) + "index.html"))[0] \
        in (401, 403)  # the photos' bucket stays private
    with Database(cfg.storage.db_path) as db:
        session = db.session(layout.id)
        assert session is not None
        from ghostroll.publish.unshare import unshare
        unshare(cfg, db, make_client(cfg.s3), session)
    assert unsigned_get(link.url)[0] in (403, 404)
    assert "Contents" not in s3_bucket.client.list_objects_v2(Bucket=public)

    private = f"{s3_bucket.name}-closed"
    s3_bucket.server.create_bucket(private)
    closed = make_config(tmp_path, clock_trusted=True, short_link_bucket=private,
                         **s3_bucket.config_flags())
    check = {c.name: c for c in doctor.check_s3(closed)}["short-link bucket"]
    assert check.status == "fail" and "not public-read" in check.detail


def test_a_public_base_url_is_written_for_the_qr() -> None:
    token = "MZXW6YTBOI3DEMJQGQ2TSNJQGE"
    r2 = links.based_url("https://pub-0a1b2c.r2.dev/", links.short_link_key(token))
    assert r2.url == f"HTTPS://PUB-0A1B2C.R2.DEV/L/{token}" and r2.alphanumeric
    mixed = links.based_url("https://links.example.com/photos", links.short_link_key(token))
    assert mixed.url == f"https://links.example.com/photos/L/{token}"
    assert not mixed.alphanumeric and mixed.note


def test_the_idle_appliance_runs_background_work_to_resign_links(tmp_path: Path) -> None:
    import threading

    from ghostroll.appliance.service import RESIGN_CHECK_S, Devices, Service
    from ghostroll.devices.kits import load_kit

    marker = tmp_path / "work-runs"
    now = [0.0]
    cfg = make_config(tmp_path, runtime_dir=tmp_path / "run")
    service = Service(cfg, load_kit("waveshare-2in13-v4"), Devices(
        panel_submit=lambda *a: None, eject=lambda d: None, shutdown=lambda: None),
        clock=lambda: now[0],
        work_cmd=[sys.executable, "-c", f"open({str(marker)!r}, 'a').write('run\\n')"])

    def runs() -> int:
        return len(marker.read_text().splitlines()) if marker.exists() else 0

    def later() -> None:  # the first run (at start) is over: six hours pass
        now[0] = RESIGN_CHECK_S + 1

    timers = [threading.Timer(2.0, later),
              threading.Timer(60.0, service.stopping.set)]  # never hang the suite
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        service.run(until=lambda m: runs() >= 2)
    finally:
        for timer in timers:
            timer.cancel()
    assert runs() == 2  # at start, then once the check interval had passed
