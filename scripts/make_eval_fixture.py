#!/usr/bin/env python3
"""Generate tests/data/eval/random_coco.json: random ground truth and detections (boxes and masks,
crowd regions, near misses, more than 100 detections on one image) with pycocotools' COCOeval
stats for both IoU types, so tests/eval.rs can check edgesift's evaluator against pycocotools.

    .venv/bin/python scripts/make_eval_fixture.py
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "eval" / "random_coco.json"
W, H = 64, 48


def blob(rng, x, y, w, h):
    """A random blob inside the box: an ellipse with a bite taken out."""
    m = np.zeros((H, W), dtype=np.uint8)
    yy, xx = np.mgrid[0:H, 0:W]
    cx, cy = x + w / 2, y + h / 2
    inside = ((xx + 0.5 - cx) / (w / 2)) ** 2 + ((yy + 0.5 - cy) / (h / 2)) ** 2 <= 1
    m[inside] = 1
    bx, by = x + rng.uniform(0, w), y + rng.uniform(0, h)
    m[((xx - bx) ** 2 + (yy - by) ** 2) < (min(w, h) / 4) ** 2] = 0
    if m.sum() == 0:
        m[int(cy) % H, int(cx) % W] = 1
    return m


def rle(m):
    r = mask_util.encode(np.asfortranarray(m))
    return {"size": r["size"], "counts": r["counts"].decode()}


def main():
    rng = np.random.default_rng(7)
    images = [{"id": i, "width": W, "height": H, "file_name": f"{i}.png"} for i in range(1, 11)]
    cats = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]
    gts, dts = [], []
    aid = 1
    for img in images:
        for _ in range(rng.integers(1, 8)):
            c = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
            w, h = rng.uniform(6, 30), rng.uniform(6, 24)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            m = blob(rng, x, y, w, h)
            crowd = int(rng.random() < 0.1)
            gts.append({"id": aid, "image_id": img["id"], "category_id": c, "bbox": [x, y, w, h],
                        "area": float(m.sum()), "iscrowd": crowd, "segmentation": rle(m)})
            aid += 1
            # Detections near this object: jittered boxes/masks, sometimes a wrong class.
            for _ in range(rng.integers(0, 4)):
                j = rng.normal(0, 1.5, 4)
                dx, dy, dw, dh = x + j[0], y + j[1], max(2, w + j[2]), max(2, h + j[3])
                dc = c if rng.random() < 0.85 else int(rng.choice([1, 2, 3]))
                dm = blob(rng, dx, dy, dw, dh)
                dts.append({"image_id": img["id"], "category_id": dc, "bbox": [dx, dy, dw, dh],
                            "score": float(rng.random()), "segmentation": rle(dm)})
        # Background false positives.
        for _ in range(rng.integers(0, 3)):
            w, h = rng.uniform(4, 20), rng.uniform(4, 20)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            dts.append({"image_id": img["id"], "category_id": int(rng.choice([1, 2, 3])), "bbox": [x, y, w, h],
                        "score": float(rng.random()), "segmentation": rle(blob(rng, x, y, w, h))})
    # One image with more than 100 detections, to exercise maxDets.
    for _ in range(120):
        w, h = rng.uniform(4, 12), rng.uniform(4, 12)
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        dts.append({"image_id": 1, "category_id": 1, "bbox": [x, y, w, h], "score": float(rng.random()),
                    "segmentation": rle(blob(rng, x, y, w, h))})

    gt_doc = {"images": images, "categories": cats, "annotations": gts}
    coco = COCO()
    coco.dataset = json.loads(json.dumps(gt_doc))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    stats = {}
    for iou_type in ("bbox", "segm"):
        det = [dict(d) for d in dts]
        if iou_type == "bbox":
            for d in det:
                d.pop("segmentation")
        with contextlib.redirect_stdout(io.StringIO()):
            res = coco.loadRes(det)
            ev = COCOeval(coco, res, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        stats[iou_type] = {"map": ev.stats[0], "map50": ev.stats[1], "map75": ev.stats[2], "mar100": ev.stats[8]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"ground_truth": gt_doc, "detections": dts, "pycocotools": stats}) + "\n")
    print(f"{OUT}: {len(gts)} objects, {len(dts)} detections, {stats}")


if __name__ == "__main__":
    main()
