"""The e-ink panel: its interface, the simulated and null backends, backend choice, and
the `PanelWorker` (`panel_worker.py`) that does all panel I/O on its own thread.

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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from PIL import Image

from ghostroll.devices import DeviceError, fallback

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
