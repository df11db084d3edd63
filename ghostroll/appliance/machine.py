"""The appliance's state machine. Pure: no I/O, no clock (time comes in events).

`step(model, event) -> (model, effects)`, where the event wraps one `protocol` message.
`TABLE` is built from the literal `ROWS` below: for each (state, message type) one
`Row` with its handler and the states it may lead to (`targets`, `SAME` for staying).
Building it raises on a duplicate pair; `step()` raises when a handler leaves for a
state its row does not declare; `validate()` (run at import) checks that every pair is
defined, every state is reachable from `INITIAL` through the declared targets, and no
state is a trap (one whose only ways out are shutting down). The diagram in
docs/state-machine.md is drawn from the declared targets (`diagram.py`).

A handler is a transition, `ignore` (explicitly nothing) or `unexpected` (a bug
elsewhere: logged, nothing changes). The screen shows `model.state`; background work
(processing, publishing) and the share link live in the model beside it, so the "safe
to remove" receipt can say "uploading in background: 37 %" and the QR appears the moment
the link exists.

The vocabulary is in `model.py`, the effects in `effects.py`, the handlers in
`transitions.py`; their names are re-exported here for the callers of `machine`."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace  # noqa: F401 - replace re-exported

from ghostroll.appliance import protocol as p
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

INITIAL = State.IDLE
SAME = "same"  # a target: the state the row starts from

# the messages the machine takes; every (state, one of these) pair has a row
INPUTS: tuple[type[p.Message], ...] = (
    p.Hello, p.CardGone, p.Progress, p.Done, p.Failed, p.LinkReady, p.WorkProgress,
    p.WorkWaiting, p.WorkDone, p.WorkFailed, p.Press, p.Hold, p.Battery, p.Tick,
    p.SetupError)


@dataclass(frozen=True)
class Row:
    handler: Handler
    targets: frozenset[State]  # every state the handler may return, SAME resolved


S = State
ALL = tuple(State)
BUSY = (S.CHECKING, S.COPYING)
CARD_FREE = (S.IDLE, S.CARD_DONE, S.NOTHING_NEW, S.PROCESSING, S.PUBLISHING, S.WAITING, S.DONE,
             S.ERROR, S.LOW_BATTERY)
WORK_SCREENS = (S.PROCESSING, S.PUBLISHING, S.WAITING, S.DONE)
WORK_VIEW = (S.IDLE, *WORK_SCREENS, S.ERROR)  # where work progress changes the screen
RUNNING = tuple(s for s in ALL if s != S.SHUTTING_DOWN)
NOT_ASKING = tuple(s for s in RUNNING if s != S.CONFIRM_SHUTDOWN)
WORK = (p.LinkReady, p.WorkProgress, p.WorkWaiting, p.WorkDone, p.WorkFailed)
PHASE = (p.Progress, p.Done, p.Failed)

# (states, message types, handler, targets): the whole machine on one screen
ROWS: tuple[tuple[tuple[State, ...], tuple[type[p.Message], ...], Handler,
                  tuple[State | str, ...]], ...] = (
    # a card arrives and is copied
    (CARD_FREE, (p.Hello,), card_added, (S.CHECKING, S.LOW_BATTERY)),
    ((*BUSY, S.CONFIRM_SHUTDOWN), (p.Hello,), card_added_while_busy, (SAME,)),
    ((S.SHUTTING_DOWN,), (p.Hello,), ignore, (SAME,)),
    (BUSY, (p.Progress,), phase_progress, (S.COPYING,)),
    (BUSY, (p.Done,), phase_done, (S.CARD_DONE, S.NOTHING_NEW, S.CHECKING)),
    (BUSY, (p.Failed,), phase_failed, (S.CARD_DONE, S.ERROR, S.CHECKING)),
    ((S.CONFIRM_SHUTDOWN, S.SHUTTING_DOWN), PHASE, ignore, (SAME,)),
    (CARD_FREE, PHASE, unexpected, (SAME,)),
    # a card goes away
    (BUSY, (p.CardGone,), card_removed, (SAME, S.ERROR)),
    (CARD_FREE, (p.CardGone,), card_removed, (SAME, S.CHECKING, S.IDLE, *WORK_SCREENS, S.ERROR)),
    ((S.CONFIRM_SHUTDOWN,), (p.CardGone,), card_removed, (SAME,)),
    ((S.SHUTTING_DOWN,), (p.CardGone,), ignore, (SAME,)),
    # background work: processing, publishing, the link
    (RUNNING, (p.LinkReady,), link_ready, (SAME,)),
    (WORK_VIEW, (p.WorkProgress,), work_progress, (SAME, S.PROCESSING, S.PUBLISHING)),
    (tuple(s for s in RUNNING if s not in WORK_VIEW), (p.WorkProgress,), work_progress,
     (SAME,)),
    ((S.PROCESSING, S.PUBLISHING, S.IDLE, S.DONE), (p.WorkWaiting,), work_waiting,
     (SAME, S.WAITING)),
    (tuple(s for s in RUNNING if s not in (S.PROCESSING, S.PUBLISHING, S.IDLE, S.DONE)),
     (p.WorkWaiting,), work_waiting, (SAME,)),
    (tuple(s for s in RUNNING if s not in BUSY), (p.WorkDone,), publish_done, (SAME, S.DONE)),
    (tuple(s for s in RUNNING if s not in BUSY), (p.WorkFailed,), work_failed,
     (SAME, S.ERROR)),
    (BUSY, (p.WorkDone,), publish_done, (SAME,)),  # a card is in front: the screen stays
    (BUSY, (p.WorkFailed,), work_failed, (SAME,)),
    ((S.SHUTTING_DOWN,), WORK, ignore, (SAME,)),
    # the button
    ((S.COPYING,), (p.Press,), press_copying, (SAME,)),
    ((S.CHECKING,), (p.Press,), ignore, (SAME,)),
    ((S.CARD_DONE, S.NOTHING_NEW), (p.Press,), press_eject, (SAME,)),
    ((S.IDLE, *WORK_SCREENS), (p.Press,), press_dismiss, (SAME, S.IDLE)),
    ((S.ERROR,), (p.Press,), press_error, (SAME, S.IDLE, *WORK_SCREENS)),
    ((S.LOW_BATTERY,), (p.Press,), press_low_battery, (SAME, S.IDLE)),
    (NOT_ASKING, (p.Hold,), long_press, (S.CONFIRM_SHUTDOWN,)),
    ((S.CONFIRM_SHUTDOWN,), (p.Press, p.Hold), confirm_press, (SAME, S.SHUTTING_DOWN)),
    ((S.SHUTTING_DOWN,), (p.Press, p.Hold), ignore, (SAME,)),
    # power and time
    ((S.LOW_BATTERY,), (p.Battery,), battery, (SAME, S.IDLE, S.SHUTTING_DOWN)),
    (tuple(s for s in ALL if s != S.LOW_BATTERY), (p.Battery,), battery,
     (SAME, S.SHUTTING_DOWN)),
    (NOT_ASKING, (p.Tick,), tick, (SAME,)),
    ((S.CONFIRM_SHUTDOWN,), (p.Tick,), tick, (SAME, *NOT_ASKING)),
    ((S.SHUTTING_DOWN,), (p.Tick,), ignore, (SAME,)),
    (tuple(s for s in RUNNING if s not in BUSY), (p.SetupError,), setup_error, (S.ERROR,)),
    ((*BUSY, S.SHUTTING_DOWN), (p.SetupError,), ignore, (SAME,)),
)


def build_table(rows: Iterable[tuple[tuple[State, ...], tuple[type[p.Message], ...], Handler,
                                     tuple[State | str, ...]]]
                ) -> dict[tuple[State, type[p.Message]], Row]:
    """The table from its rows; a (state, message type) pair given twice is refused."""
    table: dict[tuple[State, type[p.Message]], Row] = {}
    for states, kinds, handler, targets in rows:
        for state in states:
            resolved = frozenset(state if t == SAME else State(t) for t in targets)
            for kind in kinds:
                if (state, kind) in table:
                    raise ValueError(f"({state}, {kind.type}) is in the table twice")
                table[(state, kind)] = Row(handler, resolved)
    return table


TABLE = build_table(ROWS)


class UndeclaredTransition(AssertionError):
    """A handler left for a state its table row does not declare (a bug)."""


def step(model: Model, event: Event) -> Result:
    row = TABLE[(model.state, event.kind)]
    after, effects = row.handler(model, event)
    if after.state not in row.targets:
        raise UndeclaredTransition(f"{row.handler.__name__} went from {model.state} to "
                                   f"{after.state}, not one of its declared targets")
    return after, effects


def graph(table: dict[tuple[State, type[p.Message]], Row]) -> dict[State, set[State]]:
    """Every state's declared next states (itself left out)."""
    out: dict[State, set[State]] = {s: set() for s in State}
    for (state, _), row in table.items():
        out[state] |= row.targets - {state}
    return out


def validate(table: dict[tuple[State, type[p.Message]], Row] | None = None) -> None:
    """Every pair defined; every state reachable from INITIAL; no trap: each state but
    shutting_down has a way out other than towards shutting down."""
    table = TABLE if table is None else table
    missing = [(s, k.type) for s in State for k in INPUTS if (s, k) not in table]
    if missing:
        raise AssertionError(f"undefined (state, message) pairs: {missing[:5]}")
    edges = graph(table)
    seen, todo = {INITIAL}, deque([INITIAL])
    while todo:
        for nxt in edges[todo.popleft()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    if unreachable := [s.value for s in State if s not in seen]:
        raise AssertionError(f"states not reachable from {INITIAL}: {unreachable}")
    shutdown = {S.CONFIRM_SHUTDOWN, S.SHUTTING_DOWN}
    traps = [s.value for s in State if s != S.SHUTTING_DOWN and not edges[s] - shutdown]
    if traps:
        raise AssertionError(f"states with no way out but shutting down: {traps}")


validate()
