"""`ghostroll service`: the appliance's long-running process.

It owns the panel, the button and the battery client, runs the state machine, listens on
the card socket, and runs the background work (processing and publishing) in a child
process. Everything that happens arrives as a `protocol` message on one queue
(`self.events`, through `post()` for devices and the work child); `step()` decides;
`_apply()` turns effects into I/O. The loop wakes at least once a second, so
the systemd watchdog is fed from the loop itself, not from panel health.

Everything a device does is injected (`Devices`), so `ghostroll simulate` and the tests
run the same loop with the simulated panel, a scripted button and a fixed battery."""

from __future__ import annotations

import logging
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ghostroll.appliance import machine as sm
from ghostroll.appliance import protocol as p
from ghostroll.appliance.feed import WorkFeed
from ghostroll.appliance.host import Devices, host_info
from ghostroll.appliance.idle_facts import (
    REFRESH_S,
    IdleFacts,
    read_idle_facts,
    with_verify_result,
)
from ghostroll.appliance.link import SOCKET_NAME, CardServer, Incoming
from ghostroll.appliance.machine import Event, Model, State
from ghostroll.appliance.screens import Env, Screen, render, screen_for, status_document
from ghostroll.archive.disk import unmounted_archive
from ghostroll.archive.receipt import session_copy_count
from ghostroll.config import Config
from ghostroll.config.handoff import spawn
from ghostroll.devices.kits import Kit
from ghostroll.errors import DatabaseError
from ghostroll.exitcodes import ExitCode
from ghostroll.storage.db import Database
from ghostroll.storage.session import private_mode, write_json_atomic

