"""`ghostroll doctor`: a checklist of everything ingest and sharing depend on, each
failure with the fix. Checks are small functions returning `Check`s; `blocking` ones
make the command exit non-zero. Secrets are never printed."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ghostroll import config as config_mod
from ghostroll.config import Config

TYPICAL_CARD_BYTES = 32 * 10**9
OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str
    fix: str = ""
    blocking: bool = True  # a failure stops ingest or sharing
    keys: tuple[str, ...] = ()  # the settings to change when it fails (setup re-asks them)


def http_status(url: str) -> int:
    """The HTTP status of a plain GET (no credentials), as a phone would get."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# ---------------------------------------------------------------- local checks


def check_config(cfg: Config) -> Iterator[Check]:
    changed = [f"{name} = {value} ({source})" for name, value, source in
               config_mod.describe(cfg) if source != "default"]
    yield Check("config valid", OK, f"file: {cfg.config_file or '(none)'}; "
                + ("; ".join(changed) if changed else "all defaults"), blocking=False)


def check_disk(cfg: Config) -> Iterator[Check]:
    base = cfg.storage.base_dir
    probe = base if base.exists() else base.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError as exc:
        yield Check("session disk", FAIL, f"cannot read {base}: {exc}",
                    f"create {base} or set base_dir")
        return
    text = f"{free / 1e9:.1f} GB free in {probe}; " + _space_left(cfg, free)
    if free < cfg.storage.free_space_margin_mb * 2**20:
        yield Check("session disk", FAIL, text, "free space: delete old sessions "
                    "(ghostroll sessions) or use a larger card for the Pi")
    elif free < TYPICAL_CARD_BYTES:
        typical = f" (less than a typical {TYPICAL_CARD_BYTES // 10**9} GB card)"
        yield Check("session disk", WARN, text + typical,
                    "a full card may not fit; free space first", blocking=False)
    else:
        yield Check("session disk", OK, text, blocking=False)


def _space_left(cfg: Config, free: int) -> str:
    """Sessions and shooting days left at the pace the database has seen."""
    from ghostroll.errors import DatabaseError
    from ghostroll.storage.db import Database
    from ghostroll.storage.space import space_left, space_left_text

    if not cfg.storage.db_path.exists():
        return space_left_text(None)
    try:
        with Database(cfg.storage.db_path) as db:
            sessions = db.sessions()
            stored = db.content_bytes()
    except (DatabaseError, OSError) as exc:
        return f"cannot read the database to estimate how long it lasts ({exc})"
    days = len({s.created_utc[:10] for s in sessions})
    return space_left_text(space_left(free, stored, len(sessions), days))


def check_database(cfg: Config) -> Iterator[Check]:
    from ghostroll.errors import DatabaseError
    from ghostroll.storage.db import Database

    try:
        with Database(cfg.storage.db_path) as db:
            integrity = db.integrity_check()
            version = db.schema_version
            queued = len(db.queued_sessions())
    except DatabaseError as exc:
        yield Check("database", FAIL, str(exc), f"move {cfg.storage.db_path} aside and "
                    "run again (sessions on disk are kept)")
        return
    if integrity != "ok":
        yield Check("database", FAIL, f"integrity_check: {integrity}",
                    f"restore {cfg.storage.db_path} from a backup")
    else:
        yield Check("database", OK, f"{cfg.storage.db_path}: integrity ok, schema "
                    f"{version}, {queued} session(s) queued for publishing", blocking=False)


def check_set_aside(cfg: Config) -> Iterator[Check]:
    """Sessions whose processing failed unexpectedly: shown until retried."""
    from ghostroll.commands.sessions import set_aside_text
    from ghostroll.errors import DatabaseError
    from ghostroll.storage.db import Database

    if not cfg.storage.db_path.exists():
        return
    try:
        with Database(cfg.storage.db_path) as db:
            aside = [s for s in db.sessions() if s.process_error]
    except DatabaseError:
        return  # check_database reports it
    for session in aside:
        yield Check(f"session #{session.number}", FAIL,
                    f"{session.id} set aside, not processed: {session.process_error}",
                    set_aside_text(session).split("; ", 1)[-1], blocking=False)


