# mlmkit images for the CWL application packages (cwl/*.cwl name the tags).
#   docker build --target inference -t mlmkit:0.2.0 .            # onnxruntime, rasterio, pystac, click, boto3
#   docker build --target training  -t mlmkit:0.2.0-training .   # adds the CPU build of torch
#   docker build --target inference-gpu -t mlmkit:0.2.0-gpu .     # onnxruntime-gpu (CUDA 12); not built in CI
# BASE_IMAGE is any Debian-like image with python3 (>=3.11, for tomllib) and its venv module.
#
# Layers are laid out for the cache (the classic builder, with the vfs storage driver in CI, copies the
# whole tree for every layer and for every COPY --from source, cached or not). The dependency venv
# depends only on the requirement lists read from pyproject.toml, so a version bump or a new test
# dependency leaves it cached; the images build FROM it and add mlmkit in the last layers, so a change
# of src/ rebuilds only those. Stages are ordered so that the classic builder, which builds every stage
# before the target, never builds the torch stages for the inference target. The tools run as the
# non-root user `mlmkit`.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /build/
RUN python3 -c 'import tomllib; p = tomllib.load(open("/build/pyproject.toml", "rb"))["project"]; \
extra = p["optional-dependencies"]; \
open("/build/requirements.txt", "w").write("\n".join(p["dependencies"] + extra["stage"]) + "\n"); \
open("/build/requirements-train.txt", "w").write("\n".join(extra["train"]) + "\n")'

# The wheel users install (CWL packages and JSON schemas inside), built on the bare base: a small tree to copy.
FROM ${BASE_IMAGE} AS wheel
ARG PIP_CERT
ARG PIP_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md LICENSE NOTICE MANIFEST.in CHANGELOG.md /build/mlmkit/
COPY src/ /build/mlmkit/src/
COPY cwl/ /build/mlmkit/cwl/
RUN python3 -m venv /build/venv && /build/venv/bin/pip wheel -q --no-deps --wheel-dir /build/wheel /build/mlmkit

FROM ${BASE_IMAGE} AS deps
# Build-time only: a CA bundle or a mirror for pip where the network needs them.
ARG PIP_CERT
ARG PIP_INDEX_URL
RUN useradd --create-home --uid 1000 --shell /bin/bash mlmkit
ENV PATH=/opt/mlmkit/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /home/mlmkit
CMD ["mlmkit", "--help"]
COPY --from=requirements /build/ /build/
RUN python3 -m venv /opt/mlmkit && /opt/mlmkit/bin/pip install -q -r /build/requirements.txt

FROM deps AS inference
ARG PIP_CERT
ARG PIP_INDEX_URL
COPY docker/install-mlmkit.sh /build/
COPY --from=wheel /build/wheel/ /build/wheel/
RUN sh /build/install-mlmkit.sh predict merge stage-in stage-out && python3 -c 'import boto3'
USER mlmkit

FROM deps AS deps-training
ARG PIP_CERT
ARG PIP_INDEX_URL
# Empty where no PyTorch index is reachable; a wheel in docker/wheels/ is used first.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
COPY docker/wheels/ /tmp/wheels/
RUN /opt/mlmkit/bin/pip install -q --find-links /tmp/wheels \
        ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}" \
    && /opt/mlmkit/bin/pip install -q -r /build/requirements-train.txt \
    && rm -rf /tmp/wheels

FROM deps-training AS training
ARG PIP_CERT
ARG PIP_INDEX_URL
COPY docker/install-mlmkit.sh /build/
COPY --from=wheel /build/wheel/ /build/wheel/
RUN sh /build/install-mlmkit.sh train
USER mlmkit

# GPU inference (NVIDIA, CUDA 12): onnxruntime-gpu in place of onnxruntime, with the CUDA and cuDNN libraries
# from their PyPI wheels (onnxruntime loads them), so the same Debian-like base works; run it with
# `docker run --gpus all` (NVIDIA driver >= 525 and the container toolkit on the host). 1.27.0 is the last
# onnxruntime-gpu on PyPI built for CUDA 12; 1.28 and later need CUDA 13 (driver >= 580):
# --build-arg ONNXRUNTIME_GPU_VERSION=1.31.1. Several GB: not built in CI. Last in the file, so that the
# classic builder never builds it for the other targets.
FROM deps AS deps-gpu
ARG PIP_CERT
ARG PIP_INDEX_URL
ARG ONNXRUNTIME_GPU_VERSION=1.27.0
RUN /opt/mlmkit/bin/pip uninstall -q -y onnxruntime \
    && /opt/mlmkit/bin/pip install -q "onnxruntime-gpu[cuda,cudnn]==${ONNXRUNTIME_GPU_VERSION}"

FROM deps-gpu AS inference-gpu
ARG PIP_CERT
ARG PIP_INDEX_URL
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY docker/install-mlmkit.sh /build/
COPY --from=wheel /build/wheel/ /build/wheel/
# the CUDA provider is listed without a GPU (it is compiled in); loading it needs one, at run time
RUN sh /build/install-mlmkit.sh predict merge stage-in stage-out \
    && python3 -c "import onnxruntime as ort; assert 'CUDAExecutionProvider' in ort.get_available_providers()"
USER mlmkit