log = logging.getLogger("ghostroll.service")
TICK_S = 1.0
RETRY_WORK_S = 30.0
RESIGN_CHECK_S = 6 * 3600.0  # background work re-signs short links running out (link_days)


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
        self._work_started_at = clock()
        self._copies_key: tuple[object, ...] | None = None
        self._copies_n: int | None = None
        self._archive_there: bool | None = None  # the archive disk, at the last tick

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.server = CardServer(self.runtime / SOCKET_NAME, self.events)
        screen = self._render(force_full=True)
        self.dev.notifier.ready(status=self._status_text(screen))
        setup = self.cfg.storage.db_path.parent / "firstboot-error.txt"
        if setup.exists():  # written by ghostroll-firstboot.service (see firstboot.py)
            self.post(p.SetupError(setup.read_text(errors="replace").strip()[:200]))
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
                    item = Event(p.Tick(), self.clock())
                    self._notice_removal()
                    self._notice_archive()
                    if self.clock() - self._work_started_at >= RESIGN_CHECK_S:
                        self.start_work()
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
            self.post(p.CardGone(card))

    def post(self, message: p.Message) -> None:
        """Thread-safe: devices, the work child's reader and helpers call this."""
        self.events.put(Event(message, self.clock()))

    def handle(self, item: object) -> None:
        if isinstance(item, p.ArchiveDone):
            self._archive_done(item)
            return
        event = self._translate(item)
        if event is None:
            return
        try:
            self.model, effects = sm.step(self.model, event)
        except sm.UndeclaredTransition as exc:  # a bug: keep showing what is true
            log.error("%s; the message is dropped", exc)
            return
        for effect in effects:
            self._apply(effect)
        self._render()

    def _archive_done(self, message: p.ArchiveDone) -> None:
        """Sessions got their verified archive copy: count again and redraw now."""
        log.info("archive copy complete: %s", ", ".join(message.session_ids))
        self._copies_key = None
        self._facts_at = None
        self._render()

    def _notice_archive(self) -> None:
        """The archive disk plugged (back) in: archive what waits for it now, not
        after the next card."""
        if self.cfg.archive.archive_dir is None:
            return
        there = unmounted_archive(self.cfg) is None
        if there and self._archive_there is False:
            log.info("archive disk is back: archiving what waits for it")
            self.start_work()
        self._archive_there = there

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
                    return Event(p.CardGone(device), now, device)
            return None
        if isinstance(message, p.Query):
            assert self.server is not None
            screen = screen_for(self.model, self.env())
            self.server.send(item.conn, p.Status(self.status_document(screen)))
            return None
        if isinstance(message, p.Hello):
            self.conns[message.device] = item.conn
            self.devices_by_conn[item.conn] = message.device
            return Event(message, now, message.device)
        if isinstance(message, p.Progress) and message.session_id \
                and message.session_id not in self.linked:
            self.linked.add(message.session_id)
            self.sign_link(message.session_id)
        if isinstance(message, p.Progress | p.Done | p.Failed):
            return Event(message, now, device)
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
        self._work_started_at = self.clock()
        self.work_again.set()
        if self.work_thread is None or not self.work_thread.is_alive():
            self.work_thread = threading.Thread(target=self._work_loop, name="work",
                                                daemon=True)
            self.work_thread.start()

    def _work_loop(self) -> None:
        while self.work_again.is_set() and not self.stopping.is_set():
            self.work_again.clear()
            code = self._run_work(["--stream"] if self.feed.active else [])
            if code == ExitCode.QUEUED:  # offline or waiting for the clock: try later
                self.work_again.wait(RETRY_WORK_S)
                self.work_again.set()

    def sign_link(self, session_id: str) -> None:
        threading.Thread(target=self._run_work, args=(["--link", session_id],),
                         daemon=True).start()

    def _run_work(self, extra: list[str]) -> int:
        stream = "--stream" in extra
        proc = spawn(self.cfg, [*self.work_cmd, *extra], os.environ, keep_stdin=stream,
                     stdout=subprocess.PIPE)
        if stream:
            assert proc.stdin is not None
            self.feed.attach(proc.stdin)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                try:
                    message = p.Message.from_json(line.strip())
                except p.ProtocolError as exc:
                    log.warning("background work said something unexpected: %s", exc)
                    continue
                if isinstance(message, p.LinkReady | p.WorkProgress | p.WorkWaiting
                              | p.WorkDone | p.WorkFailed):
                    self.post(message)
                elif isinstance(message, p.ArchiveDone):
                    self.events.put(message)  # not the machine's: the receipt's count
            code = proc.wait()
        finally:
            if stream:
                self.feed.detach()
        if code not in (ExitCode.OK, ExitCode.QUEUED):
            self.post(p.WorkFailed(f"background work failed (exit {code}); "
                                   "see `journalctl -u ghostroll`"))
        return code

    # ------------------------------------------------------------ output

    def env(self) -> Env:
        try:
            free = shutil.disk_usage(self.cfg.storage.base_dir).free
        except OSError:
            free = None
        facts = self._idle_facts()
        return Env(now=datetime.now().astimezone(), free_bytes=free, hostname=self.hostname,
                   ip=self.ip, queued=facts.queued, last_session=facts.last_session,
                   problem=facts.problem, copies=self._copies(),
                   second_copy_waiting=facts.second_copy_waiting,
                   stored_bytes=facts.stored_bytes, sessions=facts.sessions)

    def _copies(self) -> int | None:
        """With an archive target: the current session's copy count, read again when the
        state or the background work changes (the work child archives first)."""
        m = self.model
        if self.cfg.archive.archive_dir is None or not m.session_id:
            return None
        key = (m.session_id, m.state, m.work)
        if key != self._copies_key:
            self._copies_key = key
            try:
                with Database(self.cfg.storage.db_path) as db:
                    self._copies_n = session_copy_count(db, m.session_id)
            except (DatabaseError, sqlite3.Error, OSError) as exc:
                log.warning("receipt: cannot count copies: %s", exc)
        return self._copies_n

    def _idle_facts(self) -> IdleFacts:
        if self.model.state != State.IDLE:
            self._facts_at = None  # back at idle, read afresh
            return self._facts
        now = self.clock()
        if self._facts_at is None or now - self._facts_at >= REFRESH_S:
            self._facts_at = now
            try:
                path = self.cfg.storage.db_path
                archive = self.cfg.archive.archive_dir is not None
                self._facts = with_verify_result(read_idle_facts(path, archive), path)
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
        return status_document(self.model, screen, self.runtime / "status.png",
                               self.hostname, self.ip, self._copies())

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

