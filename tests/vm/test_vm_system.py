"""The appliance in a booted VM: real udev, real systemd template units, real kernel
vfat/exfat read-only mounts, card images hot-plugged as USB mass storage, S3 inside the
guest. Run alone: `./dev.sh test -m vm` (builds a Debian rootfs with the image's own
install script; 5-9 minutes on 2 cores).

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

from ghostroll.devtools.cardimage import make_image
from ghostroll.devtools.synthetic import MOV_HEADER, PhotoSpec, make_blob, make_jpeg
from tests.support.samples import samples_dir
from tests.vm.harness import (
    ADMIN,
    ADMIN_KEY,
    AMD64,
    S3_SECRET,
    VM,
    VMTEST,
    WIFI_PSK,
    Arch,
    build_rootfs,
    make_root_image,
)

pytestmark = pytest.mark.vm
REPO = Path(__file__).resolve().parents[2]
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


def boot(tmp_path_factory: pytest.TempPathFactory, arch: Arch,
         timings: dict[str, float]) -> Iterator[VM]:
    """Build the rootfs for `arch`, boot it once, stop it at the end (module scope)."""
    if os.geteuid() != 0:
        pytest.skip("the VM system test needs root (debootstrap, chroot, loop devices)")
    for tool in (arch.qemu[0], "debootstrap", "mkfs.ext4", "sfdisk", "mkfs.exfat", "mcopy"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            pytest.skip(f"{tool} is not installed (see ./dev.sh test -m vm)")
    work = tmp_path_factory.mktemp(f"vm-{arch.debian}")
    reuse = os.environ.get("GHOSTROLL_VM_ROOTFS")
    rootfs = Path(reuse) if reuse else build_rootfs(work, timings, arch)
    start = time.monotonic()
    image = work / "root.img"
    make_root_image(rootfs, image)
    timings["root_image_s"] = time.monotonic() - start
    machine = VM(work, rootfs, image, arch)
    try:
        timings["boot_s"] = machine.start()
        yield machine
    finally:
        machine.stop()
        print(f"VM timings ({arch.debian}):",
              json.dumps({k: round(v, 1) for k, v in timings.items()}))


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VM]:
    yield from boot(tmp_path_factory, AMD64, TIMINGS)


def wait_for(vm: VM, command: str, timeout: float, what: str) -> str:
    timeout *= vm.arch.slowdown
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


def test_install_from_a_user_checkout_is_root_owned(vm: VM) -> None:
    """The rootfs was installed from a checkout owned by uid 1000 (group-writable): every
    path the overlays put in place is root-owned and not group/world-writable, apart
    from the two the install script hands to the ghostroll group, and tmpfiles agrees."""
    overlays = REPO / "overlays"
    paths = sorted("/" + str(p.relative_to(overlays)) for p in overlays.rglob("*"))
    listing = vm.check("stat -c '%U:%G %a %F|%n' / /etc /usr /usr/lib /etc/systemd/system "
                       + " ".join(paths))
    # handed to the service's group by the install script; first boot rewrites the config
    special = {"/etc/ghostroll": ("root:ghostroll",),
               "/etc/ghostroll/config.toml": ("root:ghostroll", "ghostroll:ghostroll")}
    for line in listing.splitlines():
        owner, mode, rest = line.split(" ", 2)
        kind, name = rest.split("|", 1)
        assert ADMIN not in owner, line  # uid 1000, the checkout's owner, is the guest's admin
        if kind == "directory" and name not in special:  # existing ones keep their owner
            assert owner.startswith("root:"), line
        else:
            assert owner in special.get(name, ("root:root",)), line
        assert not int(mode, 8) & 0o022, line
    vm.check("systemd-tmpfiles --create")  # "unsafe path transition" would fail here


def test_lgpio_starts_under_the_service_sandbox(vm: VM) -> None:
    """ExecStartPre= of the real ghostroll.service (test drop-in) imported lgpio in the
    unit's sandbox, and gpiozero's own factory selection reached lgpio: past the Pi
    revision (fake cpuinfo) to opening the gpiochip, which this guest does not have."""
    probe = json.loads(vm.check("cat /run/ghostroll/vmtest-gpio.json"))
    assert probe["cwd"] == "/run/ghostroll" and probe["lg_wd"] == "/run/ghostroll", probe
    assert probe["lgpio"].startswith("imported"), probe
    assert probe["pi_revision"] == "902120", probe
    assert probe["unit_factory"] == "lgpio", probe
    # gpiozero's own probe (no GPIOZERO_PIN_FACTORY) chose lgpio on the gpio-sim chip
    assert probe.get("factory") == "LGPIOFactory" and probe["fallbacks"] == [], probe
    devices = json.loads(vm.check("cat /run/ghostroll/devices.json"))
    assert devices == {"button_factory": "lgpio"}, devices
    doctor = vm.run(f"{GR} doctor")[1]
    assert "pin factory lgpio; /dev/gpiochip0" in doctor, doctor


def test_vendor_contract_under_the_guests_python(vm: VM) -> None:
    """The contract test against the Waveshare code the image installed (found through
    the installed .pth line, not a download), run by the guest's Python."""
    out = vm.check(f"cd {VMTEST} && /opt/ghostroll/venv/bin/python -m pytest -q "
                   "-p no:cacheprovider -c /dev/null test_devices_waveshare.py 2>&1 | tail -3",
                   timeout=300)
    assert re.search(r"\b10 passed\b", out) and "skipped" not in out, out


