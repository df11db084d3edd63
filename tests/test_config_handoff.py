"""Config across process boundaries: a child gets the config file path plus only the
values that differ, on its stdin; the S3 secret never shows in its environment or argv.
And `presign_workers`, a name from the original's config: accepted, never silently."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ghostroll import config
from ghostroll.cli import build_parser
from ghostroll.config.handoff import overrides, spawn
from ghostroll.errors import ConfigError

FILE_SECRET = "FileSecret0123456789abcdefghijklmnopqrstu"
ENV_SECRET = "EnvSecret9876543210zyxwvutsrqponmlkjihgf"
CHILD = (  # a real child: the real parser and from_args, then it stays up to be looked at
    "import hashlib, sys, time\n"
    "from ghostroll import config\n"
    "from ghostroll.cli import build_parser\n"
    "cfg = config.from_args(build_parser().parse_args(['work', *sys.argv[1:]]))\n"
    "print(cfg.s3.upload_workers, "
    "hashlib.sha256(cfg.s3.s3_secret_access_key.encode()).hexdigest()[:16], "
    "cfg.s3.s3_bucket, cfg.config_file, flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_child_gets_the_path_and_the_differences_never_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[s3]\ns3_bucket = "photos"\ns3_access_key_id = "AKIDEXAMPLE"\n'
                    f's3_secret_access_key = "{FILE_SECRET}"\nupload_workers = 4\n')
    parent_env = {"GHOSTROLL_UPLOAD_WORKERS": "7", "GHOSTROLL_S3_SECRET_ACCESS_KEY": ENV_SECRET,
                  "GHOSTROLL_LOG_LEVEL": "INFO"}  # INFO is the default: nothing to send
    cfg = config.load(config_file=path, env=parent_env)
    assert overrides(cfg) == {"upload_workers": "7", "s3_secret_access_key": ENV_SECRET}

    environ = {**os.environ, **parent_env, "GHOSTROLL_CONFIG": "/elsewhere.toml"}
    child = spawn(cfg, [sys.executable, "-c", CHILD], environ, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        secret_id = hashlib.sha256(ENV_SECRET.encode()).hexdigest()[:16]
        assert line == ["7", secret_id, "photos", str(path)], line
        seen = Path(f"/proc/{child.pid}/environ").read_bytes() + \
            Path(f"/proc/{child.pid}/cmdline").read_bytes()
        assert ENV_SECRET.encode() not in seen and FILE_SECRET.encode() not in seen
        assert b"GHOSTROLL_UPLOAD_WORKERS" not in seen and b"GHOSTROLL_CONFIG" not in seen
        assert str(path).encode() in seen  # the file is named, in argv
    finally:
        child.kill()
        child.wait()


def test_no_file_and_no_overrides_is_a_plain_default_child(tmp_path: Path) -> None:
    cfg = config.load(config_file=None, env={"HOME": str(tmp_path)})
    assert overrides(cfg) == {}


def _from_args(argv: list[str]) -> config.Config:
    return config.from_args(build_parser().parse_args(["work", *argv]), env={})


def test_presign_workers_is_accepted_and_its_being_ignored_is_said_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[s3]\npresign_workers = 16\n")
    with caplog.at_level(logging.WARNING, logger="ghostroll.config"):
        cfg = _from_args(["--config", str(path)])
    assert cfg.s3.presign_workers == 16
    [record] = caplog.records
    assert "presign_workers" in record.message and "ignored" in record.message
    assert str(path) in record.message

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ghostroll.config"):
        assert _from_args([]).s3.presign_workers == 8
    assert caplog.records == []  # not set: nothing to say

    path.write_text("[s3]\npresign_workers = 0\n")
    with pytest.raises(ConfigError, match="presign_workers"):
        _from_args(["--config", str(path)])
