#!/bin/bash
# Guest rootfs, in the chroot (VM test only): build the kernel's gpio-sim driver out of
# tree from Debian's own linux-source, for the rootfs's kernel, against its headers.
# Debian's amd64 kernel has GPIO_SIM off, and IRQ_SIM (which gpio-sim needs) unset, so
# kernel/irq/irq_sim.c is compiled into the same module; it calls the unexported
# irq_to_desc() once, replaced by the exported generic_handle_irq_safe() (same handler,
# set by irq_sim's own irq_set_handler(handle_simple_irq)).
#
#   build-gpio-sim.sh KERNEL_VERSION OUT_DIR
set -euo pipefail
kver=$1 out=$2
series=$(echo "$kver" | cut -d. -f1,2)
export DEBIAN_FRONTEND=noninteractive
tools=(gcc make libc6-dev xz-utils "linux-headers-$kver" "linux-source-$series")
apt-get install -y -qq --no-install-recommends "${tools[@]}" >/dev/null
work=$(mktemp -d)
tar -xJf "/usr/src/linux-source-$series.tar.xz" -C "$work" \
    "linux-source-$series/Makefile" "linux-source-$series/drivers/gpio/gpio-sim.c" \
    "linux-source-$series/kernel/irq/irq_sim.c"
src="$work/linux-source-$series"
sublevel=$(sed -n 's/^SUBLEVEL = //p' "$src/Makefile")
case "$kver" in
    "$series.$sublevel"[+-]*) ;;
    *) echo "build-gpio-sim: linux-source is $series.$sublevel, the kernel $kver" >&2; exit 1 ;;
esac
mkdir "$work/build"
cp "$src/drivers/gpio/gpio-sim.c" "$src/kernel/irq/irq_sim.c" "$work/build/"
grep -q 'handle_simple_irq(irq_to_desc(irqnum));' "$work/build/irq_sim.c"
sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq_safe(irqnum);/' \
    "$work/build/irq_sim.c"
printf 'obj-m := gpio-sim-oot.o\ngpio-sim-oot-y := gpio-sim.o irq_sim.o\n' > "$work/build/Makefile"
make -s -C "/usr/src/linux-headers-$kver" M="$work/build" modules
install -m 0644 "$work/build/gpio-sim-oot.ko" "$out/"
rm -rf "$work"
apt-get purge -y -qq --autoremove "${tools[@]}" >/dev/null
echo "build-gpio-sim: $out/gpio-sim-oot.ko for $kver"
