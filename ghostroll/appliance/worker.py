"""`ghostroll card-worker`: the per-card process the udev rule's unit starts.

It gets the already-mounted read-only path, asks the service for the slot (one card at
a time), runs the card phase, reports progress, and exits. If the service is not
running it copies anyway: the card is the only copy, and the service picks the session
up when it starts."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from ghostroll.appliance import protocol as p
from ghostroll.appliance.link import SOCKET_NAME, WorkerLink
from ghostroll.card.ingest import IngestResult, Recorded, ingest_card
from ghostroll.card.volume import Volume, identify
from ghostroll.config import Config
from ghostroll.errors import CardError, DiskFullError
from ghostroll.exitcodes import ExitCode
from ghostroll.pipeline.events import ThrottledProgress, card_outcome
from ghostroll.storage.db import Database, SessionRow

log = logging.getLogger("ghostroll.worker")


def udev_identity(device: str) -> tuple[str | None, str | None]:
    """(volume id, label) from the udev database, as the rule saw the card."""
    try:
        import pyudev
    except ImportError:
        return None, None
    try:
        dev = pyudev.Devices.from_device_file(pyudev.Context(), f"/dev/{device}")
    except (pyudev.DeviceNotFoundError, OSError, ValueError):
        return None, None
    uuid, fs_type = dev.properties.get("ID_FS_UUID"), dev.properties.get("ID_FS_TYPE", "")
    volume_id = f"{'exfat' if fs_type == 'exfat' else 'fat'}:{uuid.upper()}" if uuid else None
    return volume_id, dev.properties.get("ID_FS_LABEL")


def wait_for_slot(link: WorkerLink, hello: p.Hello) -> p.Message | None:
    """Send hello; return Grant, Refuse, or None when the service went away."""
    link.send(hello)
    while True:
        message = link.inbox.get()
        if message is None or isinstance(message, p.Grant | p.Refuse):
            return message
        if isinstance(message, p.Wait):
            log.info("waiting for the service: %s", message.reason)


def run_card_worker(device: str, mount: Path, cfg: Config, volume_id: str | None = None,
                    label: str | None = None) -> int:
    if not volume_id:
        volume_id, udev_label = udev_identity(device)
        label = label or udev_label
    volume = identify(mount, volume_id, label)
    link = WorkerLink.connect(cfg.appliance.runtime_dir / SOCKET_NAME)
    cancel = threading.Event()
    if link is not None:
        answer = wait_for_slot(link, p.Hello(device=device, label=volume.label,
                                             volume_id=volume.id, mount=str(mount),
                                             pid=os.getpid()))
        if isinstance(answer, p.Refuse):
            log.warning("service refused the copy: %s", answer.reason)
            link.close()
            return ExitCode.REFUSED
        threading.Thread(target=_watch_cancel, args=(link, cancel), daemon=True).start()
    stop = _stop_on_sigterm(cancel)
    try:
        result = _ingest(mount, cfg, volume, link, cancel, stop)
    except (CardError, DiskFullError) as exc:
        reason = "disk_full" if isinstance(exc, DiskFullError) else "unusable"
        log.error("%s", exc)
        if link is not None:
            link.send(p.Failed(reason=reason, message=str(exc)))
            link.close()
        return ExitCode.UNUSABLE
    if link is not None:
        link.send(card_outcome(result))
        link.close()
    return ExitCode.OK if result.complete and not result.failed else ExitCode.PARTIAL


def _stop_on_sigterm(cancel: threading.Event) -> threading.Event:
    """systemd stops this unit when the card's device goes away (BindsTo) or the system
    shuts down. Before the copy starts, dying loses nothing; once it runs, finish
    verifying and recording the copies already made (they are on our disk, not the
    card) and leave the session open, so the next insert resumes it."""
    stop = threading.Event()

    def on_sigterm(signum: int, frame: object) -> None:
        log.warning("stopping: verifying and recording the copies made so far")
        stop.set()
        cancel.set()

    if threading.current_thread() is threading.main_thread():  # signals go there only
        signal.signal(signal.SIGTERM, on_sigterm)
    return stop


def _ingest(mount: Path, cfg: Config, volume: Volume, link: WorkerLink | None,
            cancel: threading.Event, stop: threading.Event) -> IngestResult:
    report = ThrottledProgress(link.send if link is not None else lambda _: None)

    def on_session(session: SessionRow) -> None:
        report.session_id = session.id

    def announce(rec: Recorded) -> None:  # durable: the service's work child may start
        if link is not None:
            link.send(rec.message())

    with Database(cfg.storage.db_path) as db:
        return ingest_card(mount, cfg, db, volume, progress=report, cancel=cancel,
                           on_session=on_session, stop=stop,
                           on_recorded=announce)


def _watch_cancel(link: WorkerLink, cancel: threading.Event) -> None:
    while (message := link.inbox.get()) is not None:
        if isinstance(message, p.Cancel):
            log.warning("the service asked to cancel: stopping; verified files are kept")
            cancel.set()
