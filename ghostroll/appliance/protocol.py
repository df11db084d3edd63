"""The appliance's one vocabulary: every message the service consumes is a frozen
dataclass here, whether it comes over the card socket, from the work child's stdout,
from a device (button, battery) or from the loop itself (tick). The state machine takes
these messages directly.

Pure: message types, `to_json()`/`from_json()` (and `encode()`/`decode()` for socket
lines) with validation. One message per line, UTF-8 JSON objects, each with `"v": 1`
and a `"type"`.

worker → service                           service → worker
  hello     device, label, volume_id,        grant     you may copy now
            mount, pid                       wait      reason (another card is copying)
  progress  files/bytes read and to read,    refuse    reason (battery too low...);
            new, duplicates, known,                    the worker exits without copying
            failed, current                  cancel    stop after the current file
  done      session_id, new, skipped,        error     message (bad message, version)
            failed, bytes_new, seconds
  failed    reason, message, session_id
  query     (from `ghostroll status`)          status    status: the status.json document

work child → service (`ghostroll work` prints these, one per line)
  work_progress  stage (processing | publishing), done, total, session_id
  link           url, expires (ISO 8601), session_id: the share link exists
  work_waiting   reason (offline, clock, processing stopped by a full disk)
  work_done      photos, url, expires, session_id (url empty: no bucket, kept local)
  work_failed    message

inside the service: card_gone (device), press, hold (the button), battery (percent,
charging), tick, setup_error (title, message).

A worker that cannot reach the service copies anyway (the service picks the session up
when it starts); a service that loses a worker mid-copy reports the card as pulled."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

VERSION = 1
MAX_LINE = 64 * 1024


class ProtocolError(ValueError):
    """A line that is not a valid message of this protocol version."""


@dataclass(frozen=True)
class Message:
    type: ClassVar[str] = ""

    def to_json(self) -> str:
        """One line of JSON (no newline), with the protocol version and the type."""
        body = {"v": VERSION, "type": self.type, **asdict(self)}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Message:
        """The message in `text`; on `Message` any type, on a subclass only that one."""
        message = decode(text if isinstance(text, bytes) else text.encode())
        if cls is not Message and not isinstance(message, cls):
            raise ProtocolError(f"expected {cls.type}, got {message.type}")
        return message


@dataclass(frozen=True)
class Hello(Message):
    type: ClassVar[str] = "hello"
    device: str
    label: str
    volume_id: str
    mount: str
    pid: int = 0


@dataclass(frozen=True)
class Progress(Message):
    type: ClassVar[str] = "progress"
    files_read: int = 0
    files_to_read: int = 0
    bytes_read: int = 0
    bytes_to_read: int = 0
    files_total: int = 0
    new: int = 0
    bytes_new: int = 0  # bytes of the new files, verified and recorded
    duplicates: int = 0  # read, but the content was already safe
    known: int = 0  # recognised without reading
    failed: int = 0
    current: str = ""
    elapsed_s: float = 0.0
    session_id: str | None = None  # once the session exists: the link can be signed
    phase: str = "copying"  # "scanning" | "copying" | "done"

    @property
    def skipped(self) -> int:
        """Files already safe: read and found a duplicate, or known without reading."""
        return self.duplicates + self.known


@dataclass(frozen=True)
class Done(Message):
    type: ClassVar[str] = "done"
    session_id: str | None
    new: int
    skipped: int
    failed: int
    bytes_new: int
    seconds: float
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Failed(Message):
    type: ClassVar[str] = "failed"
    reason: str  # "card_removed" | "disk_full" | "unusable" | "cancelled" | "refused"
    message: str
    session_id: str | None = None


@dataclass(frozen=True)
class Grant(Message):
    type: ClassVar[str] = "grant"


@dataclass(frozen=True)
class Wait(Message):
    type: ClassVar[str] = "wait"
    reason: str


@dataclass(frozen=True)
class Refuse(Message):
    type: ClassVar[str] = "refuse"
    reason: str


@dataclass(frozen=True)
class Cancel(Message):
    type: ClassVar[str] = "cancel"


@dataclass(frozen=True)
class Query(Message):
    """`ghostroll status` asks the service what it shows (any client, not a worker)."""
    type: ClassVar[str] = "query"


@dataclass(frozen=True)
class Status(Message):
    type: ClassVar[str] = "status"
    status: dict = field(default_factory=dict)  # the status.json document


@dataclass(frozen=True)
class Error(Message):
    type: ClassVar[str] = "error"
    message: str


# ---------------------------------------------------------------- inside the service


@dataclass(frozen=True)
class CardGone(Message):
    """A card's device disappeared (its worker's socket closed mid-copy, or the kernel
    no longer lists it)."""
    type: ClassVar[str] = "card_gone"
    device: str


@dataclass(frozen=True)
class WorkProgress(Message):
    type: ClassVar[str] = "work_progress"
    stage: str  # "processing" | "publishing"
    done: int = 0
    total: int = 0
    session_id: str | None = None


@dataclass(frozen=True)
class LinkReady(Message):
    type: ClassVar[str] = "link"
    url: str
    expires: str | None = None  # ISO 8601
    session_id: str | None = None


@dataclass(frozen=True)
class WorkWaiting(Message):
    type: ClassVar[str] = "work_waiting"
    reason: str = ""


@dataclass(frozen=True)
class WorkDone(Message):
    """A session is published (url set) or, with no bucket configured, kept local."""
    type: ClassVar[str] = "work_done"
    photos: int = 0
    url: str | None = None
    expires: str | None = None  # ISO 8601
    session_id: str | None = None


@dataclass(frozen=True)
class ArchiveDone(Message):
    """Work child → service: these sessions' originals all have their verified archive
    copy now (the receipt's "2 copies" is true from this moment)."""
    type: ClassVar[str] = "archive_done"
    session_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkFailed(Message):
    type: ClassVar[str] = "work_failed"
    message: str = ""


@dataclass(frozen=True)
class Press(Message):
    """A short press of the button."""
    type: ClassVar[str] = "press"


@dataclass(frozen=True)
class Hold(Message):
    """A long press of the button."""
    type: ClassVar[str] = "hold"


@dataclass(frozen=True)
class Battery(Message):
    type: ClassVar[str] = "battery"
    percent: float | None = None  # None: no battery reading (no battery shown)
    charging: bool = False


@dataclass(frozen=True)
class Tick(Message):
    type: ClassVar[str] = "tick"


@dataclass(frozen=True)
class SetupError(Message):
    """A device that cannot start, or a first-boot file that was rejected."""
    type: ClassVar[str] = "setup_error"
    message: str
    title: str = ""


@dataclass(frozen=True)
class Recorded(Message):
    """Worker → service: one original verified and recorded (durable), so the service's
    work child may derive and upload it while the card is still read."""
    type: ClassVar[str] = "recorded"
    session_id: str
    rel_path: str
    stored: str  # the verified copy's absolute path
    kind: str
    group: str
    sha256: str
    size: int
    card_bytes_left: int = 0  # of the card, still to copy: the originals come first


MESSAGES: dict[str, type[Message]] = {
    cls.type: cls for cls in (Hello, Progress, Done, Failed, Grant, Wait, Refuse, Cancel,
                             Query, Status, Error, CardGone, WorkProgress, LinkReady,
                             WorkWaiting, WorkDone, ArchiveDone, WorkFailed, Press, Hold,
                             Battery, Tick, SetupError, Recorded)
}


def encode(message: Message) -> bytes:
    """One socket line."""
    return message.to_json().encode() + b"\n"


def decode(line: bytes) -> Message:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"line of {len(line)} bytes is longer than {MAX_LINE}")
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not a JSON line: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    if data.get("v") != VERSION:
        raise ProtocolError(f"protocol version {data.get('v')!r} is not supported "
                            f"(this side speaks {VERSION})")
    cls = MESSAGES.get(str(data.get("type")))
    if cls is None:
        raise ProtocolError(f"unknown message type {data.get('type')!r}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in data:
            values[f.name] = data[f.name]
    try:
        message = cls(**values)
    except TypeError as exc:
        raise ProtocolError(f"{cls.type}: {exc}") from None
    _check_types(message)
    return message


def _check_types(message: Message) -> None:
    for f in fields(message):
        value = getattr(message, f.name)
        if f.type == "bool":
            if not isinstance(value, bool):
                raise ProtocolError(f"{message.type}.{f.name}: {value!r} is not bool")
            continue
        expected = {"int": int, "float": (int, float), "str": str, "list[str]": list,
                    "str | None": (str, type(None)),
                    "float | None": (int, float, type(None))}.get(str(f.type))
        if expected is not None and (not isinstance(value, expected)
                                     or isinstance(value, bool)):
            raise ProtocolError(f"{message.type}.{f.name}: {value!r} is not {f.type}")
