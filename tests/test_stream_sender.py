"""The stream's uploads run in a child process (`pipeline/sender.py`): a run killed while
it uploads leaves no process behind (one holding the run's output open hung whoever
waited for it), and the run after it publishes everything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ghostroll.devtools.synthetic import make_demo_card
from tests.support.s3 import S3Bucket

REPO = Path(__file__).resolve().parents[1]


def ghostroll_run(tmp: Path, card: Path, bucket: S3Bucket,
                  fault: str = "") -> subprocess.CompletedProcess[str]:
    lines = ["[storage]", f'base_dir = "{tmp / "sessions"}"', f'db_path = "{tmp / "db"}"',
             "[s3]", "clock_trusted = true"]
    lines += [f'{k} = "{v}"' for k, v in bucket.config_flags().items()]
    (tmp / "config.toml").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GHOSTROLL_"))}
    env.update(GHOSTROLL_CONFIG=str(tmp / "config.toml"), HOME=str(tmp),
               PYTHONPATH=str(REPO), GHOSTROLL_FAULT=fault)
    return subprocess.run([sys.executable, "-m", "ghostroll", "run", str(card),
                           "--volume-id", "fat:5E4D-0001"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def test_a_run_killed_mid_upload_leaves_no_process_and_the_next_publishes(
        tmp_path: Path, s3_bucket: S3Bucket) -> None:
    card = make_demo_card(tmp_path / "card", photos=8)
    killed = ghostroll_run(tmp_path, card, s3_bucket, fault="upload@3")
    # returned at all: no upload process outlived the run with its stdout and stderr
    assert killed.returncode == -9, killed.stderr
    again = ghostroll_run(tmp_path, card, s3_bucket)
    assert again.returncode == 0, again.stderr
    assert "published shoot-" in again.stdout
    keys = s3_bucket.keys()
    shared = {p.name for p in (tmp_path / "sessions").glob("*/derived/share/*.jpg")}
    assert len(shared) >= 8
    assert {k.rsplit("/", 1)[1] for k in keys if "/share/" in k} >= shared
    assert any(k.endswith("/index.html") for k in keys)
