"""kill -9 at any moment, run again on the same card: nothing lost, nothing duplicated,
no partial file counted, and the unfinished session is resumed."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ghostroll.card.scan import scan_card
from ghostroll.devtools.synthetic import make_blob, make_demo_card
from ghostroll.storage.db import Database
from tests.support.ingest import make_config, originals

REPO = Path(__file__).resolve().parents[1]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(tmp: Path, card: Path, *crash: str) -> subprocess.CompletedProcess[str]:
    env = {"GHOSTROLL_BASE_DIR": str(tmp / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp / "ghostroll.db"),
           "HOME": str(tmp), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    args = ["run", str(card), "--volume-id", "fat:CAFE-0001"]
    cmd = ([sys.executable, "-m", "tests.support.crash_runner", *crash, *args] if crash
           else [sys.executable, "-m", "ghostroll", *args])
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_demo_card(tmp_path_factory.mktemp("card") / "card", photos=6)
    # a large file so that a kill can land in the middle of one
    make_blob(root / "DCIM" / "100GHOST" / "BIG_0001.MOV", 12 << 20, seed=5,
              header=b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ")
    return root


@pytest.mark.parametrize(("point", "n"), [
    ("read", 1), ("read", 9), ("fsync", 1), ("fsync", 4), ("fsync", 11),
    ("in_tx", 1), ("in_tx", 5), ("after_tx", 1), ("after_tx", 7), ("verify", 3),
])
def test_killed_run_then_rerun_loses_and_duplicates_nothing(
        tmp_path: Path, card: Path, point: str, n: int) -> None:
    expected = {f.rel_path: sha(card / f.rel_path) for f in scan_card(card).files}
    crashed = run(tmp_path, card, point, str(n))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    done = run(tmp_path, card)
    assert done.returncode == 0, done.stdout + done.stderr

    cfg = make_config(tmp_path)
    stored = originals(cfg)
    assert set(stored) == set(expected)
    for rel, copies in stored.items():
        assert len(copies) == 1, f"{rel} stored {len(copies)} times"
        assert sha(copies[0]) == expected[rel]
    sessions = sorted(cfg.storage.base_dir.glob("shoot-*"))
    assert len(sessions) == 1, "the unfinished session must be resumed, not a new one"
    assert not list((cfg.storage.base_dir / ".incoming").glob("*.part"))
    with Database(cfg.storage.db_path) as db:
        seen = db.seen_on_volume("fat:CAFE-0001")
        assert {p: r.sha256 for p, r in seen.items()} == expected
        assert db.known_hashes(expected.values()) == set(expected.values())
        assert [s.state for s in db.sessions()] == ["processed"]
        assert db.integrity_check() == "ok"
    entries = json.loads((sessions[0] / "manifest.json").read_text())["files"]
    assert sorted(e["card_path"] for e in entries) == sorted(expected)
    assert {e["status"] for e in entries} <= {"verified", "duplicate"}
    assert all(e["sha256"] == expected[e["card_path"]] for e in entries)
    # and once more: the card is recognised without reading anything
    again = run(tmp_path, card)
    assert "0 new" in again.stdout and "no session created" in again.stdout
