#!/usr/bin/env bash
# MobileSAM's image encoder at 1024: edgesift against onnxruntime on the same (seeded) weights,
# same thread count, measured back to back (the machine's load changes; only the ratio of one
# run means much).
#
#   scripts/bench_mobilesam_peers.sh [--threads 2] [--iters 5] [--rounds 2]
#
# Writes the seeded MobileSAM once as safetensors (scripts/export_mobilesam.py --random-seed 7)
# and its image encoder as ONNX (torch.onnx.export, opset 17) under .work/peers/, then alternates
# onnxruntime and `edgesift bench-sam`. Needs the .venv with scripts/requirements.txt and a
# release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 iters=5 rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=/work/main/.venv/bin/python
bin=${EDGESIFT:-target/release/edgesift}
[ -x "$bin" ] || { echo "no $bin: run cargo build --release first" >&2; exit 1; }

dir=.work/peers
mkdir -p "$dir"
st="$dir/mobilesam_seeded.safetensors"
onnx="$dir/mobilesam_encoder_1024.onnx"
if [ ! -f "$st" ] || [ ! -f "$onnx" ]; then
  echo "exporting seeded MobileSAM to $st and $onnx" >&2
  "$py" - "$st" "$onnx" <<'PY' >&2
import sys
from pathlib import Path
import torch
sys.path.insert(0, "scripts")
from export_mobilesam import build, export, seeded_state_dict

st, onnx = Path(sys.argv[1]), Path(sys.argv[2])
model = build(None)
seeded_state_dict(model, 7)
export(model, st, "mobile_sam.build_sam_vit_t", "seeded:7")
x = torch.zeros(1, 3, 1024, 1024)
torch.onnx.export(model.image_encoder, (x,), str(onnx), opset_version=17,
                  input_names=["images"], output_names=["features"], dynamo=False)
PY
fi

ort_median() {
  "$py" - "$onnx" "$threads" "$iters" <<'PY'
import sys, time
import numpy as np
import onnxruntime as ort

path, threads, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = np.random.default_rng(0).standard_normal((1, 3, 1024, 1024), dtype=np.float32)
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.add_session_config_entry("session.intra_op.allow_spinning", "0")
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
s.run(None, {name: x})
t = []
c0 = time.process_time()
for _ in range(iters):
    t0 = time.perf_counter()
    s.run(None, {name: x})
    t.append((time.perf_counter() - t0) * 1e3)
print(f"{float(np.median(t)):.1f} {(time.process_time() - c0) * 1e3 / iters:.1f}")
PY
}

ours_median() {
  "$bin" bench-sam --model "$st" --threads "$threads" --iters "$iters" |
    tee /dev/stderr | awk '$1 == "encoder_cpu_ms_per_iter" { c = $2 } $1 == "encoder_median_ms" { print $2, c }'
}

echo "MobileSAM encoder 1024x1024, ${threads} threads, ${iters} iters x ${rounds} rounds"
echo "onnxruntime $("$py" -c 'import onnxruntime; print(onnxruntime.__version__)'), $(nproc) CPUs"
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
for r in $(seq 1 "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  read -r o oc < <(ort_median)
  read -r e ec < <(ours_median)
  printf 'round %d: onnxruntime %8.1f ms (cpu %8.1f)   edgesift %8.1f ms (cpu %8.1f)   ratio %s (cpu %s)   load average %s\n' \
    "$r" "$o" "$oc" "$e" "$ec" "$(ratio "$e" "$o")" "$(ratio "$ec" "$oc")" "$load"
done
