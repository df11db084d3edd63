"""The archive disk (`archive_dir`): a second verified copy of every original, made from
the local copy, in the dated layout, resumable, never doubled; `ghostroll verify` is the
oracle. The archive lives on another filesystem than the sessions (tmpfs), as a USB disk
would."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostroll.archive import layout
from ghostroll.card.copier import CHUNK
from ghostroll.card.scan import scan_card
from ghostroll.devtools.synthetic import make_blob, make_demo_card
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database, SessionRow

REPO = Path(__file__).resolve().parents[1]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def archive() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="gr-archive-", dir="/dev/shm"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_demo_card(tmp_path_factory.mktemp("card") / "WEDDING", photos=3)
    # same name in a second camera folder, other content: both must be archived
    make_blob(root / "DCIM" / "101GHOST" / "IMG_0001.JPG", 3000, seed=9,
              header=b"\xff\xd8\xff\xe0")
    make_blob(root / "DCIM" / "100GHOST" / "BIG_0001.MOV", 3 << 20, seed=5,
              header=b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ")
    return root


def ghostroll(tmp: Path, *args: str, archive: Path | None = None,
              fault: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"GHOSTROLL_BASE_DIR": str(tmp / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp / "ghostroll.db"),
           "HOME": str(tmp), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **extra}
    if archive is not None:
        env["GHOSTROLL_ARCHIVE_DIR"] = str(archive)
    if fault:
        env["GHOSTROLL_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "ghostroll", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=180)


def run(tmp: Path, card: Path, archive: Path | None, fault: str = "") \
        -> subprocess.CompletedProcess[str]:
    return ghostroll(tmp, "run", str(card), "--volume-id", "fat:CAFE-0001",
                     archive=archive, fault=fault)


def archived_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and p.name not in (layout.SUMS, layout.MANIFEST)
                  and ".locks" not in p.parts and ".incoming" not in p.parts)


def assert_archived_once(card: Path, root: Path) -> None:
    card_shas = sorted(sha(card / f.rel_path) for f in scan_card(card).files)
    on_disk = archived_files(root)
    assert sorted(sha(p) for p in on_disk) == card_shas, "each content exactly once"
    assert not list((root / ".incoming").glob("*.part"))


def test_run_archives_in_the_dated_layout_and_says_safe_to_format(
        tmp_path: Path, card: Path, archive: Path) -> None:
    done = run(tmp_path, card, archive)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("2 copies ✓ · safe to format")
    assert_archived_once(card, archive)
    with Database(tmp_path / "ghostroll.db") as db:
        session = db.sessions()[0]
        copies = db.copies(location=dbm.ARCHIVE_DISK)
    folder = archive / layout.session_folder(session.created_utc, "WEDDING")
    assert folder.parent.name == folder.name[:4] and folder.name.endswith(" WEDDING")
    names = sorted(p.name for p in archived_files(archive))
    assert "IMG_0001.JPG" in names and "IMG_0001~2.JPG" in names  # two camera folders
    assert all(p.parent == folder for p in archived_files(archive))
    assert len(copies) == len(names) and {c.state for c in copies} == {"verified"}
    assert {c.target for c in copies} == {str(p) for p in archived_files(archive)}
    # the folder describes itself: sha256sum -c proves it, the manifest names the session
    check = subprocess.run(["sha256sum", "-c", layout.SUMS], cwd=folder, capture_output=True,
                           text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == len(names)
    manifest = json.loads((folder / layout.MANIFEST).read_text())
    assert manifest["session_id"] == session.id and manifest["complete"] is True
    assert sorted(e["name"] for e in manifest["files"]) == names
    # a second run copies nothing again and still says two copies
    again = run(tmp_path, card, archive)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert again.stdout.rstrip().endswith("2 copies ✓ · safe to format")
    assert_archived_once(card, archive)
    verify = ghostroll(tmp_path, "verify", "--read-data", archive=archive)
    assert verify.returncode == 0, verify.stdout
    assert f"{2 * len(names)} copies of {len(names)} contents" in verify.stdout


def test_without_an_archive_nothing_changes(tmp_path: Path, card: Path) -> None:
    done = run(tmp_path, card, None)
    assert done.returncode == 0
    assert "copies ✓" not in done.stdout and "copy ·" not in done.stdout
    assert "archive " not in done.stdout
    with Database(tmp_path / "ghostroll.db") as db:
        assert db.copies(location=dbm.ARCHIVE_DISK) == []


def test_missing_or_same_disk_archive_is_refused_and_the_card_is_safe_to_remove(
        tmp_path: Path, card: Path) -> None:
    missing = run(tmp_path, card, tmp_path / "not-mounted")
    assert missing.returncode == 1
    assert "archive disk not found" in missing.stdout and "untouched" in missing.stdout
    assert missing.stdout.rstrip().endswith("1 copy · safe to remove")
    same = tmp_path / "same-disk"  # an unmounted mount point sits on the sessions' disk
    same.mkdir()
    refused = run(tmp_path, card, same)
    assert refused.returncode == 1 and "same disk as the sessions" in refused.stdout
    assert list(same.iterdir()) == []
    assert "Traceback" not in missing.stderr + refused.stderr
    assert ghostroll(tmp_path, "verify").returncode == 0


@pytest.mark.parametrize("fault", [
    "archive.record:kill@3",  # copied, renamed and verified, not yet recorded
    "copy.chunk:kill@{card+2}",  # mid-file in the archive phase, after the card's chunks
    "archive.file:kill@2",
])
def test_killed_archive_resumes_without_doubles(tmp_path: Path, card: Path, archive: Path,
                                                fault: str) -> None:
    chunks = sum(-(-f.size // CHUNK) for f in scan_card(card).files)
    crashed = run(tmp_path, card, archive, fault=fault.replace("{card+2}", str(chunks + 2)))
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    # the local copy is complete and true whatever the archive's state
    assert ghostroll(tmp_path, "verify", "--read-data", archive=archive).returncode == 0
    done = run(tmp_path, card, archive)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("2 copies ✓ · safe to format")
    assert_archived_once(card, archive)
    verify = ghostroll(tmp_path, "verify", "--read-data", archive=archive)
    assert verify.returncode == 0, verify.stdout


@pytest.mark.root
def test_full_archive_disk_stops_clearly_and_resumes_on_a_bigger_one(
        tmp_path: Path, card: Path) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        full = run(tmp_path, card, mount)
        assert full.returncode == 1, full.stdout + full.stderr
        assert "archive disk" in full.stdout and "is full" in full.stdout
        assert full.stdout.rstrip().endswith("1 copy · safe to remove")
        assert "Traceback" not in full.stderr
        assert not list((mount / ".incoming").glob("*.part"))
        assert ghostroll(tmp_path, "verify", "--read-data", archive=mount).returncode == 0
        subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)
        done = run(tmp_path, card, mount)
        assert done.returncode == 0, done.stdout + done.stderr
        assert_archived_once(card, mount)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_verify_finds_a_damaged_or_missing_archive_copy(tmp_path: Path, card: Path,
                                                        archive: Path) -> None:
    assert run(tmp_path, card, archive).returncode == 0
    first, second = archived_files(archive)[:2]
    first.unlink()
    damaged = bytearray(second.read_bytes())
    damaged[-1] ^= 0xFF
    second.write_bytes(bytes(damaged))
    os.utime(second)
    report = json.loads(ghostroll(tmp_path, "verify", "--read-data", "--json",
                                  archive=archive).stdout)
    kinds = {(p["kind"], p["path"]) for p in report["problems"]}
    assert ("copy-missing", str(first)) in kinds
    assert ("copy-damaged", str(second)) in kinds


def test_folder_names_and_receipts() -> None:
    session = SessionRow(3, "shoot-x", Path("/s"), "2026-06-30T23:30:00.000Z", "fat:1",
                         "Smith/Jones: day*1", "card", "processed", None)
    album = layout.album_name(session)
    assert album == "Smith_Jones_ day_1"
    from datetime import UTC, timedelta, timezone
    assert str(layout.session_folder(session.created_utc, album, tz=UTC)) == \
        "2026/2026-06-30 Smith_Jones_ day_1"
    east = timezone(timedelta(hours=2))
    assert str(layout.session_folder(session.created_utc, "A", 2, tz=east)) == \
        "2026/2026-07-01 A (2)"
    assert layout.sums_text([("b.JPG", "22"), ("a\\b", "11")]) == \
        "\\11  a\\\\b\n22  b.JPG\n"
    assert layout.receipt(2) == "2 copies ✓ · safe to format"
    assert layout.receipt(1) == "1 copy · safe to remove"


def test_restore_rebuilds_a_new_device_from_the_archive_disk(
        tmp_path: Path, card: Path, archive: Path) -> None:
    old, new = tmp_path / "old-pi", tmp_path / "new-pi"
    assert run(old, card, archive).returncode == 0
    with Database(old / "ghostroll.db") as db:
        before = db.sessions()[0]
    restored = ghostroll(new, "restore", "--from", str(archive), archive=archive)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored 1 session(s)" in restored.stdout
    with Database(new / "ghostroll.db") as db:
        (session,) = db.sessions()
        assert (session.id, session.created_utc) == (before.id, before.created_utc)
        assert session.state == "processed"
        copies = db.copies()
    card_shas = {sha(card / f.rel_path) for f in scan_card(card).files}
    assert {c.sha256 for c in copies if c.location == "local"} == card_shas
    assert {c.sha256 for c in copies if c.location == "archive-disk"} == card_shas
    for f in scan_card(card).files:  # the camera's folders are back, byte for byte
        stored = session.path / "originals" / f.rel_path
        if not stored.exists():
            stored = stored.with_name(stored.stem + "~2" + stored.suffix)
        assert sha(stored) == sha(card / f.rel_path)
    # the card is recognised without reading, and already has its two copies
    again = run(new, card, archive)
    assert "0 new" in again.stdout and "nothing new" in again.stdout
    assert again.stdout.rstrip().endswith("2 copies ✓ · safe to format")
    assert ghostroll(new, "verify", "--read-data", archive=archive).returncode == 0
    # a restore again changes nothing
    twice = ghostroll(new, "restore", "--from", str(archive), archive=archive)
    assert twice.returncode == 0 and "1 session(s) already known" in twice.stdout


def test_restore_refuses_a_damaged_copy_and_a_folder_without_archive(
        tmp_path: Path, card: Path, archive: Path) -> None:
    assert run(tmp_path / "old", card, archive).returncode == 0
    victim = archived_files(archive)[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    restored = ghostroll(tmp_path / "new", "restore", "--from", str(archive))
    assert restored.returncode == 1
    assert f"not restored: {victim}: its content does not match" in restored.stdout
    empty = ghostroll(tmp_path / "other", "restore", "--from", str(tmp_path))
    assert empty.returncode == 2 and "no GhostRoll archive" in empty.stderr
    assert "Traceback" not in restored.stderr + empty.stderr


def test_prune_removes_only_originals_with_enough_copies_elsewhere(
        tmp_path: Path, card: Path, archive: Path) -> None:
    assert run(tmp_path, card, archive).returncode == 0
    with Database(tmp_path / "ghostroll.db") as db:
        (session,) = db.sessions()
    originals = sorted(p for p in (session.path / "originals").rglob("*") if p.is_file())
    args = ("run", str(card), "--volume-id", "fat:CAFE-0001")
    always = {"GHOSTROLL_PRUNE": "archived", "GHOSTROLL_PRUNE_KEEP_FREE_MB": "10000000"}
    # an unplugged archive disk holds nothing that counts
    away = archive.with_name(archive.name + "-unplugged")
    archive.rename(away)
    try:
        unplugged = ghostroll(tmp_path, *args, archive=archive, GHOSTROLL_PRUNE_MIN_COPIES="1",
                              **always)
    finally:
        away.rename(archive)
    assert "archive disk not found" in unplugged.stdout and "pruned" not in unplugged.stdout
    # the default asks for two copies outside the device: the disk alone is not enough
    default = ghostroll(tmp_path, *args, archive=archive, **always)
    assert "pruned" not in default.stdout
    assert all(p.is_file() for p in originals)
    pruned = ghostroll(tmp_path, *args, archive=archive, GHOSTROLL_PRUNE_MIN_COPIES="1",
                       **always)
    assert f"pruned {len(originals)} local original(s) of 1 oldest" in pruned.stdout, \
        pruned.stdout + pruned.stderr
    assert not any(p.exists() for p in originals)
    assert any((session.path / "derived" / "share").iterdir()), "derivatives stay"
    with Database(tmp_path / "ghostroll.db") as db:
        assert {c.state for c in db.copies(location="local")} == {"pruned"}
    assert_archived_once(card, archive)
    verify = ghostroll(tmp_path, "verify", "--read-data", archive=archive)
    assert verify.returncode == 0, verify.stdout
    assert pruned.stdout.rstrip().endswith("1 copy · safe to remove")  # the disk's, alone


def test_prune_plan_is_oldest_first_and_skips_busy_sessions() -> None:
    from collections import Counter

    from ghostroll.archive.prune import plan_prune
    from ghostroll.storage.db import CopyRow

    def session(n: int, state: str = "published") -> SessionRow:
        return SessionRow(n, f"s{n}", Path(f"/b/s{n}"), "", "v", "", "card", state, None)

    local = [CopyRow(f"h{n}", "local", f"/b/s{n}/originals/a", "verified", 10, "")
             for n in (1, 2, 3, 4)]
    outside = Counter({"h1": 2, "h2": 2, "h3": 1, "h4": 2})
    sessions = [session(4), session(3), session(2, "copied"), session(1)]
    plan = plan_prune(sessions, local, outside, busy=set(), need_bytes=10, min_copies=2)
    assert [p.session_id for p in plan] == ["s1"]
    plan = plan_prune(sessions, local, outside, busy={"s1"}, need_bytes=100, min_copies=2)
    assert [p.session_id for p in plan] == ["s4"]  # s2 not processed, s3 one copy short
    assert plan_prune(sessions, local, outside, set(), need_bytes=0, min_copies=1) == []


def test_verify_with_the_archive_disk_unplugged_warns_once(tmp_path: Path, card: Path,
                                                           archive: Path) -> None:
    assert run(tmp_path, card, archive).returncode == 0
    away = archive.with_name(archive.name + "-unplugged")
    archive.rename(away)
    try:
        report = ghostroll(tmp_path, "verify", "--read-data", "--json", archive=archive)
    finally:
        away.rename(archive)
    data = json.loads(report.stdout)
    assert report.returncode == 0 and data["problems"] == []
    (warning,) = [w for w in data["warnings"] if "archive disk is not mounted" in w["message"]]
    assert warning["path"] == str(archive) + "/"
    assert data["checked"]["archive_offline"] == len(archived_files(archive))
    # back in place, every archive copy is checked again
    again = json.loads(ghostroll(tmp_path, "verify", "--json", archive=archive).stdout)
    assert "archive_offline" not in again["checked"] and again["ok"]


def test_restore_killed_midway_finishes_on_the_next_run(tmp_path: Path, card: Path,
                                                        archive: Path) -> None:
    old, new = tmp_path / "old-pi", tmp_path / "new-pi"
    assert run(old, card, archive).returncode == 0
    killed = ghostroll(new, "restore", "--from", str(archive), fault="copy.chunk:kill@3")
    assert killed.returncode == -signal.SIGKILL
    done = ghostroll(new, "restore", "--from", str(archive))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored 1 session(s)" in done.stdout
    with Database(new / "ghostroll.db") as db:
        (session,) = db.sessions()
        local = [c for c in db.copies() if c.location == "local"]
    stored = [p for p in (session.path / "originals").rglob("*") if p.is_file()]
    assert sorted(sha(p) for p in stored) == sorted(c.sha256 for c in local)
    assert len(local) == len(scan_card(card).files)  # nothing twice, nothing missing
    assert ghostroll(new, "verify", "--read-data", archive=archive).returncode == 0
