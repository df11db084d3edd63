"""The gallery in a real browser (Debian chromium via Playwright): thumbnails load,
the lightbox works by mouse, keys and deep link, hostile names stay text, a huge
gallery loads only a screenful, and the loading page turns into the gallery."""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from ghostroll.devtools.synthetic import PhotoSpec, make_demo_card, make_jpeg
from ghostroll.gallery.model import Gallery, GalleryItem, Progress
from ghostroll.gallery.render import (
    local_resolver,
    progress_document,
    render_index,
    render_loading,
    script_json,
)
from ghostroll.process import process_session
from ghostroll.storage.db import Database
from tests.support.browser import artifact
from tests.support.ingest import ingest, make_config

HOSTILE = "<img src=x onerror=alert(1)>.jpg"


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("gallery")
    card = make_demo_card(tmp / "card", photos=8)
    make_jpeg(card / "DCIM" / "100GHOST" / HOSTILE, PhotoSpec(width=900, height=600),
              seed=77)
    cfg = make_config(tmp)
    result = ingest(card, cfg)
    assert result.session is not None
    with Database(cfg.storage.db_path) as db:
        processed = process_session(cfg, db, result.session)
    assert processed.made == 10 and processed.videos == 1
    return result.session.path


def open_page(browser, url: str, width: int = 390, height: int = 844):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append(f"dialog opened: {d.message}") or d.dismiss())
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page, errors


def scroll_all(page) -> None:  # type: ignore[no-untyped-def]
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")


def test_thumbnails_load_and_lightbox_works(browser, serve, session_dir: Path) -> None:  # type: ignore[no-untyped-def]
    page, errors = open_page(browser, serve(session_dir) + "/index.html")
    page.screenshot(path=artifact("gallery-phone.png"), full_page=True)
    scroll_all(page)
    widths = page.eval_on_selector_all(".tile img", "els => els.map(e => e.naturalWidth)")
    assert len(widths) >= 10 and all(w > 0 for w in widths)
    tiles = page.locator("a[data-index]")
    tiles.nth(0).click()
    dialog = page.locator("dialog#lightbox")
    assert dialog.get_attribute("open") is not None
    first = page.locator("#lb-img").get_attribute("src")
    page.keyboard.press("ArrowRight")
    second = page.locator("#lb-img").get_attribute("src")
    assert second != first and "#p=" in page.url
    page.keyboard.press("ArrowLeft")
    assert page.locator("#lb-img").get_attribute("src") == first
    page.keyboard.press("Escape")
    assert dialog.get_attribute("open") is None
    assert page.evaluate("document.activeElement.getAttribute('data-index')") == "0"
    assert errors == []


