"""What the person who gets the link sees, on a phone (Debian chromium via Playwright)
against a real private bucket (SeaweedFS): a published session with photos, a RAW+JPEG
pair, an MP4 and a THM/AVI pair. The video plays and seeks through its presigned URL,
captions carry the capture dates, the zip holds the card's names dated by the camera,
link previews (og:) are there, and nothing private leaves in a shared file."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from ghostroll.devtools.synthetic import TIFF_HEADER, PhotoSpec, make_blob, make_jpeg
from ghostroll.job import run_job
from ghostroll.process import process_session
from ghostroll.publish.links import short_link_policy
from ghostroll.storage.db import Database
from tests.support.browser import artifact
from tests.support.ingest import ingest, make_config
from tests.support.s3 import S3Bucket, unsigned_get
from tests.support.shared_files import assert_only_kept_exif

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg not installed (apt-get install ffmpeg)")
LOCATION = "+48.8577+002.2950/"
TITLE = "Smith wedding · 12–14 Jun 2024"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def make_card(root: Path) -> Path:
    """A wedding over three days, as a Nikon and its owner's phone left it."""
    dcim = root / "DCIM" / "100NIKON"
    make_jpeg(dcim / "DSC_0001.JPG", PhotoSpec(taken=datetime(2024, 6, 12, 10, 0), gps=True,
                                               make="NIKON CORPORATION", model="NIKON D750"))
    make_jpeg(dcim / "DSC_0002.JPG", PhotoSpec(taken=datetime(2024, 6, 13, 11, 0)), seed=2)
    make_jpeg(dcim / "DSC_0003.JPG", PhotoSpec(taken=datetime(2024, 6, 14, 9, 30)), seed=3)
    make_blob(dcim / "DSC_0003.NEF", 1 << 20, seed=3, header=TIFF_HEADER)
    make_jpeg(root / "DCIM" / "101NIKON" / "DSC_0002.JPG",
              PhotoSpec(taken=datetime(2024, 6, 14, 12, 0)), seed=4)
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi", "-i", "sine",
           "-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac",
           "-metadata", f"location={LOCATION}", "-metadata",
           "creation_time=2024-06-13T15:00:00Z", str(dcim / "DSC_0004.MP4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2", "-c:v", "mjpeg",
           str(dcim / "MVI_0005.AVI"))
    make_jpeg(dcim / "MVI_0005.THM", PhotoSpec(width=160, height=120), seed=5)
    when = datetime(2024, 6, 13, 16, 0, tzinfo=UTC).timestamp()  # an AVI has no date inside
    os.utime(dcim / "MVI_0005.AVI", (when, when))
    return root


