"""The one place a boto3 S3 client is made from GhostRoll's [s3] settings.

SigV4 always (set explicitly: left to itself boto3 may hand out legacy SigV2 presigned
URLs), addressing style and region from the config, credentials from the config when
set and otherwise the standard AWS chain. Retries are off here: upload.py retries with
its own backoff and knows which keys are done. Credentials are never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ghostroll.config import S3Config

DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT_S = 5.0
# Covers each socket read *and* send, so one multipart part on slow Wi-Fi must fit.
READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ClientSettings:
    """What make_client passes to boto3, decided without touching the network."""

    region: str
    endpoint_url: str | None  # None: boto3 resolves AWS or AWS_ENDPOINT_URL(_S3) itself
    addressing_style: str  # auto | path | virtual
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def __repr__(self) -> str:  # the secret never reaches a log line
        return (f"ClientSettings(region={self.region!r}, endpoint_url={self.endpoint_url!r}, "
                f"addressing_style={self.addressing_style!r}, "
                f"credentials={'config' if self.access_key_id else 'AWS chain'})")


def client_settings(s3: S3Config, env: Mapping[str, str] | None = None) -> ClientSettings:
    """Region: config, else AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1."""
    env = os.environ if env is None else env
    region = (s3.s3_region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
              or DEFAULT_REGION)
    return ClientSettings(
        region=region,
        endpoint_url=s3.s3_endpoint_url or None,
        addressing_style=s3.s3_addressing_style or "auto",
        access_key_id=s3.s3_access_key_id or None,
        secret_access_key=s3.s3_secret_access_key or None,
    )


def botocore_config(settings: ClientSettings, *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                    read_timeout_s: float = READ_TIMEOUT_S) -> Any:
    from botocore.config import Config as BotoConfig

    return BotoConfig(
        signature_version="s3v4",
        region_name=settings.region,
        s3={"addressing_style": settings.addressing_style},
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"total_max_attempts": 1, "mode": "standard"},  # one try: we retry ourselves
        # The default CRC32 trailers since botocore 1.36 break several S3-compatible
        # providers (B2, older MinIO/R2); integrity comes from Content-MD5 in upload.py.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def make_client(s3: S3Config, *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                read_timeout_s: float = READ_TIMEOUT_S) -> Any:
    """A boto3 S3 client for these settings. Signing (presigned URLs) needs no network."""
    import boto3

    settings = client_settings(s3)
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        region_name=settings.region,
    )
    return session.client(
        "s3", endpoint_url=settings.endpoint_url,
        config=botocore_config(settings, connect_timeout_s=connect_timeout_s,
                               read_timeout_s=read_timeout_s),
    )


def uses_temporary_credentials(client: Any) -> bool:
    """True when the client signs with a session token (STS, SSO, instance role): such
    credentials expire, and every presigned URL signed with them dies at that moment."""
    signer = getattr(client, "_request_signer", None)
    credentials = getattr(signer, "_credentials", None)
    if credentials is None:
        return False
    frozen = credentials.get_frozen_credentials()
    return bool(getattr(frozen, "token", None))
