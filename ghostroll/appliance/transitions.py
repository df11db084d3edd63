"""The machine's guards and handlers: `(model, event) -> (model, effects)`, pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from ghostroll.appliance.effects import (
    CancelCopy,
    Effect,
    Eject,
    Grant,
    LogProblem,
    Refuse,
    Shutdown,
    StartWork,
    Wait,
)
from ghostroll.appliance.model import Copy, Event, Model, Receipt, State

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
