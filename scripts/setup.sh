#!/usr/bin/env bash
# Installs every system package and tool edgesift needs to build and test on Debian 12 (x86-64 or
# arm64). Idempotent: run it again at any time.
#
#   scripts/setup.sh            # build + test toolchain (what CI runs)
#   scripts/setup.sh --python   # also the offline Python tooling in .venv (export, fixtures, training)
set -euo pipefail
cd "$(dirname "$0")/.."

with_python=0
for arg in "$@"; do
  case "$arg" in
    --python) with_python=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# C toolchain for rusqlite's bundled SQLite; clang/libclang for the v4l crate's bindgen; python3-venv (pip) for
# scripts/check-cuda.sh (nvcc from PyPI), scripts/tflite.sh (libLiteRt.so from PyPI) and the Python tooling.
packages=(build-essential pkg-config clang libclang-dev ca-certificates curl git python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust: a stable toolchain with rustfmt and clippy (rustup when cargo is absent).
if ! command -v cargo >/dev/null 2>&1; then
  if [ ! -x "$HOME/.cargo/bin/rustup" ]; then
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  fi
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

if [ "$with_python" -eq 1 ]; then
  if ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed" \
     && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    $sudo apt-get install -y -qq --no-install-recommends python3-venv
  fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r scripts/requirements.txt
fi
# LiteRT's libLiteRt.so for the tflite backend and its tests (from PyPI's ai-edge-litert wheel).
scripts/tflite.sh >/dev/null
echo "setup: done"
