# mlmkit images for the CWL application packages (cwl/*.cwl name the tags).
#   docker build --target inference -t mlmkit:0.1.0 .            # onnxruntime, rasterio, pystac, click, boto3
#   docker build --target training  -t mlmkit:0.1.0-training .   # adds the CPU build of torch
# BASE_IMAGE is any Debian-like image with python3 (>=3.11, for tomllib) and its venv module.
#
# Layers are laid out for the cache. The dependency venv depends only on the requirement lists read
# from pyproject.toml (a version bump or a new test dependency leaves it cached); mlmkit itself is
# installed in a small stage of its own and laid over the dependency venv in one layer, so a change of
# src/ rebuilds only that layer and the smoke test. Stages are ordered so that the classic builder,
# which builds every stage before the target, never builds the torch stages for the inference target.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /build/
RUN python3 -c 'import tomllib; p = tomllib.load(open("/build/pyproject.toml", "rb"))["project"]; \
extra = p["optional-dependencies"]; \
open("/build/requirements.txt", "w").write("\n".join(p["dependencies"] + extra["stage"]) + "\n"); \
open("/build/requirements-train.txt", "w").write("\n".join(extra["train"]) + "\n")'

FROM ${BASE_IMAGE} AS deps
# Build-time only: a CA bundle or a mirror for pip where the network needs them.
ARG PIP_CERT
ARG PIP_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=requirements /build/requirements.txt /build/
RUN python3 -m venv /opt/mlmkit && /opt/mlmkit/bin/pip install -q -r /build/requirements.txt

# mlmkit's own files, installed with a venv at the same path (so scripts name /opt/mlmkit/bin/python)
# under /out, byte-compiled for their final place.
FROM ${BASE_IMAGE} AS src
ARG PIP_CERT
ARG PIP_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md /build/
COPY src/ /build/src/
RUN python3 -m venv /opt/mlmkit \
    && /opt/mlmkit/bin/pip install -q --no-deps --no-compile --root /out /build \
    && python3 -m compileall -q --invalidation-mode unchecked-hash -s /out /out/opt/mlmkit/lib

FROM ${BASE_IMAGE} AS runtime
RUN useradd --create-home --uid 1000 --shell /bin/bash mlmkit
ENV PATH=/opt/mlmkit/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/mlmkit
CMD ["mlmkit", "--help"]
# Set before the large layers: with the vfs storage driver every later step copies the whole tree.
USER mlmkit

FROM runtime AS inference
COPY --from=deps /opt/mlmkit /opt/mlmkit
COPY --from=src /out/opt/mlmkit/ /opt/mlmkit/
RUN mlmkit --help >/dev/null && mlmkit predict --help >/dev/null && mlmkit merge --help >/dev/null \
    && mlmkit stage-in --help >/dev/null && mlmkit stage-out --help >/dev/null && python -c 'import boto3'

FROM deps AS deps-training
ARG PIP_CERT
ARG PIP_INDEX_URL
# Empty where no PyTorch index is reachable; a wheel in docker/wheels/ is used first.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
COPY --from=requirements /build/requirements-train.txt /build/
COPY docker/wheels/ /tmp/wheels/
RUN /opt/mlmkit/bin/pip install -q --find-links /tmp/wheels \
        ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}" \
    && /opt/mlmkit/bin/pip install -q -r /build/requirements-train.txt \
    && rm -rf /tmp/wheels

FROM runtime AS training
COPY --from=deps-training /opt/mlmkit /opt/mlmkit
COPY --from=src /out/opt/mlmkit/ /opt/mlmkit/
RUN mlmkit --help >/dev/null && mlmkit train --help >/dev/null
