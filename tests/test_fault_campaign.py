"""The seeded fault campaign (issue 10): real `ghostroll` processes, driven through the
CLI and through the appliance's card socket (`ghostroll simulate`: the service loop and
a real card-worker), meet a hostile world chosen by a seed: kill -9 at every named fault
point, ENOSPC at random points and on real tmpfs session and database disks that are too
small, S3 latency, 5xx bursts, resets mid-body and truncated responses through a fault
proxy, a card whose content changed between interrupted runs or while it is copied, a
bucket changed between publishes, two runs at once on one base dir, a case-insensitive
(exFAT) base dir, hostile and non-UTF-8 names. After the faults stop and a clean rerun,
the oracle (tests/support/campaign.py) must find everything safe and true.

CI runs the fixed set below (`pytest -m campaign` alone). `GHOSTROLL_CAMPAIGN=N` adds N
random scenarios; `GHOSTROLL_CAMPAIGN_SEED=S` replays a random set. The matrix (scenario
x outcome) ends the run and goes to test-artifacts/fault-campaign.txt.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostroll.devtools.s3local import LocalS3
from ghostroll.devtools.synthetic import PhotoSpec, make_blob, make_demo_card, make_jpeg
from tests.support import campaign as c
from tests.support.faultproxy import FaultPlan, FaultProxy

pytestmark = pytest.mark.campaign

KINDS = ("kill", "kill-socket", "enospc", "s3", "card-changed", "card-changing",
         "bucket-changed", "concurrent", "case-insensitive", "hostile-names", "tmpfs-full",
         "db-full", "verify-killed")

# The CI set: every named kill point once (two through the card socket), and each other
# kind at least once, its variants (after the colon) chosen; seeds pick the rest (which
# pass N, timings, fault rates, files). Random scenarios leave the variant to the seed.
CI_CASES: list[tuple[str, int]] = [
    *[(f"kill:{point}", 100 + i) for i, point in enumerate(c.KILL_POINTS)
      if point not in ("copy.chunk", "derive")],
    ("kill-socket:copy.chunk", 201), ("kill-socket:derive", 202),
    ("enospc:copy.chunk", 301), ("enospc:db.commit", 302), ("enospc:derive", 303),
    ("enospc:upload", 304), ("tmpfs-full", 305), ("db-full", 306),
    ("s3", 401), ("s3:5xx", 402), ("s3:reset", 403), ("s3:truncate", 404),
    ("card-changed:db.commit", 501), ("card-changed:copy.chunk", 502), ("card-changing", 503),
    ("bucket-changed:reshare", 601), ("bucket-changed:publish", 602),
    ("concurrent:fresh", 701), ("concurrent:existing", 702),
    ("case-insensitive", 801), ("hostile-names:run", 901), ("hostile-names:socket", 902),
    ("verify-killed", 1001),
]


def extra_cases() -> list[tuple[str, int]]:
    raw = os.environ.get(c.CAMPAIGN_ENV, "").strip() or "0"
    if not raw.isdigit():
        raise pytest.UsageError(f"{c.CAMPAIGN_ENV}={raw!r}: give a number of scenarios")
    seed_text = os.environ.get(c.SEED_ENV, "").strip()
    base = int(seed_text) if seed_text.isdigit() else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(base)
    c.EXTRA_SEED = base if int(raw) else None
    return [(rng.choice(KINDS), rng.randrange(1 << 31)) for _ in range(int(raw))]


EXTRA_CASES = extra_cases()
CASES = CI_CASES + EXTRA_CASES


# ---------------------------------------------------------------- fixtures and cards


@pytest.fixture
def world(tmp_path: Path) -> c.World:
    return c.World(tmp_path, tmp_path / "sessions", tmp_path / "ghostroll.db")


@contextlib.contextmanager
def with_s3(world: c.World, server: LocalS3, seed: int) -> Iterator[c.S3Target]:
    bucket = f"camp-{uuid.uuid4().hex[:12]}"
    server.create_bucket(bucket)
    port = int(server.endpoint_url.rsplit(":", 1)[1])
    with FaultProxy(("127.0.0.1", port), seed=seed) as proxy:
        world.s3 = c.S3Target(server, bucket, proxy)
        world.bucket = bucket
        yield world.s3


def photo_card(root: Path, rng: random.Random, photos: int = 3) -> Path:
    """The demo card (JPEGs with EXIF, RAW+JPEG, video, THM, OS junk) plus a photo big
    enough that a kill or a delay lands inside it."""
    make_demo_card(root, photos=photos, seed=rng.randrange(1 << 20))
    make_jpeg(root / "DCIM" / "100GHOST" / "IMG_0900.JPG", PhotoSpec(3000, 2000),
              seed=rng.randrange(1 << 20))
    make_blob(root / "DCIM" / "100GHOST" / "MVI_0901.MOV", 4 << 20, seed=rng.randrange(99),
              header=b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ")
    return root


# Passes through each point that one run of photo_card() surely makes (9 files, at
# least 9 MiB read, 5 pictures, 13 objects uploaded, one zip, one final index).
REACH = {"copy.chunk": 9, "copy.fsync": 8, "copy.commit": 8, "verify": 8, "db.commit": 8,
         "derive": 4, "zip": 1, "upload": 12, "publish.index": 1}


def nth_for(point: str, rng: random.Random) -> int:
    """Which pass through a point the fault hits."""
    return rng.randint(1, REACH[point])


def output_mentions_fault(world: c.World, result: c.Result) -> bool:
    """Did the injected fault surface anywhere (output or a session's log)?"""
    if "test fault at" in result.stdout + result.stderr or "[Errno 28]" in result.stdout:
        return True
    return any("test fault at" in log.read_text(errors="replace")
               for log in world.base.glob("shoot-*/ghostroll.log"))


# ---------------------------------------------------------------- scenarios


def kill(world: c.World, rec: c.Recorder, rng: random.Random, server: LocalS3,
         point: str, socket: bool) -> None:
    point = point or rng.choice(c.KILL_POINTS)
    nth = nth_for(point, rng)
    rec.row.detail = (f"kill -9 at {point}@{nth} via "
                      f"{'card socket (simulate)' if socket else 'ghostroll run'}")
    card = photo_card(world.tmp / "card", rng)
    with with_s3(world, server, rng.randrange(1 << 30)):
        env = c.fault_env(point, "kill", nth, delay_ms=20)
        first = c.simulate(world, card, **env) if socket else c.card_run(world, card, None,
                                                                         **env)
        # the card socket's processes (card worker, work child) are not ours to wait
        # on: their SIGKILL shows in what the service says about them, or as the error
        # screen the same card otherwise never ends on
        said = first.stdout + first.stderr
        killed = first.killed or (socket and (
            "ended with -9" in said or "(exit -9)" in said
            or c.panel_error(world).startswith("error")))
        rec.note(f"faulted run: exit {first.returncode}{' (killed)' if killed else ''}: "
                 f"{first.tail(1)}")
        rec.expect(killed, f"{point}@{nth} never reached: the fault point is missing or "
                           f"passed fewer times (exit {first.returncode})")
        rec.expect(killed or not first.traceback, f"traceback: {first.tail()}")
        if socket:
            again = c.simulate(world, card)
            rec.note(f"socket rerun: exit {again.returncode}")
            rec.expect(not again.traceback, f"simulate rerun traceback: {again.tail()}")
        c.clean_rerun(world, [(card, None)], rec)
        c.oracle(world, [card], rec)
    c.finish(rec)


def enospc(world: c.World, rec: c.Recorder, rng: random.Random, server: LocalS3,
           point: str) -> None:
    point = point or rng.choice(c.ENOSPC_POINTS)
    nth = nth_for(point, rng)
    rec.row.detail = f"ENOSPC at {point}@{nth} via ghostroll run"
    card = photo_card(world.tmp / "card", rng)
    with with_s3(world, server, rng.randrange(1 << 30)):
        first = c.card_run(world, card, None, **c.fault_env(point, "enospc", nth))
        rec.note(f"faulted run: exit {first.returncode}: {first.tail(2)}")
        rec.expect(not first.traceback, f"traceback on ENOSPC at {point}: {first.tail()}")
        hit = output_mentions_fault(world, first)
        if first.returncode == 0 and hit:
            rec.problem(f"ENOSPC at {point} was hit but the run exited 0 (false done)")
        if not hit and first.returncode == 0:
            rec.note(f"{point}@{nth}: no sign the fault was hit (point missing or not reached)")
        c.clean_rerun(world, [(card, None)], rec)
        c.oracle(world, [card], rec)
    c.finish(rec)


def tmpfs_full(world: c.World, rec: c.Recorder, rng: random.Random) -> None:
    if os.geteuid() != 0:
        c.skip(rec, "a real small tmpfs base dir needs root (mount)")
    card = photo_card(world.tmp / "card", rng)
    card_bytes = sum(p.stat().st_size for p in card.rglob("*") if p.is_file())
    size_kb = card_bytes // 1024 + rng.randint(64, 1536)
    rec.row.detail = (f"base dir on a {size_kb} KiB tmpfs for a {card_bytes >> 10} KiB "
                      "card, then grown")
    world.base.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs",
                    str(world.base)], check=True)
    try:
        first = c.card_run(world, card, None, GHOSTROLL_FREE_SPACE_MARGIN_MB="0")
        rec.note(f"full disk run: exit {first.returncode}: {first.tail(2)}")
        rec.expect(not first.traceback, f"traceback on a full disk: {first.tail()}")
        if first.returncode == 0:  # it fit after all: then it must be truly done
            rec.note("the job fit on the small disk")
        else:
            leftovers = [p for p in world.base.rglob("*")
                         if p.name.endswith((".tmp", ".part"))]
            rec.expect(not leftovers, f"temp files left on the full disk: {leftovers[:3]}")
            # grown past the default margin (256 MB), as freeing space for a card would
            subprocess.run(["mount", "-o", "remount,size=512m", str(world.base)], check=True)
            c.clean_rerun(world, [(card, None)], rec)
        c.oracle(world, [card], rec)
    finally:
        subprocess.run(["umount", "-l", str(world.base)], check=False)
    c.finish(rec)