def test_deep_link_opens_that_photo(browser, serve, session_dir: Path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(page_data(session_dir / "index.html"))
    target = data["photos"][3]
    page, errors = open_page(browser, serve(session_dir) + f"/index.html#p={target['id']}",
                             1280, 800)
    assert page.locator("dialog#lightbox").get_attribute("open") is not None
    assert page.locator("#lb-img").get_attribute("src") == target["share"]
    page.wait_for_timeout(300)
    page.screenshot(path=artifact("gallery-desktop-lightbox.png"))
    assert errors == []


def test_hostile_file_name_is_text_and_runs_nothing(browser, serve, session_dir: Path) -> None:  # type: ignore[no-untyped-def]
    html = (session_dir / "index.html").read_text()
    assert "<img src=x onerror" not in html
    page, errors = open_page(browser, serve(session_dir) + "/index.html", 1280, 800)
    page.screenshot(path=artifact("gallery-desktop.png"), full_page=True)
    assert page.get_by_text(HOSTILE).count() >= 1 or page.locator(
        f'img[alt^="{HOSTILE}"]').count() == 1
    hostile_tile = page.locator("a[aria-label^='Open <img src=x onerror=alert(1)>.jpg']")
    hostile_tile.click()
    assert HOSTILE in page.locator("#lb-cap").inner_text()
    assert page.locator("img[src='x']").count() == 0
    assert errors == []


def test_works_from_file_url(browser, session_dir: Path) -> None:  # type: ignore[no-untyped-def]
    page, errors = open_page(browser, (session_dir / "index.html").as_uri())
    scroll_all(page)
    widths = page.eval_on_selector_all(".tile img", "els => els.map(e => e.naturalWidth)")
    assert widths and all(w > 0 for w in widths)
    assert errors == []


def test_share_zip_holds_the_share_images_uncompressed(session_dir: Path) -> None:
    with zipfile.ZipFile(session_dir / "derived" / "share.zip") as archive:
        infos = archive.infolist()
        assert len(infos) == 10
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert archive.testzip() is None


def test_two_thousand_photos_request_about_a_screenful(browser, serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    thumb = tmp_path / "derived" / "thumbs"
    share = tmp_path / "derived" / "share"
    thumb.mkdir(parents=True)
    share.mkdir(parents=True)
    sample = tmp_path / "sample.jpg"
    Image.new("RGB", (512, 341), (90, 120, 200)).save(sample, "JPEG")
    items = []
    for i in range(2000):
        shutil.copy(sample, thumb / f"p{i}.jpg")
        items.append(GalleryItem(id=f"p{i}", name=f"DSC_{i:04d}.JPG", kind="photo",
                                 thumb=f"thumbs/p{i}.jpg", share=f"share/p{i}.jpg",
                                 width=2048, height=1365))
    gallery = Gallery(title="Big card", session_id="s", items=tuple(items))
    (tmp_path / "index.html").write_text(render_index(gallery, local_resolver()))
    base = serve(tmp_path)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if r.resource_type == "image" else None)
    page.goto(base + "/index.html")
    page.wait_for_load_state("networkidle")
    assert 6 <= len(requested) <= 80, f"{len(requested)} image requests at first paint"
    assert not any("/share/" in url for url in requested)


def test_loading_page_turns_into_the_gallery(browser, serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    progress = tmp_path / "progress.json"
    progress.write_text(json.dumps(progress_document(0, 3, False)))
    (tmp_path / "index.html").write_text(render_loading("Shoot", "progress.json"))
    page, errors = open_page(browser, serve(tmp_path) + "/index.html")
    assert "Preparing your photos" in page.inner_text("body")
    (tmp_path / "derived" / "thumbs").mkdir(parents=True)
    Image.new("RGB", (64, 64), "red").save(tmp_path / "derived" / "thumbs" / "a.jpg")
    item = GalleryItem(id="a", name="A.JPG", kind="photo", thumb="thumbs/a.jpg",
                       share="thumbs/a.jpg", width=64, height=64)
    ready = Gallery("Shoot", "s", (item,), progress=Progress(1, 3, False))
    index = tmp_path / "index.html"
    index.write_text(render_index(ready, local_resolver(), "progress.json"))
    # http.server revalidates by Last-Modified in whole seconds: a page rewritten within
    # the second of the first fetch would come back 304 (S3 revalidates by ETag).
    later = time.time() + 5
    os.utime(index, (later, later))
    progress.write_text(json.dumps(progress_document(1, 3, False)))
    page.wait_for_selector(".tile img", timeout=30000)  # a poll every 4 s, then a reload
    assert "Uploading: 1 of 3 ready" in page.inner_text("body")
    assert errors == []


def test_script_json_cannot_close_the_script_element() -> None:
    text = script_json({"name": "</script><script>alert(1)</script>", "amp": "&"})
    assert "</script" not in text and "<" not in text and "&" not in text
    assert json.loads(text)["name"] == "</script><script>alert(1)</script>"


def page_data(index: Path) -> str:
    html = index.read_text()
    start = html.index('id="gallery-data">') + len('id="gallery-data">')
    return html[start:html.index("</script>", start)]
