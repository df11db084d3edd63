"""The appliance's state machine. Pure: no I/O, no clock (time comes in events).

`step(model, event) -> (model, effects)`. The `TABLE` below maps every (state, event
kind) pair to a handler: a transition, `ignore` (explicitly nothing), or `unexpected`
(a bug elsewhere: logged, nothing changes). `validate()` runs at import: one initial
state, every pair defined, every state reachable, none a trap.

The screen shows `model.state`; background work (processing, publishing) and the share
link live in the model beside it, so the "safe to remove" receipt can say "uploading in
background: 37 %" and the QR appears the moment the link exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


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


class Ev(StrEnum):
    CARD_ADDED = "card_added"
    CARD_REMOVED = "card_removed"
    PHASE_PROGRESS = "phase_progress"
    PHASE_DONE = "phase_done"
    PHASE_FAILED = "phase_failed"
    LINK_READY = "link_ready"
    WORK_PROGRESS = "work_progress"  # processing or publishing progress
    WORK_WAITING = "work_waiting"  # publishing waits for network or clock
    PUBLISH_DONE = "publish_done"
    WORK_FAILED = "work_failed"
    BUTTON_SHORT = "button_short"
    BUTTON_LONG = "button_long"
    BATTERY = "battery"
    BATTERY_CRITICAL = "battery_critical"
    TICK = "tick"
    SETUP_ERROR = "setup_error"  # e.g. a broken first-boot file, written by another unit


@dataclass(frozen=True)
class Event:
    kind: Ev
    at: float = 0.0  # monotonic seconds
    device: str = ""
    label: str = ""
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    battery_min: float = 15.0
    battery_critical: float = 5.0
    cancel_window_s: float = 5.0
    confirm_window_s: float = 10.0
    debounce_s: float = 0.3


@dataclass(frozen=True)
class Copy:
    files_total: int = 0
    files_to_read: int = 0
    files_read: int = 0
    bytes_to_read: int = 0
    bytes_read: int = 0
    new: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed_s: float = 0.0


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
    copy: Copy = Copy()
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


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class Effect:
    pass


@dataclass(frozen=True)
class Grant(Effect):
    device: str


@dataclass(frozen=True)
class Wait(Effect):
    device: str
    reason: str


@dataclass(frozen=True)
class Refuse(Effect):
    device: str
    reason: str


@dataclass(frozen=True)
class CancelCopy(Effect):
    device: str


@dataclass(frozen=True)
class Eject(Effect):
    device: str


@dataclass(frozen=True)
class StartWork(Effect):
    """Process (if needed) and publish the session's queue."""
    session_id: str | None


@dataclass(frozen=True)
class Shutdown(Effect):
    pass


@dataclass(frozen=True)
class LogProblem(Effect):
    message: str


Result = tuple[Model, list[Effect]]
Handler = Callable[[Model, Event], Result]


# ---------------------------------------------------------------- event data


def _int(e: Event, key: str, default: int = 0) -> int:
    value = e.data.get(key, default)
    return int(value) if isinstance(value, int | float) else default


def _text(e: Event, key: str) -> str | None:
    value = e.data.get(key)
    return str(value) if value else None


def _when(e: Event, key: str, default: datetime | None) -> datetime | None:
    value = e.data.get(key)
    return value if isinstance(value, datetime) else default


# ---------------------------------------------------------------- guards


def battery_too_low(m: Model) -> bool:
    return m.battery is not None and not m.charging and m.battery < m.policy.battery_min


def card_busy(m: Model) -> bool:
    return m.state in (State.CHECKING, State.COPYING) or (
        m.state == State.CONFIRM_SHUTDOWN and m.resume in (State.CHECKING, State.COPYING))


def debounced(m: Model, e: Event) -> bool:
    return e.at - m.last_press < m.policy.debounce_s


def _work_state(m: Model) -> State:
    """The screen for background work once no card is in front of it."""
    return {"processing": State.PROCESSING, "publishing": State.PUBLISHING,
            "waiting": State.WAITING, "done": State.DONE,
            "failed": State.ERROR}.get(m.work, State.IDLE)


# ---------------------------------------------------------------- handlers


def ignore(m: Model, e: Event) -> Result:
    return m, []


def unexpected(m: Model, e: Event) -> Result:
    return m, [LogProblem(f"event {e.kind} is not expected in state {m.state}")]


def card_added(m: Model, e: Event) -> Result:
    """A card in a state where no copy runs: a finished card still in its reader does
    not hold the new one back."""
    if battery_too_low(m):
        return (replace(m, state=State.LOW_BATTERY, card=None, label=e.label),
                [Refuse(e.device, f"battery at {m.battery:.0f} %, below "
                                  f"{m.policy.battery_min:.0f} %: charge, then reinsert")])
    return (replace(m, state=State.CHECKING, card=e.device, label=e.label, copy=Copy(),
                    receipt=None, error="", cancel_armed_until=None), [Grant(e.device)])


