"""Guest-only (VM test): the frames the service rendered, sent through the exact
Waveshare driver code the image installed, under the guest's Python.

Its RST/DC/BUSY/PWR lines are the gpio-sim chip's (PANEL_PINS=lgpio) or gpiozero
MockFactory pins, and SPI is a recording stand-in
for `spidev` (the guest kernel has no SPI controller). The bytes the driver writes into
the panel's RAM (command 0x24) are decoded back into a picture, which must equal the
frame the service rendered; the QR code on the last "done" frame must decode from it.
Needs `Raspberry` in /proc/cpuinfo (the vendor's board probe): the caller bind-mounts
the test-only fake cpuinfo.

    python panel_spi.py FRAMES_DIR KIT OUT.json
"""

import json
import os
import sys
import types
from pathlib import Path

from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from PIL import Image, ImageChops

writes: list[tuple[int, int]] = []  # (DC level, byte)
if os.environ.get("PANEL_PINS") == "lgpio":  # the lines of the gpio-sim chip
    from gpiozero.pins.lgpio import LGPIOFactory

    factory = LGPIOFactory()
else:
    factory = MockFactory()
Device.pin_factory = factory
DC_PIN = 25


class RecordingSpiDev:
    """The part of py-spidev's SpiDev the vendor's epdconfig uses."""

    def __init__(self) -> None:
        self.opened: tuple[int, int] | None = None
        self.max_speed_hz = 0
        self.mode = 0

    def open(self, bus: int, device: int) -> None:
        self.opened = (bus, device)

    def close(self) -> None:
        self.opened = None

    def _record(self, data: object) -> None:
        assert self.opened == (0, 0), "SPI written while closed"
        dc = factory.pin(DC_PIN).state
        writes.extend((int(dc), b) for b in bytes(data))  # type: ignore[call-overload]

    writebytes = writebytes2 = xfer = xfer2 = xfer3 = _record


spidev = types.ModuleType("spidev")
spidev.SpiDev = RecordingSpiDev  # type: ignore[attr-defined]
sys.modules["spidev"] = spidev


def ram_writes(command: int) -> list[bytes]:
    out: list[bytearray] = []
    current: bytearray | None = None
    for dc, byte in writes:
        if dc == 0:
            current = bytearray() if byte == command else None
            if current is not None:
                out.append(current)
        elif current is not None:
            current.append(byte)
    return [bytes(x) for x in out]


def decode(buf: bytes, native: tuple[int, int], frame_size: tuple[int, int]) -> Image.Image:
    """Panel RAM (portrait, 1 bit, rows padded to bytes) back into the landscape frame."""
    image = Image.frombytes("1", native, buf)
    return image if image.size == frame_size else image.rotate(-90, expand=True)


def main(frames_dir: Path, kit_name: str, out_path: Path) -> int:
    from ghostroll.devices.kits import load_kit
    from ghostroll.devices.panel_waveshare import WavesharePanel

    spec = load_kit(kit_name).panel
    panel = WavesharePanel(spec)  # the real import of waveshare_epd.<driver>
    driver = sys.modules[f"waveshare_epd.{spec.driver}"].__file__
    lines = [json.loads(x) for x in (frames_dir / "frames.jsonl").read_text().splitlines() if x]
    lines = list({line["state"]: line for line in lines}.values())  # the last of each screen
    results = []
    qr = None
    for line in lines:
        frame = Image.open(frames_dir / line["file"]).convert("1")
        writes.clear()
        panel.show(frame, full=True, label=line["state"])
        [ram] = ram_writes(0x24)[:1] or [b""]
        shown = decode(ram, (spec.native_width, spec.native_height), frame.size)
        equal = ImageChops.difference(shown.convert("L"), frame.convert("L")).getbbox() is None
        results.append({"file": line["file"], "state": line["state"], "equal": equal,
                        "ram_bytes": len(ram)})
        if line["state"] == "done":
            qr = read_qr(shown)
    panel.close()
    out = {"driver": driver, "frames": results, "qr": qr,
           "pins": type(factory).__name__}
    out_path.write_text(json.dumps(out, indent=1))
    print(json.dumps({"driver": driver, "frames": len(results),
                      "equal": sum(r["equal"] for r in results), "qr": qr}))
    return 0


def read_qr(image: Image.Image) -> str | None:
    import zxingcpp

    big = image.convert("L").resize((image.width * 4, image.height * 4), Image.NEAREST)
    found = zxingcpp.read_barcodes(big)
    return found[0].text if found else None


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
