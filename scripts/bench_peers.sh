#!/usr/bin/env bash
# edgesift's network against onnxruntime on the same weights, same input size, same thread count,
# measured back to back (the machine's load changes; only the ratio of one run means much).
#
#   scripts/bench_peers.sh [--scale n] [--imgsz 640] [--threads 2] [--iters 20] [--rounds 2]
#                          [--dtype f32] [--model M.safetensors]
#
# Builds yolov8<scale>-seg from ultralytics' yaml (random init, fixed seed: the timing does not
# depend on the values), writes it once as safetensors (scripts/export_ultralytics.py) and as ONNX
# (ultralytics' exporter) under .work/peers/, then alternates onnxruntime and
# `edgesift bench-model` for --rounds rounds and prints both medians, the ratio ours/onnxruntime
# and the load average. --model benchmarks another edgesift file (e.g. an `edgesift quantize`
# output) against the f32 ONNX of --scale. Needs the .venv (scripts/setup.sh --python) and a
# release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."

scale=n imgsz=640 threads=2 iters=20 rounds=2 dtype=f32 model=""
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --imgsz) imgsz=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=/work/main/.venv/bin/python
bin=${EDGESIFT:-target/release/edgesift}
[ -x "$bin" ] || { echo "no $bin: run cargo build --release first" >&2; exit 1; }

dir=.work/peers
mkdir -p "$dir"
st="$dir/yolov8${scale}-seg.safetensors"
onnx="$dir/yolov8${scale}-seg-${imgsz}.onnx"
if [ ! -f "$st" ] || [ ! -f "$onnx" ]; then
  echo "exporting yolov8${scale}-seg (random init, seed 0) to $st and $onnx" >&2
  "$py" - "$scale" "$imgsz" "$st" "$onnx" <<'EOF' >&2
import sys, shutil
from pathlib import Path
import torch
sys.path.insert(0, "scripts")
from export_ultralytics import export_model
from ultralytics import YOLO

scale, imgsz, st, onnx = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
torch.manual_seed(0)
yolo = YOLO(f"yolov8{scale}-seg.yaml", task="segment")
# safetensors first: the ONNX exporter fuses BatchNorm into the convolutions in place.
export_model(yolo.model, st, "f32", f"yolov8{scale}-seg.yaml (random, seed 0)", imgsz)
f = yolo.export(format="onnx", imgsz=imgsz, dynamic=False, simplify=True, verbose=False)
shutil.move(f, onnx)
EOF
fi
[ -n "$model" ] || model=$st

ort_median() {
  "$py" - "$onnx" "$imgsz" "$threads" "$iters" <<'EOF'
import sys, time
import numpy as np
import onnxruntime as ort

path, imgsz, threads, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
name = s.get_inputs()[0].name
for _ in range(3):
    s.run(None, {name: x})
t = []
for _ in range(iters):
    t0 = time.perf_counter()
    s.run(None, {name: x})
    t.append((time.perf_counter() - t0) * 1e3)
print(f"{float(np.median(t)):.2f}")
EOF
}

ours_median() {
  "$bin" bench-model --model "$model" --imgsz "$imgsz" --threads "$threads" --iters "$iters" \
    --dtype "$dtype" | awk '$1 == "median_ms" { print $2 }'
}

echo "yolov8${scale}-seg ${imgsz}x${imgsz}, ${threads} threads, ${iters} iters x ${rounds} rounds; ours: $model ($dtype)"
echo "onnxruntime $("$py" -c 'import onnxruntime; print(onnxruntime.__version__)'), $(nproc) CPUs"
best_ort="" best_ours=""
for r in $(seq 1 "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  o=$(ort_median)
  e=$(ours_median)
  printf 'round %d: onnxruntime %8.2f ms   edgesift %8.2f ms   ratio %.2f   (load average %s)\n' \
    "$r" "$o" "$e" "$(echo "$e / $o" | bc -l)" "$load"
  best_ort=$(printf '%s\n%s\n' "$o" "$best_ort" | grep . | sort -g | head -1)
  best_ours=$(printf '%s\n%s\n' "$e" "$best_ours" | grep . | sort -g | head -1)
done
echo "onnxruntime_ms $best_ort"
echo "edgesift_ms $best_ours"
echo "ratio $(printf '%.2f' "$(echo "$best_ours / $best_ort" | bc -l)")"
