"""`ghostroll demo`: the whole job on a card it generates, in a folder of its own.

Nothing outside `--dir` is touched: the demo has its own sessions folder and database.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ghostroll import config
from ghostroll.synthetic import make_demo_card


def demo_config(workdir: Path) -> config.Config:
    """Defaults, with every path inside the demo folder (no config file, no env)."""
    return config.load(config_file=None, env={}, flags={
        "base_dir": str(workdir / "sessions"),
        "db_path": str(workdir / "ghostroll.db"),
    })


def run_demo(workdir: Path, photos: int = 12) -> int:
    from ghostroll.cli import exit_code, run_card

    workdir = workdir.resolve()
    card = workdir / "card"
    if card.exists():
        shutil.rmtree(card)
    print(f"demo: generating a camera card with {photos} photos in {card}")
    make_demo_card(card, photos=photos)
    cfg = demo_config(workdir)
    print("demo: ingesting it (copy once, hash while copying, verify, remember)")
    result = run_card(card, cfg, label="DEMO_CARD")
    print("demo: inserting the same card again (recognised without reading any file)")
    again = run_card(card, cfg, label="DEMO_CARD")
    if again.new or again.card_bytes_read:
        print("demo: the second pass should have read nothing", file=sys.stderr)
        return 1
    return exit_code(result)
