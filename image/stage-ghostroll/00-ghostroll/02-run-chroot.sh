#!/bin/bash -e
# pi-gen, inside the image: the same install script the VM system test uses.
stage=/var/cache/ghostroll-install
bash "$stage/install-ghostroll.sh" --target pios \
    --wheel "$(ls "$stage"/ghostroll-*.whl)" \
    --overlays "$stage/overlays" --admin "${FIRST_USER_NAME}" \
    --pisugar-deb "$stage/pisugar-server.deb"
rm -rf "$stage"
