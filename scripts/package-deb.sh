#!/usr/bin/env bash
# Builds the edgesift .deb with cargo-deb (metadata: [package.metadata.deb] in Cargo.toml).
#
#   scripts/package-deb.sh            # amd64, for this host (builds the release binary)
#   scripts/package-deb.sh --arm64    # arm64: static cross build (scripts/cross-build.sh), then package
#
# Output: target/debian/edgesift_<version>-1_amd64.deb, target/cross/debian/..._arm64.deb. Inspect with
# `dpkg-deb --info FILE` and `dpkg-deb --contents FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=amd64
for arg in "$@"; do
  case "$arg" in
    --arm64) arch=arm64 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "package-deb: unknown option $arg" >&2; exit 2 ;;
  esac
done

if ! command -v cargo-deb >/dev/null 2>&1; then
  cargo install --locked cargo-deb
fi
if [ ! -e models/edgesift-road-n-seg.safetensors ]; then
  echo "package-deb: models/edgesift-road-n-seg.safetensors is missing (see models/README.md)" >&2
  exit 1
fi

if [ "$arch" = arm64 ]; then
  # Static: one package for Raspberry Pi OS (glibc 2.36) and JetPack 5/6 (2.31/2.35) alike.
  scripts/cross-build.sh --static
  CARGO_TARGET_DIR=target/cross cargo deb --no-build --target aarch64-unknown-linux-gnu --strip
else
  cargo deb --locked --strip
fi
