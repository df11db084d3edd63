"""The Waveshare panel adapter.

Ordinary tests drive `WavesharePanel` against a small recording stand-in for a vendor
module (call order: init before every full refresh, base image, partial only when awake,
init again after sleep; clear errors for bad kits and missing drivers).

The contract test runs our adapter against Waveshare's real driver code for 2.13" V4,
2.7" V2 and 2.9" V2: the hash-pinned PyPI wheel `waveshare-epaper` the image installs
(image/python/hardware.txt; `./dev.sh test` installs it from image/python/waveshare.txt,
else this test does), so the code tested is byte for byte the code the appliance
runs. Only `epdconfig`, the
vendor's hardware layer (GPIO, SPI, delays), is replaced by a recorder in
`sys.modules`: it records every SPI byte with the DC pin level and reports the BUSY pin
idle. The test asserts that the bytes written to the panel RAM for a frame are exactly
what the vendor's `getbuffer()` makes of it, and that a stuck BUSY pin (the vendor's
endless busy-wait) is abandoned by the worker.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from ghostroll.devices import DeviceError
from ghostroll.devices.panel_waveshare import WavesharePanel
from ghostroll.devices.panel_worker import PanelWorker
from ghostroll.devices.refresh import RefreshPolicy


@dataclass(frozen=True)
class Spec:
    driver: str
    width: int
    height: int
    native_width: int
    native_height: int
    partial: bool
    partial_method: str
    base_method: str


V4 = Spec("epd2in13_V4", 250, 122, 122, 250, True, "displayPartial", "displayPartBaseImage")
KITS = {
    "epd2in13_V4": V4,
    "epd2in7_V2": Spec("epd2in7_V2", 264, 176, 176, 264, True, "display_Partial",
                       "display_Base"),
    "epd2in9_V2": Spec("epd2in9_V2", 296, 128, 128, 296, True, "display_Partial",
                       "display_Base"),
}


def picture(spec: Spec, text: str = "GhostRoll") -> Image.Image:
    img = Image.new("1", (spec.width, spec.height), 1)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 20, spec.height - 1), fill=0)  # asymmetric: catches bad turns
    draw.text((30, 10), text, fill=0)
    return img


# --- ordinary tests: a recording stand-in for a vendor module -------------------------


def stand_in_module(calls: list[str], width: int = 122, height: int = 250,
                    init_result: int = 0, omit: str = "") -> types.ModuleType:
    class EPD:
        def __init__(self) -> None:
            self.width, self.height = width, height

        def init(self) -> int:
            calls.append("init")
            return init_result

        def getbuffer(self, image: Image.Image) -> bytes:
            calls.append(f"getbuffer {image.size[0]}x{image.size[1]}")
            return image.tobytes()

        def display(self, buf: bytes) -> None:
            calls.append("display")

        def displayPartBaseImage(self, buf: bytes) -> None:
            calls.append("base")

        def displayPartial(self, buf: bytes) -> None:
            calls.append("partial")

        def sleep(self) -> None:
            calls.append("sleep")

    if omit:
        delattr(EPD, omit)
    module = types.ModuleType("waveshare_epd.epd2in13_V4")
    module.EPD = EPD  # type: ignore[attr-defined]
    return module


def test_adapter_call_sequence() -> None:
    calls: list[str] = []
    panel = WavesharePanel(V4, import_module=lambda name: stand_in_module(calls))
    img = picture(V4)
    panel.show(img, full=False)  # not initialised yet: drawn in full regardless
    panel.show(img, full=False)
    panel.show(img, full=True)
    panel.sleep()
    panel.show(img, full=False)  # after sleep the base image is gone: full again
    panel.close()
    assert calls == [
        "getbuffer 250x122", "init", "base",
        "getbuffer 250x122", "partial",
        "getbuffer 250x122", "init", "base",
        "sleep",
        "getbuffer 250x122", "init", "base",
        "sleep",
    ]
    assert panel.size == (250, 122)


def test_panel_without_partial_uses_display() -> None:
    calls: list[str] = []
    spec = Spec("epd2in13_V4", 250, 122, 122, 250, False, "", "")
    panel = WavesharePanel(spec, import_module=lambda name: stand_in_module(calls))
    panel.show(picture(spec), full=True)
    panel.show(picture(spec), full=False)
    assert calls == ["getbuffer 250x122", "init", "display"] * 2


@pytest.mark.parametrize("kwargs, message", [
    ({"width": 128, "height": 296}, "is 128x296, the kit says 122x250"),
    ({"omit": "displayPartial"}, "has no method displayPartial"),
])
def test_kit_and_driver_disagree(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DeviceError, match=message):
        WavesharePanel(V4, import_module=lambda name: stand_in_module([], **kwargs))


def test_failed_init_and_missing_driver_are_device_errors() -> None:
    panel = WavesharePanel(V4, import_module=lambda name: stand_in_module([], init_result=-1))
    with pytest.raises(DeviceError, match="init failed"):
        panel.show(picture(V4), full=True)

    def missing(name: str) -> types.ModuleType:
        raise ModuleNotFoundError(f"No module named {name!r}")

    with pytest.raises(DeviceError, match="cannot import the panel driver"):
        WavesharePanel(V4, import_module=missing)

    def board_probe_fails(name: str) -> types.ModuleType:
        raise OSError("DEV_Config_64.so: wrong ELF class")

    with pytest.raises(DeviceError, match="failed to load on this machine"):
        WavesharePanel(V4, import_module=board_probe_fails)


def test_wrong_frame_is_refused_before_the_driver_sees_it() -> None:
    calls: list[str] = []
    panel = WavesharePanel(V4, import_module=lambda name: stand_in_module(calls))
    with pytest.raises(ValueError, match="250x122"):
        panel.show(Image.new("1", (122, 250), 1), full=True)
    assert calls == []


# --- contract test against the real vendor code -------------------------------------

REPO = Path(__file__).resolve().parents[1]
VENDOR_REQUIREMENTS = REPO / "image" / "python" / "waveshare.txt"
VENDOR_SUBDIR = Path("epaper", "e-Paper", "RaspberryPi_JetsonNano", "python", "lib")


@pytest.fixture(scope="session")
def vendor_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding the upstream `waveshare_epd` package."""
    spec = importlib.util.find_spec("epaper")
    if spec is not None and spec.origin:
        root = Path(spec.origin).parent.parent
    else:
        root = tmp_path_factory.mktemp("waveshare")
        # --no-deps: gpiozero/spidev are not needed, the hardware layer is replaced
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                                 "--no-deps", "--require-hashes", "--target", str(root),
                                 "-r", str(VENDOR_REQUIREMENTS)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.fail(f"pip install -r {VENDOR_REQUIREMENTS} failed:\n"
                        f"{result.stderr[-2000:]}")
    lib = root / VENDOR_SUBDIR
    assert (lib / "waveshare_epd" / "epdconfig.py").is_file(), lib
    return lib


