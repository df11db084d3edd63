"""Card identity: the FAT/exFAT serial, written as udev writes ID_FS_UUID."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ghostroll.card.volume import _udev_link, identify, parse_boot_sector


@pytest.mark.parametrize(("mkfs", "size_mb", "prefix"), [
    (["mkfs.vfat", "-n", "EOS_DIGITAL"], 64, "fat:"),       # FAT16
    (["mkfs.vfat", "-F", "32", "-n", "EOS_DIGITAL"], 64, "fat:"),
    (["mkfs.exfat", "-L", "EOS_DIGITAL"], 64, "exfat:"),
])
def test_boot_sector_serial_matches_blkid(tmp_path: Path, mkfs: list[str], size_mb: int,
                                         prefix: str) -> None:
    if shutil.which(mkfs[0]) is None or shutil.which("blkid") is None:
        pytest.skip(f"{mkfs[0]} or blkid not installed")
    image = tmp_path / "card.img"
    image.write_bytes(b"")
    with image.open("r+b") as fh:
        fh.truncate(size_mb << 20)
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    uuid = subprocess.run(["blkid", "-o", "value", "-s", "UUID", str(image)],
                          capture_output=True, text=True, check=True).stdout.strip()
    parsed = parse_boot_sector(image.read_bytes()[:512])
    assert parsed is not None
    assert parsed[0] == prefix + uuid.upper()
    if prefix == "fat:":
        assert parsed[1] == "EOS_DIGITAL"


def test_not_a_fat_boot_sector() -> None:
    assert parse_boot_sector(b"\0" * 512) is None
    assert parse_boot_sector(b"short") is None


def test_udev_links_name_the_device(tmp_path: Path) -> None:
    dev = tmp_path / "sdb1"
    dev.write_bytes(b"")
    (tmp_path / "by-uuid").mkdir()
    (tmp_path / "by-uuid" / "0B2A-68C5").symlink_to(dev)
    (tmp_path / "by-label").mkdir()
    (tmp_path / "by-label" / "EOS\\x20DIGITAL").symlink_to(dev)
    assert _udev_link(tmp_path / "by-uuid", str(dev)) == "0B2A-68C5"
    assert _udev_link(tmp_path / "by-label", str(dev)) == "EOS DIGITAL"
    assert _udev_link(tmp_path / "missing", str(dev)) is None


def test_plain_folder_falls_back_to_its_path_and_override_wins(tmp_path: Path) -> None:
    assert identify(tmp_path).id == f"path:{tmp_path.resolve()}"
    assert identify(tmp_path, "fat:1234-5678", "EOS").id == "fat:1234-5678"
