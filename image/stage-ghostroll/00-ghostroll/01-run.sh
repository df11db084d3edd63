#!/bin/bash -e
# pi-gen, on the host: put the wheel, overlays, package lists and the install script where
# the chroot step can reach them. build-image.sh assembled them into files/. Not under
# /tmp: pi-gen may mount a tmpfs there later, hiding what was staged.
install -d -m 0700 "${ROOTFS_DIR}/var/cache/ghostroll-install"
cp -r files/. "${ROOTFS_DIR}/var/cache/ghostroll-install/"
