"""What a transition asks the service to do: effects as dataclasses the app loop runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Effect:
    pass


@dataclass(frozen=True)
class Grant(Effect):
    device: str


@dataclass(frozen=True)
class Wait(Effect):
    device: str
    reason: str


@dataclass(frozen=True)
class Refuse(Effect):
    device: str
    reason: str


@dataclass(frozen=True)
class CancelCopy(Effect):
    device: str


@dataclass(frozen=True)
class Eject(Effect):
    device: str


@dataclass(frozen=True)
class StartWork(Effect):
    """Process (if needed) and publish the session's queue."""
    session_id: str | None


@dataclass(frozen=True)
class Shutdown(Effect):
    pass


@dataclass(frozen=True)
class LogProblem(Effect):
    message: str
