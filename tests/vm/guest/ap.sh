#!/bin/sh
# Guest-only (VM test), vmtest-ap.service: the second mac80211_hwsim radio becomes a WPA2
# access point (hostapd) with DHCP (dnsmasq) in its own network namespace "ap"; the
# first radio, the appliance's, is soft-blocked as pi-gen leaves an image built without
# a Wi-Fi country (with NetworkManager's WirelessEnabled=false, written into the rootfs).
set -eu
here=$(dirname "$0")
for _ in $(seq 100); do
    [ -e /sys/class/ieee80211/phy1 ] && break
    sleep 0.1
done
[ -e /sys/class/ieee80211/phy1 ] || { echo "ap: no second radio (mac80211_hwsim)" >&2; exit 1; }
ip netns add ap
iw phy phy1 set netns name ap
ns="ip netns exec ap"
$ns ip link set lo up
dev=$($ns ls /sys/class/net | grep -v '^lo$' | head -1)
$ns ip addr add 192.168.77.1/24 dev "$dev"
sed "s/@DEV@/$dev/" "$here/hostapd.conf" > /run/vmtest-hostapd.conf
chmod 0600 /run/vmtest-hostapd.conf
$ns hostapd -B -P /run/vmtest-hostapd.pid /run/vmtest-hostapd.conf
$ns dnsmasq --interface="$dev" --bind-interfaces --port=0 --user=nobody --group=nogroup \
    --dhcp-range=192.168.77.50,192.168.77.99,1h --pid-file=/run/vmtest-dnsmasq.pid \
    --dhcp-leasefile=/run/vmtest-dnsmasq.leases
for soft in /sys/class/ieee80211/phy0/rfkill*/soft; do
    echo 1 > "$soft"
done
echo "ap: $dev in namespace ap, phy0 soft-blocked"
