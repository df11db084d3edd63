"""The card phase on real files: copy once, verify, remember, dedupe, resume."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ghostroll.appliance.protocol import Progress
from ghostroll.card.scan import scan_card
from ghostroll.devtools.synthetic import make_blob, make_demo_card
from ghostroll.errors import DiskFullError
from ghostroll.storage.db import Database
from tests.support.ingest import ingest, make_config, originals
from tests.support.samples import manifest, require_samples


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card_hashes(card: Path) -> dict[str, str]:
    return {f.rel_path: sha(card / f.rel_path) for f in scan_card(card).files}


def test_demo_card_is_copied_verified_and_recorded(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=5)
    before = card_hashes(card)
    cfg = make_config(tmp_path)
    seen: list[Progress] = []
    result = ingest(card, cfg, progress=seen.append)
    assert result.complete and result.failed == 0
    assert result.new == len(before) == result.discovered
    assert result.card_bytes_read == sum((card / p).stat().st_size for p in before)
    assert result.junk == 1
    stored = originals(cfg)
    assert set(stored) == set(before)
    for rel, copies in stored.items():
        assert len(copies) == 1 and sha(copies[0]) == before[rel]
        assert copies[0].stat().st_mtime_ns == (card / rel).stat().st_mtime_ns
    session = result.session
    assert session is not None and session.state == "copied" and session.number == 1
    entries = json.loads((session.path / "manifest.json").read_text())["files"]
    assert {e["card_path"]: e["sha256"] for e in entries} == before
    assert {e["status"] for e in entries} == {"verified"}
    kinds = {e["card_path"].rsplit("/", 1)[1]: e["kind"] for e in entries}
    assert kinds["IMG_0006.NEF"] == "raw" and kinds["MVI_0007.MOV"] == "video"
    assert kinds["MVI_0007.THM"] == "sidecar"
    assert (session.path / "ghostroll.log").read_text().count("session") >= 1
    assert seen[-1].phase == "done" and seen[-1].new == len(before)
    assert not list((cfg.storage.base_dir / ".incoming").iterdir())
    assert card_hashes(card) == before  # never written


def test_reinsert_reads_nothing_and_creates_no_session(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=4)
    cfg = make_config(tmp_path)
    ingest(card, cfg)
    again = ingest(card, cfg)
    assert again.card_bytes_read == 0
    assert (again.new, again.known, again.session) == (0, again.discovered, None)
    assert len(list(cfg.storage.base_dir.glob("shoot-*"))) == 1


def test_same_content_on_another_card_is_not_copied_again(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=3)
    cfg = make_config(tmp_path)
    ingest(card, cfg, volume_id="fat:AAAA-0001")
    other = tmp_path / "other"
    shutil.copytree(card, other)
    extra = make_blob(other / "DCIM" / "101GHOST" / "NEW_0001.JPG", 5000, seed=99,
                      header=b"\xff\xd8\xff")
    result = ingest(other, cfg, volume_id="fat:BBBB-0002")
    assert result.new == 1 and result.duplicates == result.discovered - 1
    assert result.card_bytes_read == sum(f.size for f in scan_card(other).files)
    stored = originals(cfg)
    assert "DCIM/101GHOST/NEW_0001.JPG" in stored
    assert all(len(v) == 1 for v in stored.values())
    assert sha(stored["DCIM/101GHOST/NEW_0001.JPG"][0]) == sha(extra)


def test_identical_files_on_one_card_are_stored_once(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=2)
    dcim = card / "DCIM" / "100GHOST"
    shutil.copy2(dcim / "IMG_0001.JPG", dcim / "IMG_0001_COPY.JPG")
    cfg = make_config(tmp_path)
    result = ingest(card, cfg)
    assert result.duplicates == 1 and result.new == result.discovered - 1
    again = ingest(card, cfg)
    assert again.card_bytes_read == 0 and again.known == again.discovered


def test_hostile_and_unicode_names_are_kept_as_they_are(tmp_path: Path) -> None:
    dcim = tmp_path / "card" / "DCIM" / "100TEST"
    names = ["<img src=x onerror=alert(1)>.jpg", "café ünïcode.JPG", "new\nline.JPG",
             "spaces  and 'quotes\".JPG", "-rf.JPG"]
    for i, name in enumerate(names):
        make_blob(dcim / name, 1000 + i, seed=i, header=b"\xff\xd8\xff")
    cfg = make_config(tmp_path)
    result = ingest(tmp_path / "card", cfg)
    assert result.new == len(names) and not result.errors
    assert {Path(p).name for p in originals(cfg)} == set(names)


def test_broken_and_empty_files_are_still_originals(tmp_path: Path) -> None:
    dcim = tmp_path / "card" / "DCIM" / "100TEST"
    dcim.mkdir(parents=True)
    (dcim / "EMPTY.JPG").write_bytes(b"")
    (dcim / "TRUNC.JPG").write_bytes(b"\xff\xd8\xff\xe0garbage")
    cfg = make_config(tmp_path)
    result = ingest(tmp_path / "card", cfg)
    assert result.new == 2 and result.failed == 0


def test_every_camera_sample_is_ingested(tmp_path: Path) -> None:
    root = require_samples()
    rows = manifest()
    dcim = tmp_path / "card" / "DCIM" / "100SAMPL"
    dcim.mkdir(parents=True)
    for row in rows:
        shutil.copy2(root / row["filename"], dcim / row["filename"])
    cfg = make_config(tmp_path)
    result = ingest(tmp_path / "card", cfg)
    assert result.failed == 0 and result.discovered == len(rows)
    assert result.new == len({r["sha256"] for r in rows})
    stored = {Path(k).name: sha(v[0]) for k, v in originals(cfg).items()}
    for row in rows:
        if row["filename"] in stored:
            assert stored[row["filename"]] == row["sha256"], row["filename"]


def test_not_enough_space_stops_before_copying(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=2)
    free = shutil.disk_usage(tmp_path).free
    cfg = make_config(tmp_path, free_space_margin_mb=free // 2**20 + 10)
    with pytest.raises(DiskFullError, match=r"this card needs up to .* is free"):
        ingest(card, cfg)
    assert not list(cfg.storage.base_dir.glob("shoot-*"))


def test_cancel_keeps_verified_files_and_resumes_later(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=6)
    cfg = make_config(tmp_path)
    cancel = threading.Event()

    def cancel_after_three(p: Progress) -> None:
        if p.files_read >= 3:
            cancel.set()

    first = ingest(card, cfg, progress=cancel_after_three, cancel=cancel)
    assert first.cancelled and 3 <= first.new < first.discovered
    rest = ingest(card, cfg)
    assert rest.new == first.discovered - first.new and rest.known == first.new
    assert all(len(v) == 1 for v in originals(cfg).values())


def test_cli_run_prints_summary_and_exit_codes(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=2)
    env = {"GHOSTROLL_BASE_DIR": str(tmp_path / "s"), "GHOSTROLL_DB_PATH": str(tmp_path / "d.db"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = [sys.executable, "-m", "ghostroll", "run"]
    ok = subprocess.run([*run, str(card)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "6 files discovered, 6 new, 0 already safe, 0 failed" in ok.stdout
    assert "copying:" in ok.stdout  # plain progress lines when not a terminal
    bad = subprocess.run([*run, str(tmp_path)], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "no DCIM/" in bad.stderr and "Traceback" not in bad.stderr
    cfg_bad = subprocess.run([*run, str(card), "--upload-workers", "0"], capture_output=True,
                             text=True, env=env)
    assert cfg_bad.returncode == 2 and "upload_workers" in cfg_bad.stderr


def test_database_schema_is_versioned(tmp_path: Path) -> None:
    with Database(tmp_path / "g.db") as db:
        assert db.schema_version >= 2 and db.integrity_check() == "ok"
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    import sqlite3
    conn = sqlite3.connect(tmp_path / "g.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    from ghostroll.errors import DatabaseError
    with pytest.raises(DatabaseError, match="newer than this GhostRoll"):
        Database(tmp_path / "g.db")
