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

from ghostroll import __version__, config, logs
from ghostroll.errors import CardError, ConfigError, DatabaseError, DiskFullError, PublishError
from ghostroll.job import EXIT_OK, EXIT_PARTIAL, EXIT_UNUSABLE, run_job
from ghostroll.memory import return_freed_memory
from ghostroll.storage.db import Database


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ghostroll", description="Camera card in, private share link out.")
    parser.add_argument("--version", action="version", version=f"ghostroll {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="ingest one mounted card or folder")
    run.add_argument("path", type=Path, help="mounted card (or folder) holding DCIM/")
    run.add_argument("--volume-id", help="card identity (default: read from the card)")
    run.add_argument("--volume-label", help="card label to show (default: from the card)")
    run.add_argument("--no-publish", action="store_true",
                     help="ingest and make the gallery, but do not upload now")
    config.add_flags(run)
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
    config.add_flags(watch)
    watch.set_defaults(handler=cmd_watch)

    sessions = commands.add_parser(
        "sessions", help="list sessions, show one, or retry one whose processing was set aside")
    sessions.add_argument("action", nargs="?", choices=["list", "show", "retry"], default="list")
    sessions.add_argument("session", nargs="?", help="id, number or unique id prefix")
    sessions.add_argument("--no-qr", action="store_true", help="do not draw the link's QR")
    config.add_flags(sessions)
    sessions.set_defaults(handler=cmd_sessions)

    publish = commands.add_parser(
        "publish", help="publish the queue, or one session (queued again if needed)")
    publish.add_argument("session", nargs="?", help="id, number or unique id prefix")
    config.add_flags(publish)
    publish.set_defaults(handler=cmd_publish)

    reshare = commands.add_parser(
        "reshare", help="new links for a published session (after 7 days ran out)")
    reshare.add_argument("session", help="id, number or unique id prefix")
    config.add_flags(reshare)
    reshare.set_defaults(handler=cmd_reshare)

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
    config.add_flags(verify)
    verify.set_defaults(handler=cmd_verify)

    status = commands.add_parser("status", help="what the running appliance shows")
    status.add_argument("--json", action="store_true", help="the status.json document")
    config.add_flags(status)
    status.set_defaults(handler=cmd_status)

    setup = commands.add_parser("setup", help="write the config file after checking the bucket")
    setup.add_argument("--system", action="store_true",
                       help="the appliance's /etc/ghostroll/config.toml (root)")
    setup.add_argument("--yes", action="store_true", help="no questions: flags only")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return_freed_memory()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"ghostroll: configuration error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except (CardError, DatabaseError, DiskFullError, PublishError) as exc:
        print(f"ghostroll: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print("ghostroll: interrupted; verified files are kept", file=sys.stderr)
        return 130


def setup_logging(cfg: config.Config) -> None:
    logs.setup_logging(cfg.logging.log_level,
                       secrets=[s for s in (cfg.s3.s3_secret_access_key,) if s])
    logging.raiseExceptions = False  # a full disk must not turn a log line into a traceback


def cmd_run(args: argparse.Namespace) -> int:
    cfg = config.from_args(args)
    setup_logging(cfg)
    return run_job(args.path, cfg, volume_id=args.volume_id, label=args.volume_label,
                   publish=not args.no_publish).exit_code


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
    return EXIT_OK if model.state.value in ("done", "nothing_new", "idle") else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from ghostroll.commands import doctor

    try:
        cfg = config.from_args(args)
    except ConfigError as exc:
        result = [doctor.Check("config valid", doctor.FAIL, str(exc),
                               "fix the value named above")]
        print(doctor.report_json(result) if args.json else doctor.report_text(result))
        return EXIT_PARTIAL
    results = doctor.run_checks(cfg)
    print(doctor.report_json(results) if args.json else doctor.report_text(results))
    return EXIT_PARTIAL if doctor.failed(results) else EXIT_OK


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
        return EXIT_UNUSABLE
    print(verify.report_json(report) if args.json else verify.report_text(report))
    return EXIT_OK if report.ok else EXIT_PARTIAL


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
        return EXIT_UNUSABLE
    return EXIT_OK


def cmd_setup(args: argparse.Namespace) -> int:
    from ghostroll.commands.setup import run_setup

    flags = {k.name: getattr(args, f"cfg_{k.name}") for k in config.KEYS
             if getattr(args, f"cfg_{k.name}", None) is not None}
    interactive = not args.yes and sys.stdin.isatty()
    return run_setup(flags, system=args.system, interactive=interactive, path=args.config)


def cmd_firstboot(args: argparse.Namespace) -> int:
    from ghostroll.commands.firstboot import Paths, run

    return run(Paths(source=args.source, admin=args.admin))


def cmd_work(args: argparse.Namespace) -> int:
    from ghostroll.appliance.work import run_work

    cfg = config.from_args(args)
    setup_logging(cfg)
    return run_work(cfg, link_only=args.link,
                    announced=sys.stdin.buffer if args.stream else None)


def _session_arg(db: Database, ref: str) -> str:
    from ghostroll.commands.sessions import find

    session = find(db, ref)
    if session is None:
        raise CardError(f"no session matches {ref!r} (see `ghostroll sessions`)")
    return session.id


def cmd_publish(args: argparse.Namespace, fresh_link: bool = False) -> int:
    from ghostroll.job import EXIT_PARTIAL, EXIT_QUEUED, process_pending, publish_all

    cfg = config.from_args(args)
    setup_logging(cfg)
    if not cfg.s3.enabled:
        raise ConfigError("no bucket configured: set s3_bucket (GHOSTROLL_S3_BUCKET, "
                          "--s3-bucket or [s3] s3_bucket in the config file)")
    with Database(cfg.storage.db_path) as db:
        only = _session_arg(db, args.session) if args.session else None
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
        return EXIT_PARTIAL
    if result.waiting:
        print(f"publishing queued: {result.waiting}")
        return EXIT_QUEUED
    if not result.published:
        print("nothing to publish")
    return EXIT_OK


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


def cmd_sessions(args: argparse.Namespace) -> int:
    from ghostroll.commands import sessions as sessions_cmd

    cfg = config.from_args(args)
    with Database(cfg.storage.db_path) as db:
        if args.action == "list":
            print("\n".join(sessions_cmd.list_lines(db)))
            return EXIT_OK
        session = sessions_cmd.find(db, args.session or "")
        if session is None:
            print(f"ghostroll: no session matches {args.session!r} (see `ghostroll sessions`)",
                  file=sys.stderr)
            return EXIT_UNUSABLE
        if args.action == "retry":
            print(sessions_cmd.retry(db, session))
            return EXIT_OK
        print("\n".join(sessions_cmd.show_lines(db, session, qr=not args.no_qr)))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from ghostroll.commands.demo import run_demo

    return run_demo(args.dir, photos=args.photos, serve=args.serve)


def cmd_config(args: argparse.Namespace) -> int:
    if args.markdown:
        print(config.markdown_table(), end="")
        return EXIT_OK
    cfg = config.from_args(args)
    print(f"config file: {cfg.config_file or '(none)'}")
    for name, value, source in config.describe(cfg):
        print(f"{name} = {value}    ({source})")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
