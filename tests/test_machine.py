"""The appliance state machine: exhaustive over its table, then stories."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ghostroll.appliance import machine as sm
from ghostroll.appliance import protocol as p
from ghostroll.appliance.diagram import document
from ghostroll.appliance.machine import (
    CancelCopy,
    Eject,
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
from ghostroll.appliance.screens import Screen, status_document

REPO = Path(__file__).resolve().parents[1]

SAMPLES: dict[type[p.Message], p.Message] = {
    p.Hello: p.Hello("sda1", "EOS_DIGITAL", "fat:1234-5678", "/media/card"),
    p.CardGone: p.CardGone("sda1"),
    p.Progress: p.Progress(files_read=3, files_to_read=10),
    p.Done: p.Done("shoot-x", new=10, skipped=2, failed=0, bytes_new=100, seconds=1.0),
    p.Failed: p.Failed("card_removed", "I/O error"),
    p.LinkReady: p.LinkReady("HTTPS://B/L/X", "2026-12-01T00:00:00+00:00"),
    p.WorkProgress: p.WorkProgress("publishing", 1, 10),
    p.WorkWaiting: p.WorkWaiting("no network"),
    p.WorkDone: p.WorkDone(10, "HTTPS://B/L/X"),
    p.WorkFailed: p.WorkFailed("access denied"),
    p.Press: p.Press(),
    p.Hold: p.Hold(),
    p.Battery: p.Battery(80.0, charging=False),
    p.Tick: p.Tick(),
    p.SetupError: p.SetupError("wifi_psk too short"),
}
VARIANTS: list[p.Message] = [  # outcomes that depend on guards, beyond the samples
    p.Done("shoot-x", new=0, skipped=5, failed=0, bytes_new=0, seconds=1.0),
    p.Failed("cancelled", "", "shoot-x"), p.Failed("disk_full", "full"),
    p.Battery(3.0), p.Battery(9.0), p.WorkProgress("processing", 0, 1), p.CardGone("sdb1"),
]


def sample_model(state: State, **change: object) -> Model:
    card = None if state in (State.IDLE, State.PROCESSING, State.PUBLISHING, State.WAITING,
                             State.DONE, State.LOW_BATTERY) else "sda1"
    model = replace(Model(), state=state, card=card, label="EOS_DIGITAL" if card else "",
                    session_id="shoot-x", resume=State.IDLE, confirm_until=20.0,
                    error_retry=state == State.ERROR)
    return replace(model, **change)  # type: ignore[arg-type]


def test_samples_cover_every_input() -> None:
    assert set(SAMPLES) == set(sm.INPUTS)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("kind", sm.INPUTS, ids=lambda k: k.type)
def test_every_pair_is_defined_and_lands_on_a_declared_target(
        state: State, kind: type[p.Message]) -> None:
    row = sm.TABLE[(state, kind)]
    for message in [SAMPLES[kind], *(v for v in VARIANTS if isinstance(v, kind))]:
        models = [sample_model(state), sample_model(state, work="processing"),
                  sample_model(state, battery=10.0)]
        if state not in (State.CHECKING, State.COPYING):  # a card is always set there
            models.append(sample_model(state, card=None))
        for model in models:
            after, effects = step(model, Event(message, 10.0, "sda1"))  # raises if undeclared
            assert after.state in row.targets
            if row.handler is sm.ignore:
                assert after == model and effects == []
            if row.handler is sm.unexpected:
                assert after == model and len(effects) == 1


def test_validate_checks_duplicates_reachability_and_traps() -> None:
    sm.validate()
    with pytest.raises(ValueError, match="twice"):
        sm.build_table([*sm.ROWS, ((State.IDLE,), (p.Tick,), sm.ignore, (sm.SAME,))])
    low = State.LOW_BATTERY
    unreachable = {key: sm.Row(row.handler, row.targets - {low} if key[0] != low
                               else row.targets) for key, row in sm.TABLE.items()}
    with pytest.raises(AssertionError, match=r"not reachable.*low_battery"):
        sm.validate(unreachable)
    trapped = {key: sm.Row(row.handler, frozenset({low, State.CONFIRM_SHUTDOWN})
                           if key[0] == low else row.targets)
               for key, row in sm.TABLE.items()}
    with pytest.raises(AssertionError, match=r"no way out.*low_battery"):
        sm.validate(trapped)
    with pytest.raises(AssertionError, match="undefined"):
        sm.validate({k: v for k, v in sm.TABLE.items() if k != (State.IDLE, p.Tick)})



def test_a_handler_leaving_for_an_undeclared_state_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert sm.TABLE[(State.IDLE, p.Tick)].targets == {State.IDLE}
    table = {**sm.TABLE, (State.IDLE, p.Tick): sm.Row(sm.tick, frozenset({State.ERROR}))}
    monkeypatch.setattr(sm, "TABLE", table)
    with pytest.raises(sm.UndeclaredTransition, match="declared"):
        step(Model(), Event(p.Tick(), 1.0))


def test_state_machine_doc_is_current() -> None:
    assert (REPO / "docs" / "state-machine.md").read_text() == document(), \
        "regenerate: python -m ghostroll.appliance.diagram > docs/state-machine.md"


def hello(device: str, label: str) -> p.Hello:
    return p.Hello(device, label, "fat:1234-5678", f"/media/{device}")


def done(new: int, skipped: int = 0, bytes_new: int = 0,
         session_id: str | None = "shoot-1") -> p.Done:
    return p.Done(session_id, new=new, skipped=skipped, failed=0, bytes_new=bytes_new,
                  seconds=1.0)


class Story:
    """Drive the machine like the service does, keeping every effect."""

    def __init__(self, **policy: float) -> None:
        self.m = Model(policy=sm.Policy(**policy)) if policy else Model()
        self.effects: list[sm.Effect] = []
        self.t = 0.0

    def __call__(self, message: p.Message, device: str = "sda1",
                 after: float = 1.0) -> State:
        self.t += after
        self.m, effects = step(self.m, Event(message, self.t, device))
        self.effects.extend(effects)
        return self.m.state


def test_insert_copy_verify_remove_publish_done() -> None:
    s = Story()
    assert s(hello("sda1", "EOS_DIGITAL")) == State.CHECKING
    assert s.effects == [Grant("sda1")]
    assert s(p.Progress(files_read=1, files_to_read=3, session_id="shoot-1")) == \
        State.COPYING
    assert s(p.LinkReady("HTTPS://B.S3.X/L/TOKEN", "2026-12-01T00:00:00")) == \
        State.COPYING
    assert s.m.link == "HTTPS://B.S3.X/L/TOKEN"  # the QR can show from now on
    assert s(done(new=3, skipped=1, bytes_new=9000, session_id=None)) == State.CARD_DONE
    assert StartWork("shoot-1") in s.effects
    assert s.m.receipt == sm.Receipt("EOS_DIGITAL", 3, 1, 0, 9000)
    assert s(p.WorkProgress("publishing", 1, 3)) == State.CARD_DONE
    assert s(p.CardGone("sda1")) == State.PUBLISHING
    assert s(p.WorkDone(3, "HTTPS://B.S3.X/L/TOKEN")) == State.DONE
    assert s.m.photos == 3
    assert s(p.Press()) == State.IDLE


def test_nothing_new_then_eject() -> None:
    s = Story()
    s(hello("sda1", "EOS"))
    assert s(done(new=0, skipped=412, session_id=None)) == State.NOTHING_NEW
    assert not any(isinstance(e, StartWork) for e in s.effects)
    s(p.Press())
    assert s.effects[-1] == Eject("sda1")
    assert s(p.CardGone("sda1")) == State.IDLE


def test_card_pulled_mid_copy() -> None:
    s = Story()
    s(hello("sda1", "EOS"))
    s(p.Progress(files_read=5, files_to_read=10, new=4))
    assert s(p.CardGone("sda1")) == State.ERROR
    assert "Card removed" in s.m.error and "4 verified files kept" in s.m.error_hint
    assert s(p.Failed("card_removed", "")) == State.ERROR  # late report
    assert s(p.Press()) == State.IDLE  # dismiss


def test_low_battery_refuses_unless_charging() -> None:
    s = Story()
    s(p.Battery(9.0, charging=False))
    assert s(hello("sda1", "EOS")) == State.LOW_BATTERY
    assert isinstance(s.effects[-1], Refuse) and "9 %" in s.effects[-1].reason
    assert s(p.Battery(9.0, charging=True)) == State.IDLE
    assert s(hello("sda1", "EOS")) == State.CHECKING
    assert s.effects[-1] == Grant("sda1")


def test_press_twice_cancels_and_single_press_times_out() -> None:
    s = Story()
    s(hello("sda1", "EOS"))
    s(p.Progress(files_read=1, files_to_read=9))
    s(p.Press())
    assert s.m.cancel_armed_until is not None  # "press again to cancel"
    s(p.Tick(), after=6.0)
    assert s.m.cancel_armed_until is None  # window passed, nothing cancelled
    s(p.Press())
    s(p.Press(), after=0.1)  # a bounce: ignored
    assert not any(isinstance(e, CancelCopy) for e in s.effects)
    s(p.Press(), after=1.0)
    assert s.effects[-1] == CancelCopy("sda1")
    assert s(p.Failed("cancelled", "", "shoot-1")) == \
        State.CARD_DONE
    assert s.m.receipt is not None and "cancelled" in s.m.receipt.note
    assert StartWork("shoot-1") in s.effects  # what was verified is still published


def test_long_press_confirms_then_shuts_down_or_times_out() -> None:
    s = Story()
    assert s(p.Hold()) == State.CONFIRM_SHUTDOWN
    assert s(p.Tick(), after=11.0) == State.IDLE  # no confirmation: back
    s(hello("sda1", "EOS"))
    s(p.Progress(files_read=1, files_to_read=9))
    assert s(p.Hold()) == State.CONFIRM_SHUTDOWN
    assert s(p.Press()) == State.SHUTTING_DOWN
    assert s.effects[-2:] == [CancelCopy("sda1"), Shutdown()]


def test_publish_error_retries_on_button() -> None:
    s = Story()
    s(p.WorkProgress("publishing", 0, 3))
    s.m = sm.replace(s.m, session_id="shoot-1")
    assert s(p.WorkFailed("AccessDenied: check the bucket policy")) == State.ERROR
    assert s.m.error_retry
    assert s(p.Press()) == State.PUBLISHING
    assert s.effects[-1] == StartWork("shoot-1")


def test_second_card_waits_its_turn() -> None:
    s = Story()
    s(hello("sda1", "EOS"))
    s(p.Progress(files_read=1, files_to_read=9))
    s(hello("sdb1", "NIKON"), "sdb1")
    assert isinstance(s.effects[-1], Wait) and "EOS" in s.effects[-1].reason
    assert s.m.waiting_card == "sdb1" and s.m.state == State.COPYING
    s(done(new=9, session_id="shoot-1"))
    assert s.effects[-1] == Grant("sdb1")
    assert s.m.card == "sdb1" and s.m.state == State.CHECKING


def test_network_down_waits_then_resumes() -> None:
    s = Story()
    s(p.WorkProgress("publishing", 2, 9))
    assert s(p.WorkWaiting("no network: 7 uploads queued")) == State.WAITING
    assert s(p.WorkProgress("publishing", 3, 9)) == State.PUBLISHING


def test_critical_battery_stops_the_copy_and_shuts_down() -> None:
    s = Story()
    s(hello("sda1", "EOS"))
    s(p.Progress(files_read=1, files_to_read=9))
    assert s(p.Battery(6.0)) == State.COPYING  # low, but above critical: the copy goes on
    assert s(p.Battery(5.0, charging=True)) == State.COPYING  # charging: never critical
    assert s(p.Battery(5.0)) == State.SHUTTING_DOWN  # the machine's Policy decides
    assert s.effects[-2:] == [CancelCopy("sda1"), Shutdown()]
    assert s(p.Battery(4.0)) == State.SHUTTING_DOWN and s.effects[-1] == Shutdown()
    assert len([e for e in s.effects if isinstance(e, Shutdown)]) == 1


def test_critical_battery_follows_the_configured_policy() -> None:
    s = Story(battery_min=30.0, battery_critical=20.0)
    assert s(p.Battery(21.0)) == State.IDLE
    assert s(p.Battery(20.0)) == State.SHUTTING_DOWN


def test_skipped_counts_during_copy_status_and_cancel_receipt() -> None:
    """Regression: the copy's skipped count stayed 0 while copying (progress sends duplicates and
    known), and the cancel receipt gave bytes read as the new bytes."""
    s = Story()
    s(hello("sda1", "EOS"))
    s(p.Progress(files_total=9, files_to_read=7, files_read=7, bytes_read=7000,
                 new=4, bytes_new=4000, duplicates=3, known=2, session_id="shoot-1"))
    assert s.m.copy.skipped == 5 and s.m.copy.bytes_new == 4000
    doc = status_document(s.m, Screen("copying", big="Copying"), Path("/run/x.png"), "pi", "")
    assert doc["counts"]["skipped"] == 5 and doc["counts"]["new"] == 4
    assert s(p.Failed("cancelled", "", "shoot-1")) == State.CARD_DONE
    assert s.m.receipt is not None
    assert (s.m.receipt.new, s.m.receipt.skipped, s.m.receipt.bytes_new) == (4, 5, 4000)
