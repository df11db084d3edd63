"""S3 names (pure): bucket, endpoint, region and prefix rules; loopback hosts."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_BUCKET_RESERVED_START = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_END = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_REGION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name (the AWS rules, which every S3-compatible
    service accepts), or None."""
    rules = ("bucket names are 3-63 characters of lowercase letters, digits, dots and "
             "hyphens, starting and ending with a letter or digit")
    if not 3 <= len(name) <= 63 or not _BUCKET_CHARS.fullmatch(name):
        return rules
    if ".." in name:
        return "a bucket name has no two dots in a row"
    if _is_ip(name):
        return "a bucket name must not look like an IP address"
    if name.startswith(_BUCKET_RESERVED_START) or name.endswith(_BUCKET_RESERVED_END):
        return "that prefix or suffix is reserved by S3"
    return None


def endpoint_problem(url: str) -> str | None:
    """Why `url` cannot be an S3 endpoint (http(s)://host[:port][/path]), or None."""
    expected = "expected an http:// or https:// URL with a host, e.g. https://s3.example.com"
    if any(c.isspace() for c in url):
        return expected + " (no spaces)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"{expected} ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return expected
    if parts.username is not None or parts.password is not None:
        return "credentials do not belong in the URL: set s3_access_key_id and " \
               "s3_secret_access_key"
    if parts.query or parts.fragment:
        return expected + " (no query or fragment)"
    return None


def region_problem(region: str) -> str | None:
    if _REGION.fullmatch(region):
        return None
    return ("expected a region name such as us-east-1, eu-central-1 or auto (letters, "
            "digits, '-', '_' and '.', up to 64 characters)")


def prefix_problem(prefix: str) -> str | None:
    """Why session objects must not live under `prefix` (already ending in "/"), or None."""
    from ghostroll.publish.links import SHORT_LINK_PREFIX

    if prefix.upper().startswith(SHORT_LINK_PREFIX.upper()):
        return (f"{SHORT_LINK_PREFIX} is the short-link prefix, which the bucket policy "
                "makes public: every photo under it would be readable without a "
                "signature; use another prefix, e.g. sessions/")
    parts = prefix.rstrip("/").split("/")
    if prefix.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return ("expected a key prefix like sessions/ or photos/2026/ (no leading '/', "
                "no empty, '.' or '..' parts)")
    return None


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    return host == "localhost" or host.endswith(".localhost") or (
        _is_ip(host) and ipaddress.ip_address(host).is_loopback)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
