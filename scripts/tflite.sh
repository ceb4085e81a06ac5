#!/usr/bin/env bash
# cargo with the `tflite` feature. Fetches LiteRT's libLiteRt.so once (from the ai-edge-litert
# wheel on PyPI, no other download) into .litert/, sets LITERT_LIB_DIR for build.rs and runs
# cargo with --features tflite:
#
#   scripts/tflite.sh build [--release]          # target/*/edgesift with the TFLite backend
#   scripts/tflite.sh test --test tests tflite   # the TFLite parity tests
#   scripts/tflite.sh clippy --all-targets -- -D warnings
#
# The binary finds the library through its rpath (build.rs); to ship it, copy libLiteRt.so next
# to the binary (also on the rpath) or into the system library path.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.3.0
lib=.litert/$version/lib
if [ ! -f "$lib/libLiteRt.so" ]; then
  [ -x .litert/venv/bin/pip ] || python3 -m venv .litert/venv
  rm -rf ".litert/$version/wheel"
  .litert/venv/bin/pip download -q --no-deps --only-binary=:all: "ai-edge-litert==$version" -d ".litert/$version/wheel"
  mkdir -p "$lib"
  python3 - ".litert/$version/wheel" "$lib" <<'PY'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read("ai_edge_litert/libLiteRt.so")
out = pathlib.Path(sys.argv[2]) / "libLiteRt.so"
out.with_suffix(".tmp").write_bytes(data)
out.with_suffix(".tmp").rename(out)
print(f"tflite.sh: {out} from {wheel.name}", file=sys.stderr)
PY
fi
export LITERT_LIB_DIR="$PWD/$lib"
[ $# -gt 0 ] || { sed -n '2,12p' "$0"; exit 2; }
cmd=$1
shift
exec cargo "$cmd" --features tflite "$@"
