"""Derivative benchmark: 24 MP JPEGs (6000x4000, with EXIF) through our path (draft
decode + resize) against a full decode + resize baseline in the same run, then a whole
card through the parallel pool with default workers. Prints JSON.

    python bench/derive.py [--photos 20]

Each timed part runs in a child process so its peak RSS (VmHWM) is its own."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, vm_hwm_mb


def child(mode: str, card: str, out: str) -> None:
    from PIL import Image

    from ghostroll.commands.demo import workdir_config
    from ghostroll.derive import DeriveJob, derive_many, derive_one
    from ghostroll.derive.images import RESAMPLE

    images = workdir_config(Path(out)).images
    files = sorted(p for p in Path(card).iterdir() if p.suffix.lower() == ".jpg")
    times = []
    start = time.perf_counter()
    if mode == "pool":
        jobs = [DeriveJob(f, "jpeg", Path(out) / "s" / f.name, Path(out) / "t" / f.name)
                for f in files]
        derive_many(jobs, images)
    for f in files if mode != "pool" else []:
        t = time.perf_counter()
        if mode == "ours":
            derive_one(DeriveJob(f, "jpeg", Path(out) / "s" / f.name,
                                 Path(out) / "t" / f.name), images)
        else:  # baseline: decode everything, then resize with the same filter
            with Image.open(f) as im:
                im.load()
                share = im.convert("RGB")
                share.thumbnail((2048, 2048), RESAMPLE)
                thumb = share.copy()
                thumb.thumbnail((512, 512), RESAMPLE)
                share.save(Path(out) / "s" / f.name, "JPEG", quality=90)
                thumb.save(Path(out) / "t" / f.name, "JPEG", quality=85)
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    print(json.dumps({"mode": mode, "images": len(files), "seconds": total,
                      "per_image_ms": statistics.median(times) * 1000 if times else None,
                      "images_per_s": len(files) / total, "peak_rss_mb": vm_hwm_mb(),
                      "workers": images.process_workers}))


def run(mode: str, card: Path, out: Path) -> dict:
    (out / "s").mkdir(parents=True, exist_ok=True)
    (out / "t").mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, __file__, "--child", mode, str(card), str(out)],
                          capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def real_camera_card(folder: Path) -> Path | None:
    """Links to the >= 20 MP camera JPEGs in ../shared/camera-samples, when present."""
    import csv
    import os

    samples = Path(os.environ.get("GHOSTROLL_SAMPLES", REPO.parent / "shared" /
                                  "camera-samples"))
    if not (samples / "MANIFEST.tsv").exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    with (samples / "MANIFEST.tsv").open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            size = row["pixel_size"].split("x")
            if row["format"] == "JPEG" and len(size) == 2 and \
                    int(size[0]) * int(size[1]) >= 20_000_000:
                (folder / row["filename"]).symlink_to(samples / row["filename"])
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from ghostroll.devtools.synthetic import PhotoSpec, make_jpeg

    work = Path(tempfile.mkdtemp(prefix="ghostroll-bench-derive-"))
    card = work / "card"
    for i in range(args.photos):
        make_jpeg(card / f"DSC_{i:04d}.JPG", PhotoSpec(width=6000, height=4000), seed=i)
    baseline = run("baseline", card, work / "baseline")
    ours = run("ours", card, work / "ours")
    pool = run("pool", card, work / "pool")
    report = {
        "photo": "6000x4000 JPEG q90 with EXIF (synthetic)",
        "baseline_full_decode": baseline,
        "draft_decode": ours,
        "speedup_per_image": baseline["per_image_ms"] / ours["per_image_ms"],
        "whole_card_pool": pool,
    }
    real = real_camera_card(work / "real")
    if real is not None:
        real_base = run("baseline", real, work / "real-baseline")
        real_ours = run("ours", real, work / "real-ours")
        report["real_camera_jpegs_20mp_plus"] = {
            "files": real_ours["images"], "baseline_ms": real_base["per_image_ms"],
            "draft_ms": real_ours["per_image_ms"],
            "speedup_per_image": real_base["per_image_ms"] / real_ours["per_image_ms"]}
    print(json.dumps(report, indent=2))
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
