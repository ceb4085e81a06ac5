#!/usr/bin/env bash
# The daemon's cost per kept frame with [refine] on: the same synthetic stream through
# `edgesift run` with refine off, then on with each MobileSAM file given, and what the refined
# samples record about the refinement (MobileSAM's encoder and decoder time per kept frame).
#
#   scripts/bench_refine.sh [--frames 300] MOBILESAM.safetensors [MOBILESAM-int8.safetensors ...]
#
# Uses the bundled detector (models/edgesift-road-n-seg.safetensors), synthetic 1280x720 frames
# rendered as fast as possible (realtime = false), fsync off, a fresh store per run. Needs a
# release build (cargo build --release) and python3 for the summary.
set -euo pipefail
cd "$(dirname "$0")/.."

frames=300
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --frames) frames=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) files+=("$1"); shift ;;
  esac
done
[ ${#files[@]} -gt 0 ] || { echo "name at least one MobileSAM file" >&2; exit 2; }
bin=${EDGESIFT:-target/release/edgesift}
[ -x "$bin" ] || { echo "no $bin: run cargo build --release first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # label, refine section
  local label=$1 refine=$2 dir="$work/$1"
  mkdir -p "$dir"
  cat >"$dir/edgesift.toml" <<TOML
[source]
kind = "synthetic"
[source.synthetic]
seed = 5
width = 1280
height = 720
realtime = false
[model]
path = "$PWD/models/edgesift-road-n-seg.safetensors"
[store]
dir = "$dir/data"
min_free_bytes = 0
fsync = false
$refine
TOML
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$dir/cpu.txt" \
    "$bin" run --config "$dir/edgesift.toml" --max-frames "$frames" >"$dir/summary.txt" 2>"$dir/log.txt"
  t1=$(date +%s.%N)
  "$bin" ls --dir "$dir/data" --json >"$dir/samples.jsonl"
  python3 - "$label" "$t0" "$t1" "$dir" <<'PY'
import json, re, sys
label, t0, t1, d = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rows = [json.loads(l) for l in open(f"{d}/samples.jsonl") if l.strip()]
kept = len(rows)
cpu = sum(float(v) for v in open(f"{d}/cpu.txt").read().split()[-2:])
summary = open(f"{d}/summary.txt").read()
seg = int(re.search(r"segmented (\d+)", summary).group(1))
store = re.search(r"store p50 (\S+ ms) p95 (\S+ ms)", summary)
ref = [r["selection"].get("refine") for r in rows if r["selection"].get("refine")]
line = (f"{label:>12}: wall {t1 - t0:6.1f} s, CPU {cpu:6.1f} s, segmented {seg}, kept {kept}, "
        f"store p50 {store.group(1)} p95 {store.group(2)}")
work = [r for r in ref if r["instances"] > 0]
if ref:
    line += f", {len(ref) - len(work)} kept frames without a box (nothing to refine)"
if work:
    enc = sum(r["encoder_ms"] for r in work) / len(work)
    dec = sum(r["decoder_ms"] for r in work) / len(work)
    boxes = sum(r["instances"] for r in work)
    per_box = sum(r["decoder_ms"] for r in work) / boxes
    line += (f"; {len(work)} refined ({boxes} boxes), per refined frame: encoder {enc:.0f} ms + "
             f"decoder {dec:.0f} ms ({per_box:.0f} ms per box)")
print(line)
PY
}

echo "frames $frames, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run off ""
for f in "${files[@]}"; do
  run "$(basename "$f" .safetensors)" "[refine]
enabled = true
model = \"$(realpath "$f")\""
done
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