def db_full(world: c.World, rec: c.Recorder, rng: random.Random) -> None:
    """The database's disk fills up while the card is recorded (a real tmpfs): a clear
    stop, nothing counted that is not stored, and the next run completes."""
    if os.geteuid() != 0:
        c.skip(rec, "a real small tmpfs for the database needs root (mount)")
    card = make_demo_card(world.tmp / "card", photos=30, seed=rng.randrange(1 << 20))
    size_kb = rng.randint(160, 260)
    rec.row.detail = f"database on a {size_kb} KiB tmpfs that fills while recording, then grown"
    db_dir = world.tmp / "db"
    db_dir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(db_dir)],
                   check=True)
    world.db_path = db_dir / "ghostroll.db"
    try:
        first = c.card_run(world, card, None)
        rec.note(f"full database disk: exit {first.returncode}: {first.tail(1)}")
        rec.expect(not first.traceback, f"traceback on a full database disk: {first.tail()}")
        if first.returncode == 0:  # it fit after all: then it must be truly done
            rec.note("the database fit on the small disk")
        else:
            subprocess.run(["mount", "-o", "remount,size=64m", str(db_dir)], check=True)
            c.clean_rerun(world, [(card, None)], rec)
        c.oracle(world, [card], rec)
    finally:
        subprocess.run(["umount", "-l", str(db_dir)], check=False)
    c.finish(rec)


