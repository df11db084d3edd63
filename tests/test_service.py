"""The appliance service, run for real: the simulated panel, a real card-worker process
over the real socket, the background work in a child process, real SeaweedFS, a real
NOTIFY_SOCKET. The frames it writes are the ones the panel would get."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from ghostroll.appliance import protocol as p
from ghostroll.appliance.host import Devices
from ghostroll.appliance.idle_facts import read_idle_facts
from ghostroll.appliance.machine import State
from ghostroll.appliance.screens import screen_for
from ghostroll.appliance.service import Service
from ghostroll.appliance.simulate import simulate
from ghostroll.devices.kits import load_kit
from ghostroll.devices.notify import Notifier
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.publish.links import short_link_policy
from ghostroll.storage.db import Database
from tests.support.ingest import ingest, make_config
from tests.support.s3 import S3Bucket, unsigned_get


def frames(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "frames.jsonl").read_text().splitlines()]


def test_insert_copy_publish_done_with_a_scannable_qr(tmp_path: Path,
                                                      s3_bucket: S3Bucket) -> None:
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.name,
                                       Policy=json.dumps(short_link_policy(s3_bucket.name)))
    cfg = make_config(tmp_path, clock_trusted=True, **s3_bucket.config_flags())
    card = make_demo_card(tmp_path / "card", photos=5)
    model = simulate(cfg, card, tmp_path / "frames", "waveshare-2in13-v4", [])
    assert model.state == State.DONE and model.link and "/L/" in model.link
    assert model.receipt is not None and model.receipt.new == 9 and model.receipt.failed == 0
    states = [f["state"] for f in frames(tmp_path / "frames")]
    assert states[0] == "idle" and states[-1] == "done"
    assert "card_done" in states
    last = Image.open(tmp_path / "frames" / frames(tmp_path / "frames")[-1]["file"])
    assert last.size == (250, 122) and last.mode == "1"
    found = zxingcpp.read_barcodes(last.convert("L").resize((1000, 488)))
    assert [f.text for f in found] == [model.link]
    assert unsigned_get(model.link)[0] == 200  # the short link page is public by policy
    status = json.loads((cfg.storage.base_dir / "status.json").read_text())
    assert status["state"] == "done" and status["url"] == model.link
    for name in ("session_id", "counts", "battery_percentage", "hostname", "link_expires"):
        assert name in status


def test_without_a_bucket_the_panel_says_local_not_shared(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    model = simulate(cfg, make_demo_card(tmp_path / "card", photos=2), tmp_path / "frames",
                     "waveshare-2in7-v2", [])
    assert model.state == State.DONE and model.link is None
    assert model.photos == 3


def test_a_reinserted_card_says_what_is_already_safe(tmp_path: Path) -> None:
    """The real worker's progress counts known files as skipped (it once showed 0)."""
    cfg = make_config(tmp_path)
    card = make_demo_card(tmp_path / "card", photos=2)
    first = simulate(cfg, card, tmp_path / "frames1", "waveshare-2in13-v4", [])
    assert first.receipt is not None and first.receipt.new > 0
    total = first.receipt.new
    second = simulate(cfg, card, tmp_path / "frames2", "waveshare-2in13-v4", [])
    assert second.receipt is not None
    assert (second.receipt.new, second.receipt.skipped) == (0, total)
    assert second.copy.skipped == total and second.copy.new == 0
    status = json.loads((cfg.storage.base_dir / "status.json").read_text())
    assert status["counts"]["skipped"] == total and status["counts"]["new"] == 0


def test_low_battery_refuses_the_copy(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    model = simulate(cfg, make_demo_card(tmp_path / "card", photos=2), tmp_path / "frames",
                     "waveshare-2in13-v4", [], battery=9.0)
    assert model.state == State.LOW_BATTERY
    assert not list((tmp_path / "sessions").glob("shoot-*"))
    assert "low_battery" in [f["state"] for f in frames(tmp_path / "frames")]


def test_long_press_then_confirm_shuts_down(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTROLL_TEST_DELAY_MS", "copy.chunk=400")  # the worker inherits it
    cfg = make_config(tmp_path,)
    card = make_demo_card(tmp_path / "card", photos=3)
    model = simulate(cfg, card, tmp_path / "frames", "waveshare-2in13-v4",
                     ["long@1.6", "short@2.4"], timeout_s=60)
    assert model.state == State.SHUTTING_DOWN
    states = [f["state"] for f in frames(tmp_path / "frames")]
    assert "confirm_shutdown" in states and states[-1] == "shutting_down"


def test_sd_notify_ready_status_and_watchdog(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(5)
    cfg = make_config(tmp_path, runtime_dir=tmp_path / "run")
    notifier = Notifier(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"})
    drawn: list[str] = []
    service = Service(cfg, load_kit("waveshare-2in13-v4"), Devices(
        panel_submit=lambda image, state, full: drawn.append(state), eject=lambda d: None,
        shutdown=lambda: None, notifier=notifier))
    threading.Timer(1.5, lambda: service.post(p.Hold())).start()
    service.run(until=lambda m: m.state == State.CONFIRM_SHUTDOWN, timeout_s=20)
    messages = []
    while True:
        try:
            messages.append(listener.recv(4096).decode())
        except TimeoutError:
            break
    text = "\n".join(messages)
    assert "READY=1" in text and "STATUS=idle: Insert a camera card" in text
    assert "WATCHDOG=1" in text
    assert "STATUS=confirm_shutdown: Press to shut down" in text
    assert "STOPPING=1" in text
    assert drawn[0] == "idle" and drawn[-1] == "confirm_shutdown"
    assert (tmp_path / "run" / "status.json").exists()
    assert (tmp_path / "run" / "status.png").exists()


def test_idle_screen_tells_the_queue_and_the_last_session(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    assert read_idle_facts(cfg.storage.db_path).queued == 0  # no database yet: none made
    assert not cfg.storage.db_path.exists()
    ingest(make_demo_card(tmp_path / "card", photos=2), cfg)
    with Database(cfg.storage.db_path) as db:
        [session] = db.sessions()
        db.enqueue_publish(session.id)
    service = Service(cfg, load_kit("waveshare-2in13-v4"), Devices(
        panel_submit=lambda image, state, full: None, eject=lambda d: None,
        shutdown=lambda: None))
    screen = screen_for(service.model, service.env())
    assert screen.big == "Insert a camera card"
    assert "1 upload queued" in screen.lines[0]
    # 2 JPEGs, a RAW+JPEG pair and a video with its THM: four shots, all new
    assert screen.lines[1].startswith("last: ") and screen.lines[1].endswith(" · 4 new")
