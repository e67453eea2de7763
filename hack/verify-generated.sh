#!/usr/bin/env bash
# Fails when the generated files (CRDs, RBAC, deepcopy) differ from what the API types and markers
# generate: regenerates them in a scratch copy of the tree and compares, changing nothing here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT
tar -C "${root}" --exclude=./.git --exclude=./bin -cf - . | tar -C "${scratch}" -xf -
make -s -C "${scratch}" manifests generate >/dev/null
status=0
for path in config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go dist/chart/crds dist/chart/files; do
  if ! diff -ru "${root}/${path}" "${scratch}/${path}"; then
    status=1
  fi
done
if [[ ${status} -ne 0 ]]; then
  echo "generated files are stale: run 'make manifests generate' and commit the result" >&2
fi
exit ${status}