class RecordingEpdconfig(types.ModuleType):
    """Stands in for waveshare_epd.epdconfig: same names as the vendor's module."""

    RST_PIN, DC_PIN, CS_PIN, BUSY_PIN, PWR_PIN = 17, 25, 8, 24, 18

    def __init__(self) -> None:
        super().__init__("waveshare_epd.epdconfig")
        self.dc = 0
        self.busy = 0  # 0 = idle for these three models (they wait while it reads 1)
        self.writes: list[tuple[int, int]] = []  # (dc level, byte)
        self.events: list[str] = []

    def digital_write(self, pin: int, value: int) -> None:
        if pin == self.DC_PIN:
            self.dc = value

    def digital_read(self, pin: int) -> int:
        return self.busy if pin == self.BUSY_PIN else 0

    def delay_ms(self, ms: float) -> None:
        if self.busy:
            time.sleep(ms / 1000)  # a stuck BUSY pin: wait like the hardware would

    def spi_writebyte(self, data: list[int]) -> None:
        self.writes.extend((self.dc, b) for b in data)

    def spi_writebyte2(self, data: Any) -> None:
        self.writes.extend((self.dc, b) for b in data)

    def module_init(self, cleanup: bool = False) -> int:
        self.events.append("module_init")
        return 0

    def module_exit(self, cleanup: bool = False) -> None:
        self.events.append("module_exit")

    def ram_writes(self, command: int) -> list[bytes]:
        """Data bytes sent after each occurrence of `command`."""
        out: list[bytearray] = []
        current: bytearray | None = None
        for dc, byte in self.writes:
            if dc == 0:
                current = bytearray() if byte == command else None
                if current is not None:
                    out.append(current)
            elif current is not None:
                current.append(byte)
        return [bytes(x) for x in out]


