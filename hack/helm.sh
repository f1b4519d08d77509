#!/usr/bin/env bash
# hack/helm.sh: prints the path of a helm v3.22.0 binary, building it first when it is not cached.
#
# helm has no Debian package and nothing outside the package registries can be downloaded here, so it
# is built from the Go module proxy with `go install` (about 90 s cold on 2 cores). The binary is
# cached by version outside the repo ($RDS_CSI_CACHE or ~/.cache/rds-csi), so the build runs once per
# machine. Progress goes to stderr; stdout is only the path, so callers can do HELM=$(hack/helm.sh).
set -euo pipefail
V=v3.22.0
# The Kubernetes version helm assumes without a cluster (`helm template`, `helm lint`). Helm's release
# builds set it from their client-go version (v0.37 for v3.22) through ldflags; a plain `go install`
# would leave helm's fallback, 1.20, and fail charts that require a recent Kubernetes.
KUBE_MAJOR=1 KUBE_MINOR=37
CACHE="${RDS_CSI_CACHE:-$HOME/.cache/rds-csi}/helm/$V-kube$KUBE_MAJOR.$KUBE_MINOR"
HELM="$CACHE/helm"

if [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q "^$V"; then
  echo "$HELM"
  exit 0
fi
# Several test binaries may ask at once: one builds, the others wait for it.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if ! { [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q "^$V"; }; then
  echo "building helm $V into $HELM (about 90 s cold)" >&2
  t0=$(date +%s)
  tmp="$CACHE/tmp.$$"
  mkdir -p "$tmp"
  # Outside any module, so the driver's go.mod is neither read nor changed. helm's version string
  # comes from its ldflags; set it so `helm version` (and the cache check above) report $V.
  LDF="-s -w -X helm.sh/helm/v3/internal/version.version=$V"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    LDF="$LDF -X $pkg.k8sVersionMajor=$KUBE_MAJOR -X $pkg.k8sVersionMinor=$KUBE_MINOR"
  done
  (cd "$tmp" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$tmp" go install -trimpath -ldflags "$LDF" \
    helm.sh/helm/v3/cmd/helm@$V) >&2
  mv -f "$tmp/helm" "$HELM"
  rm -rf "$tmp"
  echo "built helm $V in $(( $(date +%s) - t0 ))s" >&2
fi
echo "$HELM"
