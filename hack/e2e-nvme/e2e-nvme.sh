#!/bin/bash
# hack/e2e-nvme/e2e-nvme.sh: the e2e-nvme lane. The node plugin against a REAL kernel NVMe/TCP target and
# initiator, inside a QEMU VM.
#
# This machine's kernel has no NVMe/TCP and cannot load modules, so the lane boots Debian's cloud kernel
# (which has nvmet, nvmet-tcp, nvme-tcp and nvme-fabrics as modules) under QEMU with a busybox initramfs
# holding static builds of rds-csi, rds-sim and the test/e2e test binary, plus nvme-cli, mkfs/grow tools and
# util-linux's mount and blkid. The guest's /init (init.sh) loads the modules and runs the test binary, which
# runs the simulator with its nvmet exporter and the driver in `all` mode with the nvme-cli initiator, and
# drives the CSI API over the driver's unix socket. The guest prints E2E-RESULT: PASS|FAIL and powers off.
#
# Usage: hack/e2e-nvme/e2e-nvme.sh [all|deps|kernel|build|initramfs|run]   (make e2e-nvme runs `all`)
#   deps       apt-get install the host packages (only what is missing; needs root)
#   kernel     fetch and unpack the kernel .deb, cached by package version under $CACHE
#   build      static rds-csi, rds-sim and the e2e test binary
#   initramfs  pack the guest
#   run        boot it and judge the serial log
# Env: RDS_CSI_CACHE (default ~/.cache/rds-csi), OUT (default <repo>/build/e2e-nvme), SMP (1), MEM (2048),
#      TIMEOUT (seconds for one boot, 480), ACCEL (auto|tcg|kvm), E2E_RUN (a -test.run regexp, default all),
#      E2E_SIM (inprocess|binary: how the guest runs the simulator, see init.sh).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$REPO/build/e2e-nvme}
CACHE=${RDS_CSI_CACHE:-$HOME/.cache/rds-csi}/e2e-nvme
# 1 vCPU was faster and steadier than 2 under TCG on a shared 2-core host (the recipe measured both).
SMP=${SMP:-1}
MEM=${MEM:-2048}
TIMEOUT=${TIMEOUT:-480}
ACCEL=${ACCEL:-auto}
E2E_RUN=${E2E_RUN:-}
E2E_SIM=${E2E_SIM:-binary}
# Modules the guest loads, in this order after their dependencies (ext4 and nvme-core are built in).
MODULES="configfs nvmet nvmet-tcp nvme-fabrics nvme-tcp loop xfs"
mkdir -p "$OUT"

stamp() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(stamp)" 'BEGIN{printf "%.1fs", b-a}'; }
say() { echo "=== e2e-nvme [$(date +%T)] $*"; }
die() { echo "=== e2e-nvme FAILED: $*" >&2; exit 1; }
TIMINGS=()
# phase NAME FUNCTION: run one phase and remember how long it took.
phase() {
    local t; t=$(stamp)
    "$2"
    TIMINGS+=("$1 $(took "$t")")
    say "$1 done in $(took "$t")"
}

