"""The frozen `Config`: one dataclass per section, built once by `layers.load`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


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
    share_video_max_mb: int


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
    link_days: int
    upload_workers: int
    presign_workers: int
    multipart_threshold_mb: int
    upload_originals: bool
    short_links: str
    short_link_bucket: str
    short_link_base_url: str
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
