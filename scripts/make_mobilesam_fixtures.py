#!/usr/bin/env python3
"""Generate the MobileSAM parity fixtures in tests/data/parity/ with MobileSAM's own Python code.

    .venv/bin/python scripts/make_mobilesam_fixtures.py

The model is `mobile_sam.build_sam_vit_t` (PyPI `mobilesam-mirror`) with every tensor filled by the
seeded generator of scripts/export_mobilesam.py, which tests/mobilesam.rs reimplements bit for bit:
no weights are committed. The official predictor (`SamPredictor`) then runs on coffee.png and this
records:

- `mobilesam_coffee.png`: the image after MobileSAM's own resize (longest side 1024, PIL);
- `mobilesam_coffee_io.safetensors`: `features` (1x256x64x64 image embeddings) and, per prompt,
  `<prompt>_low_res` (the decoder's 256x256 mask logits) and `<prompt>_iou`;
- `mobilesam_coffee.json`: the seed, the exported tensors' names, shapes and sums (so the test can
  rebuild the weights file), the prompts (original image pixels) and, per prompt, the predictor's
  masks at the original resolution (COCO RLE) with their IoU predictions; and the masks of
  `SamAutomaticMaskGenerator` (the "everything" mode) on a 6x6 point grid.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import torch
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_mobilesam import build, seeded_state_dict, tensors_of  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = DATA / "parity"
SEED = 7
EVERYTHING_SIDE = 6
EVERYTHING_IOU = 0.5
EVERYTHING_NMS = 1.0
EVERYTHING_STABILITY = 0.03
PROMPTS = {
    # name: (kwargs for SamPredictor.predict, multimask)
    "box": dict(box=[150.0, 60.0, 470.0, 330.0], multimask_output=False),
    "point": dict(point_coords=[[300.0, 200.0]], point_labels=[1], multimask_output=True),
    "box_point": dict(box=[80.0, 40.0, 420.0, 300.0], point_coords=[[200.0, 120.0]], point_labels=[0], multimask_output=False),
}


def main() -> int:
    from mobile_sam import SamPredictor

    torch.set_num_threads(2)
    model = build(None)
    seeded_state_dict(model, SEED)
    predictor = SamPredictor(model)
    rgb = np.array(Image.open(DATA / "coffee.png").convert("RGB"))
    resized = predictor.transform.apply_image(rgb)
    Image.fromarray(resized).save(OUT / "mobilesam_coffee.png")
    with torch.no_grad():
        predictor.set_image(rgb)
    tensors = {"features": predictor.features.contiguous()}
    doc = {
        "image": "coffee.png",
        "seed": SEED,
        "orig_shape": list(rgb.shape[:2]),
        "input_shape": list(resized.shape[:2]),
        "prompts": {},
        # What the Rust test regenerates: every exported tensor's shape and f64 sum.
        "tensors": {k: {"shape": list(v.shape), "sum": float(v.double().sum())} for k, v in sorted(tensors_of(model).items())},
    }
    for name, kw in PROMPTS.items():
        args = {k: np.array(v) for k, v in kw.items() if k != "multimask_output"}
        with torch.no_grad():
            masks, iou, low = predictor.predict(**args, multimask_output=kw["multimask_output"])
        tensors[f"{name}_low_res"] = torch.from_numpy(low).contiguous()
        tensors[f"{name}_iou"] = torch.from_numpy(iou).contiguous()
        rles = []
        for m in masks:
            rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
            rles.append({"size": rle["size"], "counts": rle["counts"].decode(), "area": int(m.sum())})
        doc["prompts"][name] = {**kw, "iou": [float(v) for v in iou], "masks": rles}
        print(name, "iou", iou, "areas", [r["area"] for r in rles], "of", m.size)
    # Automatic mask generation on a small grid. The thresholds suit the seeded weights (IoU
    # predictions spread over [-1, 1], speckled masks whose boxes all cover the whole image, so
    # any NMS below 1.0 keeps one mask): both filters cut the set, NMS is tested in Rust alone.
    from mobile_sam import SamAutomaticMaskGenerator

    opts = dict(points_per_side=EVERYTHING_SIDE, points_per_batch=8, pred_iou_thresh=EVERYTHING_IOU,
                stability_score_thresh=EVERYTHING_STABILITY, box_nms_thresh=EVERYTHING_NMS, output_mode="coco_rle")
    with torch.no_grad():
        anns = SamAutomaticMaskGenerator(model, **opts).generate(rgb)
    doc["everything"] = {
        "options": {k: v for k, v in opts.items() if k != "output_mode"},
        "masks": [
            {
                "mask": {"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"]},
                "area": int(a["area"]),
                "bbox_xywh": a["bbox"],
                "predicted_iou": a["predicted_iou"],
                "stability_score": a["stability_score"],
                "point": a["point_coords"][0],
            }
            for a in anns
        ],
    }
    print("everything:", len(anns), "masks", sorted((round(a["predicted_iou"], 3), round(a["stability_score"], 4)) for a in anns))
    save_file(tensors, str(OUT / "mobilesam_coffee_io.safetensors"))
    (OUT / "mobilesam_coffee.json").write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
