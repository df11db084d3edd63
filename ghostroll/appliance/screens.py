"""What the e-ink panel shows: a pure view model (`screen_for`) and a renderer that
draws it straight in 1-bit at the panel's frame size (`render`).

Text is measured and shrunk (never below 10 px) or shortened with an ellipsis, never
clipped. The QR code is drawn only where it stays scannable: the short link (upper-case,
QR alphanumeric mode) at >= 3 px per module when shown large, >= 2 px as the small code
on working screens; a full presigned URL only where it reaches >= 2 px per module;
otherwise the screen says where the link is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ghostroll.appliance.machine import Model, State
from ghostroll.publish.qr import QUIET_ZONE, qr_matrix
from ghostroll.publish.qr import render as qr_render
from ghostroll.storage.space import sessions_left

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
MIN_FONT = 10
LARGE_MIN_PX = 3  # the big QR on the done screen
SMALL_MIN_PX = 2  # the small QR beside progress


@dataclass(frozen=True)
class Env:
    """Readings the service adds to the machine's model."""
    now: datetime
    free_bytes: int | None = None
    queued: int = 0
    hostname: str = "ghostroll"
    ip: str = ""
    last_session: str = ""  # e.g. "24 Nov 10:42 · 412 photos"
    problem: str = ""  # e.g. a session set aside: "#3 not processed: ssh in, ghostroll sessions"
    where_link: str = "ghostroll sessions"
    copies: int | None = None  # archive configured: verified copies of this card's photos
    second_copy_waiting: int = 0  # archive configured: sessions without their 2nd copy
    stored_bytes: int = 0  # the originals of all `sessions`, for "space for ~N sessions"
    sessions: int = 0


@dataclass(frozen=True)
class Screen:
    title: str
    big: str = ""
    lines: tuple[str, ...] = ()
    footer: str = ""
    progress: float | None = None  # 0..1 bar under the big line
    qr: str | None = None  # the link to draw, if it fits
    qr_large: bool = False  # the done screen: QR as large as the panel allows
    battery: float | None = None
    charging: bool = False


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _n(n: int) -> str:
    return f"{n:,}"


