"""Simulated panel frames on disk, backend choice, and the panel worker (coalescing,
refresh kinds, sleep, hang → re-init) driving real SimulatedPanels."""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ghostroll.devices import DeviceError, DeviceFallback
from ghostroll.devices.panel import (
    NullPanel,
    SimulatedPanel,
    panel_factory,
)
from ghostroll.devices.panel_worker import PanelWorker
from ghostroll.devices.refresh import RefreshPolicy

SIZE = (250, 122)


@dataclass(frozen=True)
class Spec:
    driver: str = "epd2in13_V4"
    width: int = 250
    height: int = 122
    native_width: int = 122
    native_height: int = 250
    partial: bool = True
    partial_method: str = "displayPartial"
    base_method: str = "displayPartBaseImage"


def frame(text: str, size: tuple[int, int] = SIZE) -> Image.Image:
    img = Image.new("1", size, 1)
    ImageDraw.Draw(img).text((5, 5), text, fill=0)
    return img


def read_log(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "frames.jsonl").read_text().splitlines()]


def test_simulated_panel_writes_exact_frames_and_log(tmp_path: Path) -> None:
    panel = SimulatedPanel(tmp_path, SIZE)
    a, b = frame("idle"), frame("copying 1/3")
    panel.show(a, full=True, label="idle")
    panel.show(b, full=False, label="copying")
    lines = read_log(tmp_path)
    assert [(x["seq"], x["refresh"], x["state"], x["file"]) for x in lines] == [
        (1, "full", "idle", "frame-000001.png"),
        (2, "partial", "copying", "frame-000002.png"),
    ]
    assert all(x["time"].endswith("+00:00") for x in lines)
    for line, original in zip(lines, (a, b), strict=True):
        with Image.open(tmp_path / line["file"]) as png:
            assert png.mode == "1" and png.size == SIZE
            assert png.tobytes() == original.tobytes()
    # a new panel on the same directory continues the numbering
    SimulatedPanel(tmp_path, SIZE).show(a, full=True, label="idle")
    assert read_log(tmp_path)[-1]["seq"] == 3


@pytest.mark.parametrize("bad, message", [
    (Image.new("L", SIZE, 255), "1-bit"),
    (Image.new("1", (122, 250), 1), "250x122"),
])
def test_panels_refuse_frames_they_cannot_draw(tmp_path: Path, bad: Image.Image,
                                               message: str) -> None:
    for panel in (SimulatedPanel(tmp_path, SIZE), NullPanel(SIZE)):
        with pytest.raises(ValueError, match=message):
            panel.show(bad, full=True)
    worker = PanelWorker(lambda: NullPanel(SIZE), size=SIZE)
    with pytest.raises(ValueError, match=message):
        worker.submit(bad, "idle")


def test_backend_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = Spec()
    assert isinstance(panel_factory("simulated", spec, tmp_path)(), SimulatedPanel)
    assert isinstance(panel_factory("none", spec)(), NullPanel)
    with pytest.raises(DeviceError, match="frames"):
        panel_factory("simulated", spec, None)
    with pytest.raises(DeviceError, match="unknown panel backend"):
        panel_factory("hdmi", spec, tmp_path)
    # auto on a machine without the vendor driver: a warning, then the simulator
    monkeypatch.setattr("ghostroll.devices.panel.waveshare_available",
                        lambda: "the waveshare_epd driver is not installed")
    with pytest.warns(DeviceFallback, match="waveshare to simulated"):
        make = panel_factory("auto", spec, tmp_path)
    assert isinstance(make(), SimulatedPanel)
    with pytest.warns(DeviceFallback, match="waveshare to none"):
        assert isinstance(panel_factory("auto", spec, None)(), NullPanel)


def test_explicit_waveshare_without_driver_is_a_clear_error(tmp_path: Path) -> None:
    make = panel_factory("waveshare", Spec(), tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeviceError, match="waveshare_epd"):
            make()


class GatedPanel(SimulatedPanel):
    """A simulated panel whose show() waits for `gate` (a panel busy refreshing), or
    never returns when `hang` is set (the vendor busy-wait on a stuck BUSY pin)."""

    def __init__(self, directory: Path, gate: threading.Event, entered: threading.Event,
                 hang: bool = False) -> None:
        super().__init__(directory, SIZE)
        self.gate, self.entered, self.hang = gate, entered, hang

    def show(self, image: Image.Image, full: bool, label: str = "") -> None:
        self.entered.set()
        if self.hang:
            threading.Event().wait()  # forever; the worker must abandon this call
        self.gate.wait()
        super().show(image, full, label)


FAST = RefreshPolicy(min_interval=0.0, full_every=3, sleep_after=3600)


def test_worker_coalesces_frames_submitted_while_the_panel_is_busy(tmp_path: Path) -> None:
    gate, entered = threading.Event(), threading.Event()
    worker = PanelWorker(lambda: GatedPanel(tmp_path, gate, entered), policy=FAST,
                         size=SIZE).start()
    worker.submit(frame("A"), "idle")
    assert entered.wait(10)
    for text in ("B", "C", "D"):
        worker.submit(frame(text), "copying")  # returns at once although the panel is busy
    gate.set()
    assert worker.flush(10)
    worker.stop()
    lines = read_log(tmp_path)
    assert [x["state"] for x in lines] == ["idle", "copying"]
    with Image.open(tmp_path / lines[1]["file"]) as png:
        assert png.tobytes() == frame("D").tobytes()
    assert worker.stats.replaced == 2
    assert (worker.stats.full, worker.stats.partial) == (2, 0)


