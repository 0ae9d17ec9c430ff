# mlmkit images for the CWL application packages (cwl/*.cwl name the tags).
#   docker build --target inference -t mlmkit:0.1.0 .            # onnxruntime, rasterio, pystac, click
#   docker build --target training  -t mlmkit:0.1.0-training .   # adds the CPU build of torch
#   docker build --target inference-gpu -t mlmkit:0.1.0-gpu .    # onnxruntime-gpu (CUDA 12); see the end
# BASE_IMAGE is any Debian-like image with python3 (>=3.11, for tomllib) and its venv module.
# Stages are ordered so that the classic builder, which builds every stage before the target,
# never builds the torch stages for the inference target; dependencies sit in layers of their own,
# so a change of the source alone rebuilds in seconds.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS deps
# Build-time only: a CA bundle or a mirror for pip where the network needs them.
ARG PIP_CERT
ARG PIP_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml /build/
RUN python3 -m venv /opt/mlmkit \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/build/pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /build/requirements.txt \
    && /opt/mlmkit/bin/pip install -q -r /build/requirements.txt

FROM deps AS venv
COPY README.md /build/
COPY src/ /build/src/
RUN /opt/mlmkit/bin/pip install -q --no-deps /build

FROM ${BASE_IMAGE} AS runtime
RUN useradd --create-home --uid 1000 --shell /bin/bash mlmkit
ENV PATH=/opt/mlmkit/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/mlmkit
CMD ["mlmkit", "--help"]
# Set before the large layers: with the vfs storage driver every later step copies the whole tree.
USER mlmkit

FROM runtime AS inference
COPY --from=venv /opt/mlmkit /opt/mlmkit
RUN mlmkit --help >/dev/null && mlmkit predict --help >/dev/null && mlmkit merge --help >/dev/null

FROM deps AS deps-training
ARG PIP_CERT
ARG PIP_INDEX_URL
# Empty where no PyTorch index is reachable; a wheel in build/docker-wheels/ is used first.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
COPY pyproject.toml build/docker-wheel[s] /tmp/wheels/
RUN /opt/mlmkit/bin/pip install -q --find-links /tmp/wheels \
        ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}" \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/build/pyproject.toml", "rb"))["project"]["optional-dependencies"]["train"]))' \
        > /build/requirements-train.txt \
    && /opt/mlmkit/bin/pip install -q -r /build/requirements-train.txt \
    && rm -rf /tmp/wheels

FROM deps-training AS venv-training
COPY README.md /build/
COPY src/ /build/src/
RUN /opt/mlmkit/bin/pip install -q --no-deps /build

FROM runtime AS training
COPY --from=venv-training /opt/mlmkit /opt/mlmkit
RUN mlmkit --help >/dev/null && mlmkit train --help >/dev/null

# GPU inference (NVIDIA, CUDA 12): onnxruntime-gpu in place of onnxruntime, with the CUDA and cuDNN libraries
# from their PyPI wheels (onnxruntime loads them), so the same Debian-like base works; run it with
# `docker run --gpus all` (NVIDIA driver >= 525 and the container toolkit on the host). 1.27.0 is the last
# onnxruntime-gpu on PyPI built for CUDA 12; 1.28 and later need CUDA 13 (driver >= 580):
# --build-arg ONNXRUNTIME_GPU_VERSION=1.31.1. Several GB: not built in CI.
# Last in the file, so that the classic builder never builds it for the other targets.
#   docker build --target inference-gpu -t mlmkit:0.1.0-gpu .
FROM deps AS deps-gpu
ARG PIP_CERT
ARG PIP_INDEX_URL
ARG ONNXRUNTIME_GPU_VERSION=1.27.0
RUN /opt/mlmkit/bin/pip uninstall -q -y onnxruntime \
    && /opt/mlmkit/bin/pip install -q "onnxruntime-gpu[cuda,cudnn]==${ONNXRUNTIME_GPU_VERSION}"

FROM deps-gpu AS venv-gpu
COPY README.md /build/
COPY src/ /build/src/
RUN /opt/mlmkit/bin/pip install -q --no-deps /build

FROM runtime AS inference-gpu
COPY --from=venv-gpu /opt/mlmkit /opt/mlmkit
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
# the CUDA provider is listed without a GPU (it is compiled in); loading it needs one, at run time
RUN mlmkit predict --help >/dev/null \
    && python3 -c "import onnxruntime as ort; assert 'CUDAExecutionProvider' in ort.get_available_providers()"
