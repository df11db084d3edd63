"""Pure parts of what a recipient sees: album names, the link preview's summary, zip
entry names and times, and what ffprobe's answer and the remux command say."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from ghostroll.derive.video import VideoInfo, captured, parse_probe, plays_inline, remux_command
from ghostroll.gallery.title import album_title, chosen_label, date_range, summary
from ghostroll.gallery.ziparchive import UNDATED, entry_names, zip_time


def test_camera_and_os_default_labels_do_not_name_an_album() -> None:
    for label in ("NO NAME", "EOS_DIGITAL", "auto-import", "NIKON D750", "Untitled", "",
                  None, "CANON_DC", "LUMIX", "ILCE-7M3"):
        assert chosen_label(label) is None, label
    assert chosen_label(" Smith wedding ") == "Smith wedding"
    assert chosen_label("card1") == "card1"


def test_date_ranges_as_the_camera_recorded_them() -> None:
    d = date
    assert date_range([d(2024, 6, 12)]) == "12 Jun 2024"
    assert date_range([d(2024, 6, 14), d(2024, 6, 12), d(2024, 6, 13)]) == "12–14 Jun 2024"
    assert date_range([d(2024, 5, 30), d(2024, 6, 2)]) == "30 May – 2 Jun 2024"
    assert date_range([d(2023, 12, 30), d(2024, 1, 2)]) == "30 Dec 2023 – 2 Jan 2024"
    assert date_range([d(2024, 6, 12), d(2024, 6, 14)], with_year=False) == "12–14 Jun"
    assert date_range([]) == ""


def test_album_title_keeps_the_cameras_local_time() -> None:
    # 23:30 at UTC+10 is the 12th where it was taken (the 12th 13:30 UTC): no conversion
    late = datetime(2024, 6, 12, 23, 30, tzinfo=timezone(timedelta(hours=10)))
    early = datetime(2024, 6, 14, 0, 30, tzinfo=timezone(timedelta(hours=-7)))
    assert album_title("NO NAME", [late, early, None], date(2026, 11, 29)) == "12–14 Jun 2024"
    assert album_title("Smith wedding", [late], date(2026, 11, 29)) == \
        "Smith wedding · 12 Jun 2024"
    assert album_title("EOS_DIGITAL", [], date(2026, 11, 29)) == "29 Nov 2026"
    assert summary(23, 2, [late, early]) == "23 photos · 2 videos · 12–14 Jun"
    assert summary(1, 0, []) == "1 photo"


def test_zip_entries_named_as_on_the_card() -> None:
    assert entry_names(["DSC_0001.JPG", "DSC_0002.NEF", "DSC_0002.JPG", "dsc_0002.jpg"]) == \
        ["DSC_0001.jpg", "DSC_0002.jpg", "DSC_0002 (2).jpg", "dsc_0002 (3).jpg"]
    assert zip_time(datetime(2024, 6, 12, 10, 0, 41, tzinfo=UTC)) == \
        (2024, 6, 12, 10, 0, 40)  # zip times have 2 s steps
    assert zip_time(None) == UNDATED


def test_probe_answers_and_the_remux_command() -> None:
    info = parse_probe('{"streams": [{"codec_type": "audio", "codec_name": "aac"}, '
                       '{"codec_type": "video", "codec_name": "h264"}], "format": '
                       '{"duration": "4.0100", "tags": {"creation_time": '
                       '"2024-06-13T15:00:00.000000Z", "com.apple.quicktime.creationdate": '
                       '"2024-06-13T17:00:00+0200"}}}')
    assert (info.duration_s, info.codec) == (4.01, "h264")
    assert captured(info) == datetime(2024, 6, 13, 17, 0,
                                      tzinfo=timezone(timedelta(hours=2)))
    assert captured(VideoInfo(creation_time="1904-01-01T00:00:00Z")) is None
    assert parse_probe("not json") == VideoInfo()
    assert plays_inline("mp4", "h264") and plays_inline("mov", "h264")
    assert not plays_inline("mp4", "hevc") and not plays_inline("avi", "mjpeg")
    command = remux_command(Path("in.MOV"), Path("out.mov"), "2024-06-13T15:00:00Z")
    assert command[command.index("-c") + 1] == "copy"  # never re-encoded
    assert "-dn" in command and command[command.index("-map_metadata") + 1] == "-1"
    assert "creation_time=2024-06-13T15:00:00Z" in command and "+faststart" in command
    skipped = remux_command(Path("m.jpg"), Path("m.mp4"), None, skip=1234)
    assert "subfile,,start,1234,end,0,,:m.jpg" in skipped
