"""`ghostroll sessions delete ID`: the supported way to remove a session.

Removes the session's folder (originals and derivatives), unpublishes it (its objects and
its short-link page leave the bucket), and forgets the contents no copy holds any more:
their dedupe rows (`files`) and card memory (`seen`) go, so a card that still holds them
is read and stored again next time instead of counting as "already safe". Copies on an
archive disk are the photographer's and are kept (and so are those contents' rows).

Order, for a crash at any point: the bucket first (a failure there deletes nothing), then
the folder is renamed to `.deleting-<id>` (atomic), then one transaction drops the rows,
then the renamed folder is removed; running the command again finishes an interrupted
delete."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from ghostroll.config import Config
from ghostroll.errors import CardError, PublishError
from ghostroll.storage import db as dbm
from ghostroll.storage.db import CopyRow, Database, SessionRow
from ghostroll.storage.incoming import live_runs


@dataclass(frozen=True)
class DeletePlan:
    session: SessionRow
    forget: frozenset[str]  # contents held nowhere else: dedupe + card memory rows go
    kept_elsewhere: int  # contents of this session still held elsewhere (archive, bucket)
    objects: tuple[str, ...]  # bucket keys to delete (recorded uploads + short link page)


def plan_delete(session: SessionRow, contents: set[str], copies: list[CopyRow],
                objects: list[str], bucket_prefix: str | None = None) -> DeletePlan:
    """Which of the session's `contents` stay held once its folder and its objects under
    `bucket_prefix` are gone (pure)."""
    root = str(session.path).rstrip("/") + "/"

    def goes(copy: CopyRow) -> bool:
        if copy.location == dbm.LOCAL:
            return copy.target.startswith(root)
        key = copy.target.rsplit(" ", 1)[-1]
        return copy.location == dbm.BUCKET and bucket_prefix is not None \
            and key.startswith(bucket_prefix)

    held = {c.sha256 for c in copies if c.state == dbm.COPY_VERIFIED and not goes(c)}
    forget = frozenset(contents - held)
    return DeletePlan(session, forget, len(contents) - len(forget), tuple(objects))


def describe(plan: DeletePlan) -> str:
    s = plan.session
    lines = [f"delete session {s.id} (#{s.number}) and everything in {s.path}"]
    if plan.objects:
        lines.append(f"  unpublish it: {len(plan.objects)} object(s) leave the bucket; its "
                     "link stops working")
    lines.append(f"  {len(plan.forget)} photo/video content(s) will be held nowhere: a card "
                 "that still has them is copied again next time")
    if plan.kept_elsewhere:
        lines.append(f"  {plan.kept_elsewhere} content(s) stay on the archive disk")
    return "\n".join(lines)


def build_plan(cfg: Config, db: Database, session: SessionRow) -> DeletePlan:
    if session.state == dbm.COPYING and live_runs(cfg.storage.base_dir):
        raise CardError(f"session {session.id} is being copied right now; wait for the card "
                        "to finish (nothing was deleted)")
    contents = {r["sha256"] for r in db.session_files(session.id)
                if r["status"] == dbm.VERIFIED and r["sha256"]}
    objects: list[str] = []
    prefix = None
    if cfg.s3.enabled:
        from ghostroll.publish.publisher import prefix_for
        prefix = prefix_for(cfg, session.id)
        ledger = db.upload_ledger(cfg.s3.endpoint_id, cfg.s3.s3_bucket)
        objects = [key for key, _, _ in ledger.keys(prefix)]
        short = _short_key(session)
        if short:
            objects.append(short)
    return plan_delete(session, contents, db.copies(), objects, prefix)


def delete_session(cfg: Config, db: Database, plan: DeletePlan,
                   client: Any | None = None) -> str:
    session = plan.session
    if plan.objects:
        _unpublish(cfg, db, plan, client)
    doomed = session.path.with_name(f".deleting-{session.id}")
    if session.path.exists():
        session.path.rename(doomed)
    _drop_rows(db, plan)
    if doomed.exists():
        shutil.rmtree(doomed)
    return (f"deleted session {session.id}: its folder is gone, {len(plan.forget)} "
            "content(s) forgotten" + (", unpublished" if plan.objects else ""))


def _unpublish(cfg: Config, db: Database, plan: DeletePlan, client: Any | None) -> None:
    if client is None:
        from ghostroll.publish.s3client import make_client
        client = make_client(cfg.s3)
    bucket = cfg.s3.s3_bucket
    try:
        for i in range(0, len(plan.objects), 1000):
            batch = plan.objects[i:i + 1000]
            answer = client.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": k} for k in batch], "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise PublishError(f"the bucket refused to delete {first.get('Key')}: "
                                   f"{first.get('Message')}")
    except PublishError:
        raise
    except Exception as exc:  # botocore's errors: offline, denied
        raise PublishError(f"cannot unpublish session {plan.session.id} ({exc}); nothing "
                           "was deleted: try again when the bucket is reachable") from exc
    db.upload_ledger(cfg.s3.endpoint_id, bucket).forget(plan.objects)


def _drop_rows(db: Database, plan: DeletePlan) -> None:
    sid, root = plan.session.id, str(plan.session.path).rstrip("/") + "/"
    forget = sorted(plan.forget)
    with db.transaction() as conn:
        conn.execute("DELETE FROM session_files WHERE session_id = ?", (sid,))
        conn.execute("DELETE FROM publish_queue WHERE session_id = ?", (sid,))
        conn.execute("DELETE FROM copies WHERE location = ? AND substr(target, 1, ?) = ?",
                     (dbm.LOCAL, len(root), root))
        for i in range(0, len(forget), 500):
            chunk = forget[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for table in ("files", "seen", "copies"):
                conn.execute(f"DELETE FROM {table} WHERE sha256 IN ({marks})", chunk)
        conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))


def _short_key(session: SessionRow) -> str | None:
    from ghostroll.publish.publisher import read_link
    from ghostroll.storage.session import SessionLayout

    for root in (session.path, session.path.with_name(f".deleting-{session.id}")):
        link = read_link(SessionLayout(root))
        if link is not None:
            return link.short_key
    return None