def test_panel_frames_through_the_installed_driver(vm: VM) -> None:
    """The frames the service rendered, through the installed driver code (MockFactory
    pins, recording spidev): the picture decoded from the SPI bytes is the frame, and the
    QR of the done screen decodes to the share link."""
    out = vm.check(
        f"unshare -m sh -c 'mount --bind {VMTEST}/cpuinfo /proc/cpuinfo && "
        f"cd /tmp && PANEL_PINS=lgpio /opt/ghostroll/venv/bin/python {VMTEST}/panel_spi.py "
        f"/var/lib/ghostroll/frames waveshare-2in7-v2 /tmp/panel-spi.json' 2>&1 | tail -3",
        timeout=300)
    result = json.loads(vm.check("cat /tmp/panel-spi.json"))
    assert "/opt/ghostroll/venv/" in result["driver"], out
    assert result["pins"] == "LGPIOFactory", result  # RST/DC/BUSY/PWR on the gpio-sim chip
    assert "RaspberryPi_JetsonNano/python/lib/waveshare_epd/epd2in7_V2.py" in result["driver"]
    frames = result["frames"]  # 176 x 264 panel RAM: 22 bytes a row
    assert frames and all(f["equal"] and f["ram_bytes"] == 22 * 264 for f in frames), frames
    assert (result["qr"] or "").startswith("http://127.0.0.1:8333/"), result


