#!/usr/bin/env bash
# GhostRoll developer bootstrap: sets up what a command needs, then runs it.
#
#   ./dev.sh demo            the main job end to end on a generated card (`ghostroll demo`)
#   ./dev.sh test [ARGS]     lint + the whole test suite (pytest ARGS); `test -m vm` runs
#                            the VM system test instead (qemu, 5-9 minutes on 2 cores);
#                            `test -m vm_arm64 tests/vm` the same on an arm64 guest (opt-in)
#   ./dev.sh check-image     build-image.sh --check (the image's files, no build)
#   ./dev.sh ghostroll ARGS  any ghostroll command inside the project venv
#
# Python packages go into ./.venv (created here). Debian packages are installed when
# running as root or with sudo; otherwise the missing ones are named and the tests that
# need them skip with a reason.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
DEMO_APT=(python3-venv fonts-dejavu-core ffmpeg)
TEST_APT=(python3-venv fonts-dejavu-core dosfstools exfatprogs mtools fusefat exfat-fuse
          chromium libsystemd-dev pkg-config shellcheck systemd udev ffmpeg)
VM_APT=(qemu-system-x86 debootstrap fdisk e2fsprogs)  # the VM system test (-m vm)
VM_ARM64_APT=(qemu-system-arm qemu-user-static debootstrap fdisk e2fsprogs)  # -m vm_arm64

log() { printf 'dev.sh: %s\n' "$*" >&2; }

ensure_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        else
            log "missing Debian packages (install them as root): ${missing[*]}"
            return 0
        fi
    fi
    log "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_venv() {
    local extras=$1 stamp="$VENV/.installed-$1"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        log "installing ghostroll[$extras] into $VENV"
        "$VENV/bin/python" -m pip install -q -e ".[$extras]"
        touch "$stamp"
    fi
}

# Waveshare's panel driver, the very wheel the image installs (hash-pinned), for the
# vendor contract test (tests/test_devices_waveshare.py).
ensure_vendor_driver() {
    local req=image/python/waveshare.txt stamp="$VENV/.installed-waveshare"
    if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ]; then
        log "installing Waveshare's driver ($req) into $VENV"
        "$VENV/bin/python" -m pip install -q --no-deps --require-hashes -r "$req"
        touch "$stamp"
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
    demo)
        ensure_apt "${DEMO_APT[@]}"
        ensure_venv demo
        exec "$VENV/bin/ghostroll" demo "$@"
        ;;
    test)
        ensure_apt "${TEST_APT[@]}"
        case " $* " in *" vm "*) ensure_apt "${VM_APT[@]}" ;; esac
        case " $* " in *" vm_arm64 "*) ensure_apt "${VM_ARM64_APT[@]}" ;; esac
        ensure_venv test
        ensure_vendor_driver
        "$VENV/bin/ruff" check ghostroll tests bench
        exec "$VENV/bin/pytest" "$@"
        ;;
    check-image)
        exec ./build-image.sh --check
        ;;
    ghostroll)
        ensure_venv demo
        exec "$VENV/bin/ghostroll" "$@"
        ;;
    *)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
