"""Storage that never fills by surprise: how long the disk lasts (`doctor`, the idle
screen), and a card that does not fit refused with a clear screen before a byte is
copied (without an archive nothing is ever deleted to make room)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostroll.appliance.simulate import simulate
from ghostroll.commands.doctor import OK, WARN, check_disk
from ghostroll.devtools.synthetic import MOV_HEADER, make_blob, make_demo_card
from ghostroll.storage.space import SpaceLeft, space_left, space_left_text
from tests.support.ingest import ingest, make_config

REPO = Path(__file__).resolve().parents[1]


def test_space_left_at_the_pace_so_far() -> None:
    assert space_left(10_000, 0, 0, 0) is None
    # 3 sessions on 2 shooting days stored 3,000 bytes: 10,000 free holds 10 and ~6
    assert space_left(10_000, 3_000, 3, 2) == SpaceLeft(sessions=10, days=6)
    assert space_left_text(SpaceLeft(12_300, 41)) == \
        "room for ~12,300 sessions, ~41 shooting days at the pace so far"
    assert "no session yet" in space_left_text(None)


def test_doctor_says_how_many_sessions_and_days_are_left(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    [before] = check_disk(cfg)
    assert "no session yet" in before.detail
    ingest(make_demo_card(tmp_path / "card", photos=2), cfg)
    [after] = check_disk(cfg)
    # a warning only when this machine's disk has less free than a typical card
    assert after.status in (OK, WARN) and "GB free in" in after.detail
    assert "sessions" in after.detail and "shooting days at the pace so far" in after.detail
    sessions = int(after.detail.split("room for ~")[1].split(" ")[0].replace(",", ""))
    free = shutil.disk_usage(cfg.storage.base_dir).free
    stored = sum(p.stat().st_size for p in cfg.storage.base_dir.rglob("originals/**/*")
                 if p.is_file())
    assert abs(sessions - free // stored) <= max(2, sessions // 100)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs as the session disk")
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], check=True)
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.root
def test_a_card_that_does_not_fit_is_refused_before_a_byte_is_copied(
        tmp_path: Path, small_disk: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=1)
    for i in range(2):  # 12 MB of video for an 8 MB disk
        make_blob(card / "DCIM" / "100GHOST" / f"MVI_{i:04d}.MOV", 6 << 20, seed=i,
                  header=MOV_HEADER)
    cfg = make_config(tmp_path, base_dir=small_disk / "sessions", free_space_margin_mb=1)
    model = simulate(cfg, card, tmp_path / "frames", "waveshare-2in13-v4", [], timeout_s=120)
    states = [json.loads(line)["state"] for line in
              (tmp_path / "frames" / "frames.jsonl").read_text().splitlines()]
    assert states.index("error") == states.index("checking") + 1, states  # never "copying"
    assert model.error == "Storage is full", model
    assert "Free space" in model.error_hint and "Nothing was lost" in model.error_hint
    written = [p for p in small_disk.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in written) < 64 << 10, written  # not a byte of a photo
    assert not [p for p in written if "originals" in p.parts or p.suffix in (".part",)]


@pytest.mark.root
def test_the_originals_keep_their_room_while_pictures_are_derived(
        tmp_path: Path, small_disk: Path) -> None:
    """20 small camera JPEGs (~5 MB) fit an 8 MB disk; their share images (the same
    pictures again, shared as they are) do not fit beside them. The stream must leave
    the originals their room: every original copied, the pictures made once there is
    space."""
    from PIL import Image

    folder = tmp_path / "card" / "DCIM" / "100GHOST"
    folder.mkdir(parents=True)
    for i in range(20):
        noise = Image.effect_noise((640, 480), 60).convert("RGB")
        noise.save(folder / f"IMG_{i:04d}.JPG", "JPEG", quality=92)
    card_bytes = sum(p.stat().st_size for p in folder.iterdir())
    assert 4 << 20 < card_bytes < 6 << 20
    env = {"GHOSTROLL_BASE_DIR": str(small_disk / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp_path / "ghostroll.db"),
           "GHOSTROLL_FREE_SPACE_MARGIN_MB": "1", "GHOSTROLL_SHARE_ZIP": "false",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "ghostroll", "run", str(tmp_path / "card"),
                           "--volume-id", "fat:0000-0020", "--no-publish"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=180)
    assert "Traceback" not in done.stderr, done.stderr
    assert "card phase complete: 20 new" in done.stderr, done.stderr
    stored = list((small_disk / "sessions").glob("shoot-*/originals/DCIM/100GHOST/*.JPG"))
    assert len(stored) == 20
    # what did not fit beside them waits for space, said so, never half written
    if done.returncode != 0:
        assert "free some space" in done.stderr
