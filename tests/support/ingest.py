"""Helpers for ingest tests: a config whose paths all live in a temp folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghostroll import config
from ghostroll.card.ingest import IngestResult, ingest_card
from ghostroll.card.volume import Volume
from ghostroll.commands.demo import workdir_config
from ghostroll.storage.db import Database


def make_config(tmp: Path, **flags: Any) -> config.Config:
    return workdir_config(tmp, **flags)


def ingest(card: Path, cfg: config.Config, volume_id: str = "fat:1234-ABCD",
           **kw: Any) -> IngestResult:
    with Database(cfg.storage.db_path) as db:
        return ingest_card(card, cfg, db, Volume(volume_id, "TEST"), **kw)


def originals(cfg: config.Config) -> dict[str, list[Path]]:
    """card path -> every stored copy of it, across all sessions."""
    found: dict[str, list[Path]] = {}
    for session in cfg.storage.base_dir.glob("shoot-*"):
        for path in (session / "originals").rglob("*"):
            if path.is_file():
                rel = path.relative_to(session / "originals").as_posix()
                found.setdefault(rel, []).append(path)
    return found
