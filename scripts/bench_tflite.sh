#!/usr/bin/env bash
# The TFLite backend (LiteRT) against the candle path and onnxruntime on the same weights, same
# input size, back to back in each round (the machine's load changes; only ratios within one run
# mean much):
#
#   scripts/bench_tflite.sh [--model models/edgesift-road-n-seg.safetensors] [--imgsz 640]
#                           [--threads 2] [--iters 20] [--rounds 2]
#
# Exports the model once with scripts/export_tflite.py (float32, float16, int8, and the ONNX it
# went through) under .work/bench-tflite/, then each round runs onnxruntime on that ONNX (f32),
# `edgesift bench-model` on candle (f32, and int8 as `--dtype int8` quantizes it) and on the
# three .tflite files. Prints each median (and CPU ms per run) and its ratio to onnxruntime.
# Needs a release build (cargo build --release), libLiteRt.so (scripts/tflite.sh) and .venv-tflite
# (see scripts/export_tflite.py). LiteRT picks its own thread count; on a 2-core machine that is
# the same 2 cores as --threads 2.
set -euo pipefail
cd "$(dirname "$0")/.."

model=models/edgesift-road-n-seg.safetensors imgsz=640 threads=2 iters=20 rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --imgsz) imgsz=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
py=${PYTHON:-.venv-tflite/bin/python}
bin=${EDGESIFT:-target/release/edgesift}
[ -x "$bin" ] || { echo "no $bin: run cargo build --release first" >&2; exit 1; }
LITERT_LIB_DIR="$(scripts/tflite.sh)"
export LITERT_LIB_DIR
dir=.work/bench-tflite
name="$(basename "$model" .safetensors)-$imgsz"
if [ ! -f "$dir/${name}_int8.tflite" ] || [ ! -f "$dir/$name.onnx" ]; then
  "$py" scripts/export_tflite.py "$model" "$dir" --imgsz "$imgsz" --int8 --keep-onnx >&2
fi

ort() {
  "$py" - "$dir/$name.onnx" "$imgsz" "$threads" "$iters" <<'PY'
import sys, time
import numpy as np
import onnxruntime as ort
path, imgsz, threads, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.add_session_config_entry("session.intra_op.allow_spinning", "0")
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
for _ in range(3):
    s.run(None, {"images": x})
ts, c0 = [], time.process_time()
for _ in range(iters):
    t = time.perf_counter()
    s.run(None, {"images": x})
    ts.append(time.perf_counter() - t)
print(f"{np.median(ts) * 1e3:.2f} {(time.process_time() - c0) / iters * 1e3:.1f}")
PY
}
ours() {
  out=$("$bin" bench-model --threads "$threads" --iters "$iters" "$@")
  echo "$(echo "$out" | awk '/^median_ms/ {print $2}') $(echo "$out" | awk '/^cpu_ms_per_iter/ {print $2}')"
}
declare -A label=(
  [candle_f32]="candle f32" [candle_int8]="candle int8 (bench-model --dtype int8)"
  [tflite_float32]="tflite float32" [tflite_float16]="tflite float16 weights" [tflite_int8]="tflite int8 (full integer)"
)
order=(candle_f32 candle_int8 tflite_float32 tflite_float16 tflite_int8)
for r in $(seq "$rounds"); do
  read -r o oc < <(ort)
  declare -A res=()
  res[candle_f32]=$(ours --model "$model" --imgsz "$imgsz" --dtype f32)
  res[candle_int8]=$(ours --model "$model" --imgsz "$imgsz" --dtype int8)
  for p in float32 float16 int8; do
    res[tflite_$p]=$(ours --backend tflite --model "$dir/${name}_$p.tflite")
  done
  echo "round $r (load $(cut -d' ' -f1-3 /proc/loadavg)): onnxruntime f32 $o ms (cpu $oc)"
  for k in "${order[@]}"; do
    read -r m c <<<"${res[$k]}"
    printf '  %-40s %8.1f ms (cpu %6.1f)  ratio %.2f (cpu ratio %.2f)\n' "${label[$k]}" "$m" "$c" \
      "$(awk -v a="$m" -v b="$o" 'BEGIN {print a / b}')" "$(awk -v a="$c" -v b="$oc" 'BEGIN {print a / b}')"
  done
done
