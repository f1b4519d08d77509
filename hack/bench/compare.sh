#!/usr/bin/env bash
# hack/bench/compare.sh [OLD_COMMIT]: the before/after table of issue 11 in one run on one machine. The same
# bench client (hack/bench of this tree) drives, at 30 ms per round trip and at 0 ms:
#   before    the driver and rds-sim of OLD_COMMIT (default 7224eea, the first landing; its simulator charges
#             --latency per statement, and does not log execs, so execs/op reads 0 there)
#   before-d  the driver of OLD_COMMIT against this tree's rds-sim (latency per round trip), in the dialect
#             that driver spoke (pool label = mount point, subvolumes by path)
#   after     this tree's driver and rds-sim
set -euo pipefail
cd "$(dirname "$0")/../.."
old=${1:-7224eea}
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/src" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add -q --detach "$tmp/src" "$old"
(cd "$tmp/src" && CGO_ENABLED=0 go build -o "$tmp/rds-csi" ./cmd/rds-csi && CGO_ENABLED=0 go build -o "$tmp/rds-sim" ./cmd/rds-sim)
make build >/dev/null
go build -o bin/rds-csi-bench ./hack/bench
for who in before before-d after; do
  case $who in
    before)   d=$tmp/rds-csi; s=$tmp/rds-sim; extra="" ;;
    before-d) d=$tmp/rds-csi; s=bin/rds-sim; extra="--pool-label=pool --subvolume-name=path --subvolume-parent=path" ;;
    after)    d=bin/rds-csi;  s=bin/rds-sim; extra="" ;;
  esac
  echo "=== $who, --latency 30ms"
  bin/rds-csi-bench --driver "$d" --sim "$s" --latency 30ms --sim-args "$extra"
  echo "=== $who, --latency 0"
  bin/rds-csi-bench --driver "$d" --sim "$s" --latency 0 --volumes 0 --n 50 --sim-args "$extra"
done
