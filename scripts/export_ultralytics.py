#!/usr/bin/env python3
"""Export an ultralytics YOLOv8-seg checkpoint (*.pt) to the safetensors file edgesift loads.

Run this on a machine that has ultralytics and the weights (edgesift itself never needs Python):

    python scripts/export_ultralytics.py yolov8n-seg.pt models/yolov8n-seg.safetensors [--dtype f16]

The file holds `SegmentationModel.state_dict()` exactly as ultralytics names it
(`model.0.conv.weight`, `model.0.bn.running_var`, ..., `model.22.proto.cv1.conv.weight`), with
BatchNorm unfused (edgesift folds it at load), minus the integer `num_batches_tracked` counters.
Metadata: `names` (JSON object, class id as string -> name), `nc`, `task` (= segment), `imgsz`,
plus provenance (`source`, `ultralytics_version`, `arch`).

Licence: ultralytics' published weights (yolov8*-seg.pt) are AGPL-3.0; a file exported from them
carries that licence. Weights you trained yourself are yours.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def state_dict_tensors(model, dtype: str) -> dict:
    """The segmentation model's state_dict as contiguous CPU tensors in `dtype`."""
    import torch

    target = getattr(torch, DTYPES[dtype])
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if not torch.is_floating_point(value):
            raise SystemExit(f"unexpected non-float tensor {key} ({value.dtype})")
        out[key] = value.detach().to("cpu", target).contiguous()
    return out


def metadata_for(model, source: str, imgsz) -> dict:
    import ultralytics

    names = model.names if isinstance(model.names, dict) else dict(enumerate(model.names))
    head = model.model[-1]
    if type(head).__name__ != "Segment":
        raise SystemExit(f"{source}: last layer is {type(head).__name__}, not a YOLOv8 Segment head")
    return {
        "names": json.dumps({str(k): v for k, v in sorted(names.items())}),
        "nc": str(head.nc),
        "task": "segment",
        "imgsz": json.dumps(imgsz),
        "arch": "yolov8-seg",
        "source": Path(source).name,
        "ultralytics_version": ultralytics.__version__,
    }


def export_model(model, out: Path, dtype: str = "f32", source: str = "", imgsz=640) -> None:
    """Writes `model` (a SegmentationModel, BatchNorm unfused) to `out`."""
    import torch
    from safetensors.torch import save_file

    if not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        raise SystemExit("the model has no BatchNorm layers: it was fused; export before predicting")
    tensors = state_dict_tensors(model, dtype)
    meta = metadata_for(model, source, imgsz)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(out)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="ultralytics checkpoint, e.g. yolov8n-seg.pt or runs/segment/train/weights/best.pt")
    p.add_argument("out", type=Path, help="output .safetensors path")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="f32", help="storage dtype (default f32)")
    p.add_argument("--imgsz", type=int, default=None, help="input size to record (default: the checkpoint's train imgsz, else 640)")
    args = p.parse_args(argv)

    from ultralytics import YOLO

    yolo = YOLO(args.weights)
    model = yolo.model
    imgsz = args.imgsz or (getattr(model, "args", {}) or {}).get("imgsz", 640)
    export_model(model.float(), args.out, args.dtype, args.weights, imgsz)
    n = sum(1 for k in model.state_dict() if not k.endswith("num_batches_tracked"))
    print(f"wrote {args.out} ({n} tensors, {args.dtype}, nc={model.model[-1].nc}, imgsz={imgsz})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
