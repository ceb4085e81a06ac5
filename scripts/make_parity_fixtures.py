#!/usr/bin/env python3
"""Generate the YOLOv8-seg parity fixtures in tests/data/parity/ with ultralytics itself.

    .venv/bin/python scripts/make_parity_fixtures.py        # after scripts/setup.sh --python

For each fixture a model is built from ultralytics' own yaml (fixed seed), its BatchNorm statistics
and affine parameters are randomised (calibrated on the image first, so activations stay O(1) and
depend on the input: a wrong BatchNorm fold, epsilon or wiring shows in the outputs), and the head's
last convolutions are rescaled so that a realistic number of detections passes the threshold.
Then it records:

- `<name>.safetensors`: the weights, through scripts/export_ultralytics.py (f32 or f16 storage);
- `<name>_io.safetensors`: `images` (ultralytics' own letterbox of the photo, 1x3xHxW in 0..1) and
  the unfused model's raw outputs `pred` (1 x (4+nc+32) x N) and `proto` (1 x 32 x H/4 x W/4);
- `<name>.json`: the thresholds, the letterbox, and the instances ultralytics' predictor returns
  for the photo with `retina_masks=True` (class, score, box in original pixels, COCO RLE mask).

With f16 storage the reference outputs are computed from the f16-rounded weights, so edgesift must
match them to f32 accuracy. The confidence threshold is picked in a gap of the score distribution
so that the instance comparison does not hinge on a score within rounding of the threshold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_ultralytics import export_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = DATA / "parity"
SYNTH_NAMES = ["car", "truck", "bus", "pedestrian", "cyclist", "traffic_cone", "animal"]

FIXTURES = [
    dict(name="v8n_coffee_320", scale="n", nc=80, dtype="f32", image="coffee.png", imgsz=320, seed=1, target=150),
    dict(name="v8s_chelsea_256_f16", scale="s", nc=7, dtype="f16", image="chelsea.png", imgsz=256, seed=2, target=80),
]


def letterboxed(path: Path, imgsz: int) -> torch.Tensor:
    from ultralytics.data.augment import LetterBox

    bgr = cv2.imread(str(path))
    lb = LetterBox(imgsz, auto=True, stride=32)(image=bgr)
    return torch.from_numpy(lb[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0


def build(scale: str, nc: int, seed: int, names: list[str]):
    from ultralytics import YOLO
    from ultralytics.nn.tasks import SegmentationModel

    torch.manual_seed(seed)
    yolo = YOLO(f"yolov8{scale}-seg.yaml", task="segment")
    model = SegmentationModel(f"yolov8{scale}-seg.yaml", nc=nc, verbose=False)
    model.args, model.task = yolo.model.args, "segment"
    model.names = dict(enumerate(names))
    yolo.model = model
    return yolo


def randomise(model, calib: torch.Tensor, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # cumulative average: running stats = the calibration batch's
    model.train()
    with torch.no_grad():
        model(calib)
    for b in bns:
        c = b.num_features
        b.running_mean.data += torch.randn(c, generator=g) * 0.1 * b.running_var.sqrt()
        b.running_var.data *= torch.rand(c, generator=g) * 0.7 + 0.7
        b.weight.data = torch.rand(c, generator=g) * 0.6 + 0.4
        b.bias.data = torch.randn(c, generator=g) * 0.3
        b.momentum = 0.03
    model.eval()
    head = model.model[-1]
    # Output statistics of the head's last 1x1 convs: DFL logits, class logits, mask coefficients.
    for name, (mean, std) in {"cv2": (1.0, 2.0), "cv3": (-4.0, 1.5), "cv4": (0.0, 2.0)}.items():
        for seq in getattr(head, name):
            conv, outs = seq[-1], []
            h = conv.register_forward_hook(lambda mod, i, o: outs.append(o))
            with torch.no_grad():
                model(calib[:2])
            h.remove()
            o = outs[0]
            s, mu = o.std(dim=(0, 2, 3)), o.mean(dim=(0, 2, 3))
            conv.weight.data *= (std / s)[:, None, None, None]
            conv.bias.data = (conv.bias.data - mu) * (std / s) + mean


def pick_conf(pred: torch.Tensor, nc: int, target: int) -> float:
    """A threshold with about `target` candidates above it and no score within 2e-3 of it."""
    scores = pred[0, 4 : 4 + nc].max(0).values.sort(descending=True).values
    for k in range(target, len(scores) - 1):
        hi, lo = scores[k].item(), scores[k + 1].item()
        if hi - lo > 4e-3:
            return round((hi + lo) / 2, 4)
    raise SystemExit("no gap in the score distribution")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for fx in FIXTURES:
        name, nc = fx["name"], fx["nc"]
        names = SYNTH_NAMES if nc == len(SYNTH_NAMES) else [f"class_{i}" for i in range(nc)]
        image_path = DATA / fx["image"]
        x = letterboxed(image_path, fx["imgsz"])
        g = torch.Generator().manual_seed(fx["seed"])
        calib = torch.cat([x, x.flip(3), torch.rand(2, *x.shape[1:], generator=g)])
        yolo = build(fx["scale"], nc, fx["seed"], names)
        model = yolo.model
        randomise(model, calib, fx["seed"] + 100)

        weights = OUT / f"{name}.safetensors"
        export_model(model, weights, fx["dtype"], f"yolov8{fx['scale']}-seg.yaml (random, seed {fx['seed']})", fx["imgsz"])
        if fx["dtype"] != "f32":  # reference = f32 computation on the rounded weights
            from safetensors.torch import load_file

            stored = load_file(str(weights))
            missing, unexpected = model.load_state_dict({k: v.float() for k, v in stored.items()}, strict=False)
            assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
        model.eval()
        with torch.no_grad():
            (pred, proto), _ = model(x)
        save_file(
            {"images": x.contiguous(), "pred": pred.contiguous(), "proto": proto.contiguous()},
            str(OUT / f"{name}_io.safetensors"),
        )
        conf = pick_conf(pred, nc, fx["target"])

        # The predictor fuses the model in place, so it runs last.
        res = yolo.predict(
            source=str(image_path), imgsz=fx["imgsz"], conf=conf, iou=0.7, retina_masks=True,
            max_det=300, device="cpu", verbose=False, save=False,
        )[0]
        instances = []
        if res.masks is not None:
            masks = res.masks.data.cpu().numpy().astype(np.uint8)
            for i in range(len(res.boxes)):
                rle = mask_util.encode(np.asfortranarray(masks[i]))
                instances.append(
                    {
                        "class_id": int(res.boxes.cls[i]),
                        "score": float(res.boxes.conf[i]),
                        "box": [float(v) for v in res.boxes.xyxy[i]],
                        "mask": {"size": rle["size"], "counts": rle["counts"].decode()},
                        "area": int(masks[i].sum()),
                    }
                )
        h, w = res.orig_shape
        doc = {
            "image": fx["image"],
            "scale": fx["scale"],
            "nc": nc,
            "dtype": fx["dtype"],
            "imgsz": fx["imgsz"],
            "input_shape": list(x.shape[2:]),
            "orig_shape": [h, w],
            "conf": conf,
            "iou": 0.7,
            "instances": instances,
        }
        (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{name}: input {list(x.shape)}, conf {conf}, {len(instances)} instances, weights {weights.stat().st_size >> 10} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
