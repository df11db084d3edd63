"""Supported hardware kits, as data: one TOML file per kit in hardware/ (shipped in the
package as ghostroll/devices/kitdata). A kit names the panel driver and geometry, the button
pin and the battery."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from ghostroll.errors import ConfigError


@dataclass(frozen=True)
class PanelSpec:
    driver: str  # module in Waveshare's waveshare_epd
    width: int  # frame as drawn (landscape)
    height: int
    native_width: int  # the driver's geometry (portrait)
    native_height: int
    partial: bool
    partial_method: str
    base_method: str


@dataclass(frozen=True)
class Kit:
    name: str
    title: str
    panel: PanelSpec
    button_pin: int
    button_pull_up: bool
    battery: str
    battery_address: str
    pins: dict[str, tuple[int, ...]]


def _files():  # type: ignore[no-untyped-def]
    return resources.files("ghostroll.devices") / "kitdata"


def kit_names() -> list[str]:
    return sorted(f.name.removesuffix(".toml") for f in _files().iterdir()
                  if f.name.endswith(".toml"))


def load_kit(name: str) -> Kit:
    path = _files() / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown kit {name!r}; known kits: {', '.join(kit_names())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        panel = data["panel"]
        return Kit(
            name=data["name"], title=data["title"],
            panel=PanelSpec(
                driver=panel["driver"], width=int(panel["width"]),
                height=int(panel["height"]), native_width=int(panel["native_width"]),
                native_height=int(panel["native_height"]), partial=bool(panel["partial"]),
                partial_method=panel.get("partial_method", ""),
                base_method=panel.get("base_method", "")),
            button_pin=int(data["button"]["pin"]),
            button_pull_up=bool(data["button"].get("pull_up", True)),
            battery=data["battery"]["kind"], battery_address=data["battery"]["address"],
            pins={k: tuple(v) for k, v in data.get("pins", {}).items()},
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"kit file {name}.toml is broken: {exc!r}") from exc
