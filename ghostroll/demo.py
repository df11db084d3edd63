"""`ghostroll demo`: the whole job on a card it generates, in a folder of its own.

Nothing outside `--dir` is touched: the demo has its own sessions folder and database.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ghostroll import config
from ghostroll.synthetic import make_demo_card


def workdir_config(workdir: Path, **flags: object) -> config.Config:
    """Defaults (no config file, no environment) with sessions and database inside
    `workdir`; `flags` override keys by name as CLI flags would."""
    values = {"base_dir": str(workdir / "sessions"), "db_path": str(workdir / "ghostroll.db")}
    values.update({k: str(v) for k, v in flags.items()})
    return config.load(config_file=None, env={}, flags=values)


def run_demo(workdir: Path, photos: int = 12) -> int:
    from ghostroll.job import run_job

    workdir = workdir.resolve()
    card = workdir / "card"
    if card.exists():
        shutil.rmtree(card)
    print(f"demo: generating a camera card with {photos} photos in {card}")
    make_demo_card(card, photos=photos)
    cfg = workdir_config(workdir)
    print("demo: ingesting it (copy once, hash while copying, verify, remember), then making"
          " share images, thumbnails and the gallery")
    job = run_job(card, cfg, label="DEMO_CARD")
    print("demo: inserting the same card again (recognised without reading any file)")
    again = run_job(card, cfg, label="DEMO_CARD")
    if again.ingest.new or again.ingest.card_bytes_read:
        print("demo: the second pass should have read nothing", file=sys.stderr)
        return 1
    for processed in job.processed:
        if processed.gallery is not None and job.ingest.session is not None:
            index = job.ingest.session.path / "index.html"
            print(f"demo: open the gallery: {index.as_uri()}")
    return job.exit_code
