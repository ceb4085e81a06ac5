#!/usr/bin/env bash
# The project's test command: formatting, lints, and the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tflite backend's tests load LiteRT's libLiteRt.so (fetched once by scripts/setup.sh).
LITERT_LIB_DIR="$(scripts/tflite.sh)"
export LITERT_LIB_DIR
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
# The API documentation builds without warnings (broken or private links).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
