#!/bin/sh
# The baseline the driver's NodeStage is timed against in the e2e-nvme guest: what an administrator would do
# by hand to put a blank NVMe/TCP volume into use, and nothing more (no checks, no idempotency).
#   e2e-bare-stage.sh up NQN ADDR PORT DIR     nvme connect, wait for the device, mkfs.ext4, mount on DIR
#   e2e-bare-stage.sh down NQN DIR             umount DIR, nvme disconnect
set -eu

# busybox ash runs its own applets (mount, umount) ahead of PATH; the baseline must run the same tools
# the driver runs, which the lane installs in /usr/sbin.
tool() { if [ -x "/usr/sbin/$1" ]; then echo "/usr/sbin/$1"; else echo "$1"; fi; }
MOUNT=$(tool mount) UMOUNT=$(tool umount) MKFS=$(tool mkfs.ext4) NVME=$(tool nvme)

# device NQN: the block device of the NQN's namespace, found through sysfs (skipping hidden multipath
# path nodes nvmeXcYnZ), or nothing yet.
device() {
    for b in /sys/block/nvme*n*; do
        case "${b##*/}" in *c*) continue ;; esac
        [ "$(cat "$b/device/subsysnqn" 2>/dev/null)" = "$1" ] && echo "/dev/${b##*/}" && return
    done
    return 0
}

case "$1" in
up)
    nqn=$2 addr=$3 port=$4 dir=$5
    "$NVME" connect -t tcp -a "$addr" -s "$port" -n "$nqn" >/dev/null
    dev=$(device "$nqn")
    i=0
    while [ -z "$dev" ] || [ ! -b "$dev" ]; do
        i=$((i + 1))
        [ $i -le 1000 ] || { echo "no device for $nqn after 10s" >&2; exit 1; }
        usleep 10000
        dev=$(device "$nqn")
    done
    "$MKFS" -q -F "$dev"
    mkdir -p "$dir"
    "$MOUNT" -t ext4 "$dev" "$dir"
    echo "$dev"
    ;;
down)
    "$UMOUNT" "$3"
    "$NVME" disconnect -n "$2" >/dev/null
    ;;
*)
    echo "usage: $0 up NQN ADDR PORT DIR | down NQN DIR" >&2
    exit 2
    ;;
esac
