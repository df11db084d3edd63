#!/bin/bash
# Install GhostRoll into a root filesystem, from inside it (chroot or a VM).
# The ONE install script: the pi-gen stage and the VM system test both run it.
#
#   install-ghostroll.sh --target pios|debian [--no-hardware] [--admin USER] \
#       --wheel /path/ghostroll-*.whl --overlays /path/overlays [--waveshare-commit SHA] \
#       [--wheelhouse DIR] [--extra PACKAGE]... [--pisugar-deb FILE]
#
# --wheelhouse: install Python dependencies from wheels downloaded beforehand (offline,
# reproducible); --extra: more Python packages to install into the venv (tests);
# --pisugar-deb: the battery daemon's package (build-image.sh fetches it, image/PISUGAR_PIN).
#
# pios:   Raspberry Pi OS (arm64): gpiozero/lgpio/spidev from apt, Waveshare driver.
# debian: plain Debian (the VM test): no Pi packages; --no-hardware skips the panel driver.
set -euo pipefail

target="" wheel="" overlays="" admin="admin" hardware=1 wheelhouse="" pisugar_deb=""
extras=()
# Waveshare e-Paper repository, pinned (RaspberryPi_JetsonNano/python, installed --no-deps:
# its setup.py guesses the board at install time and picks the wrong dependency in a chroot)
waveshare_repo="https://github.com/waveshareteam/e-Paper"
waveshare_commit="${WAVESHARE_COMMIT:-60ff8c214e4a0611cee753e5c3b25261f29069bb}"

die() { echo "install-ghostroll: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=$2; shift 2 ;;
        --wheel) wheel=$2; shift 2 ;;
        --overlays) overlays=$2; shift 2 ;;
        --admin) admin=$2; shift 2 ;;
        --no-hardware) hardware=0; shift ;;
        --waveshare-commit) waveshare_commit=$2; shift 2 ;;
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

# Package lists per target live in packages/*.txt beside this script (pi-gen's
# 00-packages is assembled from the same files by build-image.sh).
here=$(cd "$(dirname "$0")" && pwd)
case "$target" in
    pios|debian) ;;
    *) die "unknown target '$target' (pios or debian)" ;;
esac
mapfile -t packages < <(cat "$here/packages/common.txt" "$here/packages/$target.txt" \
                        | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$')

export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${packages[@]}"
if [ -n "$pisugar_deb" ]; then
    # Its postinst asks debconf (model, address): the defaults do, as our drop-in in
    # overlays/ replaces the command line (PiSugar 3, loopback only).
    apt-get install -y --no-install-recommends "$pisugar_deb"
fi

# Files from overlays/, verbatim, with explicit modes.
cp -a "$overlays"/. /
chmod 0755 /usr/lib/ghostroll/card-mount /usr/lib/ghostroll/card-unmount
chown root:root /etc/polkit-1/rules.d/50-ghostroll.rules

# The service user, its groups, its folders.
systemd-sysusers /usr/lib/sysusers.d/ghostroll.conf
for group in gpio spi i2c; do
    getent group "$group" >/dev/null || groupadd --system "$group"
    usermod -aG "$group" ghostroll
done
systemd-tmpfiles --create /usr/lib/tmpfiles.d/ghostroll.conf || true
chown root:ghostroll /etc/ghostroll /etc/ghostroll/config.toml
chmod 0750 /etc/ghostroll
chmod 0640 /etc/ghostroll/config.toml
if id "$admin" >/dev/null 2>&1; then
    usermod -aG ghostroll "$admin"  # doctor/status/sessions over SSH
fi

# The app: a venv that sees apt's gpiozero/lgpio/spidev/systemd, holding our wheel.
python3 -m venv --system-site-packages /opt/ghostroll/venv
pip_args=(--no-cache-dir)
if [ -n "$wheelhouse" ]; then
    pip_args+=(--no-index --find-links "$wheelhouse")
fi
/opt/ghostroll/venv/bin/pip install "${pip_args[@]}" "$wheel" "${extras[@]}"
if [ "$hardware" = 1 ]; then
    tmp=$(mktemp -d)
    git clone --quiet --filter=blob:none "$waveshare_repo" "$tmp/e-Paper"
    git -C "$tmp/e-Paper" checkout --quiet "$waveshare_commit"
    /opt/ghostroll/venv/bin/pip install --no-cache-dir --no-deps \
        "$tmp/e-Paper/RaspberryPi_JetsonNano/python"
    rm -rf "$tmp"
fi
install -d -m 0755 /usr/share/doc/ghostroll

systemctl enable ghostroll.service ghostroll-firstboot.service ghostroll-verify.service
if [ -n "$pisugar_deb" ]; then
    systemctl enable pisugar-server.service
fi
echo "install-ghostroll: installed for $target (hardware=$hardware)"
