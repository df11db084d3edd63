"""The appliance state machine: exhaustive over its table, then stories."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from pathlib import Path

import pytest

from ghostroll.appliance import machine as sm
from ghostroll.appliance.diagram import SAMPLE_EVENTS, document, sample_model
from ghostroll.appliance.machine import (
    CancelCopy,
    Eject,
    Ev,
    Event,
    Grant,
    Model,
    Refuse,
    Shutdown,
    StartWork,
    State,
    Wait,
    step,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("kind", list(Ev))
def test_every_pair_is_defined_and_safe(state: State, kind: Ev) -> None:
    handler = sm.TABLE[(state, kind)]
    model = sample_model(state)
    after, effects = step(model, SAMPLE_EVENTS[kind])
    assert isinstance(after, Model) and isinstance(after.state, State)
    if handler is sm.ignore:
        assert after == model and effects == []
    if handler is sm.unexpected:
        assert after == model and len(effects) == 1


def test_structure_all_reachable_and_no_traps() -> None:
    seen, todo = {sm.INITIAL}, deque([sm.INITIAL])
    graph: dict[State, set[State]] = {s: set() for s in State}
    variants = [  # events whose outcome depends on guards, beyond the samples
        (lambda m: m, Event(Ev.PHASE_DONE, 1.0, "sda1", data={"new": 0, "skipped": 5})),
        (lambda m: sm.replace(m, card=None, battery=5.0),
         Event(Ev.CARD_ADDED, 1.0, "sdb1", "EOS")),
        (lambda m: sm.replace(m, work="processing"), Event(Ev.CARD_REMOVED, 1.0, "sda1")),
    ]
    for state in State:
        for kind in Ev:
            graph[state].add(step(sample_model(state), SAMPLE_EVENTS[kind])[0].state)
        for change, event in variants:
            graph[state].add(step(change(sample_model(state)), event)[0].state)
    while todo:
        for nxt in graph[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(State)
    traps = [s for s in State if graph[s] <= {s} and s != State.SHUTTING_DOWN]
    assert traps == []


def test_state_machine_doc_is_current() -> None:
    assert (REPO / "docs" / "state-machine.md").read_text() == document(), \
        "regenerate: python -m ghostroll.appliance.diagram > docs/state-machine.md"


class Story:
    """Drive the machine like the service does, keeping every effect."""

    def __init__(self, **policy: float) -> None:
        self.m = Model(policy=sm.Policy(**policy)) if policy else Model()
        self.effects: list[sm.Effect] = []
        self.t = 0.0

    def __call__(self, kind: Ev, device: str = "", label: str = "", after: float = 1.0,
                 **data: object) -> State:
        self.t += after
        self.m, effects = step(self.m, Event(kind, self.t, device, label, dict(data)))
        self.effects.extend(effects)
        return self.m.state


def test_insert_copy_verify_remove_publish_done() -> None:
    s = Story()
    assert s(Ev.CARD_ADDED, "sda1", "EOS_DIGITAL") == State.CHECKING
    assert s.effects == [Grant("sda1")]
    assert s(Ev.PHASE_PROGRESS, files_read=1, files_to_read=3, session_id="shoot-1") == \
        State.COPYING
    assert s(Ev.LINK_READY, url="HTTPS://B.S3.X/L/TOKEN", expires=datetime(2026, 12, 1)) == \
        State.COPYING
    assert s.m.link == "HTTPS://B.S3.X/L/TOKEN"  # the QR can show from now on
    assert s(Ev.PHASE_DONE, new=3, skipped=1, failed=0, bytes_new=9000) == State.CARD_DONE
    assert StartWork("shoot-1") in s.effects
    assert s.m.receipt == sm.Receipt("EOS_DIGITAL", 3, 1, 0, 9000)
    assert s(Ev.WORK_PROGRESS, stage="publishing", done=1, total=3) == State.CARD_DONE
    assert s(Ev.CARD_REMOVED, "sda1") == State.PUBLISHING
    assert s(Ev.PUBLISH_DONE, url="HTTPS://B.S3.X/L/TOKEN", photos=3) == State.DONE
    assert s.m.photos == 3
    assert s(Ev.BUTTON_SHORT) == State.IDLE


def test_nothing_new_then_eject() -> None:
    s = Story()
    s(Ev.CARD_ADDED, "sda1", "EOS")
    assert s(Ev.PHASE_DONE, new=0, skipped=412) == State.NOTHING_NEW
    assert not any(isinstance(e, StartWork) for e in s.effects)
    s(Ev.BUTTON_SHORT)
    assert s.effects[-1] == Eject("sda1")
    assert s(Ev.CARD_REMOVED, "sda1") == State.IDLE


def test_card_pulled_mid_copy() -> None:
    s = Story()
    s(Ev.CARD_ADDED, "sda1", "EOS")
    s(Ev.PHASE_PROGRESS, files_read=5, files_to_read=10, new=4)
    assert s(Ev.CARD_REMOVED, "sda1") == State.ERROR
    assert "Card removed" in s.m.error and "4 verified files kept" in s.m.error_hint
    assert s(Ev.PHASE_FAILED, "sda1", reason="card_removed") == State.ERROR  # late report
    assert s(Ev.BUTTON_SHORT) == State.IDLE  # dismiss


def test_low_battery_refuses_unless_charging() -> None:
    s = Story()
    s(Ev.BATTERY, percent=9.0, charging=False)
    assert s(Ev.CARD_ADDED, "sda1", "EOS") == State.LOW_BATTERY
    assert isinstance(s.effects[-1], Refuse) and "9 %" in s.effects[-1].reason
    assert s(Ev.BATTERY, percent=9.0, charging=True) == State.IDLE
    assert s(Ev.CARD_ADDED, "sda1", "EOS") == State.CHECKING
    assert s.effects[-1] == Grant("sda1")


def test_press_twice_cancels_and_single_press_times_out() -> None:
    s = Story()
    s(Ev.CARD_ADDED, "sda1", "EOS")
    s(Ev.PHASE_PROGRESS, files_read=1, files_to_read=9)
    s(Ev.BUTTON_SHORT)
    assert s.m.cancel_armed_until is not None  # "press again to cancel"
    s(Ev.TICK, after=6.0)
    assert s.m.cancel_armed_until is None  # window passed, nothing cancelled
    s(Ev.BUTTON_SHORT)
    s(Ev.BUTTON_SHORT, after=0.1)  # a bounce: ignored
    assert not any(isinstance(e, CancelCopy) for e in s.effects)
    s(Ev.BUTTON_SHORT, after=1.0)
    assert s.effects[-1] == CancelCopy("sda1")
    assert s(Ev.PHASE_FAILED, "sda1", reason="cancelled", session_id="shoot-1") == \
        State.CARD_DONE
    assert s.m.receipt is not None and "cancelled" in s.m.receipt.note
    assert StartWork("shoot-1") in s.effects  # what was verified is still published


def test_long_press_confirms_then_shuts_down_or_times_out() -> None:
    s = Story()
    assert s(Ev.BUTTON_LONG) == State.CONFIRM_SHUTDOWN
    assert s(Ev.TICK, after=11.0) == State.IDLE  # no confirmation: back
    s(Ev.CARD_ADDED, "sda1", "EOS")
    s(Ev.PHASE_PROGRESS, files_read=1, files_to_read=9)
    assert s(Ev.BUTTON_LONG) == State.CONFIRM_SHUTDOWN
    assert s(Ev.BUTTON_SHORT) == State.SHUTTING_DOWN
    assert s.effects[-2:] == [CancelCopy("sda1"), Shutdown()]


def test_publish_error_retries_on_button() -> None:
    s = Story()
    s(Ev.WORK_PROGRESS, stage="publishing", done=0, total=3)
    s.m = sm.replace(s.m, session_id="shoot-1")
    assert s(Ev.WORK_FAILED, message="AccessDenied: check the bucket policy") == State.ERROR
    assert s.m.error_retry
    assert s(Ev.BUTTON_SHORT) == State.PUBLISHING
    assert s.effects[-1] == StartWork("shoot-1")


def test_second_card_waits_its_turn() -> None:
    s = Story()
    s(Ev.CARD_ADDED, "sda1", "EOS")
    s(Ev.PHASE_PROGRESS, files_read=1, files_to_read=9)
    s(Ev.CARD_ADDED, "sdb1", "NIKON")
    assert isinstance(s.effects[-1], Wait) and "EOS" in s.effects[-1].reason
    assert s.m.waiting_card == "sdb1" and s.m.state == State.COPYING
    s(Ev.PHASE_DONE, "sda1", new=9, session_id="shoot-1")
    assert s.effects[-1] == Grant("sdb1")
    assert s.m.card == "sdb1" and s.m.state == State.CHECKING


def test_network_down_waits_then_resumes() -> None:
    s = Story()
    s(Ev.WORK_PROGRESS, stage="publishing", done=2, total=9)
    assert s(Ev.WORK_WAITING, reason="no network: 7 uploads queued") == State.WAITING
    assert s(Ev.WORK_PROGRESS, stage="publishing", done=3, total=9) == State.PUBLISHING


def test_critical_battery_stops_the_copy_and_shuts_down() -> None:
    s = Story()
    s(Ev.CARD_ADDED, "sda1", "EOS")
    s(Ev.PHASE_PROGRESS, files_read=1, files_to_read=9)
    assert s(Ev.BATTERY_CRITICAL) == State.SHUTTING_DOWN
    assert s.effects[-2:] == [CancelCopy("sda1"), Shutdown()]
