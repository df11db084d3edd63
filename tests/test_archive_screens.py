"""The receipt and the idle screen with an archive target: "SAFE TO REMOVE · 1 copy" →
"2 COPIES ✓ · safe to format", sessions waiting for their second copy, space left in
sessions; without an archive the screens are as before."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from ghostroll.appliance.host import Devices
from ghostroll.appliance.idle_facts import read_idle_facts
from ghostroll.appliance.machine import Model, Receipt, State
from ghostroll.appliance.screens import Env, render, screen_for
from ghostroll.appliance.service import Service
from ghostroll.archive.receipt import session_copy_count
from ghostroll.devices.kits import kit_names, load_kit
from ghostroll.devices.notify import Notifier
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.storage.db import Database
from tests.support.browser import artifact
from tests.support.ingest import make_config

REPO = Path(__file__).resolve().parents[1]
ENV = Env(now=datetime(2026, 11, 24, 10, 51), free_bytes=48_200_000_000, queued=2,
          last_session="24 Nov 10:42 · 412 new")
DONE = Model(battery=82.0, state=State.CARD_DONE, card="sda1", label="EOS_DIGITAL",
             receipt=Receipt("EOS_DIGITAL", 412, 1288, 0, 12_400_000_000),
             session_id="shoot-x", work="processing", work_done=3, work_total=412)


@pytest.fixture
def archive() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="gr-archive-", dir="/dev/shm"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def run(tmp: Path, card: Path, archive: Path | None) -> None:
    env = {"GHOSTROLL_BASE_DIR": str(tmp / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp / "ghostroll.db"), "HOME": str(tmp),
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    if archive is not None:
        env["GHOSTROLL_ARCHIVE_DIR"] = str(archive)
    subprocess.run([sys.executable, "-m", "ghostroll", "run", str(card)], env=env, cwd=REPO,
                   check=True, capture_output=True, timeout=180)


@pytest.mark.parametrize("kit", kit_names())
def test_receipt_counts_copies_and_fits(kit: str) -> None:
    panel = load_kit(kit).panel
    for copies, big in ((None, "SAFE TO REMOVE"), (1, "SAFE TO REMOVE · 1 copy"),
                        (2, "2 COPIES ✓ · safe to format")):
        screen = screen_for(DONE, replace(ENV, copies=copies))
        assert screen.big == big
        frame = render(screen, panel.width, panel.height)
        frame.save(artifact(f"archive-receipt-{kit}-{copies}.png"))
        assert frame.info["dropped"] == []
    working = replace(DONE, state=State.PROCESSING)
    assert screen_for(working, ENV).footer == "card can be removed"
    assert screen_for(working, replace(ENV, copies=1)).footer == "card can be removed"
    assert screen_for(working, replace(ENV, copies=2)).footer == \
        "2 copies ✓ · safe to format"


@pytest.mark.parametrize("kit", kit_names())
def test_share_screen_says_the_copies_too(kit: str) -> None:
    """The archive copy can finish after the upload (a disk plugged in later): the share
    screen says how many copies there are, and fits."""
    panel = load_kit(kit).panel
    shared = replace(DONE, state=State.DONE, link="https://b.example/L/abc12345", photos=412)
    assert screen_for(shared, ENV).lines[-1] == "scan to view"  # no archive: as before
    for copies, line in ((1, "1 copy"), (2, "2 copies ✓")):
        screen = screen_for(shared, replace(ENV, copies=copies))
        assert screen.lines[-1] == line
        frame = render(screen, panel.width, panel.height)
        frame.save(artifact(f"archive-shared-{kit}-{copies}.png"))
        assert frame.info["dropped"] == []


@pytest.mark.parametrize("kit", kit_names())
def test_idle_priority_problem_then_second_copy_then_space_then_last(kit: str) -> None:
    panel = load_kit(kit).panel
    env = replace(ENV, problem="verify: 2 problems · ssh: ghostroll verify",
                  second_copy_waiting=3, stored_bytes=12_000_000_000, sessions=3)
    screen = screen_for(Model(), env)
    assert screen.lines == ("verify: 2 problems · ssh: ghostroll verify",
                            "3 sessions wait for a 2nd copy",
                            "free 48.2 GB (~12 sessions) · 2 uploads queued",
                            "last: 24 Nov 10:42 · 412 new")
    frame = render(screen, panel.width, panel.height)
    frame.save(artifact(f"archive-idle-{kit}.png"))
    assert frame.info["dropped"] == []
    # without an archive and without history the idle screen is as it was
    assert screen_for(Model(), ENV).lines == ("free 48.2 GB · 2 uploads queued",
                                              "last: 24 Nov 10:42 · 412 new")


def test_facts_and_counts_from_the_database(tmp_path: Path, archive: Path) -> None:
    run(tmp_path, make_demo_card(tmp_path / "card1", photos=2), None)
    db_path = tmp_path / "ghostroll.db"
    with Database(db_path) as db:
        first = db.sessions()[0].id
        assert session_copy_count(db, first) == 1
    assert read_idle_facts(db_path).second_copy_waiting == 0  # no archive: not counted
    assert read_idle_facts(db_path, archive=True).second_copy_waiting == 1
    run(tmp_path, make_demo_card(tmp_path / "card2", photos=3), archive)  # archives both
    facts = read_idle_facts(db_path, archive=True)
    assert facts.second_copy_waiting == 0 and facts.stored_bytes > 0
    assert facts.sessions == 2
    with Database(db_path) as db:
        assert [session_copy_count(db, s.id) for s in db.sessions()] == [2, 2]


def test_sessions_show_says_how_many_copies(tmp_path: Path, archive: Path) -> None:
    run(tmp_path, make_demo_card(tmp_path / "card", photos=2), archive)
    env = {"GHOSTROLL_BASE_DIR": str(tmp_path / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp_path / "ghostroll.db"), "HOME": str(tmp_path),
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    shown = subprocess.run([sys.executable, "-m", "ghostroll", "sessions", "show", "1"],
                           env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert "copies    2 copies ✓ · safe to format (archive-disk, local)" in shown.stdout



def test_plugged_archive_disk_is_used_at_once_and_announced(
        tmp_path: Path, archive: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The service notices the archive disk plugged (back) in, runs the background work
    without waiting for a card, and the work child's archive_done event redraws the
    screen at once: the idle screen's "waits for a 2nd copy" goes."""
    run(tmp_path, make_demo_card(tmp_path / "card", photos=2), None)
    away = archive.with_name(archive.name + "-unplugged")
    archive.rename(away)
    cfg = make_config(tmp_path, archive_dir=archive, runtime_dir=tmp_path / "run")
    drawn: list[str] = []
    service = Service(cfg, load_kit("waveshare-2in13-v4"), Devices(
        panel_submit=lambda image, state, full: drawn.append(state), eject=lambda d: None,
        shutdown=lambda: None, notifier=Notifier(env={})))
    before = screen_for(service.model, service.env()).lines
    assert "1 session waits for a 2nd copy" in before, before
    plug = threading.Timer(2.0, lambda: away.rename(archive))
    plug.start()
    caplog.set_level(logging.INFO, logger="ghostroll")
    try:
        service.run(until=lambda m: any("archive copy complete" in r.getMessage()
                                        for r in caplog.records), timeout_s=90)
    finally:
        plug.cancel()
    assert any("archive disk is back" in r.getMessage() for r in caplog.records)
    after = screen_for(service.model, service.env()).lines
    assert not any("2nd copy" in line for line in after), after
    with Database(cfg.storage.db_path) as db:
        assert [session_copy_count(db, s.id) for s in db.sessions()] == [2]
    assert len(drawn) >= 2  # redrawn once the copy was there
    assert list(archive.rglob("*.JPG")), "nothing on the archive disk"
