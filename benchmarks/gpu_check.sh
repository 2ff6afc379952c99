#!/usr/bin/env bash
# When a GPU is lent: one command that says whether the GPU path works, in under 8 minutes.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (default: runs/gpu-check)
#
# 1. every gpu-* preset (U-Net, diffusion painter/joint, StyleGAN2 joint/mask/conditional)
#    for 20 training steps on random data: img/s and peak GPU memory (benchmarks/gpu_check.py);
# 2. a small study end to end with the generators on the GPU (phantom, 10 patients at 64 px,
#    two painters, n 0/2, folds 0-1, U-Nets on the GPU via seg.device: auto): its stats and
#    report, with each phase's time.
# Needs a Python with a CUDA build of torch 2.13.0 and synthaug's dependencies
# (`make install` after installing that torch); PYTHON overrides the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
OUT="${1:-runs/gpu-check}"
mkdir -p "$OUT"
export SYNTHAUG_QUIET=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"

echo "== 1. gpu-* presets, 20 steps each"
t0=$(date +%s)
timeout 240 "$PY" benchmarks/gpu_check.py --steps 20
echo "presets: $(( $(date +%s) - t0 )) s"

echo "== 2. a small study on the GPU"
t0=$(date +%s)
SYN=("$PY" -m synthaug.cli)
"${SYN[@]}" phantom --out "$OUT/phantom" --patients 10 --task tissue --overwrite
"${SYN[@]}" prepare --dataset "$OUT/phantom" --out "$OUT/store" --resolution 64 --folds 3 --overwrite
cat > "$OUT/study.yaml" <<YAML
name: gpu-check
datasets: [{name: tissue, store: store}]
sources: [real-mask-conditional, real-mask-diffusion]
n_levels: [0, 2]
folds: [0, 1]
gan: {preset: cpu-tiny, kimg: 2, precision: auto}
diffusion: {preset: cpu-tiny, kimg: 4, precision: auto}
seg: {preset: cpu-tiny, device: auto, precision: auto}
quality: {enabled: true}
YAML
timeout 300 "${SYN[@]}" study --config "$OUT/study.yaml" --out "$OUT/study" --workers 2
echo "study: $(( $(date +%s) - t0 )) s; report: $OUT/study/report/index.html"
find "$OUT/study" -name results.json -exec grep -h '"precision"' {} + | sort | uniq -c || true
