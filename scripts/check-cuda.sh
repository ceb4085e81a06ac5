#!/usr/bin/env bash
# Compile-checks edgesift's `cuda` feature on a machine without a GPU or a CUDA toolkit.
#
#   scripts/check-cuda.sh            # cargo check --features cuda, in target/ (reuses the deps clippy checked)
#   scripts/check-cuda.sh cudnn      # the same with cuDNN
#
# nvcc comes from PyPI (nvidia-cuda-nvcc, the only wheels that ship the nvcc driver are CUDA 13's)
# into .venv-cuda, with the runtime and CCCL headers that candle's kernels include. candle-kernels
# compiles its .cu files to PTX for CUDA_COMPUTE_CAP (default 87, Jetson Orin). This proves the
# Rust side builds with CUDA; it does not link (libcuda is not here) and runs nothing on a GPU.
# For a Jetson build, build on the device with JetPack's own nvcc: PTX from CUDA 13 does not load
# on JetPack 6's CUDA 12 driver.
set -euo pipefail
cd "$(dirname "$0")/.."
feature="${1:-cuda}"
venv=.venv-cuda
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
nv="$(echo "$venv"/lib/python3*/site-packages)/nvidia/cu13"
if [ ! -x "$nv/bin/nvcc" ]; then
    # Pin every part to one release: a newer nvvm emits PTX that this ptxas refuses.
    "$venv/bin/pip" install -q "nvidia-cuda-nvcc==13.2.*" "nvidia-cuda-runtime==13.2.*" "nvidia-cuda-cccl==13.2.*" \
        "nvidia-nvvm==13.2.*" "nvidia-cuda-crt==13.2.*"
fi
nv="$(cd "$nv" && pwd)"
export PATH="$nv/bin:$PATH"
export CUDA_ROOT="$nv" CUDA_PATH="$nv" CUDA_TOOLKIT_ROOT_DIR="$nv"
export NVCC_PREPEND_FLAGS="-I$nv/include -I$nv/include/cccl ${NVCC_PREPEND_FLAGS:-}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-87}"
nvcc --version | tail -n 2
cargo check --features "$feature" --all-targets
echo "cuda check ($feature, compute cap $CUDA_COMPUTE_CAP): ok"
