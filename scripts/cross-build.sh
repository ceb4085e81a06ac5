#!/usr/bin/env bash
# Builds edgesift for aarch64 (Raspberry Pi OS 64-bit, Jetson Linux) on a Debian 12 x86-64 host,
# without docker. Installs what it needs (once), then runs cargo for aarch64-unknown-linux-gnu.
#
#   scripts/cross-build.sh                       # release binary, dynamically linked (glibc of Debian 12: 2.36)
#   scripts/cross-build.sh --static              # fully static binary, runs on any aarch64 Linux
#   scripts/cross-build.sh --cpu cortex-a76      # tuned for one board (see cross/README.md)
#   scripts/cross-build.sh --glibc 2.31          # links against glibc 2.31 (JetPack 5 / Ubuntu 20.04), via cargo-zigbuild
#   scripts/cross-build.sh --install-only        # only install the toolchain
#   scripts/cross-build.sh -- test --no-run --lib   # any cargo command instead of `build --release`
#
# Toolchain: Debian's own Rust (`rustc-web`, 1.96 in bookworm-security) ships the aarch64 standard
# library as a Debian package (`libstd-rust-web-dev:arm64`), so no rustup target is needed; rustup's
# cargo drives it through RUSTC=/usr/bin/rustc. The linker is Debian's aarch64 cross gcc. Binaries
# run here under `qemu-aarch64-static` (set as the cargo runner), which needs no `-L` for static
# binaries.
#
# Output: target/cross/aarch64-unknown-linux-gnu/release/edgesift. The cross build has a target
# directory of its own (CARGO_TARGET_DIR, default target/cross): it uses another compiler than the
# host build, so sharing target/ would make the two lock and rebuild each other's host artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
static=0
cpu=""
glibc=""
install_only=0
cargo_cmd=()
while [ $# -gt 0 ]; do
  case "$1" in
    --static) static=1 ;;
    --cpu) cpu="$2"; shift ;;
    --cpu=*) cpu="${1#--cpu=}" ;;
    --glibc) glibc="$2"; shift ;;
    --glibc=*) glibc="${1#--glibc=}" ;;
    --install-only) install_only=1 ;;
    --) shift; cargo_cmd=("$@"); break ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "cross-build: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$static" -eq 1 ] && [ -n "$glibc" ]; then
  echo "cross-build: --static and --glibc exclude each other (a static binary needs no glibc)" >&2
  exit 2
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# --- toolchain -----------------------------------------------------------------------------
need=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu \
         libc6-dev-arm64-cross qemu-user-static clang libclang-dev; do
  installed "$p" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
  fi
  echo "cross-build: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ -n "$glibc" ] && ! command -v cargo-zigbuild >/dev/null 2>&1; then
  # zig (as the linker, with any glibc version's stubs) from PyPI; cargo-zigbuild from crates.io.
  python3 -m pip install -q ziglang
  cargo install --locked cargo-zigbuild
fi
[ "$install_only" -eq 1 ] && { echo "cross-build: toolchain ready"; exit 0; }

# --- environment -------------------------------------------------------------------------
# Debian's compiler, not rustup's: only it has the arm64 standard library installed.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
T=${TARGET//-/_}
T_UP=${T^^}
export "CARGO_TARGET_${T_UP}_LINKER=aarch64-linux-gnu-gcc"
export "CARGO_TARGET_${T_UP}_RUNNER=qemu-aarch64-static"
export "CC_${T}=aarch64-linux-gnu-gcc" "CXX_${T}=aarch64-linux-gnu-g++" "AR_${T}=aarch64-linux-gnu-ar"
# bindgen (v4l2-sys) parses the kernel headers of the target, not the host's.
export "BINDGEN_EXTRA_CLANG_ARGS_${T}=--sysroot=/usr/aarch64-linux-gnu"
rustflags="${RUSTFLAGS:-}"
[ -n "$cpu" ] && rustflags="$rustflags -C target-cpu=$cpu"
[ "$static" -eq 1 ] && rustflags="$rustflags -C target-feature=+crt-static"
export "CARGO_TARGET_${T_UP}_RUSTFLAGS=${rustflags# }"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cross}"
# A static (or any cross) build must not pick up the host's pkg-config results.
export PKG_CONFIG_ALLOW_CROSS=1

if [ "${#cargo_cmd[@]}" -eq 0 ]; then
  cargo_cmd=(build --release)
fi
sub="${cargo_cmd[0]}"
rest=("${cargo_cmd[@]:1}")
if [ -n "$glibc" ]; then
  # cargo-zigbuild links with `zig cc -target aarch64-linux-gnu.<glibc>`; it sets the linker.
  unset "CARGO_TARGET_${T_UP}_LINKER" "CC_${T}" "CXX_${T}" "AR_${T}"
  [ "$sub" = build ] && sub=zigbuild
  [ "$sub" = test ] && { echo "cross-build: --glibc only builds; run tests with --static" >&2; exit 2; }
  set -x
  exec cargo "$sub" --target "$TARGET.$glibc" "${rest[@]}"
fi
set -x
exec cargo "$sub" --target "$TARGET" "${rest[@]}"
