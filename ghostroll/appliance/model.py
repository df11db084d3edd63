"""The state machine's model: states, the event wrapper around a protocol message, the
policy, and the model it steps (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ghostroll.appliance import protocol as p


class State(StrEnum):
    IDLE = "idle"
    CHECKING = "checking"  # a card was detected; its worker is starting
    COPYING = "copying"
    CARD_DONE = "card_done"  # verified: safe to remove
    NOTHING_NEW = "nothing_new"
    PROCESSING = "processing"
    PUBLISHING = "publishing"
    WAITING = "waiting"  # for the network or the clock
    DONE = "done"  # the share QR
    ERROR = "error"
    LOW_BATTERY = "low_battery"
    CONFIRM_SHUTDOWN = "confirm_shutdown"
    SHUTTING_DOWN = "shutting_down"


@dataclass(frozen=True)
class Event:
    """A message (`protocol`) as the machine takes it: when it arrived and, for card
    socket messages, which card's worker sent it."""
    msg: p.Message
    at: float = 0.0  # monotonic seconds
    device: str = ""

    @property
    def kind(self) -> type[p.Message]:
        return type(self.msg)


@dataclass(frozen=True)
class Policy:
    battery_min: float = 15.0
    battery_critical: float = 5.0
    cancel_window_s: float = 5.0
    confirm_window_s: float = 10.0
    debounce_s: float = 0.3


@dataclass(frozen=True)
class Receipt:
    label: str
    new: int
    skipped: int
    failed: int
    bytes_new: int
    note: str = ""  # e.g. "cancelled: 120 verified files kept"


@dataclass(frozen=True)
class Model:
    policy: Policy = Policy()
    state: State = State.IDLE
    resume: State = State.IDLE  # where confirm_shutdown goes back to
    card: str | None = None  # device of the card being handled
    label: str = ""
    waiting_card: str | None = None  # a second card, waiting its turn
    waiting_label: str = ""
    copy: p.Progress = field(default_factory=p.Progress)  # the card phase's last progress
    receipt: Receipt | None = None
    session_id: str | None = None
    work: str = ""  # "", "processing", "publishing", "waiting", "done", "failed"
    work_done: int = 0
    work_total: int = 0
    work_note: str = ""  # why publishing waits, or failed
    link: str | None = None
    link_expires: datetime | None = None
    photos: int = 0
    error: str = ""
    error_hint: str = ""
    error_retry: bool = False  # does the button retry (vs dismiss)?
    battery: float | None = None
    charging: bool = False
    cancel_armed_until: float | None = None
    confirm_until: float | None = None
    last_press: float = float("-inf")