# ---------------------------------------------------------------- S3 checks


def check_s3(cfg: Config) -> Iterator[Check]:
    if not cfg.s3.enabled:
        yield Check("bucket", SKIP, "no bucket configured: sessions stay local",
                    "set s3_bucket (ghostroll setup) to share links", blocking=False)
        return
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from ghostroll.errors import GhostRollError
    from ghostroll.publish import links, short_memo
    from ghostroll.publish.clock import clock_verdict, server_date, system_clock_synchronized
    from ghostroll.publish.s3client import make_client

    yield from check_transport(cfg)
    client = make_client(cfg.s3, connect_timeout_s=5, read_timeout_s=15)
    bucket = cfg.s3.s3_bucket
    if not cfg.s3.s3_access_key_id and boto3.session.Session().get_credentials() is None:
        yield Check("credentials", FAIL, "no credentials found",
                    "set s3_access_key_id/s3_secret_access_key or the AWS_* variables")
        return
    source = "config" if cfg.s3.s3_access_key_id else "the AWS credential chain"
    yield Check("credentials", OK, f"present (from {source}; never shown)", blocking=False)
    try:
        client.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as exc:
        detail, fix, keys = bucket_failure(exc, bucket, client.meta.endpoint_url)
        yield Check("bucket reachable", FAIL, detail, fix, keys=keys)
        return
    yield Check("bucket reachable", OK, f"{bucket} at {client.meta.endpoint_url}",
                blocking=False)
    key = f"ghostroll-doctor/{secrets.token_hex(8)}.txt"
    body = f"ghostroll doctor {datetime.now(UTC).isoformat()}".encode()
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/plain")
        signed = links.presign_get(client, bucket, key, 300)
        plain = signed.split("?", 1)[0]
        unsigned = http_status(plain)
        listing = http_status(plain.rsplit("/", 2)[0] + "/")
        if unsigned == 200 or listing == 200:
            yield Check("bucket private", FAIL, f"an object is readable without a signature "
                        f"(GET {unsigned}, list {listing}): the bucket is PUBLIC",
                        "remove public access (bucket policy / ACL / public-access block); "
                        "only L/* may be public (docs/publishing.md)")
        else:
            yield Check("bucket private", OK, f"unsigned GET {unsigned}, unsigned list "
                        f"{listing}", blocking=False)
        with urllib.request.urlopen(signed, timeout=10) as response:
            same = response.read() == body
        yield Check("presign round trip", OK if same else FAIL,
                    "PUT, presigned GET and DELETE of a test object" if same else
                    "the presigned GET returned other bytes", "check the endpoint")
    except (BotoCoreError, ClientError, GhostRollError, OSError) as exc:
        yield Check("presign round trip", FAIL, str(exc),
                    "the credentials need s3:PutObject, s3:GetObject and s3:DeleteObject")
    finally:
        with contextlib.suppress(BotoCoreError, ClientError):
            client.delete_object(Bucket=bucket, Key=key)
    yield from check_published_objects(cfg, client)
    try:
        policy = links.read_bucket_policy(client, bucket)
        extra = links.public_grants_beyond_short_links(policy, bucket) if policy else []
        if extra:
            yield Check("bucket policy", FAIL, "; ".join(extra),
                        "remove those statements: only L/* may be public")
        has_short = policy is not None and links.grants_short_links(policy, bucket)
        short_memo.remember(cfg.storage.db_path, cfg.s3, has_short, datetime.now(UTC))
        if not cfg.s3.short_link_bucket:
            yield Check("short links", OK if has_short else WARN,
                        "the L/ policy is present: QR-friendly short links" if has_short else
                        "no L/ policy: links are full presigned URLs (too long for a 2.13\" QR)",
                        "`ghostroll setup` shows and applies the policy (docs/publishing.md); "
                        "R2 and B2 have no bucket policies: set short_link_bucket",
                        blocking=False)
    except GhostRollError as exc:
        if not cfg.s3.short_link_bucket:
            yield Check("short links", WARN, f"policy not readable: {exc}", blocking=False)
    if cfg.s3.short_link_bucket:
        yield from check_short_link_bucket(cfg, client)
    synced = system_clock_synchronized()
    verdict = clock_verdict(trusted=cfg.s3.clock_trusted, synchronized=synced,
                            server_date=server_date(client, bucket), now=datetime.now(UTC))
    yield Check("clock", OK if verdict.ok else FAIL, verdict.reason,
                "enable time sync (timedatectl set-ntp true) and check the network")