def test_cards_swapped_in_a_reader_that_stays_plugged(vm: VM, tmp_path: Path) -> None:
    """A USB reader stays in; cards go in and out of it (QMP eject/blockdev-change-medium):
    a superfloppy, a partitioned card, a superfloppy again with a non-ASCII name. Each
    insertion is exactly one mount and one worker, and the name round-trips as UTF-8."""
    os.environ.setdefault("LANG", "C.UTF-8")  # mtools writes long names in the locale
    first = make_image(tmp_path / "sf1.img", card_source(tmp_path / "e", 2, 5))
    second = partitioned(tmp_path / "part.img", card_source(tmp_path / "f", 2, 6))
    src = card_source(tmp_path / "g", 1, 7)
    name = "Été_Ünï_0701.JPG"
    make_jpeg(src / "DCIM" / "100GHOST" / name, PhotoSpec(width=640, height=480), seed=701)
    third = make_image(tmp_path / "sf2.img", src)

    def counts() -> tuple[int, int]:
        mounts = len(card_units(vm))
        started = vm.check("journalctl --no-pager -o cat | "
                           "grep -c 'Started ghostroll-ingest@' || true")
        return mounts, int(started.strip() or 0)

    def copied(total: int, what: str) -> None:
        wait_for(vm, f"test $(journalctl -o cat -u 'ghostroll-ingest@*' | grep -c "
                 f"'card phase complete') -ge {total}", 180, what)

    done = int(vm.check("journalctl -o cat -u 'ghostroll-ingest@*' | "
                        "grep -c 'card phase complete' || true").strip() or 0)
    before = counts()
    vm.plug("reader", first)
    copied(done + 1, "the first card in the reader was not copied")
    for number, image in enumerate((second, third), start=2):
        vm.eject("reader")
        wait_for(vm, "test -z \"$(systemctl list-units --no-legend --state=active "
                 "'ghostroll-ingest@*' 'ghostroll-mount@*')\" && "
                 "! findmnt -rn -o TARGET | grep -q /run/ghostroll/cards/", 60,
                 "pulling the card did not stop its worker and mount")
        vm.change_medium("reader", image)
        copied(done + number, f"card {number} swapped into the reader was not copied")
    mounts, started = counts()
    assert (mounts - before[0], started - before[1]) == (3, 3), (before, mounts, started)
    # typed as escapes: the serial console is no place for non-ASCII input
    names = vm.check("/opt/ghostroll/venv/bin/python -c \"import glob; print(ascii(sorted("
                     "p.rsplit('/', 1)[1] for p in glob.glob('/var/lib/ghostroll/sessions/*/"
                     "originals/DCIM/100GHOST/*07*'))))\"")
    assert ascii(name) in names, names
    mounts = card_units(vm)[-1]
    assert re.search(r": vfat\s+ro,.*utf8", mounts), mounts
    vm.eject("reader")
    vm.unplug("reader")


def test_first_boot_file_applied_and_nothing_secret_exposed(vm: VM) -> None:
    """ghostroll.toml from the boot partition: merged over the image's config ([storage]
    kept), keys for the build's admin, Wi-Fi keyfile with WirelessEnabled=true; the
    applied copy, the journal and the listening sockets expose nothing."""
    cfg = vm.check("cat /etc/ghostroll/config.toml")
    assert "panel_full_every = 7" in cfg and 'db_path = "/var/lib/ghostroll/ghostroll.db"' in cfg
    keys = vm.check(f"cat /home/{ADMIN}/.ssh/authorized_keys")
    assert ADMIN_KEY in keys
    vm.check("test -f /etc/NetworkManager/system-connections/ghostroll-wifi.nmconnection")
    # The AP (hostapd + dnsmasq on a mac80211_hwsim radio in namespace "ap") is joined,
    # from WirelessEnabled=false and a soft-blocked radio, as pi-gen leaves them.
    wait_for(vm, "nmcli -t -g GENERAL.STATE device show wlan0 | grep -q '^100'", 120,
             "NetworkManager did not connect to the test access point")
    address = vm.check("nmcli -t -g IP4.ADDRESS device show wlan0")
    assert address.strip().startswith("192.168.77."), address
    assert "enabled" in vm.check("nmcli radio wifi")
    vm.check("grep -qx WirelessEnabled=true /var/lib/NetworkManager/NetworkManager.state")
    applied = vm.check("cat /boot/firmware/ghostroll.toml.applied")
    assert S3_SECRET not in applied and WIFI_PSK not in applied and "GhostRollTestAP" in applied
    # weed (the test's S3 server, not part of the appliance) is left out of both checks
    for secret in (S3_SECRET, WIFI_PSK):
        hits = vm.check("journalctl --no-pager -o short | grep -v ' weed\\[' | "
                        f"grep -c -F '{secret}' || true")
        assert hits.strip() == "0", f"the journal holds a secret ({hits.strip()} lines)"
    listening = vm.check("ss -ltnupH | grep -v '\"weed\"' || true")
    exposed = [line for line in listening.splitlines() if line.strip()
               and not re.match(r"^(127\.\d+\.\d+\.\d+|\[::1\]|\[::ffff:127\.[\d.]+\]):",
                                line.split()[4])
               # NetworkManager's DHCP client socket: a client, not a service
               and not (line.split()[4].endswith(":68") and "NetworkManager" in line)]
    assert not exposed, f"listening beyond loopback: {exposed}\n{listening}"


