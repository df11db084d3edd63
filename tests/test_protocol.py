"""The one vocabulary: every message survives its own JSON line, bad lines are refused
with a reason, and the work child's publishing events become the machine's messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ghostroll.appliance import machine as sm
from ghostroll.appliance import protocol as p
from ghostroll.appliance.work import publish_messages
from ghostroll.publish.publisher import PublishEvent, ShareLink


def example(cls: type[p.Message]) -> p.Message:
    values = {"device": "sda1", "label": "EOS", "volume_id": "fat:1", "mount": "/m",
              "session_id": "shoot-1", "new": 2, "skipped": 1, "failed": 0,
              "bytes_new": 10, "seconds": 1.5, "reason": "cancelled", "message": "m",
              "stage": "publishing", "url": "https://b/L/x", "percent": 12.5,
              "charging": True, "rel_path": "DCIM/100/IMG_1.JPG", "stored": "/s/IMG_1.JPG",
              "kind": "jpeg", "group": "DCIM/100/IMG_1", "sha256": "ab" * 32, "size": 7}
    names = cls.__dataclass_fields__
    return cls(**{k: v for k, v in values.items() if k in names})


@pytest.mark.parametrize("cls", list(p.MESSAGES.values()), ids=lambda c: c.type)
def test_every_message_round_trips(cls: type[p.Message]) -> None:
    message = example(cls)
    line = message.to_json()
    assert "\n" not in line and f'"type":"{cls.type}"' in line
    assert p.Message.from_json(line) == message == cls.from_json(line)
    assert p.decode(p.encode(message)) == message


def test_bad_lines_are_refused_with_a_reason() -> None:
    with pytest.raises(p.ProtocolError, match="expected battery"):
        p.Battery.from_json(p.Tick().to_json())
    with pytest.raises(p.ProtocolError, match="charging"):
        p.Message.from_json('{"v":1,"type":"battery","percent":5,"charging":"yes"}')
    with pytest.raises(p.ProtocolError, match="version"):
        p.Message.from_json('{"v":2,"type":"tick"}')
    with pytest.raises(p.ProtocolError, match="unknown"):
        p.Message.from_json('{"v":1,"type":"stage"}')


def test_the_machine_takes_every_message_the_service_can_post() -> None:
    # Recorded goes to the work child's stdin (appliance/feed.py), not to the machine;
    # ArchiveDone makes the service count the receipt's copies again, nothing more
    internal = {p.Grant, p.Wait, p.Refuse, p.Cancel, p.Query, p.Status, p.Error, p.Recorded,
                p.ArchiveDone}
    assert set(sm.INPUTS) == set(p.MESSAGES.values()) - internal


def test_publishing_events_become_work_messages() -> None:
    link = ShareLink(url="https://b/L/x", index_url="https://b/i",
                     expires=datetime(2026, 12, 1, tzinfo=UTC))
    up = publish_messages(PublishEvent("s", "uploading", 3, 9, link=link))
    assert up == [p.LinkReady("https://b/L/x", "2026-12-01T00:00:00+00:00", "s"),
                  p.WorkProgress("publishing", 3, 9, "s")]
    done = publish_messages(PublishEvent("s", "done", 9, 9, link=link))
    assert done[-1] == p.WorkDone(9, "https://b/L/x", "2026-12-01T00:00:00+00:00", "s")
    assert publish_messages(PublishEvent("s", "waiting", message="offline")) == [
        p.WorkWaiting("offline")]
    assert publish_messages(PublishEvent("s", "failed", message="denied")) == [
        p.WorkFailed("denied")]
