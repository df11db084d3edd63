"""Bucket checks for one verify run: HEAD requests, the unsigned GET that must be denied;
the first sign of being offline becomes one warning."""


from __future__ import annotations

from typing import Any

from ghostroll.commands.verify.model import (
    BUCKET_ERROR,
    BUCKET_PUBLIC,
    COPY_MISSING,
    NOT_CHECKED,
    NOT_UPLOADED,
    OBJECT_MISSING,
    OBJECT_SIZE,
    OFFLINE,
    Problem,
    Report,
)
from ghostroll.commands.verify.rules import expected_objects
from ghostroll.config import Config
from ghostroll.storage.db import CopyRow, Database, SessionRow


class _Offline(Exception):
    pass


class _Bucket:
    """HEAD requests for one verify run; the first sign of being offline becomes one
    warning and every later bucket check is skipped."""

    def __init__(self, cfg: Config, db: Database, report: Report) -> None:
        self.cfg, self.db, self.report = cfg, db, report
        self.client: Any = None  # made at the first request: no bucket, no boto3 import
        self.offline = False

    def _client(self) -> Any:
        if self.client is None:
            from ghostroll.publish.s3client import make_client

            self.client = make_client(self.cfg.s3, connect_timeout_s=5, read_timeout_s=15)
        return self.client

    def _went_offline(self, exc: Exception) -> None:
        if not self.offline:
            self.report.warnings.append(Problem(
                OFFLINE, None, None, f"cannot check the bucket: offline ({exc})",
                "run `ghostroll verify` again when the network is up"))
        self.offline = True

    def size(self, bucket: str, key: str) -> int | None:
        """The object's size, None when it does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self._client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        except BotoCoreError as exc:
            raise _Offline(str(exc)) from exc
        self.report.checked["objects"] += 1
        return int(head["ContentLength"])

    def check_copy(self, copy: CopyRow, session: str | None) -> None:
        """A `bucket` copy: target is "endpoint bucket key"."""
        if self.offline:
            self.report.checked["bucket_copies_skipped"] += 1
            return
        endpoint, bucket, key = copy.target.split(" ", 2)
        if endpoint != self.cfg.s3.endpoint_id:
            self.report.warnings.append(Problem(
                NOT_CHECKED, session, copy.target, f"copy recorded at endpoint {endpoint}, "
                "not the configured one: not checked", "verify with that endpoint's config"))
            return
        self._object(session, bucket, key, copy.size, COPY_MISSING,
                     "copy it there again (or record it pruned)")

    def _lookup(self, session: str | None, bucket: str, key: str) -> tuple[bool, int | None]:
        """(checked, size or None when absent); not checked when offline or refused (the
        reason is reported once here)."""
        from botocore.exceptions import ClientError

        try:
            return True, self.size(bucket, key)
        except _Offline as exc:
            self._went_offline(exc)
        except ClientError as exc:
            self.report.problems.append(Problem(
                BUCKET_ERROR, session, f"s3://{bucket}/{key}", f"the bucket refused the "
                f"check: {exc}", "check the credentials and s3_bucket (`ghostroll doctor`)"))
        return False, None

    def _object(self, session: str | None, bucket: str, key: str, size: int | None,
                kind: str, fix: str) -> bool:
        """An object recorded with `size`: is it there, that size? True when present."""
        checked, found = self._lookup(session, bucket, key)
        where = f"s3://{bucket}/{key}"
        if not checked:
            return False
        if found is None:
            self.report.problems.append(Problem(
                kind, session, where, "object recorded as uploaded is not in the bucket", fix))
        elif size is not None and found != size:
            self.report.problems.append(Problem(
                OBJECT_SIZE, session, where, f"object has {found} bytes, {size} were "
                "uploaded", fix))
        return found is not None

    def check_published(self, session: SessionRow, gallery: dict[str, Any]) -> None:
        """Every object the gallery needs and every one the ledger records is in the
        configured bucket. Objects missing from the ledger are looked for too (a device
        upgraded from schema 2 started with an empty ledger)."""
        if self.offline:
            return
        s3 = self.cfg.s3
        if not s3.enabled:
            self.report.warnings.append(Problem(
                NOT_CHECKED, session.id, None, "published, but no bucket is configured "
                "here: its objects were not checked", "run verify with the bucket's settings"))
            return
        from ghostroll.publish.publisher import prefix_for

        prefix, bucket = prefix_for(self.cfg, session.id), s3.s3_bucket
        ledger = {key: size for key, _, size in
                  self.db.upload_ledger(s3.endpoint_id, bucket).keys(prefix)}
        wanted = [prefix + k for k in expected_objects(gallery.get("items", []),
                                                       gallery.get("zip_key"))]
        resend = ("`ghostroll verify --repair` forgets the upload, then `ghostroll publish` "
                  "sends it again")
        present: str | None = None
        never: list[str] = []  # needed, not in the ledger, not in the bucket
        for key in dict.fromkeys(wanted + sorted(ledger)):
            if key in ledger:
                found = self._object(session.id, bucket, key, ledger[key], OBJECT_MISSING,
                                     resend)
            else:
                checked, size = self._lookup(session.id, bucket, key)
                found = size is not None
                if checked and not found:
                    never.append(key)
            if self.offline:
                return
            present = present or (key if found else None)
        reshare = f"`ghostroll reshare {session.id}` uploads it again"
        if never and len(never) == len(wanted) and not ledger:
            self.report.problems.append(Problem(
                NOT_UPLOADED, session.id, f"s3://{bucket}/{prefix}", "marked published, but "
                f"none of it is in bucket {bucket} at {s3.endpoint_id} (the bucket or "
                "endpoint changed since?)", reshare))
        else:
            self.report.problems.extend(Problem(
                NOT_UPLOADED, session.id, f"s3://{bucket}/{key}", "marked published, but "
                "this part of its gallery is not in the bucket", reshare) for key in never)
        if present is not None:
            self._unsigned_denied(session, present)

    def _unsigned_denied(self, session: SessionRow, key: str) -> None:
        from ghostroll.commands.doctor import http_status
        from ghostroll.publish import links

        url = links.presign_get(self._client(), self.cfg.s3.s3_bucket, key, 60).split("?")[0]
        try:
            status = http_status(url)
        except OSError as exc:
            self._went_offline(exc)
            return
        self.report.checked["unsigned_gets"] += 1
        if status == 200:
            self.report.problems.append(Problem(
                BUCKET_PUBLIC, session.id, f"s3://{self.cfg.s3.s3_bucket}/{key}",
                "a gallery object is readable without a signature: the bucket is PUBLIC",
                "remove public access (bucket policy / ACL); only L/* may be public "
                "(docs/publishing.md, `ghostroll doctor`)"))
