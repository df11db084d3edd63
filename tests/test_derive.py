"""Derivatives from real camera files: upright, sRGB, metadata-free, bounded, and a
clear per-file message for what cannot be a picture."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from ghostroll import hashing
from ghostroll.card.media import HEAD_BYTES, Kind, classify
from ghostroll.derive import DeriveJob, derive_many, derive_one, meta_from_exif, numbering_gaps
from ghostroll.derive.images import OWN_THUMB_RATIO
from ghostroll.derive.pool import WORKER_NICE, Budget, DerivePool
from ghostroll.devtools.synthetic import PhotoSpec, make_jpeg
from tests.support.ingest import make_config
from tests.support.samples import manifest, require_samples
from tests.support.shared_files import assert_no_metadata, assert_only_kept_exif

EXPECT_NOTE = {"gopro_hero7black_GOPR8508.GPR", "kodak_dc120_P003911.KDC",
               "stripped_canon_eos350d.cr2", "stripped_nikon_d70.nef",
               "stripped_panasonic_dmc-lx3.rw2", "truncated_sony_ilce7m3.ARW"}
EXPECT_ERROR = {"truncated_sony_e5823.jpg"}
# a 10-bit 12 MP HEIF decodes at ~160 MB (libheif works at 16 bits) and its 1616 px
# thumbnail item does not decode: over what one job may hold on a 512 MB Pi
EXPECT_TOO_LARGE = {"sony_ilce7sm3_cat.hif", "sony_ilce7cm2_rotated_right_top.HIF"}


def job_for(src: Path, out: Path, kind: str | None = None) -> DeriveJob:
    kind = kind or classify(src.name, src.read_bytes()[:HEAD_BYTES])
    return DeriveJob(src, kind, out / "share" / f"{src.name}.jpg",
                     out / "thumbs" / f"{src.name}.jpg")


def assert_clean_jpeg(path: Path, long_edge: int) -> Image.Image:
    """Share images keep only the capture time; thumbnails nothing at all."""
    data = path.read_bytes()
    if path.parent.name == "thumbs":
        assert_no_metadata(data, path.name)
    else:
        assert_only_kept_exif(data, path.name)
    with Image.open(path) as image:
        image.load()
        assert image.format == "JPEG" and image.mode == "RGB"
        assert max(image.size) <= long_edge
        return image.copy()


def upright_size(row: dict[str, str]) -> tuple[int, int]:
    width, height = (int(v) for v in row["pixel_size"].split("x"))
    turned = row["orientation_tag"] in ("5", "6", "7", "8")
    return (height, width) if turned else (width, height)


@pytest.fixture(scope="module")
def sample_results(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = require_samples()
    out = tmp_path_factory.mktemp("derived")
    images = make_config(out).images
    rows = [r for r in manifest() if not r["filename"].lower().endswith((".thm",))]
    jobs = [job_for(root / r["filename"], out) for r in rows]
    return rows, derive_many(jobs, images), images


def test_every_sample_gives_a_picture_or_a_clear_reason(sample_results) -> None:  # type: ignore[no-untyped-def]
    rows, results, images = sample_results
    for row, result in zip(rows, results, strict=True):
        name = row["filename"]
        if name in EXPECT_NOTE:
            assert result.note and "no usable preview" in result.note and not result.share
        elif name in EXPECT_ERROR:
            assert result.error and result.error.startswith("cannot decode") and not result.share
        elif name in EXPECT_TOO_LARGE:
            assert result.note and result.note.startswith("too large to preview on this "
                                                          "device") and not result.share
        elif result.job.kind == Kind.VIDEO:
            assert (result.error is None and result.duration_s is None) or result.duration_s > 0
        else:
            assert result.error is None and result.note is None, (name, result)
            assert result.share is not None and result.thumb is not None
            share = assert_clean_jpeg(result.share, images.share_max_long_edge)
            # a small picture shared as it is serves as its own thumbnail
            own = result.thumb == result.share
            thumb = assert_clean_jpeg(result.thumb, int(images.thumb_max_long_edge *
                                                        (OWN_THUMB_RATIO if own else 1)))
            assert (share.width >= share.height) == (thumb.width >= thumb.height)


def test_orientation_matches_the_camera(sample_results) -> None:  # type: ignore[no-untyped-def]
    rows, results, _ = sample_results
    checked = 0
    for row, result in zip(rows, results, strict=True):
        if result.share is None or result.job.kind not in (Kind.JPEG, Kind.TIFF):
            continue
        if row["pixel_size"] in ("n/a", "") or "x" not in row["pixel_size"]:
            continue
        want_w, want_h = upright_size(row)
        if want_w == want_h:
            continue
        assert (result.width > result.height) == (want_w > want_h), row["filename"]
        assert abs(result.width / result.height - want_w / want_h) < 0.02, row["filename"]
        checked += 1
    assert checked >= 30


def test_heic_and_raw_previews(sample_results, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows, results, images = sample_results
    by_name = {r["filename"]: res for r, res in zip(rows, results, strict=True)}
    assert (by_name["pruned_canon_eos_r6.CR3"].width,
            by_name["pruned_canon_eos_r6.CR3"].height) == (1620, 1080)  # never upscaled
    assert by_name["canon_powershot_s40_CRW_0101.CRW"].width == 640
    # 33 MP at 10 bits is too large for the default budget; a device with more may show it
    roomy = dataclasses.replace(images, decode_budget_mb=1024)
    portrait = derive_one(job_for(require_samples() / "sony_ilce7cm2_rotated_right_top.HIF",
                                  tmp_path), roomy)
    assert portrait.height > portrait.width
    iphone = by_name["apple_iphone13pro_IMG_8563.HEIC"]  # orientation 6
    assert iphone.height > iphone.width
    assert iphone.meta.captured_source == "exif-original" and iphone.meta.camera


def test_all_eight_orientations_and_cmyk(tmp_path: Path) -> None:
    images = make_config(tmp_path).images
    for orientation in range(1, 9):
        src = make_jpeg(tmp_path / f"o{orientation}.jpg",
                        PhotoSpec(width=600, height=300, orientation=orientation))
        result = derive_one(job_for(src, tmp_path / "out"), images)
        portrait = orientation >= 5
        assert (result.height > result.width) == portrait, orientation
        with Image.open(result.share) as share:
            top_left = share.convert("L").resize((2, 2)).getpixel((0, 0))
        assert isinstance(top_left, int)
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (400, 300), (0, 255, 255, 0)).save(cmyk, "JPEG")
    result = derive_one(job_for(cmyk, tmp_path / "out"), images)
    with Image.open(result.share) as share:
        red, green, blue = share.getpixel((200, 150))
    assert red > 200 and green < 60 and blue < 60  # cyan-free, magenta+yellow = red


@pytest.mark.parametrize("icc", [False, True], ids=["no-profile", "srgb-profile"])
def test_gps_and_exif_never_leave(tmp_path: Path, icc: bool) -> None:
    """Re-encoded (larger than the share size): GPS, make, model, the comment, XMP and
    the ICC profile of the camera's file are all gone; the capture time stays."""
    src = make_jpeg(tmp_path / "gps.jpg", PhotoSpec(width=3000, height=2000, gps=True))
    with Image.open(src) as camera:
        camera.load()
        profile = {"icc_profile": ImageCms.ImageCmsProfile(
            ImageCms.createProfile("sRGB")).tobytes()} if icc else {}
        camera.save(src, "JPEG", quality=90, exif=camera.info["exif"], **profile,
                    comment=b"owner: Jane", xmp=b"<x:xmpmeta>Jane</x:xmpmeta>")
    assert b"owner: Jane" in src.read_bytes() and b"xmpmeta" in src.read_bytes()
    assert b"GPS" in src.read_bytes() or Image.open(src).getexif().get_ifd(0x8825)
    result = derive_one(job_for(src, tmp_path / "out"), make_config(tmp_path).images)
    assert result.width == 2048 and result.height == 1365
    assert_clean_jpeg(result.share, 2048)
    assert_clean_jpeg(result.thumb, 512)
    # the capture time is kept, exactly as the camera wrote it (Google/Apple Photos
    # import the date from it); make, model, GPS and the rest are gone
    kept = assert_only_kept_exif(result.share.read_bytes())
    assert kept == {0x9003: "2026:11:24 10:42:00", 0x9011: "+01:00"}
    share_bytes = result.share.read_bytes()
    assert b"GhostRoll" not in share_bytes and b"Synthetic Camera" not in share_bytes
    assert b"Jane" not in share_bytes and b"Jane" not in result.thumb.read_bytes()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_broken_inputs_get_messages_not_crashes(tmp_path: Path) -> None:
    images = make_config(tmp_path).images
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 10000)).save(bomb)
    empty, junk, huge = (derive_one(job_for(tmp_path / n, tmp_path / "o", Kind.JPEG), images)
                         for n in ("empty.jpg", "junk.jpg", "bomb.png"))
    assert empty.error == "empty file (0 bytes): nothing to show"
    assert junk.error and junk.error.startswith("cannot decode")
    assert huge.note and "decompression bomb" in huge.note


