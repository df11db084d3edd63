"""Where the real camera samples are (../shared/camera-samples, or $GHOSTROLL_SAMPLES)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def samples_dir() -> Path:
    override = os.environ.get("GHOSTROLL_SAMPLES")
    return Path(override) if override else REPO.parent / "shared" / "camera-samples"


def require_samples() -> Path:
    """The samples folder, or skip the test with the reason."""
    path = samples_dir()
    if not (path / "MANIFEST.tsv").is_file():
        pytest.skip(f"camera samples not found at {path} (set GHOSTROLL_SAMPLES; CI has them)")
    return path


def manifest() -> list[dict[str, str]]:
    with (require_samples() / "MANIFEST.tsv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def sample_files() -> list[Path]:
    root = require_samples()
    return [root / row["filename"] for row in manifest()]