def s3_faults(world: c.World, rec: c.Recorder, rng: random.Random, server: LocalS3,
              focus: str) -> None:
    """`focus` (5xx, reset, truncate) makes that fault frequent; else a seeded mix."""
    chance = {kind: (0.35 if kind == focus else rng.uniform(0.02, 0.15))
              for kind in ("5xx", "reset", "truncate")}
    plan = FaultPlan(latency_ms=(0, rng.choice((50, 200, 500))),
                     p_5xx=chance["5xx"], burst=rng.randint(1, 4),
                     p_reset=chance["reset"], p_truncate=chance["truncate"])
    rec.row.detail = (f"S3 via proxy: latency<={plan.latency_ms[1]}ms 5xx={plan.p_5xx:.2f}"
                      f"x{plan.burst} reset={plan.p_reset:.2f} trunc={plan.p_truncate:.2f}")
    card = photo_card(world.tmp / "card", rng)
    with with_s3(world, server, rng.randrange(1 << 30)) as s3:
        s3.proxy.set_plan(plan)
        first = c.card_run(world, card, None)
        rec.note(f"faulted run: exit {first.returncode}: {first.tail(2)}")
        rec.expect(not first.traceback, f"traceback under S3 faults: {first.tail()}")
        rec.expect(first.returncode in (0, 1, 3), f"faulted run exit {first.returncode}")
        if first.returncode != 0:
            again = world.run("publish")
            rec.note(f"publish under faults: exit {again.returncode}")
            rec.expect(not again.traceback, f"publish traceback: {again.tail()}")
        s3.proxy.set_plan(None)
        rec.note("proxy: " + ", ".join(f"{k} {v}" for k, v in sorted(s3.proxy.counts.items())))
        c.clean_rerun(world, [(card, None)], rec)
        c.oracle(world, [card], rec)
    c.finish(rec)