def test_recipient_on_a_phone(tmp_path: Path, s3_bucket: S3Bucket,
                              browser) -> None:  # type: ignore[no-untyped-def]
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.name,
                                       Policy=json.dumps(short_link_policy(s3_bucket.name)))
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    job = run_job(make_card(tmp_path / "card"), cfg, label="Smith wedding", out=io.StringIO())
    assert job.exit_code == 0 and job.publish is not None and job.publish.published
    assert job.ingest.session is not None
    link = (job.ingest.session.path / "share.txt").read_text().strip()
    assert "/L/" in link

    # the short-link page: named after the album, with a link preview
    status, body = unsigned_get(link)
    short_page = body.decode()
    assert status == 200 and f"<title>{TITLE}</title>" in short_page
    assert 'property="og:description" content="4 photos · 2 videos · 12–14 Jun"' in short_page

    page = browser.new_page(viewport={"width": 390, "height": 844}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(link)
    page.wait_for_selector("ul.grid li")
    page.wait_for_load_state("networkidle")
    assert page.title() == TITLE
    og = {p: page.get_attribute(f'meta[property="og:{p}"]', "content")
          for p in ("title", "description", "image")}
    assert og["title"] == TITLE and og["description"] == "4 photos · 2 videos · 12–14 Jun"
    assert og["image"] and unsigned_get(og["image"])[0] == 200

    grid = page.inner_text(".grid")
    for when in ("12 Jun 2024 10:00", "13 Jun 2024 11:00", "14 Jun 2024 09:30",
                 "14 Jun 2024 12:00", "13 Jun 2024 15:00", "13 Jun 2024 16:00"):
        assert when in grid, when
    assert "NIKON D750" in grid and "video 0:04" in grid
    assert page.locator(".tile img").count() == 6  # 4 photos (one from RAW+JPEG), 2 posters
    posters = page.eval_on_selector_all(".tile.video img", "els => els.map(e => e.naturalWidth)")
    assert len(posters) == 2 and all(w > 0 for w in posters)

    # the AVI (MJPEG) is a download tile with its THM poster and its size
    avi = page.locator('a[aria-label^="Download video MVI_0005.AVI"]')
    assert avi.get_attribute("download") == "MVI_0005.avi"
    assert "MB" in page.locator(".tile.video", has=avi).inner_text()

    # the MP4 plays in the lightbox, and seeks through its presigned URL
    page.locator('a[aria-label^="Play video DSC_0004.MP4"]').click()
    video = page.locator("#lb-video")
    assert video.is_visible() and "13 Jun 2024 15:00" in page.inner_text("#lb-cap")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("document.getElementById('lb-video').currentTime > 0.5",
                           timeout=20000)
    video.evaluate("v => { v.currentTime = 3; }")
    page.wait_for_function("document.getElementById('lb-video').currentTime >= 3",
                           timeout=20000)
    page.screenshot(path=artifact("recipient-video-phone.png"))
    shared_video = unsigned_get(video.get_attribute("src") or "")[1]
    page.keyboard.press("Escape")

    # the shared clip: no location or anything else, but its creation time
    clip = tmp_path / "shared.mp4"
    clip.write_bytes(shared_video)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags", "-of", "json",
         str(clip)], capture_output=True, text=True, check=True).stdout)
    tags = probe["format"].get("tags", {})
    assert LOCATION.encode() not in shared_video and "location" not in tags
    assert tags.get("creation_time", "").startswith("2024-06-13T15:00:00")

    # Download all: the card's names, the camera's dates, and only the capture time inside
    with page.expect_download() as download:
        page.locator("a.button", has_text="Download all").click()
    archive = zipfile.ZipFile(download.value.path())
    dated = {i.filename: i.date_time for i in archive.infolist()}
    assert dated == {"DSC_0001.jpg": (2024, 6, 12, 10, 0, 0),
                     "DSC_0002.jpg": (2024, 6, 13, 11, 0, 0),
                     "DSC_0002 (2).jpg": (2024, 6, 14, 12, 0, 0),
                     "DSC_0003.jpg": (2024, 6, 14, 9, 30, 0)}
    for name in dated:
        kept = assert_only_kept_exif(archive.read(name), name)
        assert kept[0x9011] == "+01:00" and kept[0x9003].startswith("2024:06:1")
    assert b"NIKON D750" not in archive.read("DSC_0001.jpg")
    assert errors == []

    # `ghostroll rename` names the album: the same link now shows the new name
    flags = {"base_dir": str(cfg.storage.base_dir), "db_path": str(cfg.storage.db_path),
             "clock_trusted": "true", **s3_bucket.config_flags()}
    args = [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", v)]
    renamed = subprocess.run(
        [sys.executable, "-m", "ghostroll", "rename", "1", "Anna & Ben", *args],
        capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]})
    assert renamed.returncode == 0, renamed.stderr
    assert "renamed 'Anna & Ben'" in renamed.stdout
    assert "<title>Anna &amp; Ben</title>" in unsigned_get(link)[1].decode()
    page.goto(link)
    page.wait_for_selector("ul.grid li")
    assert page.title() == "Anna & Ben" and page.inner_text("h1") == "Anna & Ben"


