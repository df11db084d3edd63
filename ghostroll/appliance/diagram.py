"""The state machine drawn from its own table: a neutral graph, then Mermaid and a
Markdown table. `python -m ghostroll.appliance.diagram > docs/state-machine.md`
regenerates the doc; a test fails when the checked-in doc is stale."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ghostroll.appliance import machine as sm
from ghostroll.appliance.machine import Ev, Event, Model, State

SAMPLE_EVENTS: dict[Ev, Event] = {
    Ev.CARD_ADDED: Event(Ev.CARD_ADDED, 1.0, "sda1", "EOS_DIGITAL"),
    Ev.CARD_REMOVED: Event(Ev.CARD_REMOVED, 1.0, "sda1"),
    Ev.PHASE_PROGRESS: Event(Ev.PHASE_PROGRESS, 1.0, "sda1",
                             data={"files_read": 3, "files_to_read": 10}),
    Ev.PHASE_DONE: Event(Ev.PHASE_DONE, 1.0, "sda1",
                         data={"new": 10, "skipped": 2, "session_id": "shoot-x"}),
    Ev.PHASE_FAILED: Event(Ev.PHASE_FAILED, 1.0, "sda1",
                           data={"reason": "card_removed", "message": "I/O error"}),
    Ev.LINK_READY: Event(Ev.LINK_READY, 1.0, data={"url": "HTTPS://B/L/X",
                                                   "expires": datetime(2026, 12, 1)}),
    Ev.WORK_PROGRESS: Event(Ev.WORK_PROGRESS, 1.0, data={"stage": "publishing", "done": 1,
                                                         "total": 10}),
    Ev.WORK_WAITING: Event(Ev.WORK_WAITING, 1.0, data={"reason": "no network"}),
    Ev.PUBLISH_DONE: Event(Ev.PUBLISH_DONE, 1.0, data={"url": "HTTPS://B/L/X", "photos": 10}),
    Ev.WORK_FAILED: Event(Ev.WORK_FAILED, 1.0, data={"message": "access denied"}),
    Ev.BUTTON_SHORT: Event(Ev.BUTTON_SHORT, 10.0),
    Ev.BUTTON_LONG: Event(Ev.BUTTON_LONG, 10.0),
    Ev.BATTERY: Event(Ev.BATTERY, 1.0, data={"percent": 80.0, "charging": False}),
    Ev.BATTERY_CRITICAL: Event(Ev.BATTERY_CRITICAL, 1.0),
    Ev.TICK: Event(Ev.TICK, 100.0),
    Ev.SETUP_ERROR: Event(Ev.SETUP_ERROR, 1.0, data={"message": "wifi_psk too short"}),
}


def sample_model(state: State) -> Model:
    """A typical model in `state`, for drawing and for exhaustive tests."""
    card = None if state in (State.IDLE, State.PROCESSING, State.PUBLISHING, State.WAITING,
                             State.DONE, State.LOW_BATTERY) else "sda1"
    return replace(Model(), state=state, card=card, label="EOS_DIGITAL" if card else "",
                   session_id="shoot-x", resume=State.IDLE, confirm_until=20.0,
                   error_retry=state == State.ERROR)


def edges() -> list[tuple[State, Ev, State, str]]:
    """(from, event, to, handler) for every table entry that is a real transition."""
    out = []
    for (state, kind), handler in sm.TABLE.items():
        if handler in (sm.ignore, sm.unexpected):
            continue
        after, _ = handler(sample_model(state), SAMPLE_EVENTS[kind])
        out.append((state, kind, after.state, handler.__name__))
    return out


def mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {sm.INITIAL.value}"]
    seen = set()
    for src, kind, dst, _ in edges():
        if src == dst or (src, dst, kind) in seen:
            continue
        seen.add((src, dst, kind))
        lines.append(f"    {src.value} --> {dst.value}: {kind.value}")
    return "\n".join(lines)


def markdown() -> str:
    rows = ["| state | event | handler | next state |", "|---|---|---|---|"]
    for (state, kind), handler in sm.TABLE.items():
        if handler is sm.ignore:
            continue
        target = "" if handler is sm.unexpected else \
            handler(sample_model(state), SAMPLE_EVENTS[kind])[0].state.value
        rows.append(f"| {state.value} | {kind.value} | {handler.__name__} | {target} |")
    return "\n".join(rows)


def document() -> str:
    return (
        "# Appliance state machine\n\n"
        "Generated from `ghostroll/appliance/machine.py` by "
        "`python -m ghostroll.appliance.diagram > docs/state-machine.md`; a test fails when "
        "this file is stale. Every (state, event) pair is in the table: a transition, "
        "`ignore` (explicitly nothing; not listed below) or `unexpected` (logged, nothing "
        "changes). Self-loops update the model (progress, battery, link) without changing "
        "the screen. Next states are for a typical model in that state.\n\n"
        f"```mermaid\n{mermaid()}\n```\n\n## Table\n\n{markdown()}\n")


if __name__ == "__main__":
    print(document(), end="")
