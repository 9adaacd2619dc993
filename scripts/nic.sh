#!/usr/bin/env bash
# Hands a NIC to DPDK (vfio-pci) and back, by its kernel interface name.
#
#   bash scripts/nic.sh status              what DPDK can use, and what this script bound
#   bash scripts/nic.sh bind IFACE          IFACE's PCI device to vfio-pci; `zcap -i IFACE` still works
#   bash scripts/nic.sh unbind IFACE        back to the kernel driver it had
#
# It refuses an interface that has an IP address or carries a route (the
# machine may be reached through it), one that is not a PCI NIC, and a
# NVIDIA/Mellanox NIC (mlx5 and mlx4 need no binding: DPDK drives them
# beside the kernel). Exit status: 0 done, 1 refused or failed, 2 usage.
set -euo pipefail

NOTES=/run/zcap/bound-interfaces   # NAME PCI DRIVER per line; zcap reads it for -i NAME
DEVBIND=${DPDK_DEVBIND:-dpdk-devbind.py}

say() { echo "nic.sh: $*" >&2; }
refuse() { say "$*"; exit 1; }
usage() { say "usage: nic.sh status | bind IFACE | unbind IFACE"; exit 2; }

# Addresses other than IPv6 link-local ones (which every IPv6 interface has).
addresses() { ip -o addr show dev "$1" 2>/dev/null | awk '$3 != "inet6" || $4 !~ /^fe80:/ {print $4}'; }
# Routes other than link-local and multicast ones.
routes() {
    { ip -4 route show dev "$1" 2>/dev/null; ip -6 route show dev "$1" 2>/dev/null; } |
        awk '$1 !~ /^(fe80::|ff00::|multicast)/ {print}'
}

check_can_bind() {
    local iface=$1
    [[ -e /sys/class/net/$iface ]] || refuse "$iface: no such interface"
    local addrs; addrs=$(addresses "$iface")
    [[ -z $addrs ]] || refuse "$iface has an IP address ($(echo $addrs)): refusing to take it from the kernel"
    local carried; carried=$(routes "$iface")
    [[ -z $carried ]] || refuse "$iface carries a route ($(echo "$carried" | head -1)): refusing to take it from the kernel"
    [[ ! -e /sys/class/net/$iface/master ]] \
        || refuse "$iface belongs to $(basename "$(readlink "/sys/class/net/$iface/master")") (a bond or bridge): refusing to take it from the kernel"
    local uppers; uppers=$(cd "/sys/class/net/$iface" && ls -d upper_* 2>/dev/null | sed 's/^upper_//' || true)
    [[ -z $uppers ]] || refuse "$iface carries $(echo $uppers) (a VLAN or other upper device): refusing to take it from the kernel"
    local device=/sys/class/net/$iface/device
    [[ -e $device/subsystem && $(basename "$(readlink "$device/subsystem")") == pci ]] \
        || refuse "$iface is not a PCI NIC (a virtual interface): zcap -i $iface reads it through net_af_packet"
    local driver; driver=$(basename "$(readlink "$device/driver")")
    case $driver in
        mlx5_core|mlx4_core) refuse "$iface ($driver) needs no binding: DPDK's mlx driver opens it beside the kernel (zcap -i $iface)";;
    esac
}

bind() {
    local iface=$1
    check_can_bind "$iface"
    local pci driver
    pci=$(basename "$(readlink "/sys/class/net/$iface/device")")
    driver=$(basename "$(readlink "/sys/class/net/$iface/device/driver")")
    modprobe vfio-pci || refuse "cannot load vfio-pci (is the IOMMU on? intel_iommu=on iommu=pt)"
    ip link set dev "$iface" down
    if ! "$DEVBIND" --bind=vfio-pci "$pci"; then
        ip link set dev "$iface" up || true
        refuse "dpdk-devbind.py could not bind $pci ($iface is up again)"
    fi
    mkdir -p "$(dirname "$NOTES")"
    { grep -v "^$iface " "$NOTES" 2>/dev/null || true; echo "$iface $pci $driver"; } > "$NOTES.new"
    mv "$NOTES.new" "$NOTES"
    say "$iface ($pci, was $driver) is on vfio-pci: zcap -i $iface opens it through DPDK"
}

unbind() {
    local iface=$1 pci driver
    read -r _ pci driver < <(grep "^$iface " "$NOTES" 2>/dev/null) || refuse "$iface was not bound by nic.sh ($NOTES)"
    "$DEVBIND" --bind="$driver" "$pci" || refuse "dpdk-devbind.py could not give $pci back to $driver"
    grep -v "^$iface " "$NOTES" > "$NOTES.new" || true
    mv "$NOTES.new" "$NOTES"
    say "$pci is back on $driver"
}

status() {
    "$DEVBIND" --status-dev net 2>/dev/null || say "dpdk-devbind.py is missing (apt-get install dpdk)"
    if [[ -s $NOTES ]]; then
        echo
        echo "Bound by nic.sh (NAME PCI KERNEL-DRIVER):"
        cat "$NOTES"
    fi
}

case ${1:-} in
    status) status;;
    bind) [[ $# -eq 2 ]] || usage; bind "$2";;
    unbind) [[ $# -eq 2 ]] || usage; unbind "$2";;
    *) usage;;
esac