# ---------------------------------------------------------------------------------------------------------
# Host packages. Only what is missing is installed, so a second run costs nothing.
#   qemu-system-x86 the emulator; busybox-static the guest's userland; nvme-cli, e2fsprogs, xfsprogs and
#   util-linux are copied into the guest with their libraries; cpio and zstd pack it; kmod computes the
#   module load order.
# ---------------------------------------------------------------------------------------------------------
deps() {
    local need=() p
    for p in qemu-system-x86 busybox-static nvme-cli e2fsprogs xfsprogs util-linux cpio zstd kmod; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    if [ ${#need[@]} -eq 0 ]; then
        say "host packages present"
        return
    fi
    [ "$(id -u)" = 0 ] || die "missing packages ${need[*]}; run as root to install them"
    say "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# ---------------------------------------------------------------------------------------------------------
# Kernel: Debian's linux-image-cloud-amd64 (the smaller image; it has everything the lane needs). The .deb
# is only unpacked, never installed, and the result is cached under a directory named by the exact package
# and version, so a kernel update in the archive makes a new entry instead of reusing a stale one.
# ---------------------------------------------------------------------------------------------------------
kernel_dir() {
    local pkg ver
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
        # Images often ship without package lists.
        apt-get update -qq >&2
        pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    [ -n "$pkg" ] || die "apt-cache knows no linux-image-cloud-amd64 (run apt-get update as root)"
    ver=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no candidate version of $pkg"
    echo "$CACHE/${pkg}_$ver"
}

kernel() {
    local dir pkg tmp
    dir=$(kernel_dir)
    if [ -f "$dir/ready" ]; then
        say "kernel cached in $dir"
    else
        pkg=$(basename "$dir"); pkg=${pkg%%_*}
        tmp="$dir.tmp.$$"
        rm -rf "$tmp" && mkdir -p "$tmp/deb"
        say "downloading $pkg"
        (cd "$tmp/deb" && apt-get download -q "$pkg" 2>&1 | grep -v 'Download is performed unsandboxed' || true)
        ls "$tmp"/deb/*.deb >/dev/null 2>&1 || die "apt-get download $pkg produced no .deb"
        dpkg-deb -x "$tmp"/deb/*.deb "$tmp/root"
        rm -rf "$tmp/deb"
        local kver; kver=$(ls "$tmp/root/lib/modules")
        # The .deb carries no modules.dep (its postinst makes it); modprobe --show-depends needs one.
        depmod -b "$tmp/root" "$kver"
        echo "$kver" > "$tmp/version"
        touch "$tmp/ready"
        rm -rf "$dir" && mv "$tmp" "$dir"
    fi
    ln -sfn "$dir" "$OUT/kernel"
    say "kernel $(cat "$OUT/kernel/version")"
}

# ---------------------------------------------------------------------------------------------------------
# Static Go binaries: the guest has no libc for them. The test binary is `go test -c` of test/e2e with the
# e2e build tag.
# ---------------------------------------------------------------------------------------------------------
build() {
    command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
    command -v go >/dev/null || die "go is not on PATH (nor in /usr/local/go/bin)"
    local ldflags='-s -w -X main.version=e2e'
    (cd "$REPO" &&
        CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$OUT/rds-csi" ./cmd/rds-csi &&
        CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$OUT/rds-sim" ./cmd/rds-sim &&
        CGO_ENABLED=0 go test -c -tags e2e -trimpath -ldflags '-s -w' -o "$OUT/e2e.test" ./test/e2e)
}

# copy_with_libs BIN DEST: an ELF program and every shared library it needs into the guest root.
copy_with_libs() {
    local bin=$1 dest=$2 lib
    install -D -m 0755 "$bin" "$ROOT$dest"
    ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}' | sort -u | while read -r lib; do
        [ -e "$ROOT$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$ROOT$lib"
    done
}

# ---------------------------------------------------------------------------------------------------------
# The guest: busybox for the shell and small tools; the real tools the driver runs (nvme, mkfs.ext4,
# resize2fs, dumpe2fs and xfs_io (the filesystem-size check at stage), mkfs.xfs, xfs_growfs, and util-linux's
# mount, umount, blkid: busybox's blkid has no -p/-o export and its mount differs); the kernel modules in load order; the three Go binaries; /init.
# ---------------------------------------------------------------------------------------------------------
initramfs() {
    local kroot="$OUT/kernel/root" kver a tool
    kver=$(cat "$OUT/kernel/version")
    ROOT="$OUT/root"
    rm -rf "$ROOT" && mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc/nvme,proc,sys,dev,tmp,run,mnt,lib64}
    install -m 0755 /bin/busybox "$ROOT/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ -e "$ROOT/bin/$a" ] || ln -s busybox "$ROOT/bin/$a"
    done
    # The real tools go to /sbin and /usr/sbin, ahead of busybox's /bin on the guest's PATH.
    for tool in /usr/sbin/nvme /sbin/mke2fs /sbin/resize2fs /sbin/e2fsck /sbin/dumpe2fs /usr/sbin/mkfs.xfs \
            /usr/sbin/xfs_growfs /usr/sbin/xfs_io /usr/sbin/xfs_db /bin/mount /bin/umount /sbin/blkid /sbin/losetup /sbin/blockdev; do
        [ -x "$tool" ] || die "$tool is missing on the host"
        copy_with_libs "$tool" "/usr/sbin/$(basename "$tool")"
    done
    ln -sf mke2fs "$ROOT/usr/sbin/mkfs.ext4"
    ln -sf e2fsck "$ROOT/usr/sbin/fsck.ext4"
    cp /etc/mke2fs.conf "$ROOT/etc/mke2fs.conf"
    : > "$ROOT/etc/modules.list"
    local m ko rel
    for m in $MODULES; do
        modprobe -d "$kroot" -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}'
    done | awk '!seen[$0]++' | while read -r ko; do
        rel=${ko#"$kroot"}
        install -D -m 0644 "$ko" "$ROOT$rel"
        echo "$rel" >> "$ROOT/etc/modules.list"
    done
    install -m 0755 "$OUT/rds-csi" "$ROOT/bin/rds-csi"
    install -m 0755 "$OUT/rds-sim" "$ROOT/bin/rds-sim"
    install -m 0755 "$OUT/e2e.test" "$ROOT/bin/e2e.test"
    install -m 0755 "$HERE/bare-stage.sh" "$ROOT/bin/e2e-bare-stage.sh"
    install -m 0755 "$HERE/init.sh" "$ROOT/init"
    (cd "$ROOT" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) |
        zstd -q -3 -T0 -f -o "$OUT/initramfs.cpio.zst"
    say "initramfs $(du -sh "$ROOT" | cut -f1) unpacked, $(du -h "$OUT/initramfs.cpio.zst" | cut -f1) packed," \
        "modules: $(xargs -n1 basename < "$ROOT/etc/modules.list" | tr '\n' ' ')"
}

# ---------------------------------------------------------------------------------------------------------
# Boot. No NIC, no display: the test uses only the guest's loopback. panic=-1 with -no-reboot ends QEMU when
# /init dies; no_timer_check avoids the rare "IO-APIC + timer doesn't work" panic of TCG on a loaded host.
# A boot that never reached /init is a machine problem and is retried once; anything after that is a
# result.
# ---------------------------------------------------------------------------------------------------------
pick_accel() {
    if [ "$ACCEL" != auto ]; then
        echo "$ACCEL"
        return
    fi
    # /dev/kvm existing is not enough (some hosts only run their own kind of guest): try a short KVM boot
    # of the same kernel to its "no init" panic, which takes 1-2 s where KVM works. Where it does not, the
    # probe costs its timeout, so the answer is kept per host kernel and guest kernel.
    local kver probe
    kver=$(cat "$OUT/kernel/version")
    probe="$CACHE/accel-$(uname -r)-$kver"
    if [ ! -w /dev/kvm ]; then
        echo tcg
    elif [ -f "$probe" ]; then
        cat "$probe"
    elif timeout 10 qemu-system-x86_64 -accel kvm -cpu host -m 256 -nodefaults -display none -serial stdio \
            -no-reboot -kernel "$OUT/kernel/root/boot/vmlinuz-$kver" -append "console=ttyS0 panic=-1 no_timer_check" \
            2>/dev/null | grep -q 'Kernel panic'; then
        echo kvm | tee "$probe"
    else
        echo tcg | tee "$probe"
    fi
}

run_vm() {
    local accel cpu=(-cpu max) attempt t rc log="$OUT/serial.log"
    # The kernel hands NAME=VALUE words it does not know to /init as environment variables: the settings
    # of this boot travel that way, so `run` needs no repacking.
    local append="console=ttyS0 panic=-1 no_timer_check rdinit=/init quiet E2E_SIM=$E2E_SIM"
    [ -n "$E2E_RUN" ] && append="$append E2E_RUN=$E2E_RUN"
    accel=$(pick_accel)
    # -cpu max under TCG offers every instruction QEMU emulates (SSE4.2's crc32 among them, which ext4, xfs
    # and NVMe/TCP digests use).
    [ "$accel" = kvm ] && cpu=(-cpu host)
    for attempt in 1 2; do
        say "booting (accel=$accel smp=$SMP mem=${MEM}M timeout=${TIMEOUT}s, attempt $attempt); serial log: $log"
        t=$(stamp)
        set +e
        timeout "$TIMEOUT" qemu-system-x86_64 -accel "$accel" "${cpu[@]}" -smp "$SMP" -m "$MEM" \
            -nodefaults -no-user-config -nic none -display none -serial stdio -no-reboot \
            -kernel "$OUT/kernel/root/boot/vmlinuz-$(cat "$OUT/kernel/version")" \
            -initrd "$OUT/initramfs.cpio.zst" \
            -append "$append" > "$log" 2>&1
        rc=$?
        set -e
        BOOT_TIME=$(took "$t")
        say "qemu exit $rc after $BOOT_TIME"
        grep -q '^\[init ' "$log" && break
        say "the guest never reached /init; last lines:"
        tail -n 15 "$log"
        [ "$attempt" = 2 ] && die "the guest did not boot twice"
    done
    TIMINGS+=("boot-to-poweroff $BOOT_TIME")
    grep -E '^(=== RUN|--- |E2E-|ok |PASS|FAIL)|^\s+--- ' "$log" || true
    if [ "$rc" = 124 ]; then
        echo "--- guest log tail ---"; tail -n 80 "$log"
        die "the guest did not finish within ${TIMEOUT}s"
    fi
    if ! grep -q '^E2E-RESULT: PASS' "$log"; then
        echo "--- guest log tail ---"; tail -n 120 "$log"
        die "the guest reported no PASS (full log: $log)"
    fi
}

summary() {
    local x
    say "phase timings:"
    for x in "${TIMINGS[@]}"; do printf '    %-18s %s\n' ${x}; done
}

case "${1:-all}" in
    deps) phase deps deps ;;
    kernel) phase kernel kernel ;;
    build) phase build build ;;
    initramfs) phase initramfs initramfs ;;
    run) run_vm; summary ;;
    all)
        T=$(stamp)
        phase deps deps
        phase kernel kernel
        phase build build
        phase initramfs initramfs
        run_vm
        TIMINGS+=("total $(took "$T")")
        summary
        ;;
    *) echo "usage: $0 [all|deps|kernel|build|initramfs|run]" >&2; exit 2 ;;
esac
