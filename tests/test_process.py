"""Processing a session made from every real camera sample: what can be shown is shown,
what cannot is itemised (summary and manifest), and originals are untouched."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

from ghostroll.job import process_pending
from ghostroll.storage.db import Database
from tests.support.ingest import ingest, make_config, originals
from tests.support.samples import manifest, require_samples


def test_samples_session_is_processed_with_itemised_problems(tmp_path: Path) -> None:
    root = require_samples()
    dcim = tmp_path / "card" / "DCIM" / "100SAMPL"
    dcim.mkdir(parents=True)
    for row in manifest():
        shutil.copy2(root / row["filename"], dcim / row["filename"])
    cfg = make_config(tmp_path)
    result = ingest(tmp_path / "card", cfg)
    before = {k: hashlib.sha256(v[0].read_bytes()).hexdigest()
              for k, v in originals(cfg).items()}
    with Database(cfg.storage.db_path) as db:
        [processed] = process_pending(cfg, db)
        assert db.session(processed.session_id).state == "processed"  # type: ignore[union-attr]
        assert process_pending(cfg, db) == []  # nothing left to do
    assert processed.videos == 3  # AVI, MOV, MP4 (the Live Photo MOV goes with its HEIC)
    problems = "\n".join(processed.problems)
    assert "truncated_sony_e5823.jpg: cannot decode" in problems
    assert "kodak_dc120_P003911.KDC: no usable preview" in problems
    session = result.session
    assert session is not None
    index = (session.path / "index.html").read_text()
    assert index.count('class="tile"') == processed.made
    entries = {e["card_path"].rsplit("/", 1)[1]: e
               for e in json.loads((session.path / "manifest.json").read_text())["files"]}
    assert entries["truncated_sony_e5823.jpg"]["derive_error"].startswith("cannot decode")
    assert entries["nikon_d90_DSC_0002.JPG"]["captured_from"] == "exif-original"
    after = {k: hashlib.sha256(v[0].read_bytes()).hexdigest()
             for k, v in originals(cfg).items()}
    assert after == before


def test_a_picture_deleted_in_the_camera_is_no_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A skipped number is most often a picture deleted in the camera: the run's summary
    does not warn about it; the session's log keeps it as information."""
    import io

    from ghostroll.devtools.synthetic import make_demo_card
    from ghostroll.job import run_job

    caplog.set_level(logging.INFO, logger="ghostroll")  # as `ghostroll run` sets it
    card = make_demo_card(tmp_path / "card", photos=5)
    (card / "DCIM" / "100GHOST" / "IMG_0003.JPG").unlink()  # deleted in the camera
    out = io.StringIO()
    job = run_job(card, make_config(tmp_path), out=out)
    summary = out.getvalue()
    assert "IMG_0003" not in summary and "missing" not in summary and "gap" not in summary
    log = (job.ingest.session.path / "ghostroll.log").read_text()
    assert "IMG_0003 not on the card (1 number)" in log
