#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd) from Go modules and caches
# it where setup-envtest would, so that nothing but Go and the module proxy is needed.
#
#   hack/setup-envtest.sh          build when missing, print nothing but progress on stderr
#   hack/setup-envtest.sh --print  also print the assets directory (for KUBEBUILDER_ASSETS) on stdout
#
# A binary whose --version already matches is kept: a warm run is instant. A cold run
# takes about 12 minutes on 2 cores (kube-apiserver ~9 min, etcd ~1.5 min) and ~2.4 GB of memory.
set -euo pipefail

K8S_VERSION=1.37.2
ETCD_VERSION=3.7.3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASSETS="${KUBEBUILDER_ASSETS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest/k8s/${K8S_VERSION}-linux-amd64}"

log() { printf '[setup-envtest] %s\n' "$*" >&2; }

# progress prints a heartbeat while a long build runs, so it is clearly not hung.
progress() {
  local pid=$1 what=$2 start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 20
    kill -0 "$pid" 2>/dev/null && log "still building ${what} ($((SECONDS - start))s elapsed) ..."
  done
}

build() {
  local what=$1 dir=$2 pkg=$3 ldflags=$4 start=$SECONDS
  log "building ${what} from Go modules (first run only; this takes a while) ..."
  (
    cd "${HERE}/envtest/${dir}"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "${ldflags}" -o "${ASSETS}/${what}.tmp" "${pkg}"
  ) &
  local pid=$!
  progress "$pid" "$what" &
  local ticker=$!
  if ! wait "$pid"; then
    kill "$ticker" 2>/dev/null || true
    log "building ${what} failed"
    exit 1
  fi
  kill "$ticker" 2>/dev/null || true
  mv -f "${ASSETS}/${what}.tmp" "${ASSETS}/${what}"
  log "built ${what} in $((SECONDS - start))s"
}

mkdir -p "${ASSETS}"

if [[ "$("${ASSETS}/kube-apiserver" --version 2>/dev/null || true)" == "Kubernetes v${K8S_VERSION}" ]]; then
  log "kube-apiserver v${K8S_VERSION} cached in ${ASSETS}"
else
  major=${K8S_VERSION%%.*}
  minor=${K8S_VERSION#*.}; minor=${minor%%.*}
  vpkg=k8s.io/component-base/version
  build kube-apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver \
    "-s -w -X ${vpkg}.gitVersion=v${K8S_VERSION} -X ${vpkg}.gitMajor=${major} -X ${vpkg}.gitMinor=${minor} -X ${vpkg}.gitTreeState=clean"
fi

# Read the whole output first: with pipefail, `grep -q` closing the pipe early would fail the check.
etcd_version="$("${ASSETS}/etcd" --version 2>/dev/null || true)"
if grep -qx "etcd Version: ${ETCD_VERSION}" <<<"${etcd_version}"; then
  log "etcd v${ETCD_VERSION} cached in ${ASSETS}"
else
  build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"
fi

# kubectl is optional for the tests; link the system one when present so that
# the assets directory is complete for tools that expect it there.
if [[ ! -e "${ASSETS}/kubectl" ]] && command -v kubectl >/dev/null 2>&1; then
  ln -sf "$(command -v kubectl)" "${ASSETS}/kubectl"
fi

if [[ "${1:-}" == "--print" ]]; then
  echo "${ASSETS}"
fi