CREDENTIAL_KEYS = ("s3_access_key_id", "s3_secret_access_key")
ENDPOINT_KEYS = ("s3_endpoint_url", "s3_region")
_DENIED = ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "InvalidToken", "ExpiredToken", "Forbidden")
_MISSING = ("404", "NoSuchBucket", "NotFound")


def bucket_failure(exc: BaseException, bucket: str,
                   endpoint: str) -> tuple[str, str, tuple[str, ...]]:
    """(what is wrong, the fix, the settings to change) for a failed HEAD of the bucket
    (pure): a missing bucket (404), refused credentials (403), an endpoint that does not
    answer (no network, or a wrong endpoint/region), anything else as S3 said it."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _MISSING or status == "404":
            return (f"no bucket named {bucket} at {endpoint} (404)",
                    "check s3_bucket (create the bucket first), and s3_region/s3_endpoint_url "
                    "if it lives elsewhere", ("s3_bucket", *ENDPOINT_KEYS))
        if code in _DENIED or status == "403":
            return (f"{endpoint} refused these credentials for bucket {bucket} (403 {code})",
                    "check s3_access_key_id and s3_secret_access_key, and that the key may "
                    "use this bucket", CREDENTIAL_KEYS)
        return (f"{bucket} at {endpoint}: S3 answered {status} {code}",
                "check s3_endpoint_url and s3_region", ENDPOINT_KEYS)
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return ("no usable credentials", "set s3_access_key_id and s3_secret_access_key",
                CREDENTIAL_KEYS)
    if isinstance(exc, bex.ConnectionError | bex.HTTPClientError):
        return (f"cannot reach {endpoint}: no network, or a wrong endpoint ({exc})",
                "check the network (ping, DNS), then s3_endpoint_url and s3_region",
                ENDPOINT_KEYS)
    return (f"{bucket} at {endpoint}: {exc}", "check s3_endpoint_url and s3_region",
            ENDPOINT_KEYS)


def check_short_link_bucket(cfg: Config, client: Any) -> Iterator[Check]:
    """The short_link_bucket takes a page and serves it to anyone at the short link's
    URL (as a phone follows the QR)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ghostroll.publish import links

    bucket = cfg.s3.short_link_bucket
    token = links.new_token()
    key = links.short_link_key(token)
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"ghostroll doctor",
                          ContentType="text/plain")
        url = links.short_link_url(client, bucket, token, cfg.s3.short_link_base_url).url
        status = http_status(url)
    except (BotoCoreError, ClientError, OSError) as exc:
        yield Check("short-link bucket", FAIL, f"{bucket}: a test page could not be "
                    f"written or read: {exc}", "create the bucket; the keys need "
                    "s3:PutObject and s3:DeleteObject on it", keys=("short_link_bucket",))
        return
    finally:
        with contextlib.suppress(BotoCoreError, ClientError):
            client.delete_object(Bucket=bucket, Key=key)
    if status == 200:
        yield Check("short-link bucket", OK, f"{bucket}: a test page is public at {url}: "
                    "QR-friendly short links", blocking=False)
    else:
        yield Check("short-link bucket", FAIL, f"{bucket}: the test page at {url} "
                    f"answered {status}, not 200: the bucket is not public-read",
                    "make short_link_bucket public in the provider's console (R2: allow "
                    "its r2.dev URL and set short_link_base_url to it; B2: bucket type "
                    "public)", keys=("short_link_bucket", "short_link_base_url"))


