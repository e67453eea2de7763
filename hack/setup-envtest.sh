#!/usr/bin/env bash
# Provides the envtest control plane (kube-apiserver, etcd) and caches it where setup-envtest would:
# downloaded when the release archives are reachable, built from Go modules when they are not.
#
#   hack/setup-envtest.sh          provide it when missing, print nothing but progress on stderr
#   hack/setup-envtest.sh --print  also print the assets directory (for KUBEBUILDER_ASSETS) on stdout
#
# It takes the first of these that works, and says on stderr which one and why:
#  1. cached: binaries whose --version matches are kept. A warm run is instant and makes no network call.
#  2. download: controller-runtime's setup-envtest (a Go tool of hack/tools/go.mod, no global install)
#     fetches the envtest-v${K8S_VERSION} archive that controller-tools' release index lists, and checks
#     its SHA-512; this script then checks that kube-apiserver --version is the pinned version and that
#     etcd runs. Seconds with internet access, plus ~40-60 s on 2 cores to compile setup-envtest the
#     first time. Bounded by BOUNCEGUARD_ENVTEST_DOWNLOAD_TIMEOUT (60 s).
#  3. build: when the download fails (no network, or a network where only the Go module proxy is
#     reachable), kube-apiserver and etcd are built from Go modules (hack/envtest/): about 17 minutes
#     cold on 2 cores (kube-apiserver ~15 min, etcd ~1.2 min) and ~2.4 GB of memory.
#
# Environment:
#   KUBEBUILDER_ASSETS_DIR                where the binaries go (default: setup-envtest's own place, below)
#   BOUNCEGUARD_ENVTEST_BUILD=1           skip the download: build from Go modules
#   BOUNCEGUARD_ENVTEST_NO_BUILD=1        never build: say what would be built, and fail
#   BOUNCEGUARD_ENVTEST_INDEX             the release index setup-envtest reads (--index; default: its own)
#   BOUNCEGUARD_ENVTEST_DOWNLOAD_TIMEOUT  seconds the download may take (default 60)
#   BOUNCEGUARD_ENVTEST_HEARTBEAT         seconds between progress lines of a long step (default 20)
set -euo pipefail

K8S_VERSION=1.37.2
# The etcd that the build from Go modules produces. A downloaded archive brings its own etcd, whose
# version is recorded in ${ASSETS}/etcd.downloaded-version so that later runs keep it.
ETCD_VERSION=3.7.3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASSETS="${KUBEBUILDER_ASSETS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest/k8s/${K8S_VERSION}-linux-amd64}"
DOWNLOAD_TIMEOUT="${BOUNCEGUARD_ENVTEST_DOWNLOAD_TIMEOUT:-60}"
HEARTBEAT="${BOUNCEGUARD_ENVTEST_HEARTBEAT:-20}"
ETCD_MARKER="${ASSETS}/etcd.downloaded-version"

# Progress goes to fd 3, a copy of stderr, so that it reaches the terminal even from a step whose own
# output is redirected to a file.
exec 3>&2
log() { printf '[setup-envtest] %s\n' "$*" >&3; }

# heartbeat prints a progress line every HEARTBEAT seconds while the process pid runs, so that a long step is
# clearly not hung. Its sleep keeps no output open and ends with it, so that no reader waits on it.
heartbeat() {
  local pid=$1 what=$2 start=$SECONDS sleeper=
  trap '[[ -n "${sleeper}" ]] && kill "${sleeper}" 2>/dev/null; exit 0' TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep "${HEARTBEAT}" >/dev/null 2>&1 3>&- &
    sleeper=$!
    wait "${sleeper}" || true
    kill -0 "$pid" 2>/dev/null && log "still ${what} ($((SECONDS - start))s elapsed) ..."
  done
}

# with_heartbeat WHAT CMD... runs CMD with a heartbeat naming WHAT, and returns CMD's status.
with_heartbeat() {
  local what=$1 pid ticker rc=0
  shift
  "$@" 3>&- &
  pid=$!
  heartbeat "$pid" "$what" &
  ticker=$!
  wait "$pid" || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  return "$rc"
}

# etcd_version prints the version the etcd binary $1 reports, and nothing when it does not run.
etcd_version() {
  local out line
  # Read the whole output first: with pipefail, a reader closing the pipe early would fail the check.
  out="$("$1" --version 2>/dev/null)" || return 0
  while IFS= read -r line; do
    if [[ "$line" == "etcd Version: "* ]]; then
      printf '%s\n' "${line#etcd Version: }"
      return 0
    fi
  done <<<"$out"
}

