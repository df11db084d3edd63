"""The appliance image's files, proven without a Pi: build-image.sh --check (shellcheck,
systemd-analyze verify failing on any complaint, run-script modes, overlay tree, no
secrets), and that it catches what it claims to catch."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def check(tree: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "build-image.sh"), "--check"], capture_output=True,
                          text=True, env={"GHOSTROLL_TREE": str(tree), "PATH": "/usr/bin:/bin:"
                                          "/usr/sbin:/sbin"}, timeout=300)


def needs_tools() -> None:
    for tool in ("shellcheck", "systemd-analyze"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install shellcheck systemd)")


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    for part in ("overlays", "image", "build-image.sh", "dev.sh", ".ci"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, copy / part, symlinks=True)
        else:
            copy.mkdir(exist_ok=True)
            shutil.copy2(src, copy / part)
    return copy


def test_check_passes_on_this_tree() -> None:
    needs_tools()
    done = check()
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("ok: shellcheck", "ok: systemd-analyze verify", "ok: run-script modes",
                 "ok: overlay tree", "ok: no committed secrets"):
        assert line in done.stdout


def test_check_fails_on_an_unknown_unit_key(tree_copy: Path) -> None:
    needs_tools()
    unit = tree_copy / "overlays/etc/systemd/system/ghostroll.service"
    unit.write_text(unit.read_text().replace("[Service]", "[Service]\nRestartSecs=5"))
    done = check(tree_copy)
    assert done.returncode != 0 and "RestartSecs" in done.stderr


def test_check_fails_on_a_run_script_pi_gen_would_skip(tree_copy: Path) -> None:
    needs_tools()
    (tree_copy / "image/stage-ghostroll/00-ghostroll/02-run-chroot.sh").chmod(0o644)
    done = check(tree_copy)
    assert done.returncode != 0 and "not executable" in done.stderr


def test_check_fails_when_the_rule_would_run_work(tree_copy: Path) -> None:
    needs_tools()
    rule = tree_copy / "overlays/etc/udev/rules.d/80-ghostroll.rules"
    rule.write_text(rule.read_text() + 'RUN+="/usr/bin/ghostroll run /mnt"\n')
    done = check(tree_copy)
    assert done.returncode != 0 and "RUN+=" in done.stderr


def test_units_never_fsck_and_mount_read_only() -> None:
    mount = (REPO / "overlays/usr/lib/ghostroll/card-mount").read_text()
    assert "blockdev --setro" in mount and mount.count('opts="ro,') >= 2
    vfat = next(x for x in mount.splitlines() if x.strip().startswith("vfat)"))
    exfat = next(x for x in mount.splitlines() if x.strip().startswith("exfat)"))
    assert ",utf8\"" in vfat and "iocharset=utf8" in exfat  # names are not mangled
    unit = (REPO / "overlays/etc/systemd/system/ghostroll-ingest@.service").read_text()
    assert "BindsTo=dev-%i.device ghostroll-mount@%i.service" in unit
    assert "After=dev-%i.device ghostroll-mount@%i.service" in unit and "User=ghostroll" in unit
    mount_unit = (REPO / "overlays/etc/systemd/system/ghostroll-mount@.service").read_text()
    assert "ExecStart=/usr/lib/ghostroll/card-mount %I" in mount_unit
    assert "ExecStop=/usr/lib/ghostroll/card-unmount %I" in mount_unit
    assert "StopWhenUnneeded=yes" in mount_unit
    service = (REPO / "overlays/etc/systemd/system/ghostroll.service").read_text()
    assert "Type=notify" in service and "WatchdogSec=" in service
    assert "\nPrivateDevices" not in service
    firstboot = (REPO / "overlays/etc/systemd/system/ghostroll-firstboot.service").read_text()
    assert "ConditionPathExists=/boot/firmware/ghostroll.toml" in firstboot


def test_pins_are_full_commits() -> None:
    pin = (REPO / "image/PIGEN_PIN").read_text()
    commit = next(line.split("=", 1)[1] for line in pin.splitlines()
                  if line.startswith("PIGEN_COMMIT="))
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)


def test_the_panel_driver_is_the_hash_pinned_wheel_the_contract_test_runs() -> None:
    """The image installs Waveshare's driver only from the pinned wheel (no GitHub clone
    of an old commit), and the contract test installs the same line."""
    hardware = (REPO / "image/python/hardware.txt").read_text().splitlines()
    contract = (REPO / "image/python/waveshare.txt").read_text().splitlines()
    [line] = [x for x in contract if x.startswith("waveshare-epaper==")]
    assert line in hardware and "--hash=sha256:" in line
    pinned = [x for x in hardware if x and not x.startswith("#")]
    assert {x.split("==")[0] for x in pinned} >= {"gpiozero", "lgpio", "spidev",
                                                  "waveshare-epaper"}
    assert all("--hash=sha256:" in x for x in pinned)
    script = (REPO / "image/install-ghostroll.sh").read_text()
    assert "git clone" not in script and "--require-hashes" in script
    assert "RaspberryPi_JetsonNano/python/lib" in script  # the .pth line
    assert "git" not in (REPO / "image/packages/pios.txt").read_text().split()


def test_check_fails_on_an_unpinned_python_requirement(tree_copy: Path) -> None:
    needs_tools()
    req = tree_copy / "image/python/hardware.txt"
    req.write_text(req.read_text() + "lgpio\n")
    done = check(tree_copy)
    assert done.returncode != 0 and "not pinned" in done.stderr


def test_the_service_can_start_lgpio_in_its_sandbox() -> None:
    """lgpio makes its notify pipe in $LG_WD or the working directory (read-only "/" under
    ProtectSystem=strict): both point at the unit's runtime directory, and only lgpio is
    accepted as the pin factory."""
    unit = (REPO / "overlays/etc/systemd/system/ghostroll.service").read_text()
    assert "ProtectSystem=strict" in unit and "RuntimeDirectory=ghostroll" in unit
    assert "WorkingDirectory=/run/ghostroll" in unit
    assert "LG_WD=/run/ghostroll" in unit and "GPIOZERO_PIN_FACTORY=lgpio" in unit


def test_check_fails_on_a_plain_http_or_half_pinned_pisugar(tree_copy: Path) -> None:
    needs_tools()
    pin = tree_copy / "image/PISUGAR_PIN"
    text = pin.read_text()
    for broken in (text.replace("URL=https://", "URL=http://"),
                   text.replace("PISUGAR_SHA256=", "PISUGAR_SHA256=abc123")):
        pin.write_text(broken)
        done = check(tree_copy)
        assert done.returncode != 0 and "PISUGAR_PIN" in done.stderr


@pytest.mark.root
def test_udev_rule_parses_and_ignores_non_usb_disks(tmp_path: Path) -> None:
    """udevadm test on a real loop device holding FAT32: the rule file is read without
    errors, and a non-USB block device (like the boot disk) never starts a card unit."""
    if shutil.which("mkfs.vfat") is None:
        pytest.skip("mkfs.vfat not installed")
    image = tmp_path / "card.img"
    with image.open("wb") as fh:
        fh.truncate(64 << 20)
    subprocess.run(["mkfs.vfat", "-F", "32", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "--find", "--show", "-r", str(image)], check=True,
                          capture_output=True, text=True).stdout.strip()
    rules = Path("/run/udev/rules.d")
    rules.mkdir(parents=True, exist_ok=True)
    installed = rules / "80-ghostroll.rules"
    shutil.copy(REPO / "overlays/etc/udev/rules.d/80-ghostroll.rules", installed)
    try:
        out = subprocess.run(["udevadm", "test", f"/sys/block/{Path(loop).name}"],
                             capture_output=True, text=True, timeout=60)
        text = out.stdout + out.stderr
        assert "80-ghostroll.rules" in text
        assert "Invalid" not in text and "invalid" not in text.split("80-ghostroll")[1][:400]
        assert "ghostroll-ingest@" not in text  # a loop device is not on USB
    finally:
        installed.unlink()
        subprocess.run(["losetup", "-d", loop], check=False)


def _tree_owned_by_a_user(tmp_path: Path) -> Path:
    """overlays/ as a user's checkout leaves it: uid 1000, group-writable (umask 002)."""
    src = tmp_path / "checkout" / "overlays"
    shutil.copytree(REPO / "overlays", src, symlinks=True)
    for path in [src, *src.rglob("*")]:
        os.lchown(path, 1000, 1000)
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o020)
    return src


