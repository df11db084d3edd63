"""Listing a card and classifying its files, without reading what is not needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostroll.card.media import HEAD_BYTES, Kind, classify
from ghostroll.card.plan import plan_card
from ghostroll.card.scan import scan_card
from ghostroll.devtools.synthetic import MOV_HEADER, make_demo_card
from ghostroll.errors import CardError
from ghostroll.storage.db import SeenRow
from tests.support.samples import manifest, require_samples

EXPECTED_KIND = {"JPEG": Kind.JPEG, "MPO": Kind.JPEG, "HEIF": Kind.HEIC, "HEIC": Kind.HEIC}


def test_every_sample_is_classified_by_content() -> None:
    root = require_samples()
    kinds = {}
    for row in manifest():
        head = (root / row["filename"]).read_bytes()[:HEAD_BYTES]
        kinds[row["filename"]] = classify(row["filename"], head)
    assert kinds["misnamed_jpeg_nikon_d70s_issue247-1.nef"] is Kind.JPEG  # content wins
    assert kinds["nintendo_3ds_frozenpond.mpo"] is Kind.JPEG
    assert kinds["pruned_canon_eos_r6.CR3"] is Kind.RAW
    assert kinds["canon_powershot_s40_CRW_0101.CRW"] is Kind.RAW
    assert kinds["canon_powershot_s40_CRW_0101.THM"] is Kind.SIDECAR
    assert kinds["sony_ilce7sm3_cat.hif"] is Kind.HEIC
    assert kinds["apple_iphonexr_IMG_3589.mov"] is Kind.VIDEO
    assert kinds["canon_powershot_s40_MVI_0121.AVI"] is Kind.VIDEO
    assert kinds["with-gps.mp4"] is Kind.VIDEO
    assert kinds["olympus_d450_P3110005.TIF"] is Kind.TIFF
    for name in ("truncated_sony_ilce7m3.ARW", "stripped_nikon_d70.nef",
                 "converted_canon_eos6d.dng", "gopro_hero7black_GOPR8508.GPR",
                 "kodak_dc120_P003911.KDC"):
        assert kinds[name] is Kind.RAW, name
    assert all(k is not Kind.OTHER for k in kinds.values())


@pytest.mark.parametrize(("name", "head", "kind"), [
    ("IMG_0001.JPG", b"", Kind.JPEG),  # zero bytes: still a photo file, kept
    ("C0001.MP4", b"\x00\x00\x00\x18ftypXAVC", Kind.VIDEO),
    ("00000.MTS", b"\x47" * 16, Kind.VIDEO),
    ("CLIP.XML", b"<?xml", Kind.OTHER),
    ("GOPR0001.LRV", b"\x00" * 16, Kind.OTHER),
    ("IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic", Kind.HEIC),
    ("IMG_0002.JPG", b"\x00\x00\x00\x18ftypheic", Kind.HEIC),
    ("IMG_0003.MOV", MOV_HEADER, Kind.VIDEO),
    ("VOICE.WAV", b"RIFF\x00\x00\x00\x00WAVE", Kind.SIDECAR),
])
def test_classify(name: str, head: bytes, kind: Kind) -> None:
    assert classify(name, head) is kind


def test_scan_walks_camera_trees_skips_junk_and_groups(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=3)
    avchd = card / "PRIVATE" / "AVCHD" / "BDMV" / "STREAM"
    avchd.mkdir(parents=True)
    (avchd / "00000.MTS").write_bytes(b"\x47" * 400)
    (card / "MISC").mkdir()
    (card / "MISC" / "notes.txt").write_text("not a camera tree")
    (card / "DCIM" / "System Volume Information").mkdir()
    listing = scan_card(card)
    paths = [f.rel_path for f in listing.files]
    assert "PRIVATE/AVCHD/BDMV/STREAM/00000.MTS" in paths
    assert not any(p.startswith("MISC") for p in paths)
    assert "DCIM/100GHOST/._IMG_0001.JPG" in listing.junk
    assert "DCIM/System Volume Information" in listing.junk
    groups = {f.rel_path: f.group for f in listing.files}
    assert groups["DCIM/100GHOST/IMG_0004.JPG"] == groups["DCIM/100GHOST/IMG_0004.NEF"]
    assert groups["DCIM/100GHOST/MVI_0005.MOV"] == groups["DCIM/100GHOST/MVI_0005.THM"]


def test_card_without_dcim_is_an_error_and_empty_dcim_is_nothing(tmp_path: Path) -> None:
    (tmp_path / "Documents").mkdir()
    with pytest.raises(CardError, match="no DCIM/"):
        scan_card(tmp_path)
    (tmp_path / "dcim").mkdir()  # FAT is case-insensitive; cameras write DCIM
    assert scan_card(tmp_path).files == []
    with pytest.raises(CardError, match="not a mounted card"):
        scan_card(tmp_path / "missing")


def test_plan_recognises_known_files_by_path_size_and_mtime(tmp_path: Path) -> None:
    listing = scan_card(make_demo_card(tmp_path / "card", photos=2))
    first, second, *rest = listing.files
    seen = {
        first.rel_path: SeenRow(first.size, first.mtime_ns, "a" * 64, "jpeg"),
        second.rel_path: SeenRow(second.size, second.mtime_ns + 1, "b" * 64, "jpeg"),
    }
    plan = plan_card(listing.files, seen)
    assert [f.rel_path for f, _ in plan.known] == [first.rel_path]
    assert second in plan.to_read  # touched since: hashed again
    assert plan.bytes_to_read == sum(f.size for f in [second, *rest])