def card_changed(world: c.World, rec: c.Recorder, rng: random.Random, point: str) -> None:
    """Issue 10's first reproduction: killed after some copies were recorded, a photo
    the run already counted is replaced on the card by another under the same name."""
    card = world.tmp / "card"
    folder = card / "DCIM" / "100CANON"
    for i in range(1, 6):
        make_jpeg(folder / f"IMG_{i:04d}.JPG", PhotoSpec(2400, 1600), seed=rng.randrange(1 << 20))
    point = point or rng.choice(("copy.chunk", "db.commit", "verify", "copy.commit"))
    nth = rng.randint(2, 4)
    before = c.card_files(card)
    first = c.card_run(world, card, "fat:CA5E-0001", **c.fault_env(point, "kill", nth, 30))
    rec.note(f"faulted run: exit {first.returncode}")
    recorded = c.recorded_card_paths(world)
    victim = card / rng.choice(recorded or sorted(p.relative_to(card).as_posix()
                                                  for p in folder.iterdir()))
    rec.row.detail = (f"kill at {point}@{nth}, then {victim.name} "
                      f"({'recorded' if recorded else 'not yet recorded'}) replaced, rerun")
    make_jpeg(victim, PhotoSpec(2400, 1600), seed=rng.randrange(1 << 20) + (1 << 21))
    c.clean_rerun(world, [(card, "fat:CA5E-0001")], rec)
    c.oracle(world, [card], rec, also=before)
    c.finish(rec)


