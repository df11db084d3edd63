"""The card phase's sealer: copies made durable, verified from disk and named in batches.
One file's failure (a damaged copy, a full disk) is that file's result and never costs
the others of its batch; nothing lands under a final name unverified."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ghostroll import faults
from ghostroll.card.copier import Copied
from ghostroll.card.scan import CardFile
from ghostroll.card.sealer import Handoff, Sealed, Sealer, seal
from ghostroll.errors import DiskFullError, VerifyError


def handoff(tmp: Path, name: str, data: bytes, *, claimed: bytes | None = None) -> Handoff:
    """A temp copy of `data` under .incoming; `claimed`: the bytes the card phase hashed
    (different from what is on disk: a copy damaged on its way to the disk)."""
    temp = tmp / ".incoming" / f"{name}.part"
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_bytes(data)
    digest = hashlib.sha256(claimed if claimed is not None else data).hexdigest()
    card_file = CardFile(f"DCIM/100TEST/{name}", len(data), 0)
    return Handoff(Copied(temp, digest, len(data), data[:16]), card_file, "jpeg",
                   tmp / "session" / "originals" / card_file.rel_path)


def test_a_batch_lands_under_final_names_with_its_temp_files_gone(tmp_path: Path) -> None:
    batch = [handoff(tmp_path, f"IMG_{i:04d}.JPG", os.urandom(3000 + i)) for i in range(5)]
    results = seal(batch)
    assert [r.error for r in results] == [None] * 5
    for h, r in zip(batch, results, strict=True):
        assert r.stored == h.final
        assert hashlib.sha256(r.stored.read_bytes()).hexdigest() == h.copied.sha256
    assert not list((tmp_path / ".incoming").iterdir())


def test_a_damaged_copy_fails_alone_and_never_gets_a_final_name(tmp_path: Path) -> None:
    good = handoff(tmp_path, "IMG_0001.JPG", b"first photo")
    damaged = handoff(tmp_path, "IMG_0002.JPG", b"bits flipped on disk", claimed=b"photo")
    last = handoff(tmp_path, "IMG_0003.JPG", b"third photo")
    results = seal([good, damaged, last])
    assert isinstance(results[1].error, VerifyError)
    assert results[1].stored is None
    assert not damaged.final.exists() and not damaged.copied.temp.exists()
    assert results[0].stored == good.final and results[2].stored == last.final


def test_a_taken_name_is_never_replaced(tmp_path: Path) -> None:
    h = handoff(tmp_path, "IMG_0001.JPG", b"the second photo under this name")
    h.final.parent.mkdir(parents=True)
    h.final.write_bytes(b"a recorded original")
    [result] = seal([h])
    assert result.stored == h.final.with_name("IMG_0001~2.JPG")
    assert h.final.read_bytes() == b"a recorded original"


def test_a_full_disk_at_fsync_is_disk_full_not_a_failed_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.FAULT_ENV, "copy.fsync:enospc@2")
    faults.reload()
    try:
        results = seal([handoff(tmp_path, f"IMG_{i}.JPG", b"x" * (i + 1)) for i in range(3)])
    finally:
        monkeypatch.delenv(faults.FAULT_ENV)
        faults.reload()
    assert results[0].error is None and results[2].error is None
    assert isinstance(results[1].error, DiskFullError)
    assert not results[1].handoff.copied.temp.exists()


def test_the_thread_seals_everything_handed_over_before_finish_returns(
        tmp_path: Path) -> None:
    sealer = Sealer()
    batch = [handoff(tmp_path, f"IMG_{i:04d}.JPG", os.urandom(1000)) for i in range(100)]
    for h in batch:
        sealer.put(h)
    sealer.finish()
    results = sealer.results()
    assert [r.handoff for r in results] == batch  # in order, none lost
    assert all(r.stored == r.handoff.final and r.error is None for r in results)


def test_a_record_that_fails_unexpectedly_fails_each_copy_not_silently(
        tmp_path: Path) -> None:
    def broken(results: list[Sealed]) -> list[Sealed]:
        raise AssertionError("a bug in recording")

    sealer = Sealer(broken)
    batch = [handoff(tmp_path, f"IMG_{i:04d}.JPG", os.urandom(1000)) for i in range(3)]
    for h in batch:
        sealer.put(h)
    sealer.finish()
    results = sealer.results()
    assert [r.handoff for r in results] == batch
    assert all(isinstance(r.error, AssertionError) and r.stored is None for r in results)
