"""Pipeline benchmark: whole `ghostroll run` processes, as the photographer waits for
them, card → published on a local SeaweedFS. Prints one JSON document:

- card A (20 x 24 MP JPEG, ~194 MB) and card C (1000 x 640x480 JPEG, ~131 MB): wall,
  peak RSS and CPU of the `ghostroll run` process, how many cores the whole machine kept
  busy meanwhile (ours, the local S3 server's, anyone else's: 2.0 on 2 cores is
  saturated), card bytes copied / card bytes (from
  the manifest), time to "safe to remove" (the card phase over: every new file verified
  and recorded) and to the first share link (link.json written), both in seconds after
  the process started, ratio to the 2-core floor;
- the re-insert of card A (nothing new): wall and card bytes read;
- card C's card phase alone (copy, seal, record), in the benchmark's own process;
- the floor: single-process draft decode + resize + SHA-256 of card A, halved for 2 cores;
- with `--slow-mb-s R`: card A read through `bench/slowcard.py` (a read-only FUSE
  passthrough limited to R MB/s), its wall against the card's read time at that rate and
  the card bytes really read (counted by the passthrough) / card bytes.

    python bench/pipeline.py [--slow-mb-s 40] [--only A,C,reinsert,floor,cardphase]
                             [--keep DIR]"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO

from ghostroll.devtools.synthetic import PhotoSpec, make_jpeg, tree_size


def camera_jpeg(path: Path, width: int, height: int, seed: int) -> None:
    """A synthetic JPEG with camera EXIF and full-resolution noise, so it weighs what a
    camera's does (~0.42 bytes/pixel: 24 MP ≈ 9.7 MB, 640x480 ≈ 130 kB)."""
    from PIL import Image

    make_jpeg(path, PhotoSpec(width=width, height=height), seed=seed)
    with Image.open(path) as im:
        exif = im.info["exif"]
        noise = Image.effect_noise((width, height), 32).convert("RGB")
        Image.blend(im.convert("RGB"), noise, 0.35).save(path, "JPEG", quality=92, exif=exif)


def make_card(root: Path, photos: int, width: int, height: int) -> Path:
    dcim = root / "DCIM" / "100BENCH"
    for i in range(photos):
        camera_jpeg(dcim / f"DSC_{i:04d}.JPG", width, height, seed=i)
    return root


def write_config(work: Path, flags: dict[str, str]) -> Path:
    lines = ["[storage]", f'base_dir = "{work / "sessions"}"', f'db_path = "{work / "db"}"',
             "[s3]", "clock_trusted = true"]
    lines += [f'{k} = "{v}"' for k, v in flags.items()]
    path = work / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_ghostroll(card: Path, work: Path, volume: str) -> dict:
    """One `ghostroll run` as its own process: wall, peak RSS, CPU (its upload child's
    included). Measured by GNU time: a child forked from this big process inherits its
    peak RSS, so `wait4` here reported this process's ~400 MB for every run."""
    env = {**os.environ, "GHOSTROLL_CONFIG": str(work / "config.toml")}
    logs = (work / "run.out").open("w"), (work / "run.err").open("w")
    usage_file = work / "run.usage"
    busy_before = busy_cpu_s()
    start = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", str(usage_file),
                             sys.executable, "-m", "ghostroll", "run", str(card),
                             "--volume-id", volume], cwd=REPO, env=env,
                            stdout=logs[0], stderr=logs[1])
    proc.wait()
    wall = time.perf_counter() - start
    machine_busy = (busy_cpu_s() - busy_before) / wall
    for fh in logs:
        fh.close()
    if proc.returncode != 0:
        raise SystemExit(f"ghostroll run failed ({proc.returncode}), see {work}/run.*")
    rss_kb, user, system = usage_file.read_text().split()[-3:]
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(int(rss_kb) / 1024, 1),
            "cpu_s": round(float(user) + float(system), 2),
            "machine_busy_cores": round(machine_busy, 2)}


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (not idle, not waiting for I/O): what
    this run and the local S3 server (and anything else) used, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def safe_to_remove_s(work: Path, started_epoch: float) -> float | None:
    """When the card phase ended (every new file verified and recorded: the card may be
    pulled), seconds after the process started, from its log line."""
    for line in (work / "run.err").read_text().splitlines():
        if "card phase complete" in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return round(stamp.timestamp() - started_epoch, 3)
    return None


def first_link_s(work: Path, started_epoch: float) -> float | None:
    links = list((work / "sessions").glob("*/derived/link.json"))
    if not links:
        return None
    return round(min(p.stat().st_mtime for p in links) - started_epoch, 3)


def card_bytes_read(work: Path) -> int:
    """Bytes of the card files the newest session's manifest records as verified."""
    manifests = sorted((work / "sessions").glob("*/manifest.json"),
                       key=lambda p: p.stat().st_mtime)
    if not manifests:
        return 0
    data = json.loads(manifests[-1].read_text())
    return sum(f["size"] for f in data.get("files", []) if f.get("status") == "verified")


def card_phase_alone(card: Path, work: Path) -> dict:
    """The card phase by itself (copy, seal, record; nothing derived or sent), in this
    process: what the appliance's card worker does before "safe to remove"."""
    from ghostroll.card.ingest import ingest_card
    from ghostroll.card.volume import Volume
    from ghostroll.config.layers import load
    from ghostroll.storage.db import Database

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg = load(config_file=write_config(work, {}), env={})
    start = time.perf_counter()
    with Database(cfg.storage.db_path) as db:
        result = ingest_card(card, cfg, db, Volume("fat:BENC-P", "BENC-P"))
    seconds = time.perf_counter() - start
    return {"files": result.new, "seconds": round(seconds, 3),
            "ms_per_file": round(seconds * 1000 / max(1, result.new), 2)}


