"""Processing when things go wrong: a file whose decoder raises anything is that file's
problem; a session failing for an unexpected reason is set aside and never blocks the
next; the machine failing (disk full, an original gone) leaves the session pending with
no temp file behind, and the next run completes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ghostroll import faults, process
from ghostroll.commands import sessions as sessions_cmd
from ghostroll.derive import lossless, sources
from ghostroll.devtools.synthetic import PhotoSpec, make_jpeg
from ghostroll.job import process_pending
from ghostroll.storage.db import Database
from tests.support.ingest import ingest, make_config

REPO = Path(__file__).resolve().parent.parent


def make_card(root: Path, photos: int = 4, seed: int = 0) -> Path:
    folder = root / "DCIM" / "100TEST"
    folder.mkdir(parents=True)
    for i in range(photos):
        make_jpeg(folder / f"IMG_{i + 1:04d}.JPG", PhotoSpec(width=1200, height=800),
                  seed=seed + i)
    return root


def temp_files(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def armed(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Arm GHOSTROLL_FAULT in this process; disarmed afterwards."""
    def arm(spec: str) -> None:
        monkeypatch.setenv(faults.FAULT_ENV, spec)
        faults.reload()
    yield arm
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    faults.reload()


def test_a_decoder_raising_anything_is_a_per_file_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path)
    ingest(make_card(tmp_path / "card"), cfg)
    real = sources._open_pillow

    def plugin(path: Path, long_edge: int, limit: int) -> sources.Opened:
        if path.name == "IMG_0002.JPG":  # like pillow-heif without an AV1 decoder
            raise RuntimeError("No decoding plugin installed for this compression format")
        return real(path, long_edge, limit)

    monkeypatch.setattr(sources, "_open_pillow", plugin)
    # small upright JPEGs would be shared as they are (lossless.py): decode them all here
    monkeypatch.setattr(lossless, "eligible", lambda *_: False)
    with Database(cfg.storage.db_path) as db:
        [result] = process_pending(cfg, db)
        session = db.session(result.session_id)
    assert session is not None and session.state == "processed"
    assert result.made == 3 and not result.stopped and not result.set_aside
    assert result.problems == ["DCIM/100TEST/IMG_0002.JPG: cannot decode: RuntimeError: "
                               "No decoding plugin installed for this compression format"]


