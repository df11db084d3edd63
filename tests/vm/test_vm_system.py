"""The appliance in a booted VM: real udev, real systemd template units, real kernel
vfat/exfat read-only mounts, card images hot-plugged as USB mass storage, S3 inside the
guest. Run alone: `./dev.sh test -m vm` (builds a Debian rootfs with the image's own
install script; about 10-20 minutes on 2 cores).

Set GHOSTROLL_VM_ROOTFS=DIR to reuse a rootfs built by an earlier run (local iteration
only; CI always builds it fresh)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostroll.cardimage import make_image
from ghostroll.synthetic import MOV_HEADER, PhotoSpec, make_blob, make_jpeg
from tests.support.samples import samples_dir
from tests.vm.harness import VM, build_rootfs, make_root_image

pytestmark = pytest.mark.vm
GR = "GHOSTROLL_CONFIG=/etc/ghostroll/config.toml /opt/ghostroll/venv/bin/ghostroll"
SAMPLES = ("nikon_d90_DSC_0002.JPG", "sony_ilce7sm3_cat.hif", "canon_eos350d__MG_9377.JPG")
TIMINGS: dict[str, float] = {}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card_source(folder: Path, count: int, seed: int, big: int = 0,
                real: bool = False) -> Path:
    """A camera card's files: real camera samples when asked for and present (each card
    must hold content no other card has, or it is "nothing new"), else synthetic JPEGs."""
    dcim = folder / "DCIM" / "100GHOST"
    dcim.mkdir(parents=True)
    for i in range(count):
        sample = samples_dir() / SAMPLES[i % len(SAMPLES)]
        number = seed * 100 + i
        if real and sample.exists():
            shutil.copy(sample, dcim / f"IMG_{number:04d}{sample.suffix.upper()}")
        else:
            make_jpeg(dcim / f"IMG_{number:04d}.JPG", PhotoSpec(width=1200, height=800),
                      seed=number)
    for i in range(big):
        make_blob(dcim / f"MVI_{seed * 100 + i:04d}.MOV", 12 << 20, seed=seed + i,
                  header=MOV_HEADER)
    return folder


def partitioned(image: Path, source: Path) -> Path:
    """An MBR card with one FAT32 partition at 1 MiB, as cameras format them."""
    part = make_image(image.with_suffix(".part"), source, fs="vfat")
    size_mb = part.stat().st_size >> 20
    with image.open("wb") as fh:
        fh.truncate((size_mb + 1) << 20)
    subprocess.run(["sfdisk", "-q", str(image)], input="start=2048, type=c\n", text=True,
                   check=True, capture_output=True)
    subprocess.run(["dd", f"if={part}", f"of={image}", "bs=1M", "seek=1", "conv=notrunc",
                    "status=none"], check=True)
    part.unlink()
    return image


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VM]:
    if os.geteuid() != 0:
        pytest.skip("the VM system test needs root (debootstrap, chroot, loop devices)")
    for tool in ("qemu-system-x86_64", "debootstrap", "mkfs.ext4", "sfdisk", "mkfs.exfat",
                 "mcopy"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            pytest.skip(f"{tool} is not installed (see ./dev.sh test -m vm)")
    work = tmp_path_factory.mktemp("vm")
    reuse = os.environ.get("GHOSTROLL_VM_ROOTFS")
    rootfs = Path(reuse) if reuse else build_rootfs(work, TIMINGS)
    start = time.monotonic()
    image = work / "root.img"
    make_root_image(rootfs, image)
    TIMINGS["root_image_s"] = time.monotonic() - start
    machine = VM(work, rootfs, image)
    try:
        TIMINGS["boot_s"] = machine.start()
        yield machine
    finally:
        machine.stop()
        print("VM timings:", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


def wait_for(vm: VM, command: str, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, out = vm.run(command)
        if code == 0:
            return out
        time.sleep(1)
    journal = vm.run("journalctl --no-pager -o short-monotonic -n 60 -u 'ghostroll*' "
                     "-u 'systemd-udevd' -k | tail -60")[1]
    raise AssertionError(f"{what} within {timeout} s; last output: {out}\n"
                         f"guest journal:\n{journal}")


def card_units(vm: VM) -> list[str]:
    out = vm.check("journalctl --no-pager -o cat -u 'ghostroll-mount@*' | "
                   "grep 'card-mount: /dev/' || true")
    return [line for line in out.splitlines() if line.startswith("card-mount:")]


def test_cards_are_mounted_read_only_ingested_published_and_unchanged(
        vm: VM, tmp_path: Path) -> None:
    cards = {
        "fat32p": partitioned(tmp_path / "fat32p.img",
                              card_source(tmp_path / "a", 3, 1, real=True)),
        "exfat": make_image(tmp_path / "exfat.img", card_source(tmp_path / "b", 2, 2),
                            fs="exfat"),
    }
    before = {name: sha(img) for name, img in cards.items()}
    for number, (name, image) in enumerate(cards.items(), start=1):
        start = time.monotonic()
        vm.plug(name, image)
        wait_for(vm, f"test $(journalctl -o cat -u 'ghostroll-ingest@*' | grep -c "
                 f"'card phase complete') -ge {number}", 180, f"card {name} was not copied")
        TIMINGS[f"card_{name}_s"] = time.monotonic() - start
        # As a photographer does: pull the card once the panel says so (the panel draws
        # at most one frame per 3 s, so this can trail the journal by that much).
        wait_for(vm, "test $(grep -c '\"state\": \"card_done\"' "
                 f"/var/lib/ghostroll/frames/frames.jsonl) -ge {number}", 30,
                 f"the panel did not say card {name} is safe to remove")
        vm.unplug(name)
    mounts = card_units(vm)
    assert len(mounts) == 2, mounts  # the rule fired once per card...
    started = vm.check("journalctl --no-pager -o cat | grep -c 'Started ghostroll-ingest@'")
    assert started.strip() == "2", started  # ...and one worker unit each
    assert any(re.search(r": vfat\s+ro,", m) for m in mounts), mounts  # real kernel drivers
    assert any(re.search(r": exfat\s+ro,", m) for m in mounts), mounts
    assert all("/dev/sd" in m and "nosuid,nodev,noexec" in m for m in mounts)
    for name, image in cards.items():
        assert sha(image) == before[name], f"card {name} was written to"
    wait_for(vm, f"test $({GR} sessions | grep -c ' published') -eq 2", 300,
             "publishing did not finish")
    wait_for(vm, "grep -q '\"state\": \"done\"' /run/ghostroll/status.json", 60,
             "the panel did not reach the done screen")
    wait_for(vm, "tail -n1 /var/lib/ghostroll/frames/frames.jsonl | grep -q '\"state\": \"done\"'",
             60, "the panel did not draw the done screen")  # refreshes are rate-limited
    frames = vm.check("cat /var/lib/ghostroll/frames/frames.jsonl")
    states = [json.loads(line)["state"] for line in frames.splitlines() if line.strip()]
    assert "card_done" in states and states[-1] == "done"
    probe = vm.check(
        "cd /var/lib/ghostroll/sessions && for d in shoot-*; do /opt/ghostroll/venv/bin/python "
        "-c \"import json,sys,urllib.request,urllib.error\n"
        "l=json.load(open(sys.argv[1]))\n"
        "def st(u):\n"
        "  try: return urllib.request.urlopen(u).status\n"
        "  except urllib.error.HTTPError as e: return e.code\n"
        "print('PROBE', st(l['index_url'].split('?')[0]), st(l['index_url']))\" "
        "$d/derived/link.json; done")
    assert probe.count("PROBE 403 200") == 2, probe


def test_card_pulled_mid_copy_loses_nothing_and_resumes(vm: VM, tmp_path: Path) -> None:
    image = make_image(tmp_path / "pull.img", card_source(tmp_path / "c", 2, 3, big=2))
    before = sha(image)
    done_before = vm.run("journalctl -o cat -u 'ghostroll-ingest@*' | "
                         "grep -c 'card phase complete'")[1].strip() or "0"
    vm.plug("pull", image)
    wait_for(vm, "ls /var/lib/ghostroll/sessions/*/originals/DCIM/100GHOST/IMG_03* "
             ">/dev/null 2>&1", 120, "the first file was not copied")
    vm.unplug("pull")
    wait_for(vm, "grep -q 'Card removed during copy' /run/ghostroll/status.json", 60,
             "the panel did not report the pulled card")
    kept = vm.check("ls /var/lib/ghostroll/sessions/*/originals/DCIM/100GHOST/ | "
                    "grep -c 'IMG_03' || true")
    assert int(kept.strip() or 0) >= 1
    vm.plug("pull2", image)
    wait_for(vm, f"test $(journalctl -o cat -u 'ghostroll-ingest@*' | grep -c "
             f"'card phase complete') -gt {done_before}", 180, "the re-plugged card was "
             "not finished")
    vm.unplug("pull2")
    copies = vm.check("cd /var/lib/ghostroll/sessions && "
                      "ls -d */originals/DCIM/100GHOST/IMG_03* */originals/DCIM/100GHOST/MVI_03*")
    names = [Path(line).name for line in copies.split()]
    story = vm.check("journalctl --no-pager -o short-monotonic -u 'ghostroll*' | "
                     "grep -E 'session|card phase|Stopp|Start|removed' | tail -40")
    assert sorted(names) == sorted(set(names)), f"a file was copied twice:\n{copies}\n{story}"
    assert len(names) == 4, f"not every file was copied:\n{copies}\n{story}"
    sessions = {line.split("/")[0] for line in copies.split()}
    assert len(sessions) == 1, f"the pulled card's session was not resumed:\n{copies}\n{story}"
    assert sha(image) == before


def test_card_in_the_reader_at_power_on_is_copied_and_published(vm: VM, tmp_path: Path) -> None:
    """The photographer inserts the card, then switches the appliance on. Also a reboot:
    the sessions, the database and the queue of earlier tests must survive it."""
    image = partitioned(tmp_path / "boot.img", card_source(tmp_path / "d", 2, 4))
    before = sha(image)
    earlier = int(vm.check(f"{GR} sessions | grep -c 'shoot-' || true").strip() or 0)
    vm.stop()
    TIMINGS["reboot_with_card_s"] = vm.start(cards={"boot": image})
    wait_for(vm, "journalctl -b -o cat -u 'ghostroll-ingest@*' | grep -q 'card phase complete'",
             180, "the card present at boot was not copied")
    mounts = vm.check("journalctl -b --no-pager -o cat -u 'ghostroll-mount@*' | "
                      "grep 'card-mount: /dev/'")
    assert len(mounts.strip().splitlines()) == 1 and re.search(r": vfat\s+ro,", mounts), mounts
    wait_for(vm, f"test $({GR} sessions | grep -c ' published') -eq {earlier + 1}", 300,
             "the sessions were not all published after the reboot")
    assert sha(image) == before
