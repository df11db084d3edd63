"""The real e-ink panel: Waveshare's `waveshare_epd` driver behind `Panel`.

Imported only when the waveshare backend is chosen; the vendor package itself is
imported lazily in `WavesharePanel.__init__` (its `epdconfig` claims GPIO pins and
opens SPI at import, and probes the board). One small adapter per panel model, because
the vendor modules spell the same steps differently (`displayPartial` /
`display_Partial(img, x0, y0, x1, y1)` / `DisplayPartial`, `Clear(color)` / `Clear()`).

Sequence per frame: a full refresh is `init()` then the base-image method (which also
stores the image partial refreshes are drawn against) or `display()` on panels without
partial refresh; a partial refresh is the partial method alone, on an awake panel that
has a base image (otherwise it is drawn in full). `sleep()` puts the controller into
deep sleep and powers the module down; the next frame calls `init()` again. Nothing
clears the glass on close: the last picture (the receipt) must stay after power-off.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from PIL import Image

from ghostroll.devices import DeviceError
from ghostroll.devices.panel import PanelSpecLike, check_frame

log = logging.getLogger(__name__)

VENDOR_PACKAGE = "waveshare_epd"


class Adapter:
    """Drives one vendor `EPD` object; the default spelling is the kit's method names,
    called with the packed buffer only (2.13" V4, 2.9" V2 and most newer models)."""

    def __init__(self, epd: Any, spec: PanelSpecLike) -> None:
        self.epd = epd
        self.spec = spec
        needed = ["init", "getbuffer", "display", "sleep"]
        if spec.partial:
            needed += [spec.partial_method, spec.base_method]
        missing = [name for name in needed if not callable(getattr(epd, name, None))]
        if missing:
            raise DeviceError(f"panel driver {spec.driver} has no method "
                              + ", ".join(missing) + " (kit data and driver disagree)")

    def init(self) -> None:
        if self.epd.init() == -1:  # the vendor reports a failed SPI/GPIO setup this way
            raise DeviceError(f"panel driver {self.spec.driver}: init failed (SPI/GPIO)")

    def buffer(self, image: Image.Image) -> Any:
        return self.epd.getbuffer(image)

    def full(self, buf: Any) -> None:
        if self.spec.partial:
            getattr(self.epd, self.spec.base_method)(buf)
        else:
            self.epd.display(buf)

    def partial(self, buf: Any) -> None:
        getattr(self.epd, self.spec.partial_method)(buf)

    def sleep(self) -> None:
        self.epd.sleep()


class WindowedPartialAdapter(Adapter):
    """Models whose partial refresh takes a window (2.7" V2): always the whole panel."""

    def partial(self, buf: Any) -> None:
        getattr(self.epd, self.spec.partial_method)(buf, 0, 0, self.epd.width, self.epd.height)


ADAPTERS: dict[str, type[Adapter]] = {
    "epd2in13_V4": Adapter,
    "epd2in9_V2": Adapter,
    "epd2in7_V2": WindowedPartialAdapter,
}


class WavesharePanel:
    """A Waveshare panel described by a kit's `PanelSpec`."""

    def __init__(self, spec: PanelSpecLike,
                 import_module: Callable[[str], ModuleType] = importlib.import_module) -> None:
        self.spec = spec
        name = f"{VENDOR_PACKAGE}.{spec.driver}"
        try:
            module = import_module(name)
        except ImportError as exc:
            raise DeviceError(f"cannot import the panel driver {name}: {exc}") from exc
        except Exception as exc:  # epdconfig probes the board and loads native blobs
            raise DeviceError(f"the panel driver {name} failed to load on this machine: "
                              f"{type(exc).__name__}: {exc}") from exc
        epd = module.EPD()
        native = (epd.width, epd.height)
        if native != (spec.native_width, spec.native_height):
            raise DeviceError(f"panel driver {spec.driver} is {native[0]}x{native[1]}, the kit "
                              f"says {spec.native_width}x{spec.native_height}")
        if sorted(native) != sorted((spec.width, spec.height)):
            raise DeviceError(f"kit frame {spec.width}x{spec.height} is not the panel "
                              f"{native[0]}x{native[1]} turned")
        self.adapter = ADAPTERS.get(spec.driver, Adapter)(epd, spec)
        self._awake = False
        self._has_base = False

    @property
    def size(self) -> tuple[int, int]:
        return (self.spec.width, self.spec.height)

    def show(self, image: Image.Image, full: bool, label: str = "") -> None:
        check_frame(image, self.size)
        buf = self.adapter.buffer(image)  # the vendor turns a landscape frame itself
        if full or not self.spec.partial or not (self._awake and self._has_base):
            self.adapter.init()
            self._awake = True
            self.adapter.full(buf)
            self._has_base = self.spec.partial
        else:
            self.adapter.partial(buf)

    def sleep(self) -> None:
        if self._awake:
            self.adapter.sleep()
        self._awake = False
        self._has_base = False

    def close(self) -> None:
        self.sleep()
