#!/bin/bash
# Build the GhostRoll Raspberry Pi image with pi-gen (pinned in image/PIGEN_PIN).
#
#   ./build-image.sh --ssh-key ~/.ssh/id_ed25519.pub [--admin admin] [--pigen DIR]
#   ./build-image.sh --check      validate everything that needs no build and no network
#   ./build-image.sh --print-config --ssh-key FILE [--admin NAME]   pi-gen's config, no password
#
# The full build needs root, Docker or pi-gen's host dependencies, the Raspberry Pi apt
# archive and GitHub. --check needs shellcheck and systemd-analyze (and runs in CI).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tree=${GHOSTROLL_TREE:-$here}     # the tree to check (tests point it at a modified copy)
admin=admin ssh_key="" pigen_dir=${PIGEN_DIR:-} check=0 print_config=0

die() { echo "build-image: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing host tool '$1' ($2)"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --check) check=1; shift ;;
        --print-config) print_config=1; shift ;;
        --ssh-key) ssh_key=$2; shift 2 ;;
        --admin) admin=$2; shift 2 ;;
        --pigen) pigen_dir=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

# ---------------------------------------------------------------- checks

check_shell() {
    need shellcheck "apt-get install shellcheck"
    local scripts=()
    mapfile -t scripts < <(cd "$tree" && { ls build-image.sh dev.sh .ci/run; \
        find image overlays/usr/lib/ghostroll -type f \( -name '*.sh' -o -path '*/ghostroll/card-*' -o -path '*/ghostroll/archive-*' \); })
    (cd "$tree" && shellcheck -x "${scripts[@]}") || die "shellcheck found problems"
    echo "ok: shellcheck (${#scripts[@]} scripts)"
}

