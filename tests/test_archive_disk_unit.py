"""The GR-ARCHIVE disk on the appliance: its own udev rule and unit (never the card rule),
a real ext4 disk image mounted read-write by archive-mount, archived to, unmounted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ghostroll.devtools.synthetic import make_demo_card

REPO = Path(__file__).resolve().parents[1]
OVERLAY = REPO / "overlays"
CARD_RULE = OVERLAY / "etc/udev/rules.d/80-ghostroll.rules"
ARCHIVE_RULE = OVERLAY / "etc/udev/rules.d/81-ghostroll-archive.rules"


def rule_lines(path: Path) -> list[str]:
    return [x for x in path.read_text().splitlines() if x and not x.startswith("#")]


def test_the_card_rule_never_takes_the_archive_disk() -> None:
    card = rule_lines(CARD_RULE)
    skip = card.index('ENV{ID_FS_LABEL}=="GR-ARCHIVE", GOTO="ghostroll_end"')
    wants = next(i for i, x in enumerate(card) if "ghostroll-ingest@" in x)
    assert skip < wants
    archive = rule_lines(ARCHIVE_RULE)
    assert 'ENV{ID_BUS}!="usb", GOTO="ghostroll_archive_end"' in archive
    assert 'ENV{ID_FS_TYPE}!="ext4|exfat", GOTO="ghostroll_archive_end"' in archive
    assert archive[-2] == 'ENV{SYSTEMD_WANTS}+="ghostroll-archive@%k.service"'
    assert not any("RUN+=" in x for x in archive)
    unit = (OVERLAY / "etc/systemd/system/ghostroll-archive@.service").read_text()
    assert "BindsTo=dev-%i.device" in unit
    assert "ExecStart=/usr/lib/ghostroll/archive-mount %I" in unit


def ext4_disk(tmp: Path, label: str = "GR-ARCHIVE") -> str:
    image = tmp / "archive.img"
    with image.open("wb") as fh:
        fh.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", label, str(image)], check=True)
    return subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.root
def test_udev_rules_parse_with_an_archive_disk(tmp_path: Path) -> None:
    loop = ext4_disk(tmp_path)
    rules = Path("/run/udev/rules.d")
    rules.mkdir(parents=True, exist_ok=True)
    installed = [rules / CARD_RULE.name, rules / ARCHIVE_RULE.name]
    for rule in (CARD_RULE, ARCHIVE_RULE):
        shutil.copy(rule, rules / rule.name)
    try:
        out = subprocess.run(["udevadm", "test", f"/sys/block/{Path(loop).name}"],
                             capture_output=True, text=True, timeout=60)
        text = out.stdout + out.stderr
        assert ARCHIVE_RULE.name in text
        assert "invalid" not in text.lower().split(ARCHIVE_RULE.name, 1)[1][:400]
        assert "ghostroll-ingest@" not in text  # never a card
    finally:
        for path in installed:
            path.unlink()
        subprocess.run(["losetup", "-d", loop], check=False)


@pytest.mark.root
def test_archive_mount_then_archive_then_unmount(tmp_path: Path) -> None:
    loop = ext4_disk(tmp_path)
    state = tmp_path / "var-lib-ghostroll"
    state.mkdir()
    target = state / "archive"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "GHOSTROLL_ARCHIVE_MOUNT": str(target)}
    dev = Path(loop).name
    try:
        mounted = subprocess.run([str(OVERLAY / "usr/lib/ghostroll/archive-mount"), dev],
                                 env=env, capture_output=True, text=True)
        assert mounted.returncode == 0, mounted.stderr
        assert "rw," in mounted.stdout and "noexec" in mounted.stdout
        again = subprocess.run([str(OVERLAY / "usr/lib/ghostroll/archive-mount"), dev],
                               env=env, capture_output=True, text=True)
        assert again.returncode == 1 and "already mounted" in again.stderr
        run_env = {"GHOSTROLL_BASE_DIR": str(state / "sessions"),
                   "GHOSTROLL_DB_PATH": str(state / "ghostroll.db"), "HOME": str(tmp_path),
                   "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                   "GHOSTROLL_ARCHIVE_DIR": str(target)}
        card = make_demo_card(tmp_path / "card", photos=2)
        cmd = [sys.executable, "-m", "ghostroll", "run", str(card)]
        done = subprocess.run(cmd, env=run_env, cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert done.stdout.rstrip().endswith("2 copies ✓ · safe to format"), done.stdout
        subprocess.run([str(OVERLAY / "usr/lib/ghostroll/archive-unmount")], env=env,
                       check=True)
        assert subprocess.run(["mountpoint", "-q", str(target)]).returncode != 0
        # unplugged: the empty mount point is refused, never written to
        alone = subprocess.run(cmd, env=run_env, cwd=REPO, capture_output=True, text=True,
                               timeout=120)
        assert alone.returncode == 1 and "same disk as the sessions" in alone.stdout
        assert list(target.iterdir()) == []
    finally:
        subprocess.run(["umount", str(target)], check=False, capture_output=True)
        subprocess.run(["losetup", "-d", loop], check=False)