def floor_seconds(card: Path) -> float:
    """Single process: draft decode + resize (bench/derive.py's path) + SHA-256 of card
    A, the CPU every card A run must spend at least once."""
    out = Path(tempfile.mkdtemp(prefix="ghostroll-bench-floor-"))
    (out / "s").mkdir()
    (out / "t").mkdir()
    files = sorted(card.rglob("*.JPG"))
    flat = out / "card"
    flat.mkdir()
    for f in files:
        (flat / f.name).symlink_to(f)
    done = subprocess.run([sys.executable, str(REPO / "bench" / "derive.py"), "--child",
                           "ours", str(flat), str(out)], capture_output=True, text=True,
                          check=True, cwd=REPO)
    derive = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    start = time.perf_counter()
    for f in files:
        h = hashlib.sha256()
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    shutil.rmtree(out, ignore_errors=True)
    return derive + time.perf_counter() - start


@contextlib.contextmanager
def slow_card(card: Path, work: Path, mb_s: float) -> Iterator[tuple[Path, str]]:
    """`card` as a FAT32 image mounted read-only (fusefat), behind the rate-limited
    passthrough of bench/slowcard.py; the plain folder behind it without root."""
    from slowcard import slow_mount

    from ghostroll.devtools.cardimage import make_image, missing_tools, mounted

    if os.geteuid() != 0 or missing_tools("vfat"):
        with slow_mount(card, work / "slow-mnt", mb_s) as mnt:
            yield mnt, "folder behind the slow passthrough"
        return
    image = work / "card-a.img"
    if not image.exists():
        make_image(image, card, fs="vfat")
    with mounted(image, work / "img-mnt", fs="vfat") as inner, \
            slow_mount(inner, work / "slow-mnt", mb_s) as mnt:
        yield mnt, "fat32 image (fusefat, ro) behind the slow passthrough"


def measure_card(name: str, card: Path, work: Path, s3flags: dict[str, str],
                 floor_2core: float | None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    write_config(work, s3flags)
    started_epoch = time.time()
    result = run_ghostroll(card, work, f"fat:BENC-{name}")
    size = tree_size(card)
    report = {"wall_s": result["wall_s"], "peak_rss_mb": result["peak_rss_mb"],
              "cpu_s": result["cpu_s"], "machine_busy_cores": result["machine_busy_cores"],
              "card_bytes": size,
              "card_bytes_copied_per_card_byte": round(card_bytes_read(work) / size, 3),
              "safe_to_remove_s": safe_to_remove_s(work, started_epoch),
              "first_share_link_s": first_link_s(work, started_epoch)}
    if floor_2core:
        report["ratio_to_2core_floor"] = round(result["wall_s"] / floor_2core, 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="floor,A,C,reinsert,cardphase")
    parser.add_argument("--slow-mb-s", type=float, default=0.0,
                        help="also run card A through a read-only FUSE card at this rate")
    parser.add_argument("--keep", type=Path, help="work folder to keep (cards are reused)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    from ghostroll.devtools.s3local import LocalS3

    work = args.keep or Path(tempfile.mkdtemp(prefix="ghostroll-bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    card_a, card_c = work / "card-a", work / "card-c"
    if not card_a.exists():
        make_card(card_a, 20, 6000, 4000)
    if parts & {"C", "cardphase"} and not card_c.exists():
        make_card(card_c, 1000, 640, 480)
    report: dict = {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0],
                    "date": datetime.now().isoformat(timespec="seconds")}
    floor = None
    if "floor" in parts:
        single = floor_seconds(card_a)
        floor = single / 2
        report["floor"] = {"single_process_s": round(single, 2), "two_core_s": round(floor, 2)}
    with LocalS3(work / "s3", bucket="bench") as s3:
        flags = s3.config_flags()
        for name, card in (("A", card_a), ("C", card_c)):
            if name in parts:
                shutil.rmtree(work / f"run-{name}", ignore_errors=True)
                report[f"card_{name}"] = measure_card(name, card, work / f"run-{name}",
                                                      flags, floor)
        if "cardphase" in parts:
            report["card_phase_alone_C"] = card_phase_alone(card_c, work / "phase-C")
        if "reinsert" in parts and "A" in parts:
            again = run_ghostroll(card_a, work / "run-A", "fat:BENC-A")
            report["reinsert_A"] = {"wall_s": again["wall_s"],
                                    "peak_rss_mb": again["peak_rss_mb"]}
        if args.slow_mb_s:
            shutil.rmtree(work / "run-slow", ignore_errors=True)
            from slowcard import served_file
            with slow_card(card_a, work, args.slow_mb_s) as (mnt, kind):
                slow = measure_card("S", mnt, work / "run-slow", flags, floor)
            slow["card"] = kind
            # what really crossed the card reader, counted by the passthrough
            slow["card_bytes_read_per_card_byte"] = round(
                int(served_file(mnt).read_text()) / tree_size(card_a), 3)
            with slow_card(card_a, work, args.slow_mb_s) as (mnt, _):
                again = run_ghostroll(mnt, work / "run-slow", "fat:BENC-S")
            slow["reinsert"] = {"wall_s": again["wall_s"],
                                "card_content_bytes_read": int(served_file(mnt).read_text())}
            read_s = tree_size(card_a) / (args.slow_mb_s * 1e6)
            slow.update(rate_mb_s=args.slow_mb_s, card_read_s=round(read_s, 2),
                        wall_over_read=round(slow["wall_s"] / read_s, 3))
            report["card_A_slow"] = slow
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