def test_an_unexpected_failure_sets_the_session_aside_and_the_next_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path)
    first = ingest(make_card(tmp_path / "a"), cfg, volume_id="fat:AAAA-0001").session
    second = ingest(make_card(tmp_path / "b", seed=10), cfg, volume_id="fat:BBBB-0002").session
    assert first is not None and second is not None
    real = process.render_index

    def broken(gallery, resolver):  # type: ignore[no-untyped-def]
        if gallery.session_id == first.id:
            raise KeyError("a bug outside any one file")
        return real(gallery, resolver)

    monkeypatch.setattr(process, "render_index", broken)
    with Database(cfg.storage.db_path) as db:
        results = process_pending(cfg, db)
        assert [r.session_id for r in results] == [first.id, second.id]
        assert results[0].set_aside and "KeyError" in results[0].set_aside
        assert results[1].made == 4
        aside = db.session(first.id)
        assert aside is not None and aside.state == "copied"
        assert aside.process_error == "processing failed: KeyError: 'a bug outside any one file'"
        assert db.session(second.id).state == "processed"  # type: ignore[union-attr]
        assert process_pending(cfg, db) == []  # set aside: not tried again by itself
        listing = "\n".join(sessions_cmd.list_lines(db))
        assert "set aside" in listing and "ghostroll sessions retry" in listing
        assert "problem   processing failed: KeyError" in "\n".join(
            sessions_cmd.show_lines(db, aside, qr=False))
    log = (first.path / "ghostroll.log").read_text()
    assert "set aside: processing failed: KeyError" in log and "Traceback" in log

    monkeypatch.setattr(process, "render_index", real)  # the cause is fixed
    retried = subprocess.run(
        [sys.executable, "-m", "ghostroll", "sessions", "retry", str(aside.number)],
        env=_env(cfg), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert retried.returncode == 0, retried.stderr
    assert "processed again" in retried.stdout
    with Database(cfg.storage.db_path) as db:
        [again] = process_pending(cfg, db)
        assert again.session_id == first.id and again.made == 4
        assert db.session(first.id).state == "processed"  # type: ignore[union-attr]


@pytest.mark.parametrize("point", ["derive", "zip"])
def test_disk_full_while_processing_leaves_it_pending_then_resumes(
        tmp_path: Path, armed, point: str) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config(tmp_path)
    session = ingest(make_card(tmp_path / "card"), cfg).session
    assert session is not None
    armed(f"{point}:enospc@2" if point == "derive" else f"{point}:enospc")
    with Database(cfg.storage.db_path) as db:
        [stopped] = process_pending(cfg, db)
        assert stopped.stopped and "No space left on device" in stopped.stopped
        assert "stays pending" in stopped.stopped
        assert db.session(session.id).state == "copied"  # type: ignore[union-attr]
        assert db.session(session.id).process_error is None  # type: ignore[union-attr]
    assert temp_files(cfg.storage.base_dir) == []
    armed("")
    with Database(cfg.storage.db_path) as db:
        [done] = process_pending(cfg, db)
        assert done.made == 4 and not done.problems
        assert db.session(session.id).state == "processed"  # type: ignore[union-attr]
    assert (session.path / "derived" / "share.zip").exists()


def test_a_missing_original_stops_processing_instead_of_a_false_processed(
        tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    session = ingest(make_card(tmp_path / "card"), cfg).session
    assert session is not None
    gone = session.path / "originals" / "DCIM" / "100TEST" / "IMG_0003.JPG"
    gone.rename(tmp_path / "aside.jpg")
    with Database(cfg.storage.db_path) as db:
        [stopped] = process_pending(cfg, db)
        assert stopped.stopped and "IMG_0003.JPG" in stopped.stopped
        assert db.session(session.id).state == "copied"  # type: ignore[union-attr]
    (tmp_path / "aside.jpg").rename(gone)
    with Database(cfg.storage.db_path) as db:
        [done] = process_pending(cfg, db)
    assert done.made == 4


def _env(cfg, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTROLL_")}
    return {**env, "PYTHONPATH": str(REPO), "GHOSTROLL_BASE_DIR": str(cfg.storage.base_dir),
            "GHOSTROLL_DB_PATH": str(cfg.storage.db_path), **extra}


def test_run_with_a_full_disk_exits_1_cleanly_and_the_next_run_completes(
        tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    card = make_card(tmp_path / "card")
    cmd = [sys.executable, "-m", "ghostroll", "run", str(card), "--volume-id", "fat:1111-2222"]
    full = subprocess.run(cmd, env=_env(cfg, GHOSTROLL_FAULT="zip:enospc"), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert full.returncode == 1, full.stdout + full.stderr
    assert "Traceback" not in full.stderr
    assert "stopped" in full.stdout and "No space left on device" in full.stdout
    assert temp_files(cfg.storage.base_dir) == []
    again = subprocess.run(cmd, env=_env(cfg), cwd=REPO, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "gallery for shoot-" in again.stdout and "4 photos" in again.stdout


def test_relative_base_dir_then_processing_from_another_directory(tmp_path: Path) -> None:
    card = make_card(tmp_path / "card")
    first_cwd, other_cwd = tmp_path / "here", tmp_path / "elsewhere"
    first_cwd.mkdir()
    other_cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTROLL_")}
    env.update(PYTHONPATH=str(REPO), GHOSTROLL_BASE_DIR="sessions",
               GHOSTROLL_DB_PATH=str(tmp_path / "ghostroll.db"))
    copied = subprocess.run(  # the card phase only: processing stops on a (simulated) full disk
        [sys.executable, "-m", "ghostroll", "run", str(card), "--volume-id", "fat:3333-4444"],
        env={**env, "GHOSTROLL_FAULT": "derive:enospc"}, cwd=first_cwd,
        capture_output=True, text=True, timeout=120)
    assert copied.returncode == 1, copied.stdout + copied.stderr
    work = subprocess.run([sys.executable, "-m", "ghostroll", "work"], env=env, cwd=other_cwd,
                          capture_output=True, text=True, timeout=120)
    assert work.returncode == 0, work.stdout + work.stderr
    assert '{"v":1,"type":"work_done","photos":4,"url":null' in work.stdout
    [session] = (first_cwd / "sessions").glob("shoot-*")
    assert len(list((session / "derived" / "share").glob("*.jpg"))) == 4
    assert (session / "index.html").read_text().count('class="tile"') == 4
    assert not (other_cwd / "sessions").exists()


def test_a_set_aside_session_is_on_the_idle_screen_and_in_doctor(tmp_path: Path) -> None:
    from datetime import datetime

    from ghostroll.appliance.idle_facts import read_idle_facts
    from ghostroll.appliance.machine import Model
    from ghostroll.appliance.screens import Env, render, screen_for
    from ghostroll.commands.doctor import FAIL, check_set_aside
    from ghostroll.devices.kits import kit_names, load_kit

    cfg = make_config(tmp_path)
    session = ingest(make_card(tmp_path / "card"), cfg).session
    assert session is not None
    assert list(check_set_aside(cfg)) == []
    with Database(cfg.storage.db_path) as db:
        db.set_process_error(session.id, "processing failed: KeyError: 'x'")
    facts = read_idle_facts(cfg.storage.db_path)
    assert facts.problem == "#1 not processed: ssh in, ghostroll sessions"
    screen = screen_for(Model(), Env(now=datetime(2026, 11, 24, 10, 51), free_bytes=10**10,
                                     problem=facts.problem, last_session=facts.last_session))
    assert screen.lines[0] == facts.problem and screen.lines[-1].startswith("last: ")
    for kit in kit_names():
        panel = load_kit(kit).panel
        frame = render(screen, panel.width, panel.height)
        assert frame.size == (panel.width, panel.height)
    [check] = check_set_aside(cfg)
    assert check.status == FAIL and not check.blocking
    assert "processing failed: KeyError" in check.detail
    assert check.fix.endswith("`ghostroll sessions retry 1`")


def test_the_work_child_skips_a_set_aside_session_and_waits_on_a_full_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, armed) -> None:  # type: ignore[no-untyped-def]
    import io
    import json

    from ghostroll.appliance.work import run_work

    cfg = make_config(tmp_path)
    first = ingest(make_card(tmp_path / "a"), cfg, volume_id="fat:AAAA-0001").session
    second = ingest(make_card(tmp_path / "b", seed=10), cfg, volume_id="fat:BBBB-0002").session
    assert first is not None and second is not None

    armed("derive:enospc")
    out = io.StringIO()
    assert run_work(cfg, out) == 3  # the service runs it again later
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[-1]["type"] == "work_waiting" and "No space left" in events[-1]["reason"]
    assert not any(e["type"] == "work_done" for e in events)
    armed("")

    real = process.render_index

    def broken(gallery, resolver):  # type: ignore[no-untyped-def]
        if gallery.session_id == first.id:
            raise KeyError("a bug outside any one file")
        return real(gallery, resolver)

    monkeypatch.setattr(process, "render_index", broken)
    out = io.StringIO()
    assert run_work(cfg, out) == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["session_id"] for e in events if e["type"] == "work_done"] == [second.id]
    with Database(cfg.storage.db_path) as db:
        assert db.session(first.id).process_error  # type: ignore[union-attr]
        assert db.session(second.id).state == "processed"  # type: ignore[union-attr]


def test_originals_are_read_from_their_stored_path(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    card = make_card(tmp_path / "card", photos=2)
    (card / "DCIM" / "100TEST" / "MVI_0003.MOV").write_bytes(b"\x00\x00\x00\x14ftypqt  " * 64)
    session = ingest(card, cfg).session
    assert session is not None
    originals = session.path / "originals" / "DCIM" / "100TEST"
    with Database(cfg.storage.db_path) as db:  # as ingest records a second content
        for name in ("IMG_0002.JPG", "MVI_0003.MOV"):
            stored = f"DCIM/100TEST/{Path(name).stem}~2{Path(name).suffix}"
            (originals / name).rename(session.path / "originals" / stored)
            db.conn.execute("UPDATE session_files SET stored_path = ? WHERE rel_path = ?",
                            (stored, f"DCIM/100TEST/{name}"))
        [result] = process_pending(cfg, db)
    assert result.made == 2 and result.videos == 1 and not result.stopped
    [video] = [i for i in result.gallery.items if i.kind == "video"]  # type: ignore[union-attr]
    assert video.original == "originals/DCIM/100TEST/MVI_0003~2.MOV"


@pytest.mark.root
def test_a_read_only_session_disk_stops_processing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for a read-only bind mount")
    cfg = make_config(tmp_path)
    session = ingest(make_card(tmp_path / "card"), cfg).session
    assert session is not None
    derived = session.path / "derived"
    (derived / "share").mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(derived), str(derived)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(derived)], check=True)
        with Database(cfg.storage.db_path) as db:
            [stopped] = process_pending(cfg, db)
            assert stopped.stopped and "Read-only file system" in stopped.stopped
            assert db.session(session.id).state == "copied"  # type: ignore[union-attr]
    finally:
        subprocess.run(["umount", str(derived)], check=False)
    with Database(cfg.storage.db_path) as db:
        [done] = process_pending(cfg, db)
    assert done.made == 4


def test_a_database_failure_stops_processing_rather_than_setting_it_aside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    cfg = make_config(tmp_path)
    session = ingest(make_card(tmp_path / "card"), cfg).session
    assert session is not None

    def locked(self, session_id: str, state: str) -> None:  # type: ignore[no-untyped-def]
        raise sqlite3.OperationalError("database is locked")

    with Database(cfg.storage.db_path) as db:
        monkeypatch.setattr(Database, "set_session_state", locked)
        [stopped] = process_pending(cfg, db)
        monkeypatch.undo()
        assert stopped.stopped and "database: database is locked" in stopped.stopped
        again = db.session(session.id)
        assert again is not None and again.state == "copied" and again.process_error is None
        [done] = process_pending(cfg, db)
        assert done.made == 4
