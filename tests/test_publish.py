"""Publishing sessions to a real private bucket (SeaweedFS with credentials): the link,
privacy of every object, the browser view, and every fault the original lost photos to."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from ghostroll.devtools.synthetic import PhotoSpec, make_demo_card, make_jpeg
from ghostroll.exitcodes import ExitCode
from ghostroll.job import run_job
from ghostroll.publish import links
from ghostroll.publish.lock import PublishBusy, publish_lock
from ghostroll.publish.publisher import drain, prefix_for
from ghostroll.publish.s3client import make_client
from ghostroll.storage.db import Database
from tests.support.browser import artifact
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket, unsigned_get
from tests.support.shared_files import assert_only_kept_exif

REPO = Path(__file__).resolve().parents[1]


def card_with_gps(tmp: Path, photos: int = 4) -> Path:
    card = make_demo_card(tmp / "card", photos=photos)
    make_jpeg(card / "DCIM" / "100GHOST" / "GPS_0001.JPG",
              PhotoSpec(width=2400, height=1600, gps=True), seed=3)
    return card


def cfg_for(tmp: Path, bucket: S3Bucket, **extra: object):  # type: ignore[no-untyped-def]
    return make_config(tmp, clock_trusted=True, **bucket.config_flags(), **extra)


def jpeg_metadata_segments(data: bytes) -> list[int]:
    """APPn markers (Exif/XMP in APP1, IPTC in APP13...) before the image data; the
    entropy-coded data after SOS may hold any bytes, so it is not searched."""
    found, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan
            break
        if 0xE1 <= marker <= 0xEF:
            found.append(marker)
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return found


def test_publish_is_private_presigned_and_metadata_free(tmp_path: Path,
                                                        s3_bucket: S3Bucket) -> None:
    cfg = cfg_for(tmp_path, s3_bucket)
    job = run_job(card_with_gps(tmp_path), cfg, label="EOS", out=io.StringIO())
    assert job.exit_code == 0 and job.publish is not None and job.publish.published
    session = job.ingest.session
    assert session is not None
    prefix = prefix_for(cfg, session.id)
    keys = s3_bucket.keys(prefix)
    assert f"{prefix}index.html" in keys and f"{prefix}share.zip" in keys
    assert not any("/originals/" in k for k in keys)  # never, unless upload_originals
    index = unsigned_get(links.presign_get(s3_bucket.client, s3_bucket.name, prefix + "index.html",
                                           60))[1].decode()
    assert 'class="tile video"' in index and "originals/" not in index
    client = s3_bucket.client
    for key in keys:
        status, _ = unsigned_get(s3_bucket.url(key))
        assert status == 403, f"{key} is readable without a signature"
        url = links.presign_get(client, s3_bucket.name, key, 600)
        status, body = unsigned_get(url)
        assert status == 200
        if key.endswith(".jpg") and "/thumbs/" in key:
            assert not jpeg_metadata_segments(body)
            assert not Image.open(BytesIO(body)).getexif()
        elif key.endswith(".jpg"):  # share images keep the capture time, nothing else
            assert jpeg_metadata_segments(body) == [0xE1]
            assert_only_kept_exif(body, key)
    share = (session.path / "share.txt").read_text().strip()
    assert unsigned_get(share)[0] == 200
    qr = Image.open(session.path / "share-qr.png").convert("L")
    assert zxingcpp.read_barcodes(qr)[0].text == share
    progress = json.loads(unsigned_get(links.presign_get(client, s3_bucket.name,
                                                         prefix + "progress.json", 60))[1])
    assert progress["finished"] and progress["done"] == progress["total"] == 6
    with Database(cfg.storage.db_path) as db:
        assert db.session(session.id).state == "published"  # type: ignore[union-attr]
        assert db.publish_entry(session.id)["state"] == "published"


def test_browser_sees_loading_then_progress_then_the_final_gallery(
        tmp_path: Path, s3_bucket: S3Bucket, browser) -> None:  # type: ignore[no-untyped-def]
    cfg = cfg_for(tmp_path, s3_bucket)
    run_job(make_demo_card(tmp_path / "card", photos=9), cfg, out=io.StringIO(),
            publish=False)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    seen: dict[str, str] = {}

    def look(event) -> None:  # type: ignore[no-untyped-def]
        if event.stage == "loading":
            page.goto(event.link.url)
            seen["loading"] = page.inner_text("body")
        if event.stage == "uploading" and event.done < event.total and "progress" not in seen:
            page.goto(event.link.url)
            seen["progress"] = page.inner_text("body")
            seen["tiles"] = str(page.locator(".tile img").count())

    with Database(cfg.storage.db_path) as db:
        client = make_client(cfg.s3)
        sid = db.sessions()[0].id
        db.enqueue_publish(sid)
        from ghostroll.publish.publisher import publish_session
        publish_session(cfg, db, client, db.session(sid), look, chunk=3)  # type: ignore[arg-type]
    assert "Preparing your photos… 0 of 10 ready." in seen["loading"]
    assert "Uploading: 3 of 10 ready" in seen["progress"] and seen["tiles"] == "3"
    page.wait_for_function("!document.querySelector('.banner')", timeout=20000)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=artifact("published-phone.png"), full_page=True)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")
    widths = page.eval_on_selector_all(".tile img", "els => els.map(e => e.naturalWidth)")
    assert len(widths) == 10 and all(w > 0 for w in widths)
    assert "This link works until" in page.inner_text("footer")
    page.locator("a[data-index]").first.click()
    page.keyboard.press("ArrowRight")
    assert page.locator("dialog#lightbox").get_attribute("open") is not None
    page.keyboard.press("Escape")
    with page.expect_download() as download:
        page.locator("a.button", has_text="Download all").click()
    archive = zipfile.ZipFile(download.value.path())
    assert archive.testzip() is None and len(archive.namelist()) == 10
    assert errors == []


def test_s3_down_at_start_copies_everything_then_drains(tmp_path: Path,
                                                        s3_bucket: S3Bucket) -> None:
    cfg = cfg_for(tmp_path, s3_bucket)
    server = s3_bucket.server
    server.stop()
    try:
        job = run_job(make_demo_card(tmp_path / "card", photos=3), cfg,
                      out=io.StringIO())
        assert job.ingest.complete and job.ingest.new == 7  # the card is safe regardless
        assert job.exit_code == ExitCode.QUEUED and job.publish and job.publish.waiting
    finally:
        server.start()
    with Database(cfg.storage.db_path) as db:
        assert len(db.queued_sessions()) == 1
        result = drain(cfg, db, make_client(cfg.s3))
        assert len(result.published) == 1 and not result.waiting
        assert db.queued_sessions() == []


def test_server_killed_mid_upload_resumes_without_sending_twice(tmp_path: Path,
                                                                s3_bucket: S3Bucket) -> None:
    cfg = cfg_for(tmp_path, s3_bucket)
    run_job(make_demo_card(tmp_path / "card", photos=9), cfg, out=io.StringIO(),
            publish=False)
    client = make_client(cfg.s3)
    stored: list[str] = []  # keys of PUTs the server accepted (failed attempts excluded)

    def on_put(http_response, **_: object) -> None:  # type: ignore[no-untyped-def]
        if http_response.status_code == 200:
            stored.append("/".join(http_response.url.split("?")[0].rsplit("/", 2)[-2:]))

    client.meta.events.register("after-call.s3.PutObject", on_put)
    server = s3_bucket.server

    def kill_midway(event) -> None:  # type: ignore[no-untyped-def]
        if event.stage == "uploading" and event.done >= 4 and server.running:
            server.kill()

    with Database(cfg.storage.db_path) as db:
        first = drain(cfg, db, client, kill_midway)
        assert first.waiting and not first.published
        server.restart()
        second = drain(cfg, db, client)
        assert len(second.published) == 1
    images = [k for k in stored if k.endswith(".jpg")]
    assert sorted(images) == sorted(set(images)), "an image was stored twice"
    assert len(images) == 20  # 10 photos: thumbs/ and share/


def test_process_killed_mid_publish_resumes(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    cfg = cfg_for(tmp_path, s3_bucket)
    run_job(make_demo_card(tmp_path / "card", photos=9), cfg, out=io.StringIO(),
            publish=False)
    env = {**os.environ, "PYTHONPATH": str(REPO), "GHOSTROLL_BASE_DIR": str(tmp_path / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp_path / "ghostroll.db"), "GHOSTROLL_CLOCK_TRUSTED": "1",
           **{f"GHOSTROLL_{k.upper()}": v for k, v in s3_bucket.config_flags().items()}}
    crashed = subprocess.run(
        [sys.executable, "-m", "tests.support.crash_runner", "upload", "3", "publish"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    done = subprocess.run([sys.executable, "-m", "ghostroll", "publish"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published shoot-" in done.stdout
    with Database(cfg.storage.db_path) as db:
        assert db.sessions()[0].state == "published"


def test_expired_link_is_denied(s3_bucket: S3Bucket) -> None:
    client = s3_bucket.client
    client.put_object(Bucket=s3_bucket.name, Key="x.txt", Body=b"hello")
    url = links.presign_get(client, s3_bucket.name, "x.txt", 2)
    assert unsigned_get(url)[0] == 200
    time.sleep(3.5)
    assert unsigned_get(url)[0] == 403


def test_one_publisher_at_a_time(tmp_path: Path) -> None:
    db_path = tmp_path / "ghostroll.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from ghostroll.publish.lock import publish_lock\n"
         f"with publish_lock(Path({str(db_path)!r})):\n    print('held', flush=True); "
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(PublishBusy, match=f"pid {holder.pid}"), publish_lock(db_path):
        pass
    holder.send_signal(signal.SIGKILL)  # a dead holder never leaves a stale lock
    holder.wait()
    with publish_lock(db_path):
        pass


def test_no_bucket_keeps_sessions_local(tmp_path: Path) -> None:
    job = run_job(make_demo_card(tmp_path / "card", photos=2), make_config(tmp_path),
                  out=io.StringIO())
    assert job.exit_code == 0 and job.publish is None
    assert "sessions stay local" in job.publish_note


def test_reshare_makes_fresh_links(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    cfg = cfg_for(tmp_path, s3_bucket)
    env = {**os.environ, "PYTHONPATH": str(REPO), "GHOSTROLL_BASE_DIR": str(tmp_path / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp_path / "ghostroll.db"), "GHOSTROLL_CLOCK_TRUSTED": "1",
           **{f"GHOSTROLL_{k.upper()}": v for k, v in s3_bucket.config_flags().items()}}
    job = run_job(make_demo_card(tmp_path / "card", photos=2), cfg, out=io.StringIO())
    assert job.exit_code == 0 and job.ingest.session is not None
    share = job.ingest.session.path / "share.txt"
    old = share.read_text().strip()
    time.sleep(1.1)  # a presigned URL is dated to the second: a later one differs
    done = subprocess.run([sys.executable, "-m", "ghostroll", "reshare", "1"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    new = share.read_text().strip()
    assert new != old and "new link for" in done.stdout and new in done.stdout
    status, body = unsigned_get(new)
    assert status == 200 and b'class="tile"' in body
    qr = Image.open(job.ingest.session.path / "share-qr.png").convert("L")
    assert zxingcpp.read_barcodes(qr)[0].text == new