@pytest.mark.root
def test_overlays_install_root_owned_whoever_owns_the_checkout(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (chown)")
    src = _tree_owned_by_a_user(tmp_path)
    root = tmp_path / "root"
    for existing, mode in (("etc", 0o755), ("usr/lib", 0o755), ("var/lib", 0o755),
                           ("run", 0o755), ("etc/ssh", 0o711)):
        (root / existing).mkdir(parents=True, exist_ok=True)
        (root / existing).chmod(mode)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n"
                                     "ghostroll:x:990:990::/var/lib/ghostroll:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nghostroll:x:990:\n")
    root.chmod(0o755)
    subprocess.run([str(REPO / "image/install-overlays.sh"), str(src), str(root)], check=True)
    installed = [root / p.relative_to(src) for p in src.rglob("*")]
    for path in [root, *installed]:
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (0, 0), f"{path} is owned by {st.st_uid}"
        if not path.is_symlink():
            assert not st.st_mode & 0o022, f"{path} is group/world-writable"
    assert stat.S_IMODE((root / "etc/ssh").stat().st_mode) == 0o711  # kept as it was
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # not the checkout's 0775
    if shutil.which("systemd-tmpfiles"):
        done = subprocess.run(["systemd-tmpfiles", "--create", f"--root={root}",
                               "ghostroll.conf"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (root / "var/lib/ghostroll").stat().st_uid == 990


@pytest.mark.root
def test_udev_rule_acts_on_media_change_in_a_reader_that_stays_plugged(tmp_path: Path) -> None:
    """A card inserted into a reader already plugged in is only a `change` uevent on the
    whole disk: a superfloppy FAT card must start its worker on it, and a whole disk
    without a filesystem (empty reader, partitioned card) must be marked not ready so the
    next card activates the device unit again. Loop devices are not on USB, so the
    rule's USB line is left out of this copy (the VM test runs the whole rule)."""
    if shutil.which("mkfs.vfat") is None:
        pytest.skip("mkfs.vfat not installed")
    text = (REPO / "overlays/etc/udev/rules.d/80-ghostroll.rules").read_text()
    usb_line = 'ENV{ID_BUS}!="usb", GOTO="ghostroll_end"\n'
    assert usb_line in text
    rules = Path("/run/udev/rules.d")
    rules.mkdir(parents=True, exist_ok=True)
    installed = rules / "80-ghostroll.rules"
    installed.write_text(text.replace(usb_line, ""))
    results = {}
    try:
        for name, fat in (("fat", True), ("empty", False)):
            image = tmp_path / f"{name}.img"
            with image.open("wb") as fh:
                fh.truncate(64 << 20)
            if fat:
                subprocess.run(["mkfs.vfat", "-F", "32", str(image)], check=True,
                               capture_output=True)
            loop = subprocess.run(["losetup", "--find", "--show", "-r", str(image)],
                                  check=True, capture_output=True, text=True).stdout.strip()
            try:
                out = subprocess.run(["udevadm", "test", "--action=change",
                                      f"/sys/block/{Path(loop).name}"],
                                     capture_output=True, text=True, timeout=60)
                results[name] = (Path(loop).name, out.stdout + out.stderr)
            finally:
                subprocess.run(["losetup", "-d", loop], check=False)
    finally:
        installed.unlink()
    dev, out = results["fat"]
    assert f"SYSTEMD_WANTS=ghostroll-ingest@{dev}.service" in out, out[-3000:]
    assert "SYSTEMD_READY=0" not in out
    dev, out = results["empty"]
    assert "SYSTEMD_READY=0" in out and "ghostroll-ingest@" not in out, out[-3000:]


def test_a_build_without_an_ssh_key_gives_pi_gen_no_empty_key(tmp_path: Path) -> None:
    """`--ssh-key /dev/null` (keys from ghostroll.toml at first boot): pi-gen stops on
    PUBKEY_ONLY_SSH=1 or an empty PUBKEY_SSH_FIRST_USER, so neither is written; SSH stays
    key-only through the sshd drop-in."""
    def config(*args: str) -> str:
        return subprocess.run([str(REPO / "build-image.sh"), "--print-config", *args],
                              capture_output=True, text=True, check=True).stdout

    keyless = config("--ssh-key", "/dev/null")
    settings = [x for x in keyless.splitlines() if not x.startswith("#")]
    assert not any(x.startswith(("PUBKEY_ONLY_SSH", "PUBKEY_SSH_FIRST_USER")) for x in settings)
    assert "FIRST_USER_NAME=admin" in keyless
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3Nza me@laptop\n")
    keyed = config("--ssh-key", str(key), "--admin", "bob")
    assert "PUBKEY_SSH_FIRST_USER='ssh-ed25519 AAAAC3Nza me@laptop'" in keyed
    assert "FIRST_USER_NAME=bob" in keyed
    sshd = (REPO / "overlays/etc/ssh/sshd_config.d/ghostroll.conf").read_text().splitlines()
    assert "PasswordAuthentication no" in sshd and "KbdInteractiveAuthentication no" in sshd


def test_first_boot_installs_keys_for_the_builds_admin() -> None:
    unit = (REPO / "overlays/etc/systemd/system/ghostroll-firstboot.service").read_text()
    assert "--admin ${GHOSTROLL_ADMIN}" in unit
    script = (REPO / "image/install-ghostroll.sh").read_text()
    assert "Environment=GHOSTROLL_ADMIN=%s" in script
    assert "ghostroll-firstboot.service.d/admin.conf" in script


def test_stage_loads_i2c_dev_and_stages_nothing_in_tmp() -> None:
    assert "i2c-dev" in (REPO / "overlays/etc/modules-load.d/ghostroll.conf").read_text()
    for script in (REPO / "image/stage-ghostroll").rglob("*.sh"):
        code = [x for x in script.read_text().splitlines() if not x.startswith("#")]
        assert not any("/tmp" in x for x in code), script
    assert (REPO / "overlays/etc/cloud/cloud-init.disabled").is_file()


def test_check_fails_on_pubkey_only_ssh(tree_copy: Path) -> None:
    needs_tools()
    config = tree_copy / "image/config"
    config.write_text(config.read_text() + "PUBKEY_ONLY_SSH=1\n")
    done = check(tree_copy)
    assert done.returncode != 0 and "PUBKEY_ONLY_SSH" in done.stderr
