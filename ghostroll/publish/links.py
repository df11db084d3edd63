"""Share links: presigned GET URLs (SigV4, signed locally) and short links for small QRs.

A presigned URL is ~400 characters: too dense a QR for a 122 px panel. A short link is
an object `L/<token>` (128 random bits, base32) holding a tiny HTML page that forwards
to the presigned gallery URL; a bucket policy makes that prefix, and only it, publicly
readable. Its URL is written for the QR: virtual-host style, all upper case, so the QR
uses alphanumeric mode and fits version 4 at error correction L. Upper case is safe
there: scheme and host are case-insensitive and the key itself is upper case. A
path-style URL carries the (lower-case, case-sensitive) bucket name in its path, so it
stays mixed case, and the QR falls back to byte mode (`ShortLinkUrl.note` says so).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ghostroll.errors import ConfigError, PublishError
from ghostroll.publish.s3client import uses_temporary_credentials

log = logging.getLogger(__name__)

MAX_EXPIRY_S = 604_800  # SigV4: 7 days
SHORT_LINK_PREFIX = "L/"
SHORT_LINK_SID = "GhostRollShortLinks"
# Characters of QR alphanumeric mode.
_QR_ALNUM = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


# ------------------------------------------------------------------ presigned URLs


def expiry_warning(expires_s: int, *, temporary_credentials: bool) -> str | None:
    """Refuse an expiry SigV4 cannot sign (ConfigError); a warning text when the link
    may die sooner than asked because the credentials are temporary."""
    if isinstance(expires_s, bool) or not isinstance(expires_s, int):
        raise ConfigError(f"presign expiry must be whole seconds, got {expires_s!r}")
    if not 1 <= expires_s <= MAX_EXPIRY_S:
        raise ConfigError(f"presign expiry {expires_s} s is outside 1..{MAX_EXPIRY_S} s "
                          "(SigV4 links last at most 7 days)")
    if temporary_credentials:
        return ("signing with temporary credentials (session token): the link stops "
                "working when they expire, which may be well before "
                f"{expires_s} s; use long-term keys for week-long links")
    return None


def presign_get(client: Any, bucket: str, key: str, expires_s: int) -> str:
    """SigV4 presigned GET URL for `bucket/key`, valid `expires_s` seconds. Local: no
    request is made. Logs a warning when temporary credentials will cut it short."""
    warning = expiry_warning(expires_s, temporary_credentials=uses_temporary_credentials(client))
    if warning:
        log.warning(warning)
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s)
    if "X-Amz-Algorithm=AWS4-HMAC-SHA256" not in url:
        # A client made without signature_version="s3v4" can sign SigV2 links, which
        # some providers refuse and which ignore the 7-day rule: never hand one out.
        raise PublishError("the S3 client signed a non-SigV4 link; make it with "
                           "ghostroll.publish.s3client.make_client")
    return url


def asset_url(client: Any, bucket: str, key: str, expires_s: int) -> str:
    """`presign_get` for a file a gallery page links to, signed once per tenth of its
    lifetime in this process: the progressive pages and the final one share each
    signature (a card of 1000 photos needs ~2000, not 2000 per page; ~0.15 ms of CPU
    each). The link itself is always signed fresh (`presign_get`): its expiry is kept."""
    slot = int(time.time() / (expires_s / 10)) if expires_s > 0 else 0
    return _asset_url(client, bucket, key, expires_s, slot)


@functools.lru_cache(maxsize=1 << 14)
def _asset_url(client: Any, bucket: str, key: str, expires_s: int, _slot: int) -> str:
    return presign_get(client, bucket, key, expires_s)


# ------------------------------------------------------------------ short links


def new_token() -> str:
    """128 random bits, base32 (A-Z, 2-7), upper case, 26 characters, no padding."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


def short_link_key(token: str) -> str:
    if len(token) != 26 or not set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"):
        raise ValueError(f"not a short-link token: {token!r}")
    return SHORT_LINK_PREFIX + token


def is_short_link_key(key: str) -> bool:
    """True for a short-link page `L/<token>` (public by design), False for anything
    else, including session objects that ended up under L/."""
    try:
        return short_link_key(key.removeprefix(SHORT_LINK_PREFIX)) == key
    except ValueError:
        return False


@dataclass(frozen=True)
class ShortLinkUrl:
    url: str
    alphanumeric: bool  # True: every character fits QR alphanumeric mode
    note: str | None = None  # why it is not, when it is not


def qr_friendly_url(object_url: str, bucket: str, key: str) -> ShortLinkUrl:
    """The unsigned URL of `key` written for a QR (pure). `object_url` is how the
    client addresses the object (query ignored)."""
    parts = urlsplit(object_url)
    host = (parts.hostname or "").lower()
    if host.startswith(bucket.lower() + ".") and parts.path == "/" + key:
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")).upper()
        if set(url) <= _QR_ALNUM:
            return ShortLinkUrl(url, True)
        return ShortLinkUrl(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
                            False, "the URL has characters outside QR alphanumeric mode")
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return ShortLinkUrl(url, False, (
        "path-style endpoint: the bucket name sits in the path, where case matters, so "
        "the link stays mixed case and its QR uses byte mode (larger); use "
        "s3_addressing_style = \"virtual\" if the endpoint supports it"))


