"""Configuration: one declarative key table, parsed once at the edge.

Every setting is a `Key` in `KEYS`. Its TOML place (`[section] name`), its
environment variable (`GHOSTROLL_*`) and its CLI flag (`--name-with-dashes`) are all
derived from that one row, and `docs/configuration.md` is generated from it (a test
checks the file is current). Sources, lowest to highest:

    defaults < TOML file < GHOSTROLL_* environment < CLI flags

`load()` returns a frozen `Config` (one frozen dataclass per section) plus where each
value came from, for `ghostroll doctor`. Invalid values raise `ConfigError` naming the
key, the source and what is allowed.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ghostroll.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/ghostroll/config.toml")
USER_CONFIG = Path("~/.config/ghostroll/config.toml")


def default_process_workers() -> int:
    return max(1, min(6, os.cpu_count() or 1))


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    type: type
    default: Any
    meaning: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    secret: bool = False
    env_override: str | None = None  # for names kept from the original system

    @property
    def env(self) -> str:
        return self.env_override or f"GHOSTROLL_{self.name.upper()}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def default_text(self) -> str:
        if self.name == "process_workers":
            return "CPU count clamped to 1..6"
        value = self.default_value()
        if isinstance(value, bool):
            return "true" if value else "false"
        return '""' if value == "" else str(value)


def _k(section: str, name: str, typ: type, default: Any, meaning: str, **kw: Any) -> Key:
    return Key(section, name, typ, default, meaning, **kw)


KEYS: tuple[Key, ...] = (
    # [card]
    _k("card", "sd_label", str, "auto-import",
       "Volume label of cards to ingest (`ghostroll watch`; macOS may add ` 1`)."),
    _k("card", "mount_roots", str, "/Volumes,/media/$USER,/run/media/$USER,/mnt",
       "Comma-separated folders `ghostroll watch` polls for a mounted card."),
    _k("card", "poll_seconds", float, 2.0, "How often `ghostroll watch` looks for a card.",
       minimum=0.1, maximum=60),
    # [storage]
    _k("storage", "base_dir", Path, "~/ghostroll", "Where sessions are written."),
    _k("storage", "db_path", Path, "~/.ghostroll/ghostroll.db",
       "SQLite database: what was ingested, sessions, upload queue."),
    _k("storage", "always_create_session", bool, False,
       "Create a session even when the card holds nothing new."),
    _k("storage", "free_space_margin_mb", int, 256,
       "Keep at least this much free on the session disk after a copy.",
       minimum=0, maximum=1_000_000),
    # [images]
    _k("images", "share_max_long_edge", int, 2048, "Share image long edge, pixels.",
       minimum=256, maximum=8192),
    _k("images", "share_quality", int, 90, "Share image JPEG quality.", minimum=30, maximum=100),
    _k("images", "thumb_max_long_edge", int, 512, "Thumbnail long edge, pixels.",
       minimum=64, maximum=2048),
    _k("images", "thumb_quality", int, 85, "Thumbnail JPEG quality.", minimum=30, maximum=100),
    _k("images", "share_zip", bool, True, "Offer \"Download all\" (share.zip of share images)."),
    _k("images", "process_workers", int, default_process_workers,
       "Parallel derivative workers.", minimum=1, maximum=32),
    _k("images", "decode_budget_mb", int, 120,
       "Decoded-pixel memory that derivative workers may hold at once, MiB; a file "
       "needing more is listed as too large to preview (keeps a 512 MB Pi under 200 MB).",
       minimum=32, maximum=4096),
    # [s3]
    _k("s3", "s3_bucket", str, "", "Private bucket to publish to; empty keeps sessions local."),
    _k("s3", "s3_prefix_root", str, "sessions/", "Key prefix for sessions in the bucket."),
    _k("s3", "s3_endpoint_url", str, "",
       "S3-compatible endpoint (R2, B2, MinIO, SeaweedFS); empty: AWS or AWS_ENDPOINT_URL."),
    _k("s3", "s3_region", str, "", "Bucket region; empty: AWS_REGION or us-east-1."),
    _k("s3", "s3_addressing_style", str, "auto", "URL style for requests and links.",
       choices=("auto", "path", "virtual")),
    _k("s3", "s3_access_key_id", str, "",
       "Access key; empty: the standard AWS credential chain.", secret=True),
    _k("s3", "s3_secret_access_key", str, "", "Secret key (never logged).", secret=True),
    _k("s3", "presign_expiry_seconds", int, 604800,
       "Share link lifetime, seconds (SigV4 maximum: 7 days).", minimum=60, maximum=604800),
    _k("s3", "upload_workers", int, 4, "Parallel uploads.", minimum=1, maximum=32),
    _k("s3", "presign_workers", int, 8,
       "Accepted for compatibility; signing is local and needs no pool.",
       minimum=1, maximum=64),
    _k("s3", "multipart_threshold_mb", int, 16, "Files larger than this upload in parts.",
       minimum=5, maximum=5000),
    _k("s3", "upload_originals", bool, False, "Also upload originals (off: derivatives only)."),
    _k("s3", "short_links", str, "auto",
       "Short QR-friendly link page under L/ (needs a bucket policy; auto: use it if present).",
       choices=("auto", "on", "off")),
    _k("s3", "clock_trusted", bool, False,
       "Treat the system clock as correct without checking (tests, VMs)."),
    # [appliance]
    _k("appliance", "kit", str, "waveshare-2in13-v4", "Hardware kit (see hardware/)."),
    _k("appliance", "panel", str, "auto", "Panel backend.",
       choices=("auto", "waveshare", "simulated", "none")),
    _k("appliance", "frames_dir", Path, "", "Simulated panel: write frames here."),
    _k("appliance", "button_pin", int, 26, "Button BCM pin (to GND, internal pull-up).",
       minimum=0, maximum=27),
    _k("appliance", "button_hold_seconds", float, 3.0, "Long press that shuts down, seconds.",
       minimum=1, maximum=30),
    _k("appliance", "battery_min_percent", int, 15,
       "Refuse to start a copy below this charge unless charging.", minimum=0, maximum=100),
    _k("appliance", "battery_critical_percent", int, 5,
       "Finish the current file and shut down at this charge.", minimum=0, maximum=100),
    _k("appliance", "pisugar_address", str, "127.0.0.1:8423", "pisugar-server TCP address."),
    _k("appliance", "battery_poll_seconds", float, 10.0, "How often the battery is read.",
       minimum=1, maximum=600),
    _k("appliance", "panel_min_refresh_seconds", float, 3.0,
       "At most one panel refresh per this many seconds.", minimum=0.5, maximum=60),
    _k("appliance", "panel_full_every", int, 10,
       "A full refresh after this many partial ones (clears ghosting).", minimum=1,
       maximum=100),
    _k("appliance", "panel_timeout_seconds", float, 30.0,
       "A panel call that takes longer is abandoned and the panel re-opened.",
       minimum=5, maximum=300),
    _k("appliance", "runtime_dir", Path, "/run/ghostroll",
       "Service socket and live status.json/status.png."),
    # [archive]
    _k("archive", "archive_dir", Path, "",
       "A mounted folder (USB disk) that receives a second verified copy of every original "
       "(`YYYY/YYYY-MM-DD <album>/`); empty: no archive (one copy, on this device)."),
    _k("archive", "bucket_storage_class", str, "default",
       "Storage class of the originals `upload_originals` sends to the bucket (the bucket "
       "target); `glacier`/`deep_archive` objects cannot be downloaded from the gallery "
       "until restored.",
       choices=("default", "standard", "standard_ia", "onezone_ia", "intelligent_tiering",
                "glacier_ir", "glacier", "deep_archive")),
    _k("archive", "prune", str, "off",
       "`archived`: when free space falls under `prune_keep_free_mb`, remove the local "
       "originals of the oldest finished sessions that have `prune_min_copies` verified "
       "copies outside this device (derivatives stay); `off`: never delete anything.",
       choices=("off", "archived")),
    _k("archive", "prune_min_copies", int, 2,
       "Verified copies outside this device (archive disk, bucket) an original needs "
       "before `prune` may remove the local one.", minimum=1, maximum=5),
    _k("archive", "prune_keep_free_mb", int, 4096,
       "`prune = archived` removes originals only while less than this is free, MiB.",
       minimum=0, maximum=10_000_000),
    # [logging]
    _k("logging", "log_level", str, "INFO", "Log level.",
       choices=("DEBUG", "INFO", "WARNING", "ERROR")),
)

KEYS_BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}


@dataclass(frozen=True)
class CardConfig:
    sd_label: str
    mount_roots: str
    poll_seconds: float


@dataclass(frozen=True)
class StorageConfig:
    base_dir: Path
    db_path: Path
    always_create_session: bool
    free_space_margin_mb: int


@dataclass(frozen=True)
class ImagesConfig:
    share_max_long_edge: int
    share_quality: int
    thumb_max_long_edge: int
    thumb_quality: int
    share_zip: bool
    process_workers: int
    decode_budget_mb: int


@dataclass(frozen=True)
class S3Config:
    s3_bucket: str
    s3_prefix_root: str
    s3_endpoint_url: str
    s3_region: str
    s3_addressing_style: str
    s3_access_key_id: str = field(repr=False)
    s3_secret_access_key: str = field(repr=False)
    presign_expiry_seconds: int
    upload_workers: int
    presign_workers: int
    multipart_threshold_mb: int
    upload_originals: bool
    short_links: str
    clock_trusted: bool

    @property
    def enabled(self) -> bool:
        return bool(self.s3_bucket)

    @property
    def endpoint_id(self) -> str:
        """Which S3 service the bucket lives at, for the upload ledger."""
        return self.s3_endpoint_url.rstrip("/") or f"aws:{self.s3_region or 'default'}"


@dataclass(frozen=True)
class ApplianceConfig:
    kit: str
    panel: str
    frames_dir: Path | None
    button_pin: int
    button_hold_seconds: float
    battery_min_percent: int
    battery_critical_percent: int
    pisugar_address: str
    battery_poll_seconds: float
    panel_min_refresh_seconds: float
    panel_full_every: int
    panel_timeout_seconds: float
    runtime_dir: Path


@dataclass(frozen=True)
class ArchiveConfig:
    archive_dir: Path | None
    bucket_storage_class: str
    prune: str
    prune_min_copies: int
    prune_keep_free_mb: int


@dataclass(frozen=True)
class LoggingConfig:
    log_level: str


SECTIONS: dict[str, type] = {
    "card": CardConfig,
    "storage": StorageConfig,
    "images": ImagesConfig,
    "s3": S3Config,
    "appliance": ApplianceConfig,
    "archive": ArchiveConfig,
    "logging": LoggingConfig,
}


@dataclass(frozen=True)
class Config:
    card: CardConfig
    storage: StorageConfig
    images: ImagesConfig
    s3: S3Config
    appliance: ApplianceConfig
    logging: LoggingConfig
    archive: ArchiveConfig
    # key name -> "default" | "file <path>" | "env GHOSTROLL_X" | "flag --x"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    config_file: Path | None = None


# ---------------------------------------------------------------- parsing values


def _parse(key: Key, raw: Any, source: str) -> Any:
    """Turn a raw value (TOML-typed or a string) into the key's type, or raise."""

    def refuse(allowed: str) -> ConfigError:
        shown = "(secret, not shown)" if key.secret else repr(raw)
        return ConfigError(f"{key.name} = {shown} from {source}: {allowed}")

    if isinstance(raw, list | dict | date | time):
        # a TOML array, table or date where one plain value belongs
        raise refuse(f"expected {_kind(key)}, not a TOML {_toml_kind(raw)}")
    if key.type is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise refuse("expected true or false")
    if key.type in (int, float):
        if isinstance(raw, bool):
            raise refuse(f"expected a number, not {raw}")
        try:
            value = key.type(raw) if key.type is float else int(str(raw).strip())
        except ValueError:
            raise refuse(f"expected {_kind(key)}") from None
        if not math.isfinite(value):
            raise refuse(f"expected a finite number in {_num(key.minimum)}..{_num(key.maximum)}")
        lo, hi = key.minimum, key.maximum
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise refuse(f"allowed range is {_num(lo)}..{_num(hi)}")
        return value
    if key.type is Path:
        text = str(raw).strip()
        if not text:
            if key.default_value():
                raise refuse(f"must not be empty; leave it unset for the default "
                             f"{key.default_text()}")
            return None
        # Absolute now: the working directory is not part of a stored fact (lgpio
        # changes it on the appliance; a later run may start elsewhere).
        return Path(os.path.expandvars(text)).expanduser().absolute()
    text = str(raw).strip() if not key.secret else str(raw)
    if key.choices:
        wanted = text.upper() if key.name == "log_level" else text.lower()
        if wanted not in key.choices:
            raise refuse("allowed: " + ", ".join(key.choices))
        return wanted
    return text


