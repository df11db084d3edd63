"""`ghostroll service`: the appliance's long-running process.

It owns the panel, the button and the battery client, runs the state machine, listens on
the card socket, and runs the background work (processing and publishing) in a child
process. One thread turns everything into machine events (`self.events`); `step()`
decides; `_apply()` turns effects into I/O. The loop wakes at least once a second, so
the systemd watchdog is fed from the loop itself, not from panel health.

Everything a device does is injected (`Devices`), so `ghostroll simulate` and the tests
run the same loop with the simulated panel, a scripted button and a fixed battery."""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ghostroll.appliance import machine as sm
from ghostroll.appliance import protocol as p
from ghostroll.appliance.feed import WorkFeed
from ghostroll.appliance.idle_facts import (
    REFRESH_S,
    IdleFacts,
    read_idle_facts,
    with_verify_result,
)
from ghostroll.appliance.link import SOCKET_NAME, CardServer, Incoming
from ghostroll.appliance.machine import Ev, Event, Model, State
from ghostroll.appliance.screens import Env, Screen, render, screen_for
from ghostroll.config import Config
from ghostroll.devices.kits import Kit
from ghostroll.devices.notify import Notifier
from ghostroll.storage.session import private_mode, write_json_atomic

log = logging.getLogger("ghostroll.service")
TICK_S = 1.0
RETRY_WORK_S = 30.0


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


