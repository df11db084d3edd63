"""Which card files become which gallery tiles."""

from __future__ import annotations

from ghostroll.gallery.shots import CardEntry, plan_shots


def entry(rel: str, kind: str) -> CardEntry:
    stem = rel.rsplit("/", 1)[0] + "/" + rel.rsplit("/", 1)[1].split(".")[0]
    return CardEntry(rel, kind, stem, rel.encode().hex()[:64], 10)


def test_raw_jpeg_pair_shows_the_jpeg_and_keeps_the_raw_as_original() -> None:
    shots = plan_shots([entry("DCIM/100C/IMG_1.CR2", "raw"), entry("DCIM/100C/IMG_1.JPG", "jpeg")])
    assert len(shots) == 1
    assert shots[0].source.rel_path.endswith("IMG_1.JPG") and shots[0].kind == "photo"
    assert {o.rel_path for o in shots[0].originals} == {"DCIM/100C/IMG_1.CR2",
                                                       "DCIM/100C/IMG_1.JPG"}


def test_raw_alone_is_a_photo_from_its_preview() -> None:
    [shot] = plan_shots([entry("DCIM/100C/IMG_2.CR3", "raw")])
    assert shot.kind == "photo" and shot.source.kind == "raw"


def test_live_photo_heic_with_mov_is_one_photo() -> None:
    [shot] = plan_shots([entry("DCIM/100A/IMG_3.HEIC", "heic"),
                         entry("DCIM/100A/IMG_3.MOV", "video")])
    assert shot.kind == "photo" and len(shot.originals) == 2


def test_video_uses_its_thm_as_poster_and_sidecars_alone_are_not_shown() -> None:
    shots = plan_shots([entry("DCIM/100C/MVI_4.AVI", "video"),
                        entry("DCIM/100C/MVI_4.THM", "sidecar"),
                        entry("DCIM/100C/NOTE.XMP", "sidecar"),
                        entry("DCIM/100C/X.CTG", "other")])
    assert [s.kind for s in shots] == ["video"]
    assert shots[0].poster is not None and shots[0].poster.rel_path.endswith(".THM")


def test_ids_are_url_safe_and_unique() -> None:
    shots = plan_shots([entry("DCIM/100C/<img src=x>.JPG", "jpeg"),
                        entry("DCIM/100C/_img src=x_.JPG", "jpeg"),
                        entry("DCIM/100C/café.JPG", "jpeg")])
    ids = [s.id for s in shots]
    assert len(set(ids)) == 3
    assert all(c.isascii() and (c.isalnum() or c in "-_") for i in ids for c in i)
