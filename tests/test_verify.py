"""`ghostroll verify`, the oracle: real sessions made by `ghostroll run`, then damaged for
real (an original deleted, truncated or with one byte flipped, a stale temp file, a share
image dropped, an object deleted from the bucket, a session set aside); each damage must
come out as exactly the expected problems and exit code, and a clean device as exit 0."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from ghostroll.appliance.screens import Screen, render, screen_for
from ghostroll.appliance.service import Devices, Service
from ghostroll.commands import verify
from ghostroll.devices.kits import load_kit
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.publish.publisher import prefix_for
from ghostroll.storage.db import Database
from ghostroll.storage.incoming import IncomingDir
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket

REPO = Path(__file__).resolve().parents[1]


def env_for(tmp: Path, **settings: str) -> dict[str, str]:
    env = {"GHOSTROLL_BASE_DIR": str(tmp / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp / "ghostroll.db"),
           "HOME": str(tmp), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "PYTHONPATH": str(REPO)}
    env.update({f"GHOSTROLL_{k.upper()}": v for k, v in settings.items()})
    return env


def ghostroll(tmp: Path, *args: str, env: dict[str, str] | None = None,
              **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ghostroll", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=180,
                          env={**env_for(tmp, **settings), **(env or {})})


def shoot(tmp: Path, name: str = "card", photos: int = 3, **settings: str) -> Path:
    """A session made by a real `ghostroll run`; returns its folder."""
    card = make_demo_card(tmp / name, photos=photos)
    done = ghostroll(tmp, "run", str(card), **settings)
    assert done.returncode == 0, done.stdout + done.stderr
    with Database(tmp / "ghostroll.db") as db:
        return db.sessions()[-1].path


def check(tmp: Path, *args: str, env: dict[str, str] | None = None,
          **settings: str) -> tuple[int, dict[str, Any]]:
    done = ghostroll(tmp, "verify", "--json", *args, env=env, **settings)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def kinds(report: dict[str, Any]) -> list[tuple[str, str | None]]:
    return sorted((p["kind"], p["path"]) for p in report["problems"])


def jpegs(session: Path) -> list[Path]:
    return sorted((session / "originals").rglob("IMG_*.JPG"))


def test_a_clean_device_passes_even_when_every_byte_is_read(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    files = [p for p in (session / "originals").rglob("*") if p.is_file()]
    rc, report = check(tmp_path, "--read-data")
    assert (rc, report["problems"], report["warnings"]) == (0, [], [])
    checked = report["checked"]
    assert checked["contents"] == checked["copies"] == checked["hashed"] == len(files)
    assert checked["hashed_bytes"] == sum(p.stat().st_size for p in files)
    assert checked["derived"] == 4  # 3 photos + the RAW+JPEG pair's JPEG
    text = ghostroll(tmp_path, "verify")
    assert text.returncode == 0
    assert text.stdout.strip().endswith(
        f"verify: {len(files)} copies of {len(files)} contents checked, 0 problems")


def test_deleted_and_truncated_originals_are_itemized(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    gone, cut = jpegs(session)[:2]
    gone.unlink()
    with open(cut, "r+b") as f:
        f.truncate(100)
    rc, report = check(tmp_path)
    assert rc == 1
    assert kinds(report) == sorted([("copy-missing", str(gone)), ("copy-size", str(cut))])
    for problem in report["problems"]:
        assert problem["session"] == session.name
        assert "only verified copy" in problem["message"] and problem["path"] in problem["fix"]
    text = ghostroll(tmp_path, "verify")
    assert text.returncode == 1 and f"✗ {session.name}" in text.stdout
    assert text.stdout.strip().endswith("2 problems")


def test_a_flipped_byte_is_found_only_by_read_data(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    victim = jpegs(session)[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert check(tmp_path)[0] == 0  # same size: the fast check cannot see it
    rc, report = check(tmp_path, "--read-data")
    assert rc == 1 and kinds(report) == [("copy-damaged", str(victim))]


def test_stale_temp_is_reported_but_a_live_runs_is_not(tmp_path: Path) -> None:
    shoot(tmp_path)
    base = tmp_path / "sessions"
    stale = base / ".incoming" / "deadbeef0000-1.part"
    stale.write_bytes(b"half a photo")
    with IncomingDir(base) as live:  # a run copying right now (it holds its flock)
        in_flight = live.temp()
        in_flight.write_bytes(b"a photo in flight")
        rc, report = check(tmp_path)
        assert rc == 1 and kinds(report) == [("stale-temp", str(stale))]
        assert stale.exists()  # reported, not deleted
        rc, report = check(tmp_path, "--repair")
        assert report["repaired"] == ["removed 1 stale temp file(s)"]
        assert not stale.exists() and in_flight.exists()
    rc, report = check(tmp_path)  # its run ended without cleaning up: now it is stale
    assert rc == 1 and kinds(report) == [("stale-temp", str(in_flight))]


def test_unrecorded_file_in_originals_is_reported_and_kept(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    stray = session / "originals" / "DCIM" / "100GHOST" / "IMG_9999.JPG"
    stray.write_bytes(b"not from any record")
    rc, report = check(tmp_path)
    assert rc == 1 and kinds(report) == [("unrecorded", str(stray))]
    assert stray.exists()


def test_a_partial_gallery_write_is_a_warning(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    temp = session / "derived" / ".share.zip.tmp"
    temp.write_bytes(b"PK half a zip")
    rc, report = check(tmp_path)
    assert rc == 0 and [(w["kind"], w["path"]) for w in report["warnings"]] == [
        ("partial-write", str(temp))]


def test_processed_session_without_its_share_image(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    share = sorted((session / "derived" / "share").glob("*.jpg"))[0]
    share.unlink()
    rc, report = check(tmp_path)
    assert rc == 1 and kinds(report) == [("derived-missing", str(share))]
    rc, report = check(tmp_path, "--repair")
    assert rc == 1 and report["repaired"] == [
        f"{session.name}: will be processed again by `ghostroll work` (the appliance runs "
        "it by itself)"]
    assert ghostroll(tmp_path, "work").returncode == 0
    assert share.exists() and check(tmp_path)[0] == 0


def test_set_aside_session_is_reported_with_its_error(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    with Database(tmp_path / "ghostroll.db") as db:
        db.set_process_error(session.name, "RuntimeError: no AV1 decoder")
    rc, report = check(tmp_path)
    assert rc == 1 and kinds(report) == [("set-aside", str(session))]
    problem = report["problems"][0]
    assert "no AV1 decoder" in problem["message"] and session.name in problem["fix"]


def test_a_copy_is_checked_where_it_is_recorded(tmp_path: Path) -> None:
    """Later work records archive-disk copies and prunes local ones: verify follows the
    rows. A pruned copy is not looked for, but its content still needs a verified copy."""
    session = shoot(tmp_path)
    original = jpegs(session)[0]
    archive = tmp_path / "archive" / "a.jpg"
    archive.parent.mkdir()
    archive.write_bytes(original.read_bytes())
    with Database(tmp_path / "ghostroll.db") as db:
        (copy,) = [c for c in db.copies() if c.target == str(original)]
        with db.transaction():
            db.record_copy(copy.sha256, "archive-disk", str(archive), copy.size)
            db.record_copy(copy.sha256, "local", str(original), copy.size, state="pruned")
    original.unlink()
    rc, report = check(tmp_path, "--read-data")
    assert (rc, report["problems"]) == (0, [])
    assert report["checked"]["pruned"] == 1
    archive.unlink()
    rc, report = check(tmp_path)
    assert rc == 1 and kinds(report) == [("copy-missing", str(archive))]
    with Database(tmp_path / "ghostroll.db") as db, db.transaction():
        db.conn.execute("DELETE FROM copies WHERE location = 'archive-disk'")
    rc, report = check(tmp_path)
    assert rc == 1 and [p["kind"] for p in report["problems"]] == ["no-copy"]


def test_read_data_resumes_after_being_killed(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    total = sum(1 for p in (session / "originals").rglob("*") if p.is_file())
    killed = ghostroll(tmp_path, "verify", "--read-data", "--json",
                       env={"GHOSTROLL_FAULT": "verify.read:kill@3"})
    assert killed.returncode == -signal.SIGKILL
    checkpoint = tmp_path / "ghostroll.db.verify-read"
    assert len(checkpoint.read_text().splitlines()) == 1 + 2  # header + two copies
    rc, report = check(tmp_path, "--read-data")
    assert rc == 0
    assert (report["checked"]["hash_resumed"], report["checked"]["hashed"]) == (2, total - 2)
    assert not checkpoint.exists()  # the pass completed
    rc, report = check(tmp_path, "--read-data")
    assert report["checked"]["hashed"] == total  # a new pass reads everything again
    ghostroll(tmp_path, "verify", "--read-data", env={"GHOSTROLL_FAULT": "verify.read:kill@2"})
    rc, report = check(tmp_path, "--read-data", "--restart")
    assert (rc, report["checked"]["hashed"], report["checked"]["hash_resumed"]) == (0, total, 0)


def test_session_limits_every_check(tmp_path: Path) -> None:
    first = shoot(tmp_path, "card1", photos=2)
    second = shoot(tmp_path, "card2", photos=2)
    jpegs(first)[0].unlink()
    assert check(tmp_path, "--session", "2")[0] == 0
    rc, report = check(tmp_path, "--session", first.name[:-2])
    assert rc == 1 and {p["session"] for p in report["problems"]} == {first.name}
    assert check(tmp_path, "--session", second.name)[0] == 0
    rc, report = check(tmp_path, "--session", "nope")
    assert rc == 2 and "no session matches" in report["problems"][0]["message"]


def test_unusable_database_exits_2_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "ghostroll.db").write_bytes(b"this is not a database" * 100)
    rc, report = check(tmp_path)
    assert rc == 2 and report["ok"] is False and report["problems"][0]["kind"] == "unusable"
    assert "unusable" in report["problems"][0]["message"]
    done = ghostroll(tmp_path, "verify")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_no_database_yet_is_not_created(tmp_path: Path) -> None:
    rc, report = check(tmp_path)
    assert rc == 0 and report["warnings"][0]["kind"] == "not-checked"
    assert not (tmp_path / "ghostroll.db").exists()


def test_damaged_database_is_a_problem(tmp_path: Path) -> None:
    shoot(tmp_path)
    db_path = tmp_path / "ghostroll.db"
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = "
                            "'sqlite_autoindex_files_1'").fetchone()[0]
    with open(db_path, "r+b") as f:  # scribble over the dedupe index's b-tree page
        f.seek((root - 1) * page_size + 8)
        f.write(b"\xff" * 64)
    rc, report = check(tmp_path)
    # integrity_check finds it (1), or reading the damaged index fails first (2)
    assert (rc, report["problems"][0]["kind"]) in ((1, "database"), (2, "unusable"))
    assert "restore" in report["problems"][0]["fix" if rc == 1 else "message"]
    done = ghostroll(tmp_path, "verify")
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr


# ---------------------------------------------------------------- the bucket


def published(tmp: Path, bucket: S3Bucket) -> tuple[Path, dict[str, str]]:
    settings = {**bucket.config_flags(), "clock_trusted": "1"}
    return shoot(tmp, **settings), settings


def test_published_session_with_an_object_gone_from_the_bucket(tmp_path: Path,
                                                             s3_bucket: S3Bucket) -> None:
    session, settings = published(tmp_path, s3_bucket)
    rc, report = check(tmp_path, **settings)
    assert (rc, report["problems"], report["warnings"]) == (0, [], [])
    assert report["checked"]["unsigned_gets"] == 1  # and it was denied
    assert report["checked"]["objects"] >= 10
    cfg = make_config(tmp_path, **settings)
    prefix = prefix_for(cfg, session.name)
    thumb = next(k for k in s3_bucket.keys(prefix) if "/thumbs/" in k)
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=thumb)
    rc, report = check(tmp_path, **settings)
    assert rc == 1 and kinds(report) == [("object-missing", f"s3://{s3_bucket.name}/{thumb}")]
    rc, report = check(tmp_path, "--local", **settings)  # no bucket requests at all
    assert rc == 0 and "objects" not in report["checked"]
    assert report["checked"]["bucket_sessions_skipped"] == 1
    rc, report = check(tmp_path, "--repair", **settings)
    assert rc == 1 and report["repaired"] == [
        f"{session.name}: 1 object(s) will be uploaded again by `ghostroll publish`"]
    done = ghostroll(tmp_path, "publish", **settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert thumb in s3_bucket.keys(prefix)
    assert check(tmp_path, **settings)[0] == 0


def test_bucket_changed_after_publishing(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    session, settings = published(tmp_path, s3_bucket)
    s3_bucket.server.create_bucket("other-bucket-v")
    rc, report = check(tmp_path, **{**settings, "s3_bucket": "other-bucket-v"})
    assert rc == 1 and [p["kind"] for p in report["problems"]] == ["not-uploaded"]
    assert f"reshare {session.name}" in report["problems"][0]["fix"]


def test_objects_are_looked_for_even_when_the_ledger_forgot_them(
        tmp_path: Path, s3_bucket: S3Bucket) -> None:
    """A device upgraded from schema 2 starts with an empty ledger: its published
    sessions are fine as long as their objects are in the bucket."""
    session, settings = published(tmp_path, s3_bucket)
    with Database(tmp_path / "ghostroll.db") as db, db.transaction():
        db.conn.execute("DELETE FROM uploads")
    assert check(tmp_path, **settings)[0] == 0
    prefix = prefix_for(make_config(tmp_path, **settings), session.name)
    share = next(k for k in s3_bucket.keys(prefix) if "/share/" in k)
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=share)
    rc, report = check(tmp_path, **settings)
    assert rc == 1 and kinds(report) == [("not-uploaded", f"s3://{s3_bucket.name}/{share}")]


def test_public_bucket_is_a_problem(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    _, settings = published(tmp_path, s3_bucket)
    public = {"Version": "2012-10-17", "Statement": [{
        "Sid": "Oops", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{s3_bucket.name}/*"}]}
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.name, Policy=json.dumps(public))
    rc, report = check(tmp_path, **settings)
    assert rc == 1 and [p["kind"] for p in report["problems"]] == ["bucket-public"]


def test_offline_bucket_is_a_warning_not_a_failure(tmp_path: Path,
                                                   s3_bucket: S3Bucket) -> None:
    _, settings = published(tmp_path, s3_bucket)
    s3_bucket.server.stop()  # the next test's fixture starts it again
    rc, report = check(tmp_path, **settings)
    assert rc == 0 and report["problems"] == []
    assert [w["kind"] for w in report["warnings"]] == ["offline"]
    assert "cannot check the bucket: offline" in report["warnings"][0]["message"]


# ---------------------------------------------------------------- the appliance


def test_the_idle_screen_shows_the_last_problem(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    cfg = make_config(tmp_path)

    def idle_screen() -> Screen:  # what a freshly started service shows while idle
        service = Service(cfg, load_kit("waveshare-2in13-v4"), Devices(
            panel_submit=lambda image, state, full: None, eject=lambda d: None,
            shutdown=lambda: None))
        return screen_for(service.model, service.env())

    assert not any("verify" in line for line in idle_screen().lines)
    jpegs(session)[0].unlink()
    assert check(tmp_path, "--local")[0] == 1
    screen = idle_screen()
    assert screen.lines[0] == "verify: 1 problem · ssh: ghostroll verify"
    assert render(screen, 250, 122).size == (250, 122)
    (tmp_path / "ghostroll.db.verify.json").unlink()
    assert check(tmp_path, "--local", "--session", "1")[0] == 1  # one session: not kept
    assert not any("verify" in line for line in idle_screen().lines)


# ---------------------------------------------------------------- pure parts


def test_missing_derived_and_expected_objects() -> None:
    items = [{"kind": "photo", "share": "share/a.jpg", "thumb": "thumbs/a.jpg"},
             {"kind": "video", "share": None, "thumb": "thumbs/v.jpg"},
             {"kind": "photo", "share": "share/b.jpg", "thumb": "thumbs/b.jpg"}]
    present = {"share/a.jpg", "thumbs/a.jpg", "thumbs/b.jpg"}
    assert verify.missing_derived(items, "share.zip", present.__contains__) == [
        "thumbs/v.jpg", "share/b.jpg", "share.zip"]
    assert verify.expected_objects(items, None) == [
        "index.html", "progress.json", "thumbs/a.jpg", "share/a.jpg", "thumbs/v.jpg",
        "thumbs/b.jpg", "share/b.jpg"]


def test_the_appliance_runs_the_local_check_at_boot() -> None:
    unit = (REPO / "overlays/etc/systemd/system/ghostroll-verify.service").read_text()
    assert "ExecStart=/opt/ghostroll/venv/bin/ghostroll verify --local\n" in unit
    assert "User=ghostroll" in unit and "WantedBy=multi-user.target" in unit
    assert "Before=ghostroll.service" not in unit  # the panel does not wait for it
    install = (REPO / "image/install-ghostroll.sh").read_text()
    assert any(line.startswith("systemctl enable") and "ghostroll-verify.service" in line
               for line in install.splitlines())


def test_a_name_that_is_not_utf8_is_shown_escaped(tmp_path: Path) -> None:
    session = shoot(tmp_path)
    folder = os.fsencode(session / "originals" / "DCIM" / "100GHOST")
    with open(os.path.join(folder, b"IMG_\xff\xfe.JPG"), "wb") as f:
        f.write(b"stray")
    rc, report = check(tmp_path)
    expected = str(session / "originals" / "DCIM" / "100GHOST") + "/IMG_\\xff\\xfe.JPG"
    assert rc == 1 and kinds(report) == [("unrecorded", expected)]
    text = ghostroll(tmp_path, "verify")
    assert text.returncode == 1 and f"where: {expected}" in text.stdout
    assert "Traceback" not in text.stderr


def test_the_read_data_bar_redraws_in_place_and_ends_its_line() -> None:
    out, now = io.StringIO(), iter([0.0, 0.05, 0.3, 0.31])
    bar = verify.HashBar(out, clock=lambda: next(now))
    bar(0, 2, 0, 4_000_000)
    bar(0, 2, 1_000_000, 4_000_000)  # too soon after the last draw: skipped
    bar(1, 2, 2_000_000, 4_000_000)
    bar(2, 2, 4_000_000, 4_000_000)  # the end is always drawn
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 3
    assert frames[1].startswith("re-hashing [############............] 1/2 copies 2.0 MB/4.0 MB")
    assert frames[-1].endswith("\n") and not frames[1].endswith("\n")


def test_session_of_a_recorded_path() -> None:
    roots = {"/b/s/shoot-1": "shoot-1", "/b/s/shoot-10": "shoot-10"}
    assert verify.session_of("/b/s/shoot-10/originals/DCIM/A.JPG", roots) == "shoot-10"
    assert verify.session_of("/b/s/shoot-1/originals/A.JPG", roots) == "shoot-1"
    assert verify.session_of("/archive/shoot-1/A.JPG", roots) is None
