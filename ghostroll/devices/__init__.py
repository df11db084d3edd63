"""Devices the appliance drives: e-ink panel, PiSugar battery, button, systemd notify.

Each device is a small interface with a real and a simulated backend. The backend is
chosen the way gpiozero chooses pin factories: an explicit argument, else the
configuration (`[appliance]` keys, which also read `GHOSTROLL_*` variables), else a
probe in preference order. Falling back is a `DeviceFallback` warning (degraded but
running); an explicitly requested backend that cannot load raises `DeviceError`.
Hardware libraries are imported inside the real backends only.
"""

from __future__ import annotations

import logging
import warnings

from ghostroll.errors import DeviceError

__all__ = ["DeviceError", "DeviceFallback", "fallback"]

log = logging.getLogger(__name__)


class DeviceFallback(UserWarning):
    """A device backend was unavailable and a lesser one (or none) is used instead."""


def fallback(message: str) -> None:
    """Warn (for tests and the console) and log (for the journal) one fallback."""
    warnings.warn(message, DeviceFallback, stacklevel=3)
    log.warning("%s", message)
