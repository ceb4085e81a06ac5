#!/usr/bin/env bash
# The int8 GEMM kernels (src/segment/kernels/qgemm.rs, std only) compiled alone for aarch64 and
# their unit tests run under qemu-aarch64-static as a Raspberry Pi 4 (Cortex-A72: NEON, no
# dotprod), a Pi 5 (Cortex-A76: dotprod) and qemu's `max` CPU. Seconds, where
# scripts/ci-aarch64.sh needs a cold cross build of every dependency (most of an hour here).
# Toolchain as scripts/cross-build.sh sets it up (Debian rustc + libstd-rust-web-dev:arm64,
# gcc-aarch64-linux-gnu, qemu-user-static). Every test must pass on each CPU, and the A72 must
# pick the plain NEON kernel (an `sdot` there is SIGILL).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/lib.rs" <<RS
#[allow(dead_code)]
#[path = "$root/src/segment/kernels/qgemm.rs"]
mod qgemm;
RS
${RUSTC:-/usr/bin/rustc} --edition 2021 --test -O --target aarch64-unknown-linux-gnu \
  -C linker=aarch64-linux-gnu-gcc -C target-feature=+crt-static "$dir/lib.rs" -o "$dir/qgemm-test"
for cpu in cortex-a72 cortex-a76 max; do
  echo "== qemu-aarch64-static -cpu $cpu"
  out=$(qemu-aarch64-static -cpu "$cpu" "$dir/qgemm-test" --nocapture 2>&1) || { echo "$out"; exit 1; }
  echo "$out" | grep -E "kernels on this CPU|test result"
  if [ "$cpu" = cortex-a72 ] && echo "$out" | grep -q NeonDot; then
    echo "cortex-a72 must not offer the sdot kernel" >&2; exit 1
  fi
done