class Service:
    def __init__(self, cfg: Config, kit: Kit, devices: Devices,
                 clock: Callable[[], float] = time.monotonic,
                 work_cmd: list[str] | None = None) -> None:
        self.cfg = cfg
        self.kit = kit
        self.dev = devices
        self.clock = clock
        self.events: queue.Queue[object] = queue.Queue()
        policy = sm.Policy(battery_min=cfg.appliance.battery_min_percent,
                           battery_critical=cfg.appliance.battery_critical_percent)
        self.model = Model(policy=policy)
        self.conns: dict[str, int] = {}  # device -> socket connection
        self.devices_by_conn: dict[int, str] = {}
        self.stopping = threading.Event()
        self.work_cmd = work_cmd or [sys.executable, "-m", "ghostroll", "work"]
        self.work_thread: threading.Thread | None = None
        self.work_again = threading.Event()
        self.feed = WorkFeed()  # recorded originals → the streaming work child
        self.linked: set[str] = set()
        self.runtime = cfg.appliance.runtime_dir
        self.server: CardServer | None = None
        self.hostname, self.ip = host_info()
        self._last_screen: Any = None
        # where removed cards disappear from; None (simulate) when removal is reported
        self.sys_block: Path | None = Path("/sys/class/block")
        self._last_state: State | None = None
        self._facts = IdleFacts()
        self._facts_at: float | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.server = CardServer(self.runtime / SOCKET_NAME, self.events)
        screen = self._render(force_full=True)
        self.dev.notifier.ready(status=self._status_text(screen))
        setup = self.cfg.storage.db_path.parent / "firstboot-error.txt"
        if setup.exists():  # written by ghostroll-firstboot.service (see firstboot.py)
            self.post(Ev.SETUP_ERROR, message=setup.read_text(errors="replace").strip()[:200])
        self.start_work()  # sessions left over from a crash or a worker without us

    def run(self, until: Callable[[Model], bool] | None = None,
            timeout_s: float | None = None) -> Model:
        self.start()
        deadline = None if timeout_s is None else self.clock() + timeout_s
        try:
            while not self.stopping.is_set():
                try:
                    item = self.events.get(timeout=TICK_S)
                except queue.Empty:
                    item = Event(Ev.TICK, self.clock())
                    self._notice_removal()
                self.handle(item)
                while not self.events.empty():
                    self.handle(self.events.get_nowait())
                self.dev.notifier.watchdog()
                if until is not None and until(self.model):
                    break
                if deadline is not None and self.clock() > deadline:
                    log.error("service run timed out in state %s", self.model.state)
                    break
        finally:
            self.close()
        return self.model

    def close(self) -> None:
        self.dev.notifier.stopping()
        if self.server is not None:
            self.server.close()
        self.dev.stop_devices()

    # ------------------------------------------------------------ events in

    def _notice_removal(self) -> None:
        """A card whose copy is over has no worker left to report its removal: the
        kernel's block device list tells."""
        card = self.model.card
        if card and self.sys_block is not None and not (self.sys_block / card).exists():
            self.post(Ev.CARD_REMOVED, device=card)

    def post(self, kind: Ev, **data: object) -> None:
        """Thread-safe: devices and helpers call this."""
        self.events.put(Event(kind, self.clock(), str(data.pop("device", "")),
                              str(data.pop("label", "")), data))

    def handle(self, item: object) -> None:
        event = self._translate(item)
        if event is None:
            return
        self.model, effects = sm.step(self.model, event)
        for effect in effects:
            self._apply(effect)
        self._render()

    def _translate(self, item: object) -> Event | None:
        if isinstance(item, Event):
            return item
        if not isinstance(item, Incoming):
            return None
        now = self.clock()
        device = self.devices_by_conn.get(item.conn, "")
        message = item.message
        if isinstance(message, p.Recorded):
            if self.feed.recorded(message):
                self.start_work()
            return None
        if isinstance(message, p.Done | p.Failed) or (message is None and device):
            self.feed.end()  # the copy is over: the work child's input ends
        if message is None:  # the worker went away
            if device and self.conns.get(device) == item.conn:
                del self.conns[device]
                if self.model.card == device and self.model.state in (State.CHECKING,
                                                                      State.COPYING):
                    return Event(Ev.CARD_REMOVED, now, device)
            return None
        if isinstance(message, p.Query):
            assert self.server is not None
            screen = screen_for(self.model, self.env())
            self.server.send(item.conn, p.Status(self.status_document(screen)))
            return None
        if isinstance(message, p.Hello):
            self.conns[message.device] = item.conn
            self.devices_by_conn[item.conn] = message.device
            return Event(Ev.CARD_ADDED, now, message.device, message.label)
        if isinstance(message, p.Progress):
            data = {k: getattr(message, k) for k in message.__dataclass_fields__}
            if message.session_id and message.session_id not in self.linked:
                self.linked.add(message.session_id)
                self.sign_link(message.session_id)
            return Event(Ev.PHASE_PROGRESS, now, device, data=data)
        if isinstance(message, p.Done):
            return Event(Ev.PHASE_DONE, now, device, data={
                "new": message.new, "skipped": message.skipped, "failed": message.failed,
                "bytes_new": message.bytes_new, "session_id": message.session_id})
        if isinstance(message, p.Failed):
            return Event(Ev.PHASE_FAILED, now, device, data={
                "reason": message.reason, "message": message.message,
                "session_id": message.session_id})
        return None

    # ------------------------------------------------------------ effects out

    def _apply(self, effect: sm.Effect) -> None:
        assert self.server is not None
        if isinstance(effect, sm.Grant):
            self._send(effect.device, p.Grant())
        elif isinstance(effect, sm.Wait):
            self._send(effect.device, p.Wait(effect.reason))
        elif isinstance(effect, sm.Refuse):
            self._send(effect.device, p.Refuse(effect.reason))
        elif isinstance(effect, sm.CancelCopy):
            self._send(effect.device, p.Cancel())
        elif isinstance(effect, sm.Eject):
            threading.Thread(target=self.dev.eject, args=(effect.device,), daemon=True).start()
        elif isinstance(effect, sm.StartWork):
            self.start_work()
        elif isinstance(effect, sm.Shutdown):
            self._render(force_full=True)
            self.dev.shutdown()
            self.stopping.set()
        elif isinstance(effect, sm.LogProblem):
            log.warning("%s", effect.message)

    def _send(self, device: str, message: p.Message) -> None:
        conn = self.conns.get(device)
        if conn is None or self.server is None or not self.server.send(conn, message):
            log.warning("could not tell the worker of %s: %s", device, message.type)

    # ------------------------------------------------------------ background work

    def start_work(self) -> None:
        """Run `ghostroll work` now (or once more after the current run)."""
        self.work_again.set()
        if self.work_thread is None or not self.work_thread.is_alive():
            self.work_thread = threading.Thread(target=self._work_loop, name="work",
                                                daemon=True)
            self.work_thread.start()

    def _work_loop(self) -> None:
        while self.work_again.is_set() and not self.stopping.is_set():
            self.work_again.clear()
            code = self._run_work(["--stream"] if self.feed.active else [])
            if code == 3:  # offline or waiting for the clock: try again later
                self.work_again.wait(RETRY_WORK_S)
                self.work_again.set()

    def sign_link(self, session_id: str) -> None:
        threading.Thread(target=self._run_work, args=(["--link", session_id],),
                         daemon=True).start()

    def _run_work(self, extra: list[str]) -> int:
        env = {**os.environ, "GHOSTROLL_CONFIG": str(self.cfg.config_file or ""),
               **_env_overrides(self.cfg)}
        stream = "--stream" in extra
        proc = subprocess.Popen([*self.work_cmd, *extra], stdout=subprocess.PIPE, text=True,
                                env=env, stdin=subprocess.PIPE if stream else None)
        if stream:
            assert proc.stdin is not None
            self.feed.attach(proc.stdin)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                self._work_event(item)
            code = proc.wait()
        finally:
            if stream:
                self.feed.detach()
        if code not in (0, 3):
            self.post(Ev.WORK_FAILED, message=f"background work failed (exit {code}); "
                                              "see `journalctl -u ghostroll`")
        return code

    def _work_event(self, item: dict[str, Any]) -> None:
        stage = item.get("stage")
        expires = item.get("expires")
        when = datetime.fromisoformat(expires) if isinstance(expires, str) else None
        if item.get("url"):
            self.post(Ev.LINK_READY, url=item["url"], expires=when,
                      session_id=item.get("session_id"))
        if stage in ("processing", "uploading"):
            self.post(Ev.WORK_PROGRESS, stage="processing" if stage == "processing"
                      else "publishing", done=item.get("done", 0), total=item.get("total", 0))
        elif stage in ("done", "local"):
            self.post(Ev.PUBLISH_DONE, url=item.get("url"), photos=item.get("photos", 0),
                      expires=when)
        elif stage == "waiting":
            self.post(Ev.WORK_WAITING, reason=item.get("reason", ""))
        elif stage == "failed":
            self.post(Ev.WORK_FAILED, message=item.get("message", ""))

    # ------------------------------------------------------------ output

    def env(self) -> Env:
        try:
            free = shutil.disk_usage(self.cfg.storage.base_dir).free
        except OSError:
            free = None
        facts = self._idle_facts()
        return Env(now=datetime.now().astimezone(), free_bytes=free, hostname=self.hostname,
                   ip=self.ip, queued=facts.queued, last_session=facts.last_session,
                   problem=facts.problem)

    def _idle_facts(self) -> IdleFacts:
        if self.model.state != State.IDLE:
            self._facts_at = None  # back at idle, read afresh
            return self._facts
        now = self.clock()
        if self._facts_at is None or now - self._facts_at >= REFRESH_S:
            self._facts_at = now
            try:
                path = self.cfg.storage.db_path
                self._facts = with_verify_result(read_idle_facts(path), path)
            except (sqlite3.Error, OSError) as exc:
                log.warning("idle screen: cannot read the database: %s", exc)
        return self._facts

    def _render(self, force_full: bool = False) -> Screen:
        """Draw the model if its screen changed; the screen, for status text and files."""
        screen = screen_for(self.model, self.env())
        state_changed = self.model.state != self._last_state
        # the clock on the idle screen changes every minute; redraw on content only
        key = replace(screen, battery=None if screen.battery is None
                      else round(screen.battery))
        if key == self._last_screen and not force_full:
            return screen
        self._last_screen = key
        panel = self.kit.panel
        frame = render(screen, panel.width, panel.height)
        self.dev.panel_submit(frame, self.model.state.value, force_full or state_changed)
        self._write_status(frame, screen, state_changed)
        if state_changed:
            self.dev.notifier.status(self._status_text(screen))
            log.info("state %s", self.model.state.value)
        self._last_state = self.model.state
        return screen

    def _status_text(self, screen: Screen) -> str:
        return f"{self.model.state.value}: {screen.big}"

    def status_document(self, screen: Screen) -> dict[str, Any]:
        m = self.model
        return {
            "state": m.state.value,
            "step": m.work or m.state.value,
            "message": screen.big,
            "session_id": m.session_id,
            "volume": m.label or None,
            "counts": {"discovered": m.copy.files_total, "new": m.copy.new,
                       "skipped": m.copy.skipped, "copied": m.copy.files_read,
                       "processed": m.work_done if m.work == "processing" else None,
                       "uploaded": m.work_done if m.work == "publishing" else None,
                       "failed": m.copy.failed},
            "url": m.link,
            "qr_path": str(self.runtime / "status.png"),
            "link_expires": m.link_expires.isoformat() if m.link_expires else None,
            "error": m.error or None,
            "hostname": self.hostname,
            "ip": self.ip,
            "battery_percentage": m.battery,
            "battery_charging": m.charging,
            "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _write_status(self, frame: Any, screen: Screen, mirror: bool) -> None:
        doc = self.status_document(screen)
        mode = private_mode()  # the share link (and its QR) are in both
        try:
            write_json_atomic(self.runtime / "status.json", doc, mode)
            temp = self.runtime / ".status.png.tmp"
            frame.save(temp, "PNG")
            os.chmod(temp, mode)
            os.replace(temp, self.runtime / "status.png")
            if mirror:  # the SD card gets a copy on state changes only
                self.cfg.storage.base_dir.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self.cfg.storage.base_dir / "status.json", doc, mode)
        except OSError as exc:
            log.warning("status not written: %s", exc)


def _env_overrides(cfg: Config) -> dict[str, str]:
    """The child `ghostroll work` gets exactly this service's settings."""
    from ghostroll.config import KEYS

    env = {}
    for key in KEYS:
        value = getattr(getattr(cfg, key.section), key.name)
        if value is None:
            value = ""
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[key.env] = str(value)
    return env