def card_changing(world: c.World, rec: c.Recorder, rng: random.Random) -> None:
    """A file on the card is rewritten while the run copies it (a camera still writing,
    a flaky reader): that file is itemised or read again, the rest copied, nothing lost."""
    card = photo_card(world.tmp / "card", rng)
    victim = card / "DCIM" / "100GHOST" / "MVI_0901.MOV"
    grow = rng.random() < 0.5
    rec.row.detail = f"{victim.name} rewritten ({'longer' if grow else 'same size'}) mid-copy"
    before = c.card_files(card)
    proc = world.start("run", str(card), "--volume-id", "fat:C4A6-0001",
                       GHOSTROLL_TEST_DELAY_MS="copy.chunk=150")
    incoming = world.base / ".incoming"
    for _ in range(600):  # until the first copy is in flight (or the run is over)
        if proc.poll() is not None or (incoming.is_dir() and any(incoming.iterdir())):
            break
        time.sleep(0.05)
    make_blob(victim, (5 << 20) if grow else (4 << 20), seed=rng.randrange(1 << 20) + 999,
              header=b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ")
    out, err = proc.communicate(timeout=240)
    first = c.Result(("run",), proc.returncode, out, err)
    rec.note(f"run while the file changed: exit {first.returncode}: {first.tail(1)}")
    rec.expect(first.returncode in (0, 1) and not first.traceback,
               f"run with a changing file: exit {first.returncode}: {first.tail()}")
    c.clean_rerun(world, [(card, "fat:C4A6-0001")], rec)
    c.oracle(world, [card], rec, also=before)
    c.finish(rec)


def verify_killed(world: c.World, rec: c.Recorder, rng: random.Random) -> None:
    """The oracle itself interrupted: `verify --read-data` killed mid-pass (power cut
    during the check), then run again: it resumes and still tells the truth."""
    card = photo_card(world.tmp / "card", rng)
    nth = rng.randint(2, 8)
    rec.row.detail = f"verify --read-data killed at verify.read@{nth}, then again"
    done = c.card_run(world, card, None)
    rec.expect(done.returncode == 0, f"run: exit {done.returncode}: {done.tail()}")
    killed = world.run("verify", "--read-data", "--json",
                       **c.fault_env("verify.read", "kill", nth))
    rec.expect(killed.killed, f"verify.read@{nth} never reached (exit {killed.returncode})")
    c.oracle(world, [card], rec)
    c.finish(rec)


def bucket_changed(world: c.World, rec: c.Recorder, rng: random.Random,
                   server: LocalS3, how: str) -> None:
    how = how or rng.choice(("reshare", "publish"))
    rec.row.detail = f"published, then the bucket changed and `{how}`"
    card = photo_card(world.tmp / "card", rng, photos=2)
    with with_s3(world, server, rng.randrange(1 << 30)):
        first = c.card_run(world, card, None)
        rec.expect(first.returncode == 0, f"first publish: exit {first.returncode}: "
                                          f"{first.tail()}")
        second = f"camp-{uuid.uuid4().hex[:12]}"
        server.create_bucket(second)
        world.bucket = second
        moved = world.run("reshare", "1") if how == "reshare" else world.run("publish", "1")
        rec.note(f"{how} into the new bucket: exit {moved.returncode}: {moved.tail(2)}")
        rec.expect(moved.returncode == 0 and not moved.traceback,
                   f"{how} after the bucket change: exit {moved.returncode}")
        c.clean_rerun(world, [(card, None)], rec)
        c.oracle(world, [card], rec)
    c.finish(rec)


def concurrent(world: c.World, rec: c.Recorder, rng: random.Random, database: str) -> None:
    delay = rng.randint(10, 60)
    fresh = database == "fresh" if database else rng.random() < 0.5
    rec.row.detail = (f"two runs at once on one base dir ({'fresh' if fresh else 'existing'}"
                      f" database), {delay} ms/MiB")
    cards = [photo_card(world.tmp / name, random.Random(rng.randrange(1 << 30)))
             for name in ("card-a", "card-b")]
    if not fresh:
        primed = world.run("sessions")
        rec.expect(primed.returncode == 0, f"ghostroll sessions: {primed.tail()}")
    procs = [world.start("run", str(card), "--volume-id", f"fat:C0C0-000{i}",
                         GHOSTROLL_TEST_DELAY_MS=f"copy.chunk={delay}")
             for i, card in enumerate(cards)]
    for proc, card in zip(procs, cards, strict=True):
        out, err = proc.communicate(timeout=240)
        result = c.Result(("run", str(card)), proc.returncode, out, err)
        rec.note(f"{card.name}: exit {result.returncode}: {result.tail(1)}")
        rec.expect(result.returncode == 0 and not result.traceback,
                   f"concurrent run on {card.name}: exit {result.returncode}: "
                   f"{result.tail()}")
    c.clean_rerun(world, [(card, f"fat:C0C0-000{i}") for i, card in enumerate(cards)], rec)
    c.oracle(world, cards, rec)
    c.finish(rec)


def case_insensitive(world: c.World, rec: c.Recorder, rng: random.Random) -> None:
    if os.geteuid() != 0:
        c.skip(rec, "an exFAT base dir is mounted through a loop device and FUSE: root")
    missing = [t for t in ("mkfs.exfat", "mount.exfat-fuse", "losetup")
               if shutil.which(t) is None]
    if missing:
        c.skip(rec, f"missing tools: {', '.join(missing)}")
    card = world.tmp / "card"
    pairs = rng.randint(1, 3)
    for i in range(1, pairs + 1):
        make_jpeg(card / "DCIM" / "100CANON" / f"IMG_{i:04d}.JPG", PhotoSpec(1200, 800),
                  seed=rng.randrange(1 << 20))
        make_jpeg(card / "DCIM" / "100CANON" / f"img_{i:04d}.jpg", PhotoSpec(1200, 800),
                  seed=rng.randrange(1 << 20))
    make_jpeg(card / "dcim" / "100canon" / "IMG_0001.JPG", PhotoSpec(1200, 800),
              seed=rng.randrange(1 << 20))
    rec.row.detail = (f"exFAT base dir (exfat-fuse rw), {pairs} IMG/img name pairs + "
                      "DCIM/dcim")
    image = world.tmp / "base.img"
    with image.open("wb") as fh:
        fh.truncate(96 << 20)
    subprocess.run(["mkfs.exfat", "-L", "sessions", str(image)], check=True,
                   capture_output=True)
    loop = subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                          capture_output=True, text=True).stdout.strip()
    world.base.mkdir()
    try:
        subprocess.run(["mount", "-t", "exfat-fuse", loop, str(world.base)], check=True,
                       capture_output=True)
        try:
            first = c.card_run(world, card, "fat:CA5E-1NSE",
                               GHOSTROLL_FREE_SPACE_MARGIN_MB="8")
            rec.note(f"run: exit {first.returncode}: {first.tail(2)}")
            rec.expect(not first.traceback, f"traceback: {first.tail()}")
            c.clean_rerun(world, [(card, "fat:CA5E-1NSE")], rec,
                          GHOSTROLL_FREE_SPACE_MARGIN_MB="8")
            c.oracle(world, [card], rec)
        finally:
            from ghostroll.devtools.cardimage import unmount

            unmount(world.base)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False, capture_output=True)
    c.finish(rec)


