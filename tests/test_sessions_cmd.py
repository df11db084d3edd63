"""`ghostroll sessions`: list and show, with the link's QR drawn in the terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import zxingcpp
from PIL import Image

from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.publish.qr import terminal_text
from tests.support.ingest import ingest, make_config


def decode_terminal_qr(text: str) -> str:
    rows = text.splitlines()
    image = Image.new("L", (len(rows[0]), 2 * len(rows)), 255)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            top, bottom = {"█": (0, 0), "▄": (1, 0), "▀": (0, 1), " ": (1, 1)}[ch]
            image.putpixel((x, 2 * y), 0 if top else 255)
            image.putpixel((x, 2 * y + 1), 0 if bottom else 255)
    image = image.resize((image.width * 8, image.height * 8), Image.Resampling.NEAREST)
    return zxingcpp.read_barcodes(image)[0].text


def test_terminal_qr_decodes_to_the_link() -> None:
    url = "https://bucket.s3.eu-west-1.amazonaws.com/sessions/shoot-x/index.html?X-Amz=1"
    assert decode_terminal_qr(terminal_text(url)) == url


def test_list_and_show(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    result = ingest(make_demo_card(tmp_path / "card", photos=2), cfg)
    assert result.session is not None
    (result.session.path / "share.txt").write_text("https://example.test/g\n")
    env = {"GHOSTROLL_BASE_DIR": str(cfg.storage.base_dir),
           "GHOSTROLL_DB_PATH": str(cfg.storage.db_path), "HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "ghostroll", "sessions"]
    listed = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert result.session.id in listed and "local only" in listed
    shown = subprocess.run([*cmd, "show", "1"], capture_output=True, text=True, env=env,
                           check=True).stdout
    assert "6 new, 0 already safe, 0 failed" in shown
    qr = [line for line in shown.splitlines()[7:] if line and set(line) <= set("█▄▀ ")]
    assert decode_terminal_qr("\n".join(qr)) == "https://example.test/g"
    missing = subprocess.run([*cmd, "show", "nope"], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "no session matches" in missing.stderr