def press(vm: VM, seconds: float) -> None:
    """The button (BCM 26 to GND) pressed for `seconds`, through gpio-sim's pull."""
    pull = vm.check("ls /sys/devices/platform/gpio-sim.*/gpiochip0/sim_gpio26/pull").strip()
    vm.check(f"echo pull-down > {pull}; sleep {seconds}; echo pull-up > {pull}; sleep 0.5")


def status_state(vm: VM) -> str:
    return json.loads(vm.check("cat /run/ghostroll/status.json"))["state"]


def test_button_stories_on_the_gpio_sim_chip(vm: VM) -> None:
    """The real ghostroll.service, its button on lgpio and the gpio-sim chip: a short
    press dismisses the share screen; a long press asks to shut down and a press confirms
    it (the power-off request is refused by a test polkit rule and recorded, not run)."""
    # every session published first: a "done" between two sessions' uploads is brief,
    # and a press during the next upload is not a dismissal
    wait_for(vm, f"test $({GR} sessions | grep -c ' published') -eq "
             f"$({GR} sessions | grep -c 'shoot-')", 300, "publishing did not finish")
    wait_for(vm, "grep -q '\"state\": \"done\"' /run/ghostroll/status.json", 300,
             "the service did not reach the done screen")
    press(vm, 0.5)
    wait_for(vm, "grep -q '\"state\": \"idle\"' /run/ghostroll/status.json", 30,
             "a short press did not dismiss the done screen")
    # Hold 4 s (hold_time is 3 s), then confirm within the 10 s window: in one guest
    # command, as serial round trips on a loaded host can take seconds each.
    pull = vm.check("ls /sys/devices/platform/gpio-sim.*/gpiochip0/sim_gpio26/pull").strip()
    vm.check(f"echo pull-down > {pull}; sleep 4; echo pull-up > {pull}; "
             "for i in $(seq 80); do grep -q '\"state\": \"confirm_shutdown\"' "
             "/run/ghostroll/status.json && break; sleep 0.1; done; "
             "grep -q '\"state\": \"confirm_shutdown\"' /run/ghostroll/status.json && "
             f"echo pull-down > {pull} && sleep 0.5 && echo pull-up > {pull}")
    wait_for(vm, "journalctl -o cat -u ghostroll | grep -q 'systemctl poweroff failed'", 60,
             "the confirmed shutdown was not requested")
    asked = vm.check("journalctl --no-pager -o cat -u ghostroll | grep -c 'state confirm_shutdown'"
                     " || true")
    assert asked.strip() not in ("", "0"), "the shutdown question was never shown"
    failure = vm.check("journalctl -o cat -u ghostroll | grep 'systemctl poweroff failed'")
    refused = vm.check("journalctl -o cat | grep -c 'power-off requested by ghostroll' || true")
    assert refused.strip() != "0" or "denied" in failure.lower(), failure
    assert status_state(vm) == "shutting_down"


def test_card_in_the_reader_at_power_on_is_copied_and_published(vm: VM, tmp_path: Path) -> None:
    """The photographer inserts the card, then switches the appliance on. Also a reboot:
    the sessions, the database and the queue of earlier tests must survive it."""
    image = partitioned(tmp_path / "boot.img", card_source(tmp_path / "d", 2, 4))
    before = sha(image)
    earlier = int(vm.check(f"{GR} sessions | grep -c 'shoot-' || true").strip() or 0)
    # A new settings file without the country: refused at this boot, the panel says why.
    vm.check("printf '[firstboot]\\nwifi_ssid = \"Cafe\"\\nwifi_psk = \"another-secret\"\\n'"
             " > /boot/firmware/ghostroll.toml")
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
    refused = vm.check("cat /var/lib/ghostroll/firstboot-error.txt")
    assert "wifi_country is required" in refused, refused
    vm.check("test -f /boot/firmware/ghostroll.toml")  # nothing applied, file left to fix
    assert "Cafe" not in vm.check("cat /etc/NetworkManager/system-connections/*")
    # the service rendered the "Setup file rejected" screen with that reason (a frame may
    # be replaced by the card's before the panel's rate limit lets it be drawn)
    vm.check("journalctl -b -o cat -u ghostroll | grep -q 'state error'")