def card_added_while_busy(m: Model, e: Event) -> Result:
    if m.card == e.device:
        return m, []
    return (replace(m, waiting_card=e.device, waiting_label=e.label),
            [Wait(e.device, f"another card ({m.label or m.card}) is being copied")])


def phase_progress(m: Model, e: Event) -> Result:
    elapsed = e.data.get("elapsed_s", 0.0)
    copy = Copy(**{k: _int(e, k) for k in Copy.__dataclass_fields__ if k != "elapsed_s"},
                elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else 0.0)
    return replace(m, state=State.COPYING, copy=copy,
                   session_id=_text(e, "session_id") or m.session_id), []


def _next_card(m: Model, effects: list[Effect]) -> Model:
    """The waiting card, if any, gets its turn."""
    if m.waiting_card is None:
        return m
    effects.append(Grant(m.waiting_card))
    return replace(m, state=State.CHECKING, card=m.waiting_card, label=m.waiting_label,
                   waiting_card=None, waiting_label="", copy=Copy())


def phase_done(m: Model, e: Event) -> Result:
    new, skipped, failed = _int(e, "new"), _int(e, "skipped"), _int(e, "failed")
    receipt = Receipt(m.label, new, skipped, failed, _int(e, "bytes_new"))
    session = _text(e, "session_id") or m.session_id
    effects: list[Effect] = []
    state = State.CARD_DONE if new or failed else State.NOTHING_NEW
    work = m.work
    if session and (new or failed):
        effects.append(StartWork(session))
        work = "processing"
    m = replace(m, state=state, receipt=receipt, session_id=session, work=work,
                work_done=0, work_total=new, cancel_armed_until=None)
    return _next_card(m, effects), effects


def phase_failed(m: Model, e: Event) -> Result:
    reason = _text(e, "reason") or ""
    message = _text(e, "message") or ""
    copied = m.copy.new
    effects: list[Effect] = []
    if reason == "cancelled":
        session = _text(e, "session_id") or m.session_id
        receipt = Receipt(m.label, m.copy.new, m.copy.skipped, m.copy.failed, m.copy.bytes_read,
                          note=f"cancelled: {copied} verified files kept")
        if session:
            effects.append(StartWork(session))
        m = replace(m, state=State.CARD_DONE, receipt=receipt, cancel_armed_until=None,
                    session_id=session, work="processing" if session else m.work)
        return _next_card(m, effects), effects
    texts = {
        "card_removed": ("Card removed during copy",
                         f"{copied} verified files kept. Reinsert the card to finish."),
        "disk_full": ("Storage is full", "Free space over SSH (ghostroll sessions), then "
                      "reinsert the card. Nothing was lost."),
        "unusable": ("This card cannot be read", message[:120] or "Check it in a computer."),
        "refused": ("Copy refused", message[:120]),
    }
    title, hint = texts.get(reason, ("Copy failed", message[:120]))
    m = replace(m, state=State.ERROR, error=title, error_hint=hint, error_retry=False,
                cancel_armed_until=None, card=None if reason == "card_removed" else m.card)
    return _next_card(m, effects), effects


def card_removed(m: Model, e: Event) -> Result:
    if m.state == State.CONFIRM_SHUTDOWN:  # keep asking; come back to the right screen
        inner, effects = card_removed(replace(m, state=m.resume), e)
        return replace(inner, state=State.CONFIRM_SHUTDOWN, resume=inner.state), effects
    if e.device == m.waiting_card:
        return replace(m, waiting_card=None, waiting_label=""), []
    if e.device != m.card:
        return m, []
    if m.state == State.COPYING or m.state == State.CHECKING:
        return replace(m, state=State.ERROR, card=None, error="Card removed during copy",
                       error_hint=f"{m.copy.new} verified files kept. Reinsert the card "
                                  "to finish.", error_retry=False), []
    m = replace(m, card=None)
    effects: list[Effect] = []
    m = _next_card(m, effects)
    if m.card is None:
        m = replace(m, state=_work_state(m))
    return m, effects


def link_ready(m: Model, e: Event) -> Result:
    return replace(m, link=_text(e, "url") or m.link,
                   session_id=_text(e, "session_id") or m.session_id,
                   link_expires=_when(e, "expires", m.link_expires)), []


