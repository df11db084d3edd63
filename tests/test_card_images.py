"""Real FAT32 and exFAT card images, mounted read-only through FUSE on a loop device.

The card image's bytes are identical before and after an ingest; a card pulled in the
middle of a copy (the FUSE daemon killed, so reads fail as on a yanked reader) stops
the card phase with a clear error, keeps what was verified and resumes next time."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ghostroll.card.volume import parse_boot_sector
from ghostroll.devtools.cardimage import fuse_pid, make_image, missing_tools, mounted, unmount
from ghostroll.devtools.synthetic import make_blob, make_demo_card
from tests.support.ingest import ingest, make_config, originals
from tests.support.samples import require_samples

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.root


def image_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def needs(fs: str) -> None:
    if missing := missing_tools(fs):
        pytest.skip(f"missing tools for {fs} card images: {', '.join(missing)}")


@pytest.fixture(scope="module")
def sample_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    samples = require_samples()
    src = tmp_path_factory.mktemp("src")
    dcim = src / "DCIM" / "100SAMPL"
    dcim.mkdir(parents=True)
    for name in ("nikon_d90_DSC_0002.JPG", "sony_ilce7sm3_cat.hif", "pruned_canon_eos_r6.CR3",
                 "canon_powershot_s40_CRW_0101.CRW", "canon_powershot_s40_CRW_0101.THM",
                 "apple_iphonexr_IMG_3589.HEIC", "apple_iphonexr_IMG_3589.mov",
                 "truncated_sony_e5823.jpg", "with-gps.mp4"):
        shutil.copy2(samples / name, dcim / name.upper())  # cameras write 8.3 upper case
    return src


@pytest.mark.parametrize("fs", ["vfat", "exfat"])
def test_card_image_ingested_read_only_and_unchanged(
        tmp_path: Path, sample_source: Path, fs: str) -> None:
    needs(fs)
    image = make_image(tmp_path / f"card-{fs}.img", sample_source, fs=fs)
    before = image_sha(image)
    identity = parse_boot_sector(image.read_bytes()[:512])
    assert identity is not None and identity[0].startswith("fat:" if fs == "vfat" else "exfat:")
    cfg = make_config(tmp_path)
    with mounted(image, tmp_path / "mnt", fs=fs) as mnt:
        result = ingest(mnt, cfg, volume_id=identity[0])
        again = ingest(mnt, cfg, volume_id=identity[0])
    assert result.failed == 0 and result.complete
    expected = {p.relative_to(sample_source).as_posix(): p for p in sample_source.rglob("*")
                if p.is_file()}
    stored = originals(cfg)
    assert set(stored) == set(expected)
    for rel, copies in stored.items():
        assert copies[0].read_bytes() == expected[rel].read_bytes()
    assert again.card_bytes_read == 0 and again.new == 0
    assert image_sha(image) == before, "the card image changed: a card must never be written"


def test_card_pulled_mid_copy_keeps_verified_files_and_resumes(tmp_path: Path) -> None:
    needs("vfat")
    src = make_demo_card(tmp_path / "src", photos=4)
    for i in range(4):
        make_blob(src / "DCIM" / "100GHOST" / f"CLIP_{i}.MOV", 6 << 20, seed=i,
                  header=b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ")
    image = make_image(tmp_path / "card.img", src, fs="vfat")
    before = image_sha(image)
    env = {**os.environ, "GHOSTROLL_BASE_DIR": str(tmp_path / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp_path / "ghostroll.db"),
           "GHOSTROLL_TEST_DELAY_MS": "copy.chunk=150", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "ghostroll", "run", "--volume-id", "fat:PULL-0001"]
    mnt = tmp_path / "mnt"
    with mounted(image, mnt, fs="vfat"):
        worker = subprocess.Popen([*cmd, str(mnt)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        copies = tmp_path / "sessions"
        deadline = time.monotonic() + 60
        while (time.monotonic() < deadline
               and len(list(copies.glob("shoot-*/originals/**/*.JPG"))) < 3):
            time.sleep(0.05)
        pid = fuse_pid(mnt)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the reader is gone: reads now fail
        out, err = worker.communicate(timeout=60)
        unmount(mnt)
    assert worker.returncode == 1, out + err
    assert "STOPPED" in out and "insert the card again to resume" in out
    assert "Traceback" not in err
    cfg = make_config(tmp_path)
    kept = originals(cfg)
    assert 3 <= len(kept) < 13
    for rel, paths in kept.items():
        assert paths[0].read_bytes() == (src / rel).read_bytes()

    with mounted(image, tmp_path / "mnt2", fs="vfat"):
        resumed = subprocess.run([*cmd, str(tmp_path / "mnt2")],
                                 env={**env, "GHOSTROLL_TEST_DELAY_MS": ""},
                                 capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    stored = originals(cfg)
    assert set(stored) == {p.relative_to(src).as_posix() for p in src.rglob("*")
                           if p.is_file() and not p.name.startswith("._")}
    assert all(len(v) == 1 for v in stored.values())
    assert len(list((tmp_path / "sessions").glob("shoot-*"))) == 1
    assert image_sha(image) == before


def test_disk_filling_up_mid_copy_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    """A real ENOSPC: a small tmpfs as the session disk, filled by someone else after
    the space check passed."""
    card = make_demo_card(tmp_path / "card", photos=2)
    for i in range(3):
        make_blob(card / "DCIM" / "100GHOST" / f"CLIP_{i}.MOV", 2 << 20, seed=i,
                  header=b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
    try:
        cfg = make_config(tmp_path, base_dir=disk / "sessions", free_space_margin_mb=0)

        def fill_disk(p: object) -> None:
            filler = disk / "filler"
            if getattr(p, "files_read", 0) == 2 and not filler.exists():
                fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
                try:
                    while os.write(fd, b"\0" * (1 << 16)):
                        pass
                except OSError:
                    pass  # full: that is the point
                finally:
                    os.close(fd)

        stopped = ingest(card, cfg, progress=fill_disk)
        assert stopped.disk_full and "full" in stopped.disk_full
        assert not stopped.complete and stopped.new >= 1
        assert not list((disk / "sessions" / ".incoming").glob("*.part"))
        (disk / "filler").unlink()
        resumed = ingest(card, cfg)
        assert resumed.complete and resumed.failed == 0
        assert resumed.new + stopped.new == resumed.discovered
        stored = originals(cfg)
        assert all(len(v) == 1 for v in stored.values()) and len(stored) == resumed.discovered
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