def screen_for(m: Model, env: Env) -> Screen:
    base = {"battery": m.battery, "charging": m.charging}
    label = m.label or "card"
    waiting = f"next: {m.waiting_label or m.waiting_card} waits" if m.waiting_card else ""
    bg = _background(m)
    if m.state == State.IDLE:
        free = f"free {_gb(env.free_bytes)}" if env.free_bytes is not None else ""
        fit = sessions_left(env.free_bytes or 0, env.stored_bytes, env.sessions)
        if free and fit is not None:
            free += f" (~{_n(fit)} sessions)"
        queue = f"{env.queued} upload{'s' if env.queued != 1 else ''} queued"
        second = (f"{_count(env.second_copy_waiting, 'session')} "
                  f"{'waits' if env.second_copy_waiting == 1 else 'wait'} for a 2nd copy"
                  if env.second_copy_waiting else "")
        lines = tuple(x for x in (env.problem, second,
                                  " · ".join(x for x in (free, queue) if x),
                                  f"last: {env.last_session}" if env.last_session else "") if x)
        ssh = f"ssh admin@{env.hostname}.local" + (f" · {env.ip}" if env.ip else "")
        return Screen("GhostRoll · ready", "Insert a camera card", lines, ssh, **base)
    if m.state == State.CHECKING:
        return Screen(f"Card · {label}", "Checking card…", ("reading the file list",
                      "the card is never written"), waiting or "please wait", **base)
    if m.state == State.COPYING:
        c = m.copy
        fraction = c.bytes_read / c.bytes_to_read if c.bytes_to_read else 0.0
        eta = ""
        if c.bytes_read and c.elapsed_s > 1 and c.bytes_to_read > c.bytes_read:
            left = (c.bytes_to_read - c.bytes_read) * c.elapsed_s / c.bytes_read
            eta = f" · {max(1, round(left / 60))} min left"
        footer = ("press again to cancel" if m.cancel_armed_until is not None
                  else waiting or "button: press twice to cancel")
        return Screen(
            f"Copying · {label}", f"{_n(c.files_read)} / {_n(c.files_to_read)} new",
            (f"{_gb(c.bytes_read)} of {_gb(c.bytes_to_read)}{eta}",
             f"{_n(c.skipped + (c.files_total - c.files_to_read))} already safe · "
             f"{c.failed} errors"), footer, progress=fraction, qr=m.link, **base)
    if m.state == State.CARD_DONE and m.receipt is not None:
        r = m.receipt
        lines = [f"{_n(r.new)} new · {_n(r.skipped)} already safe",
                 f"{_gb(r.bytes_new)} copied + hash-verified",
                 f"{r.failed} errors · card never written"]
        if r.note:
            lines[2] = r.note
        lines.append(f"{r.label} · {env.now:%-d %b %H:%M}")
        return Screen("Card verified ✓", receipt_big(env.copies), tuple(lines),
                      waiting or bg, **base)
    if m.state == State.NOTHING_NEW:
        skipped = m.receipt.skipped if m.receipt else 0
        return Screen(f"Card · {label}", "Nothing new", (
            f"all {_n(skipped)} files already safe", "card never written",
            "safe to remove"), waiting or "button: eject", **base)
    if m.state in (State.PROCESSING, State.PUBLISHING, State.WAITING):
        verb = {"processing": "Preparing photos", "publishing": "Uploading",
                "waiting": "Waiting"}[m.work if m.work in ("processing", "publishing",
                                                           "waiting") else "processing"]
        fraction = m.work_done / m.work_total if m.work_total else None
        lines = [f"{_n(m.work_done)} of {_n(m.work_total)}" if m.work_total else ""]
        if m.state == State.WAITING:
            lines = [m.work_note or "for the network", "the link will work once uploaded"]
        elif m.link:
            lines.append("link ready: scan to follow")
        return Screen(f"GhostRoll · {m.state.value}", verb, tuple(x for x in lines if x),
                      _card_footer(env.copies) if m.card else "", progress=fraction, qr=m.link,
                      **base)
    if m.state == State.DONE and not m.link:
        return Screen("Gallery ready ✓", "Ready ✓", (
            f"{_n(m.photos)} photos", "on this device only:", "no bucket configured"),
            f"see: {env.where_link}", **base)
    if m.state == State.DONE:
        expiry = f"until {m.link_expires:%-d %b %H:%M}" if m.link_expires else ""
        return Screen("Shared ✓", "Shared ✓", tuple(x for x in (
            f"{_n(m.photos)} photos", "link valid" if expiry else "", expiry,
            _done_copies(env.copies)) if x), f"or: {env.where_link}", qr=m.link,
            qr_large=True, **base)
    if m.state == State.ERROR:
        action = "button: retry" if m.error_retry else "button: dismiss"
        return Screen("Problem", m.error or "Something failed", _wrap_hint(m.error_hint),
                      action, **base)
    if m.state == State.LOW_BATTERY:
        pct = f"{m.battery:.0f} %" if m.battery is not None else "low"
        return Screen("Battery low", f"Battery {pct}", (
            f"copying needs {m.policy.battery_min:.0f} % or a charger",
            "plug in, then reinsert the card"), "button: dismiss", **base)
    if m.state == State.CONFIRM_SHUTDOWN:
        return Screen("Shut down?", "Press to shut down", (
            "a copy in progress stops safely", "verified files are kept"),
            "wait 10 s to go back", **base)
    if m.state == State.SHUTTING_DOWN:
        return Screen("GhostRoll", "Shutting down", (m.error or "safe to unplug in 20 s",),
                      "uploads resume at next start", **base)
    return Screen("GhostRoll", m.state.value, (), "", **base)


def receipt_big(copies: int | None) -> str:
    """The receipt's big line: with an archive target it says how many copies there are
    and whether the card may be formatted (None: no archive, as before)."""
    if copies is None:
        return "SAFE TO REMOVE"
    if copies >= 2:
        return f"{copies} COPIES ✓ · safe to format"
    return "SAFE TO REMOVE · 1 copy"


def _card_footer(copies: int | None) -> str:
    if copies is not None and copies >= 2:
        return f"{copies} copies ✓ · safe to format"
    return "card can be removed"


