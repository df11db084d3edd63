"""The SQLite database: what was ingested, from which card, in which session, and
what was uploaded.

WAL journal with `synchronous=FULL`: a row that was committed survives a power cut.
Schema changes are numbered migrations applied in order (`PRAGMA user_version`); a
database from a newer GhostRoll is refused rather than guessed at.

Tables
- `files`: one row per distinct content (sha256) ever ingested: the dedupe index.
- `seen`: (volume id, card path, size, mtime) → sha256, so a re-inserted card is
  recognised without reading file contents.
- `sessions`: one per ingest session, with a monotonically increasing `number`
  (a Pi may boot with a wrong clock: time alone does not order sessions).
- `session_files`: every card file a session looked at, with its outcome.
- `uploads`: S3 key → sha256/etag of what is already in the bucket (idempotent uploads).
- `publish_queue`: sessions waiting to be published; survives crashes and reboots.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ghostroll.errors import DatabaseError

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
)
SCHEMA_VERSION = len(MIGRATIONS)

# session states
COPYING, COPIED, PROCESSED, PUBLISHED = "copying", "copied", "processed", "published"
# publish_queue states
QUEUED, RETRY, PUBLISHED_Q = "queued", "retry", "published"
# session_files statuses
VERIFIED, DUPLICATE, FAILED = "verified", "duplicate", "failed"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class SessionRow:
    number: int
    id: str
    path: Path
    created_utc: str
    volume_id: str
    volume_label: str
    source: str
    state: str
    finished_utc: str | None


@dataclass(frozen=True)
class SeenRow:
    size: int
    mtime_ns: int
    sha256: str
    kind: str


class Database:
    """One connection; a lock makes it safe to share with upload worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                        check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"database {path} is unusable: {exc}") from exc
        except OSError as exc:
            raise DatabaseError(f"cannot open database {path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"database {self.path} has schema {version}, newer than this GhostRoll "
                f"understands ({SCHEMA_VERSION}); upgrade GhostRoll")
        for number in range(version, SCHEMA_VERSION):
            with self.transaction():
                for statement in _statements(MIGRATIONS[number]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # ------------------------------------------------------------ dedupe

    def seen_on_volume(self, volume_id: str) -> dict[str, SeenRow]:
        rows = self.conn.execute(
            "SELECT rel_path, size, mtime_ns, sha256, kind FROM seen WHERE volume_id = ?",
            (volume_id,))
        return {r["rel_path"]: SeenRow(r["size"], r["mtime_ns"], r["sha256"], r["kind"])
                for r in rows}

    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        wanted = list(hashes)
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.conn.execute(
                f"SELECT sha256 FROM files WHERE sha256 IN ({marks})", chunk))
        return found

    def is_known(self, sha256: str) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM files WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def record_seen(self, volume_id: str, rel_path: str, size: int, mtime_ns: int,
                    sha256: str, kind: str) -> None:
        self.conn.execute(
            "INSERT INTO seen (volume_id, rel_path, size, mtime_ns, sha256, kind) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (volume_id, rel_path) DO UPDATE SET "
            "size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, "
            "kind = excluded.kind",
            (volume_id, rel_path, size, mtime_ns, sha256, kind))

    def record_ingested(self, *, session_id: str, volume_id: str, rel_path: str, size: int,
                        mtime_ns: int, sha256: str, kind: str, group: str) -> None:
        """A verified copy: dedupe index, card memory and session entry in one commit."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR IGNORE INTO files (sha256, size, kind, session_id, rel_path, "
                "ingested_utc) VALUES (?, ?, ?, ?, ?, ?)",
                (sha256, size, kind, session_id, rel_path, utc_now()))
            self.record_seen(volume_id, rel_path, size, mtime_ns, sha256, kind)
            self._session_file(session_id, rel_path, size, sha256, kind, group, VERIFIED, None)

    def record_duplicate(self, *, session_id: str | None, volume_id: str, rel_path: str,
                         size: int, mtime_ns: int, sha256: str, kind: str, group: str) -> None:
        with self.transaction():
            self.record_seen(volume_id, rel_path, size, mtime_ns, sha256, kind)
            if session_id:
                self._session_file(session_id, rel_path, size, sha256, kind, group,
                                   DUPLICATE, None)

    def record_failed(self, *, session_id: str, rel_path: str, size: int, kind: str,
                      group: str, error: str) -> None:
        with self.transaction():
            self._session_file(session_id, rel_path, size, None, kind, group, FAILED, error)

    def record_known(self, session_id: str,
                     items: list[tuple[str, int, str, str, str]]) -> None:
        """Card files recognised without reading: (rel_path, size, sha256, kind, group).
        Never overwrites what this session already recorded for a path."""
        with self.transaction():
            self.conn.executemany(
                "INSERT OR IGNORE INTO session_files (session_id, rel_path, size, sha256, "
                "kind, grp, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [(session_id, p, size, sha, kind, grp, DUPLICATE)
                 for p, size, sha, kind, grp in items])

    def _session_file(self, session_id: str, rel_path: str, size: int, sha256: str | None,
                      kind: str, group: str, status: str, error: str | None) -> None:
        self.conn.execute(
            "INSERT INTO session_files (session_id, rel_path, size, sha256, kind, grp, status, "
            "error) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, rel_path) DO "
            "UPDATE SET size = excluded.size, sha256 = excluded.sha256, kind = excluded.kind, "
            "grp = excluded.grp, status = excluded.status, error = excluded.error",
            (session_id, rel_path, size, sha256, kind, group, status, error))

    # ------------------------------------------------------------ sessions

    def create_session(self, *, session_id: str, path: Path, volume_id: str,
                       volume_label: str, source: str) -> SessionRow:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO sessions (id, path, created_utc, volume_id, volume_label, source, "
                "state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, str(path), utc_now(), volume_id, volume_label, source, COPYING))
        session = self.session(session_id)
        assert session is not None
        return session

    def session(self, session_id: str) -> SessionRow | None:
        row = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return _session_row(row) if row else None

    def sessions(self) -> list[SessionRow]:
        return [_session_row(r) for r in
                self.conn.execute("SELECT * FROM sessions ORDER BY number")]

    def unfinished_session(self, volume_id: str) -> SessionRow | None:
        row = self.conn.execute(
            "SELECT * FROM sessions WHERE volume_id = ? AND state = ? "
            "ORDER BY number DESC LIMIT 1", (volume_id, COPYING)).fetchone()
        return _session_row(row) if row else None

    def set_session_state(self, session_id: str, state: str) -> None:
        finished = utc_now() if state != COPYING else None
        with self.transaction():
            self.conn.execute("UPDATE sessions SET state = ?, finished_utc = ? WHERE id = ?",
                              (state, finished, session_id))

    def session_files(self, session_id: str) -> list[sqlite3.Row]:
        return list(self.conn.execute(
            "SELECT * FROM session_files WHERE session_id = ? ORDER BY rel_path",
            (session_id,)))

    # ------------------------------------------------------------ uploads ledger

    def uploaded_sha(self, key: str) -> str | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT sha256 FROM uploads WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def record_upload(self, key: str, sha256: str, size: int, etag: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO uploads (key, sha256, size, etag, uploaded_utc) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET sha256 = "
                "excluded.sha256, size = excluded.size, etag = excluded.etag, "
                "uploaded_utc = excluded.uploaded_utc",
                (key, sha256, size, etag, utc_now()))


    # ------------------------------------------------------------ publish queue

    def enqueue_publish(self, session_id: str) -> None:
        """Queue a session (again); a published session is queued again only on request."""
        now = utc_now()
        with self.transaction():
            self.conn.execute(
                "INSERT INTO publish_queue (session_id, state, queued_utc, updated_utc) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET state = "
                "excluded.state, updated_utc = excluded.updated_utc, last_error = NULL",
                (session_id, QUEUED, now, now))

    def queued_sessions(self) -> list[str]:
        """Sessions waiting to be published, oldest session first."""
        rows = self.conn.execute(
            "SELECT q.session_id FROM publish_queue q JOIN sessions s ON s.id = q.session_id "
            "WHERE q.state IN (?, ?) ORDER BY s.number", (QUEUED, RETRY))
        return [r[0] for r in rows]

    def publish_entry(self, session_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM publish_queue WHERE session_id = ?",
                                 (session_id,)).fetchone()

    def set_publish_link(self, session_id: str, url: str, expires_utc: str) -> None:
        with self.transaction():
            self.conn.execute("UPDATE publish_queue SET url = ?, url_expires_utc = ?, "
                              "updated_utc = ? WHERE session_id = ?",
                              (url, expires_utc, utc_now(), session_id))

    def set_publish_state(self, session_id: str, state: str, *, error: str | None = None,
                          url: str | None = None, url_expires_utc: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE publish_queue SET state = ?, last_error = ?, updated_utc = ?, "
                "attempts = attempts + (CASE WHEN ? = 'retry' THEN 1 ELSE 0 END), "
                "url = COALESCE(?, url), url_expires_utc = COALESCE(?, url_expires_utc) "
                "WHERE session_id = ?",
                (state, error, utc_now(), state, url, url_expires_utc, session_id))


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _session_row(row: sqlite3.Row) -> SessionRow:
    return SessionRow(
        number=row["number"], id=row["id"], path=Path(row["path"]),
        created_utc=row["created_utc"], volume_id=row["volume_id"],
        volume_label=row["volume_label"], source=row["source"], state=row["state"],
        finished_utc=row["finished_utc"])