def test_live_and_motion_photos_play_their_clip(tmp_path: Path, browser,
                                                serve) -> None:  # type: ignore[no-untyped-def]
    """An iPhone Live Photo (IMG_0001.JPG + IMG_0001.MOV) and a Pixel motion photo (a JPEG
    with its MP4 appended) are photos whose clip plays from the lightbox."""
    dcim = tmp_path / "card" / "DCIM" / "100APPLE"
    make_jpeg(dcim / "IMG_0001.JPG", PhotoSpec(taken=datetime(2024, 6, 12, 10, 0)))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "3", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-metadata", f"location={LOCATION}", "-f", "mov",
           str(dcim / "IMG_0001.MOV"))
    still = make_jpeg(tmp_path / "still.jpg", PhotoSpec(taken=datetime(2024, 6, 12, 11, 0)))
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-metadata", f"location={LOCATION}", str(clip))
    (dcim / "PXL_20240612_110000123.MP.jpg").write_bytes(still.read_bytes() + clip.read_bytes())
    cfg = make_config(tmp_path)
    result = ingest(tmp_path / "card", cfg)
    assert result.session is not None
    with Database(cfg.storage.db_path) as db:
        processed = process_session(cfg, db, result.session)
    assert processed.problems == [] and processed.made == 2 and processed.videos == 0
    items = json.loads((result.session.path / "derived" / "gallery.json").read_text())["items"]
    assert [i["motion"] is not None for i in items] == [True, True]
    for item in items:
        shared = (result.session.path / "derived" / item["motion"]).read_bytes()
        assert LOCATION.encode() not in shared and b"ftyp" in shared[:16]

    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(serve(result.session.path) + "/index.html")
    assert page.locator(".tile .live").count() == 2
    for n in range(2):
        page.locator("a[data-index]").nth(n).click()
        page.locator("#lb-live").click()
        page.wait_for_function("document.getElementById('lb-video').currentTime > 0.3",
                               timeout=20000)
        page.keyboard.press("Escape")
    assert errors == []


def test_a_card_of_raws_without_previews_says_what_was_kept(tmp_path: Path) -> None:
    dcim = tmp_path / "card" / "DCIM" / "100NIKON"
    for n in (1, 2, 3):
        make_blob(dcim / f"DSC_000{n}.NEF", 1 << 20, seed=n, header=TIFF_HEADER)
    cfg = make_config(tmp_path)
    result = ingest(tmp_path / "card", cfg)
    assert result.session is not None
    with Database(cfg.storage.db_path) as db:
        processed = process_session(cfg, db, result.session)
    assert processed.made == 0 and len(processed.problems) == 3
    page = (result.session.path / "index.html").read_text()
    assert "0 photos" in page
    assert "3 files (RAW) kept safely on the device, but none has a preview large enough" \
        in page


@pytest.mark.filterwarnings("ignore:Using JPEG reconstruction")
def test_every_picture_file_is_shown_or_listed_with_its_reason(tmp_path: Path) -> None:
    dcim = tmp_path / "card" / "DCIM" / "100CAMERA"
    dcim.mkdir(parents=True)
    picture = make_jpeg(tmp_path / "p.jpg", PhotoSpec(width=640, height=480))
    with Image.open(picture) as image:
        for ext, fmt in (("WEBP", "WEBP"), ("GIF", "GIF"), ("BMP", "BMP"), ("PNG", "PNG"),
                         ("JXL", "JXL"), ("TIF", "TIFF")):
            image.save(dcim / f"IMG_0001.{ext}", fmt)
    shutil.copy(picture, dcim / "IMG_0002.JPG")
    (dcim / "IMG_0003.JPG").write_bytes(picture.read_bytes()[:3000])  # truncated
    (dcim / "IMG_0004.GIF").write_bytes(b"GIF89a broken")
    cfg = make_config(tmp_path)
    result = ingest(tmp_path / "card", cfg)
    assert result.session is not None
    with Database(cfg.storage.db_path) as db:
        processed = process_session(cfg, db, result.session)
    gallery = json.loads((result.session.path / "derived" / "gallery.json").read_text())
    shown = {i["name"] for i in gallery["items"]}
    listed = {p.split(": ", 1)[0].rsplit("/", 1)[-1] for p in processed.problems}
    files = {p.name for p in dcim.iterdir()}
    assert shown | listed == files and not shown & listed, (shown, listed)
    assert listed == {"IMG_0003.JPG", "IMG_0004.GIF"}, processed.problems
