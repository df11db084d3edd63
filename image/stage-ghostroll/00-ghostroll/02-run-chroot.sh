#!/bin/bash -e
# pi-gen, inside the image: the same install script the VM system test uses.
bash /tmp/ghostroll-install/install-ghostroll.sh --target pios \
    --wheel "$(ls /tmp/ghostroll-install/ghostroll-*.whl)" \
    --overlays /tmp/ghostroll-install/overlays --admin "${FIRST_USER_NAME}" \
    --pisugar-deb /tmp/ghostroll-install/pisugar-server.deb
rm -rf /tmp/ghostroll-install
