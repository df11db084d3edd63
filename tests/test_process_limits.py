"""Processing within the device's limits: hostile pictures (tiny files of huge
dimensions) never take `ghostroll run` past 200 MB peak RSS, boto3 and publishing
included; a session disk too small for the derivatives stops processing cleanly, leaves
no temp file, and the run after space was freed completes it."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from ghostroll.devtools.synthetic import PhotoSpec, make_jpeg
from ghostroll.gallery.ziparchive import ZipEntry, write_share_zip
from tests.support import s3 as s3_support
from tests.support.s3 import S3Bucket
from tests.support.samples import manifest, require_samples

s3_server = s3_support.s3_server
s3_bucket = s3_support.s3_bucket

REPO = Path(__file__).resolve().parent.parent
RSS_LIMIT_KB = 200 * 1024
# Runs `ghostroll run` as its only child and prints the child's peak RSS (KiB).
PEAK_RSS = ("import resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[1:])\n"
            "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            "print(f'PEAK_RSS_KB={peak}', file=sys.stderr)\n"
            "sys.exit(done.returncode)\n")


def _zlib_of_zero_rows(row_bytes: int, rows: int, filter_byte: bool) -> bytes:
    packer = zlib.compressobj(9)
    row = (b"\x00" if filter_byte else b"") + bytes(row_bytes)
    return b"".join(packer.compress(row) for _ in range(rows)) + packer.flush()


def write_deflate_tiff(path: Path, width: int, height: int) -> None:
    """An RGB TIFF in one deflate strip: a few hundred KB for ~149 MP (the issue's file)."""
    data = _zlib_of_zero_rows(width * 3, height, filter_byte=False)
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, 0),
               (259, 3, 1, 8), (262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, 3),
               (278, 4, 1, height), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    ifd_at = 8
    bits_at = ifd_at + 2 + 12 * len(entries) + 4
    data_at = bits_at + 6
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        value = {258: bits_at, 273: data_at}.get(tag, value)
        packed = struct.pack("<H", value) + b"\x00\x00" if kind == 3 and tag != 258 \
            else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8) + data
    path.write_bytes(bytes(out))