def based_url(base_url: str, key: str) -> ShortLinkUrl:
    """`key` under a public base URL (a bucket's own public domain, e.g. R2's r2.dev),
    written for a QR (pure): scheme and host upper-cased; the whole URL is alphanumeric
    mode when the base's path is upper case too."""
    parts = urlsplit(base_url.rstrip("/") + "/" + key)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    upper = urlunsplit((parts.scheme.upper(), parts.netloc.upper(), parts.path, "", ""))
    if parts.path == parts.path.upper() and set(upper) <= _QR_ALNUM:
        return ShortLinkUrl(upper, True)
    return ShortLinkUrl(url, False, "the base URL's path has lower-case or other "
                        "characters outside QR alphanumeric mode")


def short_link_url(client: Any, bucket: str, token: str, base_url: str = "") -> ShortLinkUrl:
    """The public URL of `L/<token>` as the client addresses it (endpoint, region and
    addressing style included), upper-cased when virtual-host style allows it; under
    `base_url` instead when the bucket is served elsewhere (see based_url)."""
    key = short_link_key(token)
    if base_url:
        return based_url(base_url, key)
    signed = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    result = qr_friendly_url(signed, bucket, key)
    if result.note:
        log.info("short link: %s", result.note)
    return result


def short_link_page(target_url: str, title: str = "GhostRoll", head: str = "") -> str:
    """The HTML stored at `L/<token>`: a meta refresh to `target_url` and a plain link,
    titled with the album's name; `head` is extra markup for <head> (the link preview's
    og: tags, already escaped)."""
    if not target_url.startswith(("https://", "http://")):
        raise ValueError(f"short link target must be an http(s) URL, got {target_url[:40]!r}")
    url = html.escape(target_url, quote=True)
    return (
        "<!doctype html>\n"
        '<html><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="refresh" content="0;url={url}">\n'
        f"{head}<title>{html.escape(title)}</title></head>\n"
        f'<body><p><a href="{url}">Open the gallery</a></p></body></html>\n'
    )


def short_link_policy(bucket: str) -> dict[str, Any]:
    """The bucket policy that makes `L/*` (and nothing else) publicly readable."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": SHORT_LINK_SID,
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/{SHORT_LINK_PREFIX}*",
        }],
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in _as_list(principal.get("AWS", []))
    return False


def grants_short_links(policy: dict[str, Any], bucket: str) -> bool:
    """True when one statement is exactly the short-link grant (pure): Allow, anyone,
    s3:GetObject, on arn:aws:s3:::BUCKET/L/*, no condition."""
    want = f"arn:aws:s3:::{bucket}/{SHORT_LINK_PREFIX}*"
    for st in _as_list(policy.get("Statement", [])):
        if not isinstance(st, dict):
            continue
        if (st.get("Effect") == "Allow" and _public_principal(st.get("Principal"))
                and _as_list(st.get("Action")) == ["s3:GetObject"]
                and _as_list(st.get("Resource")) == [want]
                and not st.get("Condition") and "NotPrincipal" not in st):
            return True
    return False


def public_grants_beyond_short_links(policy: dict[str, Any], bucket: str) -> list[str]:
    """Statements making anything other than `L/*` public (pure): each one breaks the
    private-bucket promise; the doctor should report them."""
    want = f"arn:aws:s3:::{bucket}/{SHORT_LINK_PREFIX}*"
    found = []
    for i, st in enumerate(_as_list(policy.get("Statement", []))):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if not _public_principal(st.get("Principal")):
            continue
        extra = [r for r in _as_list(st.get("Resource", [])) if r != want]
        if extra:
            found.append(f"statement {st.get('Sid') or i}: public access to {', '.join(extra)}")
    return found


def read_bucket_policy(client: Any, bucket: str) -> dict[str, Any] | None:
    """The bucket policy as a dict; None when the bucket has none. PublishError when it
    cannot be read (denied, unreachable)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.get_bucket_policy(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucketPolicy":
            return None
        raise PublishError(f"cannot read the policy of bucket {bucket} ({code}): "
                           f"{exc.response.get('Error', {}).get('Message', '')}") from exc
    except BotoCoreError as exc:
        raise PublishError(f"cannot read the policy of bucket {bucket}: {exc}") from exc
    try:
        return json.loads(response["Policy"])
    except (KeyError, ValueError) as exc:
        raise PublishError(f"the policy of bucket {bucket} is not valid JSON") from exc


def has_short_link_policy(client: Any, bucket: str) -> bool:
    """Whether the bucket policy publishes `L/*` exactly as short_link_policy() does.
    No policy: False. A policy that cannot be read: PublishError."""
    policy = read_bucket_policy(client, bucket)
    return policy is not None and grants_short_links(policy, bucket)
