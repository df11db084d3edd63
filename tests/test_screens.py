"""Panel frames for every screen at every kit size: exact size, nothing dropped or
clipped, the QR decodes from the 1-bit frame itself, the receipt says what happened."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
import zxingcpp
from PIL import Image

from ghostroll.appliance import protocol as p
from ghostroll.appliance.machine import Model, Receipt, State
from ghostroll.appliance.screens import Env, qr_fit, render, screen_for
from ghostroll.devices.kits import kit_names, load_kit
from tests.support.browser import artifact

ENV = Env(now=datetime(2026, 11, 24, 10, 51), free_bytes=48_200_000_000, queued=2,
          hostname="ghostroll", ip="192.168.1.23", last_session="24 Nov 10:42 · 412 photos")
SHORT = "HTTPS://GHOSTROLL-PHOTOS.S3.EU-WEST-1.AMAZONAWS.COM/L/ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FULL = ("https://ghostroll-photos.s3.eu-west-1.amazonaws.com/sessions/shoot-2026-11-24_105100"
        "_a1b2c3/index.html?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE"
        "EXAMPLE%2F20261124%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20261124T105100Z&X-Amz"
        "-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "ab12" * 16)
BASE = Model(battery=82.0)
COPY = p.Progress(files_total=1700, files_to_read=412, files_read=287,
                  bytes_to_read=12_400_000_000, bytes_read=8_900_000_000, new=287, elapsed_s=300)
MODELS = {
    "idle": BASE,
    "checking": replace(BASE, state=State.CHECKING, card="sda1", label="EOS_DIGITAL"),
    "copying": replace(BASE, state=State.COPYING, card="sda1", label="EOS_DIGITAL", copy=COPY,
                       link=SHORT),
    "copying-armed": replace(BASE, state=State.COPYING, card="sda1", label="EOS_DIGITAL",
                             copy=COPY, cancel_armed_until=5.0, waiting_card="sdb1"),
    "card_done": replace(BASE, state=State.CARD_DONE, card="sda1", label="EOS_DIGITAL",
                         receipt=Receipt("EOS_DIGITAL", 412, 1288, 0, 12_400_000_000),
                         work="publishing", work_done=37, work_total=100),
    "nothing_new": replace(BASE, state=State.NOTHING_NEW, card="sda1", label="EOS",
                           receipt=Receipt("EOS", 0, 1700, 0, 0)),
    "processing": replace(BASE, state=State.PROCESSING, work="processing", work_done=12,
                          work_total=412, link=SHORT),
    "publishing": replace(BASE, state=State.PUBLISHING, work="publishing", work_done=300,
                          work_total=412, link=SHORT),
    "waiting": replace(BASE, state=State.WAITING, work="waiting",
                       work_note="no network: 112 uploads queued"),
    "done": replace(BASE, state=State.DONE, link=SHORT, photos=412,
                    link_expires=datetime(2026, 12, 1, 10, 52)),
    "done-full-url": replace(BASE, state=State.DONE, link=FULL, photos=412,
                             link_expires=datetime(2026, 12, 1, 10, 52)),
    "done-local": replace(BASE, state=State.DONE, photos=12),
    "error": replace(BASE, state=State.ERROR, error="Storage is full",
                     error_hint="Free space over SSH (ghostroll sessions), then reinsert "
                                "the card. Nothing was lost."),
    "low_battery": replace(BASE, state=State.LOW_BATTERY, battery=9.0),
    "confirm_shutdown": replace(BASE, state=State.CONFIRM_SHUTDOWN),
    "shutting_down": replace(BASE, state=State.SHUTTING_DOWN),
}


def decode(frame: Image.Image) -> str | None:
    big = frame.convert("L").resize((frame.width * 4, frame.height * 4), Image.Resampling.NEAREST)
    found = zxingcpp.read_barcodes(big)
    return found[0].text if found else None


@pytest.mark.parametrize("kit", kit_names())
@pytest.mark.parametrize("name", list(MODELS))
def test_every_screen_fits_every_panel(kit: str, name: str) -> None:
    panel = load_kit(kit).panel
    frame = render(screen_for(MODELS[name], ENV), panel.width, panel.height)
    frame.save(artifact(f"screen-{kit}-{name}.png"))
    assert frame.mode == "1" and frame.size == (panel.width, panel.height)
    assert frame.info["dropped"] == [], f"lines that did not fit: {frame.info['dropped']}"
    assert 0 < frame.convert("L").histogram()[0] < panel.width * panel.height


@pytest.mark.parametrize("kit", kit_names())
def test_short_link_qr_decodes_from_the_done_frame(kit: str) -> None:
    panel = load_kit(kit).panel
    frame = render(screen_for(MODELS["done"], ENV), panel.width, panel.height)
    assert decode(frame) == SHORT
    placed = qr_fit(SHORT, panel.height, large=True)
    assert placed is not None and placed[1] >= 3  # >= 3 px per module, quiet zone 2


def test_full_url_only_where_it_reaches_two_pixels() -> None:
    small = load_kit("waveshare-2in13-v4").panel
    frame = render(screen_for(MODELS["done-full-url"], ENV), small.width, small.height)
    assert decode(frame) is None  # not drawn: it would not scan
    assert qr_fit(FULL, small.height, large=True) is None
    text = " ".join(screen_for(MODELS["done-full-url"], ENV).lines)
    assert "412 photos" in text
    large = load_kit("waveshare-2in7-v2").panel
    placed = qr_fit(FULL, large.height, large=True)
    assert placed is not None and placed[1] >= 2
    assert decode(render(screen_for(MODELS["done-full-url"], ENV), large.width,
                         large.height)) == FULL


def test_copying_screen_shows_the_small_code_and_counts() -> None:
    panel = load_kit("waveshare-2in13-v4").panel
    screen = screen_for(MODELS["copying"], ENV)
    assert screen.big == "287 / 412 new"
    assert "8.9 GB of 12.4 GB" in screen.lines[0] and "1,288 already safe" in screen.lines[1]
    assert decode(render(screen, panel.width, panel.height)) == SHORT
    armed = screen_for(MODELS["copying-armed"], ENV)
    assert armed.footer == "press again to cancel"


def test_receipt_says_what_was_verified_and_that_the_card_was_never_written() -> None:
    screen = screen_for(MODELS["card_done"], ENV)
    assert screen.big == "SAFE TO REMOVE"
    assert screen.lines[0] == "412 new · 1,288 already safe"
    assert screen.lines[1] == "12.4 GB copied + hash-verified"
    assert screen.lines[2] == "0 errors · card never written"
    assert screen.lines[3] == "EOS_DIGITAL · 24 Nov 10:51"
    assert screen.footer == "uploading in background: 37%"


def test_battery_is_always_visible_when_known() -> None:
    for name, model in MODELS.items():
        assert screen_for(model, ENV).battery == model.battery, name
