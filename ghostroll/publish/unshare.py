"""`ghostroll unshare`: revoke a session's link at once.

The short-link page and the gallery page (`index.html`, `progress.json`) are deleted,
so the link already sent answers 403/404 from then on; with `delete_assets` every
object under the session's prefix goes too. Presigned asset URLs copied out of the page
keep working until their signature ends unless the assets are deleted. The session is
then `processed` and out of the queue: `ghostroll publish SESSION` shares it again under
a new link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ghostroll.config import Config
from ghostroll.errors import PublishError
from ghostroll.publish.lock import publish_lock
from ghostroll.publish.publisher import page_bucket, prefix_for, read_link
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database, SessionRow
from ghostroll.storage.session import SessionLayout


@dataclass(frozen=True)
class Unshared:
    session_id: str
    deleted: list[str]  # object keys deleted from the bucket
    link: str | None  # the link that no longer works


def _bucket_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def unshare(cfg: Config, db: Database, client: Any, session: SessionRow,
            delete_assets: bool = False) -> Unshared:
    """Delete the link's objects (and the assets with `delete_assets`); PublishError
    when the bucket cannot be reached (nothing is changed locally then)."""
    layout = SessionLayout(session.path)
    link = read_link(layout)
    prefix = prefix_for(cfg, session.id)
    bucket = cfg.s3.s3_bucket
    with publish_lock(cfg.storage.db_path, wait=True):
        page = [link.short_key] if link and link.short_key else []
        try:
            for key in page:
                client.delete_object(Bucket=page_bucket(cfg), Key=key)
            keys = _bucket_keys(client, bucket, prefix) if delete_assets else [
                prefix + "index.html", prefix + "progress.json"]
            for key in keys:
                client.delete_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise PublishError(f"cannot unshare {session.id}: bucket {bucket}: {exc}") from exc
        db.upload_ledger(cfg.s3.endpoint_id, page_bucket(cfg)).forget(page)
        ledger = db.upload_ledger(cfg.s3.endpoint_id, bucket)
        ledger.forget(keys + ([k for k, _, _ in ledger.keys(prefix)] if delete_assets else []))
        for path in (layout.derived / "link.json", layout.share_txt, layout.share_qr):
            path.unlink(missing_ok=True)
        if db.publish_entry(session.id) is None:
            db.enqueue_publish(session.id)
        db.set_publish_state(session.id, dbm.UNSHARED_Q)
        if session.state == dbm.PUBLISHED:
            db.set_session_state(session.id, dbm.PROCESSED)
    return Unshared(session.id, page + keys, link.url if link else None)
