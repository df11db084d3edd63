"""`ghostroll watch`: finds a mounted card by label, ingests it once, never writes to it."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import pytest

from ghostroll.commands.watch import find_cards, matches_label, mount_roots, watch
from ghostroll.devtools.cardimage import make_image, missing_tools, mounted
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.job import run_job
from tests.support.ingest import make_config, originals


def test_label_matching_includes_macos_duplicates() -> None:
    assert matches_label("auto-import", "auto-import")
    assert matches_label("auto-import 1", "auto-import")
    assert not matches_label("auto-import-old", "auto-import")
    assert not matches_label("auto-import x", "auto-import")


def test_mount_roots_expand_user_without_the_flag_hiding_the_env() -> None:
    roots = mount_roots("/Volumes, /media/$USER,/run/media/${USER}", env={"USER": "ana"})
    assert roots == [Path("/Volumes"), Path("/media/ana"), Path("/run/media/ana")]


def test_find_cards_needs_a_mount_with_dcim(tmp_path: Path) -> None:
    (tmp_path / "auto-import" / "DCIM").mkdir(parents=True)
    (tmp_path / "auto-import 1" / "DCIM").mkdir(parents=True)
    (tmp_path / "auto-import 2").mkdir()  # no DCIM
    (tmp_path / "USB_STICK" / "DCIM").mkdir(parents=True)
    assert find_cards([tmp_path], "auto-import", is_mount=lambda p: False) == []
    assert find_cards([tmp_path, tmp_path / "missing"], "auto-import",
                      is_mount=lambda p: True) == [tmp_path / "auto-import",
                                                   tmp_path / "auto-import 1"]


def test_each_insertion_is_handled_once(tmp_path: Path) -> None:
    card = tmp_path / "media" / "auto-import"
    (card / "DCIM").mkdir(parents=True)
    cfg = make_config(tmp_path, mount_roots=tmp_path / "media", poll_seconds=0.1)
    calls: list[Path] = []
    polls = 0

    def sleep(_: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:  # card removed...
            (card / "DCIM").rmdir()
        if polls == 5:  # ...and inserted again
            (card / "DCIM").mkdir()

    watch(cfg, lambda c: calls.append(c) or 0, is_mount=lambda p: True, sleep=sleep,
          should_stop=lambda: polls >= 8)
    assert calls == [card, card]


def test_a_card_with_another_label_is_said_once_and_star_takes_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    media = tmp_path / "media"
    (media / "EOS_DIGITAL" / "DCIM").mkdir(parents=True)
    (media / "BACKUP").mkdir()  # no DCIM: not a card, not mentioned
    cfg = make_config(tmp_path, mount_roots=media, poll_seconds=0.1)
    polls = 0

    def sleep(_: float) -> None:
        nonlocal polls
        polls += 1

    calls: list[Path] = []
    with caplog.at_level(logging.INFO, logger="ghostroll.watch"):
        watch(cfg, lambda c: calls.append(c) or 0, is_mount=lambda p: True, sleep=sleep,
              should_stop=lambda: polls >= 4)
    assert calls == []
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped == [f"card at {media / 'EOS_DIGITAL'} skipped: its label 'EOS_DIGITAL' "
                       "is not sd_label 'auto-import' (formatting a card in the camera "
                       "resets the label): rename the card, or set sd_label = \"*\" to "
                       "take any card with DCIM/"]
    assert "BACKUP" not in caplog.text
    any_card = make_config(tmp_path, mount_roots=media, poll_seconds=0.1, sd_label="*")
    assert watch(any_card, lambda c: calls.append(c) or 0, once=True,
                 is_mount=lambda p: True, sleep=sleep) == 0
    assert calls == [media / "EOS_DIGITAL"]


@pytest.mark.root
def test_watch_ingests_a_real_mounted_card_and_never_writes_it(tmp_path: Path) -> None:
    if missing := missing_tools("vfat"):
        pytest.skip(f"missing: {', '.join(missing)}")
    image = make_image(tmp_path / "card.img", make_demo_card(tmp_path / "src", photos=3))
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    cfg = make_config(tmp_path, mount_roots=tmp_path / "media", poll_seconds=0.2)
    result: list[int] = []
    with mounted(image, tmp_path / "media" / "auto-import"):
        worker = threading.Thread(target=lambda: result.append(
            watch(cfg, lambda c: run_job(c, cfg).exit_code, once=True)))
        worker.start()
        worker.join(timeout=60)
    assert result == [0]
    assert len(originals(cfg)) == 7  # 3 photos + RAW+JPEG pair + MOV + THM
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before
