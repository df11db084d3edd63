#!/bin/bash -e
# pi-gen, on the host: SPI for the e-ink panel, I2C for the PiSugar battery.
config="${ROOTFS_DIR}/boot/firmware/config.txt"
for line in "dtparam=spi=on" "dtparam=i2c_arm=on"; do
    grep -qxF "$line" "$config" || echo "$line" >> "$config"
done
