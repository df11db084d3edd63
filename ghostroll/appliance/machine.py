"""The appliance's state machine. Pure: no I/O, no clock (time comes in events).

`step(model, event) -> (model, effects)`. The `TABLE` below maps every (state, event
kind) pair to a handler: a transition, `ignore` (explicitly nothing), or `unexpected`
(a bug elsewhere: logged, nothing changes). `validate()` runs at import: one initial
state, every pair defined, every state reachable, none a trap.

The screen shows `model.state`; background work (processing, publishing) and the share
link live in the model beside it, so the "safe to remove" receipt can say "uploading in
background: 37 %" and the QR appears the moment the link exists.

The vocabulary is in `model.py`, the effects in `effects.py`, the handlers in
`transitions.py`; their names are re-exported here for the callers of `machine`.
"""

from __future__ import annotations

from dataclasses import replace  # noqa: F401 - re-exported

from ghostroll.appliance.effects import (  # noqa: F401 - re-exported
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
from ghostroll.appliance.model import (  # noqa: F401 - re-exported
    Copy,
    Ev,
    Event,
    Model,
    Policy,
    Receipt,
    State,
)
from ghostroll.appliance.transitions import (
    Handler,
    Result,
    battery,
    card_added,
    card_added_while_busy,
    card_removed,
    confirm_press,
    critical,
    ignore,
    link_ready,
    long_press,
    phase_done,
    phase_failed,
    phase_progress,
    press_copying,
    press_dismiss,
    press_eject,
    press_error,
    press_low_battery,
    publish_done,
    setup_error,
    tick,
    unexpected,
    work_failed,
    work_progress,
    work_waiting,
)

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