def work_progress(m: Model, e: Event) -> Result:
    stage = _text(e, "stage") or m.work or "processing"
    m = replace(m, work=stage, work_done=_int(e, "done"), work_total=_int(e, "total"),
                work_note="")
    if m.card is None and m.state in (State.IDLE, State.PROCESSING, State.PUBLISHING,
                                      State.WAITING, State.DONE, State.ERROR):
        m = replace(m, state=_work_state(m))
    return m, []


def work_waiting(m: Model, e: Event) -> Result:
    m = replace(m, work="waiting", work_note=_text(e, "reason") or "")
    if m.card is None and m.state in (State.PROCESSING, State.PUBLISHING, State.IDLE,
                                      State.DONE):
        m = replace(m, state=State.WAITING)
    return m, []


def publish_done(m: Model, e: Event) -> Result:
    m = replace(m, work="done", link=_text(e, "url") or m.link,
                photos=_int(e, "photos", m.photos),
                link_expires=_when(e, "expires", m.link_expires))
    if m.card is None and m.state not in (State.LOW_BATTERY,):
        m = replace(m, state=State.DONE)
    return m, []


def work_failed(m: Model, e: Event) -> Result:
    m = replace(m, work="failed", work_note=_text(e, "message") or "")
    if m.card is None:
        m = replace(m, state=State.ERROR, error="Publishing failed",
                    error_hint=m.work_note[:120] or "Check the bucket settings over SSH.",
                    error_retry=True)
    return m, []


def press_copying(m: Model, e: Event) -> Result:
    if debounced(m, e):
        return m, []
    m = replace(m, last_press=e.at)
    if m.cancel_armed_until is not None and e.at <= m.cancel_armed_until and m.card:
        return replace(m, cancel_armed_until=None), [CancelCopy(m.card)]
    return replace(m, cancel_armed_until=e.at + m.policy.cancel_window_s), []


def press_eject(m: Model, e: Event) -> Result:
    if debounced(m, e):
        return m, []
    m = replace(m, last_press=e.at)
    return m, [Eject(m.card)] if m.card else []


def press_dismiss(m: Model, e: Event) -> Result:
    if debounced(m, e):
        return m, []
    m = replace(m, last_press=e.at)
    if m.state == State.DONE:
        return replace(m, state=State.IDLE), []
    return m, []


def press_error(m: Model, e: Event) -> Result:
    if debounced(m, e):
        return m, []
    m = replace(m, last_press=e.at, error="", error_hint="")
    if m.error_retry:
        return replace(m, state=State.PUBLISHING, work="publishing", error_retry=False), [
            StartWork(m.session_id)]
    return replace(m, state=_work_state(m) if m.work != "failed" else State.IDLE), []


def press_low_battery(m: Model, e: Event) -> Result:
    if debounced(m, e):
        return m, []
    return replace(m, last_press=e.at, state=State.IDLE), []


def long_press(m: Model, e: Event) -> Result:
    return replace(m, state=State.CONFIRM_SHUTDOWN, resume=m.state, last_press=e.at,
                   confirm_until=e.at + m.policy.confirm_window_s), []


def confirm_press(m: Model, e: Event) -> Result:
    if debounced(m, e):
        return m, []
    effects: list[Effect] = [CancelCopy(m.card)] if card_busy(m) and m.card else []
    return replace(m, state=State.SHUTTING_DOWN, last_press=e.at), [*effects, Shutdown()]


def battery(m: Model, e: Event) -> Result:
    percent = e.data.get("percent")
    m = replace(m, battery=float(percent) if isinstance(percent, int | float) else None,
                charging=bool(e.data.get("charging", False)))
    if m.state == State.LOW_BATTERY and not battery_too_low(m):
        m = replace(m, state=State.IDLE)
    return m, []


def critical(m: Model, e: Event) -> Result:
    effects: list[Effect] = [CancelCopy(m.card)] if card_busy(m) and m.card else []
    return replace(m, state=State.SHUTTING_DOWN, error="Battery empty"), [*effects, Shutdown()]


def setup_error(m: Model, e: Event) -> Result:
    hint = _text(e, "message") or "see /var/lib/ghostroll/firstboot-error.txt"
    title = _text(e, "title") or "Setup file rejected"  # also a device that cannot start
    return replace(m, state=State.ERROR, error=title, error_hint=hint,
                   error_retry=False), []


def tick(m: Model, e: Event) -> Result:
    if m.cancel_armed_until is not None and e.at > m.cancel_armed_until:
        m = replace(m, cancel_armed_until=None)
    if m.state == State.CONFIRM_SHUTDOWN and m.confirm_until is not None \
            and e.at > m.confirm_until:
        m = replace(m, state=m.resume, confirm_until=None)
    return m, []


# ---------------------------------------------------------------- the table

