"""What starts beside the card phase and must never hold it up: the one S3 client of a
process (made on first use, so boto3 is imported only then) and the share link, signed
as soon as the session exists (signing is local)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ghostroll.config import Config
from ghostroll.storage.db import Database, SessionRow

# The early link runs inside the card phase: a child of the ingest logger, so its lines
# also land in the session's ghostroll.log.
link_log = logging.getLogger("ghostroll.ingest.link")


class OneClient:
    """One S3 client per process, made on first use (boto3 is imported only then)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.client: Any = None
        self.lock = threading.Lock()

    def __call__(self) -> Any:
        with self.lock:
            if self.client is None:
                from ghostroll.publish.s3client import make_client
                self.client = make_client(self.cfg.s3)
            return self.client


def early_link(cfg: Config, db: Database, session_id: str, client: Any | None = None) -> None:
    """The share link exists as soon as the session does: signing is local. Called in
    the middle of the card phase, so it never raises: a link that cannot be made now is
    made by the publisher later, and the copy goes on."""
    from ghostroll.publish.publisher import Offline, check_clock, ensure_link
    from ghostroll.publish.s3client import make_client

    try:
        session = db.session(session_id)
        client = client or make_client(cfg.s3)
        check_clock(cfg, client)
        if session is not None:
            ensure_link(cfg, db, client, session)
    except Offline as exc:
        link_log.info("share link for %s waits: %s", session_id, exc)
    except Exception as exc:  # the card phase must never depend on the network or on S3
        link_log.warning("share link for %s not made now (publishing makes it later): "
                         "%s: %s", session_id, type(exc).__name__, exc)
        link_log.debug("early link failure", exc_info=True)


class EarlyLinks:
    """Signs each new session's link beside the copy, on its own thread and database
    connection: the card phase never waits for the clock check or the bucket."""

    def __init__(self, cfg: Config, client: Callable[[], Any]) -> None:
        self.cfg = cfg
        self.client = client
        self.threads: list[threading.Thread] = []

    def __call__(self, session: SessionRow) -> None:
        thread = threading.Thread(target=self._sign, args=(session.id,), daemon=True,
                                  name="ghostroll-early-link")
        thread.start()
        self.threads.append(thread)

    def _sign(self, session_id: str) -> None:
        try:
            with Database(self.cfg.storage.db_path) as db:
                early_link(self.cfg, db, session_id, self.client())
        except Exception as exc:  # the database could not be opened: publishing retries
            link_log.warning("share link for %s not made now: %s", session_id, exc)

    def wait(self) -> None:
        for thread in self.threads:
            thread.join()