def _done_copies(copies: int | None) -> str:
    """The share screen's last line: with an archive target, the card's copies (the
    archive may finish after the upload), else the hint to scan."""
    if copies is None:
        return "scan to view"
    return f"{copies} copies ✓" if copies >= 2 else "1 copy"


def _count(n: int, word: str) -> str:
    return f"{_n(n)} {word}{'' if n == 1 else 's'}"


def _background(m: Model) -> str:
    if m.work in ("processing", "publishing") and m.work_total:
        pct = round(100 * m.work_done / m.work_total)
        return f"{'preparing' if m.work == 'processing' else 'uploading'} in background: {pct}%"
    if m.work == "waiting":
        return "upload waits for network"
    if m.work == "done":
        return "shared ✓"
    return "button: eject"


def _wrap_hint(hint: str) -> tuple[str, ...]:
    words, lines, line = hint.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > 34 and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return tuple(lines[:3])


# ---------------------------------------------------------------- drawing


@cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size)


def fit(draw: ImageDraw.ImageDraw, text: str, width: int, size: int,
        bold: bool = False) -> tuple[str, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """Shrink to fit (not below MIN_FONT), then shorten with an ellipsis."""
    for s in range(size, MIN_FONT - 1, -1):
        f = font(s, bold)
        if draw.textlength(text, font=f) <= width:
            return text, f
    f = font(MIN_FONT, bold)
    while text and draw.textlength(text + "…", font=f) > width:
        text = text[:-1]
    return text + "…", f


def qr_fit(url: str, box: int, large: bool) -> tuple[list[list[bool]], int] | None:
    """The code and its module size in a square box, or None when it would not scan."""
    matrix = qr_matrix(url, "L")
    px = box // (len(matrix) + 2 * QUIET_ZONE)
    minimum = LARGE_MIN_PX if large and len(matrix) <= 37 else SMALL_MIN_PX
    return (matrix, px) if px >= minimum else None


def render(screen: Screen, width: int, height: int) -> Image.Image:
    image = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(image)
    scale = min(1.5, height / 122)
    pad = 4
    if screen.qr_large:
        return _render_large_qr(screen, image, draw, scale)
    header_h = round(19 * scale)
    footer_h = round(18 * scale)
    _header(draw, screen, width, header_h, scale)
    left_w = width - 2 * pad
    qr_x = None
    body_top, body_bottom = header_h + 3, height - footer_h - 2
    if screen.qr:
        box = body_bottom - body_top
        placed = qr_fit(screen.qr, box, large=False)
        if placed is not None and width - box > width * 0.55:
            matrix, px = placed
            code = qr_render(matrix, px)
            qr_x = width - code.width
            image.paste(code, (qr_x, body_top + (box - code.height) // 2))
            left_w = qr_x - 2 * pad
    y = body_top + 1
    if screen.big:
        text, f = fit(draw, screen.big, left_w, round(20 * scale), bold=True)
        draw.text((pad, y), text, font=f, fill=0)
        y += _line_h(f) + 2
    if screen.progress is not None:
        bar_h = round(7 * scale)
        draw.rectangle((pad, y, pad + left_w, y + bar_h), outline=0)
        filled = round((left_w - 3) * max(0.0, min(1.0, screen.progress)))
        if filled > 0:
            draw.rectangle((pad + 2, y + 2, pad + 2 + filled, y + bar_h - 2), fill=0)
        y += bar_h + 3
    dropped = _draw_lines(draw, screen.lines, pad, y, left_w, body_bottom, round(12 * scale))
    image.info["dropped"] = dropped
    draw.line((0, height - footer_h, width, height - footer_h), fill=0)
    if screen.footer:
        text, f = fit(draw, screen.footer, width - 2 * pad, round(11 * scale))
        draw.text((pad, height - footer_h + 3), text, font=f, fill=0)
    return image


def _render_large_qr(screen: Screen, image: Image.Image, draw: ImageDraw.ImageDraw,
                     scale: float) -> Image.Image:
    width, height = image.size
    pad = 4
    placed = qr_fit(screen.qr, height, large=True) if screen.qr else None
    text_x = pad
    if placed is not None:
        matrix, px = placed
        code = qr_render(matrix, px)
        image.paste(code, (0, (height - code.height) // 2))
        text_x = code.width + pad
    text_w = width - text_x - pad
    y = pad
    text, f = fit(draw, screen.big, text_w, round(18 * scale), bold=True)
    draw.text((text_x, y), text, font=f, fill=0)
    y += _line_h(f) + 3
    lines = list(screen.lines)
    if placed is None:
        lines = [x for x in lines if x != "scan to view"] + [
            "link too long for", "this panel: see", screen.footer.removeprefix("or: ")]
    battery_h = round(14 * scale)
    image.info["dropped"] = _draw_lines(draw, lines, text_x, y, text_w,
                                        height - battery_h - 2, round(12 * scale))
    _battery(draw, screen, width - pad, height - battery_h, battery_h, scale)
    return image


def _draw_lines(draw: ImageDraw.ImageDraw, lines: list[str] | tuple[str, ...], x: int, y: int,
                width: int, bottom: int, size: int) -> list[str]:
    """Draw lines at the largest size (down to MIN_FONT) at which they all fit; return
    any that still do not (tests assert there are none)."""
    for s in range(size, MIN_FONT - 1, -1):
        if len(lines) * (_line_h(font(s)) + 1) <= bottom - y:
            size = s
            break
    else:
        size = MIN_FONT
    dropped = []
    for line in lines:
        text, f = fit(draw, line, width, size)
        if y + _line_h(f) > bottom:
            dropped.append(line)
            continue
        draw.text((x, y), text, font=f, fill=0)
        y += _line_h(f) + 1
    return dropped


def _header(draw: ImageDraw.ImageDraw, screen: Screen, width: int, h: int,
            scale: float) -> None:
    right = _battery(draw, screen, width - 4, 2, h - 4, scale)
    text, f = fit(draw, screen.title, right - 10, round(13 * scale), bold=True)
    draw.text((4, 1), text, font=f, fill=0)
    draw.line((0, h, width, h), fill=0)


def _battery(draw: ImageDraw.ImageDraw, screen: Screen, right: int, top: int, h: int,
             scale: float) -> int:
    """Draw the battery at the right edge; return its left x (or `right` if unknown)."""
    if screen.battery is None:
        return right
    body_w, body_h = round(20 * scale), max(7, h - 4)
    x1 = right - 2
    x0 = x1 - body_w
    y0 = top + (h - body_h) // 2
    draw.rectangle((x0, y0, x1, y0 + body_h), outline=0)
    draw.rectangle((x1 + 1, y0 + body_h // 3, x1 + 2, y0 + 2 * body_h // 3), fill=0)
    fill = round((body_w - 4) * max(0.0, min(100.0, screen.battery)) / 100)
    if fill > 0:
        draw.rectangle((x0 + 2, y0 + 2, x0 + 2 + fill, y0 + body_h - 2), fill=0)
    label = f"{screen.battery:.0f}%" + ("+" if screen.charging else "")
    f = font(max(MIN_FONT, round(11 * scale)))
    text_w = draw.textlength(label, font=f)
    draw.text((x0 - 4 - text_w, top + (h - _line_h(f)) // 2), label, font=f, fill=0)
    return int(x0 - 4 - text_w)


def _line_h(f: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    box = f.getbbox("Ágy")
    return int(box[3] - min(0, box[1]))


def status_document(m: Model, screen: Screen, qr_path: Path, hostname: str,
                    ip: str, copies: int | None = None) -> dict[str, Any]:
    """The status.json document (also `ghostroll status`'s answer) for what is shown;
    `copies`: verified copies of this card's photos (None: no archive target)."""
    return {
        "state": m.state.value,
        "step": m.work or m.state.value,
        "message": screen.big,
        "session_id": m.session_id,
        "volume": m.label or None,
        "counts": {"discovered": m.copy.files_total, "new": m.copy.new,
                   "skipped": m.copy.skipped, "copied": m.copy.files_read,
                   "processed": m.work_done if m.work == "processing" else None,
                   "uploaded": m.work_done if m.work == "publishing" else None,
                   "failed": m.copy.failed},
        "url": m.link,
        "copies": copies,
        "qr_path": str(qr_path),
        "link_expires": m.link_expires.isoformat() if m.link_expires else None,
        "error": m.error or None,
        "hostname": hostname,
        "ip": ip,
        "battery_percentage": m.battery,
        "battery_charging": m.charging,
        "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