def test_metadata_prefers_the_exif_sub_ifd() -> None:
    exif = Image.Exif()
    exif[0x0132] = "2020:01:01 00:00:00"  # DateTime in IFD0: the last edit
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2019:06:30 18:45:12"
    sub[0x9011] = "-07:00"
    sub[0x9291] = "25"
    meta = meta_from_exif(exif)
    assert meta.captured == datetime(2019, 6, 30, 18, 45, 12, 250000,
                                     tzinfo=timezone(-timedelta(hours=7)))
    assert meta.captured_source == "exif-original"
    only_ifd0 = Image.Exif()
    only_ifd0[0x0132] = "2020:01:01 10:00:00"
    assert meta_from_exif(only_ifd0).captured_source == "exif-datetime"
    assert meta_from_exif(Image.Exif(), mtime=0).captured_source == "file-mtime"
    unset = Image.Exif()
    unset[0x0132] = "0000:00:00 00:00:00"
    assert meta_from_exif(unset).captured is None


def test_numbering_gaps() -> None:
    assert numbering_gaps(["DSC_0416.JPG", "DSC_0416.NEF", "DSC_0420.JPG", "DSC_0421.JPG"]) == \
        ["DSC_0417–0419 not on the card (3 numbers)"]
    assert numbering_gaps(["IMG_0001.JPG", "MVI_0002.MOV", "IMG_0003.JPG"]) == []
    assert numbering_gaps(["IMG_0001.JPG", "IMG_0003.JPG"]) == [
        "IMG_0002 not on the card (1 number)"]
    assert numbering_gaps(["a.jpg"]) == []
    # phone names are timestamps, not counters
    phone = ["PXL_20231101_151117049.jpg", "PXL_20231101_151201512.jpg", "20231101_151117.jpg",
             "20231102_090000.jpg", "IMG_20231101_151117.jpg", "IMG_20231103_101010.jpg"]
    assert numbering_gaps(phone) == []
    # a hole of thousands is renamed files or another folder's run, not lost files
    assert numbering_gaps(["DSC_0001.JPG", "DSC_7935.JPG"]) == []


