#!/usr/bin/env bash
# edgesift's network against onnxruntime on the same weights, same input size, same thread count,
# measured back to back (the machine's load changes; only the ratio of one run means much).
#
#   scripts/bench_peers.sh [--scale n] [--imgsz 640] [--threads 2] [--iters 20] [--rounds 2]
#                          [--dtype f32[,int8,...]] [--model M.safetensors]
#
# Builds yolov8<scale>-seg from ultralytics' yaml (random init, fixed seed: the timing does not
# depend on the values), writes it once as safetensors (scripts/export_ultralytics.py) and as ONNX
# (ultralytics' exporter) under .work/peers/, then alternates onnxruntime and
# `edgesift bench-model` for --rounds rounds and prints both medians, the ratio ours/onnxruntime
# (last line), the ratio of CPU time per run (steadier when other processes load the machine)
# and the load average. --model benchmarks another edgesift file (e.g. an `edgesift quantize`
# output) against the f32 ONNX of --scale. --dtype takes a comma-separated list (`f32,int8`):
# each round then runs onnxruntime once and edgesift once per dtype, back to back, and prints
# `ratio_<dtype>` for each (`ratio` stays the first dtype's). int8 quantizes the f32 file in
# memory first (`edgesift bench-model --dtype int8`). Needs the .venv (scripts/setup.sh
# --python) and a release build (cargo build --release).
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
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
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

# Prints "<median ms> <cpu ms per run>": the better median of onnxruntime with its default
# spinning thread pool and with spinning off; the CPU time comes from the run without spinning
# (a spinning pool burns CPU while it waits, which is not work).
ort_median() {
  "$py" - "$onnx" "$imgsz" "$threads" "$iters" <<'EOF'
import sys, time
import numpy as np
import onnxruntime as ort

path, imgsz, threads, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)

def bench(spin):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    for _ in range(3):
        s.run(None, {name: x})
    t = []
    c0 = time.process_time()
    for _ in range(iters):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        t.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(t)), (time.process_time() - c0) * 1e3 / iters

wall_spin, _ = bench(True)
wall, cpu = bench(False)
print(f"{min(wall_spin, wall):.2f} {cpu:.1f}")
EOF
}

# Prints "<median ms> <cpu ms per run>" for dtype $1.
ours_median() {
  "$bin" bench-model --model "$model" --imgsz "$imgsz" --threads "$threads" --iters "$iters" \
    --dtype "$1" | awk '$1 == "cpu_ms_per_iter" { c = $2 } $1 == "median_ms" { print $2, c }'
}

IFS=, read -r -a dtypes <<< "$dtype"
echo "yolov8${scale}-seg ${imgsz}x${imgsz}, ${threads} threads, ${iters} iters x ${rounds} rounds; ours: $model (${dtypes[*]})"
echo "onnxruntime $("$py" -c 'import onnxruntime; print(onnxruntime.__version__)'), $(nproc) CPUs"
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
min() { printf '%s\n%s\n' "$1" "$2" | grep . | sort -g | head -1; }
best_ort="" best_ort_cpu=""
declare -A best_ours best_ours_cpu
for r in $(seq 1 "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  read -r o oc < <(ort_median)
  printf 'round %d: onnxruntime %8.2f ms (cpu %7.1f)   load average %s\n' "$r" "$o" "$oc" "$load"
  best_ort=$(min "$o" "$best_ort"); best_ort_cpu=$(min "$oc" "$best_ort_cpu")
  for d in "${dtypes[@]}"; do
    read -r e ec < <(ours_median "$d")
    printf 'round %d: edgesift %-5s %8.2f ms (cpu %7.1f)   ratio %s (cpu %s)\n' \
      "$r" "$d" "$e" "$ec" "$(ratio "$e" "$o")" "$(ratio "$ec" "$oc")"
    best_ours[$d]=$(min "$e" "${best_ours[$d]:-}"); best_ours_cpu[$d]=$(min "$ec" "${best_ours_cpu[$d]:-}")
  done
done
echo "best of $rounds: onnxruntime $best_ort ms (cpu $best_ort_cpu ms/run)"
for d in "${dtypes[@]}"; do
  echo "best of $rounds: edgesift $d ${best_ours[$d]} ms (cpu ${best_ours_cpu[$d]} ms/run)"
  echo "cpu_ratio_$d $(ratio "${best_ours_cpu[$d]}" "$best_ort_cpu")"
  echo "ratio_$d $(ratio "${best_ours[$d]}" "$best_ort")"
done
echo "cpu_ratio $(ratio "${best_ours_cpu[${dtypes[0]}]}" "$best_ort_cpu")"
echo "ratio $(ratio "${best_ours[${dtypes[0]}]}" "$best_ort")"