@pytest.fixture
def vendor(vendor_lib: Path, monkeypatch: pytest.MonkeyPatch) -> RecordingEpdconfig:
    for name in [m for m in sys.modules if m == "waveshare_epd" or m.startswith("waveshare_epd.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(vendor_lib))
    recorder = RecordingEpdconfig()
    monkeypatch.setitem(sys.modules, "waveshare_epd.epdconfig", recorder)
    yield recorder
    for name in [m for m in sys.modules if m.startswith("waveshare_epd")]:
        sys.modules.pop(name, None)


def dark_pixels(buf: bytes, row_pixels: int) -> int:
    """Zero bits in a packed 1-bit buffer, ignoring each row's padding bits."""
    stride = (row_pixels + 7) // 8
    dark = 0
    for start in range(0, len(buf), stride):
        bits = int.from_bytes(buf[start:start + stride], "big") >> (stride * 8 - row_pixels)
        dark += row_pixels - bin(bits).count("1")
    return dark


@pytest.mark.parametrize("driver", sorted(KITS))
def test_vendor_contract(driver: str, vendor: RecordingEpdconfig) -> None:
    spec = KITS[driver]
    panel = WavesharePanel(spec)  # the real lazy import of waveshare_epd.<driver>
    module = sys.modules[f"waveshare_epd.{driver}"]
    assert Path(module.__file__).is_relative_to(Path(sys.modules["waveshare_epd"].__path__[0]))
    img = picture(spec)
    expected = bytes(module.EPD().getbuffer(img))
    # not the vendor's blank buffer for a frame it cannot place: every black pixel is there
    assert dark_pixels(expected, spec.native_width) == img.histogram()[0]

    panel.show(img, full=True, label="idle")
    assert vendor.events == ["module_init"]
    assert vendor.ram_writes(0x24) == [expected]  # new-image RAM
    assert vendor.ram_writes(0x26) == [expected]  # base (old-image) RAM for partials

    vendor.writes.clear()
    second = picture(spec, "progress 2/3")
    panel.show(second, full=False, label="copying")
    assert vendor.ram_writes(0x24) == [bytes(module.EPD().getbuffer(second))]
    assert vendor.ram_writes(0x26) == []  # a partial refresh leaves the base alone
    assert vendor.events == ["module_init"]  # no re-init for a partial

    panel.sleep()
    assert vendor.events == ["module_init", "module_exit"]
    vendor.writes.clear()
    panel.show(img, full=False, label="copying")  # after sleep: init and a full refresh
    assert vendor.events == ["module_init", "module_exit", "module_init"]
    assert vendor.ram_writes(0x26) == [expected]


def test_stuck_busy_pin_in_vendor_code_is_abandoned(vendor: RecordingEpdconfig) -> None:
    made: list[WavesharePanel] = []

    def make() -> WavesharePanel:
        made.append(WavesharePanel(V4))
        return made[-1]

    worker = PanelWorker(make, policy=RefreshPolicy(min_interval=0), size=(250, 122),
                         op_timeout=0.5).start()
    vendor.busy = 1  # the vendor's ReadBusy() now loops forever
    worker.submit(picture(V4), "idle")
    assert worker.flush(20)
    assert worker.stats.timeouts == 1 and len(made) == 1
    vendor.busy = 0  # the abandoned call finishes in the background
    worker.submit(picture(V4, "again"), "idle")
    assert worker.flush(20)
    threading.Event().wait(0.1)
    worker.stop()
    assert len(made) == 2 and worker.stats.full == 1