def test_every_picture_format_a_camera_writes(tmp_path: Path) -> None:
    """WebP, GIF, BMP, PNG and JPEG XL are pictures (shown, or listed with a reason)."""
    images = make_config(tmp_path).images
    picture = Image.new("RGB", (900, 600), (30, 120, 200))
    for ext, fmt in (("webp", "WEBP"), ("gif", "GIF"), ("bmp", "BMP"), ("png", "PNG"),
                     ("jxl", "JXL")):
        src = tmp_path / f"IMG_0001.{ext.upper()}"
        picture.save(src, fmt)
        assert classify(src.name, src.read_bytes()[:HEAD_BYTES]) == Kind.PICTURE
        result = derive_one(job_for(src, tmp_path / ext), images)
        assert result.error is None and result.share is not None, (ext, result.error)
        with Image.open(result.share) as share:
            red, green, blue = share.convert("RGB").getpixel((450, 300))
        assert abs(red - 30) < 12 and abs(green - 120) < 12 and abs(blue - 200) < 12, ext
    webp = tmp_path / "IMG_0001.WEBP"
    assert classify("noext", webp.read_bytes()[:HEAD_BYTES]) == Kind.PICTURE


def test_sixteen_bit_tiff_is_scaled_not_clipped(tmp_path: Path) -> None:
    band = Image.new("I;16", (640, 480), 1000)  # a 12-bit sensor band: all values > 255
    band.paste(Image.new("I;16", (320, 480), 4000), (320, 0))
    src = tmp_path / "IMG_0001_1.TIF"
    band.save(src, "TIFF")
    result = derive_one(job_for(src, tmp_path / "out"), make_config(tmp_path).images)
    assert result.error is None and result.share is not None
    with Image.open(result.share) as share:
        dark, bright = (share.convert("L").getpixel((x, 240)) for x in (100, 540))
    assert bright > 240 and 50 < dark < 80  # 1000/4000 of the range, not white


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_huge_baseline_jpeg_is_shown_from_a_draft(tmp_path: Path) -> None:
    src = tmp_path / "PANO_0001.JPG"
    Image.new("L", (20480, 13700), 128).save(src, "JPEG", quality=50)  # 280 MP
    result = derive_one(job_for(src, tmp_path / "out"), make_config(tmp_path).images)
    assert result.error is None and result.note is None
    assert (result.width, result.height) == (2048, 1370)


