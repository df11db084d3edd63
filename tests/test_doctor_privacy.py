"""Doctor proves privacy on objects that were really published (not only on a fresh
test object) and warns about plain http across a network."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

from ghostroll.commands import doctor
from ghostroll.config import Config
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.job import run_job
from ghostroll.publish.links import is_short_link_key, new_token, short_link_policy
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket, unsigned_get


def by_name(results: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {r.name: r for r in results}


def test_published_objects_under_the_public_short_link_prefix_are_caught(
        tmp_path: Path, s3_bucket: S3Bucket) -> None:
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.name,
                                       Policy=json.dumps(short_link_policy(s3_bucket.name)))
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    before = by_name(doctor.run_checks(cfg))
    assert before["published objects private"].status == "skip"
    # What an earlier version let through: sessions published under L/ (config now
    # refuses that prefix), public by the documented short-link policy.
    old: Config = dataclasses.replace(cfg, s3=dataclasses.replace(cfg.s3, s3_prefix_root="L/"))
    job = run_job(make_demo_card(tmp_path / "card", photos=2), old, out=io.StringIO())
    assert job.exit_code == 0 and job.ingest.session is not None
    leaked = [k for k in s3_bucket.keys("L/") if k.endswith(".jpg")]
    assert leaked and unsigned_get(s3_bucket.url(leaked[0]))[0] == 200
    results = doctor.run_checks(cfg)
    checks = by_name(results)
    assert checks["bucket private"].status == "ok"  # the test object alone says private
    assert "bucket policy" not in checks  # the policy is exactly the documented one
    found = checks["published objects private"]
    assert found.status == "fail" and f"L/{job.ingest.session.id}/" in found.detail
    assert doctor.failed(results)


def test_published_objects_private_on_a_private_bucket(tmp_path: Path,
                                                       s3_bucket: S3Bucket) -> None:
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    job = run_job(make_demo_card(tmp_path / "card", photos=2), cfg, out=io.StringIO())
    assert job.exit_code == 0 and job.ingest.session is not None
    results = doctor.run_checks(cfg)
    found = by_name(results)["published objects private"]
    assert found.status == "ok", doctor.report_text(results)
    assert f"sessions/{job.ingest.session.id}/" in found.detail and ".jpg" in found.detail
    assert "unsigned GET 403" in found.detail
    assert not doctor.failed(results)
    # an object the ledger names but the bucket lost is reported, not counted as private
    for key in s3_bucket.keys(f"sessions/{job.ingest.session.id}/"):
        s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=key)
    checks = by_name(doctor.run_checks(cfg))
    assert checks["published objects present"].status == "warn"


def test_plain_http_to_another_machine_warns_but_loopback_does_not(tmp_path: Path) -> None:
    remote = make_config(tmp_path, s3_bucket="photos", s3_endpoint_url="http://192.0.2.10:9000")
    [warning] = doctor.check_transport(remote)
    assert warning.status == "warn" and not warning.blocking
    assert "unencrypted" in warning.detail and "https://" in warning.fix
    for url in ("http://127.0.0.1:8333", "http://localhost:9000", "https://192.0.2.10"):
        cfg = make_config(tmp_path, s3_bucket="photos", s3_endpoint_url=url)
        assert list(doctor.check_transport(cfg)) == [], url


def test_short_link_pages_are_told_apart_from_objects_under_L() -> None:
    token = new_token()
    assert is_short_link_key(f"L/{token}")
    assert not is_short_link_key(f"L/{token}/index.html")
    assert not is_short_link_key("L/shoot-2026-01-01_000000_abcdef/share/a.jpg")
    assert not is_short_link_key(f"sessions/{token}")