S, E = State, Ev
ALL_STATES = tuple(State)
CARD_FREE = (S.IDLE, S.CARD_DONE, S.NOTHING_NEW, S.PROCESSING, S.PUBLISHING, S.WAITING, S.DONE,
             S.ERROR, S.LOW_BATTERY)
BUSY = (S.CHECKING, S.COPYING)
WORK_SCREENS = (S.PROCESSING, S.PUBLISHING, S.WAITING, S.DONE)

TABLE: dict[tuple[State, Ev], Handler] = {}


def _rows(states: tuple[State, ...], events: tuple[Ev, ...], handler: Handler) -> None:
    for s in states:
        for ev in events:
            TABLE[(s, ev)] = handler


# card life
_rows(CARD_FREE, (E.CARD_ADDED,), card_added)
_rows(BUSY, (E.CARD_ADDED,), card_added_while_busy)
_rows((S.CONFIRM_SHUTDOWN,), (E.CARD_ADDED,), card_added_while_busy)
_rows((S.SHUTTING_DOWN,), (E.CARD_ADDED,), ignore)
_rows(ALL_STATES, (E.CARD_REMOVED,), card_removed)
_rows((S.SHUTTING_DOWN,), (E.CARD_REMOVED,), ignore)
_rows(BUSY, (E.PHASE_PROGRESS,), phase_progress)
_rows(BUSY, (E.PHASE_DONE,), phase_done)
_rows(BUSY, (E.PHASE_FAILED,), phase_failed)
_rows((S.CONFIRM_SHUTDOWN, S.SHUTTING_DOWN), (E.PHASE_PROGRESS,), ignore)
_rows((S.CONFIRM_SHUTDOWN, S.SHUTTING_DOWN), (E.PHASE_DONE, E.PHASE_FAILED), ignore)
_rows(CARD_FREE, (E.PHASE_PROGRESS, E.PHASE_DONE, E.PHASE_FAILED), unexpected)
# background work: processing, publishing, the link
_rows(ALL_STATES, (E.LINK_READY,), link_ready)
_rows(ALL_STATES, (E.WORK_PROGRESS,), work_progress)
_rows(ALL_STATES, (E.WORK_WAITING,), work_waiting)
_rows(ALL_STATES, (E.PUBLISH_DONE,), publish_done)
_rows(ALL_STATES, (E.WORK_FAILED,), work_failed)
_rows((S.SHUTTING_DOWN,), (E.LINK_READY, E.WORK_PROGRESS, E.WORK_WAITING, E.PUBLISH_DONE,
                           E.WORK_FAILED), ignore)
# the button
_rows((S.COPYING,), (E.BUTTON_SHORT,), press_copying)
_rows((S.CHECKING,), (E.BUTTON_SHORT,), ignore)
_rows((S.CARD_DONE, S.NOTHING_NEW), (E.BUTTON_SHORT,), press_eject)
_rows((S.IDLE, *WORK_SCREENS), (E.BUTTON_SHORT,), press_dismiss)
_rows((S.ERROR,), (E.BUTTON_SHORT,), press_error)
_rows((S.LOW_BATTERY,), (E.BUTTON_SHORT,), press_low_battery)
_rows((S.CONFIRM_SHUTDOWN,), (E.BUTTON_SHORT, E.BUTTON_LONG), confirm_press)
_rows((S.SHUTTING_DOWN,), (E.BUTTON_SHORT, E.BUTTON_LONG), ignore)
_rows(tuple(s for s in ALL_STATES if s not in (S.CONFIRM_SHUTDOWN, S.SHUTTING_DOWN)),
      (E.BUTTON_LONG,), long_press)
# power and time
_rows(ALL_STATES, (E.BATTERY,), battery)
_rows(tuple(s for s in ALL_STATES if s != S.SHUTTING_DOWN), (E.BATTERY_CRITICAL,), critical)
_rows((S.SHUTTING_DOWN,), (E.BATTERY_CRITICAL,), ignore)
_rows(ALL_STATES, (E.TICK,), tick)
_rows(tuple(s for s in ALL_STATES if s not in (*BUSY, S.SHUTTING_DOWN)), (E.SETUP_ERROR,),
      setup_error)
_rows((*BUSY, S.SHUTTING_DOWN), (E.SETUP_ERROR,), ignore)

INITIAL = State.IDLE


def step(model: Model, event: Event) -> Result:
    handler = TABLE[(model.state, event.kind)]
    return handler(model, event)


def validate() -> None:
    """The machine's structure: every pair defined, all states reachable, no traps
    (every state but shutting_down can be left)."""
    missing = [(s, e) for s in State for e in Ev if (s, e) not in TABLE]
    if missing:
        raise AssertionError(f"undefined (state, event) pairs: {missing[:5]}")


validate()
