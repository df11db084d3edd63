"""`ghostroll demo --serve` prints the local S3's endpoint, bucket and keys in a form a
user's own command takes: the printed settings reach the bucket."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from ghostroll.commands.demo import serve_lines
from tests.support.s3 import S3Bucket

REPO = Path(__file__).resolve().parents[1]


def test_printed_settings_reach_the_demo_bucket(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    flags = s3_bucket.config_flags()
    lines = serve_lines(flags)
    assert f"endpoint {flags['s3_endpoint_url']}" in lines[1]
    assert flags["s3_access_key_id"] in lines[1] and flags["s3_secret_access_key"] in lines[1]
    command = shlex.split(" ".join(lines[3:]).replace("\\\n", " ").replace(" \\ ", " "))
    assert command[0] == "env" and command[-3:] == ["ghostroll", "run", "/path/to/card"]
    settings = dict(word.split("=", 1) for word in command[1:-3])
    env = {**os.environ, **settings, "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
           "GHOSTROLL_CLOCK_TRUSTED": "1", "GHOSTROLL_BASE_DIR": str(tmp_path / "s"),
           "GHOSTROLL_DB_PATH": str(tmp_path / "g.db")}
    env.pop("GHOSTROLL_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "ghostroll", "doctor"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert f"✓ bucket reachable: {flags['s3_bucket']}" in done.stdout, done.stdout
    assert "✓ presign round trip" in done.stdout
