#!/bin/bash -e
# pi-gen, on the host: put the wheel, overlays, package lists and the install script where
# the chroot step can reach them. build-image.sh assembled them into files/.
install -d -m 0755 "${ROOTFS_DIR}/tmp/ghostroll-install"
cp -a files/. "${ROOTFS_DIR}/tmp/ghostroll-install/"
