"""Videos for recipients: what ffprobe says about a clip, and the copy that is shared.

The shared copy is a remux (`-c copy`: no re-encode, a Pi Zero cannot transcode) with
the video and audio streams only (no data tracks: GoPro GPS, timecode), no chapters and
no metadata (location, make, model, software), except the creation time, which is
written back so a recipient's photo app dates the clip. MP4/MOV get their index at the
front, so a browser can start and seek through a presigned URL by range requests.

ffmpeg/ffprobe run with one thread, 1 GiB of address space and a timeout."""

from __future__ import annotations

import json
import mmap
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

HELPER_ADDRESS_SPACE = 1 << 30  # ffmpeg/ffprobe: 1 GiB of address space, one thread
PROBE_TIMEOUT_S = 30
REMUX_TIMEOUT_S = 600  # a copy without re-encoding: I/O bound, ~disk speed
# Containers whose H.264 browsers play inline (Chromium, Firefox, Safari)
INLINE_CONTAINERS = frozenset({"mp4", "m4v", "mov"})
INLINE_CODECS = frozenset({"h264"})
MP4_FAMILY = frozenset({"mp4", "m4v", "mov", "3gp"})


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float | None = None
    codec: str = ""  # of the first video stream, as ffprobe names it (h264, hevc, mjpeg)
    creation_time: str | None = None  # as the container recorded it
    local_creation: str | None = None  # Apple's creationdate: local time with its offset


def helper_limits() -> None:
    """In the child before exec: an external helper cannot take the device's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (HELPER_ADDRESS_SPACE, HELPER_ADDRESS_SPACE))


def has_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def probe(path: Path, skip: int = 0) -> VideoInfo:
    """Duration, codec and creation time (of the clip starting `skip` bytes in); an
    empty VideoInfo without ffprobe or for a file it cannot read."""
    if shutil.which("ffprobe") is None:
        return VideoInfo()
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-threads", "1", "-show_entries",
         "format=duration:format_tags=creation_time,com.apple.quicktime.creationdate"
         ":stream=codec_type,codec_name",
         "-of", "json", ffmpeg_input(path, skip)],
        capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, preexec_fn=helper_limits)
    return parse_probe(done.stdout)


def ffmpeg_input(path: Path, skip: int = 0) -> str:
    """The file, or the part of it from `skip` on (ffmpeg's subfile protocol: its
    -skip_initial_bytes still probes the format from the start, finding the JPEG)."""
    return f"subfile,,start,{skip},end,0,,:{path}" if skip else str(path)


def parse_probe(text: str) -> VideoInfo:
    """ffprobe's JSON → VideoInfo. Pure."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return VideoInfo()
    fmt = data.get("format") or {}
    try:
        duration = round(float(fmt.get("duration")), 2)
    except (TypeError, ValueError):
        duration = None
    codec = next((s.get("codec_name", "") for s in data.get("streams") or []
                  if s.get("codec_type") == "video"), "")
    tags = fmt.get("tags") or {}
    created = tags.get("creation_time")
    local = tags.get("com.apple.quicktime.creationdate")
    return VideoInfo(duration, codec or "", created if isinstance(created, str) else None,
                     local if isinstance(local, str) else None)


def captured(info: VideoInfo) -> datetime | None:
    """When the clip was recorded: Apple's local time with its offset when present, else
    the container's creation time (UTC by the QuickTime spec). Pure."""
    for text in (info.local_creation, info.creation_time):
        if not text:
            continue
        try:
            stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        if stamp.year > 1970:  # 1904/1970 epochs: a camera without a clock
            return stamp
    return None


def share_extension(source: Path) -> str:
    ext = source.suffix.lower().lstrip(".")
    return ext or "mp4"


def plays_inline(ext: str, codec: str) -> bool:
    """Whether common browsers play it in a <video> element (the page still asks
    `canPlayType` and falls back to a download tile). Pure."""
    return ext in INLINE_CONTAINERS and codec in INLINE_CODECS


def remux_command(source: Path, dest: Path, creation_time: str | None,
                  skip: int = 0) -> list[str]:
    """The ffmpeg command for the shared copy (of the clip `skip` bytes into `source`: a
    motion photo's). Pure."""
    command = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-y",
        "-i", ffmpeg_input(source, skip),
        "-map", "0:v", "-map", "0:a?", "-c", "copy", "-dn", "-sn", "-map_chapters", "-1",
        "-map_metadata", "-1", "-map_metadata:s:v", "-1", "-map_metadata:s:a", "-1",
        # no encoder tag, no clock: the same clip gives the same bytes (idempotent uploads)
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
    ]
    if creation_time:
        command += ["-metadata", f"creation_time={creation_time}"]
    if share_extension(dest) in MP4_FAMILY:
        command += ["-movflags", "+faststart"]
    return [*command, str(dest)]


class RemuxFailed(ValueError):
    """ffmpeg could not copy this clip (a damaged or unusual file)."""


def remux(source: Path, dest: Path, creation_time: str | None, skip: int = 0) -> Path:
    """The shared copy at `dest`, written to a temp file then renamed; raises RemuxFailed
    for the file's own problem, OSError when our disk fails."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.stem}.tmp{dest.suffix}")
    try:
        done = subprocess.run(remux_command(source, temp, creation_time, skip),
                              capture_output=True,
                              text=True, timeout=REMUX_TIMEOUT_S, preexec_fn=helper_limits)
        if done.returncode != 0 or not temp.exists() or temp.stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
            last = last.replace(f"{source}: ", "")[:200]
            if "No space left" in done.stderr:
                raise OSError(28, "No space left on device", str(dest))
            raise RemuxFailed(f"cannot copy the video without its metadata: {last}")
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)
    return dest


EMBEDDED_BRANDS = (b"mp41", b"mp42", b"isom", b"iso2", b"avc1", b"qt  ", b"MSNV")


def embedded_video_offset(path: Path, after: int = 0) -> int | None:
    """Where the MP4 of a motion photo (Google/Samsung: a JPEG with the clip appended)
    starts, or None: the first ISO-BMFF `ftyp` box with a video brand after the start
    (or at `after` or later: where the picture is known to end). Searched in a memory
    map: no copy of the file is made (every JPEG is searched)."""
    with path.open("rb") as f:
        if os.fstat(f.fileno()).st_size < after + 8:
            return None  # nothing after the picture but, at most, a few bytes
        try:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            return None
    with data:
        at = data.find(b"ftyp", max(4, after + 4))
        while at != -1:
            size = int.from_bytes(data[at - 4:at], "big")
            if at > 4 and 8 <= size <= 256 and data[at + 4:at + 8] in EMBEDDED_BRANDS:
                return at - 4
            at = data.find(b"ftyp", at + 1)
    return None
