"""`ghostroll simulate`: the whole appliance in one process, with the simulated panel.

The real service loop runs with the simulated panel (PNG frames + frames.jsonl in
`--frames`), a fixed battery reading, and a scripted (`--press short@12`) or keyboard
button. A real `ghostroll card-worker` process copies the card (a folder, or a FAT/exFAT
card image mounted read-only through FUSE, which needs root) and talks to the service
over the real socket; when it has finished, the card is "pulled". It runs until the
session is done (published, or local without a bucket) or failed."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ghostroll.appliance import protocol as p
from ghostroll.appliance.host import Devices
from ghostroll.appliance.machine import Model, State
from ghostroll.appliance.service import Service
from ghostroll.config import Config
from ghostroll.config.handoff import spawn
from ghostroll.devices.button import KeyboardButton, Press, ScriptedButton, parse_presses
from ghostroll.devices.kits import load_kit
from ghostroll.devices.panel import panel_factory
from ghostroll.devices.panel_worker import PanelWorker
from ghostroll.devices.refresh import RefreshPolicy
from ghostroll.errors import CardError
from ghostroll.exitcodes import ExitCode

log = logging.getLogger("ghostroll.simulate")
DEVICE = "sim0"


@contextlib.contextmanager
def card_path(card: Path, scratch: Path) -> Iterator[Path]:
    """A folder as it is, or a card image mounted read-only (root only)."""
    if card.is_dir():
        yield card
        return
    if not card.is_file():
        raise CardError(f"{card} is neither a folder nor a card image")
    if os.geteuid() != 0:
        raise CardError("a card image is mounted through a loop device and FUSE, which needs "
                        "root; give a folder holding DCIM/ instead")
    from ghostroll.card.volume import parse_boot_sector
    from ghostroll.devtools.cardimage import mounted

    with card.open("rb") as fh:
        head = fh.read(512)
    parsed = parse_boot_sector(head)
    fs = "exfat" if parsed and parsed[0].startswith("exfat") else "vfat"
    with mounted(card, scratch / "card", fs=fs) as mnt:
        yield mnt


def simulate(cfg: Config, card: Path, frames: Path, kit_name: str, presses: list[str],
             battery: float = 87.0, timeout_s: float = 600.0) -> Model:
    kit = load_kit(kit_name)
    frames.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="ghostroll-sim-"))
    cfg = replace(cfg, appliance=replace(cfg.appliance, runtime_dir=scratch / "run",
                                         panel="simulated", frames_dir=frames.absolute()))
    panel = PanelWorker(panel_factory("simulated", kit.panel, frames),
                        policy=RefreshPolicy(min_interval=0.2, full_every=10),
                        size=(kit.panel.width, kit.panel.height)).start()
    holder: dict[str, Service] = {}

    def eject(device: str) -> None:
        time.sleep(0.5)
        holder["service"].post(p.CardGone(device))

    devices = Devices(panel_submit=panel.submit, eject=eject, shutdown=lambda: None,
                      stop_devices=lambda: panel.stop())
    service = Service(cfg, kit, devices)
    service.sys_block = None  # the simulated card is "pulled" by _insert, not by the kernel
    holder["service"] = service
    service.post(p.Battery(battery, charging=False))
    button = _button(service, presses)
    with card_path(card, scratch) as mounted_card:
        inserted = threading.Thread(target=_insert, args=(service, cfg, mounted_card),
                                    daemon=True)
        inserted.start()
        model = service.run(until=lambda m: _finished(m, inserted), timeout_s=timeout_s)
        inserted.join(timeout=30)
    if button is not None:
        button.close()
    return model


def _button(service: Service, presses: list[str]) -> ScriptedButton | KeyboardButton | None:
    def on_press(press: Press) -> None:
        service.post(p.Hold() if press == Press.LONG else p.Press())

    if presses:
        return ScriptedButton(parse_presses(presses), on_press).start()
    if sys.stdin.isatty():
        print("simulate: press Enter for a short press, type 'l' + Enter for a long press")
        return KeyboardButton(sys.stdin, on_press).start()
    return None


def _insert(service: Service, cfg: Config, card: Path) -> None:
    """The photographer inserts the card, and pulls it once the worker is done."""
    time.sleep(1.0)
    worker = spawn(cfg, [sys.executable, "-m", "ghostroll", "card-worker", "--device",
                         DEVICE, str(card)], os.environ, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    assert worker.stderr is not None
    stderr = worker.stderr.read()
    worker.wait()
    if worker.returncode not in (ExitCode.OK, ExitCode.PARTIAL):
        log.warning("card worker ended with %d: %s", worker.returncode, stderr.strip())
    time.sleep(2.0)  # long enough for the receipt to be on the panel
    service.post(p.CardGone(DEVICE))


def _finished(m: Model, inserted: threading.Thread) -> bool:
    if inserted.is_alive():
        return False
    return m.state in (State.DONE, State.ERROR, State.NOTHING_NEW, State.IDLE,
                       State.LOW_BATTERY, State.SHUTTING_DOWN) and m.work != "processing" \
        and m.work != "publishing" and m.card is None


def summary(m: Model, frames: Path) -> str:
    lines = [f"simulate: final state {m.state.value}"]
    if m.receipt is not None:
        r = m.receipt
        lines.append(f"simulate: receipt: {r.new} new, {r.skipped} already safe, "
                     f"{r.failed} errors")
    if m.link:
        lines.append(f"simulate: share link: {m.link}")
    if m.error:
        lines.append(f"simulate: error: {m.error}: {m.error_hint}")
    count = len(list(frames.glob("*.png")))
    lines.append(f"simulate: {count} panel frames in {frames} (sequence in "
                 f"{frames / 'frames.jsonl'})")
    return "\n".join(lines)
