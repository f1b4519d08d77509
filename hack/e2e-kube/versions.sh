# hack/e2e-kube/versions.sh: sourced. The versions the kube lane builds and the cache they live in.
# The sidecar versions must be the ones the chart pins (deploy/helm/rds-csi/values.yaml); build.sh
# checks that and refuses to run on a mismatch, so a chart bump cannot silently test old sidecars.
KUBE_VERSION=v1.37.2
PROVISIONER_VERSION=v6.4.0
ATTACHER_VERSION=v4.13.0
RESIZER_VERSION=v1.14.0
SNAPSHOTTER_VERSION=v8.7.0
CACHE_ROOT="${RDS_CSI_CACHE:-$HOME/.cache/rds-csi}"
# Shared with hack/kube/build.sh (kube-apiserver for the API-server lane lives in the same directory).
KUBE_BIN="$CACHE_ROOT/kube/$KUBE_VERSION"
SIDECAR_BIN="$CACHE_ROOT/sidecars"
