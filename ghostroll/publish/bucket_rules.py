"""The two bucket settings short links want, as `ghostroll setup` offers them: the policy
that makes `L/*` (and nothing else) public, and a lifecycle rule that deletes short-link
pages no longer rewritten and multipart uploads a crash left behind.

The merge functions are pure: other statements and rules already on the bucket are
kept, ours replace an older copy of themselves (same Sid / ID)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ghostroll.errors import PublishError
from ghostroll.publish import links

SHORT_LINK_RULE = "ghostroll-short-links"
ABORT_RULE = "ghostroll-abort-incomplete"
PAGE_DAYS = 8  # a page not rewritten for this long points at an expired signature
RESUME_DAYS = 7  # an unfinished multipart upload a later run may still resume


def policy_with_short_links(existing: dict[str, Any] | None, bucket: str) -> dict[str, Any]:
    ours = links.short_link_policy(bucket)["Statement"][0]
    raw = (existing or {}).get("Statement", [])
    statements = [st for st in (raw if isinstance(raw, list) else [raw])
                  if not (isinstance(st, dict) and st.get("Sid") == links.SHORT_LINK_SID)]
    return {"Version": (existing or {}).get("Version", "2012-10-17"),
            "Statement": [*statements, ours]}


def our_rules() -> list[dict[str, Any]]:
    return [
        {"ID": SHORT_LINK_RULE, "Status": "Enabled",
         "Filter": {"Prefix": links.SHORT_LINK_PREFIX}, "Expiration": {"Days": PAGE_DAYS}},
        {"ID": ABORT_RULE, "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": RESUME_DAYS}},
    ]


def has_our_rules(rules: list[dict[str, Any]]) -> bool:
    ids = {r.get("ID") for r in rules}
    return SHORT_LINK_RULE in ids and ABORT_RULE in ids


def lifecycle_with_our_rules(rules: list[dict[str, Any]]) -> dict[str, Any]:
    mine = {SHORT_LINK_RULE, ABORT_RULE}
    return {"Rules": [r for r in rules if r.get("ID") not in mine] + our_rules()}


# ---------------------------------------------------------------- I/O


def _refused(what: str, bucket: str, exc: Exception) -> PublishError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return PublishError(f"{what} of bucket {bucket} refused ({err.get('Code', '')}: "
                            f"{err.get('Message', '')})")
    return PublishError(f"{what} of bucket {bucket} failed: {exc}")


def read_lifecycle(client: Any, bucket: str) -> list[dict[str, Any]]:
    try:
        return client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise _refused("reading the lifecycle rules", bucket, exc) from exc
    except BotoCoreError as exc:
        raise _refused("reading the lifecycle rules", bucket, exc) from exc


def apply_policy(client: Any, bucket: str, policy: dict[str, Any]) -> None:
    try:
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    except (BotoCoreError, ClientError) as exc:
        raise _refused("setting the policy", bucket, exc) from exc


def apply_lifecycle(client: Any, bucket: str, lifecycle: dict[str, Any]) -> None:
    try:
        client.put_bucket_lifecycle_configuration(Bucket=bucket,
                                                  LifecycleConfiguration=lifecycle)
    except (BotoCoreError, ClientError) as exc:
        raise _refused("setting the lifecycle rules", bucket, exc) from exc
