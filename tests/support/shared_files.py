"""What a file a recipient downloads may carry: checks shared by the derive, publish and
recipient tests."""

from __future__ import annotations

from io import BytesIO

from PIL import Image

from ghostroll.derive.shared_metadata import EXIF_IFD, KEPT_EXIF_TAGS

# Markers of metadata a shared JPEG must not hold (the EXIF block itself is checked by tag)
FORBIDDEN_MARKERS = (b"http://ns.adobe.com/xap", b"ICC_PROFILE", b"GPS", b"Photoshop 3.0")
GPS_IFD, MAKER_NOTE = 0x8825, 0x927C


def assert_only_kept_exif(data: bytes, name: str = "") -> dict[int, object]:
    """The JPEG's EXIF holds nothing but the allow-listed capture time tags (no GPS,
    make, model, maker notes, serials, owner); returns those tags."""
    # only the segments before the scan: the entropy-coded picture may hold any 3 bytes
    scan = data.find(b"\xff\xda")
    header = data[:scan] if scan >= 0 else data
    for marker in FORBIDDEN_MARKERS:
        assert marker not in header, f"{name} carries {marker!r}"
    with Image.open(BytesIO(data)) as image:
        exif = image.getexif()
        assert "icc_profile" not in image.info and "xmp" not in image.info, name
        assert "comment" not in image.info, f"{name} carries a comment"
    assert set(exif) <= {EXIF_IFD}, f"{name}: IFD0 tags {sorted(exif)}"
    assert not exif.get_ifd(GPS_IFD), f"{name} carries GPS"
    sub = exif.get_ifd(EXIF_IFD)
    assert set(sub) <= KEPT_EXIF_TAGS, f"{name}: Exif tags {sorted(sub)}"
    assert MAKER_NOTE not in sub
    return dict(sub)


def assert_no_metadata(data: bytes, name: str = "") -> None:
    """Thumbnails carry nothing at all."""
    assert b"Exif\x00\x00" not in data, f"{name} carries EXIF"
    assert_only_kept_exif(data, name)
