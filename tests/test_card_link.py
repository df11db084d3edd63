"""The card worker and the service's socket end, against each other over a real Unix
socket: hello → grant → progress → done; a second card waits; refuse; cancel; systemd
stopping the worker (card pulled, shutdown); a worker without a service still copies."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ghostroll.appliance import protocol as p
from ghostroll.appliance.link import SOCKET_NAME, CardServer, Incoming
from ghostroll.devtools.synthetic import make_blob, make_demo_card
from ghostroll.storage.db import Database
from tests.support.ingest import make_config, originals

REPO = Path(__file__).resolve().parents[1]


def worker(tmp: Path, card: Path, device: str, delay_ms: int = 0) -> subprocess.Popen[str]:
    env = {**os.environ, "GHOSTROLL_BASE_DIR": str(tmp / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp / "ghostroll.db"),
           "GHOSTROLL_RUNTIME_DIR": str(tmp / "run"),
           "GHOSTROLL_TEST_DELAY_MS": f"copy.chunk={delay_ms}", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "ghostroll", "card-worker", "--device", device,
         "--volume-id", f"fat:{device.upper()}-0001", str(card)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def next_event(events: queue.Queue[object], timeout: float = 30) -> Incoming:
    item = events.get(timeout=timeout)
    assert isinstance(item, Incoming)
    return item


def until(events: queue.Queue[object], kind: type) -> Incoming:
    while True:
        item = next_event(events)
        if isinstance(item.message, kind):
            return item


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    events: queue.Queue[object] = queue.Queue()
    srv = CardServer(tmp_path / "run" / SOCKET_NAME, events)
    yield srv, events
    srv.close()


def test_messages_round_trip_and_bad_lines_are_refused() -> None:
    for message in (p.Hello("sda1", "EOS_DIGITAL", "fat:AB-CD", "/run/x", 12), p.Grant(),
                    p.Progress(files_read=3, bytes_read=10, current="DCIM/<img>.jpg"),
                    p.Done("shoot-x", 1, 2, 0, 100, 1.5, ["a"]), p.Failed("card_removed", "m"),
                    p.Wait("another card"), p.Refuse("battery 9 %"), p.Cancel(), p.Error("x")):
        line = p.encode(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert p.decode(line.rstrip(b"\n")) == message
    for bad, words in ((b"not json", "not a JSON line"), (b"[1]", "JSON object"),
                       (b'{"v":2,"type":"grant"}', "version 2"),
                       (b'{"v":1,"type":"explode"}', "unknown message type"),
                       (b'{"v":1,"type":"hello","device":"x"}', "hello"),
                       (b'{"v":1,"type":"progress","files_read":"3"}', "files_read")):
        with pytest.raises(p.ProtocolError, match=words):
            p.decode(bad)


def test_socket_is_group_writable_only(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mode = (tmp_path / "run" / SOCKET_NAME).stat().st_mode & 0o777
    assert mode == 0o660


def test_worker_asks_copies_reports_and_finishes(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, events = server
    card = make_demo_card(tmp_path / "card", photos=3)
    proc = worker(tmp_path, card, "sda1")
    hello = next_event(events)
    assert isinstance(hello.message, p.Hello)
    assert (hello.message.device, hello.message.volume_id) == ("sda1", "fat:SDA1-0001")
    assert hello.message.mount == str(card) and hello.message.pid == proc.pid
    srv.send(hello.conn, p.Grant())
    seen: list[p.Message | None] = []
    while not isinstance(seen[-1] if seen else None, p.Done):
        seen.append(next_event(events).message)
    progress = [m for m in seen if isinstance(m, p.Progress)]
    assert progress and progress[-1].files_to_read == 7 and progress[-1].files_read == 7
    done = Incoming(hello.conn, seen[-1])
    assert done.message.new == 7 and done.message.failed == 0 and done.message.session_id
    assert next_event(events).message is None  # the worker hung up
    assert proc.wait(timeout=30) == 0


def test_second_card_waits_for_the_first(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, events = server
    first = worker(tmp_path, make_demo_card(tmp_path / "a", photos=2), "sda1")
    second = worker(tmp_path, make_demo_card(tmp_path / "b", photos=2), "sdb1")
    hellos = [next_event(events), next_event(events)]
    by_device = {h.message.device: h for h in hellos}  # type: ignore[union-attr]
    srv.send(by_device["sda1"].conn, p.Grant())
    srv.send(by_device["sdb1"].conn, p.Wait("another card (sda1) is being copied"))
    until(events, p.Done)
    assert first.wait(timeout=30) == 0
    assert second.poll() is None  # still waiting, has not copied
    srv.send(by_device["sdb1"].conn, p.Grant())
    until(events, p.Done)
    assert second.wait(timeout=30) == 0
    assert "waiting for the service: another card (sda1)" in second.stderr.read()


def test_refused_worker_copies_nothing(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, events = server
    proc = worker(tmp_path, make_demo_card(tmp_path / "card", photos=2), "sda1")
    srv.send(next_event(events).conn, p.Refuse("battery at 9 %, below 15 %: charge first"))
    assert proc.wait(timeout=30) == 75
    assert not list((tmp_path / "sessions").glob("shoot-*"))


def test_cancel_stops_the_copy_and_keeps_what_was_verified(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, events = server
    card = make_demo_card(tmp_path / "card", photos=2)
    for i in range(6):
        make_blob(card / "DCIM" / "100GHOST" / f"CLIP_{i}.MOV", 2 << 20, seed=i)
    proc = worker(tmp_path, card, "sda1", delay_ms=200)
    hello = next_event(events)
    srv.send(hello.conn, p.Grant())
    while True:
        progress = until(events, p.Progress).message
        if progress.files_read >= 2:  # type: ignore[union-attr]
            break
    srv.send(hello.conn, p.Cancel())
    failed = until(events, p.Failed)
    assert failed.message.reason == "cancelled"  # type: ignore[union-attr]
    assert proc.wait(timeout=30) == 1
    kept = sum(len(copies) for copies in originals(make_config(tmp_path)).values())
    assert 2 <= kept < 14


def test_system_stop_records_verified_copies_and_resumes(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, events = server
    cfg = make_config(tmp_path)  # the folders worker() gives the card-worker
    card = make_demo_card(tmp_path / "card", photos=2)
    for i in range(6):
        make_blob(card / "DCIM" / "100GHOST" / f"CLIP_{i}.MOV", 2 << 20, seed=i)
    on_card = sorted(f"DCIM/100GHOST/{f.name}" for f in (card / "DCIM" / "100GHOST").iterdir()
                     if not f.name.startswith("._"))  # macOS junk is counted, not copied
    proc = worker(tmp_path, card, "sda1", delay_ms=200)
    srv.send(next_event(events).conn, p.Grant())
    while until(events, p.Progress).message.files_read < 2:  # type: ignore[union-attr]
        pass
    proc.send_signal(signal.SIGTERM)  # what systemd does when the card's device goes away
    failed = until(events, p.Failed).message
    assert failed.reason == "card_removed"  # type: ignore[union-attr]
    assert "insert the card again to resume" in failed.message  # type: ignore[union-attr]
    assert proc.wait(timeout=30) == 1
    kept = sorted(originals(cfg))
    with Database(cfg.storage.db_path) as db:
        [session] = db.sessions()
        recorded = sorted(r["rel_path"] for r in db.session_files(session.id))
    assert session.state == "copying"  # open: the next insert resumes it
    assert 2 <= len(kept) < len(on_card)
    assert recorded == kept  # every copy on disk is verified

    again = worker(tmp_path, card, "sda1")
    srv.send(until(events, p.Hello).conn, p.Grant())
    done = until(events, p.Done).message
    assert again.wait(timeout=30) == 0
    assert done.session_id == session.id  # type: ignore[union-attr]
    assert done.new == len(on_card) - len(kept)  # type: ignore[union-attr]
    assert done.skipped == len(kept)  # type: ignore[union-attr]  # known, not read again
    copies = originals(cfg)
    assert sorted(copies) == on_card
    assert all(len(paths) == 1 for paths in copies.values())  # one copy each


def test_worker_without_a_service_still_copies(tmp_path: Path) -> None:
    proc = worker(tmp_path, make_demo_card(tmp_path / "card", photos=2), "sda1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "copying without it" in err
    assert sum(len(copies) for copies in originals(make_config(tmp_path)).values()) == 6


def test_recorded_originals_are_announced_and_the_work_child_streams_them(
        server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each original is announced once it is verified and recorded; `ghostroll work
    --stream` derives what it is fed, then processes the session reusing it."""
    srv, events = server
    card = make_demo_card(tmp_path / "card", photos=3)
    proc = worker(tmp_path, card, "sda1")
    hello = next_event(events)
    srv.send(hello.conn, p.Grant())
    seen: list[p.Message | None] = []
    while not isinstance(seen[-1] if seen else None, p.Done):
        seen.append(next_event(events).message)
    assert proc.wait(timeout=30) == 0
    recorded = [m for m in seen if isinstance(m, p.Recorded)]
    assert len(recorded) == 7  # every new file, pictures or not
    assert all(Path(m.stored).is_file() for m in recorded)
    assert p.decode(p.encode(recorded[0])) == recorded[0]
    with Database(tmp_path / "ghostroll.db") as db:
        for m in recorded:
            row = db.session_file(m.session_id, m.rel_path)
            assert row is not None and row["status"] == "verified"
            assert row["sha256"] == m.sha256
    env = {**os.environ, "GHOSTROLL_BASE_DIR": str(tmp_path / "sessions"),
           "GHOSTROLL_DB_PATH": str(tmp_path / "ghostroll.db"), "PYTHONPATH": str(REPO)}
    forged = p.Recorded(recorded[0].session_id, "DCIM/100GHOST/NOPE.JPG",
                        str(tmp_path / "card" / "x.jpg"), "jpeg", "x", "0" * 64, 1)
    feed = b"".join(p.encode(m) for m in (*recorded, forged)) + b"not a message\n"
    work = subprocess.run([sys.executable, "-m", "ghostroll", "work", "--stream"],
                          input=feed, env=env, capture_output=True, timeout=120)
    assert work.returncode == 0, work.stderr
    lines = [json.loads(line) for line in work.stdout.splitlines()]
    assert lines[-1]["type"] == "work_done" and lines[-1]["url"] is None  # kept local
    assert lines[-1]["photos"] == 4
    # the four pictures came from the stream: processing made only the video's tile
    processing = [line for line in lines if line.get("stage") == "processing"]
    assert processing and all(line["done"] == 5 for line in processing)
    session = tmp_path / "sessions" / recorded[0].session_id
    assert len(list((session / "derived" / "share").glob("*.jpg"))) == 4
