"""The upload ledger of one bucket: which key holds which content (idempotent uploads)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ghostroll.storage.rows import utc_now

if TYPE_CHECKING:
    from ghostroll.storage.db import Database


class BucketLedger:
    """What one bucket at one endpoint already holds, per key. Keyed by endpoint and
    bucket too: after a bucket or endpoint change nothing counts as uploaded."""

    def __init__(self, db: Database, endpoint: str, bucket: str) -> None:
        self.db, self.endpoint, self.bucket = db, endpoint, bucket

    def uploaded_sha(self, key: str) -> str | None:
        with self.db._lock:
            row = self.db.conn.execute(
                "SELECT sha256 FROM uploads WHERE endpoint = ? AND bucket = ? AND key = ?",
                (self.endpoint, self.bucket, key)).fetchone()
        return row[0] if row else None

    def record_upload(self, key: str, sha256: str, size: int, etag: str) -> None:
        self.record_uploads([(key, sha256, size, etag)])

    def record_uploads(self, rows: Iterable[tuple[str, str, int, str]]) -> None:
        """(key, sha256, size, etag) of several uploads, in one transaction."""
        now = utc_now()
        with self.db.transaction():
            self.db.conn.executemany(
                "INSERT INTO uploads (endpoint, bucket, key, sha256, size, etag, uploaded_utc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint, bucket, key) DO UPDATE "
                "SET sha256 = excluded.sha256, size = excluded.size, etag = excluded.etag, "
                "uploaded_utc = excluded.uploaded_utc",
                [(self.endpoint, self.bucket, key, sha256, size, etag, now)
                 for key, sha256, size, etag in rows])

    def forget(self, keys: Iterable[str]) -> None:
        """These keys are no longer known to be in the bucket: the next publish sends them."""
        with self.db.transaction():
            self.db.conn.executemany(
                "DELETE FROM uploads WHERE endpoint = ? AND bucket = ? AND key = ?",
                [(self.endpoint, self.bucket, key) for key in keys])

    def keys(self, prefix: str = "") -> list[tuple[str, str, int]]:
        """(key, sha256, size) of every recorded upload under `prefix`."""
        with self.db._lock:
            rows = self.db.conn.execute(
                "SELECT key, sha256, size FROM uploads WHERE endpoint = ? AND bucket = ? "
                "AND substr(key, 1, ?) = ? ORDER BY key",
                (self.endpoint, self.bucket, len(prefix), prefix)).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]