def write_png(path: Path, width: int, height: int) -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    idat = _zlib_of_zero_rows(width * 3, height, filter_byte=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def hostile_card(root: Path) -> Path:
    folder = root / "DCIM" / "100HOST"
    folder.mkdir(parents=True)
    write_deflate_tiff(folder / "HUGE0001.TIF", 12200, 12200)  # 148.8 MP
    write_png(folder / "HUGE0002.JPG", 12000, 12000)  # a PNG posing as a JPEG
    big = Image.new("L", (11000, 11000), 128)
    big.save(folder / "HUGE0003.JPG", "JPEG", progressive=True, quality=50)
    big.save(folder / "HUGE0004.JPG", "JPEG", quality=50)  # baseline: DCT-scaled on load
    del big
    make_jpeg(folder / "IMG_0005.JPG", PhotoSpec(width=4000, height=3000))
    # a RAW whose largest preview is too large: the next one is shown instead
    preview = io.BytesIO()
    Image.new("L", (10000, 10000), 90).save(preview, "JPEG", progressive=True, quality=30)
    small = io.BytesIO()
    Image.new("RGB", (1200, 800), (200, 40, 40)).save(small, "JPEG")
    (folder / "HUGE0006.NEF").write_bytes(b"II*\x00" + bytes(1000) + preview.getvalue()
                                          + bytes(500) + small.getvalue() + bytes(500))
    return root


def _env(tmp_path: Path, bucket: S3Bucket, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTROLL_")}
    env.update(PYTHONPATH=str(REPO), GHOSTROLL_BASE_DIR=str(tmp_path / "sessions"),
               GHOSTROLL_DB_PATH=str(tmp_path / "ghostroll.db"), GHOSTROLL_CLOCK_TRUSTED="1",
               **{f"GHOSTROLL_{k.upper()}": v for k, v in bucket.config_flags().items()},
               **extra)
    return env


def _peak_run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, int]:
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "ghostroll",
                           *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    peak = int(done.stderr.rsplit("PEAK_RSS_KB=", 1)[1].split()[0])
    print(f"peak RSS of ghostroll {args[0]}: {peak // 1024} MB")
    return done, peak


def test_hostile_pictures_stay_under_200_mb_with_publishing(
        tmp_path: Path, s3_bucket: S3Bucket) -> None:
    card = hostile_card(tmp_path / "card")
    done, peak = _peak_run(["run", str(card), "--volume-id", "fat:0BAD-F00D"],
                           _env(tmp_path, s3_bucket))
    assert done.returncode == 0, done.stdout + done.stderr
    too_large = "too large to preview on this device"
    for name in ("HUGE0001.TIF", "HUGE0002.JPG", "HUGE0003.JPG"):
        assert f"not shown: DCIM/100HOST/{name}: {too_large}" in done.stdout, done.stdout
    assert "3 photos" in done.stdout and "published shoot-" in done.stdout
    assert peak < RSS_LIMIT_KB, f"peak RSS {peak // 1024} MB"
    [manifest] = (tmp_path / "sessions").glob("shoot-*/manifest.json")
    notes = {e["card_path"]: e["derive_note"] for e in json.loads(manifest.read_text())["files"]}
    assert notes["DCIM/100HOST/HUGE0001.TIF"].startswith(too_large)


def test_the_work_child_on_every_camera_sample_stays_under_200_mb(
        tmp_path: Path, s3_bucket: S3Bucket) -> None:
    """Real files this time (HEIC decoded in full, RAW previews, CMYK, progressive), as
    the appliance's `ghostroll work` processes and publishes them."""
    root = require_samples()
    folder = tmp_path / "card" / "DCIM" / "100SAMPL"
    folder.mkdir(parents=True)
    for row in manifest():
        shutil.copy2(root / row["filename"], folder / row["filename"])
    copied = subprocess.run(  # the card phase; processing left to the work child
        [sys.executable, "-m", "ghostroll", "run", str(tmp_path / "card"), "--no-publish",
         "--volume-id", "fat:5A3F-0001"], env=_env(tmp_path, s3_bucket, GHOSTROLL_FAULT="zip:exit"),
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert copied.returncode == 70, copied.stdout + copied.stderr
    done, peak = _peak_run(["work"], _env(tmp_path, s3_bucket))
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"type":"work_done"' in done.stdout and '"url":"http' in done.stdout
    assert peak < RSS_LIMIT_KB, f"peak RSS {peak // 1024} MB"


def _mount_tmpfs(where: Path, megabytes: int, remount: bool = False) -> None:
    options = f"size={megabytes}m" + (",remount" if remount else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs as the session disk")
    where = tmp_path / "disk"
    where.mkdir()
    _mount_tmpfs(where, 12)
    yield where
    subprocess.run(["umount", str(where)], check=False)


@pytest.mark.root
def test_a_full_disk_stops_processing_cleanly_and_resumes(
        tmp_path: Path, small_disk: Path) -> None:
    folder = tmp_path / "card" / "DCIM" / "100FULL"
    folder.mkdir(parents=True)
    for i in range(6):  # ~5 MB of noisy JPEGs: they fit, their derivatives do not
        make_jpeg(folder / f"IMG_{i:04d}.JPG", PhotoSpec(width=1600, height=1067), seed=i)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTROLL_")}
    env.update(PYTHONPATH=str(REPO), GHOSTROLL_BASE_DIR=str(small_disk / "sessions"),
               GHOSTROLL_DB_PATH=str(tmp_path / "ghostroll.db"),
               GHOSTROLL_FREE_SPACE_MARGIN_MB="0")
    cmd = [sys.executable, "-m", "ghostroll", "run", str(tmp_path / "card"),
           "--volume-id", "fat:5555-6666"]
    full = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert full.returncode == 1, full.stdout + full.stderr
    assert "Traceback" not in full.stderr
    assert "card phase complete" in full.stderr + full.stdout or "6 new" in full.stdout
    assert "not enough space for the share images" in full.stdout
    assert "stays pending" in full.stdout
    assert [p for p in small_disk.rglob("*") if p.name.endswith((".tmp", ".part"))] == []
    _mount_tmpfs(small_disk, 64, remount=True)
    again = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "6 photos" in again.stdout
    [session] = (small_disk / "sessions").glob("shoot-*")
    assert (session / "derived" / "share.zip").exists()


@pytest.mark.root
def test_share_zip_on_a_full_disk_leaves_no_temp_file(tmp_path: Path, small_disk: Path) -> None:
    share = tmp_path / "share.jpg"
    share.write_bytes(os.urandom(5 << 20))
    with pytest.raises(OSError) as error:
        write_share_zip([ZipEntry(share, f"{i}.jpg") for i in range(4)], small_disk / "share.zip")
    assert error.value.errno == 28
    assert list(small_disk.iterdir()) == []


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(bytes(1 << 20))
                out.flush()
        except OSError:
            pass
    return filler


@pytest.mark.root
def test_the_disk_filling_up_during_processing_stops_cleanly_and_resumes(
        tmp_path: Path, small_disk: Path) -> None:
    """The issue's case: the space check passed, then the disk filled up (another writer)
    while share images were being written."""
    _mount_tmpfs(small_disk, 48, remount=True)
    folder = tmp_path / "card" / "DCIM" / "100FULL"
    folder.mkdir(parents=True)
    for i in range(6):
        make_jpeg(folder / f"IMG_{i:04d}.JPG", PhotoSpec(width=1600, height=1067), seed=i)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTROLL_")}
    env.update(PYTHONPATH=str(REPO), GHOSTROLL_BASE_DIR=str(small_disk / "sessions"),
               GHOSTROLL_DB_PATH=str(tmp_path / "ghostroll.db"),
               GHOSTROLL_FREE_SPACE_MARGIN_MB="0", GHOSTROLL_PROCESS_WORKERS="1")
    cmd = [sys.executable, "-m", "ghostroll", "run", str(tmp_path / "card"),
           "--volume-id", "fat:7777-8888"]
    run = subprocess.Popen(cmd, env={**env, "GHOSTROLL_TEST_DELAY_MS": "derive=400"}, cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stdout is not None
    seen = []
    for line in run.stdout:
        seen.append(line)
        # share images are made while the card is read (the streaming pipeline), one
        # every 400 ms here: once the last file is read the next one meets a full disk
        if line.startswith(("copying: 6/6", "making share images")):
            filler = _fill(small_disk)
            break
    out, err = run.communicate(timeout=120)
    out = "".join(seen) + out
    assert run.returncode == 1, out + err
    assert "Traceback" not in err
    # the next share image meets the full disk, or the stream, seeing no room left,
    # leaves the pictures to processing, whose own check stops: a clean stop either way
    assert "processing stopped: No space left on device" in out \
        or "processing stopped: not enough space for the share images" in out, out
    assert [p for p in small_disk.rglob("*") if p.name.endswith((".tmp", ".part"))] == []
    filler.unlink()
    again = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "6 photos" in again.stdout
    [session] = (small_disk / "sessions").glob("shoot-*")
    assert len(list((session / "derived" / "share").glob("*.jpg"))) == 6
    assert (session / "derived" / "share.zip").exists()