def _kind(key: Key) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number",
            Path: "a path (a string)"}.get(key.type, "a string")


def _toml_kind(raw: Any) -> str:
    if isinstance(raw, list):
        return "array"
    return "table" if isinstance(raw, dict) else "date/time"


def _num(v: float | None) -> str:
    if v is None:
        return "any"
    return str(int(v)) if float(v).is_integer() else str(v)


# ---------------------------------------------------------------- sources


def read_toml(path: Path) -> dict[str, dict[str, Any]]:
    """Read a config file; unknown sections or keys are refused with the file name."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    for section, table in data.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise ConfigError(
                f"{path}: unknown section [{section}]; known: " + ", ".join(SECTIONS))
        for name in table:
            key = KEYS_BY_NAME.get(name)
            if key is None or key.section != section:
                raise ConfigError(f"{path}: unknown key {name!r} in [{section}]")
    return data


def default_config_file(env: Mapping[str, str]) -> Path | None:
    """`GHOSTROLL_CONFIG`, else the user file, else the system file, if present."""
    if env.get("GHOSTROLL_CONFIG"):
        return Path(env["GHOSTROLL_CONFIG"]).expanduser()
    for candidate in (USER_CONFIG.expanduser(), SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Build the Config from all sources. `flags` maps key names to CLI values."""
    env = os.environ if env is None else env
    flags = flags or {}
    path = config_file if config_file is not None else default_config_file(env)
    file_data = read_toml(path) if path is not None else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in KEYS:
        raw, source = key.default_value(), "default"
        if key.name in file_data.get(key.section, {}):
            raw, source = file_data[key.section][key.name], f"file {path}"
        if key.env in env:
            raw, source = env[key.env], f"env {key.env}"
        if flags.get(key.name) is not None:
            raw, source = flags[key.name], f"flag {key.flag}"
        values[key.name] = _parse(key, raw, source)
        sources[key.name] = source

    _check_cross_keys(values, sources)
    if values["s3_bucket"]:
        _check_aws_env(values, env)
    built = {
        section: cls(**{f.name: values[f.name] for f in fields(cls)})
        for section, cls in SECTIONS.items()
    }
    return Config(**built, sources=sources, config_file=path)


