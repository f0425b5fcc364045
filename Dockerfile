# syntax=docker/dockerfile:1
# tritonop operator image: ghcr.io/tritonop/tritonop:<chart appVersion>.
#
# The base is pinned by tag. Pin it by digest too (python:3.11-slim-bookworm@sha256:...) when
# building in CI with registry access; no digest is written here because none could be
# verified from the environment this file was written in.

# ---- builder: turn the project and every dependency into wheels
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m pip wheel --wheel-dir /wheels .

# ---- runtime: a venv with only the wheels installed, running as a non-root user
FROM python:3.11-slim-bookworm

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/tritonop/bin:$PATH

# Install offline from the builder's wheels (bind-mounted, so they never land in a layer),
# then drop pip and setuptools from the venv: nothing installs anything at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/tritonop \
    && /opt/tritonop/bin/pip install --no-index --find-links=/wheels tritonop \
    && /opt/tritonop/bin/pip uninstall --yes pip setuptools

LABEL org.opencontainers.image.title="tritonop" \
      org.opencontainers.image.description="Kubernetes operator for NVIDIA Triton Inference Server with SLO-judged canary rollouts" \
      org.opencontainers.image.source="https://github.com/tritonop/tritonop" \
      org.opencontainers.image.licenses="Apache-2.0"

# 65532: the conventional "nonroot" UID; numeric so Kubernetes can verify runAsNonRoot.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["tritonop"]
CMD ["run", "--all-namespaces"]
