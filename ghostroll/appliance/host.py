"""What the service does to the host: eject a card, power off (through systemd), and
its name and address for the idle screen; `Devices` bundles them so simulate and tests
inject their own."""

from __future__ import annotations

import logging
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ghostroll.devices.notify import Notifier

log = logging.getLogger("ghostroll.service")


@dataclass
class Devices:
    """How the service reaches the outside world; the defaults are the real ones."""
    panel_submit: Callable[[Any, str, bool], None]
    eject: Callable[[str], None]
    shutdown: Callable[[], None]
    notifier: Notifier = field(default_factory=Notifier)
    stop_devices: Callable[[], None] = lambda: None


def systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", "--no-ask-password", *args], capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        log.error("systemctl %s failed: %s", " ".join(args), done.stderr.strip())


def real_eject(device: str) -> None:
    """Stopping the card's mount unit stops its worker first, then unmounts."""
    systemctl("stop", f"ghostroll-mount@{device}.service")


def real_shutdown() -> None:
    systemctl("poweroff")


def host_info() -> tuple[str, str]:
    name = socket.gethostname()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for UDP connect
            ip = probe.getsockname()[0]
    except OSError:
        ip = ""
    return name, ip
