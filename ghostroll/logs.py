"""Logging setup for the CLI edge: journald or stderr, context fields, secret redaction.

`setup_logging()` sends records to journald through systemd-python's `JournalHandler`
when that module is installed and the journal socket exists, with the fields CARD,
SESSION and STATE; otherwise to stderr as plain lines (without timestamps when stderr
already is the journal, `JOURNAL_STREAM` set). `session_log_handler()` adds the
per-session `ghostroll.log`.

Context: `log_context(card=..., session=...)` sets fields for the code running inside
it (contextvars: per thread/task); `set_log_fields(state=...)` sets process-wide
defaults (the service has one state at a time and many threads). Explicit
`extra={"CARD": ...}` on a call wins.

Every handler made here redacts presigned-URL signatures and credentials
(X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, `*secret_access_key` values)
and any registered secret value, in the message, its arguments and tracebacks.
"""

from __future__ import annotations

import contextvars
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
FIELDS = ("CARD", "SESSION", "STATE")
REDACTED = "REDACTED"
NOISY_LOGGERS = ("PIL", "botocore", "boto3", "s3transfer", "urllib3")

_vars: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"ghostroll_log_{name.lower()}", default=None) for name in FIELDS
}
_defaults: dict[str, str | None] = dict.fromkeys(FIELDS)

_PATTERNS = (
    # presigned URLs and Authorization headers: keep the name, drop the value
    re.compile(r"(?i)((?:x-amz-)?(?:signature|credential|security-token)=)[^&\s,;\"'<>]+"),
    # aws_secret_access_key = "...", AWS_SECRET_ACCESS_KEY=..., "SecretAccessKey": "..."
    re.compile(r"(?i)((?:secret_?access_?key|session_?token)[\"']?\s*[=:]\s*[\"']?)"
               r"[^\s\"',;}&]+"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1" + REDACTED, text)
    return text


class RedactFilter(logging.Filter):
    """Rewrites each record with secrets removed (message, args, traceback, stack)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = {s for s in secrets if s and len(s) >= 4}

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self.secrets)
            record.exc_info = None  # journald would send repr(exc_info) unredacted
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class ContextFilter(logging.Filter):
    """Puts CARD/SESSION/STATE on each record (when known) and a short text form in
    `record.context` for plain-text formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        parts = []
        for name in FIELDS:
            value = getattr(record, name, None) or _vars[name].get() or _defaults[name]
            if value:
                setattr(record, name, str(value))
                parts.append(f"{name.lower()}={value}")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


@contextmanager
def log_context(*, card: str | None = None, session: str | None = None,
                state: str | None = None) -> Iterator[None]:
    tokens = [(_vars[name], _vars[name].set(value))
              for name, value in (("CARD", card), ("SESSION", session), ("STATE", state))
              if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


_UNSET = object()


def set_log_fields(*, card: object = _UNSET, session: object = _UNSET,
                   state: object = _UNSET) -> None:
    """Process-wide field defaults (None clears one); arguments left out are kept."""
    for name, value in (("CARD", card), ("SESSION", session), ("STATE", state)):
        if value is not _UNSET:
            _defaults[name] = None if value is None else str(value)


def journal_available() -> bool:
    return (importlib.util.find_spec("systemd") is not None
            and importlib.util.find_spec("systemd.journal") is not None
            and JOURNAL_SOCKET.is_socket())


class LibraryLineFilter(logging.Filter):
    """A library's record is one line: urllib3, for one, logs a server's malformed
    headers with a traceback attached, which is noise to a person (the request is
    retried and reported by our own code)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] in NOISY_LOGGERS and record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _decorate(handler: logging.Handler, secrets: Iterable[str]) -> logging.Handler:
    handler.addFilter(LibraryLineFilter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter(secrets))
    handler._ghostroll = True  # type: ignore[attr-defined]
    return handler


def setup_logging(level: str | int = "INFO", *, journald: bool | None = None,
                  secrets: Iterable[str] = (), stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger once, at the CLI edge; returns the handler installed.

    journald: True/False forces the choice (True falls back to stderr with a warning
    when the journal cannot be reached); None uses it when available."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ghostroll", False)]:
        root.removeHandler(old)
        old.close()
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    secrets = list(secrets)
    available = journal_available()
    handler: logging.Handler
    if (journald is None and available) or (journald and available):
        from systemd.journal import JournalHandler

        handler = JournalHandler(SYSLOG_IDENTIFIER="ghostroll")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        if os.environ.get("JOURNAL_STREAM"):
            fmt = "%(levelname)s %(name)s: %(message)s%(context)s"
        else:
            fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
        handler.setFormatter(logging.Formatter(fmt))
    handler.setLevel(numeric)  # on the handler too: a session log may lower a logger's level
    root.addHandler(_decorate(handler, secrets))
    if journald and not available:
        logging.getLogger(__name__).warning(
            "journald asked for but not reachable (systemd-python missing or no %s); "
            "logging to stderr", JOURNAL_SOCKET)
    return handler


def session_log_handler(path: Path, *, level: int = logging.DEBUG,
                        secrets: Iterable[str] = ()) -> logging.Handler:
    """A handler appending to a session's `ghostroll.log`; the caller adds it to a
    logger and removes and closes it when the session ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"))
    return _decorate(handler, secrets)


@contextmanager
def session_log(path: Path, *, logger: logging.Logger | None = None,
                secrets: Iterable[str] = ()) -> Iterator[logging.Handler]:
    """`session_log_handler()` attached to `logger` (the root by default) for a block."""
    target = logger if logger is not None else logging.getLogger()
    handler = session_log_handler(path, secrets=secrets)
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)
        handler.close()