def check_transport(cfg: Config) -> Iterator[Check]:
    """Plain http is fine on loopback (a local SeaweedFS/MinIO), not across a network."""
    url = cfg.s3.s3_endpoint_url
    parts = urlsplit(url)
    if url and parts.scheme.lower() == "http" and \
            not config_mod.is_loopback_host(parts.hostname or ""):
        yield Check("endpoint encryption", WARN,
                    f"{url} is plain http to another machine: request signatures, share "
                    "links and photos travel unencrypted",
                    "use an https:// endpoint (plain http only to 127.0.0.1)", blocking=False)


def published_keys(cfg: Config, limit: int = 5) -> list[str]:
    """Objects the upload ledger says this bucket holds: one per top-level prefix
    (a photo when there is one), short-link pages left out (public by design)."""
    from ghostroll.publish.links import is_short_link_key
    from ghostroll.storage.db import Database

    if not cfg.storage.db_path.exists():
        return []
    with Database(cfg.storage.db_path) as db:
        rows = db.upload_ledger(cfg.s3.endpoint_id, cfg.s3.s3_bucket).keys()
    picked: dict[str, str] = {}
    for key, _sha, _size in rows:
        if is_short_link_key(key):
            continue
        top = key.split("/", 1)[0]
        if top not in picked or (key.endswith(".jpg") and not picked[top].endswith(".jpg")):
            picked[top] = key
    return list(picked.values())[:limit]


