#!/usr/bin/env bash
# The project's test command: formatting, lints, and the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
