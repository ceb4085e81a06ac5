#!/usr/bin/env python3
"""Score an ultralytics checkpoint on an edgesift COCO split three ways, to compare with `edgesift eval`.

    .venv/bin/python scripts/eval_ultralytics_coco.py --weights best.pt --dataset DIR [--imgsz 320]

1. `ultralytics val` as is: its mask figures compare masks at the prototype resolution (a quarter
   of the network input, here 88x56 for a 640x360 image at imgsz 320) against ground truth
   rasterised from polygons at that resolution.
2. `ultralytics val save_json=True`: the same predictions with masks at the image's resolution
   (`process_mask_native`); ultralytics' own figures of that run, and the `predictions.json` it
   writes.
3. pycocotools' COCOeval (the reference `edgesift eval` reproduces) on that `predictions.json`
   against the split's COCO annotations (exact RLE masks at full resolution).

(3) is the same protocol as `edgesift eval`; (1) is what ultralytics prints. Prints one JSON
object with all three.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, type=Path)
    p.add_argument("--dataset", required=True, type=Path, help="edgesift synth output (data.yaml + annotations/)")
    p.add_argument("--split", default="val")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from ultralytics import YOLO

    data = str(args.dataset / "data.yaml")
    common = dict(data=data, split=args.split, imgsz=args.imgsz, batch=args.batch, conf=0.001, iou=0.7,
                  device="cpu", plots=False, verbose=False)
    out: dict = {"weights": str(args.weights), "dataset": str(args.dataset), "imgsz": args.imgsz}

    m = YOLO(str(args.weights)).val(**common)
    out["ultralytics_val"] = figures(m)

    with tempfile.TemporaryDirectory() as tmp:
        m = YOLO(str(args.weights)).val(**common, save_json=True, project=tmp, name="val")
        out["ultralytics_val_save_json"] = figures(m)
        preds = json.loads((Path(m.save_dir) / "predictions.json").read_text())
    names = YOLO(str(args.weights)).names

    ann = args.dataset / "annotations" / f"instances_{args.split}.json"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
    image_by_stem = {Path(i["file_name"]).stem: i["id"] for i in gt.dataset["images"]}
    category_by_name = {c["name"]: c["id"] for c in gt.dataset["categories"]}
    for d in preds:
        d["image_id"] = image_by_stem[str(d["image_id"])]
        # ultralytics numbers a non-COCO dataset's classes 1..nc in model order
        d["category_id"] = category_by_name[names[d["category_id"] - 1]]
    out["predictions"] = len(preds)
    pyco = {}
    for iou_type in ("bbox", "segm"):
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(preds)
            e = COCOeval(gt, dt, iou_type)
            e.evaluate()
            e.accumulate()
            e.summarize()
        pyco["box" if iou_type == "bbox" else "mask"] = {"map50_95": e.stats[0], "map50": e.stats[1]}
    out["pycocotools_on_ultralytics_predictions"] = pyco
    print(json.dumps(out, indent=1))
    return 0


def figures(m) -> dict:
    return {
        "box": {"map50_95": float(m.box.map), "map50": float(m.box.map50)},
        "mask": {"map50_95": float(m.seg.map), "map50": float(m.seg.map50)},
    }


if __name__ == "__main__":
    sys.exit(main())
