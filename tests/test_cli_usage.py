"""The terminal: per-command usage instead of every setting, a short `run --help` with
the appliance's settings out of the way, and clear words for a missing or ambiguous
session and for a path given inside the card's DCIM/ folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ghostroll import cli
from ghostroll.storage.db import Database


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_missing_argument_prints_the_commands_usage_only(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run")
    assert code == 2
    assert err.splitlines() == [
        "usage: ghostroll run PATH [--no-publish] [--events] [--volume-id ID] "
        "[--volume-label LABEL] [settings]",
        "ghostroll run: error: the following arguments are required: path"]


def test_run_help_groups_settings_and_leaves_the_appliance_out(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0
    assert "bucket and link settings:" in out and "image settings:" in out
    assert "--button-pin" not in out and "--panel-full-every" not in out
    assert "appliance settings: accepted too, not shown" in out.replace("\n", " ")
    assert len(out.splitlines()) <= 100  # 156 before: every setting, ungrouped
    assert "  --short-links auto|on|off             Short QR-friendly link page" in out
    code, out, _ = run_cli(capsys, "service", "--help")
    assert "appliance settings (the service on the Pi" in out and "--button-pin" in out
    args = cli.build_parser().parse_args(["run", "card", "--kit", "waveshare-2in9-v2"])
    assert args.cfg_kit == "waveshare-2in9-v2"  # hidden, still accepted


def test_sessions_show_without_an_id_and_an_ambiguous_prefix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = tmp_path / "g.db"
    monkeypatch.setenv("GHOSTROLL_DB_PATH", str(db_path))
    monkeypatch.setenv("GHOSTROLL_BASE_DIR", str(tmp_path))
    monkeypatch.delenv("GHOSTROLL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with Database(db_path) as db:
        for sid in ("shoot-2026-06-01_100000_aaaa", "shoot-2026-06-01_110000_bbbb"):
            db.create_session(session_id=sid, path=tmp_path / sid, volume_id="fat:1",
                              volume_label="CARD", source="test")
    code, out, err = run_cli(capsys, "sessions", "show")
    assert code == 2 and "None" not in err
    assert "`ghostroll sessions show` needs a session: its number, id" in err
    code, _, err = run_cli(capsys, "sessions", "show", "shoot-2026-06-01")
    assert code == 2
    assert "'shoot-2026-06-01' matches 2 sessions" in err
    assert "#1  shoot-2026-06-01_100000_aaaa" in err and "#2  shoot-2026-06-01_110000_bbbb" in err
    code, out, _ = run_cli(capsys, "sessions", "show", "shoot-2026-06-01_11")
    assert code == 0 and "shoot-2026-06-01_110000_bbbb (#2)" in out
    code, _, err = run_cli(capsys, "sessions", "show", "nothing-like-it")
    assert code == 2 and "no session matches 'nothing-like-it'" in err


def test_a_path_inside_dcim_names_the_card_to_give(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GHOSTROLL_CONFIG", raising=False)
    monkeypatch.setenv("GHOSTROLL_BASE_DIR", str(tmp_path / "sessions"))
    folder = tmp_path / "card" / "DCIM" / "100CANON"
    folder.mkdir(parents=True)
    for given in (folder.parent, folder):
        code, _, err = run_cli(capsys, "run", str(given), "--no-publish")
        assert code == 2
        assert f"give the card itself, e.g. ghostroll run {tmp_path / 'card'}" in err
    code, _, err = run_cli(capsys, "run", str(tmp_path), "--no-publish")
    assert code == 2 and "has no DCIM/ folder" in err


def test_every_command_has_its_usage_line_and_help(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A command added without its usage line broke the whole CLI (a KeyError at parse
    time, before any command ran): every subcommand answers --help with its own usage."""
    names = sorted(cli.USAGE)
    parser_names = sorted(next(a for a in cli.build_parser()._actions
                               if a.dest == "command").choices)
    assert names == parser_names
    for name in names:
        code, out, _ = run_cli(capsys, name, "--help")
        assert code == 0, name
        assert out.startswith(f"usage: ghostroll {name} {cli.USAGE[name]}".rstrip()[:60]), name


def test_version_is_read_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    """`--version` prints the installed package's version; starting the CLI without it
    does not import importlib.metadata (~25 ms at every process start)."""
    from importlib.metadata import version

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out == f"ghostroll {version('ghostroll')}\n"
    started = subprocess.run(
        [sys.executable, "-c", "import sys, ghostroll.cli; "
         "print('importlib.metadata' in sys.modules)"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    assert started.stdout.strip() == "False"


def test_run_events_prints_the_messages_the_service_reads(tmp_path: Path) -> None:
    """`ghostroll run --events`: one protocol message per line, the same vocabulary the
    card worker and the work child send to the service."""
    import io

    from ghostroll.appliance import protocol as p
    from ghostroll.commands.demo import workdir_config
    from ghostroll.devtools.synthetic import make_demo_card
    from ghostroll.job import run_job

    card = make_demo_card(tmp_path / "card", photos=3)
    out = io.StringIO()
    job = run_job(card, workdir_config(tmp_path), out=out, events=True)
    said = [p.Message.from_json(line) for line in out.getvalue().splitlines()]
    progress = [m for m in said if isinstance(m, p.Progress)]
    assert progress[0].phase == "scanning" and progress[-1].phase == "done"
    done = [m for m in said if isinstance(m, p.Done)]
    assert len(done) == 1 and done[0].new == job.ingest.new == 7
    assert done[0].session_id == job.ingest.session.id
    made = [m for m in said if isinstance(m, p.WorkDone)]
    assert made == [p.WorkDone(photos=4, session_id=job.ingest.session.id)]  # no bucket
    again = io.StringIO()
    run_job(card, workdir_config(tmp_path), out=again, events=True)
    last = p.Message.from_json(again.getvalue().splitlines()[-1])
    assert isinstance(last, p.Done) and last.new == 0 and last.skipped == 7