def test_worker_refresh_kinds_skip_and_periodic_full(tmp_path: Path) -> None:
    worker = PanelWorker(lambda: SimulatedPanel(tmp_path, SIZE), policy=FAST,
                         size=SIZE).start()
    sequence = [("idle", "i"), ("idle", "i"), ("copying", "c0")]
    sequence += [("copying", f"c{n}") for n in range(1, 6)]
    for label, text in sequence:
        worker.submit(frame(text), label)
        assert worker.flush(10)
    worker.submit(frame("c5"), "copying", force_full=True)
    assert worker.flush(10)
    worker.stop()
    kinds = [(x["refresh"], x["state"]) for x in read_log(tmp_path)]
    assert kinds == [
        ("full", "idle"),  # the repeated idle frame was skipped
        ("full", "copying"),
        ("partial", "copying"), ("partial", "copying"), ("partial", "copying"),
        ("full", "copying"),  # after full_every=3 partials
        ("partial", "copying"),
        ("full", "copying"),  # forced, same picture
    ]
    assert worker.stats.skipped == 1
    assert worker.last_frame is not None and worker.last_frame.tobytes() == frame("c5").tobytes()


def test_worker_puts_idle_panel_to_sleep_and_next_frame_is_full(tmp_path: Path) -> None:
    panels: list[SimulatedPanel] = []

    def make() -> SimulatedPanel:
        panels.append(SimulatedPanel(tmp_path, SIZE))
        return panels[-1]

    worker = PanelWorker(make, policy=RefreshPolicy(min_interval=0, sleep_after=0.05),
                         size=SIZE).start()
    worker.submit(frame("A"), "copying")
    assert worker.flush(10)
    deadline = threading.Event()
    for _ in range(200):
        if worker.state.asleep:
            break
        deadline.wait(0.05)
    assert worker.state.asleep and panels[0].sleeps == 1
    worker.submit(frame("B"), "copying")  # same state, but the base image is gone
    assert worker.flush(10)
    worker.stop()
    assert [x["refresh"] for x in read_log(tmp_path)] == ["full", "full"]


def test_worker_abandons_a_hung_call_and_reinitialises(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    gate, entered = threading.Event(), threading.Event()
    gate.set()
    made: list[GatedPanel] = []

    def make() -> GatedPanel:
        made.append(GatedPanel(tmp_path, gate, entered, hang=not made))  # first one hangs
        return made[-1]

    worker = PanelWorker(make, policy=FAST, size=SIZE, op_timeout=0.3).start()
    worker.submit(frame("A"), "idle")
    assert worker.flush(10)
    assert worker.stats.timeouts == 1 and worker.stats.reinits == 1
    assert "did not finish" in caplog.text
    worker.submit(frame("A"), "idle")  # the same frame again: the glass is unknown now
    assert worker.flush(10)
    worker.stop()
    assert len(made) == 2
    assert [(x["refresh"], x["state"]) for x in read_log(tmp_path)] == [("full", "idle")]


def test_worker_survives_a_failing_factory(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []

    def make() -> SimulatedPanel:
        attempts.append(1)
        if len(attempts) == 1:
            raise DeviceError("SPI not ready")
        return SimulatedPanel(tmp_path, SIZE)

    worker = PanelWorker(make, policy=FAST, size=SIZE).start()
    worker.submit(frame("A"), "idle")
    assert worker.flush(10)
    worker.submit(frame("B"), "idle")
    assert worker.flush(10)
    worker.stop()
    assert "cannot open the panel" in caplog.text
    assert [x["state"] for x in read_log(tmp_path)] == ["idle"]


def test_stop_draws_the_pending_frame_then_sleeps(tmp_path: Path) -> None:
    panels: list[SimulatedPanel] = []
    worker = PanelWorker(lambda: panels.append(SimulatedPanel(tmp_path, SIZE)) or panels[-1],
                         policy=RefreshPolicy(min_interval=0.2), size=SIZE).start()
    worker.submit(frame("copying"), "copying")
    worker.submit(frame("receipt"), "card_done")
    worker.stop()
    lines = read_log(tmp_path)
    with Image.open(tmp_path / lines[-1]["file"]) as png:
        assert png.tobytes() == frame("receipt").tobytes()
    assert panels[-1].asleep


def test_default_kit_spec_fits_if_kits_module_present(tmp_path: Path) -> None:
    kits = pytest.importorskip("ghostroll.devices.kits")
    loader = getattr(kits, "load_kit", None) or getattr(kits, "get_kit", None)
    if loader is None:
        pytest.skip("ghostroll.devices.kits has no load_kit/get_kit")
    spec = loader("waveshare-2in13-v4").panel
    panel = panel_factory("simulated", spec, tmp_path)()
    assert panel.size == (spec.width, spec.height)
    panel.show(frame("kit", panel.size), full=True, label="idle")
