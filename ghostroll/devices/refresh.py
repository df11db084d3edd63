"""E-ink refresh policy: when to draw a frame, and whether as a full or a partial refresh.

Pure: no clock, no panel. `decide()` takes what was last drawn (`RefreshState`), the
time now (monotonic seconds, injected) and what changed, and returns a `Decision`;
`after_refresh()` / `after_sleep()` give the state that follows doing it.

Rules, in order:
- nothing new to draw (identical frame, no forced refresh): skip;
- at most one refresh per `min_interval` seconds: wait (the caller keeps only the
  newest frame meanwhile, so waiting coalesces updates);
- full refresh on a state change, on request, every `full_every` partials (partial
  updates slowly leave ghosting), after the panel slept (its controller lost the base
  image partial refreshes are drawn against) and on panels without partial refresh;
- otherwise a partial refresh (progress updates).
A panel left without updates for `sleep_after` seconds is put to sleep (`should_sleep`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RefreshPolicy:
    min_interval: float = 3.0  # seconds between two refreshes
    full_every: int = 10  # partial refreshes before a full one is forced
    sleep_after: float = 15.0  # idle seconds before the panel is put to sleep
    partial_supported: bool = True

    def __post_init__(self) -> None:
        if self.min_interval < 0 or self.sleep_after < 0:
            raise ValueError("refresh intervals must be >= 0 seconds")
        if self.full_every < 1:
            raise ValueError("full_every must be >= 1")


DEFAULT_POLICY = RefreshPolicy()


@dataclass(frozen=True)
class RefreshState:
    """What the panel shows and how it got there. The initial state is a panel never drawn."""

    last_refresh_at: float | None = None  # monotonic seconds of the last refresh
    partials_since_full: int = 0
    asleep: bool = True  # not initialised yet, or put to sleep since the last refresh
    frame_digest: str | None = None  # digest of the frame on the glass
    state_label: str | None = None  # state label of that frame


class Action(enum.Enum):
    SKIP = "skip"  # nothing to draw: drop the frame
    WAIT = "wait"  # too soon: try again after `Decision.wait` seconds
    FULL = "full"
    PARTIAL = "partial"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    wait: float = 0.0  # seconds, for Action.WAIT

    @property
    def draws(self) -> bool:
        return self.action in (Action.FULL, Action.PARTIAL)


def decide(
    last: RefreshState,
    now: float,
    frame_changed: bool,
    state_changed: bool,
    *,
    force_full: bool = False,
    policy: RefreshPolicy = DEFAULT_POLICY,
) -> Decision:
    """What to do with a pending frame at monotonic time `now`."""
    if not frame_changed and not force_full:
        return Decision(Action.SKIP, "identical frame")
    if last.last_refresh_at is not None:
        elapsed = now - last.last_refresh_at
        if elapsed < policy.min_interval:
            return Decision(Action.WAIT, "min interval", wait=policy.min_interval - elapsed)
    if last.last_refresh_at is None:
        return Decision(Action.FULL, "first frame")
    if force_full:
        return Decision(Action.FULL, "forced")
    if state_changed:
        return Decision(Action.FULL, "state changed")
    if not policy.partial_supported:
        return Decision(Action.FULL, "panel has no partial refresh")
    if last.asleep:
        return Decision(Action.FULL, "panel slept: base image lost")
    if last.partials_since_full >= policy.full_every:
        return Decision(Action.FULL, f"{policy.full_every} partials since the last full")
    return Decision(Action.PARTIAL, "progress update")


def after_refresh(
    last: RefreshState, decision: Decision, now: float, frame_digest: str, state_label: str
) -> RefreshState:
    """The state once `decision` (FULL or PARTIAL) has been drawn at `now`."""
    if not decision.draws:
        raise ValueError(f"{decision.action.value} does not draw")
    partials = 0 if decision.action is Action.FULL else last.partials_since_full + 1
    return RefreshState(
        last_refresh_at=now,
        partials_since_full=partials,
        asleep=False,
        frame_digest=frame_digest,
        state_label=state_label,
    )


def after_sleep(last: RefreshState) -> RefreshState:
    return replace(last, asleep=True)


def after_failure(last: RefreshState) -> RefreshState:
    """A refresh hung or failed: the glass is unknown, so the next frame draws in full."""
    return replace(last, asleep=True, frame_digest=None)


def should_sleep(last: RefreshState, now: float, policy: RefreshPolicy = DEFAULT_POLICY) -> bool:
    """True when the awake panel has had no refresh for `policy.sleep_after` seconds."""
    if last.asleep or last.last_refresh_at is None:
        return False
    return now - last.last_refresh_at >= policy.sleep_after


def sleep_due_in(last: RefreshState, now: float, policy: RefreshPolicy = DEFAULT_POLICY) -> float:
    """Seconds until `should_sleep` becomes true (inf when the panel already sleeps)."""
    if last.asleep or last.last_refresh_at is None:
        return float("inf")
    return max(0.0, last.last_refresh_at + policy.sleep_after - now)
