"""The bucket as an archive target: the originals `upload_originals` sends, one object per
original under the session's prefix (`<prefix>/<session>/originals/<card path>`), in the
storage class `bucket_storage_class`, are recorded as `bucket` copies.

Nothing is uploaded here: the publisher sends them (never twice: its ledger knows what the
bucket holds) and the server proves each one intact as it arrives (Content-MD5 on every
PUT and every multipart part: a corrupted body is refused and sent again). A copy is
recorded only when the upload ledger holds its key with exactly the original's sha256;
`ghostroll verify` then checks it by HEAD (presence and size)."""

from __future__ import annotations

from ghostroll.config import Config
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database


def bucket_target(endpoint: str, bucket: str, key: str) -> str:
    """A `bucket` copy's target, as verify reads it: "endpoint bucket key"."""
    return f"{endpoint} {bucket} {key}"


def record_bucket_copies(cfg: Config, db: Database) -> int:
    """Record the originals the bucket now holds; returns how many were new facts."""
    if not (cfg.s3.enabled and cfg.s3.upload_originals):
        return 0
    from ghostroll.publish.publisher import prefix_for

    endpoint, bucket = cfg.s3.endpoint_id, cfg.s3.s3_bucket
    ledger = db.upload_ledger(endpoint, bucket)
    known = {c.target for c in db.copies(location=dbm.BUCKET)}
    recorded = 0
    for session in db.sessions():
        if session.state != dbm.PUBLISHED:
            continue
        prefix = prefix_for(cfg, session.id) + "originals/"
        uploaded = {key: sha for key, sha, _ in ledger.keys(prefix)}
        for row in db.session_files(session.id):
            if row["status"] != dbm.VERIFIED:
                continue
            key = prefix + (row["stored_path"] or row["rel_path"])
            target = bucket_target(endpoint, bucket, key)
            if target not in known and uploaded.get(key) == row["sha256"]:
                db.record_copy(row["sha256"], dbm.BUCKET, target, row["size"])
                recorded += 1
    return recorded
