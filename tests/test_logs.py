"""Logging: redaction through real handlers (stderr stream, session file, journald over a
real journal socket in a private mount namespace) and the CARD/SESSION/STATE fields."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostroll import logs
from ghostroll.logs import log_context, redact, session_log, set_log_fields, setup_logging

SIG = "f3a1c2d4e5b6a7980123456789abcdef0123456789abcdef0123456789abcdef"
PRESIGNED = ("https://s3.example.net/bucket/s/abc/index.html?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request"
             "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host"
             f"&X-Amz-Signature={SIG}")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("text, gone, kept", [
    (PRESIGNED, [SIG, "AKIAEXAMPLE"], ["X-Amz-Signature=REDACTED", "X-Amz-Credential=REDACTED",
                                       "X-Amz-Expires=604800", "/bucket/s/abc/index.html"]),
    ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/s3/"
     f"aws4_request, SignedHeaders=host, Signature={SIG}",
     [SIG, "AKIAEXAMPLE"], ["SignedHeaders=host"]),
    (f's3_secret_access_key = "{SECRET}"', [SECRET], ["s3_secret_access_key = \"REDACTED"]),
    (f"AWS_SECRET_ACCESS_KEY={SECRET} AWS_REGION=eu", [SECRET], ["AWS_REGION=eu"]),
    (f'{{"aws_secret_access_key": "{SECRET}", "bucket": "b"}}', [SECRET], ['"bucket": "b"']),
    ("X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE&x=1", ["IQoJb3JpZ2lu"], ["&x=1"]),
])
def test_redact_patterns(text: str, gone: list[str], kept: list[str]) -> None:
    out = redact(text)
    for g in gone:
        assert g not in out
    for k in kept:
        assert k in out


def test_redact_registered_secret_values() -> None:
    assert redact(f"oops: {SECRET}", [SECRET]) == "oops: REDACTED"


@pytest.fixture
def clean_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    set_log_fields(card=None, session=None, state=None)


def test_stderr_handler_redacts_message_args_and_traceback(
        clean_root: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(logs, "JOURNAL_SOCKET", tmp_path / "no-journal")
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    handler = setup_logging("INFO", secrets=[SECRET], stream=stream)
    assert isinstance(handler, logging.StreamHandler)
    log = logging.getLogger("ghostroll.test")
    log.info("share link %s", PRESIGNED)
    log.warning("config secret %s", SECRET)
    try:
        raise RuntimeError(f"GET {PRESIGNED} failed")
    except RuntimeError:
        log.exception("upload failed")
    log.debug("not shown at INFO")
    text = stream.getvalue()
    assert SIG not in text and SECRET not in text and "AKIAEXAMPLE" not in text
    assert "share link https://s3.example.net/bucket/s/abc/index.html?" in text
    assert "config secret REDACTED" in text
    assert "Traceback" in text and "RuntimeError: GET https://" in text
    assert "not shown" not in text
    assert text.splitlines()[0].split()[2:4] == ["INFO", "ghostroll.test:"]  # date time LEVEL


def test_context_fields_in_plain_lines(clean_root: None, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    monkeypatch.setattr(logs, "JOURNAL_SOCKET", tmp_path / "no-journal")
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")  # stderr is the journal: no timestamps
    stream = io.StringIO()
    setup_logging("DEBUG", journald=None, stream=stream)
    log = logging.getLogger("ghostroll.svc")
    set_log_fields(state="idle")
    log.info("waiting")
    with log_context(card="sdb1", session="2024-01-01_1200"):
        log.info("copying")
        seen_in_thread: list[str] = []
        t = threading.Thread(target=lambda: log.info("from a worker thread"))
        t.start()
        t.join()
        seen_in_thread.append("done")
    log.info("explicit", extra={"CARD": "sdc1"})
    lines = stream.getvalue().splitlines()
    assert lines[0] == "INFO ghostroll.svc: waiting [state=idle]"
    assert lines[1] == "INFO ghostroll.svc: copying [card=sdb1 session=2024-01-01_1200 state=idle]"
    assert lines[2] == "INFO ghostroll.svc: from a worker thread [state=idle]"
    assert lines[3] == "INFO ghostroll.svc: explicit [card=sdc1 state=idle]"


def test_setup_is_idempotent_and_checks_the_level(clean_root: None, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "JOURNAL_SOCKET", tmp_path / "no-journal")
    setup_logging("INFO", stream=io.StringIO())
    setup_logging("WARNING", stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_ghostroll", False)]
    assert len(ours) == 1 and logging.getLogger().level == logging.WARNING
    with pytest.raises(ValueError, match="unknown log level"):
        setup_logging("LOUD")


def test_journald_requested_but_unreachable_falls_back_to_stderr(
        clean_root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "JOURNAL_SOCKET", tmp_path / "no-journal")
    stream = io.StringIO()
    handler = setup_logging("INFO", journald=True, stream=stream)
    assert isinstance(handler, logging.StreamHandler)
    assert "journald asked for but not reachable" in stream.getvalue()


def test_session_log_file(clean_root: None, tmp_path: Path) -> None:
    path = tmp_path / "sessions" / "s1" / "ghostroll.log"
    log = logging.getLogger("ghostroll.session-test")
    log.setLevel(logging.DEBUG)
    with session_log(path, logger=log, secrets=[SECRET]), log_context(session="s1"):
        log.debug("presigned %s", PRESIGNED)
        log.info("secret %s", SECRET)
    log.info("after the session")
    text = path.read_text(encoding="utf-8")
    assert SIG not in text and SECRET not in text
    assert "X-Amz-Signature=REDACTED" in text and "[session=s1]" in text
    assert "after the session" not in text
    assert len(text.splitlines()) == 2


JOURNAL_SCRIPT = textwrap.dedent("""
    import json, logging, os, socket, struct, sys
    os.makedirs("/run/systemd/journal", exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/run/systemd/journal/socket")
    sock.settimeout(10)
    from ghostroll.logs import log_context, setup_logging
    handler = setup_logging("INFO", secrets=[sys.argv[2]])
    with log_context(card="sdb1", session="S1", state="copying"):
        logging.getLogger("ghostroll.j").warning("link %s key %s", sys.argv[1], sys.argv[2])
    data = sock.recv(1 << 20)
    fields = {}
    while data:
        head, sep, rest = data.partition(b"\\n")
        if b"=" in head:
            key, _, value = head.partition(b"=")
            data = rest
        else:  # binary-safe form: NAME\\n<u64 le length><value>\\n
            key, (size,) = head, struct.unpack("<Q", rest[:8])
            value, data = rest[8:8 + size], rest[9 + size:]
        fields[key.decode()] = value.decode("utf-8", "replace")
    print(json.dumps({"handler": type(handler).__name__, "fields": fields}))
""")


@pytest.mark.root
def test_journald_fields_over_a_real_journal_socket(tmp_path: Path) -> None:
    pytest.importorskip("systemd.journal")
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare(1) for a private /run")
    script = tmp_path / "journal_probe.py"
    script.write_text(JOURNAL_SCRIPT)
    # a private mount namespace with an empty /run: the real journal path, nobody else's
    cmd = [unshare, "--mount", "--propagation", "private", "sh", "-c",
           'mount -t tmpfs tmpfs /run && exec "$0" "$@"',
           sys.executable, str(script), PRESIGNED, SECRET]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    if out.returncode != 0 and "unshare failed" in out.stderr:
        pytest.skip(f"no mount namespaces here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    fields = result["fields"]
    assert result["handler"] == "JournalHandler"
    assert (fields["CARD"], fields["SESSION"], fields["STATE"]) == ("sdb1", "S1", "copying")
    assert fields["SYSLOG_IDENTIFIER"] == "ghostroll" and fields["PRIORITY"] == "4"
    assert fields["MESSAGE"].startswith("link https://s3.example.net/bucket/s/abc/index.html?")
    everything = json.dumps(fields)
    assert SIG not in everything and SECRET not in everything and "AKIAEXAMPLE" not in everything


def test_a_library_record_is_one_line_ours_keep_their_traceback(clean_root: None) -> None:
    """urllib3 logs a malformed response header with a traceback attached (seen through
    the fault proxy); a person sees one line, while our own errors keep theirs."""
    stream = io.StringIO()
    setup_logging("INFO", journald=False, stream=stream)
    try:
        raise ValueError("unparsed data: 'Accept-'")
    except ValueError:
        logging.getLogger("urllib3.connection").warning(
            "Failed to parse headers (url=%s): %s", "http://127.0.0.1:1/b/k", "defect",
            exc_info=True)
        logging.getLogger("ghostroll.publish").error("upload failed", exc_info=True)
    lines = stream.getvalue().splitlines()
    library = [line for line in lines if "urllib3" in line]
    assert len(library) == 1 and "ValueError: unparsed data" in library[0]
    assert lines.count("Traceback (most recent call last):") == 1
    assert lines.index("Traceback (most recent call last):") > lines.index(library[0])
