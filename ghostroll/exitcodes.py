"""The exit codes of every `ghostroll` command (README's table lists them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # everything done (verify: everything checked is as recorded)
    PARTIAL = 1  # something failed or stopped early; everything verified is kept
    UNUSABLE = 2  # unusable input or configuration: nothing was done
    QUEUED = 3  # the card is safe; publishing waits (offline, untrusted clock)
    REFUSED = 75  # card worker: the service refused the copy (EX_TEMPFAIL), nothing read
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