HOSTILE = [b"IMG_\xff\xfe0001.JPG", b"caf\xe9.JPG", b"IMG 0002 (copy).JPG",
           b"<img src=x onerror=alert(1)>.JPG", b"a\nb.JPG", "e\u0301t\u00e9.JPG".encode(),
           b"-rf.JPG", b"..JPG", b"%2e%2e%2fx.JPG", b"q\"uo't&amp;.JPG", b"#hash?.JPG",
           "\U0001f4f7 emoji.JPG".encode(), b"x" * 200 + b".JPG"]


def hostile_names(world: c.World, rec: c.Recorder, rng: random.Random,
                  server: LocalS3, via: str) -> None:
    names = rng.sample(HOSTILE, k=rng.randint(5, len(HOSTILE)))
    socket = via == "socket" if via else rng.random() < 0.5
    rec.row.detail = (f"{len(names)} hostile/non-UTF-8 names via "
                      f"{'card socket (simulate)' if socket else 'ghostroll run'}")
    card = world.tmp / "card"
    folder = os.fsencode(card / "DCIM" / "100HOST")
    os.makedirs(folder)
    tmp = card / "tmp.jpg"
    for name in names:
        make_jpeg(tmp, PhotoSpec(800, 600), seed=rng.randrange(1 << 20))
        os.rename(tmp, os.path.join(folder, name))
    with with_s3(world, server, rng.randrange(1 << 30)):
        first = c.simulate(world, card) if socket else c.card_run(world, card, None)
        rec.note(f"run: exit {first.returncode}: {first.tail(2)}")
        rec.expect(not first.traceback, f"traceback on hostile names: {first.tail()}")
        c.clean_rerun(world, [(card, None)], rec)
        c.oracle(world, [card], rec)
    c.finish(rec)


