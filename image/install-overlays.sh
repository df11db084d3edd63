#!/bin/bash
# Copy overlays/ into a root filesystem, as install-ghostroll.sh does:
#
#   install-overlays.sh OVERLAYS [ROOT]
#
# Every installed file and new directory is root-owned and not group/world-writable,
# whoever owns the checkout (`cp -a` as root kept the checkout owner's uid on /, /etc,
# /usr, ... and systemd-tmpfiles then refused "unsafe path transition"). Directories
# that already exist keep their owner and mode.
set -euo pipefail
src=${1:?usage: install-overlays.sh OVERLAYS [ROOT]}
root=${2:-/}
[ -d "$src" ] || { echo "install-overlays: no folder $src" >&2; exit 1; }
tar -C "$src" --owner=0 --group=0 --numeric-owner --mode=go-w -cf - . \
    | tar -C "$root" -xpf - --no-overwrite-dir --numeric-owner
