"""The seeded fault campaign's machinery: a world per scenario (base dir, database, a
bucket behind the fault proxy), black-box runs of the real CLI, the oracle, the matrix.

Everything here talks to GhostRoll from outside: `python -m ghostroll ...` processes with
GHOSTROLL_* settings and the test-only fault hooks (GHOSTROLL_FAULT,
GHOSTROLL_TEST_DELAY_MS), the database file read-only, the session folders, the bucket
over HTTP. A rewrite of the pipeline that keeps the CLI, the fault point names, the
`verify --json` contract and the session layout keeps the campaign.

The oracle, after every scenario's final clean rerun:
  1. `ghostroll verify --read-data --json` exits 0 and says ok;
  2. every card file's bytes equal a stored original's (found through the database's
     recorded copies), and the database counts that content as safe;
  3. every session finished its work (processed; published when a bucket is set);
  4. published: the index and each asset it links answer a presigned GET with 200 and an
     unsigned GET with 403; every object the upload ledger names holds those bytes.

The matrix (scenario x outcome) is printed at the end of the pytest run and written to
test-artifacts/fault-campaign.txt.
"""

from __future__ import annotations

import filecmp
import hashlib
import html
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ghostroll.devtools.s3local import LocalS3
from tests.support.faultproxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "test-artifacts" / "fault-campaign.txt"
TRACEBACK = "Traceback (most recent call last)"
CAMPAIGN_ENV = "GHOSTROLL_CAMPAIGN"
SEED_ENV = "GHOSTROLL_CAMPAIGN_SEED"

KILL_POINTS = ("copy.chunk", "copy.fsync", "copy.commit", "verify", "db.commit", "derive",
               "zip", "upload", "publish.index")
ENOSPC_POINTS = ("copy.chunk", "copy.fsync", "copy.commit", "verify", "db.commit", "derive",
                 "zip", "upload", "publish.index")


# ---------------------------------------------------------------- the matrix


@dataclass
class Row:
    scenario: str
    seed: int
    detail: str
    outcome: str = "running"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


MATRIX: list[Row] = []
EXTRA_SEED: int | None = None  # the base seed of the GHOSTROLL_CAMPAIGN=N extra scenarios


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not MATRIX:
        return
    text = matrix_text(MATRIX)
    terminalreporter.write_sep("=", "fault campaign matrix")
    terminalreporter.write(text)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(text, encoding="utf-8")
    terminalreporter.write_line(f"(written to {ARTIFACT.relative_to(REPO)})")


