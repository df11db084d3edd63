"""The `ghostroll` command. The only place that turns exceptions into messages and exit
codes, and the only place logging is configured.

Exit codes (documented in README.md):
  0  everything done
  1  partial failure: some files failed, the card phase stopped early, or processing
     stopped (pending) or set a session aside
  2  unusable input or configuration: nothing was done
  3  the card is safe but publishing is still queued (offline)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ghostroll import config, logs
from ghostroll.errors import (
    ArchiveError,
    CardError,
    ConfigError,
    DatabaseError,
    DiskFullError,
    PublishError,
)
from ghostroll.exitcodes import ExitCode
from ghostroll.job import run_job
from ghostroll.memory import return_freed_memory
from ghostroll.storage.db import Database, SessionRow

# One line per command: an error (a missing argument) prints this, not every setting.
USAGE = {
    "run": "PATH [--no-publish] [--events] [--volume-id ID] [--volume-label LABEL] "
           "[settings]",
    "card-worker": "--device DEV PATH [settings]",
    "watch": "[--once] [settings]",
    "sessions": "[list | show SESSION | retry SESSION | delete SESSION [--yes]] [--no-qr] "
                "[settings]",
    "publish": "[SESSION] [settings]",
    "reshare": "SESSION [settings]",
    "unshare": "SESSION [--delete] [settings]",
    "rename": "SESSION NAME [settings]",
    "restore": "--from DIR [settings]",
    "work": "[--link SESSION | --stream] [settings]",
    "service": "[settings]",
    "simulate": "--card DIR --frames DIR [--press KIND@SECONDS] [settings]",
    "firstboot": "[--source FILE] [--admin USER]",
    "doctor": "[--json] [settings]",
    "verify": "[--read-data] [--repair] [--local] [--session SESSION] [--json] [settings]",
    "status": "[--json] [settings]",
    "setup": "[--system] [--yes] [--apply-bucket-rules] [bucket settings]",
    "demo": "[--dir DIR] [--photos N] [--serve]",
    "config": "[--markdown] [settings]",
}


class _HelpFormatter(argparse.HelpFormatter):
    """Help texts start further right, so a long `--setting-name VALUE` keeps its help on
    the same line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=40)


