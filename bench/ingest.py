"""Ingest benchmark: a synthetic card (24 MP JPEGs with EXIF + RAW-sized blobs) as a
FAT32 card image read through a read-only FUSE mount, against `cat | sha256sum` over
the same files in the same run. Prints JSON.

    python bench/ingest.py [--photos 12] [--raws 8] [--known 1000] [--keep DIR]

Needs root for the card image (loop device + FUSE); without root it reads a plain
folder and says so in the JSON ("card": "folder"). Page caches are dropped before each
timed read where the kernel permits it ("caches_dropped")."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, vm_hwm_mb

from ghostroll.devtools.cardimage import make_image, missing_tools, mounted
from ghostroll.devtools.synthetic import make_bench_card, make_blob


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def reference(card: Path) -> dict[str, float]:
    """The physical reference: every file through `cat | sha256sum`."""
    files = sorted(str(p) for p in card.rglob("*") if p.is_file())
    total = sum(os.path.getsize(f) for f in files)
    start = time.perf_counter()
    cat = subprocess.Popen(["cat", *files], stdout=subprocess.PIPE)
    subprocess.run(["sha256sum"], stdin=cat.stdout, check=True, capture_output=True)
    cat.wait()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": total, "mb_s": total / seconds / 1e6}


def child_ingest(card: str, work: str, volume_id: str) -> None:
    """Runs in a child process so its peak RSS is measured on its own."""
    from ghostroll.card.ingest import ingest_card
    from ghostroll.card.volume import Volume
    from ghostroll.commands.demo import workdir_config
    from ghostroll.devtools.synthetic import tree_size
    from ghostroll.storage.db import Database

    cfg = workdir_config(Path(work))
    io_before = _proc_io()
    start = time.perf_counter()
    with Database(cfg.storage.db_path) as db:
        result = ingest_card(Path(card), cfg, db, Volume(volume_id, "BENCH"))
    seconds = time.perf_counter() - start
    io_after = _proc_io()
    print(json.dumps({
        "seconds": seconds, "new": result.new, "known": result.known,
        "failed": result.failed, "bytes_new": result.bytes_new,
        "card_bytes_read": result.card_bytes_read, "card_bytes": tree_size(Path(card)),
        "rchar": io_after.get("rchar", 0) - io_before.get("rchar", 0),
        "peak_rss_mb": vm_hwm_mb(),
    }))



def _proc_io() -> dict[str, int]:
    try:
        lines = Path("/proc/self/io").read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v) for k, v in (line.split(": ") for line in lines)}


def run_child(card: Path, work: Path, volume_id: str) -> dict:
    """One ingest in a child process, which reports its own numbers as JSON."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(card), str(work), volume_id],
        capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--raws", type=int, default=8)
    parser.add_argument("--raw-mb", type=int, default=25)
    parser.add_argument("--known", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: temp)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_ingest(*args.child)
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="ghostroll-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "src"
    if not src.exists():
        make_bench_card(src, photos=args.photos, raws=args.raws, raw_mb=args.raw_mb)
    use_image = os.geteuid() == 0 and not missing_tools("vfat")
    report: dict = {"photos_24mp": args.photos, "raws": args.raws,
                    "card": "fat32-image-fuse-ro" if use_image else "folder"}

    def measure(card: Path) -> None:
        report["caches_dropped"] = drop_caches()
        report["reference_cat_sha256sum"] = reference(card)
        drop_caches()
        first = run_child(card, work / "run", "fat:BENC-0001")
        second = run_child(card, work / "run", "fat:BENC-0001")
        ref = report["reference_cat_sha256sum"]
        report["ingest"] = {
            **first,
            "mb_s": first["bytes_new"] / first["seconds"] / 1e6,
            "card_bytes_read_per_byte": first["card_bytes_read"] / first["card_bytes"],
            "throughput_vs_reference": (first["bytes_new"] / first["seconds"]) /
                                       (ref["bytes"] / ref["seconds"]),
        }
        report["reinsert_same_card"] = second

    if use_image:
        image = make_image(work / "card.img", src, fs="vfat")
        with mounted(image, work / "mnt", fs="vfat") as mnt:
            measure(mnt)
    else:
        measure(src)

    known_card = work / "known"
    if not known_card.exists():
        for i in range(args.known):
            make_blob(known_card / "DCIM" / f"{100 + i // 500}KNOWN" / f"K_{i:04d}.JPG",
                      2048, seed=i, header=b"\xff\xd8\xff")
    run_child(known_card, work / "known-run", "fat:KNOW-0001")
    again = run_child(known_card, work / "known-run", "fat:KNOW-0001")
    report["reinsert_known_files"] = {"files": args.known, "seconds": again["seconds"],
                                      "card_bytes_read": again["card_bytes_read"]}
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
