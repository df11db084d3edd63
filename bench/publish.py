"""Publishing benchmark: card → everything published on a local SeaweedFS, for a card of
20 x 12 MP JPEGs and one of 200 mixed files. Prints JSON: total seconds, time to the
share link (ms after the session was created), PUT count, peak RSS of the job process.

    python bench/publish.py [--big 20] [--mixed 200]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, vm_hwm_mb


def child(card: str, work: str, flags_json: str) -> None:
    import io

    from ghostroll.commands.demo import workdir_config
    from ghostroll.job import run_job
    from ghostroll.publish import s3client
    from ghostroll.storage.db import Database

    puts = {"n": 0}
    real_make = s3client.make_client

    def counting_client(*args, **kwargs):  # type: ignore[no-untyped-def]
        client = real_make(*args, **kwargs)
        client.meta.events.register("after-call.s3.PutObject",
                                    lambda **_: puts.__setitem__("n", puts["n"] + 1))
        return client

    s3client.make_client = counting_client
    cfg = workdir_config(Path(work), clock_trusted=True, **json.loads(flags_json))
    start = time.perf_counter()
    job = run_job(Path(card), cfg, out=io.StringIO())
    total = time.perf_counter() - start
    session = job.ingest.session
    assert session is not None and job.exit_code == 0, job.lines()
    with Database(cfg.storage.db_path) as db:
        created = session.created_utc
        entry = db.publish_entry(session.id)
    link_file = session.path / "derived" / "link.json"
    link_ms = (link_file.stat().st_mtime - _epoch(created)) * 1000
    print(json.dumps({"files": job.ingest.discovered, "seconds": total,
                      "share_link_ms_after_session_created": round(link_ms, 1),
                      "put_requests": puts["n"], "published": entry["state"],
                      "peak_rss_mb": vm_hwm_mb()}))


def _epoch(utc: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp()


def run(card: Path, work: Path, flags: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(card), str(work),
                          json.dumps(flags)], capture_output=True, text=True, check=True,
                         cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=20)
    parser.add_argument("--mixed", type=int, default=200)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from ghostroll.devtools.s3local import LocalS3
    from ghostroll.devtools.synthetic import (
        MOV_HEADER,
        TIFF_HEADER,
        PhotoSpec,
        make_blob,
        make_jpeg,
    )

    work = Path(tempfile.mkdtemp(prefix="ghostroll-bench-publish-"))
    big = work / "big" / "DCIM" / "100BIG"
    for i in range(args.big):
        make_jpeg(big / f"IMG_{i:04d}.JPG", PhotoSpec(width=4240, height=2832), seed=i)
    mixed = work / "mixed" / "DCIM" / "100MIX"
    for i in range(args.mixed):
        kind = i % 10
        if kind < 7:
            make_jpeg(mixed / f"IMG_{i:04d}.JPG", PhotoSpec(width=1600, height=1067), seed=i)
        elif kind < 9:
            make_blob(mixed / f"IMG_{i:04d}.NEF", 2 << 20, seed=i, header=TIFF_HEADER)
        else:
            make_blob(mixed / f"MVI_{i:04d}.MOV", 3 << 20, seed=i, header=MOV_HEADER)
    report = {}
    with LocalS3(work / "s3", bucket="bench") as s3:
        for name in ("big", "mixed"):
            report[name] = run(work / name, work / f"run-{name}", s3.config_flags())
    report["big"]["card"] = f"{args.big} x 12 MP JPEG"
    report["mixed"]["card"] = f"{args.mixed} mixed (70% JPEG, 20% RAW-like, 10% video-like)"
    print(json.dumps(report, indent=2))
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
