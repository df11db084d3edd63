"""The machine's guards and handlers: `(model, event) -> (model, effects)`, pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from ghostroll.appliance import protocol as p
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
from ghostroll.appliance.model import Event, Model, Receipt, State

Result = tuple[Model, list[Effect]]
Handler = Callable[[Model, Event], Result]


# ---------------------------------------------------------------- event data

M = TypeVar("M", bound=p.Message)


def _msg(e: Event, cls: type[M]) -> M:
    """The event's message as the type the table routed it by."""
    if not isinstance(e.msg, cls):
        raise TypeError(f"{cls.type} handler given {e.msg.type}")
    return e.msg


def _when(text: str | None, default: datetime | None) -> datetime | None:
    if not text:
        return default
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return default


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
    return m, [LogProblem(f"message {e.msg.type} is not expected in state {m.state}")]


def card_added(m: Model, e: Event) -> Result:
    """A card in a state where no copy runs: a finished card still in its reader does
    not hold the new one back."""
    hello = _msg(e, p.Hello)
    if battery_too_low(m):
        return (replace(m, state=State.LOW_BATTERY, card=None, label=hello.label),
                [Refuse(e.device, f"battery at {m.battery:.0f} %, below "
                                  f"{m.policy.battery_min:.0f} %: charge, then reinsert")])
    return (replace(m, state=State.CHECKING, card=e.device, label=hello.label, copy=p.Progress(),
                    receipt=None, error="", cancel_armed_until=None), [Grant(e.device)])


def card_added_while_busy(m: Model, e: Event) -> Result:
    if m.card == e.device:
        return m, []
    return (replace(m, waiting_card=e.device, waiting_label=_msg(e, p.Hello).label),
            [Wait(e.device, f"another card ({m.label or m.card}) is being copied")])


def phase_progress(m: Model, e: Event) -> Result:
    g = _msg(e, p.Progress)
    return replace(m, state=State.COPYING, copy=g,
                   session_id=g.session_id or m.session_id), []


def _next_card(m: Model, effects: list[Effect]) -> Model:
    """The waiting card, if any, gets its turn."""
    if m.waiting_card is None:
        return m
    effects.append(Grant(m.waiting_card))
    return replace(m, state=State.CHECKING, card=m.waiting_card, label=m.waiting_label,
                   waiting_card=None, waiting_label="", copy=p.Progress())


def phase_done(m: Model, e: Event) -> Result:
    done = _msg(e, p.Done)
    new, failed = done.new, done.failed
    receipt = Receipt(m.label, new, done.skipped, failed, done.bytes_new)
    session = done.session_id or m.session_id
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
    failure = _msg(e, p.Failed)
    reason, message = failure.reason, failure.message
    copied = m.copy.new
    effects: list[Effect] = []
    if reason == "cancelled":
        session = failure.session_id or m.session_id
        receipt = Receipt(m.label, m.copy.new, m.copy.skipped, m.copy.failed, m.copy.bytes_new,
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
    device = _msg(e, p.CardGone).device
    if device == m.waiting_card:
        return replace(m, waiting_card=None, waiting_label=""), []
    if device != m.card:
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
    link = _msg(e, p.LinkReady)
    return replace(m, link=link.url or m.link, session_id=link.session_id or m.session_id,
                   link_expires=_when(link.expires, m.link_expires)), []


def work_progress(m: Model, e: Event) -> Result:
    g = _msg(e, p.WorkProgress)
    stage = "publishing" if g.stage == "publishing" else "processing"
    m = replace(m, work=stage, work_done=g.done, work_total=g.total, work_note="")
    if m.card is None and m.state in (State.IDLE, State.PROCESSING, State.PUBLISHING,
                                      State.WAITING, State.DONE, State.ERROR):
        m = replace(m, state=_work_state(m))
    return m, []


def work_waiting(m: Model, e: Event) -> Result:
    m = replace(m, work="waiting", work_note=_msg(e, p.WorkWaiting).reason)
    if m.card is None and m.state in (State.PROCESSING, State.PUBLISHING, State.IDLE,
                                      State.DONE):
        m = replace(m, state=State.WAITING)
    return m, []


def publish_done(m: Model, e: Event) -> Result:
    done = _msg(e, p.WorkDone)
    m = replace(m, work="done", link=done.url or m.link, photos=done.photos,
                link_expires=_when(done.expires, m.link_expires))
    if m.card is None and m.state not in (State.LOW_BATTERY,):
        m = replace(m, state=State.DONE)
    return m, []


def work_failed(m: Model, e: Event) -> Result:
    m = replace(m, work="failed", work_note=_msg(e, p.WorkFailed).message)
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


def battery_critical(m: Model) -> bool:
    return (m.battery is not None and not m.charging
            and m.battery <= m.policy.battery_critical)


def battery(m: Model, e: Event) -> Result:
    """A reading; at the critical charge (not charging) the copy stops after its current
    file and the device shuts down, before the power fails mid-write."""
    reading = _msg(e, p.Battery)
    m = replace(m, battery=reading.percent, charging=reading.charging)
    if m.state == State.SHUTTING_DOWN:
        return m, []
    if battery_critical(m):
        effects: list[Effect] = [CancelCopy(m.card)] if card_busy(m) and m.card else []
        return (replace(m, state=State.SHUTTING_DOWN, error="Battery empty"),
                [*effects, Shutdown()])
    if m.state == State.LOW_BATTERY and not battery_too_low(m):
        m = replace(m, state=State.IDLE)
    return m, []


def setup_error(m: Model, e: Event) -> Result:
    problem = _msg(e, p.SetupError)
    hint = problem.message or "see /var/lib/ghostroll/firstboot-error.txt"
    title = problem.title or "Setup file rejected"  # also a device that cannot start
    return replace(m, state=State.ERROR, error=title, error_hint=hint,
                   error_retry=False), []


def tick(m: Model, e: Event) -> Result:
    if m.cancel_armed_until is not None and e.at > m.cancel_armed_until:
        m = replace(m, cancel_armed_until=None)
    if m.state == State.CONFIRM_SHUTDOWN and m.confirm_until is not None \
            and e.at > m.confirm_until:
        m = replace(m, state=m.resume, confirm_until=None)
    return m, []