check_modes() {
    local bad=()
    while IFS= read -r f; do
        [ -x "$tree/$f" ] || bad+=("$f")
    done < <(cd "$tree" && find image/stage-ghostroll -name '*run*.sh' -o -name prerun.sh \
             && echo image/install-ghostroll.sh && echo image/install-overlays.sh \
             && echo build-image.sh \
             && echo overlays/usr/lib/ghostroll/card-mount \
             && echo overlays/usr/lib/ghostroll/card-unmount \
             && echo overlays/usr/lib/ghostroll/archive-mount \
             && echo overlays/usr/lib/ghostroll/archive-unmount)
    # pi-gen silently skips a run script that is not executable
    [ ${#bad[@]} -eq 0 ] || die "not executable: ${bad[*]}"
    [ -f "$tree/image/stage-ghostroll/EXPORT_IMAGE" ] || die "stage has no EXPORT_IMAGE"
    echo "ok: run-script modes"
}

check_units() {
    need systemd-analyze "part of systemd"
    local root
    root=$(mktemp -d)
    trap 'rm -rf "$root"' RETURN
    cp -a "$tree/overlays/." "$root/"
    mkdir -p "$root/usr/lib/systemd" "$root/opt/ghostroll/venv/bin" "$root/usr/bin"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
    for stub in /opt/ghostroll/venv/bin/ghostroll /usr/bin/pisugar-server; do
        printf '#!/bin/sh\n' > "$root$stub"
        chmod 0755 "$root$stub"
    done
    local units=() out
    for unit in "$root"/etc/systemd/system/*.service; do
        name=$(basename "$unit")
        units+=("${name/@.service/@sda1.service}")
    done
    # unknown keys and bad values only warn and still exit 0: fail on any output
    out=$(cd "$root" && systemd-analyze verify --root="$root" "${units[@]}" 2>&1) \
        || die "systemd-analyze verify failed: $out"
    [ -z "$out" ] || die "systemd-analyze verify complained: $out"
    echo "ok: systemd-analyze verify (${units[*]})"
}

check_tree() {
    local f
    for f in etc/udev/rules.d/80-ghostroll.rules etc/systemd/system/ghostroll.service \
             etc/systemd/system/ghostroll-ingest@.service \
             etc/systemd/system/ghostroll-mount@.service \
             etc/systemd/system/ghostroll-firstboot.service \
             etc/polkit-1/rules.d/50-ghostroll.rules etc/ghostroll/config.toml \
             usr/lib/sysusers.d/ghostroll.conf usr/lib/tmpfiles.d/ghostroll.conf \
             usr/lib/ghostroll/card-mount usr/lib/ghostroll/card-unmount \
             etc/udev/rules.d/81-ghostroll-archive.rules \
             etc/systemd/system/ghostroll-archive@.service \
             usr/lib/ghostroll/archive-mount usr/lib/ghostroll/archive-unmount \
             etc/modules-load.d/ghostroll.conf etc/ssh/sshd_config.d/ghostroll.conf \
             etc/cloud/cloud-init.disabled; do
        [ -f "$tree/overlays/$f" ] || die "overlays/$f is missing"
    done
    grep -q 'SYSTEMD_WANTS}+="ghostroll-ingest@%k.service"' \
        "$tree/overlays/etc/udev/rules.d/80-ghostroll.rules" || die "udev rule lost SYSTEMD_WANTS"
    ! grep -v '^#' "$tree/overlays/etc/udev/rules.d/80-ghostroll.rules" | grep -q 'RUN+=' \
        || die "the udev rule must not RUN+= work"
    # shellcheck disable=SC2016  # the unit's own ${...}, not ours
    grep -q -- '--admin ${GHOSTROLL_ADMIN}' \
        "$tree/overlays/etc/systemd/system/ghostroll-firstboot.service" \
        || die "ghostroll-firstboot.service must pass --admin (the build's admin user)"
    ! grep -q '^PUBKEY_ONLY_SSH=1' "$tree/image/config" \
        || die "image/config: PUBKEY_ONLY_SSH=1 breaks --ssh-key /dev/null builds"
    ! grep -v '^#' "$tree/overlays/usr/lib/ghostroll/card-mount" | grep -q 'fsck' \
        || die "card-mount must never fsck a camera card"
    for f in common.txt pios.txt debian.txt; do
        [ -f "$tree/image/packages/$f" ] || die "image/packages/$f is missing"
    done
    check_python_pins
    (   # shellcheck source=image/PISUGAR_PIN
        . "$tree/image/PISUGAR_PIN"
        case "$PISUGAR_URL" in https://*_arm64.deb) ;; *) exit 1 ;; esac
        [ -z "$PISUGAR_SHA256" ] || [[ "$PISUGAR_SHA256" =~ ^[0-9a-f]{64}$ ]]
    ) || die "image/PISUGAR_PIN: needs an https URL of an arm64 .deb and an empty or full sha256"
    echo "ok: overlay tree"
}

check_python_pins() {
    # The image's hardware stack: every requirement pinned to a version and a sha256, and
    # the contract test's copy of the Waveshare line equal to the image's.
    local req="$tree/image/python/hardware.txt" line
    [ -f "$req" ] || die "image/python/hardware.txt is missing"
    while IFS= read -r line; do
        [[ "$line" =~ ^[A-Za-z0-9_.-]+==[^\ ]+\ --hash=sha256:[0-9a-f]{64}$ ]] \
            || die "image/python/hardware.txt: not pinned by version and sha256: $line"
    done < <(grep -v -e '^#' -e '^$' "$req")
    grep -qxF "$(grep '^waveshare-epaper==' "$tree/image/python/waveshare.txt")" "$req" \
        || die "image/python/waveshare.txt (the contract test) differs from hardware.txt"
    ! grep -v '^#' "$tree/image/install-ghostroll.sh" | grep -q 'git clone' \
        || die "install-ghostroll.sh must not fetch from GitHub"
}

check_secrets() {
    local hits=""
    if files=$(cd "$tree" && git ls-files 2>/dev/null); then
        hits=$(cd "$tree" && printf '%s\n' "$files" | tr '\n' '\0' | xargs -0 grep -l -E \
            'BEGIN (RSA|OPENSSH|EC|DSA) PRIVATE KEY|^FIRST_USER_PASS=.+|aws_secret_access_key *= *[A-Za-z0-9/+]{30,}' \
            2>/dev/null) || true
    fi
    [ -z "$hits" ] || die "possible secrets committed: $hits"
    echo "ok: no committed secrets"
}

if [ "$check" = 1 ]; then
    check_tree
    check_modes
    check_shell
    check_units
    check_secrets
    echo "build-image --check: all good"
    exit 0
fi

# ---------------------------------------------------------------- build

[ -n "$ssh_key" ] || die "give --ssh-key FILE (the admin logs in with keys only), or build with
  --ssh-key /dev/null only if ghostroll.toml on the boot partition will bring one"
[ -r "$ssh_key" ] || die "cannot read SSH key $ssh_key"

# pi-gen's config: image/config, the admin, the password, the key (when there is one).
pigen_config() {
    local password=$1 key
    key=$(cat "$ssh_key")
    cat "$here/image/config"
    echo "FIRST_USER_NAME=$admin"
    echo "FIRST_USER_PASS='$password'"
    # pi-gen stops on PUBKEY_SSH_FIRST_USER without a key; an empty one is simply left out
    [ -z "$key" ] || echo "PUBKEY_SSH_FIRST_USER='$key'"
    echo "STAGE_LIST='stage0 stage1 stage2 $work/stage-ghostroll'"
}
work="$here/build"
if [ "$print_config" = 1 ]; then
    pigen_config "<generated at build time>"
    exit 0
fi
need git "apt-get install git"
need python3 "apt-get install python3"
[ "$(id -u)" -eq 0 ] || die "pi-gen builds as root (sudo ./build-image.sh ...)"
need curl "apt-get install curl"
# shellcheck source=image/PIGEN_PIN
. "$here/image/PIGEN_PIN"
# shellcheck source=image/PISUGAR_PIN
. "$here/image/PISUGAR_PIN"

mkdir -p "$work"
python3 -m pip wheel --no-deps -w "$work/dist" "$here" >/dev/null
wheel=$(find "$work/dist" -name 'ghostroll-*.whl' -newer "$here/pyproject.toml" | head -1)
[ -n "$wheel" ] || die "the wheel was not built"

if [ -z "$pigen_dir" ]; then
    pigen_dir="$work/pi-gen"
    [ -d "$pigen_dir/.git" ] || git clone --quiet "$PIGEN_REPO" "$pigen_dir"
    git -C "$pigen_dir" fetch --quiet origin "$PIGEN_TAG"
    git -C "$pigen_dir" checkout --quiet "$PIGEN_COMMIT"
fi
[ "$(git -C "$pigen_dir" rev-parse HEAD)" = "$PIGEN_COMMIT" ] \
    || echo "build-image: warning: $pigen_dir is not at the pinned $PIGEN_COMMIT" >&2

stage="$work/stage-ghostroll"
rm -rf "$stage"
cp -a "$here/image/stage-ghostroll" "$stage"
cat "$here/image/packages/common.txt" "$here/image/packages/pios.txt" \
    | sed 's/#.*//' > "$stage/00-ghostroll/00-packages"
files="$stage/00-ghostroll/files"
mkdir -p "$files/packages"
cp "$wheel" "$files/"
cp -a "$here/overlays" "$files/overlays"
cp "$here/image/install-ghostroll.sh" "$here/image/install-overlays.sh" "$files/"
cp "$here/image/packages/"*.txt "$files/packages/"
cp -r "$here/image/python" "$files/python"
mkdir -p "$files/overlays/usr/share/doc/ghostroll"
cp "$here"/docs/*.md "$files/overlays/usr/share/doc/ghostroll/"
curl -fsSL --proto '=https' -o "$files/pisugar-server.deb" "$PISUGAR_URL" \
    || die "cannot fetch pisugar-server from $PISUGAR_URL"
got=$(sha256sum "$files/pisugar-server.deb" | cut -d' ' -f1)
if [ -n "$PISUGAR_SHA256" ]; then
    [ "$got" = "$PISUGAR_SHA256" ] \
        || die "pisugar-server.deb has sha256 $got, image/PISUGAR_PIN says $PISUGAR_SHA256"
else
    echo "build-image: warning: pisugar-server is pinned by version only; record" \
         "PISUGAR_SHA256=$got in image/PISUGAR_PIN" >&2
fi
touch "$pigen_dir/stage2/SKIP_IMAGES"  # only our stage exports an image

password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
config="$work/pigen-config"
(umask 077 && pigen_config "$password" > "$config")
echo "build-image: the admin password for console login (SSH is key-only), shown once:"
echo "    $admin / $password"
(cd "$pigen_dir" && ./build.sh -c "$config")
rm -f "$config"
# pi-gen names it image_<date>-<IMG_NAME>.img.xz
echo "build-image: image in $pigen_dir/deploy/:" "$pigen_dir"/deploy/image_*-ghostroll.img.xz