ARCHIVE = "/var/lib/ghostroll/archive"


def archive_disk(image: Path, size_mb: int = 256) -> Path:
    """A USB disk formatted on the host as the photographer would: ext4, GR-ARCHIVE."""
    with image.open("wb") as fh:
        fh.truncate(size_mb << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "GR-ARCHIVE", str(image)], check=True)
    return image


def test_archive_disk_second_copy_survives_a_pull_and_prunes(vm: VM, tmp_path: Path) -> None:
    """The GR-ARCHIVE disk, hot-plugged: its own unit mounts it read-write where the
    sandboxed service sees it; a card's originals land there byte-identical in the dated
    layout; the disk pulled mid-copy and plugged back completes without a duplicate; the
    receipt goes "1 copy" → "2 copies"; prune removes only originals with that copy."""
    source = card_source(tmp_path / "h", 2, 8, big=3)
    card = make_image(tmp_path / "arch-card.img", source)
    disk = archive_disk(tmp_path / "archive.img")
    wanted = {p.name: sha(p) for p in (source / "DCIM" / "100GHOST").iterdir()}
    # The archive for this test (prune comes later), its copy slowed as the card's is, so
    # the pull lands mid-copy.
    vm.check(f"printf '\\n[archive]\\narchive_dir = \"{ARCHIVE}\"\\n' >> /etc/ghostroll/config.toml"
             " && mkdir -p /etc/systemd/system/ghostroll.service.d && printf '[Service]\\n"
             "Environment=GHOSTROLL_TEST_DELAY_MS=copy.chunk=250\\n' > "
             "/etc/systemd/system/ghostroll.service.d/vmtest-archive.conf && "
             "systemctl daemon-reload && systemctl restart ghostroll")
    wait_for(vm, "systemctl is-active ghostroll", 60, "the service did not restart")
    start = time.monotonic()
    vm.plug("archive", disk)
    mounted = wait_for(vm, f"findmnt -n -r -o FSTYPE,OPTIONS {ARCHIVE}", 60,
                       "the GR-ARCHIVE disk was not mounted")
    TIMINGS["archive_mount_s"] = time.monotonic() - start
    assert mounted.split()[0] == "ext4" and "rw," in mounted and "nosuid" in mounted, mounted
    # the service's own mount namespace (ProtectSystem=strict) sees it, writable
    vm.check(f"nsenter -t $(systemctl show -P MainPID ghostroll) -m runuser -u ghostroll -- "
             f"sh -c 'touch {ARCHIVE}/.probe && rm {ARCHIVE}/.probe'")
    # what the receipt says, sampled as the service writes it with each frame
    vm.check("{ (while sleep 0.3; do grep -o '\"copies\": [0-9a-z]*' "
             "/run/ghostroll/status.json; done) > /tmp/copies.log 2>&1 & } ; "
             "echo $! > /tmp/copies.pid")
    vm.plug("archcard", card)
    # the archive copy starts once the card's copy is over (from the verified local copy)
    wait_for(vm, f"find {ARCHIVE}/.incoming {ARCHIVE}/20* -type f -name '*_08*' "
             "2>/dev/null | grep -q .", 180, "the archive copy did not start")
    stops = "journalctl -o cat -u ghostroll | grep -c 'archive: ' || true"
    before = int(vm.check(stops).strip() or 0)
    vm.unplug("archive")
    wait_for(vm, f"! mountpoint -q {ARCHIVE}", 60, "the pulled disk was not unmounted")
    wait_for(vm, f"test $({stops}) -gt {before}", 120,
             "the pulled disk's archive run did not stop with a message")
    # find, not ls: ls heads each folder with its name, and a session's name holds the
    # time it was made ("shoot-…_0812…"), so "_08" may match it too
    local = "find /var/lib/ghostroll/sessions/*/originals -type f -name '*_08*' | wc -l"
    wait_for(vm, "journalctl -o cat -u 'ghostroll-ingest@*' | grep -q 'card phase complete'",
             180, "the card's copy did not finish")
    vm.unplug("archcard")
    assert vm.check(local).strip() == str(len(wanted))
    start = time.monotonic()
    vm.plug("archive2", disk)
    wait_for(vm, f"test $(find {ARCHIVE}/20* -name '*_08*' -type f | wc -l) -eq {len(wanted)}"
             " && grep -q IMG_0800 " + ARCHIVE + "/20*/*/SHA256SUMS", 240,
             "the archive copy did not complete once the disk was back")
    TIMINGS["archive_resume_s"] = time.monotonic() - start
    listing = vm.check(f"cd {ARCHIVE} && find 20* -type f -name '*_08*' -exec sha256sum {{}} +")
    found = {line.split(maxsplit=1)[1]: line.split()[0] for line in listing.splitlines()}
    assert len(found) == len(wanted), listing  # one copy each, no "~2" duplicate
    for path, digest in found.items():
        assert re.fullmatch(r"\d{4}/\d{4}-\d\d-\d\d [^/]+/(IMG|MVI)_08\d\d\.(JPG|MOV)", path), path
        assert wanted[Path(path).name] == digest, path
    folder = Path(next(iter(found))).parent
    vm.check(f"cd '{ARCHIVE}/{folder}' && sha256sum -c --quiet SHA256SUMS")
    state = ("cat /run/ghostroll/status.json; uniq /tmp/copies.log; "
             "journalctl -o cat -u ghostroll | tail -30")
    wait_for(vm, "grep -q '\"copies\": 2' /run/ghostroll/status.json", 60,
             "the receipt did not turn to 2 copies")
    seen = vm.check("sleep 1; uniq /tmp/copies.log")
    assert seen.find('"copies": 1') < seen.find('"copies": 2'), vm.check(state)
    assert seen.find('"copies": 1') >= 0, vm.check(state)
    vm.check("kill $(cat /tmp/copies.pid)")
    # prune = "archived" (floor above the disk's size: always wanted), one copy outside is
    # enough: with the disk away nothing is pruned; with it back, the archived originals go
    vm.unplug("archive2")
    wait_for(vm, f"! mountpoint -q {ARCHIVE}", 60, "the pulled disk was not unmounted")
    before = int(vm.check(stops).strip() or 0)
    vm.check("printf 'prune = \"archived\"\\nprune_min_copies = 1\\nprune_keep_free_mb = "
             "10000000\\n' >> /etc/ghostroll/config.toml && systemctl restart ghostroll")
    wait_for(vm, f"test $({stops}) -gt {before}", 120,
             "the service's work did not run without the disk")  # "archive disk not found"
    assert vm.check(local).strip() == str(len(wanted)), vm.check(state)
    vm.plug("archive3", disk)
    wait_for(vm, f"test $({local} || true) -eq 0", 300,
             "the doubly-archived originals were not pruned")
    vm.check("find /var/lib/ghostroll/sessions/*/derived -type f -path '*_080*' "
             "| grep -q .")  # share images stay
    assert vm.check(f"find {ARCHIVE}/20* -name '*_08*' -type f | wc -l").strip() == \
        str(len(wanted))
    # exFAT, the other filesystem a GR-ARCHIVE disk may have: mounted for the service too
    vm.unplug("archive3")
    wait_for(vm, f"! mountpoint -q {ARCHIVE}", 60, "the pulled disk was not unmounted")
    exfat = tmp_path / "archive-exfat.img"
    with exfat.open("wb") as fh:
        fh.truncate(64 << 20)
    subprocess.run(["mkfs.exfat", "-L", "GR-ARCHIVE", str(exfat)], check=True,
                   capture_output=True)
    vm.plug("exfat", exfat)
    mounted = wait_for(vm, f"findmnt -n -r -o FSTYPE,OPTIONS {ARCHIVE}", 60,
                       "the exFAT GR-ARCHIVE disk was not mounted")
    assert mounted.split()[0] == "exfat" and "rw," in mounted and "noexec" in mounted, mounted
    vm.check(f"nsenter -t $(systemctl show -P MainPID ghostroll) -m runuser -u ghostroll -- "
             f"sh -c 'touch {ARCHIVE}/.probe && rm {ARCHIVE}/.probe'")
    vm.unplug("exfat")
