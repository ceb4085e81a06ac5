#!/usr/bin/env python3
"""Export MobileSAM to the safetensors file edgesift loads.

Run this on a machine with the Python tooling (edgesift itself never needs Python):

    .venv/bin/python scripts/export_mobilesam.py --checkpoint mobile_sam.pt models/mobile_sam.safetensors
    .venv/bin/python scripts/export_mobilesam.py --random-seed 7 /tmp/mobile_sam_random.safetensors

The model is built from MobileSAM's own Python code (`mobile_sam.build_sam_vit_t`, PyPI package
`mobilesam-mirror`, which needs `timm`). The file holds `Sam.state_dict()` exactly as MobileSAM names
it (`image_encoder.layers.1.blocks.0.attn.qkv.weight`, `mask_decoder.iou_token.weight`, ...), in f32,
Conv2d_BN unfused (edgesift folds BatchNorm at load), without the integer `num_batches_tracked`
counters and without TinyViT's unused ImageNet classifier (`image_encoder.head`, `norm_head`).
Metadata: `arch` (= mobilesam-vit_t), `image_size` (1024), `source`, `init`.

`--checkpoint` takes the official `mobile_sam.pt` (github.com/ChaoningZhang/MobileSAM, Apache-2.0; the
PyPI mirror ships the code only, not the weights). `--random-seed` instead fills every tensor from
[`seeded_state_dict`], a counter-based generator that edgesift's tests reimplement bit for bit in
Rust (`tests/mobilesam.rs`), so parity fixtures need no committed weights.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
EMBEDDINGS = re.compile(r"(iou_token|mask_tokens|point_embeddings\.\d+|not_a_point_embed|no_mask_embed)\.weight$")
UNUSED = ("image_encoder.head.", "image_encoder.norm_head.")


def fnv1a64(text: str) -> int:
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def uniform01(key: str, seed: int, n: int) -> np.ndarray:
    """n values in [0, 1) (multiples of 2^-24) for tensor `key`: splitmix64 of a per-key counter."""
    base = np.uint64(fnv1a64(key) ^ ((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF))
    with np.errstate(over="ignore"):
        z = base + (np.arange(1, n + 1, dtype=np.uint64) * GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def seeded_values(key: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """The value rule per tensor kind; everything is computed in f64, then rounded to f32 once."""
    n = int(np.prod(shape)) if shape else 1
    u = uniform01(key, seed, n)
    r = 2.0 * u - 1.0
    if key.endswith("running_var"):
        v = 0.5 + u
    elif key.endswith("running_mean"):
        v = 0.2 * r
    elif key.endswith("attention_biases"):
        v = r
    elif key.endswith("positional_encoding_gaussian_matrix"):
        v = 1.7 * r
    elif EMBEDDINGS.search(key):
        v = r
    elif len(shape) == 1 and key.endswith("weight"):
        v = 1.0 + 0.25 * r
    elif len(shape) == 1:
        v = 0.1 * r
    else:
        fan_in = int(np.prod(shape[1:]))
        v = math.sqrt(3.0 / fan_in) * r
    return v.astype(np.float32).reshape(shape)


def build(checkpoint: str | None):
    from mobile_sam import sam_model_registry

    return sam_model_registry["vit_t"](checkpoint=checkpoint).eval()


def seeded_state_dict(model, seed: int) -> None:
    import torch

    sd = model.state_dict()
    new = {}
    for key, value in sd.items():
        if not torch.is_floating_point(value):
            new[key] = value
            continue
        new[key] = torch.from_numpy(seeded_values(key, tuple(value.shape), seed))
    model.load_state_dict(new)
    # TinyViT's Attention caches its offset biases (`ab`, not in the state dict) when eval() is
    # called; build_sam_vit_t calls it before loading weights, so without this second call the
    # attention would keep the zero biases it was built with (MobileSAM's README calls eval()
    # after loading for the same reason).
    model.eval()


def tensors_of(model) -> dict:
    import torch

    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") or key.startswith(UNUSED):
            continue
        if not torch.is_floating_point(value):
            raise SystemExit(f"unexpected non-float tensor {key} ({value.dtype})")
        out[key] = value.detach().to("cpu", torch.float32).contiguous()
    return out


def export(model, out: Path, source: str, init: str) -> None:
    from safetensors.torch import save_file

    meta = {"arch": "mobilesam-vit_t", "image_size": "1024", "source": source, "init": init}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    save_file(tensors_of(model), str(tmp), metadata=meta)
    tmp.replace(out)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="output .safetensors path")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", help="the official mobile_sam.pt")
    g.add_argument("--random-seed", type=int, help="seeded weights (tests), no checkpoint needed")
    args = p.parse_args(argv)
    model = build(args.checkpoint)
    if args.checkpoint:
        export(model, args.out, Path(args.checkpoint).name, "checkpoint")
    else:
        seeded_state_dict(model, args.random_seed)
        export(model, args.out, "mobile_sam.build_sam_vit_t", f"seeded:{args.random_seed}")
    print(f"wrote {args.out} ({args.out.stat().st_size >> 20} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
