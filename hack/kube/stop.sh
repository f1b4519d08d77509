#!/bin/bash
# hack/kube/stop.sh RUNDIR: stops the kube-apiserver and etcd that start.sh started in RUNDIR,
# API server first so it does not log etcd errors while shutting down. Only the pids recorded in
# RUNDIR are signalled. Safe to run when nothing is running.
[ $# -eq 1 ] || { echo "usage: $0 RUNDIR" >&2; exit 2; }
D=$1
for f in kas etcd; do
  [ -f "$D/$f.pid" ] || continue
  p=$(cat "$D/$f.pid")
  rm -f "$D/$f.pid"
  kill "$p" 2>/dev/null || continue
  for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then echo "$f ($p) still alive after 30s, SIGKILL" >&2; kill -9 "$p"; fi
done
true
