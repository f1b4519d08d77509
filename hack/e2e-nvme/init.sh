#!/bin/sh
# /init of the e2e-nvme guest (PID 1, busybox ash). It prepares what a Kubernetes node with an NVMe/TCP
# initiator has (modules, configfs, /etc/nvme/hostnqn), runs the e2e test binary, prints
# "E2E-RESULT: PASS|FAIL" on the serial console and powers off. Everything the lane proves happens in the
# test binary; this script only sets the stage and reports.
export PATH=/usr/sbin:/sbin:/usr/bin:/bin
set -u

up() { cut -d' ' -f1 /proc/uptime; }
log() { echo "[init $(up)s] $*"; }
RESULT=FAIL
finish() {
    echo "E2E-RESULT: $RESULT"
    log "memory: $(grep -E 'MemTotal|MemAvailable' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
    if [ "$RESULT" != PASS ]; then
        echo "----- dmesg (tail) -----"
        dmesg | tail -n 80
    fi
    log "poweroff"
    sync
    poweroff -f
    sleep 10
}
fail() { echo "E2E-STEP-FAIL: $*"; finish; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var/lib
# The simulator's pool files and the volumes' mount points live in RAM. Volumes are sparse files, so the
# size caps what tests write, not what the pool may promise.
mount -t tmpfs -o size=1200m tmpfs /run
mount -t tmpfs -o size=64m tmpfs /tmp
ip link set lo up
# Settings of this boot, from the kernel command line (see run_vm in e2e-nvme.sh).
E2E_SIM=${E2E_SIM:-binary}
E2E_RUN=${E2E_RUN:-}
log "kernel $(uname -r), $(nproc) cpu(s)"

for ko in $(cat /etc/modules.list); do
    case "$ko" in
    # CPU-specific accelerators come in as soft dependencies; the generic code is built in, so one the
    # virtual CPU cannot run is no failure.
    */arch/x86/crypto/*) insmod "$ko" 2>/dev/null || log "skipped $(basename "$ko"): not for this CPU" ;;
    *) insmod "$ko" || fail "insmod $ko" ;;
    esac
done
grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs configfs /sys/kernel/config || fail "mount configfs"
[ -d /sys/kernel/config/nvmet/subsystems ] || fail "no nvmet configfs after loading the modules"
log "modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
# Keep the kernel's own messages off the console: the test output is what the host reads. dmesg is dumped
# on failure.
dmesg -n 1

# What the node DaemonSet mounts from the host: a fixed identity for this "node".
echo "nqn.2014-08.org.nvmexpress:uuid:5a1e0000-e2e0-4e2e-9000-000000000001" > /etc/nvme/hostnqn
echo "5a1e0000-e2e0-4e2e-9000-000000000001" > /etc/nvme/hostid
# Full paths: busybox ash prefers its own applets (mke2fs among them) to PATH.
log "$(/usr/sbin/nvme version | head -n 1), $(/usr/sbin/mkfs.xfs -V), $(/usr/sbin/mke2fs -V 2>&1 | head -n 1)"

# The test binary runs the simulator (with the kernel nvmet exporter) and `rds-csi --mode=all
# --nvme-initiator=nvme-cli` itself, so it owns their lifetimes and logs. E2E_SIM=binary runs /bin/rds-sim
# as a process instead of the simulator package inside the test binary; that needs rds-sim to export
# through nvmet on its own (when /sys/kernel/config/nvmet exists).
set -- -test.v -test.count=1 -test.timeout=7m -e2e.sim="$E2E_SIM"
[ -n "$E2E_RUN" ] && set -- "$@" -test.run="$E2E_RUN"
log "running /bin/e2e.test $*"
mkdir -p /run/e2e
cd /run/e2e
if /bin/e2e.test "$@"; then
    RESULT=PASS
fi
log "e2e.test finished: $RESULT"
finish