def _check_cross_keys(values: dict[str, Any], sources: dict[str, str]) -> None:
    if values["battery_critical_percent"] > values["battery_min_percent"]:
        raise ConfigError(
            f"battery_critical_percent ({values['battery_critical_percent']}, from "
            f"{sources['battery_critical_percent']}) must not exceed battery_min_percent "
            f"({values['battery_min_percent']}, from {sources['battery_min_percent']})")
    prefix = values["s3_prefix_root"]
    if prefix and not prefix.endswith("/"):
        values["s3_prefix_root"] = prefix + "/"
    if bool(values["s3_access_key_id"]) != bool(values["s3_secret_access_key"]):
        raise ConfigError("s3_access_key_id and s3_secret_access_key must be set together "
                          f"(from {sources['s3_access_key_id']} / "
                          f"{sources['s3_secret_access_key']})")
    for name, problem in (("s3_bucket", bucket_name_problem),
                          ("s3_endpoint_url", endpoint_problem),
                          ("s3_region", region_problem),
                          ("s3_prefix_root", prefix_problem)):
        value = values[name]
        why = problem(value) if value else None
        if why:
            raise ConfigError(f"{name} = {_redact(value)!r} from {sources[name]}: {why}")


# The AWS variables boto3 reads when the matching key is empty: checked like the key.
_AWS_FALLBACKS = (("s3_endpoint_url", ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")),
                  ("s3_region", ("AWS_REGION", "AWS_DEFAULT_REGION")))


def _check_aws_env(values: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, variables in _AWS_FALLBACKS:
        if values[name]:
            continue
        problem = endpoint_problem if name == "s3_endpoint_url" else region_problem
        for variable in variables:
            value = env.get(variable, "")
            why = problem(value) if value else None
            if why:
                raise ConfigError(f"{variable} = {_redact(value)!r} from env {variable} (used "
                                  f"because {name} is empty): {why}")


def _redact(value: str) -> str:
    """A URL as shown in a message: credentials in it are never printed."""
    return re.sub(r"//[^/@]*@", "//***@", value)


# ---------------------------------------------------------------- S3 names (pure)

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


# ---------------------------------------------------------------- CLI


def add_flags(parser: argparse.ArgumentParser, sections: Sequence[str] | None = None) -> None:
    """Add one `--flag` per key (all sections, or the ones named) to a parser.

    Defaults are None so an unset flag never hides the environment or the file."""
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: $GHOSTROLL_CONFIG, "
                             f"{USER_CONFIG}, {SYSTEM_CONFIG})")
    group = parser.add_argument_group("settings (see docs/configuration.md)")
    for key in KEYS:
        if sections is not None and key.section not in sections:
            continue
        group.add_argument(key.flag, dest=f"cfg_{key.name}", default=None, metavar="VALUE",
                           help=f"{key.meaning} [{key.env}]")


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    flags = {k.name: getattr(args, f"cfg_{k.name}", None) for k in KEYS}
    return load(config_file=getattr(args, "config", None), env=env, flags=flags)


def describe(config: Config) -> list[tuple[str, str, str]]:
    """(key, shown value, source) for every key; secrets are never shown."""
    rows = []
    for key in KEYS:
        value = getattr(getattr(config, key.section), key.name)
        shown = ("(set)" if value else "(not set)") if key.secret else str(value)
        rows.append((key.name, shown, config.sources.get(key.name, "default")))
    return rows


def markdown_table() -> str:
    """The body of docs/configuration.md, generated from KEYS."""
    lines = [
        "| TOML `[section] key` | environment | CLI flag | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for key in KEYS:
        allowed = ""
        if key.choices:
            allowed = " One of: " + ", ".join(f"`{c}`" for c in key.choices) + "."
        elif key.minimum is not None:
            allowed = f" Range {_num(key.minimum)}..{_num(key.maximum)}."
        lines.append(
            f"| `[{key.section}] {key.name}` | `{key.env}` | `{key.flag}` | "
            f"`{key.default_text()}` | {key.meaning}{allowed} |")
    return "\n".join(lines) + "\n"



def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """Settings as a config file (sections of strings, numbers and booleans)."""
    out = []
    for section, table in sections.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"unexpected top-level key {section!r}: settings go in sections")
        out.append(f"[{section}]")
        for key, value in table.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = str(value)
            else:
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            out.append(f"{key} = {text}")
        out.append("")
    return "\n".join(out)