class _Version(argparse.Action):
    """`--version`, the package metadata read only when asked (see ghostroll/__init__)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        import ghostroll
        print(f"ghostroll {ghostroll.__version__}")  # on stdout, as argparse's own does
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ghostroll", description="Camera card in, private share link out.")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="ingest one mounted card or folder")
    run.add_argument("path", type=Path, help="mounted card (or folder) holding DCIM/")
    run.add_argument("--volume-id", help="card identity (default: read from the card)")
    run.add_argument("--volume-label", help="card label to show (default: from the card)")
    run.add_argument("--no-publish", action="store_true",
                     help="ingest and make the gallery, but do not upload now")
    run.add_argument("--events", action="store_true",
                     help="print the appliance's protocol messages (one JSON line each: "
                          "progress, done, work_progress, link, work_done...) instead of text")
    config.add_flags(run, hidden=["appliance"])
    run.set_defaults(handler=cmd_run)

    worker = commands.add_parser(
        "card-worker", help="per-card worker (started by ghostroll-ingest@.service)")
    worker.add_argument("--device", required=True, help="kernel device name, e.g. sda1")
    worker.add_argument("--volume-id", help="card identity (default: from udev, then the card)")
    worker.add_argument("--volume-label", help="card label (default: from udev)")
    worker.add_argument("path", type=Path, help="the read-only mount of the card")
    config.add_flags(worker)
    worker.set_defaults(handler=cmd_card_worker)

    watch = commands.add_parser(
        "watch", help="wait for a card labelled like sd_label, ingest it once, repeat")
    watch.add_argument("--once", action="store_true", help="stop after the first card")
    config.add_flags(watch, hidden=["appliance"])
    watch.set_defaults(handler=cmd_watch)

    sessions = commands.add_parser(
        "sessions", help="list sessions, show one, retry one whose processing was set aside, "
        "or delete one")
    sessions.add_argument("action", nargs="?", choices=["list", "show", "retry", "delete"],
                          default="list")
    sessions.add_argument("session", nargs="?", help="id, number or unique id prefix")
    sessions.add_argument("--no-qr", action="store_true", help="do not draw the link's QR")
    sessions.add_argument("--yes", action="store_true",
                          help="delete: do not ask (the session's originals are removed)")
    config.add_flags(sessions, hidden=["appliance"])
    sessions.set_defaults(handler=cmd_sessions)

    publish = commands.add_parser(
        "publish", help="publish the queue, or one session (queued again if needed)")
    publish.add_argument("session", nargs="?", help="id, number or unique id prefix")
    config.add_flags(publish, hidden=["appliance"])
    publish.set_defaults(handler=cmd_publish)

    reshare = commands.add_parser(
        "reshare", help="a new link for a published session (once its link ended)")
    reshare.add_argument("session", help="id, number or unique id prefix")
    config.add_flags(reshare, hidden=["appliance"])
    reshare.set_defaults(handler=cmd_reshare)

    unshare = commands.add_parser(
        "unshare", help="revoke a session's link now (the page it opens is deleted)")
    unshare.add_argument("session", help="id, number or unique id prefix")
    unshare.add_argument("--delete", action="store_true",
                         help="also delete its photos and zip from the bucket")
    config.add_flags(unshare, hidden=["appliance"])
    unshare.set_defaults(handler=cmd_unshare)

    rename = commands.add_parser(
        "rename", help="name an album; its gallery is rewritten and published again")
    rename.add_argument("session", help="id, number or unique id prefix")
    rename.add_argument("name", help="the album's name, e.g. \"Smith wedding\"")
    config.add_flags(rename, hidden=["appliance"])
    rename.set_defaults(handler=cmd_rename)

    work = commands.add_parser("work", help="process and publish what is pending "
                               "(the service runs this; JSON lines on stdout)")
    work.add_argument("--link", metavar="SESSION", help="only sign this session's link")
    work.add_argument("--stream", action="store_true",
                      help="first derive and upload the recorded originals announced on "
                           "stdin (the service passes on the card worker's), until it ends")
    config.add_flags(work)
    work.set_defaults(handler=cmd_work)

    service = commands.add_parser("service", help="the appliance service (systemd unit)")
    config.add_flags(service)
    service.set_defaults(handler=cmd_service)

    sim = commands.add_parser("simulate", help="the whole appliance in one process, "
                              "simulated panel frames written to --frames")
    sim.add_argument("--card", type=Path, required=True,
                     help="a folder holding DCIM/, or a FAT/exFAT card image (root)")
    sim.add_argument("--frames", type=Path, required=True, help="where panel frames go")
    sim.add_argument("--press", action="append", default=[], metavar="KIND@SECONDS",
                     help="scripted button press, e.g. short@12 or long@30 (repeatable)")
    sim.add_argument("--battery", type=float, default=87.0, help="simulated battery %%")
    config.add_flags(sim)
    sim.set_defaults(handler=cmd_simulate)

    first = commands.add_parser("firstboot", help="apply /boot/firmware/ghostroll.toml "
                                "(ghostroll-firstboot.service)")
    first.add_argument("--source", type=Path, default=Path("/boot/firmware/ghostroll.toml"))
    first.add_argument("--admin", default="admin", help="the SSH admin user")
    first.set_defaults(handler=cmd_firstboot)

    doctor = commands.add_parser("doctor", help="check everything ingest and sharing need")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    config.add_flags(doctor)
    doctor.set_defaults(handler=cmd_doctor)

    verify = commands.add_parser(
        "verify", help="check that every photo is where the records say it is")
    verify.add_argument("--read-data", action="store_true",
                        help="also re-hash every original against its sha256 (resumable)")
    verify.add_argument("--restart", action="store_true",
                        help="with --read-data: start over instead of continuing a pass")
    verify.add_argument("--repair", action="store_true", help="redo what can be redone "
                        "without the card: share images, uploads, stale temp files")
    verify.add_argument("--local", action="store_true",
                        help="no bucket requests (the appliance's boot check)")
    verify.add_argument("--session", metavar="ID", help="only this session (id, number or "
                        "unique id prefix)")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    config.add_flags(verify, hidden=["appliance"])
    verify.set_defaults(handler=cmd_verify)

    restore = commands.add_parser(
        "restore", help="rebuild the database and sessions from an archive disk")
    restore.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR",
                         help="the archive disk's folder (archive_dir of the old device)")
    config.add_flags(restore, hidden=["appliance"])
    restore.set_defaults(handler=cmd_restore)

    status = commands.add_parser("status", help="what the running appliance shows")
    status.add_argument("--json", action="store_true", help="the status.json document")
    config.add_flags(status, hidden=["appliance"])
    status.set_defaults(handler=cmd_status)

    setup = commands.add_parser("setup", help="write the config file after checking the bucket")
    setup.add_argument("--system", action="store_true",
                       help="the appliance's /etc/ghostroll/config.toml (root)")
    setup.add_argument("--yes", action="store_true", help="no questions: flags only")
    setup.add_argument("--apply-bucket-rules", action="store_true",
                       help="apply the short-link policy and lifecycle rule without asking")
    # --config names the file to write (default: the user's or, with --system, /etc's)
    config.add_flags(setup, sections=["s3"])
    setup.set_defaults(handler=cmd_setup)

    demo = commands.add_parser("demo", help="generate a demo card and run the whole job on it")
    demo.add_argument("--dir", type=Path, default=Path("demo-output"),
                      help="where the demo card and its results go (default: ./demo-output)")
    demo.add_argument("--photos", type=int, default=12, help="photos on the demo card")
    demo.add_argument("--serve", action="store_true",
                      help="keep the local S3 running (the link working) until Ctrl-C")
    demo.set_defaults(handler=cmd_demo)

    cfg = commands.add_parser("config", help="show the effective configuration")
    cfg.add_argument("--markdown", action="store_true",
                     help="print the reference table of every key (docs/configuration.md)")
    config.add_flags(cfg)
    cfg.set_defaults(handler=cmd_config)
    for name, sub in commands.choices.items():
        sub.usage = f"%(prog)s {USAGE[name]}".rstrip()
        sub.formatter_class = _HelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return_freed_memory()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"ghostroll: configuration error: {exc}", file=sys.stderr)
        return ExitCode.UNUSABLE
    except (ArchiveError, CardError, DatabaseError, DiskFullError, PublishError) as exc:
        print(f"ghostroll: {exc}", file=sys.stderr)
        return ExitCode.UNUSABLE
    except KeyboardInterrupt:
        print("ghostroll: interrupted; verified files are kept", file=sys.stderr)
        return ExitCode.INTERRUPTED


def setup_logging(cfg: config.Config) -> None:
    logs.setup_logging(cfg.logging.log_level,
                       secrets=[s for s in (cfg.s3.s3_secret_access_key,) if s])
    logging.raiseExceptions = False  # a full disk must not turn a log line into a traceback


def cmd_run(args: argparse.Namespace) -> int:
    cfg = config.from_args(args)
    setup_logging(cfg)
    return run_job(args.path, cfg, volume_id=args.volume_id, label=args.volume_label,
                   publish=not args.no_publish, events=args.events).exit_code


def cmd_card_worker(args: argparse.Namespace) -> int:
    from ghostroll.appliance.worker import run_card_worker

    cfg = config.from_args(args)
    setup_logging(cfg)
    return run_card_worker(args.device, args.path, cfg, args.volume_id, args.volume_label)


def cmd_watch(args: argparse.Namespace) -> int:
    from ghostroll.commands.watch import watch

    cfg = config.from_args(args)
    setup_logging(cfg)
    return watch(cfg, lambda card: run_job(card, cfg).exit_code, once=args.once)


def cmd_service(args: argparse.Namespace) -> int:
    from ghostroll.appliance.run_service import run_service

    cfg = config.from_args(args)
    setup_logging(cfg)
    return run_service(cfg)


def cmd_simulate(args: argparse.Namespace) -> int:
    from ghostroll.appliance.simulate import simulate, summary

    cfg = config.from_args(args)
    setup_logging(cfg)
    model = simulate(cfg, args.card, args.frames, cfg.appliance.kit, args.press,
                     battery=args.battery)
    print(summary(model, args.frames))
    return ExitCode.OK if model.state.value in ("done", "nothing_new", "idle") \
        else ExitCode.PARTIAL


def cmd_doctor(args: argparse.Namespace) -> int:
    from ghostroll.commands import doctor

    try:
        cfg = config.from_args(args)
    except ConfigError as exc:
        result = [doctor.Check("config valid", doctor.FAIL, str(exc),
                               "fix the value named above")]
        print(doctor.report_json(result) if args.json else doctor.report_text(result))
        return ExitCode.PARTIAL
    results = doctor.run_checks(cfg)
    print(doctor.report_json(results) if args.json else doctor.report_text(results))
    return ExitCode.PARTIAL if doctor.failed(results) else ExitCode.OK


def cmd_verify(args: argparse.Namespace) -> int:
    from ghostroll.commands import verify

    try:
        cfg = config.from_args(args)
        bar = verify.HashBar(sys.stderr) if sys.stderr.isatty() else None
        report = verify.verify_device(cfg, args.session, local=args.local,
                                      read_data=args.read_data, restart=args.restart,
                                      repair=args.repair, progress=bar)
    except (ConfigError, DatabaseError, CardError) as exc:
        if args.json:
            print(verify.unusable_json(str(exc)))
        else:
            print(f"ghostroll: {exc}", file=sys.stderr)
        return ExitCode.UNUSABLE
    print(verify.report_json(report) if args.json else verify.report_text(report))
    return ExitCode.OK if report.ok else ExitCode.PARTIAL


def cmd_restore(args: argparse.Namespace) -> int:
    from ghostroll.commands.restore import restore
    from ghostroll.job import process_pending

    cfg = config.from_args(args)
    setup_logging(cfg)
    with Database(cfg.storage.db_path) as db:
        result = restore(db, args.source.absolute(), cfg.storage.base_dir)
        print("\n".join(result.lines()))
        processed = process_pending(cfg, db, sys.stdout)
    for p in processed:
        print(p.stopped or p.set_aside or f"gallery for {p.session_id}: {p.made} photo(s)")
    return ExitCode.PARTIAL if result.problems else ExitCode.OK


def cmd_status(args: argparse.Namespace) -> int:
    from ghostroll.commands.status import NotRunning, query, render

    cfg = config.from_args(args)
    try:
        print(render(query(cfg.appliance.runtime_dir), args.json))
    except NotRunning as exc:
        print(f"ghostroll: {exc}", file=sys.stderr)
        last = cfg.storage.base_dir / "status.json"
        if last.exists():
            print(f"last saved status ({last}):", file=sys.stderr)
            print(render(json.loads(last.read_text()), args.json))
        return ExitCode.UNUSABLE
    return ExitCode.OK


def cmd_setup(args: argparse.Namespace) -> int:
    from ghostroll.commands.setup import run_setup

    flags = {k.name: getattr(args, f"cfg_{k.name}") for k in config.KEYS
             if getattr(args, f"cfg_{k.name}", None) is not None}
    interactive = not args.yes and sys.stdin.isatty()
    return run_setup(flags, system=args.system, interactive=interactive, path=args.config,
                     apply_rules=args.apply_bucket_rules)


def cmd_firstboot(args: argparse.Namespace) -> int:
    from ghostroll.commands.firstboot import Paths, run

    return run(Paths(source=args.source, admin=args.admin))


def cmd_work(args: argparse.Namespace) -> int:
    from ghostroll.appliance.work import run_work

    cfg = config.from_args(args)
    setup_logging(cfg)
    return run_work(cfg, link_only=args.link,
                    announced=sys.stdin.buffer if args.stream else None)


def _require_bucket(cfg: config.Config) -> None:
    if not cfg.s3.enabled:
        raise ConfigError("no bucket configured: set s3_bucket (GHOSTROLL_S3_BUCKET, "
                          "--s3-bucket or [s3] s3_bucket in the config file)")


def _session_arg(db: Database, ref: str | None, command: str) -> str:
    from ghostroll.commands.sessions import resolve

    return resolve(db, ref, command).id


def cmd_publish(args: argparse.Namespace, fresh_link: bool = False) -> int:
    from ghostroll.job import process_pending, publish_all

    cfg = config.from_args(args)
    setup_logging(cfg)
    _require_bucket(cfg)
    with Database(cfg.storage.db_path) as db:
        only = _session_arg(db, args.session, args.command) if args.session else None
        for done in process_pending(cfg, db, sys.stdout):
            if done.stopped or done.set_aside:
                print(f"ghostroll: {done.stopped or done.set_aside}", file=sys.stderr)
        if only:
            db.enqueue_publish(only)
            if fresh_link:
                _renew_link(cfg, db, only)
        result = publish_all(cfg, db, sys.stdout, only=only)
    for sid in result.published:
        print(f"published {sid}")
    if result.failed:
        for sid, error in result.failed.items():
            print(f"ghostroll: publishing {sid} failed: {error}", file=sys.stderr)
        return ExitCode.PARTIAL
    if result.waiting:
        print(f"publishing queued: {result.waiting}")
        return ExitCode.QUEUED
    if not result.published:
        print("nothing to publish")
    return ExitCode.OK


def _renew_link(cfg: config.Config, db: Database, session_id: str) -> None:
    from ghostroll.publish.publisher import check_clock, ensure_link
    from ghostroll.publish.s3client import make_client

    client = make_client(cfg.s3)
    check_clock(cfg, client)
    session = db.session(session_id)
    assert session is not None
    link = ensure_link(cfg, db, client, session, fresh=True)
    print(f"new link for {session_id} (valid until {link.expires:%Y-%m-%d %H:%M} UTC): "
          f"{link.url}")


def cmd_reshare(args: argparse.Namespace) -> int:
    return cmd_publish(args, fresh_link=True)


def cmd_unshare(args: argparse.Namespace) -> int:
    from ghostroll.publish.s3client import make_client
    from ghostroll.publish.unshare import unshare

    cfg = config.from_args(args)
    setup_logging(cfg)
    _require_bucket(cfg)
    with Database(cfg.storage.db_path) as db:
        session = db.session(_session_arg(db, args.session, args.command))
        assert session is not None
        done = unshare(cfg, db, make_client(cfg.s3), session, delete_assets=args.delete)
    what = "its gallery page and photos" if args.delete else "its gallery page"
    print(f"unshared {done.session_id}: {what} deleted ({len(done.deleted)} objects); "
          f"{done.link or 'its link'} no longer opens.")
    print(f"`ghostroll publish {done.session_id}` shares it again under a new link.")
    return ExitCode.OK

def cmd_rename(args: argparse.Namespace) -> int:
    from ghostroll.commands.rename import rename

    cfg = config.from_args(args)
    with Database(cfg.storage.db_path) as db:
        session = db.session(_session_arg(db, args.session, args.command))
        assert session is not None
        try:
            print(rename(db, session, args.name))
        except ValueError as exc:
            print(f"ghostroll: {exc}", file=sys.stderr)
            return ExitCode.UNUSABLE
        queued = db.publish_entry(session.id) is not None and cfg.s3.enabled
    if queued:
        args.session = session.id
        return cmd_publish(args)
    return ExitCode.OK


def cmd_sessions(args: argparse.Namespace) -> int:
    from ghostroll.commands import sessions as sessions_cmd

    cfg = config.from_args(args)
    with Database(cfg.storage.db_path) as db:
        if args.action == "list":
            print("\n".join(sessions_cmd.list_lines(db)))
            return ExitCode.OK
        session = sessions_cmd.resolve(db, args.session, f"sessions {args.action}")
        if args.action == "retry":
            print(sessions_cmd.retry(db, session))
            return ExitCode.OK
        if args.action == "delete":
            return _delete_session(cfg, db, session, args.yes)
        print("\n".join(sessions_cmd.show_lines(db, session, qr=not args.no_qr)))
    return ExitCode.OK


def _delete_session(cfg: config.Config, db: Database, session: SessionRow, yes: bool) -> int:
    from ghostroll.commands import delete

    plan = delete.build_plan(cfg, db, session)
    print(delete.describe(plan))
    if not yes:
        if not sys.stdin.isatty():
            print("ghostroll: not deleted: confirm with --yes (no terminal to ask on)",
                  file=sys.stderr)
            return ExitCode.UNUSABLE
        if input("delete it? type yes: ").strip().lower() != "yes":
            print("not deleted")
            return ExitCode.OK
    print(delete.delete_session(cfg, db, plan))
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> int:
    from ghostroll.commands.demo import run_demo

    return run_demo(args.dir, photos=args.photos, serve=args.serve)


def cmd_config(args: argparse.Namespace) -> int:
    if args.markdown:
        print(config.markdown_table(), end="")
        return ExitCode.OK
    print(config.effective_toml(config.from_args(args)), end="")
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
