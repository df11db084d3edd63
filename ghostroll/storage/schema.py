"""The database schema as numbered migrations, applied in order (`PRAGMA user_version`)."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: ingest
    """
    CREATE TABLE files (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        kind TEXT NOT NULL,
        session_id TEXT NOT NULL,
        rel_path TEXT NOT NULL,
        ingested_utc TEXT NOT NULL
    );
    CREATE TABLE seen (
        volume_id TEXT NOT NULL,
        rel_path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        kind TEXT NOT NULL,
        PRIMARY KEY (volume_id, rel_path)
    );
    CREATE TABLE sessions (
        number INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        created_utc TEXT NOT NULL,
        volume_id TEXT NOT NULL,
        volume_label TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL,
        state TEXT NOT NULL,
        finished_utc TEXT
    );
    CREATE INDEX sessions_by_volume ON sessions (volume_id, state);
    CREATE TABLE session_files (
        session_id TEXT NOT NULL,
        rel_path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT,
        kind TEXT NOT NULL,
        grp TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        PRIMARY KEY (session_id, rel_path)
    );
    """,
    # 2: publishing
    """
    CREATE TABLE uploads (
        key TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        uploaded_utc TEXT NOT NULL
    );
    CREATE TABLE publish_queue (
        session_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        url TEXT,
        url_expires_utc TEXT,
        queued_utc TEXT NOT NULL,
        updated_utc TEXT NOT NULL
    );
    """,
    # 3: recorded copy locations, per-bucket upload ledger, sessions set aside
    """
    ALTER TABLE session_files ADD COLUMN stored_path TEXT;
    CREATE TABLE copies (
        sha256 TEXT NOT NULL,
        location TEXT NOT NULL,
        target TEXT NOT NULL,
        state TEXT NOT NULL,
        size INTEGER NOT NULL,
        recorded_utc TEXT NOT NULL,
        PRIMARY KEY (sha256, location, target)
    );
    CREATE INDEX copies_by_location ON copies (location, state);
    INSERT OR IGNORE INTO copies (sha256, location, target, state, size, recorded_utc)
        SELECT f.sha256, 'local', s.path || '/originals/' || f.rel_path, 'verified', f.size,
               f.ingested_utc
        FROM files f JOIN sessions s ON s.id = f.session_id;
    DROP TABLE uploads;
    CREATE TABLE uploads (
        endpoint TEXT NOT NULL,
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        uploaded_utc TEXT NOT NULL,
        PRIMARY KEY (endpoint, bucket, key)
    );
    ALTER TABLE sessions ADD COLUMN process_error TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