# ---------------------------------------------------------------- the campaign


def _id(case: tuple[str, int], random_one: bool) -> str:
    return f"{'random-' if random_one else ''}{case[0]}-{case[1]}"


@pytest.mark.parametrize("case", CASES,
                         ids=[_id(x, i >= len(CI_CASES)) for i, x in enumerate(CASES)])
def test_scenario(case: tuple[str, int], world: c.World, scenario_record: c.Recorder,
                  request: pytest.FixtureRequest) -> None:
    kind, seed = case
    name, _, point = kind.partition(":")
    rng = random.Random(f"{name}:{seed}")  # a string seed is hashed: well mixed streams
    record = scenario_record

    def server() -> LocalS3:
        return request.getfixturevalue("s3_server")

    if name in ("kill", "kill-socket"):
        kill(world, record, rng, server(), point, socket=name == "kill-socket")
    elif name == "enospc":
        enospc(world, record, rng, server(), point)
    elif name == "tmpfs-full":
        tmpfs_full(world, record, rng)
    elif name == "db-full":
        db_full(world, record, rng)
    elif name == "s3":
        s3_faults(world, record, rng, server(), point)
    elif name == "card-changed":
        card_changed(world, record, rng, point)
    elif name == "card-changing":
        card_changing(world, record, rng)
    elif name == "verify-killed":
        verify_killed(world, record, rng)
    elif name == "bucket-changed":
        bucket_changed(world, record, rng, server(), point)
    elif name == "concurrent":
        concurrent(world, record, rng, point)
    elif name == "case-insensitive":
        case_insensitive(world, record, rng)
    elif name == "hostile-names":
        hostile_names(world, record, rng, server(), point)
    else:
        raise AssertionError(f"unknown scenario {kind}")


# ---------------------------------------------------------------- the proxy itself


def test_fault_proxy_passes_sigv4_through_and_each_fault_reaches_the_client(
        s3_server: LocalS3) -> None:
    """Through the proxy, signed requests and presigned URLs work (bytes and Host
    unchanged) and unsigned ones stay refused; each fault kind shows up at a real boto3
    client as the error a flaky network gives; switched off, everything passes again."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ghostroll import config
    from ghostroll.publish.links import presign_get
    from ghostroll.publish.s3client import make_client

    bucket = f"camp-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    with FaultProxy(("127.0.0.1", port), seed=11) as proxy:
        flags = {**s3_server.config_flags(bucket), "s3_endpoint_url": proxy.endpoint_url}
        client = make_client(config.load(config_file=None, env={}, flags=flags).s3)
        body = random.Random(3).randbytes(300_000)
        client.put_object(Bucket=bucket, Key="a/photo.jpg", Body=body)
        url = presign_get(client, bucket, "a/photo.jpg", 600)
        assert c.http_get(url) == (200, body)
        assert c.http_get(url.split("?", 1)[0])[0] == 403

        for kind, plan in (("5xx", FaultPlan(p_5xx=1.0)), ("reset", FaultPlan(p_reset=1.0)),
                           ("truncate", FaultPlan(p_truncate=1.0))):
            proxy.set_plan(plan)
            with pytest.raises((BotoCoreError, ClientError)):
                client.get_object(Bucket=bucket, Key="a/photo.jpg")["Body"].read()
            if kind != "truncate":  # a cut PUT answer may look whole: the object is there
                with pytest.raises((BotoCoreError, ClientError)):
                    client.put_object(Bucket=bucket, Key=f"b/{kind}", Body=body)
        assert (proxy.counts["5xx"], proxy.counts["reset"], proxy.counts["truncate"]) == \
            (2, 2, 1)

        proxy.set_plan(FaultPlan(latency_ms=(1, 20)))
        client.put_object(Bucket=bucket, Key="c/slow.jpg", Body=body)
        assert proxy.counts["delayed"] == 1
        proxy.set_plan(None)
        assert client.get_object(Bucket=bucket, Key="c/slow.jpg")["Body"].read() == body
        assert c.http_get(url) == (200, body)
