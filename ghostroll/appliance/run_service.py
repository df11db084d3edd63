"""`ghostroll service` with the real devices: the Waveshare panel (or the configured
backend), the PiSugar battery, the GPIO button, systemd notify; SIGTERM stops it."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

from ghostroll.appliance import protocol as p
from ghostroll.appliance.host import Devices, real_eject, real_shutdown
from ghostroll.appliance.service import Service
from ghostroll.config import Config
from ghostroll.devices import DeviceError
from ghostroll.devices.battery import BatteryMonitor, BatteryReading
from ghostroll.devices.button import DEVICES_FILE, GpioButton, Press, open_button
from ghostroll.devices.kits import load_kit
from ghostroll.devices.notify import Notifier
from ghostroll.devices.panel import panel_factory
from ghostroll.devices.panel_worker import PanelWorker
from ghostroll.devices.refresh import RefreshPolicy
from ghostroll.exitcodes import ExitCode
from ghostroll.storage.session import write_json_atomic

log = logging.getLogger(__name__)


def _open_button(cfg: Config, on_press: Callable[[Press], None],
                 service: Service) -> GpioButton | None:
    """The button, its pin factory recorded in `devices.json` for `ghostroll doctor`; one
    that cannot start is a problem on the panel, not only a line in the journal."""
    a = cfg.appliance
    record: dict[str, str] = {}
    try:
        button = open_button(a.button_pin, on_press, hold_time=a.button_hold_seconds)
        record["button_factory"] = button.factory if button else "none"
    except DeviceError as exc:
        log.error("%s", exc)
        record["button_error"] = str(exc)
        service.post(p.SetupError(str(exc)[:200], title="Button not working"))
        button = None
    try:
        a.runtime_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(a.runtime_dir / DEVICES_FILE, record)
    except OSError as exc:
        log.warning("cannot record the devices in %s: %s", a.runtime_dir, exc)
    return button


def run_service(cfg: Config) -> int:
    kit = load_kit(cfg.appliance.kit)
    a = cfg.appliance
    panel = PanelWorker(panel_factory(a.panel, kit.panel, a.frames_dir),
                        policy=RefreshPolicy(min_interval=a.panel_min_refresh_seconds,
                                             full_every=a.panel_full_every),
                        size=(kit.panel.width, kit.panel.height),
                        op_timeout=a.panel_timeout_seconds).start()
    holder: dict[str, Service] = {}

    def on_reading(reading: BatteryReading | None) -> None:
        # the machine decides what a low or critical reading means (Policy)
        holder["service"].post(p.Battery(None) if reading is None else p.Battery(
            reading.percent, charging=bool(reading.charging)))

    battery = BatteryMonitor(a.pisugar_address, on_reading, interval=a.battery_poll_seconds)

    def on_press(press: Press) -> None:
        holder["service"].post(p.Hold() if press == Press.LONG else p.Press())

    def stop_devices() -> None:
        battery.stop()
        if button is not None:
            button.close()
        panel.stop()

    devices = Devices(panel_submit=panel.submit, eject=real_eject, shutdown=real_shutdown,
                      notifier=Notifier(), stop_devices=stop_devices)
    service = Service(cfg, kit, devices)
    holder["service"] = service
    battery.start()
    button = _open_button(cfg, on_press, service)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stopping.set())
    service.run()
    return ExitCode.OK