def check_published_objects(cfg: Config, client: Any) -> Iterator[Check]:
    """Privacy proven on real session objects, not only on the doctor's test object: a
    prefix, ACL or policy can expose the photos while a fresh object stays private."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ghostroll.errors import GhostRollError
    from ghostroll.publish import links

    bucket = cfg.s3.s3_bucket
    keys = published_keys(cfg)
    if not keys:
        yield Check("published objects private", SKIP, "nothing published to this bucket "
                    "yet: only the test object was checked", blocking=False)
        return
    public, missing, seen = [], [], []
    for key in keys:
        try:
            client.head_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError):
            missing.append(key)
            continue
        try:
            plain = links.presign_get(client, bucket, key, 300).split("?", 1)[0]
            status = http_status(plain)
        except (GhostRollError, OSError) as exc:
            yield Check("published objects private", WARN, f"{key}: {exc}", blocking=False)
            return
        (public if status == 200 else seen).append(f"{key} (unsigned GET {status})")
    if public:
        yield Check("published objects private", FAIL, "readable without a signature: "
                    + ", ".join(public), "remove public access (bucket policy, object ACLs, "
                    "public-access block); only L/<token> pages may be public")
    elif seen:
        yield Check("published objects private", OK, ", ".join(seen), blocking=False)
    if missing:
        yield Check("published objects present", WARN, "the database says these were "
                    "uploaded but the bucket does not have them: " + ", ".join(missing),
                    "deleted in the bucket (a lifecycle rule?): those galleries are broken",
                    blocking=False)


# ---------------------------------------------------------------- appliance checks


def _listening(port: int) -> list[str]:
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            host, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                addresses.append(_address(host))
    return addresses


def _address(hex_host: str) -> str:
    raw = bytes.fromhex(hex_host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def check_appliance(cfg: Config, root: Path = Path("/")) -> Iterator[Check]:
    rule = root / "etc/udev/rules.d/80-ghostroll.rules"
    if not rule.exists():
        yield Check("appliance", SKIP, "not an appliance (no udev rule installed)",
                    blocking=False)
        return
    yield Check("udev rule", OK, str(rule), blocking=False)
    for unit in ("ghostroll.service", "ghostroll-firstboot.service"):
        state = subprocess.run(["systemctl", "is-enabled", unit], capture_output=True,
                               text=True).stdout.strip() if shutil.which("systemctl") else "?"
        yield Check(f"unit {unit}", OK if state == "enabled" else FAIL, state or "unknown",
                    f"sudo systemctl enable --now {unit}")
    from ghostroll.devices.panel import waveshare_available

    why = waveshare_available()
    yield Check("panel driver", OK if why is None else WARN, "waveshare_epd importable"
                if why is None else why, "reinstall the image's Waveshare driver",
                blocking=False)
    yield from check_button(cfg)
    port = int(cfg.appliance.pisugar_address.rsplit(":", 1)[1])
    listening = _listening(port)
    if not listening:
        yield Check("battery (pisugar-server)", WARN, f"nothing listens on port {port}",
                    "sudo systemctl start pisugar-server (no battery shown until then)",
                    blocking=False)
    elif all(a in ("127.0.0.1", "::1") for a in listening):
        yield Check("battery (pisugar-server)", OK, f"on {', '.join(listening)}:{port}",
                    blocking=False)
    else:
        yield Check("battery (pisugar-server)", FAIL, f"listens on {', '.join(listening)}: "
                    "reachable from the network without authentication",
                    "install the image's pisugar-server drop-in (127.0.0.1 only)")


def check_button(cfg: Config, dev: Path = Path("/dev")) -> Iterator[Check]:
    """What the running service got for the button (it records its pin factory in
    devices.json): only lgpio drives it on every Pi; anything else means a dead button."""
    from ghostroll.devices.button import DEVICES_FILE

    chips = ", ".join(sorted(str(p) for p in dev.glob("gpiochip*"))) or "no /dev/gpiochip*"
    record_path = cfg.appliance.runtime_dir / DEVICES_FILE
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        yield Check("button (GPIO)", WARN, f"the service has not recorded its button in "
                    f"{record_path}; {chips}", "sudo systemctl restart ghostroll",
                    blocking=False)
        return
    fix = ("check dtparams, the ghostroll user's gpio group and the unit's LG_WD "
           "(journalctl -u ghostroll)")
    if record.get("button_error"):
        yield Check("button (GPIO)", FAIL, f"{record['button_error']}; {chips}", fix)
    elif record.get("button_factory") != "lgpio":
        yield Check("button (GPIO)", FAIL, f"pin factory {record.get('button_factory')!r}, "
                    f"not lgpio: the button does not work; {chips}", fix)
    else:
        yield Check("button (GPIO)", OK, f"pin factory lgpio; {chips}", blocking=False)


CHECKS: tuple[Callable[[Config], Iterator[Check]], ...] = (
    check_config, check_disk, check_database, check_set_aside, check_s3, check_appliance)


def run_checks(cfg: Config) -> list[Check]:
    results: list[Check] = []
    for check in CHECKS:
        try:
            results.extend(check(cfg))
        except Exception as exc:  # a check that crashes is itself a finding, not a traceback
            results.append(Check(check.__name__.removeprefix("check_"), FAIL,
                                 f"{type(exc).__name__}: {exc}", "report this"))
    return results


def failed(results: list[Check]) -> bool:
    return any(r.status == FAIL and r.blocking for r in results)


def report_text(results: list[Check]) -> str:
    marks = {OK: "✓", WARN: "!", FAIL: "✗", SKIP: "-"}
    lines = []
    for r in results:
        lines.append(f"{marks[r.status]} {r.name}: {r.detail}")
        if r.status in (FAIL, WARN) and r.fix:
            lines.append(f"    fix: {r.fix}")
    lines.append("doctor: " + ("problems found that block ingest or sharing" if failed(results)
                               else "nothing blocks ingest or sharing"))
    return "\n".join(lines)


def report_json(results: list[Check]) -> str:
    return json.dumps({"ok": not failed(results), "checks": [asdict(r) for r in results]},
                      indent=2)

