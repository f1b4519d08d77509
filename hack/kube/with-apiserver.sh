#!/bin/bash
# hack/kube/with-apiserver.sh CMD [ARGS...]: runs CMD with a fresh etcd + kube-apiserver and
# RDS_CSI_KUBECONFIG pointing at it, then stops them whatever CMD's outcome; exits with CMD's status.
# Example: hack/kube/with-apiserver.sh go test -count=1 ./pkg/attachment/...
# The run directory is $RDS_CSI_KUBE_RUNDIR or a new temporary one (removed afterwards); the
# servers' logs are printed when CMD fails, since a failure may come from the API server.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
if [ -n "${RDS_CSI_KUBE_RUNDIR:-}" ]; then D=$RDS_CSI_KUBE_RUNDIR; KEEP=1; else D=$(mktemp -d); KEEP=0; fi
cleanup() { "$HERE/stop.sh" "$D"; [ "$KEEP" = 1 ] || rm -rf "$D"; }
trap cleanup EXIT
eval "$("$HERE/start.sh" "$D")" || exit 1
"$@"
rc=$?
if [ $rc -ne 0 ]; then
  echo "--- last lines of kube-apiserver log ($D/kas.log) ---" >&2; tail -20 "$D/kas.log" >&2
fi
exit $rc
