"""Is the clock good enough to sign links? Decided here, not by systemd unit ordering.

A Pi has no RTC: after boot without network its clock can be days off, and SigV4
signatures made then are refused (or expire at the wrong time). Rules, in order:
the config declares the clock trusted → sign; systemd says it is synchronised → sign;
otherwise compare with the `Date` header of the S3 server and sign only within
`max_skew_s`; with nothing to compare, wait ("waiting for clock").

`clock_verdict()` is pure; `system_clock_synchronized()` and `server_date()` gather its
inputs.
"""

from __future__ import annotations

import email.utils
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
DEFAULT_MAX_SKEW_S = 300


@dataclass(frozen=True)
class ClockVerdict:
    ok: bool  # True: sign; False: waiting for clock
    reason: str
    skew_s: float | None = None  # local minus server, seconds, when compared

    @property
    def state(self) -> str:
        return "ok" if self.ok else "waiting-for-clock"


def clock_verdict(*, trusted: bool, synchronized: bool | None, server_date: datetime | None,
                  now: datetime, max_skew_s: float = DEFAULT_MAX_SKEW_S) -> ClockVerdict:
    """`synchronized`: True / False / None (cannot tell). `server_date` and `now` must
    be timezone-aware; the Date header has one-second resolution."""
    if trusted:
        return ClockVerdict(True, "clock trusted by configuration (clock_trusted)")
    if synchronized:
        return ClockVerdict(True, "system clock synchronised (systemd-timesyncd)")
    if now.tzinfo is None or (server_date is not None and server_date.tzinfo is None):
        raise ValueError("clock_verdict needs timezone-aware datetimes")
    unsynced = "not synchronised" if synchronized is False else "not known to be synchronised"
    if server_date is None:
        return ClockVerdict(False, f"waiting for clock: {unsynced} and no S3 Date header "
                                   "to compare with (is the endpoint reachable?)")
    skew = (now - server_date).total_seconds()
    if abs(skew) > max_skew_s:
        direction = "ahead of" if skew > 0 else "behind"
        return ClockVerdict(False, f"waiting for clock: {abs(skew):.0f} s {direction} the "
                                   f"S3 server (more than {max_skew_s:g} s)", skew)
    return ClockVerdict(True, f"clock within {abs(skew):.0f} s of the S3 server", skew)


def system_clock_synchronized(flag: Path = TIMESYNC_FLAG) -> bool | None:
    """True when systemd-timesyncd has synchronised the clock since boot; None when it
    cannot be told (no flag: timesyncd absent, not yet synced, or another NTP client)."""
    return True if flag.exists() else None


def server_date(client: Any, bucket: str) -> datetime | None:
    """The `Date` of a HEAD bucket response (an error response has one too, e.g. a
    RequestTimeTooSkewed refusal). None when the server cannot be reached."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        response = exc.response
    except BotoCoreError as exc:
        log.debug("no S3 Date header: %s", exc)
        return None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get("date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        log.debug("unparsable S3 Date header: %r", value)
        return None
