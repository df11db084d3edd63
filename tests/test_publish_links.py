"""Links that keep working: the share link shown during the copy is the one that works
after publishing (also with short presign expiries), renewing a link keeps its short
link, and a bucket change republishes everything."""

from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.job import run_job
from ghostroll.publish import links, publisher
from ghostroll.publish.s3client import make_client
from ghostroll.storage.db import Database
from ghostroll.storage.session import SessionLayout
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket, unsigned_get

REPO = Path(__file__).resolve().parents[1]


def follow_short_link(url: str) -> str:
    """The presigned gallery URL a short-link page forwards to (as a phone follows it)."""
    status, body = unsigned_get(url)
    assert status == 200, f"short link {url} answered {status}"
    found = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', body.decode())
    assert found, body[:200]
    return html.unescape(found.group(1))


def gallery_works(url: str, short: bool) -> bool:
    target = follow_short_link(url) if short else url
    status, body = unsigned_get(target)
    return status == 200 and b'class="tile"' in body


@pytest.mark.parametrize("short", [True, False], ids=["short-link", "presigned"])
def test_link_shown_during_the_copy_works_after_publishing_with_a_short_expiry(
        tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch,
        short: bool) -> None:
    if short:
        s3_bucket.client.put_bucket_policy(
            Bucket=s3_bucket.name, Policy=json.dumps(links.short_link_policy(s3_bucket.name)))
    cfg = make_config(tmp_path, clock_trusted=True, presign_expiry_seconds=600,
                      short_links="on" if short else "off", **s3_bucket.config_flags())
    shown: list[publisher.ShareLink] = []
    real = publisher.ensure_link

    def recording(*args: object, **kwargs: object) -> publisher.ShareLink:
        link = real(*args, **kwargs)  # type: ignore[arg-type]
        shown.append(link)
        return link

    monkeypatch.setattr(publisher, "ensure_link", recording)
    job = run_job(make_demo_card(tmp_path / "card", photos=3), cfg, out=io.StringIO())
    assert job.exit_code == 0 and job.ingest.session is not None
    session = job.ingest.session
    early = shown[0]  # signed during the card phase, before any upload
    assert {link.url for link in shown} == {early.url}, "the link was replaced"
    assert (session.path / "share.txt").read_text().strip() == early.url
    assert gallery_works(early.url, short)


def test_renewing_a_dying_link_keeps_its_short_link(tmp_path: Path,
                                                    s3_bucket: S3Bucket) -> None:
    s3_bucket.client.put_bucket_policy(
        Bucket=s3_bucket.name, Policy=json.dumps(links.short_link_policy(s3_bucket.name)))
    cfg = make_config(tmp_path, clock_trusted=True, short_links="on",
                      **s3_bucket.config_flags())
    job = run_job(make_demo_card(tmp_path / "card", photos=2), cfg, out=io.StringIO())
    assert job.exit_code == 0 and job.ingest.session is not None
    layout = SessionLayout(job.ingest.session.path)
    first = publisher.read_link(layout)
    assert first is not None and first.short_key
    # the saved link has ten minutes left: handed out again, it would die soon
    data = json.loads((layout.derived / "link.json").read_text())
    data["expires"] = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    (layout.derived / "link.json").write_text(json.dumps(data))
    with Database(cfg.storage.db_path) as db:
        session = db.session(layout.id)
        assert session is not None
        client = make_client(cfg.s3)
        renewed = publisher.ensure_link(cfg, db, client, session)
        assert renewed.expires > datetime.now(UTC) + timedelta(days=6)
        assert renewed.short_key == first.short_key and renewed.url == first.url
        db.enqueue_publish(session.id)
        assert publisher.drain(cfg, db, client).published == [session.id]
    assert follow_short_link(first.url) == renewed.index_url  # same QR, new signature
    assert gallery_works(first.url, short=True)