def test_budget_runs_an_oversized_job_alone() -> None:
    budget = Budget(100)
    budget.acquire(80)
    started = threading.Event()

    def big() -> None:
        budget.acquire(500)
        started.set()

    worker = threading.Thread(target=big)
    worker.start()
    assert not started.wait(0.2)  # must wait for the budget to empty
    budget.release(80)
    assert started.wait(5)
    worker.join()
    assert budget.used == 500


def test_adobe_rgb_marked_only_in_exif_is_converted(tmp_path: Path) -> None:
    """ColorSpace uncalibrated + interop index R03, no ICC (as Nikon and Canon write
    Adobe RGB): converted to sRGB, with values as colord's AdobeRGB1998.icc gives them."""
    picture = Image.new("RGB", (800, 400), (200, 100, 100))
    picture.paste(Image.new("RGB", (400, 400), (100, 180, 100)), (400, 0))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA001] = 0xFFFF
    exif.get_ifd(0x8769)[0xA005] = {0x0001: "R03"}  # the interoperability IFD
    marked, plain = tmp_path / "DSC_0001.JPG", tmp_path / "DSC_0002.JPG"
    picture.save(marked, "JPEG", quality=98, subsampling=0, exif=exif.tobytes())
    picture.save(plain, "JPEG", quality=98, subsampling=0)
    images = make_config(tmp_path).images
    for src, expected in ((marked, ((227, 100, 100), (0, 181, 94))),
                          (plain, ((200, 100, 100), (100, 180, 100)))):
        result = derive_one(job_for(src, tmp_path / src.stem), images)
        assert result.share is not None
        with Image.open(result.share) as share:
            got = (share.getpixel((100, 200)), share.getpixel((600, 200)))
        for pixel, want in zip(got, expected, strict=True):
            assert all(abs(a - b) <= 4 for a, b in zip(pixel, want, strict=True)), (src, got)


def test_small_jpeg_is_shared_as_is_without_its_metadata(tmp_path: Path) -> None:
    """Within the share size, sRGB and upright: the scan data is kept bit for bit, the
    metadata segments go (GPS, make, comments); only the thumbnail is decoded."""
    from ghostroll.derive.lossless import rewrite_metadata
    from ghostroll.derive.shared_metadata import shared_exif

    src = make_jpeg(tmp_path / "small.jpg", PhotoSpec(width=640, height=480, gps=True))
    with Image.open(src) as original:
        original.save(tmp_path / "commented.jpg", "JPEG", quality=90,
                      exif=original.info["exif"], comment=b"owner: Jane")
    src = tmp_path / "commented.jpg"
    result = derive_one(job_for(src, tmp_path / "out"), make_config(tmp_path).images)
    assert (result.width, result.height) == (640, 480) and not result.error
    assert result.meta.camera  # read from the original's EXIF all the same
    share = result.share.read_bytes()
    assert b"Jane" not in share
    assert_clean_jpeg(result.share, 2048)
    scan = src.read_bytes().index(b"\xff\xda")
    assert share.endswith(src.read_bytes()[scan:])  # not re-encoded
    with Image.open(src) as original:
        kept = shared_exif(original.getexif())
    assert share == rewrite_metadata(src.read_bytes(), kept).data  # the capture time only
    assert result.thumb == result.share  # 640 px: its own thumbnail, one object less
    with Image.open(result.share) as a, Image.open(src) as b:
        assert a.tobytes() == b.tobytes()


