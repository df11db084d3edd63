#!/bin/bash
# Install GhostRoll into a root filesystem, from inside it (chroot or a VM).
# The ONE install script: the pi-gen stage and the VM system test both run it.
#
#   install-ghostroll.sh --target pios|debian [--no-hardware] [--admin USER] \
#       --wheel /path/ghostroll-*.whl --overlays /path/overlays \
#       [--wheelhouse DIR] [--extra PACKAGE]... [--pisugar-deb FILE]
#
# --wheelhouse: install Python dependencies from wheels downloaded beforehand (offline,
# reproducible); --extra: more Python packages to install into the venv (tests);
# --pisugar-deb: the battery daemon's package (build-image.sh fetches it, image/PISUGAR_PIN).
#
# The hardware stack (gpiozero 2, lgpio and spidev built from source, Waveshare's driver
# from the waveshare-epaper wheel) comes from python/hardware.txt, hash-pinned, the same
# way on both targets; --no-hardware skips it.
# pios:   Raspberry Pi OS (arm64).   debian: plain Debian (the VM test).
set -euo pipefail

target="" wheel="" overlays="" admin="admin" hardware=1 wheelhouse="" pisugar_deb=""
extras=()
# Where waveshare-epaper puts upstream's waveshare_epd inside site-packages.
waveshare_lib="epaper/e-Paper/RaspberryPi_JetsonNano/python/lib"
# What building lgpio and spidev from source needs; removed again afterwards.
build_packages=(gcc libc6-dev python3-dev python3-setuptools swig)

die() { echo "install-ghostroll: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=$2; shift 2 ;;
        --wheel) wheel=$2; shift 2 ;;
        --overlays) overlays=$2; shift 2 ;;
        --admin) admin=$2; shift 2 ;;
        --no-hardware) hardware=0; shift ;;
        --wheelhouse) wheelhouse=$2; shift 2 ;;
        --extra) extras+=("$2"); shift 2 ;;
        --pisugar-deb) pisugar_deb=$(realpath "$2"); shift 2 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[ -n "$target" ] || die "--target pios|debian is required"
[ -f "$wheel" ] || die "--wheel must name the ghostroll wheel (build-image.sh builds it)"
[ -d "$overlays" ] || die "--overlays must name the overlays/ folder"
[ -z "$pisugar_deb" ] || [ -f "$pisugar_deb" ] || die "--pisugar-deb: no file $pisugar_deb"
[[ "$admin" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "--admin: not a user name: $admin"

# Package lists per target live in packages/*.txt beside this script (pi-gen's
# 00-packages is assembled from the same files by build-image.sh).
here=$(cd "$(dirname "$0")" && pwd)
case "$target" in
    pios|debian) ;;
    *) die "unknown target '$target' (pios or debian)" ;;
esac
mapfile -t packages < <(cat "$here/packages/common.txt" "$here/packages/$target.txt" \
                        | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$')

install_hardware() {
    local venv=/opt/ghostroll/venv site wd new_packages=()
    for pkg in "${build_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || new_packages+=("$pkg")
    done
    [ ${#new_packages[@]} -eq 0 ] || apt-get install -y --no-install-recommends "${new_packages[@]}"
    # PYPI=1: lgpio's setup.py links its own C library in (no liblgpio package needed).
    # --no-binary: always these sources, never a wheel the hashes do not name.
    PYPI=1 "$venv/bin/pip" install "${pip_args[@]}" --require-hashes --no-deps \
        --no-build-isolation --no-binary lgpio,spidev -r "$here/python/hardware.txt"
    [ ${#new_packages[@]} -eq 0 ] || apt-get purge -y --autoremove "${new_packages[@]}"
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    [ -f "$site/$waveshare_lib/waveshare_epd/epdconfig.py" ] \
        || die "waveshare-epaper did not install $waveshare_lib/waveshare_epd"
    echo "$waveshare_lib" > "$site/waveshare-epd.pth"
    # lgpio imports its C library, gpiozero finds its factories, waveshare_epd resolves to
    # the wheel's copy; the modules are not imported (epdconfig probes the board). lgpio
    # makes its notify pipe in $LG_WD (else the working directory) at import.
    wd=$(mktemp -d)
    LG_WD=$wd "$venv/bin/python" -c '
import importlib.util, sys, lgpio
from gpiozero.pins.lgpio import LGPIOFactory
spec = importlib.util.find_spec("waveshare_epd.epd2in13_V4")
assert spec and "RaspberryPi_JetsonNano" in spec.origin, spec
print(f"install-ghostroll: lgpio {lgpio.LGPIO_PY_VERSION:#x}, driver {spec.origin}")' \
        || die "the hardware stack does not import under $venv"
    rm -rf "$wd"
}

export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${packages[@]}"
if [ -n "$pisugar_deb" ]; then
    # Its postinst asks debconf (model, address): the defaults do, as our drop-in in
    # overlays/ replaces the command line (PiSugar 3, loopback only).
    apt-get install -y --no-install-recommends "$pisugar_deb"
fi

# Files from overlays/, verbatim, root-owned, with explicit modes.
"$here/install-overlays.sh" "$overlays" /
chmod 0755 /usr/lib/ghostroll/card-mount /usr/lib/ghostroll/card-unmount
chown root:root /etc/polkit-1/rules.d/50-ghostroll.rules

# The service user, its groups, its folders.
systemd-sysusers /usr/lib/sysusers.d/ghostroll.conf
for group in gpio spi i2c; do
    getent group "$group" >/dev/null || groupadd --system "$group"
    usermod -aG "$group" ghostroll
done
systemd-tmpfiles --create /usr/lib/tmpfiles.d/ghostroll.conf
chown root:ghostroll /etc/ghostroll /etc/ghostroll/config.toml
chmod 0750 /etc/ghostroll
chmod 0640 /etc/ghostroll/config.toml
# First boot installs ghostroll.toml's SSH keys for this user.
install -d -m 0755 /etc/systemd/system/ghostroll-firstboot.service.d
printf '[Service]\nEnvironment=GHOSTROLL_ADMIN=%s\n' "$admin" \
    > /etc/systemd/system/ghostroll-firstboot.service.d/admin.conf
if id "$admin" >/dev/null 2>&1; then
    usermod -aG ghostroll "$admin"  # doctor/status/sessions over SSH
fi

# The app: a venv that sees apt's systemd and pyudev, holding our wheel and the hardware
# stack (python/hardware.txt).
python3 -m venv --system-site-packages /opt/ghostroll/venv
pip_args=(--no-cache-dir)
if [ -n "$wheelhouse" ]; then
    pip_args+=(--no-index --find-links "$wheelhouse")
fi
/opt/ghostroll/venv/bin/pip install "${pip_args[@]}" "$wheel" "${extras[@]}"
if [ "$hardware" = 1 ]; then
    install_hardware
fi
install -d -m 0755 /usr/share/doc/ghostroll

systemctl enable ghostroll.service ghostroll-firstboot.service ghostroll-verify.service
if [ -n "$pisugar_deb" ]; then
    systemctl enable pisugar-server.service
fi
echo "install-ghostroll: installed for $target (hardware=$hardware)"
