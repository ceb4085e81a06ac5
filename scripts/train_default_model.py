#!/usr/bin/env python3
"""Train edgesift's default model, yolov8n-seg on the synthetic road scenes, on the CPU.

    scripts/setup.sh --python && cargo build --release
    .venv/bin/python scripts/train_default_model.py            # 30 epochs, ~3.3 h on 2 idle cores
    # the bundled model (models/README.md): four stages, the last two on labels of >= 256 pixels,
    # the last with a second seed family and animal images listed three times; then re-exported
    # with `scripts/export_ultralytics.py ... --dtype f16 --imgsz 416` (it runs at 416)
    .venv/bin/python scripts/train_default_model.py --hours 1.2 --finetune-hours 0.85 2.1 1.6 \
        --finetune-min-pixels 40 256 256 --finetune-extra-frames 0 0 3000 --finetune-rare-repeat 1 1 3

Steps (each skipped when its output already exists, so an interrupted run resumes):
1. `edgesift synth` renders the training set (train + val splits, one seed family) and a held-out
   test set from another seed family, at 640x360, in yolo-seg and COCO formats.
2. ultralytics trains `yolov8n-seg.yaml` from scratch (no pretrained weights are available here).
3. ultralytics validates the best checkpoint on the held-out test split (conf 0.001, iou 0.7).
4. `scripts/export_ultralytics.py` writes `models/edgesift-road-n-seg.safetensors` (f16 storage).
5. `edgesift eval` scores the exported model on the same held-out split with the Rust pipeline.
A JSON report with every figure and time lands in `<work>/report.json`; the model card in
`models/README.md` is written from it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def run(cmd: list[str]) -> str:
    print("+", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def synth(edgesift: str, out: Path, frames: int, seed: int, val_fraction: float, args, min_pixels: int) -> None:
    if (out / "data.yaml").exists():
        print(f"{out}: already rendered", flush=True)
        return
    if out.exists():
        shutil.rmtree(out)
    run([edgesift, "synth", "--out", str(out), "--frames", str(frames), "--seed", str(seed),
         "--format", "yolo-seg,coco", "--width", str(args.width), "--height", str(args.height),
         "--val-fraction", str(val_fraction), "--min-pixels", str(min_pixels)])


RARE_CLASS = 6  # animal, the last class of src/capture/synthetic's label set


def stage_data(work: Path, name: str, base: Path, min_pixels: int, extra_frames: int, rare_repeat: int,
               stage: int, args) -> Path:
    """The data.yaml of one fine-tune stage: the base split, plus (optionally) another seed family
    of images, with images holding the rare class listed `rare_repeat` times."""
    if extra_frames == 0 and rare_repeat == 1:
        return base / "data.yaml"
    train_dirs = [base / "images" / "train"]
    if extra_frames:
        extra = work / f"extra{stage + 1}-mp{min_pixels}"
        synth(args.edgesift, extra, extra_frames, args.seed + 1 + stage, 0.05, args, min_pixels)
        train_dirs.append(extra / "images" / "train")
    lines = []
    for d in train_dirs:
        for image in sorted(d.glob("*.jpg")):
            label = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
            rare = label.exists() and any(line.split()[:1] == [str(RARE_CLASS)] for line in label.read_text().splitlines())
            lines += [str(image)] * (rare_repeat if rare else 1)
    listing = work / f"{name}-train.txt"
    listing.write_text("\n".join(lines) + "\n")
    names = (base / "data.yaml").read_text().split("names:", 1)[1]
    yaml = work / f"{name}.yaml"
    yaml.write_text(f"train: '{listing}'\nval: '{base / 'images' / 'val'}'\nnames:{names}")
    print(f"{yaml}: {len(lines)} training images listed", flush=True)
    return yaml


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--edgesift", default=str(ROOT / "target" / "release" / "edgesift"))
    p.add_argument("--work", type=Path, default=ROOT / ".work" / "train")
    p.add_argument("--frames", type=int, default=3000, help="train + val images")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-frames", type=int, default=600, help="held-out images (another seed family)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--test-seed", type=int, default=1007)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--min-pixels", type=int, default=40)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hours", type=float, default=None,
                   help="wall-clock training budget; ultralytics fits the LR schedule to it (overrides --epochs)")
    p.add_argument("--finetune-hours", type=float, nargs="+", default=[],
                   help="then continue from the previous stage's best weights for this long (one more "
                        "stage per value, each with its own LR schedule and no warm-up), when one run "
                        "could not get the time")
    p.add_argument("--finetune-min-pixels", type=int, nargs="+", default=[],
                   help="--min-pixels of the labels each fine-tune stage trains on (default: --min-pixels); "
                        "the held-out split is labelled like the last stage")
    p.add_argument("--finetune-extra-frames", type=int, nargs="+", default=[],
                   help="per fine-tune stage: images of one more seed family (seed + 1 + stage) added to "
                        "its training set (0 = none)")
    p.add_argument("--finetune-rare-repeat", type=int, nargs="+", default=[],
                   help="per fine-tune stage: list training images that hold the rare class (animal) this "
                        "many times (repeat-factor sampling as in LVIS; 1 = plain)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "models" / "edgesift-road-n-seg.safetensors")
    args = p.parse_args()

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    report_path = work / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report["args"] = {k: str(v) for k, v in vars(args).items()}

    stage_min_pixels = args.finetune_min_pixels or [args.min_pixels] * len(args.finetune_hours)
    if len(stage_min_pixels) != len(args.finetune_hours):
        p.error("--finetune-min-pixels needs one value per --finetune-hours value")

    n_stages = len(args.finetune_hours)
    extra_frames = args.finetune_extra_frames or [0] * n_stages
    rare_repeat = args.finetune_rare_repeat or [1] * n_stages
    for name, values in (("--finetune-extra-frames", extra_frames), ("--finetune-rare-repeat", rare_repeat)):
        if len(values) != n_stages:
            p.error(f"{name} needs one value per --finetune-hours value")

    def split_dir(name: str, min_pixels: int) -> Path:
        # The same seeds render the same images; only the labels depend on min_pixels.
        return work / (name if min_pixels == args.min_pixels else f"{name}-mp{min_pixels}")

    t0 = time.time()
    for mp in sorted({args.min_pixels, *stage_min_pixels}):
        synth(args.edgesift, split_dir("data", mp), args.frames, args.seed, args.val_fraction, args, mp)
    test_min_pixels = stage_min_pixels[-1] if stage_min_pixels else args.min_pixels
    test_dir = split_dir("test", test_min_pixels)
    synth(args.edgesift, test_dir, args.test_frames, args.test_seed, 1.0, args, test_min_pixels)
    report["synth_seconds"] = report.get("synth_seconds") or round(time.time() - t0, 1)

    import torch
    from ultralytics import YOLO

    torch.set_num_threads(os.cpu_count() or 2)
    best = work / "runs" / "train" / "weights" / "best.pt"
    if not best.exists():
        t1 = time.time()
        model = YOLO("yolov8n-seg.yaml", task="segment")
        model.train(
            data=str(work / "data" / "data.yaml"), imgsz=args.imgsz, epochs=args.epochs, batch=args.batch,
            device="cpu", workers=args.workers, seed=0, deterministic=True, project=str(work / "runs"),
            name="train", exist_ok=True, plots=False, amp=False, patience=args.epochs, verbose=True,
            **({"time": args.hours} if args.hours else {}),
        )
        report["train_seconds"] = round(time.time() - t1, 1)
        report["train_epochs"] = args.epochs
        report["train_hours_budget"] = args.hours
    report_path.write_text(json.dumps(report, indent=1) + "\n")

    for i, (hours, mp) in enumerate(zip(args.finetune_hours, stage_min_pixels)):
        name = "finetune" if i == 0 else f"finetune{i + 1}"
        best_next = work / "runs" / name / "weights" / "best.pt"
        if not best_next.exists():
            data_yaml = stage_data(work, name, split_dir("data", mp), mp, extra_frames[i], rare_repeat[i], i, args)
            t1 = time.time()
            model = YOLO(str(best), task="segment")
            model.train(
                data=str(data_yaml), imgsz=args.imgsz, epochs=args.epochs,
                batch=args.batch, device="cpu", workers=args.workers, seed=1 + i, deterministic=True,
                project=str(work / "runs"), name=name, exist_ok=True, plots=False, amp=False,
                patience=args.epochs, verbose=True, time=hours, warmup_epochs=0,
            )  # optimizer=auto: AdamW at lr 0.000909 for this data size, decayed linearly over `time`
            report[f"{name}_seconds"] = round(time.time() - t1, 1)
            report[f"{name}_hours_budget"] = hours
            report[f"{name}_min_pixels"] = mp
            report[f"{name}_extra_frames"] = extra_frames[i]
            report[f"{name}_rare_repeat"] = rare_repeat[i]
            report_path.write_text(json.dumps(report, indent=1) + "\n")
        best = best_next

    t2 = time.time()
    trained = YOLO(str(best))
    metrics = trained.val(data=str(test_dir / "data.yaml"), split="val", imgsz=args.imgsz,
                          batch=args.batch, conf=0.001, iou=0.7, device="cpu", plots=False, verbose=True)
    report["ultralytics_val"] = {
        "box_map50_95": float(metrics.box.map), "box_map50": float(metrics.box.map50),
        "mask_map50_95": float(metrics.seg.map), "mask_map50": float(metrics.seg.map50),
    }
    report["val_seconds"] = round(time.time() - t2, 1)

    from export_ultralytics import export_model

    model = YOLO(str(best)).model.float()
    export_model(model, args.out, "f16", str(best.relative_to(ROOT)) if best.is_relative_to(ROOT) else str(best), args.imgsz)
    import hashlib

    report["model_file"] = str(args.out)
    report["model_sha256"] = hashlib.sha256(args.out.read_bytes()).hexdigest()
    report["model_bytes"] = args.out.stat().st_size

    out = run([args.edgesift, "eval", "--model", str(args.out), "--dataset", str(test_dir),
               "--split", "val", "--imgsz", str(args.imgsz), "--json"])
    report["edgesift_eval"] = json.loads(out)
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
