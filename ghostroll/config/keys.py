"""The one key table: every setting as a `Key` row (TOML place, environment variable,
CLI flag, default, meaning and allowed values all derive from it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
       "Volume label of cards to ingest (`ghostroll watch`; macOS may add ` 1`); "
       "`*`: any card with DCIM/."),
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
    _k("images", "share_video_max_mb", int, 1024,
       "Share videos up to this size, MB (a copy without metadata, not re-encoded); "
       "larger ones stay on the device and show as a poster. 0 shares none.",
       minimum=0, maximum=1_000_000),
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
    _k("s3", "link_days", int, 30,
       "With short links: days the same link keeps working (re-signed while online; "
       "without short links the cap is 7 days).", minimum=1, maximum=3650),
    _k("s3", "upload_workers", int, 4, "Parallel uploads.", minimum=1, maximum=32),
    _k("s3", "presign_workers", int, 8,
       "From the original GhostRoll: accepted, and ignored with a warning when set "
       "(links are signed locally, one at a time).",
       minimum=1, maximum=64),
    _k("s3", "multipart_threshold_mb", int, 16, "Files larger than this upload in parts.",
       minimum=5, maximum=5000),
    _k("s3", "upload_originals", bool, False, "Also upload originals (off: derivatives only)."),
    _k("s3", "short_links", str, "auto",
       "Short QR-friendly link page under L/ (needs a bucket policy; auto: use it if present).",
       choices=("auto", "on", "off")),
    _k("s3", "short_link_bucket", str, "",
       "A second, public-read bucket holding only the short-link pages, for providers "
       "without bucket policies (R2, B2); same endpoint and keys. Empty: L/ in s3_bucket."),
    _k("s3", "short_link_base_url", str, "",
       "Public URL of short_link_bucket when the S3 endpoint does not serve it "
       "(R2: https://pub-<id>.r2.dev); empty: the endpoint's own URL."),
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
