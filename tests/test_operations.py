"""Operating it: doctor against a private and a deliberately public bucket, setup that
refuses to save a broken bucket, status from the running service."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

from ghostroll.appliance import protocol as p
from ghostroll.appliance.host import Devices
from ghostroll.appliance.machine import State
from ghostroll.appliance.service import Service
from ghostroll.commands import doctor
from ghostroll.commands.setup import run_setup
from ghostroll.commands.status import NotRunning, query
from ghostroll.devices.kits import load_kit
from ghostroll.publish.links import has_short_link_policy, short_link_policy
from ghostroll.storage.db import SCHEMA_VERSION
from tests.support.ingest import make_config
from tests.support.s3 import S3Bucket

REPO = Path(__file__).resolve().parents[1]


def by_name(results: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {r.name: r for r in results}


def test_doctor_on_a_private_bucket(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    results = doctor.run_checks(cfg)
    checks = by_name(results)
    assert not doctor.failed(results), doctor.report_text(results)
    assert checks["bucket private"].status == "ok"
    assert checks["presign round trip"].status == "ok"
    assert checks["short links"].status == "warn"  # no L/ policy on this bucket
    database = checks["database"]
    assert database.status == "ok" and f"schema {SCHEMA_VERSION}" in database.detail
    text = doctor.report_text(results)
    assert s3_bucket.server.secret_key not in text and "never shown" in text
    assert s3_bucket.keys("ghostroll-doctor/") == []  # the test object was deleted


def test_doctor_flags_a_public_bucket(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    public = {"Version": "2012-10-17", "Statement": [{
        "Sid": "Oops", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{s3_bucket.name}/*"}]}
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.name, Policy=json.dumps(public))
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    results = doctor.run_checks(cfg)
    checks = by_name(results)
    assert doctor.failed(results)
    assert checks["bucket private"].status == "fail" and "PUBLIC" in checks["bucket private"].detail
    assert checks["bucket policy"].status == "fail"
    out = subprocess.run([sys.executable, "-m", "ghostroll", "doctor", "--json"],
                         capture_output=True, text=True, cwd=REPO, env={
                             "HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
                             "GHOSTROLL_BASE_DIR": str(tmp_path / "s"),
                             "GHOSTROLL_DB_PATH": str(tmp_path / "d.db"),
                             "GHOSTROLL_CLOCK_TRUSTED": "1",
                             **{f"GHOSTROLL_{k.upper()}": v
                                for k, v in s3_bucket.config_flags().items()}})
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["ok"] is False
    assert any(c["name"] == "bucket private" and c["status"] == "fail"
               for c in report["checks"])


def test_doctor_reports_the_short_link_policy(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.name,
                                       Policy=json.dumps(short_link_policy(s3_bucket.name)))
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    results = doctor.run_checks(cfg)
    assert by_name(results)["short links"].status == "ok"
    assert not doctor.failed(results)


def test_doctor_with_an_unreachable_endpoint_says_what_to_do(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, s3_bucket="photos", s3_endpoint_url="http://127.0.0.1:9",
                      s3_access_key_id="K", s3_secret_access_key="S", clock_trusted=True)
    checks = by_name(doctor.run_checks(cfg))
    assert checks["bucket reachable"].status == "fail"
    assert "s3_endpoint_url" in checks["bucket reachable"].fix


def test_setup_saves_only_a_working_bucket(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    target = tmp_path / "config.toml"
    flags = dict(s3_bucket.config_flags(), clock_trusted="true")
    wrong = dict(flags, s3_secret_access_key="not-the-secret")
    lines: list[str] = []
    assert run_setup(wrong, system=False, interactive=False, path=target,
                     out=lines.append) == 1
    assert not target.exists() and "not saved" in lines[-1]
    # typed: bucket, short_links; then (credentials refused) only the credentials again,
    # Enter keeping the key id typed before; then yes to the policy and the lifecycle rule
    answers = iter([s3_bucket.name, "auto", "y", "y"])
    hidden = iter([s3_bucket.server.access_key, "not-the-secret",
                   "", s3_bucket.server.secret_key])
    asked: list[str] = []

    def prompt(question: str) -> str:
        asked.append(question)
        return next(answers)

    def secret(question: str) -> str:
        asked.append(question)
        return next(hidden)

    keep = {k: v for k, v in flags.items() if k in ("s3_endpoint_url", "s3_region",
                                                   "s3_addressing_style", "clock_trusted")}
    lines.clear()
    assert run_setup(keep, system=False, interactive=True, path=target, prompt=prompt,
                     secret=secret, out=lines.append) == 0
    assert [q.split(" ")[0].rstrip(":") for q in asked] == [
        "s3_bucket", "s3_access_key_id", "s3_secret_access_key", "short_links",
        "s3_access_key_id", "s3_secret_access_key", "Apply", "Apply"]
    text = "\n".join(lines)
    assert "refused these credentials" in text and "(flag --s3-bucket)" not in text
    assert "(the setup prompt)" in text
    assert f'"Resource": "arn:aws:s3:::{s3_bucket.name}/L/*"' in text
    saved = tomllib.loads(target.read_text())
    assert saved["s3"]["s3_bucket"] == s3_bucket.name
    assert saved["s3"]["s3_secret_access_key"] == s3_bucket.server.secret_key
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert has_short_link_policy(s3_bucket.client, s3_bucket.name)
    rules = s3_bucket.client.get_bucket_lifecycle_configuration(Bucket=s3_bucket.name)
    assert {r["ID"] for r in rules["Rules"]} >= {"ghostroll-short-links",
                                                 "ghostroll-abort-incomplete"}


def test_doctor_tells_missing_bucket_from_refused_credentials_from_no_network(
        tmp_path: Path, s3_bucket: S3Bucket) -> None:
    def reachable(**flags: str) -> doctor.Check:
        cfg = make_config(tmp_path, clock_trusted=True,
                          **dict(s3_bucket.config_flags(), **flags))
        return by_name(list(doctor.check_s3(cfg)))["bucket reachable"]

    missing = reachable(s3_bucket="no-such-bucket-here")
    assert "no bucket named no-such-bucket-here" in missing.detail
    assert "s3_bucket" in missing.keys
    refused = reachable(s3_secret_access_key="not-the-secret")
    assert "refused these credentials" in refused.detail
    assert refused.keys == ("s3_access_key_id", "s3_secret_access_key")
    offline = reachable(s3_endpoint_url="http://127.0.0.1:9")
    assert "cannot reach http://127.0.0.1:9" in offline.detail
    assert "network" in offline.fix and "s3_endpoint_url" in offline.keys


def test_status_from_the_running_service(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, runtime_dir=tmp_path / "run")
    try:
        query(tmp_path / "run")
        raise AssertionError("expected NotRunning")
    except NotRunning as exc:
        assert "not running" in str(exc)
    service = Service(cfg, load_kit("waveshare-2in13-v4"), Devices(
        panel_submit=lambda *a: None, eject=lambda d: None, shutdown=lambda: None))
    answers: list[dict] = []

    def ask() -> None:
        answers.append(query(tmp_path / "run"))
        service.post(p.Hold())

    threading.Timer(1.0, ask).start()
    service.post(p.Battery(64.0, charging=True))
    service.run(until=lambda m: m.state == State.CONFIRM_SHUTDOWN, timeout_s=20)
    status = answers[0]
    assert status["state"] == "idle" and status["battery_percentage"] == 64.0
    assert status["battery_charging"] is True and status["message"] == "Insert a camera card"
    out = io.StringIO()
    from ghostroll.commands.status import render
    out.write(render(status, as_json=False))
    assert "battery    64 % charging" in out.getvalue()


def test_setup_refuses_an_unusable_bucket_name_without_saving(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    lines: list[str] = []
    assert run_setup({"s3_bucket": "a/b"}, system=False, interactive=False, path=target,
                     out=lines.append) == 2
    assert not target.exists()
    assert "not saved" in lines[-1] and "s3_bucket = 'a/b'" in lines[-1]


def test_setup_reasks_only_an_endpoint_without_scheme(tmp_path: Path,
                                                      s3_bucket: S3Bucket) -> None:
    flags = s3_bucket.config_flags()
    endpoint = flags.pop("s3_endpoint_url")
    keep = {k: flags[k] for k in ("s3_bucket", "s3_region", "s3_addressing_style",
                                  "s3_access_key_id", "s3_secret_access_key")}
    keep["clock_trusted"] = "true"
    answers = iter([endpoint.removeprefix("http://"), "on", endpoint, "n", "n"])
    asked: list[str] = []

    def prompt(question: str) -> str:
        asked.append(question.split(" ")[0].rstrip(":"))
        return next(answers)

    lines: list[str] = []
    target = tmp_path / "config.toml"
    assert run_setup(keep, system=False, interactive=True, path=target, prompt=prompt,
                     secret=lambda q: "", out=lines.append) == 0
    assert asked == ["s3_endpoint_url", "short_links", "s3_endpoint_url", "Apply", "Apply"]
    refused = next(line for line in lines if "not saved" in line)
    assert "s3_endpoint_url = " in refused and "from the setup prompt" in refused
    assert "expected an http:// or https:// URL" in refused and "report this" not in refused
    assert tomllib.loads(target.read_text())["s3"]["s3_endpoint_url"] == endpoint