apiserver_version() { "$1" --version 2>/dev/null || true; }

# in_dir DIR CMD... runs CMD in DIR (in the background subshell that with_heartbeat starts).
in_dir() {
  cd "$1"
  shift
  "$@"
}

# names prints its arguments joined by commas and a final "and": "kube-apiserver and etcd".
names() {
  local IFS=,
  local all="$*"
  all="${all//,/, }"
  if (($# > 1)); then
    all="${all%, *} and ${all##*, }"
  fi
  printf '%s' "${all}"
}

# last_line prints the last non-empty line of the file $1 (the error a tool ended with).
last_line() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 || true; }

unbuilt=()

build() {
  local what=$1 dir=$2 pkg=$3 ldflags=$4 start=$SECONDS
  if [[ "${BOUNCEGUARD_ENVTEST_NO_BUILD:-}" == 1 ]]; then
    log "would build ${what} from Go modules now; not building (BOUNCEGUARD_ENVTEST_NO_BUILD=1)"
    unbuilt+=("${what}")
    return 0
  fi
  log "building ${what} from Go modules (first run only; this takes a while) ..."
  if ! with_heartbeat "building ${what}" \
    in_dir "${HERE}/envtest/${dir}" env CGO_ENABLED=0 GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "${ldflags}" -o "${ASSETS}/${what}.tmp" "${pkg}"; then
    log "building ${what} failed"
    exit 1
  fi
  mv -f "${ASSETS}/${what}.tmp" "${ASSETS}/${what}"
  log "built ${what} in $((SECONDS - start))s"
}

build_kube_apiserver() {
  local major minor vpkg=k8s.io/component-base/version
  major=${K8S_VERSION%%.*}
  minor=${K8S_VERSION#*.}
  minor=${minor%%.*}
  build kube-apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver \
    "-s -w -X ${vpkg}.gitVersion=v${K8S_VERSION} -X ${vpkg}.gitMajor=${major} -X ${vpkg}.gitMinor=${minor} -X ${vpkg}.gitTreeState=clean"
}

build_etcd() {
  build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"
  [[ "${BOUNCEGUARD_ENVTEST_NO_BUILD:-}" == 1 ]] || rm -f "${ETCD_MARKER}"
}

# The download stages setup-envtest's store (its own layout: <bin-dir>/k8s/<version>-<os>-<arch>/) in a
# directory of its own inside ASSETS, so that setup-envtest never touches the binaries already there.
stage=
cleanup() {
  if [[ -n "${stage}" && "${stage}" == "${ASSETS}/.download."* ]]; then
    chmod -R u+w "${stage}" 2>/dev/null || true # setup-envtest leaves its store read-only
    rm -rf "${stage}"
  fi
  stage=
}
trap cleanup EXIT

# download fetches the envtest archive of K8S_VERSION with setup-envtest, checks it and installs the
# binaries in need. On failure it sets reason and returns 1, with ASSETS as it was. (It runs as an `if`
# condition, where `set -e` does not apply: every step checks its own status.)
reason=
download() {
  local start=$SECONDS tool out err rc path api etcd_v what index=()
  log "downloading envtest v${K8S_VERSION} with setup-envtest (index: ${BOUNCEGUARD_ENVTEST_INDEX:-the controller-tools release index}; up to ${DOWNLOAD_TIMEOUT}s) ..."
  if [[ -n "${BOUNCEGUARD_ENVTEST_INDEX:-}" ]]; then
    index=(--index "${BOUNCEGUARD_ENVTEST_INDEX}")
  fi
  if ! stage="$(mktemp -d "${ASSETS}/.download.XXXXXX")"; then
    stage=
    reason="no staging directory in ${ASSETS}"
    return 1
  fi
  out="${stage}/out" err="${stage}/err"

  # `go tool -n` compiles the tool when it is not in the build cache yet (~40-60 s on 2 cores, once)
  # and prints where it is; running that binary directly lets the timeout below bound the download alone.
  if ! with_heartbeat "compiling setup-envtest" \
    in_dir "${HERE}/.." go tool -modfile=hack/tools/go.mod -n setup-envtest >"${out}" 2>"${err}"; then
    reason="setup-envtest could not be compiled: $(last_line "${err}")"
    return 1
  fi
  tool="$(last_line "${out}")"

  rc=0
  with_heartbeat "downloading envtest v${K8S_VERSION}" \
    timeout "${DOWNLOAD_TIMEOUT}" "${tool}" use "${K8S_VERSION}" -p path \
    --bin-dir "${stage}/store" --use-env=false --installed-only=false ${index[@]+"${index[@]}"} >"${out}" 2>"${err}" || rc=$?
  if ((rc == 124)); then
    reason="no answer within ${DOWNLOAD_TIMEOUT}s (BOUNCEGUARD_ENVTEST_DOWNLOAD_TIMEOUT)"
    return 1
  elif ((rc != 0)); then
    reason="setup-envtest: $(last_line "${err}")"
    return 1
  fi
  path="$(cat "${out}")"

  api="$(apiserver_version "${path}/kube-apiserver")"
  if [[ "${api}" != "Kubernetes v${K8S_VERSION}" ]]; then
    reason="the downloaded kube-apiserver reports '${api:-nothing}', not 'Kubernetes v${K8S_VERSION}'"
    return 1
  fi
  etcd_v="$(etcd_version "${path}/etcd")"
  if [[ -z "${etcd_v}" ]]; then
    reason="the downloaded archive has no etcd that runs and reports its version"
    return 1
  fi

  for what in "${need[@]}"; do
    if ! { install -m 0755 "${path}/${what}" "${ASSETS}/${what}.tmp" && mv -f "${ASSETS}/${what}.tmp" "${ASSETS}/${what}"; }; then
      reason="could not install the downloaded ${what} in ${ASSETS}"
      return 1
    fi
    if [[ "${what}" == etcd ]]; then
      printf '%s\n' "${etcd_v}" >"${ETCD_MARKER}" || true
    fi
  done
  if [[ ! -e "${ASSETS}/kubectl" && -x "${path}/kubectl" ]]; then
    install -m 0755 "${path}/kubectl" "${ASSETS}/kubectl" || true
  fi
  log "downloaded envtest-v$(basename "${path}").tar.gz (kube-apiserver v${K8S_VERSION}, etcd v${etcd_v}; SHA-512 checked) in $((SECONDS - start))s; installed $(names "${need[@]}") in ${ASSETS}"
}

mkdir -p "${ASSETS}"

need=()
if [[ "$(apiserver_version "${ASSETS}/kube-apiserver")" == "Kubernetes v${K8S_VERSION}" ]]; then
  log "kube-apiserver v${K8S_VERSION} cached in ${ASSETS}"
else
  need+=(kube-apiserver)
fi
etcd_v="$(etcd_version "${ASSETS}/etcd")"
if [[ -n "${etcd_v}" && "${etcd_v}" == "${ETCD_VERSION}" ]]; then
  log "etcd v${etcd_v} cached in ${ASSETS}"
elif [[ -n "${etcd_v}" && "${etcd_v}" == "$(cat "${ETCD_MARKER}" 2>/dev/null || true)" ]]; then
  log "etcd v${etcd_v} (from the envtest download) cached in ${ASSETS}"
else
  need+=(etcd)
fi

if ((${#need[@]} > 0)); then
  if [[ "${BOUNCEGUARD_ENVTEST_BUILD:-}" == 1 ]]; then
    log "not downloading: BOUNCEGUARD_ENVTEST_BUILD=1 asks for $(names "${need[@]}") to be built from Go modules"
  elif download; then
    need=()
  else
    log "download failed: ${reason}"
    log "falling back to building $(names "${need[@]}") from Go modules (~17 min cold on 2 cores)"
  fi
  cleanup
  # (The ${a[@]+...} form expands an empty array under `set -u` in the bash 3.2 of macOS too.)
  for what in ${need[@]+"${need[@]}"}; do
    "build_${what//-/_}"
  done
fi

if ((${#unbuilt[@]} > 0)); then
  log "$(names "${unbuilt[@]}") missing from ${ASSETS}: not built (BOUNCEGUARD_ENVTEST_NO_BUILD=1)"
  exit 1
fi

# kubectl is optional for the tests; link the system one when present so that
# the assets directory is complete for tools that expect it there.
if [[ ! -e "${ASSETS}/kubectl" ]] && command -v kubectl >/dev/null 2>&1; then
  ln -sf "$(command -v kubectl)" "${ASSETS}/kubectl"
fi

if [[ "${1:-}" == "--print" ]]; then
  echo "${ASSETS}"
fi