def test_margin_before_renewal_scales_with_short_expiries() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def link(minutes_left: float) -> publisher.ShareLink:
        return publisher.ShareLink("u", "u", now + timedelta(minutes=minutes_left))

    assert publisher.still_good(link(61), 604800, now)
    assert not publisher.still_good(link(59), 604800, now)
    assert publisher.still_good(link(59), 3600, now)  # a fresh one-hour link is good
    assert not publisher.still_good(link(29), 3600, now)
    assert publisher.still_good(link(0.6), 60, now)


def asset_urls(index_html: str) -> set[str]:
    """Every presigned URL in a gallery page (attributes and the embedded JSON)."""
    text = html.unescape(index_html).replace("\\/", "/").replace("\\u0026", "&")
    return set(re.findall(r"https?://[^\s\"'<>]+?X-Amz-Signature=[0-9a-f]{64}", text))


def test_reshare_to_another_bucket_uploads_everything_there(tmp_path: Path,
                                                            s3_bucket: S3Bucket) -> None:
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    job = run_job(make_demo_card(tmp_path / "card", photos=3), cfg, out=io.StringIO())
    assert job.exit_code == 0 and job.ingest.session is not None
    session = job.ingest.session
    prefix = publisher.prefix_for(cfg, session.id)
    first = s3_bucket.keys(prefix)
    assert f"{prefix}index.html" in first and len(first) > 5
    other = f"{s3_bucket.name}-other"
    s3_bucket.server.create_bucket(other)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
           "GHOSTROLL_BASE_DIR": str(cfg.storage.base_dir),
           "GHOSTROLL_DB_PATH": str(cfg.storage.db_path), "GHOSTROLL_CLOCK_TRUSTED": "1",
           **{f"GHOSTROLL_{k.upper()}": v for k, v in s3_bucket.config_flags().items()},
           "GHOSTROLL_S3_BUCKET": other}
    env.pop("GHOSTROLL_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "ghostroll", "reshare", "1"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    paginator = s3_bucket.client.get_paginator("list_objects_v2")
    second = sorted(o["Key"] for page in paginator.paginate(Bucket=other, Prefix=prefix)
                    for o in page.get("Contents", []))
    assert second == first, "the other bucket did not get every object"
    share = (session.path / "share.txt").read_text().strip()
    assert f"/{other}/" in share
    status, body = unsigned_get(share)
    assert status == 200 and b'class="tile"' in body
    urls = asset_urls(body.decode())
    assert len(urls) >= 2 * 3  # thumbnail and share image per photo, at least
    for url in urls:
        assert f"/{other}/" in url, url
        assert unsigned_get(url)[0] == 200, url


def test_short_link_answer_is_asked_again_and_refreshed_by_doctor(
        tmp_path: Path, s3_bucket: S3Bucket) -> None:
    from ghostroll.commands import doctor
    from ghostroll.publish import short_memo

    cfg = make_config(tmp_path, clock_trusted=True, short_links="auto",
                      **s3_bucket.config_flags())
    client = make_client(cfg.s3)
    assert publisher.wants_short_links(cfg, client) is False  # no policy yet, remembered
    s3_bucket.client.put_bucket_policy(
        Bucket=s3_bucket.name, Policy=json.dumps(links.short_link_policy(s3_bucket.name)))
    assert publisher.wants_short_links(cfg, client) is False  # within the hour: the memo
    checks = {c.name: c for c in doctor.check_s3(cfg)}
    assert checks["short links"].status == "ok"
    assert publisher.wants_short_links(cfg, client) is True  # doctor refreshed it

    now = datetime(2026, 1, 1, tzinfo=UTC)
    entry = {"answer": False, "checked": (now - timedelta(minutes=59)).isoformat()}
    assert short_memo.fresh_answer(entry, now) is False
    assert short_memo.fresh_answer(entry, now + timedelta(minutes=2)) is None
    entry = {"answer": True, "checked": (now - timedelta(hours=23)).isoformat()}
    assert short_memo.fresh_answer(entry, now) is True
    assert short_memo.fresh_answer(entry, now + timedelta(hours=2)) is None
    assert short_memo.fresh_answer(False, now) is None  # the old forever format
