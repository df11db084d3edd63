"""How long the session disk lasts at the pace it has been filled (pure): the average
session's originals, and what a shooting day (a day with sessions) has stored."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpaceLeft:
    sessions: int  # sessions of the average size that still fit
    days: int  # shooting days at the average pace that still fit


def space_left(free: int, stored: int, sessions: int, days: int) -> SpaceLeft | None:
    """None while there is no history to judge by (no session, nothing stored)."""
    fit, fit_days = sessions_left(free, stored, sessions), sessions_left(free, stored, days)
    if fit is None or fit_days is None:
        return None
    return SpaceLeft(fit, fit_days)


def sessions_left(free: int, stored: int, sessions: int) -> int | None:
    """How many more of `sessions` that stored `stored` bytes fit in `free` (also days:
    sessions of one shooting day); None without history."""
    if sessions <= 0 or stored <= 0:
        return None
    return free * sessions // stored


def space_left_text(left: SpaceLeft | None) -> str:
    if left is None:
        return "no session yet to estimate how long it lasts"
    return (f"room for ~{left.sessions:,} sessions, ~{left.days:,} shooting days "
            "at the pace so far")