def test_what_follows_a_small_jpeg_is_not_shared(tmp_path: Path) -> None:
    """A camera may append data after the image (a motion photo's MP4 with its own GPS
    tags, a maker's trailer): a JPEG shared as it is ends at its end of image."""
    for progressive in (False, True):
        src = tmp_path / f"PXL_0001_{progressive}.jpg"
        Image.effect_noise((640, 480), 60).convert("RGB").save(
            src, "JPEG", quality=90, progressive=progressive)
        image = src.read_bytes()
        src.write_bytes(image + b"\x00\x00\x00\x10trailer:GPS 48.85N 2.35E" * 4)
        result = derive_one(job_for(src, tmp_path / f"out{progressive}"),
                            make_config(tmp_path).images)
        share = result.share.read_bytes()
        assert b"GPS 48.85N" not in share and share.endswith(b"\xff\xd9")
        assert share.endswith(image[image.index(b"\xff\xda"):])  # still not re-encoded


def test_jpegs_that_need_pixels_changed_are_still_re_encoded(tmp_path: Path) -> None:
    images = make_config(tmp_path).images
    middle = make_jpeg(tmp_path / "middle.jpg", PhotoSpec(width=1600, height=1067))
    result = derive_one(job_for(middle, tmp_path / "out"), images)
    assert result.thumb != result.share  # shared as it is, with a thumbnail of its own
    assert_clean_jpeg(result.thumb, 512)
    turned = make_jpeg(tmp_path / "turned.jpg", PhotoSpec(width=640, height=480, orientation=6))
    big = make_jpeg(tmp_path / "big.jpg", PhotoSpec(width=3000, height=2000))
    for src in (turned, big):
        result = derive_one(job_for(src, tmp_path / "out"), images)
        scan = src.read_bytes().index(b"\xff\xda")
        assert not result.share.read_bytes().endswith(src.read_bytes()[scan:])
    assert derive_one(job_for(turned, tmp_path / "out"), images).height == 640


def test_derivatives_hashes_are_known_without_reading_them_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each derivative's hash is remembered from the bytes written (the upload after it
    asks for it); a file replaced since is hashed again, never given the old hash."""
    src = make_jpeg(tmp_path / "big.jpg", PhotoSpec(width=3000, height=2000))
    small = make_jpeg(tmp_path / "small.jpg", PhotoSpec(width=1200, height=800))
    results = [derive_one(job_for(s, tmp_path / "out"), make_config(tmp_path).images)
               for s in (src, small)]
    written = [p for r in results for p in (r.share, r.thumb) if p is not None]
    assert len(written) == 4
    expected = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in written}

    def no_reading(path: Path, **_: object) -> str:
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(hashing, "sha256_file", no_reading)
    assert {p: hashing.sha256_unchanged(p) for p in written} == expected
    monkeypatch.undo()
    replaced = written[0]
    other = replaced.with_name("other.jpg")
    other.write_bytes(b"not the share image")
    os.replace(other, replaced)
    assert hashing.sha256_unchanged(replaced) == hashlib.sha256(b"not the share image").hexdigest()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_derive_workers_yield_the_cpu_to_the_card_copy(tmp_path: Path) -> None:
    """The derive workers run at a lower priority than the thread that made the pool
    (the card's copy, in `ghostroll run`), which keeps its own."""
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = nice()
    pool = DerivePool(make_config(tmp_path).images)
    try:
        workers = {pool.executor.submit(nice).result() for _ in range(4)}
    finally:
        pool.close()
    assert workers == {min(19, mine + WORKER_NICE)} and nice() == mine
