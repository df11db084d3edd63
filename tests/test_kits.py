"""Kit data: every kit loads, its geometry matches its driver, and no pins clash."""

from __future__ import annotations

import pytest

from ghostroll.devices.kits import kit_names, load_kit
from ghostroll.errors import ConfigError


def test_the_three_kits_load() -> None:
    assert {"waveshare-2in13-v4", "waveshare-2in7-v2", "waveshare-2in9-v2"} <= set(kit_names())
    sizes = {name: (load_kit(name).panel.width, load_kit(name).panel.height)
             for name in kit_names()}
    assert sizes["waveshare-2in13-v4"] == (250, 122)
    assert sizes["waveshare-2in7-v2"] == (264, 176)
    assert sizes["waveshare-2in9-v2"] == (296, 128)


@pytest.mark.parametrize("name", kit_names())
def test_geometry_and_pins(name: str) -> None:
    kit = load_kit(name)
    panel = kit.panel
    assert sorted((panel.width, panel.height)) == sorted((panel.native_width,
                                                           panel.native_height))
    assert panel.width > panel.height  # we draw landscape
    if panel.partial:
        assert panel.partial_method and panel.base_method
    assert kit.button_pin in kit.pins["button"]
    taken = set(kit.pins["panel"]) | set(kit.pins["battery_i2c"])
    assert kit.button_pin not in taken, "the button would share a pin with the panel/battery"


def test_unknown_kit_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known kits: .*waveshare-2in13-v4"):
        load_kit("inky-phat")
