"""Every exception GhostRoll raises on purpose, each also a matching builtin.

Library code raises these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import errno


def is_disk_full(exc: OSError) -> bool:
    """The write failed because its disk (or the user's quota on it) is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class GhostRollError(Exception):
    """Base of our own errors. `str(exc)` is a message fit for a person."""


class ConfigError(GhostRollError, ValueError):
    """A setting is missing or invalid: names the key, the source and what is allowed."""


class CardError(GhostRollError, OSError):
    """The card cannot be used (no DCIM/, unreadable, pulled out)."""


class CardRemovedError(CardError):
    """The card went away or failed with an I/O error in the middle of a copy."""


class FileChangedError(CardError):
    """A card file changed (size or time) while it was being copied."""


class DiskFullError(GhostRollError, OSError):
    """Not enough room on the session disk for what must be copied."""


class ProcessingStopped(GhostRollError, OSError):
    """Processing cannot go on here and now (disk full, our disk read-only or failing, an
    original missing): the session stays pending and is processed again later. `errno`
    is the cause's; `str()` is the message alone."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.errno = code


class VerifyError(GhostRollError, OSError):
    """A copy did not read back with the hash computed while copying."""


class DatabaseError(GhostRollError, RuntimeError):
    """The SQLite database is unusable or from a newer GhostRoll."""


class PublishError(GhostRollError, RuntimeError):
    """Publishing failed in a way a retry will not fix by itself."""


class DeviceError(GhostRollError, OSError):
    """A device that was asked for cannot be used (missing driver, bad kit, no GPIO)."""


class ArchiveError(GhostRollError, OSError):
    """The archive target cannot be used or failed (missing, full, unplugged): the local
    copies are untouched and what was verified on it stays recorded."""
