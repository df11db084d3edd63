"""The bucket as an archive target (SeaweedFS with credentials): originals sent once by
`upload_originals` in the configured storage class, proven intact by the server (a body
that arrives damaged is refused and sent again), recorded as `bucket` copies that count
for the receipt and for `prune`, and checked by `ghostroll verify`."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ghostroll.commands.verify import verify_device
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.job import run_job
from ghostroll.publish import s3client
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database
from tests.support import s3 as s3_support
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket

s3_server = s3_support.s3_server
s3_bucket = s3_support.s3_bucket


@pytest.fixture
def archive() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="gr-archive-", dir="/dev/shm"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def cfg_for(tmp: Path, bucket: S3Bucket, **extra: Any):  # type: ignore[no-untyped-def]
    return make_config(tmp, clock_trusted=True, upload_originals=True, **bucket.config_flags(),
                       **extra)


def test_originals_in_the_bucket_are_a_second_copy(tmp_path: Path, s3_bucket: S3Bucket,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = cfg_for(tmp_path, s3_bucket, bucket_storage_class="standard_ia", upload_workers=1)
    damaged: list[str] = []
    refused: list[tuple[str, str]] = []
    keys: list[str] = []
    real_make = s3client.make_client

    def damaging_client(s3: Any, **kw: Any) -> Any:
        """The first original's body arrives damaged (its digest no longer matches)."""
        client = real_make(s3, **kw)

        def damage(params: dict[str, Any], **_: Any) -> None:
            if "/originals/" in params.get("Key", "") and not damaged:
                damaged.append(params["Key"])
                params["ContentMD5"] = "1B2M2Y8AsgTpgAmY7PhCfg=="  # md5 of nothing

        def asked(params: dict[str, Any], **_: Any) -> None:
            keys.append(params.get("url_path", ""))

        def answered(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
            code = str(parsed.get("Error", {}).get("Code", http_response.status_code))
            refused.append((keys[-1], code))

        client.meta.events.register("before-parameter-build.s3.PutObject", damage)
        client.meta.events.register("before-call.s3.PutObject", asked)
        client.meta.events.register("after-call.s3.PutObject", answered)
        return client

    monkeypatch.setattr(s3client, "make_client", damaging_client)
    out = io.StringIO()
    job = run_job(make_demo_card(tmp_path / "card", photos=2), cfg, out=out)
    assert job.exit_code == 0, out.getvalue()
    assert out.getvalue().rstrip().endswith("2 copies ✓ · safe to format")
    answers = [code for url, code in refused if url.endswith(damaged[0].rsplit("/", 1)[1])]
    assert answers[:2] == ["BadDigest", "200"], refused  # refused, then sent again
    with Database(cfg.storage.db_path) as db:
        contents = {r["sha256"]: r["size"] for r in db.contents()}
        copies = db.copies(location=dbm.BUCKET)
        ledger = db.upload_ledger(cfg.s3.endpoint_id, cfg.s3.s3_bucket)
        uploads = ledger.keys("sessions/")
    assert {c.sha256 for c in copies} == set(contents)
    originals = [k for k, _, _ in uploads if "/originals/" in k]
    assert len(originals) == len(contents)  # one object per original, sent once
    for copy in copies:
        key = copy.target.split(" ", 2)[2]
        head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=key)
        assert head["ContentLength"] == copy.size
        # SeaweedFS keeps the class it is given; AWS does too, R2/B2 ignore it
        assert head.get("StorageClass", "STANDARD_IA") == "STANDARD_IA"
    report = verify_device(cfg)
    assert report.ok and report.checked["copies"] == 2 * len(contents)
    # an object removed from the bucket is found by verify
    gone = copies[0].target.split(" ", 2)[2]
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=gone)
    report = verify_device(cfg)
    assert any(p.kind == "copy-missing" and p.path == f"s3://{s3_bucket.name}/{gone}"
               for p in report.problems)


def test_prune_with_the_disk_and_the_bucket(tmp_path: Path, s3_bucket: S3Bucket,
                                            archive: Path) -> None:
    cfg = cfg_for(tmp_path, s3_bucket, archive_dir=str(archive), prune="archived",
                  prune_keep_free_mb=10_000_000)
    card = make_demo_card(tmp_path / "card", photos=2)
    first = run_job(card, cfg, out=io.StringIO())
    assert first.ingest.session is not None
    session = first.ingest.session
    # the bucket copies are recorded after publishing: the next run prunes with both
    out = io.StringIO()
    run_job(card, cfg, out=out)
    assert "pruned" in out.getvalue(), out.getvalue()
    assert not [p for p in (session.path / "originals").rglob("*") if p.is_file()]
    assert out.getvalue().rstrip().endswith("2 copies ✓ · safe to format")
    report = verify_device(cfg, read_data=True)
    assert report.ok, report.problems
