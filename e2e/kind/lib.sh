# Settings shared by the e2e/kind scripts; every one can be overridden from the environment.
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MANIFESTS=$REPO/e2e/manifests

CLUSTER=${CLUSTER:-tritonop-e2e}                 # kind cluster name
NAMESPACE=${NAMESPACE:-tritonop-e2e}             # where the scenario runs (fixed in e2e/manifests)
RELEASE=${RELEASE:-tritonop}                     # helm release of the operator
OPERATOR_NAMESPACE=${OPERATOR_NAMESPACE:-tritonop-system}
WORK_DIR=${WORK_DIR:-$REPO/e2e/kind/.work}
MODEL_ROOT=${MODEL_ROOT:-$WORK_DIR/models}       # the model variants on this machine ...
NODE_MODEL_ROOT=${NODE_MODEL_ROOT:-/models}      # ... and where every node sees them
PROFILE=${PROFILE:-cluster}                      # rollout timings (e2e/scenario.py PROFILES)
OPERATOR_IMAGE=${OPERATOR_IMAGE:-tritonop:e2e}   # built from ./Dockerfile by install
TRITON_IMAGE=${TRITON_IMAGE:-nvcr.io/nvidia/tritonserver:24.10-py3}
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.2.1}
ENVOY_GATEWAY_VERSION=${ENVOY_GATEWAY_VERSION:-v1.2.1}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
# Extra `kubectl apply` flags, e.g. --validate=false for an API server without OpenAPI.
APPLY_FLAGS=${APPLY_FLAGS:-}
if [ -z "${HELM:-}" ]; then
  HELM=$(command -v helm || echo "$REPO/.tools/bin/helm")
fi
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}

say() { printf '\n== %s ==\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "$tool" ] || fail "$tool is required"
  done
}

# The scenario's InferenceService, fully qualified: plural names resolve on any API server
# (singular and short names need discovery data some servers, and the local emulator, lack).
ISVC=inferenceservices.serving.tritonop.dev/classifier

# kubectl get with a jsonpath, on the scenario's InferenceService.
isvc_field() { kubectl get "$ISVC" -n "$NAMESPACE" -o "jsonpath=$1"; }

# The scenario's InferenceService for one model variant (same objects as the local harness).
isvc_manifest() {
  "$PYTHON" -m e2e.scenario manifest --variant "$1" --model-root "$NODE_MODEL_ROOT" \
    --namespace "$NAMESPACE" --profile "$PROFILE"
}
