#!/usr/bin/env bash
# LiteRT's libLiteRt.so for the tflite backend (`[model] backend = "tflite"`), which every
# edgesift build has and which loads the library when it opens its first .tflite model. Fetches
# it once (from the ai-edge-litert wheel on PyPI, no other download) into .litert/:
#
#   scripts/tflite.sh                                     # fetch (once); print its directory
#   scripts/tflite.sh target/release/edgesift run ...     # run a command with LITERT_LIB_DIR set
#
# scripts/setup.sh fetches it and scripts/test.sh sets LITERT_LIB_DIR for the tests. To ship it,
# copy libLiteRt.so next to the edgesift binary or into the system library path, or point
# EDGESIFT_LITERT_LIB at it (src/segment/tflite/ffi.rs lists where it is looked for).
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.3.0
lib=.litert/$version/lib
if [ ! -f "$lib/libLiteRt.so" ]; then
  [ -x .litert/venv/bin/pip ] || python3 -m venv .litert/venv
  rm -rf ".litert/$version/wheel"
  .litert/venv/bin/pip download -q --no-deps --only-binary=:all: "ai-edge-litert==$version" -d ".litert/$version/wheel" >&2
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
if [ $# -eq 0 ]; then
  echo "$LITERT_LIB_DIR"
  exit 0
fi
exec "$@"
