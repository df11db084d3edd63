"""The one button: short and long presses delivered to a callback.

Backends: `GpioButton` (gpiozero `Button` on a BCM pin to GND with the internal pull-up;
gpiozero picks its pin factory itself: explicit `pin_factory`, else
`GPIOZERO_PIN_FACTORY`, else its probe; the appliance's unit names `lgpio`, so a factory
that cannot load is an error, never a quiet fallback), `ScriptedButton` (presses at given times, for
`ghostroll simulate --press short@3`) and `KeyboardButton` (Enter = short, `l` + Enter
= long, for a person at a terminal).

A long press is reported from `when_held`, when the hold time is reached, so the
shutdown confirmation shows while the finger is still down. gpiozero clears `is_held`
before `when_released` runs, so we remember the hold ourselves: the release that ends
a long press is not also a short press. Debouncing of repeated presses is the state
machine's job (it knows what a second press means).
"""

from __future__ import annotations

import enum
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from ghostroll.devices import DeviceError, fallback
from ghostroll.errors import ConfigError

log = logging.getLogger(__name__)


class Press(enum.StrEnum):
    SHORT = "short"
    LONG = "long"


OnPress = Callable[[Press], None]
# What the service got (`button_factory` or `button_error`), in its runtime directory.
DEVICES_FILE = "devices.json"


def _deliver(on_press: OnPress, press: Press) -> None:
    try:
        on_press(press)
    except Exception:
        log.exception("button: %s press handler failed", press)


class GpioButton:
    """A push button between BCM `pin` and GND (internal pull-up)."""

    def __init__(self, pin: int, on_press: OnPress, *, hold_time: float = 3.0,
                 bounce_time: float | None = None, pin_factory: Any = None) -> None:
        from gpiozero import Button  # optional dependency, imported by the real backend only

        self.on_press = on_press
        self._lock = threading.Lock()
        self._held = False
        self._button = Button(pin, pull_up=True, hold_time=hold_time, bounce_time=bounce_time,
                              pin_factory=pin_factory)
        self._button.when_pressed = self._on_pressed
        self._button.when_held = self._on_held
        self._button.when_released = self._on_released

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    @property
    def factory(self) -> str:
        """The pin factory in use, as gpiozero names it (`lgpio`, `mock`, ...)."""
        return factory_name(self._button.pin_factory)

    def _on_pressed(self) -> None:
        with self._lock:
            self._held = False

    def _on_held(self) -> None:
        with self._lock:
            self._held = True
        _deliver(self.on_press, Press.LONG)

    def _on_released(self) -> None:
        with self._lock:
            was_held, self._held = self._held, False
        if not was_held:
            _deliver(self.on_press, Press.SHORT)

    def close(self) -> None:
        self._button.close()


def factory_name(factory: Any) -> str:
    """`LGPIOFactory` → `lgpio`, the name GPIOZERO_PIN_FACTORY takes."""
    return type(factory).__name__.removesuffix("Factory").lower()


def open_button(pin: int, on_press: OnPress, *, hold_time: float = 3.0,
                pin_factory: Any = None,
                env: Mapping[str, str] | None = None) -> GpioButton | None:
    """The GPIO button, or None with a `DeviceFallback` warning when this machine has no
    usable GPIO (no gpiozero, no pin factory: a laptop, CI). A pin that exists but
    cannot be used (invalid number, already taken) raises `DeviceError`, and so does a
    factory named in GPIOZERO_PIN_FACTORY (the appliance: `lgpio`) that cannot load."""
    required = (os.environ if env is None else env).get("GPIOZERO_PIN_FACTORY", "")
    try:
        from gpiozero.exc import BadPinFactory, GPIOZeroError
    except ImportError:
        if required:
            raise DeviceError(f"button: gpiozero is not installed (GPIOZERO_PIN_FACTORY="
                              f"{required} asks for it)") from None
        fallback("button: gpiozero is not installed; no button")
        return None
    try:
        return GpioButton(pin, on_press, hold_time=hold_time, pin_factory=pin_factory)
    except BadPinFactory as exc:
        if required:
            raise DeviceError(f"button: pin factory {required!r} cannot load: {exc}") from exc
        fallback(f"button: no GPIO on this machine ({exc}); no button")
        return None
    except GPIOZeroError as exc:
        raise DeviceError(f"button on BCM pin {pin} cannot be used: {exc}") from exc
    except Exception as exc:  # a named factory's own error (lgpio.error, OSError, ...)
        if not required:
            raise
        raise DeviceError(f"button: pin factory {required!r} cannot load: "
                          f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class ScriptedPress:
    press: Press
    at: float  # seconds after start


def parse_presses(specs: Iterable[str]) -> list[ScriptedPress]:
    """`["short@3", "long@10.5"]` (or comma-separated in one string) → presses in time order."""
    out: list[ScriptedPress] = []
    for spec in specs:
        for item in filter(None, (part.strip() for part in spec.split(","))):
            kind, sep, when = item.partition("@")
            try:
                press = Press(kind.strip().lower())
                at = float(when) if sep else float("nan")
            except ValueError:
                press, at = None, float("nan")
            if press is None or not (math.isfinite(at) and at >= 0):
                raise ConfigError(f"bad --press {item!r}: use short@SECONDS or long@SECONDS, "
                                  "e.g. short@3")
            out.append(ScriptedPress(press, at))
    return sorted(out, key=lambda p: p.at)


class ScriptedButton:
    """Fires scripted presses at their times after `start()`, on its own thread."""

    def __init__(self, presses: Iterable[ScriptedPress], on_press: OnPress) -> None:
        self.presses = sorted(presses, key=lambda p: p.at)
        self.on_press = on_press
        self.fired: list[Press] = []
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scripted-button", daemon=True)

    def start(self) -> ScriptedButton:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """True once every press has fired."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        t0 = time.monotonic()
        for item in self.presses:
            if self._stop.wait(max(0.0, t0 + item.at - time.monotonic())):
                return
            self.fired.append(item.press)
            _deliver(self.on_press, item.press)
        self._done.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)


KEY_HELP = "button: Enter = short press, l + Enter = long press"


class KeyboardButton:
    """Reads lines from a terminal (or any text stream): an empty line or `s` is a short
    press, `l` a long press. Other input is ignored with a hint; EOF ends it."""

    def __init__(self, stream: TextIO, on_press: OnPress) -> None:
        self.stream = stream
        self.on_press = on_press
        self.fired: list[Press] = []
        self._thread = threading.Thread(target=self._run, name="keyboard-button", daemon=True)

    def start(self) -> KeyboardButton:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        for line in self.stream:
            key = line.strip().lower()
            press = {"": Press.SHORT, "s": Press.SHORT, "short": Press.SHORT,
                     "l": Press.LONG, "long": Press.LONG}.get(key)
            if press is None:
                log.warning("%s (got %r)", KEY_HELP, key[:20])
                continue
            self.fired.append(press)
            _deliver(self.on_press, press)

    def close(self) -> None:
        pass  # a thread blocked reading a terminal cannot be interrupted; it is a daemon
