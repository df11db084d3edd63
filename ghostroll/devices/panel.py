"""The e-ink panel: its interface, the simulated and null backends, backend choice, and
the `PanelWorker` that does all panel I/O on its own thread.

A frame is a Pillow image in mode "1" at the panel's landscape size (as drawn, e.g.
250x122 for the 2.13"). `Panel.show(frame, full, label)` draws it with a full or a
partial refresh; the label is the appliance state it shows (kept by the simulator).

The real backend (`panel_waveshare.WavesharePanel`) is imported only when chosen. The
vendor driver busy-waits on the panel's BUSY pin and can hang forever, so callers never
touch a panel directly: `PanelWorker.submit()` hands over a frame and returns at once;
the worker draws the newest frame following `refresh.decide()`, runs each panel call
with a timeout, and on a timeout abandons that call and opens a fresh panel.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from PIL import Image

from ghostroll.devices import DeviceError, fallback
from ghostroll.devices import refresh as rp

log = logging.getLogger(__name__)

FRAMES_LOG = "frames.jsonl"
SPI_DEVICE = Path("/dev/spidev0.0")


class PanelSpecLike(Protocol):
    """The panel part of a hardware kit (`ghostroll.devices.kits.PanelSpec` has these fields)."""

    driver: str  # vendor module, e.g. "epd2in13_V4"
    width: int  # landscape frame as drawn
    height: int
    native_width: int  # the driver's portrait geometry
    native_height: int
    partial: bool
    partial_method: str  # e.g. "displayPartial"
    base_method: str  # e.g. "displayPartBaseImage"


class Panel(Protocol):
    @property
    def size(self) -> tuple[int, int]: ...

    def show(self, image: Image.Image, full: bool, label: str = "") -> None: ...

    def sleep(self) -> None: ...

    def close(self) -> None: ...


def check_frame(image: Image.Image, size: tuple[int, int]) -> None:
    """Refuse frames the panel cannot draw exactly (wrong mode or size)."""
    if image.mode != "1":
        raise ValueError(f"panel frames must be 1-bit (mode '1'), got mode {image.mode!r}")
    if image.size != size:
        raise ValueError(f"panel frame is {image.size[0]}x{image.size[1]}, "
                         f"the panel draws {size[0]}x{size[1]}")


def frame_digest(image: Image.Image) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class SimulatedPanel:
    """Writes every frame as `frame-NNNNNN.png` plus a line in `frames.jsonl`
    (time, seq, refresh full/partial, state label, file), so a person can watch the
    sequence. Numbering continues after frames already in the directory."""

    def __init__(self, frames_dir: Path, size: tuple[int, int] = (250, 122),
                 clock: Callable[[], float] = time.time) -> None:
        self.frames_dir = Path(frames_dir)
        self._size = size
        self._clock = clock
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.frames_dir / FRAMES_LOG
        self.seq = _count_lines(self._log)
        self.sleeps = 0
        self.asleep = True

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def show(self, image: Image.Image, full: bool, label: str = "") -> None:
        check_frame(image, self._size)
        self.seq += 1
        name = f"frame-{self.seq:06d}.png"
        tmp = self.frames_dir / f".{name}.tmp"
        image.save(tmp, format="PNG")
        tmp.replace(self.frames_dir / name)
        line = {
            "time": datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds"),
            "seq": self.seq,
            "refresh": "full" if full else "partial",
            "state": label,
            "file": name,
        }
        with self._log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        self.asleep = False

    def sleep(self) -> None:
        if not self.asleep:
            self.sleeps += 1
        self.asleep = True

    def close(self) -> None:
        self.sleep()


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


class NullPanel:
    """No panel (`panel = "none"`): frames are checked and dropped."""

    def __init__(self, size: tuple[int, int] = (250, 122)) -> None:
        self._size = size

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def show(self, image: Image.Image, full: bool, label: str = "") -> None:
        check_frame(image, self._size)

    def sleep(self) -> None:
        pass

    def close(self) -> None:
        pass


PANEL_CHOICES = ("auto", "waveshare", "simulated", "none")


def waveshare_available() -> str | None:
    """None when the real panel can be tried, else why not (no module is imported)."""
    if importlib.util.find_spec("waveshare_epd") is None:
        return "the waveshare_epd driver is not installed"
    if not SPI_DEVICE.exists():
        return f"{SPI_DEVICE} does not exist (SPI disabled?)"
    return None


def panel_factory(choice: str, spec: PanelSpecLike, frames_dir: Path | None = None
                  ) -> Callable[[], Panel]:
    """Resolve the backend once and return a maker of fresh panels (the worker makes a
    new one after a hang). Explicit choices that cannot work raise `DeviceError`;
    "auto" probes waveshare > simulated (when `frames_dir` is set) > none, warning
    `DeviceFallback` on the way down."""
    size = (spec.width, spec.height)
    if choice not in PANEL_CHOICES:
        raise DeviceError(f"unknown panel backend {choice!r}; choose one of "
                          + ", ".join(PANEL_CHOICES))
    if choice == "auto":
        why = waveshare_available()
        if why is None:
            try:
                _waveshare_maker(spec)()
                return _waveshare_maker(spec)
            except DeviceError as exc:
                why = str(exc)
        lesser = "simulated" if frames_dir else "none"
        fallback(f"panel: falling back from waveshare to {lesser}: {why}")
        choice = lesser
    if choice == "waveshare":
        return _waveshare_maker(spec)
    if choice == "simulated":
        if not frames_dir:
            raise DeviceError("the simulated panel needs a frames directory (frames_dir)")
        directory = Path(frames_dir)
        return lambda: SimulatedPanel(directory, size)
    return lambda: NullPanel(size)


def _waveshare_maker(spec: PanelSpecLike) -> Callable[[], Panel]:
    def make() -> Panel:
        from ghostroll.devices.panel_waveshare import WavesharePanel

        return WavesharePanel(spec)

    return make


@dataclass
class PanelStats:
    full: int = 0
    partial: int = 0
    skipped: int = 0  # identical frames not drawn
    replaced: int = 0  # frames superseded by a newer one before drawing
    sleeps: int = 0
    timeouts: int = 0
    failures: int = 0  # panel calls that raised
    reinits: int = 0


@dataclass
class _Pending:
    image: Image.Image
    label: str
    force_full: bool


_SLEEP = object()


class PanelWorker:
    """Owns one panel on its own thread. `submit()` never blocks: the newest frame
    replaces any frame not drawn yet; drawing follows `refresh.decide()`."""

    def __init__(self, factory: Callable[[], Panel], *,
                 policy: rp.RefreshPolicy = rp.DEFAULT_POLICY,
                 size: tuple[int, int] | None = None,
                 op_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = factory
        self.size = size  # when given, submit() refuses frames of another size
        self.policy = policy
        self.op_timeout = op_timeout
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: _Pending | None = None
        self._busy = False
        self._stopping = False
        self._state = rp.RefreshState()
        self._panel: Panel | None = None
        self.stats = PanelStats()
        self.last_frame: Image.Image | None = None
        self._thread = threading.Thread(target=self._run, name="panel", daemon=True)

    def start(self) -> PanelWorker:
        self._thread.start()
        return self

    @property
    def state(self) -> rp.RefreshState:
        with self._cond:
            return self._state

    def submit(self, image: Image.Image, state_label: str, force_full: bool = False) -> None:
        """Hand over a frame (mode "1") showing `state_label`; returns at once.
        Raises ValueError for a frame the panel cannot draw."""
        check_frame(image, self.size or image.size)
        frame = image.copy()
        with self._cond:
            if self._pending is not None:
                self.stats.replaced += 1
                force_full = force_full or self._pending.force_full
            self._pending = _Pending(frame, state_label, force_full)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted frame is drawn or dropped; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy,
                                       timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Draw what is pending, put the panel to sleep (the picture stays) and close it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        panel = self._panel
        if panel is not None and not self._thread.is_alive():
            if not self._state.asleep:
                self._call("sleep", panel.sleep)
            self._call("close", panel.close)
            self._panel = None

    # worker thread

    def _run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                if job is _SLEEP:
                    self._do_sleep()
                else:
                    assert isinstance(job, tuple)
                    self._do_draw(*job)
            except Exception:
                log.exception("panel: unexpected error in the panel worker")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_job(self) -> object | None:
        with self._cond:
            while True:
                now = self._clock()
                pending = self._pending
                if pending is not None:
                    digest = frame_digest(pending.image)
                    decision = rp.decide(
                        self._state, now,
                        frame_changed=digest != self._state.frame_digest,
                        state_changed=pending.label != self._state.state_label,
                        force_full=pending.force_full, policy=self.policy)
                    if decision.action is rp.Action.SKIP:
                        self.stats.skipped += 1
                        self._pending = None
                        self._cond.notify_all()
                        continue
                    if decision.action is rp.Action.WAIT:
                        self._cond.wait(decision.wait)
                        continue
                    self._pending = None
                    self._busy = True
                    return (pending, decision, digest)
                if self._stopping:
                    return None
                if rp.should_sleep(self._state, now, self.policy):
                    self._busy = True
                    return _SLEEP
                due = rp.sleep_due_in(self._state, now, self.policy)
                self._cond.wait(None if due == float("inf") else due)

    def _ensure_panel(self) -> Panel | None:
        if self._panel is None:
            try:
                self._panel = self._factory()
            except Exception as exc:
                log.error("panel: cannot open the panel: %s", exc)
                self.stats.failures += 1
                return None
        return self._panel

    def _do_draw(self, pending: _Pending, decision: rp.Decision, digest: str) -> None:
        panel = self._ensure_panel()
        if panel is None:
            return
        full = decision.action is rp.Action.FULL
        ok = self._call("show", panel.show, pending.image, full, pending.label)
        with self._cond:
            if ok:
                self._state = rp.after_refresh(self._state, decision, self._clock(),
                                               digest, pending.label)
                if full:
                    self.stats.full += 1
                else:
                    self.stats.partial += 1
                self.last_frame = pending.image
            else:
                self._state = rp.after_failure(self._state)
        log.debug("panel: %s refresh (%s) state=%s ok=%s", decision.action.value,
                  decision.reason, pending.label, ok)

    def _do_sleep(self) -> None:
        panel = self._panel
        if panel is not None and self._call("sleep", panel.sleep):
            self.stats.sleeps += 1
        with self._cond:
            self._state = rp.after_sleep(self._state)

    def _call(self, what: str, fn: Callable[..., object], *args: object) -> bool:
        """Run one panel call on a helper thread; on timeout or error, abandon this
        panel object and open a new one for the next call."""
        error: list[BaseException] = []

        def target() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                error.append(exc)

        helper = threading.Thread(target=target, name=f"panel-{what}", daemon=True)
        helper.start()
        helper.join(self.op_timeout)
        if helper.is_alive():
            self.stats.timeouts += 1
            log.error("panel: %s did not finish within %.0f s (BUSY pin stuck?); "
                      "abandoning it and re-initialising the panel", what, self.op_timeout)
        elif error and isinstance(error[0], ValueError):
            self.stats.failures += 1
            log.error("panel: frame refused: %s", error[0])  # the frame's fault, not the panel's
            return False
        elif error:
            self.stats.failures += 1
            log.error("panel: %s failed: %s; re-initialising the panel", what, error[0])
        else:
            return True
        self._panel = None
        self.stats.reinits += 1
        return False
