"""QR codes for share links: one matrix, drawn for files and for the e-ink panel.

A link written in upper case (scheme, host, path) uses QR alphanumeric mode, which
packs 5.5 bits a character instead of 8: the short link (~83 chars) fits version 4
(33 modules) at error correction L. Lower-case URLs (full presigned ones) use byte mode.
"""

from __future__ import annotations

import io
from pathlib import Path

import qrcode
import qrcode.constants
from PIL import Image

from ghostroll.storage.session import write_bytes_atomic

QUIET_ZONE = 2  # modules; scanners need >= 2 in practice on a white e-ink frame

_EC = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
}


def qr_matrix(text: str, error_correction: str = "L") -> list[list[bool]]:
    """The code's modules (True = dark), without quiet zone. Smallest version that fits."""
    code = qrcode.QRCode(version=None, error_correction=_EC[error_correction], border=0)
    code.add_data(text, optimize=0)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def render(matrix: list[list[bool]], module_px: int, quiet: int = QUIET_ZONE) -> Image.Image:
    """A 1-bit image of the code at `module_px` pixels per module, quiet zone included."""
    n = len(matrix)
    side = (n + 2 * quiet) * module_px
    image = Image.new("1", (side, side), 1)
    pixels = image.load()
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if not dark:
                continue
            x0, y0 = (x + quiet) * module_px, (y + quiet) * module_px
            for dy in range(module_px):
                for dx in range(module_px):
                    pixels[x0 + dx, y0 + dy] = 0
    return image


def side_pixels(matrix: list[list[bool]], module_px: int, quiet: int = QUIET_ZONE) -> int:
    return (len(matrix) + 2 * quiet) * module_px


def write_png(text: str, path: Path, module_px: int = 8, mode: int = 0o644) -> Path:
    """share-qr.png: the code at a size any phone reads from a laptop screen, written
    atomically with file mode `mode`."""
    png = io.BytesIO()
    render(qr_matrix(text, "M"), module_px, quiet=4).save(png, "PNG")
    write_bytes_atomic(path, png.getvalue(), mode)
    return path


def terminal_text(text: str, quiet: int = 2) -> str:
    """The code drawn with half-block characters, two modules per character row, dark
    modules as spaces on a light background (how phones expect a terminal code)."""
    matrix = qr_matrix(text, "L")
    n = len(matrix) + 2 * quiet

    def dark(x: int, y: int) -> bool:
        x, y = x - quiet, y - quiet
        return 0 <= y < len(matrix) and 0 <= x < len(matrix) and matrix[y][x]

    lines = []
    for y in range(0, n, 2):
        row = []
        for x in range(n):
            top, bottom = dark(x, y), dark(x, y + 1)
            row.append({(False, False): "█", (True, False): "▄", (False, True): "▀",
                        (True, True): " "}[(top, bottom)])
        lines.append("".join(row))
    return "\n".join(lines)
