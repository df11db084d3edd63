"""The e-ink refresh policy, with injected time: every rule and a whole copy sequence."""

from __future__ import annotations

import itertools

import pytest

from ghostroll.devices import refresh as rp
from ghostroll.devices.refresh import Action, RefreshPolicy, RefreshState, decide

POLICY = RefreshPolicy(min_interval=3.0, full_every=4, sleep_after=15.0)


def drawn(at: float, partials: int = 0, label: str = "copying") -> RefreshState:
    return RefreshState(last_refresh_at=at, partials_since_full=partials, asleep=False,
                        frame_digest="d", state_label=label)


def test_first_frame_is_full_and_immediate() -> None:
    d = decide(RefreshState(), now=0.0, frame_changed=True, state_changed=True, policy=POLICY)
    assert d.action is Action.FULL and d.reason == "first frame"


def test_identical_frame_is_skipped_even_when_due() -> None:
    d = decide(drawn(0.0), now=100.0, frame_changed=False, state_changed=False, policy=POLICY)
    assert d.action is Action.SKIP
    assert not d.draws


def test_identical_frame_is_drawn_when_forced() -> None:
    d = decide(drawn(0.0), 100.0, frame_changed=False, state_changed=False, force_full=True,
               policy=POLICY)
    assert d.action is Action.FULL and d.reason == "forced"


def test_progress_update_is_partial() -> None:
    d = decide(drawn(0.0), 5.0, frame_changed=True, state_changed=False, policy=POLICY)
    assert d.action is Action.PARTIAL


def test_state_change_is_full() -> None:
    d = decide(drawn(0.0, partials=1), 5.0, frame_changed=True, state_changed=True,
               policy=POLICY)
    assert d.action is Action.FULL and d.reason == "state changed"


@pytest.mark.parametrize("elapsed", [0.0, 1.0, 2.999])
def test_min_interval_waits_for_the_rest(elapsed: float) -> None:
    d = decide(drawn(10.0), 10.0 + elapsed, frame_changed=True, state_changed=True,
               policy=POLICY)
    assert d.action is Action.WAIT
    assert d.wait == pytest.approx(3.0 - elapsed)


def test_min_interval_applies_to_forced_frames_too() -> None:
    d = decide(drawn(10.0), 11.0, frame_changed=True, state_changed=False, force_full=True,
               policy=POLICY)
    assert d.action is Action.WAIT


def test_full_after_every_n_partials() -> None:
    assert decide(drawn(0.0, partials=3), 5.0, True, False, policy=POLICY).action \
        is Action.PARTIAL
    d = decide(drawn(0.0, partials=4), 5.0, True, False, policy=POLICY)
    assert d.action is Action.FULL and "4 partials" in d.reason


def test_after_sleep_the_next_frame_is_full() -> None:
    asleep = rp.after_sleep(drawn(0.0, partials=1))
    d = decide(asleep, 60.0, frame_changed=True, state_changed=False, policy=POLICY)
    assert d.action is Action.FULL and "slept" in d.reason


def test_panel_without_partial_refresh_always_full() -> None:
    policy = RefreshPolicy(min_interval=0, partial_supported=False)
    d = decide(drawn(0.0), 1.0, frame_changed=True, state_changed=False, policy=policy)
    assert d.action is Action.FULL


def test_after_refresh_counts_partials_and_resets_on_full() -> None:
    s = RefreshState()
    s = rp.after_refresh(s, rp.Decision(Action.FULL, "x"), 1.0, "a", "idle")
    assert (s.partials_since_full, s.asleep, s.frame_digest, s.state_label) == (0, False, "a",
                                                                                 "idle")
    s = rp.after_refresh(s, rp.Decision(Action.PARTIAL, "x"), 5.0, "b", "idle")
    s = rp.after_refresh(s, rp.Decision(Action.PARTIAL, "x"), 9.0, "c", "idle")
    assert s.partials_since_full == 2 and s.last_refresh_at == 9.0
    with pytest.raises(ValueError):
        rp.after_refresh(s, rp.Decision(Action.SKIP, "x"), 9.0, "c", "idle")


def test_after_failure_forgets_the_glass() -> None:
    s = rp.after_failure(drawn(0.0))
    assert s.asleep and s.frame_digest is None
    # the same picture is drawn again, in full, since we no longer know what is shown
    d = decide(s, 10.0, frame_changed=True, state_changed=False, policy=POLICY)
    assert d.action is Action.FULL


def test_sleep_timing() -> None:
    s = drawn(100.0)
    assert not rp.should_sleep(s, 114.9, POLICY)
    assert rp.should_sleep(s, 115.0, POLICY)
    assert rp.sleep_due_in(s, 110.0, POLICY) == pytest.approx(5.0)
    assert rp.sleep_due_in(rp.after_sleep(s), 110.0, POLICY) == float("inf")
    assert not rp.should_sleep(RefreshState(), 1e9, POLICY)  # never drawn: nothing to sleep


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RefreshPolicy(full_every=0)
    with pytest.raises(ValueError):
        RefreshPolicy(min_interval=-1)


def test_copy_sequence_simulated_over_time() -> None:
    """A card copy: idle → copying with a progress frame every second → done.
    Replays the policy with a simulated clock and a one-slot coalescing queue."""
    policy = RefreshPolicy(min_interval=3.0, full_every=4, sleep_after=15.0)
    events = [(0.0, "idle", "i0")]
    events += [(1.0 + t, "copying", f"c{t}") for t in range(30)]
    events += [(40.0, "done", "qr")]
    state = RefreshState()
    pending: tuple[str, str] | None = None
    log: list[tuple[float, str, str, str]] = []
    queue = list(events)
    for tick in itertools.count(0):
        now = tick * 0.5
        while queue and queue[0][0] <= now:
            _, label, digest = queue.pop(0)
            pending = (label, digest)  # newer frame replaces the undrawn one
        if pending is not None:
            label, digest = pending
            d = decide(state, now, digest != state.frame_digest, label != state.state_label,
                       policy=policy)
            if d.action is Action.SKIP:
                pending = None
            elif d.draws:
                state = rp.after_refresh(state, d, now, digest, label)
                log.append((now, d.action.value, label, digest))
                pending = None
        elif rp.should_sleep(state, now, policy):
            state = rp.after_sleep(state)
            log.append((now, "sleep", state.state_label or "", ""))
        if not queue and pending is None and state.asleep:
            break
    times = [t for t, action, *_ in log if action != "sleep"]
    assert all(b - a >= 3.0 for a, b in itertools.pairwise(times))
    kinds = [(action, label) for _, action, label, _ in log]
    assert kinds[0] == ("full", "idle")
    assert kinds[1] == ("full", "copying")  # state change
    copying = [a for a, label in kinds if label == "copying"]
    assert "partial" in copying
    # never more than full_every partials in a row
    run = 0
    for action, _ in kinds:
        run = run + 1 if action == "partial" else 0
        assert run <= policy.full_every
    assert ("full", "done") in kinds
    assert log[-1][1] == "sleep"
    # the last copying frame (c29) was drawn: coalescing keeps the newest
    assert any(digest == "c29" for *_, digest in log)
