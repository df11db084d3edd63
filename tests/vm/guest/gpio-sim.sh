#!/bin/sh
# Guest-only (VM test), vmtest-gpiosim.service: load the out-of-tree gpio-sim and make one
# 54-line chip (a Pi's GPIO header numbering, BCM 0-53) as /dev/gpiochip0 through configfs.
set -eu
here=$(dirname "$0")
# arm64 guests (-M virt) have a PL061 as gpiochip0, its line 3 the power key of
# gpio-keys: free chip 0 for the simulated header (the Pi's is gpiochip0 too).
for drv in /sys/bus/platform/drivers/gpio-keys /sys/bus/amba/drivers/pl061_gpio; do
    [ -d "$drv" ] || continue
    for dev in "$drv"/*; do
        [ -L "$dev" ] && [ "$(basename "$dev")" != module ] \
            && basename "$dev" > "$drv/unbind"
    done
done
insmod "$here/gpio-sim-oot.ko"
cfg=/sys/kernel/config/gpio-sim/pi
mkdir "$cfg" "$cfg/gpio-bank0"
echo 54 > "$cfg/gpio-bank0/num_lines"
echo 1 > "$cfg/live"
udevadm settle
chip=$(cat "$cfg/gpio-bank0/chip_name")
echo "gpio-sim: $chip ($(cat "$cfg/dev_name")), $(ls -l "/dev/$chip")"