def _revision() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, text=True,
                              capture_output=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def matrix_text(rows: list[Row]) -> str:
    width = max(len(f"{r.scenario}[{r.seed}]") for r in rows)
    lines = [f"fault campaign at {_revision()}, "
             f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"]
    if EXTRA_SEED is not None:
        lines.append(f"random scenarios: replay with {SEED_ENV}={EXTRA_SEED} {CAMPAIGN_ENV}=N")
    lines += [f"{'scenario':<{width}}  {'outcome':<7}  {'time':>6}  what",
              "-" * (width + 40)]
    for r in rows:
        lines.append(f"{f'{r.scenario}[{r.seed}]':<{width}}  {r.outcome:<7}  "
                     f"{r.seconds:5.1f}s  {r.detail}")
        lines += [f"{'':<{width}}    - {note}" for note in r.notes]
    counts = {k: sum(1 for r in rows if r.outcome == k) for k in ("pass", "FAIL", "skip")}
    lines.append(f"{len(rows)} scenarios: {counts['pass']} pass, {counts['FAIL']} fail, "
                 f"{counts['skip']} skipped; {sum(r.seconds for r in rows):.0f} s")
    return "\n".join(lines) + "\n"


@dataclass
class Recorder:
    """What a scenario tells the matrix, and the assertion at its end."""

    row: Row
    problems: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.row.notes.append(text)

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.row.notes.append(text)

    def expect(self, ok: bool, text: str) -> None:
        if not ok:
            self.problem(text)


@pytest.fixture
def scenario_record(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    kind, seed = request.node.callspec.params["case"]
    row = Row(kind, seed, "")
    MATRIX.append(row)
    request.node.campaign_row = row
    started = time.monotonic()
    try:
        yield Recorder(row)
    finally:
        row.seconds = time.monotonic() - started


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """The matrix shows what pytest decided, whatever ended the scenario."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    row = getattr(item, "campaign_row", None)
    if row is None or report.when not in ("setup", "call"):
        return
    if report.when == "call" or not report.passed:
        row.outcome = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}[report.outcome]
        if report.failed and call.excinfo is not None and \
                not call.excinfo.errisinstance(pytest.fail.Exception):
            row.notes.append(f"crashed: {call.excinfo.exconly()[:300]}")


def finish(rec: Recorder) -> None:
    """End of a scenario: fail it with every problem found."""
    if rec.problems:
        pytest.fail("\n".join(rec.problems), pytrace=False)


def skip(rec: Recorder, reason: str) -> None:
    rec.note(reason)
    pytest.skip(reason)


# ---------------------------------------------------------------- a scenario's world


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -9

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.stderr or TRACEBACK in self.stdout

    def tail(self, lines: int = 6) -> str:
        text = (self.stdout + self.stderr).strip().splitlines()
        return " | ".join(text[-lines:])


@dataclass
class S3Target:
    server: LocalS3
    bucket: str
    proxy: FaultProxy

    def env(self, bucket: str | None = None) -> dict[str, str]:
        flags = self.server.config_flags(bucket or self.bucket)
        flags["s3_endpoint_url"] = self.proxy.endpoint_url  # every request goes through it
        env = {f"GHOSTROLL_{k.upper()}": v for k, v in flags.items()}
        env["GHOSTROLL_CLOCK_TRUSTED"] = "true"
        return env


@dataclass
class World:
    tmp: Path
    base: Path
    db_path: Path
    s3: S3Target | None = None
    bucket: str | None = None  # the bucket currently configured (bucket-changed moves it)

    def env(self, **extra: str) -> dict[str, str]:
        env = {"GHOSTROLL_BASE_DIR": str(self.base), "GHOSTROLL_DB_PATH": str(self.db_path),
               "GHOSTROLL_RUNTIME_DIR": str(self.tmp / "run"),
               "HOME": str(self.tmp), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}
        if self.s3 is not None:
            env.update(self.s3.env(self.bucket))
        env.update(extra)
        return env

    def start(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "ghostroll", *args],
                                env=self.env(**extra), cwd=self.tmp, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, *args: str, timeout: float = 240, **extra: str) -> Result:
        proc = self.start(*args, **extra)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\n(campaign: killed after {timeout:.0f} s)"
        return Result(tuple(args), proc.returncode, out, err)


def fault_env(point: str, action: str, nth: int, delay_ms: int = 0) -> dict[str, str]:
    env = {"GHOSTROLL_FAULT": f"{point}:{action}@{nth}"}
    if delay_ms:
        env["GHOSTROLL_TEST_DELAY_MS"] = f"copy.chunk={delay_ms}"
    return env


def card_run(world: World, card: Path, volume: str | None, **extra: str) -> Result:
    """`ghostroll run CARD`; volume None: the card's own identity (for a folder its
    path), the same one the card worker finds."""
    return world.run("run", str(card), *(("--volume-id", volume) if volume else ()), **extra)


def simulate(world: World, card: Path, **extra: str) -> Result:
    """The appliance, black box: the service loop with a real card-worker process over
    the card socket and the background work in its child process."""
    return world.run("simulate", "--card", str(card), "--frames", str(world.tmp / "frames"),
                     timeout=300, **extra)


def panel_error(world: World) -> str:
    """The error the appliance last showed (status.json, mirrored to the base dir)."""
    try:
        status = json.loads((world.base / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return f"{status.get('state')}: {status.get('error') or ''}"


# ---------------------------------------------------------------- the oracle


def sha256_file(path: Path | bytes) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def card_files(card: Path) -> dict[bytes, str]:
    """Every regular file on a folder card (raw byte paths: names need not be UTF-8),
    OS junk included: the oracle decides below what must be kept."""
    found: dict[bytes, str] = {}
    root = os.fsencode(card)
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = sha256_file(path)
    return found


def is_junk(rel: bytes) -> bool:
    """What GhostRoll skips on purpose (macOS/Windows litter), not photos."""
    parts = rel.split(b"/")
    return (any(p.startswith(b"._") or p in (b".Trashes", b".Spotlight-V100", b".fseventsd",
                                            b"System Volume Information") for p in parts)
            or parts[-1] in (b".DS_Store", b"Thumbs.db", b"desktop.ini"))


def _db(world: World) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{world.db_path}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}


def recorded_copies(conn: sqlite3.Connection) -> dict[str, list[Path]]:
    """sha256 -> the local copies the database records (copies table; older layouts:
    the files table's first session and path)."""
    out: dict[str, list[Path]] = {}
    if "location" in _columns(conn, "copies"):
        for r in conn.execute("SELECT sha256, target FROM copies WHERE location = 'local'"):
            out.setdefault(r["sha256"], []).append(Path(os.fsencode(r["target"]).decode(
                "utf-8", "surrogateescape")))
        return out
    for r in conn.execute("SELECT f.sha256, s.path, f.rel_path FROM files f "
                          "JOIN sessions s ON s.id = f.session_id"):
        out.setdefault(r["sha256"], []).append(Path(r["path"]) / "originals" / r["rel_path"])
    return out


def recorded_card_paths(world: World) -> list[str]:
    """Card paths the database counts as copied (sorted), for choosing what to change."""
    if not world.db_path.exists():
        return []
    with _db(world) as conn:
        return sorted(r[0] for r in conn.execute(
            "SELECT rel_path FROM session_files WHERE status = 'verified'"))


def verify_oracle(world: World, rec: Recorder) -> None:
    result = world.run("verify", "--read-data", "--json", timeout=300)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        rec.problem(f"verify --read-data --json: exit {result.returncode}, no JSON report: "
                    f"{result.tail()}")
        return
    problems = report.get("problems") or []
    checked = report.get("checked") or {}
    rec.note("verify checked: " + ", ".join(f"{k} {v}" for k, v in sorted(checked.items())
                                            if isinstance(v, int) and v))
    for p in problems[:8]:
        rec.problem(f"verify: {p.get('kind')}: {p.get('session') or ''} {p.get('path') or ''}"
                    f": {p.get('message')}")
    rec.expect(result.returncode == 0 and report.get("ok") is True and not problems,
               f"verify --read-data: exit {result.returncode}, ok={report.get('ok')}, "
               f"{len(problems)} problems")
    rec.expect(not result.traceback, f"verify printed a traceback: {result.tail()}")


def content_oracle(world: World, cards: list[Path], rec: Recorder,
                   also: dict[bytes, str] | None = None) -> int:
    """Every card file byte-identical to a recorded copy; returns how many were checked.
    `also`: contents a card held earlier (changed since) that must be kept too."""
    with _db(world) as conn:
        copies = recorded_copies(conn)
        promised = {r[0] for r in conn.execute("SELECT sha256 FROM files")}
    for sha, paths in copies.items():
        for path in paths:
            if not path.is_file():
                rec.problem(f"recorded copy missing: {path}")
            elif sha256_file(path) != sha:
                rec.problem(f"recorded copy {path} does not hold {sha[:12]}")
    for sha in sorted(promised - set(copies)):
        rec.problem(f"content {sha[:12]} counted as safe but no copy is recorded")
    checked = 0
    for card in cards:
        wanted = {rel: sha for rel, sha in card_files(card).items() if not is_junk(rel)}
        for rel, sha in sorted(wanted.items()):
            checked += 1
            shown = rel.decode("utf-8", "backslashreplace")
            stored = [p for p in copies.get(sha, []) if p.is_file()]
            if not stored:
                rec.problem(f"{card.name}/{shown}: no stored original with its content")
            elif not filecmp.cmp(os.path.join(os.fsencode(card), rel), stored[0],
                                 shallow=False):
                rec.problem(f"{card.name}/{shown}: stored original {stored[0]} differs")
            elif sha not in promised:
                rec.problem(f"{card.name}/{shown}: stored but not counted in the database")
    for rel, sha in sorted((also or {}).items()):
        checked += 1
        if sha in promised and not any(p.is_file() for p in copies.get(sha, [])):
            rec.problem(f"earlier content of {rel.decode(errors='replace')} was counted "
                        "but is stored nowhere")
    return checked


def session_files_oracle(world: World, rec: Recorder) -> int:
    """Each verified session file, found through the database (stored_path, else its card
    path under the session's originals), holds the content recorded for it."""
    checked = 0
    with _db(world) as conn:
        stored = "stored_path" in _columns(conn, "session_files")
        rows = conn.execute(
            "SELECT s.path, f.rel_path, f.sha256"
            f"{', f.stored_path' if stored else ', NULL AS stored_path'} "
            "FROM session_files f JOIN sessions s ON s.id = f.session_id "
            "WHERE f.status = 'verified'").fetchall()
    for r in rows:
        checked += 1
        path = Path(r["path"]) / "originals" / (r["stored_path"] or r["rel_path"])
        if not path.is_file():
            rec.problem(f"session file {r['rel_path']!r}: no original at {path}")
        elif sha256_file(path) != r["sha256"]:
            rec.problem(f"session file {r['rel_path']!r}: {path} holds other content")
    return checked


def sessions_oracle(world: World, rec: Recorder) -> list[sqlite3.Row]:
    with _db(world) as conn:
        rows = conn.execute("SELECT * FROM sessions ORDER BY number").fetchall()
    want = "published" if world.s3 is not None else "processed"
    for r in rows:
        rec.expect(r["state"] == want, f"session {r['id']} is {r['state']}, not {want}")
        if error := dict(r).get("process_error"):
            rec.problem(f"session {r['id']} set aside: {error}")
    return rows


_SIGNED_URL = re.compile(r"""https?://[^\s"'<>)\\]+X-Amz-Signature=[0-9a-f]+""")


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def bucket_oracle(world: World, sessions: list[sqlite3.Row], rec: Recorder) -> int:
    """Presigned GETs of the index and its assets 200, unsigned 403; ledger objects
    right. Returns how many URLs were fetched."""
    assert world.s3 is not None
    fetched = 0
    for s in sessions:
        if s["state"] != "published":
            continue
        try:
            link = json.loads((Path(s["path"]) / "derived" / "link.json").read_text())
        except (OSError, ValueError) as exc:
            rec.problem(f"session {s['id']}: no readable link.json ({exc})")
            continue
        status, body = http_get(link["index_url"])
        fetched += 1
        if status != 200:
            rec.problem(f"session {s['id']}: presigned index.html answered {status}")
            continue
        # URLs sit in attributes (&amp;) and in the embedded JSON (\u0026, \/)
        page = body.decode("utf-8", "replace").replace("\\u0026", "&").replace("\\/", "/")
        urls = {link["index_url"]} | {html.unescape(u) for u in _SIGNED_URL.findall(page)}
        for url in sorted(urls):
            got, _ = http_get(url)
            unsigned, _ = http_get(url.split("?", 1)[0])
            fetched += 2
            key = url.split("?", 1)[0].rsplit("/", 2)[-1]
            rec.expect(got == 200, f"session {s['id']}: presigned GET {key}: {got}")
            rec.expect(unsigned == 403, f"session {s['id']}: unsigned GET {key}: {unsigned}")
    client = world.s3.server.client()
    with _db(world) as conn:
        ledger = conn.execute("SELECT key, sha256 FROM uploads WHERE bucket = ?",
                              (world.bucket,)).fetchall()
    for row in ledger:
        try:
            data = client.get_object(Bucket=world.bucket, Key=row["key"])["Body"].read()
        except Exception as exc:  # a missing object is exactly what we look for
            rec.problem(f"ledger object {row['key']} unreadable in {world.bucket}: {exc}")
            continue
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            rec.problem(f"ledger object {row['key']} in {world.bucket} holds other bytes")
    rec.note(f"bucket {world.bucket}: {len(ledger)} ledger objects checked, "
             f"{fetched} GETs")
    return fetched


def oracle(world: World, cards: list[Path], rec: Recorder,
           also: dict[bytes, str] | None = None) -> None:
    verify_oracle(world, rec)
    checked = content_oracle(world, cards, rec, also)
    rows = session_files_oracle(world, rec)
    sessions = sessions_oracle(world, rec)
    rec.note(f"oracle: {checked} card files byte-compared, {rows} session files, "
             f"{len(sessions)} sessions")
    if world.s3 is not None:
        bucket_oracle(world, sessions, rec)


def clean_rerun(world: World, cards: list[tuple[Path, str | None]], rec: Recorder,
                **extra: str) -> None:
    """The final clean rerun: each card once more, then the upload queue drained."""
    for card, volume in cards:
        done = card_run(world, card, volume, **extra)
        rec.expect(done.returncode == 0 and not done.traceback,
                   f"clean rerun of {card.name}: exit {done.returncode}: {done.tail()}")
    if world.s3 is not None:
        published = world.run("publish")
        rec.expect(published.returncode == 0 and not published.traceback,
                   f"publish after the faults: exit {published.returncode}: "
                   f"{published.tail()}")
