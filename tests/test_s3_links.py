"""Share links against a real SeaweedFS: presigned URLs work and expire, short links are
public only under L/ once the policy is applied, short-link URLs survive a round trip
through a real QR decoder. Plus client settings and the clock rules."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from ghostroll import config
from ghostroll.errors import ConfigError, PublishError
from ghostroll.publish import qr
from ghostroll.publish.clock import clock_verdict, server_date, system_clock_synchronized
from ghostroll.publish.links import (
    expiry_warning,
    grants_short_links,
    has_short_link_policy,
    new_token,
    presign_get,
    public_grants_beyond_short_links,
    qr_friendly_url,
    short_link_key,
    short_link_page,
    short_link_policy,
    short_link_url,
)
from ghostroll.publish.s3client import client_settings, make_client, uses_temporary_credentials
from ghostroll.publish.upload import MemoryLedger, UploadTask, upload_all
from tests.support import s3 as s3_support
from tests.support.s3 import S3Bucket, unsigned_get

s3_server = s3_support.s3_server
s3_bucket = s3_support.s3_bucket

zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp decodes the QR codes")


def s3_settings(**flags: str) -> config.S3Config:
    return config.load(config_file=None, env={}, flags=flags).s3


def decode_qr(text: str) -> tuple[str, int]:
    """Render `text` the way the panel does (EC L, quiet zone 2) and decode it with
    zxing-cpp; (decoded text, modules per side)."""
    matrix = qr.qr_matrix(text, "L")
    image = qr.render(matrix, module_px=4).convert("L")
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    return results[0].text, len(matrix)


def put(s3_bucket: S3Bucket, key: str, body: bytes, tmp_path: Path) -> None:
    path = tmp_path / key.replace("/", "_")
    path.write_bytes(body)
    report = upload_all(s3_bucket.client, s3_bucket.name, [UploadTask.for_file(key, path)],
                        MemoryLedger(), workers=1, multipart_threshold_bytes=16 << 20)
    assert report.ok, report.summary()


# ------------------------------------------------------------------ presigned URLs


@pytest.mark.s3
def test_presigned_link_expires(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    put(s3_bucket, "sessions/s1/index.html", b"<h1>hi</h1>", tmp_path)
    client = make_client(s3_bucket.s3_config())
    short = presign_get(client, s3_bucket.name, "sessions/s1/index.html", 1)
    week = presign_get(client, s3_bucket.name, "sessions/s1/index.html", 604800)
    assert "X-Amz-Expires=604800" in week
    time.sleep(2.2)
    assert unsigned_get(short)[0] == 403
    assert unsigned_get(week) == (200, b"<h1>hi</h1>")
    tampered = week.replace("sessions/s1/index.html", "sessions/s1/other.html")
    assert unsigned_get(tampered)[0] == 403


@pytest.mark.parametrize("bad", [0, -5, 604801, 10**9, 1.5, "3600", True])
def test_expiry_outside_sigv4_range_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="expiry"):
        expiry_warning(bad, temporary_credentials=False)  # type: ignore[arg-type]


def test_temporary_credentials_warn_that_the_link_dies_with_them(
        caplog: pytest.LogCaptureFixture) -> None:
    session = boto3.session.Session(aws_access_key_id="ASIAEXAMPLE",
                                    aws_secret_access_key="s" * 40,
                                    aws_session_token="token", region_name="eu-west-1")
    sigv2_prone = session.client("s3")  # no signature_version: may presign SigV2
    temporary = session.client("s3", config=BotoConfig(signature_version="s3v4"))
    assert uses_temporary_credentials(temporary)
    long_term = make_client(s3_settings(s3_access_key_id="AKIAEXAMPLE",
                                        s3_secret_access_key="x" * 40))
    assert not uses_temporary_credentials(long_term)
    with caplog.at_level(logging.WARNING, logger="ghostroll.publish.links"):
        url = presign_get(temporary, "bucket", "k/index.html", 3600)
    assert "X-Amz-Security-Token=token" in url
    assert any("temporary credentials" in r.getMessage() for r in caplog.records)
    assert expiry_warning(3600, temporary_credentials=False) is None
    if "X-Amz-Algorithm" not in sigv2_prone.generate_presigned_url(
            "get_object", Params={"Bucket": "bucket", "Key": "k"}, ExpiresIn=60):
        with pytest.raises(PublishError, match="non-SigV4"):
            presign_get(sigv2_prone, "bucket", "k/index.html", 3600)


def test_client_settings_precedence_and_sigv4() -> None:
    s3 = s3_settings()
    assert client_settings(s3, env={}).region == "us-east-1"
    assert client_settings(s3, env={"AWS_DEFAULT_REGION": "ap-south-1"}).region == "ap-south-1"
    assert client_settings(s3, env={"AWS_REGION": "eu-west-3",
                                    "AWS_DEFAULT_REGION": "ap-south-1"}).region == "eu-west-3"
    configured = s3_settings(s3_region="eu-central-1", s3_access_key_id="AKIAEXAMPLE",
                             s3_secret_access_key="topsecretvalue")
    settings = client_settings(configured, env={"AWS_REGION": "eu-west-3"})
    assert settings.region == "eu-central-1"
    assert "topsecretvalue" not in repr(settings)
    client = make_client(configured)
    assert client.meta.config.signature_version == "s3v4"
    assert client.meta.config.retries["total_max_attempts"] == 1  # we retry, not botocore
    url = client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"},
                                        ExpiresIn=60)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "Signature=" not in url.replace("X-Amz-Signature=", "")  # no SigV2 form


# ------------------------------------------------------------------ short links


def test_token_and_key_shape() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) == 26
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        assert short_link_key(token) == "L/" + token
    for bad in ("short", "a" * 26, "ABCDEFGHIJKLMNOPQRSTUVWXY1"):
        with pytest.raises(ValueError, match="token"):
            short_link_key(bad)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def test_short_link_page_is_a_refresh_and_a_link_to_the_exact_url() -> None:
    target = ("https://bucket.s3.amazonaws.com/sessions/s/index.html?X-Amz-Algorithm="
              "AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20240501&X-Amz-Signature=ab\"<cd")
    parser = _Tags()
    parser.feed(short_link_page(target))
    metas = [a for t, a in parser.tags if t == "meta" and a.get("http-equiv") == "refresh"]
    links = [a for t, a in parser.tags if t == "a"]
    assert len(metas) == 1
    assert metas[0]["content"] == f"0;url={target}"
    assert [a["href"] for a in links] == [target]
    assert not [t for t, _ in parser.tags if t in ("script", "img", "link", "iframe")]
    with pytest.raises(ValueError, match="http"):
        short_link_page("javascript:alert(1)")


@pytest.mark.parametrize(("region", "bucket"), [
    ("us-east-1", "ghostroll-photos"),
    ("eu-west-1", "ghostroll-photos-of-sam-2024"),
    ("ap-southeast-2", "grx"),
])
def test_aws_short_link_url_is_upper_case_and_fits_version_4(region: str, bucket: str) -> None:
    client = make_client(s3_settings(s3_region=region, s3_addressing_style="virtual",
                                     s3_access_key_id="AKIAEXAMPLE",
                                     s3_secret_access_key="x" * 40))
    token = new_token()
    link = short_link_url(client, bucket, token)
    assert link.alphanumeric, link.note
    assert link.url == link.url.upper()
    assert link.url.startswith(f"HTTPS://{bucket.upper()}.S3.")
    assert link.url.endswith("/L/" + token)
    decoded, modules = decode_qr(link.url)
    assert decoded == link.url
    assert modules <= 33, f"{len(link.url)} chars need {modules} modules"  # version 4


def test_custom_endpoint_virtual_host_and_path_style() -> None:
    token = new_token()
    key = short_link_key(token)
    virtual = qr_friendly_url(f"https://photos.minio.example.net:9000/{key}?X-Amz-x=1",
                              "photos", key)
    assert virtual == type(virtual)(
        f"HTTPS://PHOTOS.MINIO.EXAMPLE.NET:9000/L/{token}", True, None)
    path = qr_friendly_url(f"http://127.0.0.1:8333/photos/{key}?X-Amz-x=1", "photos", key)
    assert path.url == f"http://127.0.0.1:8333/photos/L/{token}"
    assert not path.alphanumeric
    assert "path-style" in (path.note or "")
    assert decode_qr(path.url)[0] == path.url


@pytest.mark.s3
def test_short_link_is_public_only_under_L_with_the_policy(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    client = make_client(s3_bucket.s3_config())
    name = s3_bucket.name
    put(s3_bucket, "sessions/s1/index.html", b"<h1>gallery</h1>", tmp_path)
    gallery = presign_get(client, name, "sessions/s1/index.html", 3600)
    token = new_token()
    put(s3_bucket, short_link_key(token), short_link_page(gallery).encode(), tmp_path)
    link = short_link_url(client, name, token)
    assert link.url == f"{s3_bucket.server.endpoint_url}/{name}/L/{token}"
    assert not link.alphanumeric  # 127.0.0.1 means path style: mixed case, and said so
    assert decode_qr(link.url)[0] == link.url

    assert not has_short_link_policy(client, name)
    assert unsigned_get(link.url)[0] == 403

    client.put_bucket_policy(Bucket=name, Policy=json.dumps(short_link_policy(name)))
    assert has_short_link_policy(client, name)
    status, body = unsigned_get(link.url)
    assert status == 200
    assert gallery.replace("&", "&amp;").encode() in body
    head = client.head_object(Bucket=name, Key=short_link_key(token))
    assert head["ContentType"] == "text/html; charset=utf-8"
    assert head["CacheControl"] == "no-cache"
    for other in ("sessions/s1/index.html", f"l/{token}", f"L2/{token}", ""):
        assert unsigned_get(s3_bucket.url(other))[0] in (403, 404), other
    assert unsigned_get(s3_bucket.url("sessions/s1/index.html"))[0] == 403
    # The page's target (the presigned gallery) works from the phone's side.
    assert unsigned_get(gallery) == (200, b"<h1>gallery</h1>")

    client.delete_bucket_policy(Bucket=name)
    assert not has_short_link_policy(client, name)


def test_policy_checks_are_exact() -> None:
    good = short_link_policy("photos")
    assert good["Statement"][0]["Resource"] == "arn:aws:s3:::photos/L/*"
    assert grants_short_links(good, "photos")
    assert not grants_short_links(good, "other")
    assert public_grants_beyond_short_links(good, "photos") == []
    normalized = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]},
                                 "Action": ["s3:GetObject"],
                                 "Resource": ["arn:aws:s3:::photos/L/*"]}]}
    assert grants_short_links(normalized, "photos")
    for change in ({"Action": "s3:*"}, {"Effect": "Deny"},
                   {"Resource": "arn:aws:s3:::photos/*"},
                   {"Principal": {"AWS": "arn:aws:iam::1:root"}},
                   {"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}):
        statement = {**good["Statement"][0], **change}
        assert not grants_short_links({"Statement": [statement]}, "photos"), change
    wide = {"Statement": [{**good["Statement"][0], "Resource": "arn:aws:s3:::photos/*"}]}
    assert public_grants_beyond_short_links(wide, "photos") == [
        "statement GhostRollShortLinks: public access to arn:aws:s3:::photos/*"]


# ------------------------------------------------------------------ clock

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("trusted", "synced", "server", "ok", "says"), [
    (True, None, None, True, "trusted"),
    (True, False, NOW - timedelta(days=3), True, "trusted"),
    (False, True, None, True, "synchronised"),
    (False, True, NOW - timedelta(days=3), True, "synchronised"),
    (False, None, None, False, "no S3 Date"),
    (False, False, None, False, "not synchronised"),
    (False, None, NOW - timedelta(seconds=299), True, "within 299 s"),
    (False, None, NOW + timedelta(seconds=300), True, "within 300 s"),
    (False, None, NOW - timedelta(seconds=301), False, "301 s ahead of"),
    (False, False, NOW + timedelta(days=2), False, "172800 s behind"),
])
def test_clock_verdict(trusted: bool, synced: bool | None, server: datetime | None,
                       ok: bool, says: str) -> None:
    verdict = clock_verdict(trusted=trusted, synchronized=synced, server_date=server, now=NOW)
    assert verdict.ok is ok
    assert says in verdict.reason
    assert verdict.state == ("ok" if ok else "waiting-for-clock")
    if not ok:
        assert verdict.reason.startswith("waiting for clock")


def test_clock_verdict_needs_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clock_verdict(trusted=False, synchronized=None, server_date=None,
                      now=datetime(2024, 5, 1))


def test_system_clock_synchronized_reads_the_timesyncd_flag(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    assert system_clock_synchronized(flag) is None
    flag.touch()
    assert system_clock_synchronized(flag) is True


@pytest.mark.s3
def test_server_date_comes_from_the_s3_date_header(s3_bucket: S3Bucket) -> None:
    client = make_client(s3_bucket.s3_config())
    date = server_date(client, s3_bucket.name)
    assert date is not None
    now = datetime.now(UTC)
    assert abs((now - date).total_seconds()) < 120
    verdict = clock_verdict(trusted=False, synchronized=None, server_date=date, now=now)
    assert verdict.ok
    # An error response carries a Date too (here: a bucket that does not exist).
    assert server_date(client, "no-such-bucket-here") is not None
    unreachable = make_client(s3_settings(s3_endpoint_url="http://127.0.0.1:9",
                                          s3_access_key_id="k", s3_secret_access_key="s"),
                              connect_timeout_s=1)
    assert server_date(unreachable, "b") is None
