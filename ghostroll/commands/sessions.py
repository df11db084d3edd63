"""`ghostroll sessions`: what was ingested, when, and whether it was shared; `retry`
takes back a session whose processing was set aside."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from ghostroll.errors import CardError
from ghostroll.publish.lifetime import link_status
from ghostroll.publish.publisher import read_link
from ghostroll.publish.qr import terminal_text
from ghostroll.storage.db import (
    COPIED,
    COPY_PRUNED,
    COPY_VERIFIED,
    UNSHARED_Q,
    Database,
    SessionRow,
)
from ghostroll.storage.session import SessionLayout


def session_counts(db: Database, session_id: str) -> Counter[str]:
    return Counter(r["status"] for r in db.session_files(session_id))


def list_lines(db: Database) -> list[str]:
    rows = db.sessions()
    if not rows:
        return ["no sessions yet"]
    lines = [f"{'#':>4}  {'session':<32} {'created (UTC)':<19}  {'new':>5} {'safe':>5} "
             f"{'fail':>4}  {'state':<10} link"]
    for s in rows:
        counts = session_counts(db, s.id)
        entry = db.publish_entry(s.id)
        link = "local only"
        if entry is not None:
            link = entry["state"]
            saved = read_link(SessionLayout(s.path))
            if saved is not None and entry["state"] != UNSHARED_Q:
                link += f", {link_status(saved, datetime.now(UTC))}"
        state = "set aside" if s.process_error else s.state
        lines.append(f"{s.number:>4}  {s.id:<32} {s.created_utc[:19].replace('T', ' ')}  "
                     f"{counts['verified']:>5} {counts['duplicate']:>5} {counts['failed']:>4}"
                     f"  {state:<10} {link}")
    aside = [s for s in rows if s.process_error]
    for s in aside:
        lines.append(f"#{s.number} set aside: {s.process_error}")
    if aside:
        lines.append("fix the cause (see the session's ghostroll.log), then "
                     "`ghostroll sessions retry N`")
    return lines


def set_aside_text(session: SessionRow) -> str:
    return (f"{session.process_error}; see {SessionLayout(session.path).log}, then "
            f"`ghostroll sessions retry {session.number}`")


def retry(db: Database, session: SessionRow) -> str:
    """Take a set-aside session back: the next run (or the appliance) processes it."""
    if not session.process_error:
        return f"session {session.id} is not set aside (state {session.state}): nothing to do"
    db.set_process_error(session.id, None)
    if session.state != COPIED:
        return f"session {session.id}: error cleared (state {session.state})"
    return (f"session {session.id} will be processed again by the next `ghostroll run`, "
            "`ghostroll publish` or the appliance")


def matches(db: Database, ref: str) -> list[SessionRow]:
    """By number, by id, else every session whose id starts with `ref`."""
    if ref.isdigit():
        return [s for s in db.sessions() if s.number == int(ref)]
    exact = db.session(ref)
    if exact is not None:
        return [exact]
    return [s for s in db.sessions() if ref and s.id.startswith(ref)]


def find(db: Database, ref: str) -> SessionRow | None:
    """By id, by number, or by a unique id prefix."""
    found = matches(db, ref)
    return found[0] if len(found) == 1 else None


def resolve(db: Database, ref: str | None, command: str) -> SessionRow:
    """The one session `ref` names; CardError saying what to type otherwise (no
    reference, nothing matches, or a prefix of several: they are listed)."""
    if not ref:
        raise CardError(f"`ghostroll {command}` needs a session: its number, id or the "
                        "start of its id (`ghostroll sessions` lists them)")
    found = matches(db, ref)
    if len(found) == 1:
        return found[0]
    if not found:
        raise CardError(f"no session matches {ref!r} (`ghostroll sessions` lists them)")
    listed = "\n".join(f"  #{s.number}  {s.id}" for s in found[:10])
    more = f"\n  … and {len(found) - 10} more" if len(found) > 10 else ""
    raise CardError(f"{ref!r} matches {len(found)} sessions; give the number or more of "
                    f"the id:\n{listed}{more}")


def show_lines(db: Database, session: SessionRow, qr: bool = True) -> list[str]:
    layout = SessionLayout(session.path)
    counts = session_counts(db, session.id)
    lines = [
        f"session   {session.id} (#{session.number})",
        f"created   {session.created_utc} UTC, card {session.volume_label} ({session.volume_id})",
        f"state     {session.state}" + (" (set aside)" if session.process_error else ""),
        f"files     {counts['verified']} new, {counts['duplicate']} already safe, "
        f"{counts['failed']} failed",
        f"folder    {layout.root}",
        f"gallery   {layout.index if layout.index.exists() else '(not built yet)'}",
    ]
    if session.process_error:
        lines.append(f"problem   {set_aside_text(session)}")
    url = layout.share_txt.read_text().strip() if layout.share_txt.exists() else None
    entry = db.publish_entry(session.id)
    if entry is not None and entry["state"] == UNSHARED_Q:
        lines.append("link      (unshared: `ghostroll publish` shares it again, new link)")
    else:
        lines.append(f"link      {url or '(none yet: local only or not published)'}")
    saved = read_link(layout)
    if url and saved is not None:
        lines.append(f"          {link_status(saved, datetime.now(UTC))}")
    if url and qr:
        lines.append(terminal_text(url))
    errors = [(r["rel_path"], r["error"]) for r in db.session_files(session.id) if r["error"]]
    errors += _derive_errors(layout.manifest)
    for rel, error in errors:
        lines.append(f"error     {rel}: {error}")
    lines.append(f"copies    {copies_text(db, session)}")
    return lines


def copies_text(db: Database, session: SessionRow) -> str:
    """How many verified copies the session's photos have, and where."""
    from ghostroll.archive.layout import copies_held, receipt

    shas, copies = db.session_copies(session.id)
    if not shas:
        return "no photos kept"
    held = copies_held(shas, copies)
    where = sorted({c.location for c in copies if c.state == COPY_VERIFIED})
    pruned = sum(1 for c in copies if c.state == COPY_PRUNED)
    return (f"{receipt(held)} ({', '.join(where)})"
            + (f"; {pruned} local original(s) pruned" if pruned else ""))


def _derive_errors(manifest: Path) -> list[tuple[str, str]]:
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return []
    return [(e["card_path"], e["derive_error"]) for e in data.get("files", [])
            if e.get("derive_error")]
