#!/usr/bin/env bash
# Resident memory and start-up time of `edgesift run` (issue 6): runs the daemon on a config
# (default: config/edgesift.toml, the synthetic 1280x720 road source through the bundled model)
# for a while, samples /proc/PID/status every second, and prints
#
#   peak_rss_mib        VmHWM at exit (the peak resident set of the whole run)
#   steady_rss_mib      mean VmRSS over the second half of the run
#   frame_buffers_peak  most frame images alive at once (each 2.7 MB at 1280x720)
#   model_load_ms       loading the model
#   first_frame_ms      from the start of the run to the first segmented frame (model load included)
#   segmented_fps       frames through the model per second
#
# Usage: scripts/bench_rss.sh [--duration S] [--model FILE] [--int8] [--imgsz N] [--config FILE]
#                             [--bin PATH] [--keep DIR]
#   --int8   quantize the model first (`edgesift quantize --dtype int8`, into a temporary file)
#   --imgsz  network input size (default: the one recorded in the model file, 416 for the bundled)
#   --keep   leave the log, the samples and the store in DIR
# Build first: cargo build --release --locked --bin edgesift
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
duration=60
model=""
int8=0
imgsz=""
config="$root/config/edgesift.toml"
bin="$root/target/release/edgesift"
keep=""
while [ $# -gt 0 ]; do
    case $1 in
        --duration) duration=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        --int8) int8=1; shift ;;
        --imgsz) imgsz=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --keep) keep=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "no $bin; cargo build --release --locked --bin edgesift" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${keep:-$work}
mkdir -p "$out"

# The config as given, with the model by absolute path and the input size when asked.
[ -n "$model" ] || model="$root/models/edgesift-road-n-seg.safetensors"
model=$(realpath "$model")
if [ "$int8" = 1 ]; then
    "$bin" quantize --in "$model" --out "$work/int8.safetensors" --dtype int8 >/dev/null
    model="$work/int8.safetensors"
fi
awk -v model="$model" -v imgsz="$imgsz" '
    /^\[/ { section = $0 }
    section == "[model]" && /^path *=/ { print "path = \"" model "\""; next }
    section == "[model]" && /^#? *imgsz *=/ && imgsz != "" { print "imgsz = " imgsz; next }
    section == "[metrics]" && /^listen *=/ { print "listen = \"127.0.0.1:0\""; next }
    { print }' "$config" > "$work/edgesift.toml"

rm -rf "$out/store"
"$bin" run --config "$work/edgesift.toml" --data-dir "$out/store" --duration "$duration" \
    > "$out/summary.txt" 2> "$out/log.txt" &
pid=$!
: > "$out/samples.txt"
while kill -0 "$pid" 2>/dev/null; do
    awk '/^VmRSS|^VmHWM/ { printf "%s %s ", $1, $2 } END { print "" }' "/proc/$pid/status" \
        >> "$out/samples.txt" 2>/dev/null || true
    sleep 1
done
wait "$pid" || { tail -5 "$out/log.txt" >&2; exit 1; }

field() { grep -o "$1" "$2" | head -1 | grep -o '[0-9.]*$' || echo "?"; }
echo "model $(basename "$model") imgsz ${imgsz:-file} duration ${duration}s"
# VmHWM from the summary; an older binary without that line: the last VmHWM sampled.
if grep -q 'peak resident' "$out/summary.txt"; then
    awk '/peak resident/ { v = $4; if ($5 == "GiB") v *= 1024; printf "peak_rss_mib %.1f\n", v }' \
        "$out/summary.txt"
else
    awk '{ for (i = 1; i < NF; i++) if ($i == "VmHWM:" && $(i + 1) > m) m = $(i + 1) }
         END { printf "peak_rss_mib %.1f (sampled)\n", m / 1024 }' "$out/samples.txt"
fi
awk '{ for (i = 1; i < NF; i++) if ($i == "VmRSS:") r[n++] = $(i + 1) }
     END { s = 0; c = 0; for (i = int(n / 2); i < n; i++) { s += r[i]; c++ }
           if (c) printf "steady_rss_mib %.1f\n", s / c / 1024 }' "$out/samples.txt"
echo "frame_buffers_peak $(field 'at most [0-9]*' "$out/summary.txt")"
echo "model_load_ms $(field 'took_ms=[0-9]*' "$out/log.txt")"
echo "first_frame_ms $(field 'first frame segmented since_start_ms=[0-9]*' "$out/log.txt")"
grep -o 'segmented [0-9]* ([0-9.]* fps)' "$out/summary.txt" | awk '{ gsub(/\(/, "", $3); print "segmented_fps", $3 }'
