#!/usr/bin/env python3
"""Export an edgesift YOLOv8-seg model (safetensors) to TensorFlow Lite: float32, float16, int8.

    .venv-tflite/bin/python scripts/export_tflite.py models/edgesift-road-n-seg.safetensors OUT/ \
        [--imgsz 320] [--int8] [--calib-frames 64] [--edgesift target/debug/edgesift]

Two Python environments, because TensorFlow and torch do not share one here:

1. torch + ultralytics (`--torch-python`, default `.venv/bin/python`, else /work/main/.venv):
   rebuilds the ultralytics SegmentationModel from the safetensors file (scale and class count read
   from the tensors), fuses BatchNorm, and exports ONNX the way ultralytics' own TFLite export
   does (`tf_wrapper`: boxes divided by the input size, so that one int8 scale fits boxes and
   scores alike). One output is added: `embedding`, the three neck outputs averaged over space
   (edgesift's scene embedding, what diversity selection compares). Outputs:
   `pred` [1, 4+nc+nm, anchors], `proto` [1, nm, H/4, W/4], `embedding` [1, C3+C4+C5].
   It also letterboxes the int8 calibration frames (`edgesift synth` synthetic road scenes,
   --calib-frames of them) exactly like edgesift (gray 114 padding, centred).
2. TensorFlow + onnx2tf (the interpreter running this script; make it with
   `python3 -m venv .venv-tflite && .venv-tflite/bin/pip install -r scripts/requirements-tflite.txt`):
   onnx2tf converts the ONNX file (NCHW) to NHWC TFLite files, `*_float32.tflite`,
   `*_float16.tflite` (float16 weights, float32 compute) and with --int8 the full-integer model
   `*_int8.tflite` (int8 input and outputs, per-channel int8 weights, calibrated on the frames).
   Each file is checked against onnxruntime on a calibration frame (relative L2 per output).

Each `X.tflite` gets a sidecar `X.json` (class names, nc, imgsz, source and its sha256) that
edgesift's TFLite backend reads for class names; without it classes are named `class<i>`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCALES = {16: "n", 32: "s", 48: "m", 64: "l", 80: "x"}


# --------------------------------------------------------------------------------------------
# Stage 1 (torch): safetensors -> ONNX, calibration frames -> .npy
# --------------------------------------------------------------------------------------------


def build_torch_model(weights: Path):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from ultralytics.nn.tasks import SegmentationModel

    with safe_open(str(weights), "pt") as f:
        meta = f.metadata() or {}
    sd = load_file(str(weights))
    for k, v in sd.items():
        if not torch.is_floating_point(v):
            raise SystemExit(f"{weights}: tensor {k} is {v.dtype}; export the f32/f16 file, not an int8 one")
    sd = {k: v.float() for k, v in sd.items()}
    width = sd["model.0.conv.weight"].shape[0]
    if width not in SCALES:
        raise SystemExit(f"{weights}: model.0 has width {width}, not one of the YOLOv8 scales {sorted(SCALES)}")
    nc = sd["model.22.cv3.0.2.weight"].shape[0]
    model = SegmentationModel(f"yolov8{SCALES[width]}-seg.yaml", nc=nc, verbose=False)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{weights}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    names = json.loads(meta["names"]) if "names" in meta else {str(i): f"class{i}" for i in range(nc)}
    return model.eval(), meta, names, nc


class WithEmbedding:
    """The ultralytics model in export mode plus the pooled neck outputs (edgesift's embedding)."""

    @staticmethod
    def wrap(model):
        import torch

        class M(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner
                self.feats = None
                inner.model[-1].register_forward_pre_hook(self._grab)

            def _grab(self, _module, args):
                self.feats = args[0]

            def forward(self, x):
                pred, proto = self.inner(x)  # pred: boxes and scores only (see `split_coefficients`)
                emb = torch.cat([f.mean((2, 3)) for f in self.feats], 1)
                return pred, self.inner.model[-1].mask_coefficients, proto, emb

        return M(model)


def split_coefficients(head) -> None:
    """Keeps the mask coefficients out of `pred`, as a separate output.

    ultralytics concatenates boxes, scores and mask coefficients into one tensor; in a full-integer
    model that tensor has one int8 scale, set by the coefficients' range (about +-4): a step of
    ~0.03, i.e. scores in steps of 0.03 and normalised boxes in steps of ~10 px at 320. Two
    outputs get two scales (boxes and scores both lie in 0..~1.7).
    """
    import types

    from ultralytics.nn.modules import Detect

    def inference(self, x):
        self.mask_coefficients = x["mask_coefficient"]
        return Detect._inference(self, x)

    head._inference = types.MethodType(inference, head)


def letterbox(bgr, imgsz: int):
    """edgesift's / ultralytics' letterbox to a square imgsz: resize keeping aspect, pad 114 centred."""
    import cv2

    h, w = bgr.shape[:2]
    r = min(imgsz / h, imgsz / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    if (nw, nh) != (w, h):
        bgr = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (imgsz - nw) / 2, (imgsz - nh) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return cv2.copyMakeBorder(bgr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))


def stage_onnx(args) -> int:
    import cv2
    import numpy as np
    import torch
    from ultralytics.nn.modules import Detect
    from ultralytics.utils.export.tensorflow import tf_wrapper

    model, meta, names, nc = build_torch_model(args.weights)
    model = model.fuse()
    for m in model.modules():
        if isinstance(m, Detect):
            m.export, m.format, m.dynamic = True, "tflite", False
    tf_wrapper(model)  # boxes / input size, as ultralytics' TF exports
    split_coefficients(model.model[-1])
    wrapped = WithEmbedding.wrap(model).eval()

    frames = sorted(Path(args.calib_dir).rglob("*.jpg"))[: args.calib_frames] if args.calib_dir else []
    batch = np.stack([letterbox(cv2.imread(str(p)), args.imgsz)[..., ::-1] for p in frames]) if frames else None
    if batch is not None:
        np.save(args.out.with_suffix(".calib.npy"), batch.astype(np.float32))  # BHWC RGB 0..255
        x = torch.from_numpy(batch[:1].astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    else:
        x = torch.full((1, 3, args.imgsz, args.imgsz), 114 / 255.0)
    with torch.no_grad():
        pred, coefs, proto, emb = wrapped(x)
    nm = proto.shape[1]
    rows = {"boxes": pred[0, :4], "scores": pred[0, 4 : 4 + nc], "mask coefficients": coefs[0]}
    for k, v in rows.items():
        print(f"onnx stage: {k} range [{v.min().item():.3f}, {v.max().item():.3f}]", file=sys.stderr)
    torch.onnx.export(
        wrapped,
        x,
        str(args.out),
        opset_version=17,
        input_names=["images"],
        output_names=["pred", "mask_coefficients", "proto", "embedding"],
        do_constant_folding=True,
        dynamo=False,
    )
    import onnx
    import onnxslim

    m = onnxslim.slim(onnx.load(str(args.out)))
    onnx.save(m, str(args.out))
    np.save(args.out.with_suffix(".probe.npy"), x.numpy())
    info = {
        "task": "segment",
        "nc": nc,
        "nm": int(nm),
        "names": names,
        "imgsz": [args.imgsz, args.imgsz],
        "boxes": "normalized",
        "source": args.weights.name,
        "source_sha256": hashlib.sha256(args.weights.read_bytes()).hexdigest(),
        "calibration": f"{len(frames)} edgesift synth frames" if frames else None,
    }
    args.out.with_suffix(".meta.json").write_text(json.dumps(info, indent=1))
    print(f"onnx stage: wrote {args.out} (nc={nc}, nm={nm}, embedding {emb.shape[1]})", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------
# Stage 2 (TensorFlow): ONNX -> TFLite
# --------------------------------------------------------------------------------------------


def torch_python(arg: str | None) -> str:
    for cand in [arg, os.environ.get("TORCH_PYTHON"), str(ROOT / ".venv/bin/python"), "/work/main/.venv/bin/python"]:
        if cand and Path(cand).is_file():
            return cand
    raise SystemExit("no Python with torch + ultralytics: pass --torch-python (scripts/setup.sh --python makes .venv)")


def edgesift_bin(arg: str | None) -> str:
    for cand in [arg, str(ROOT / "target/debug/edgesift"), str(ROOT / "target/release/edgesift"), shutil.which("edgesift")]:
        if cand and Path(cand).is_file():
            return cand
    raise SystemExit("no edgesift binary for rendering calibration frames: cargo build, or pass --edgesift")


def rel_l2(a, b) -> float:
    import numpy as np

    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def run_tflite(path: Path, x_nchw):
    """Runs a TFLite file on a 0..1 NCHW float input; returns its outputs as float32 (in graph
    order: onnx2tf writes a signature only for the quantised files, and orders them differently)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    x = x_nchw.transpose(0, 2, 3, 1)
    if inp["dtype"] != np.float32:
        s, z = inp["quantization"]
        x = np.clip(np.round(x / s + z), -128, 127).astype(inp["dtype"])
    it.set_tensor(inp["index"], x)
    it.invoke()
    out = []
    for d in it.get_output_details():
        y = it.get_tensor(d["index"])
        if d["dtype"] != np.float32:
            s, z = d["quantization"]
            y = (y.astype(np.float32) - z) * s
        out.append(y)
    return out, inp


def same_shape(outputs, shape):
    """The output of `shape`, or of its last two axes swapped (onnx2tf may transpose 3-D ones)."""
    for y in outputs:
        if tuple(y.shape) == tuple(shape):
            return y
        if y.ndim == 3 and len(shape) == 3 and tuple(y.shape) == (shape[0], shape[2], shape[1]):
            return y.transpose(0, 2, 1)
    raise SystemExit(f"no TFLite output of shape {tuple(shape)}: {[y.shape for y in outputs]}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path, help="edgesift YOLOv8-seg safetensors (f32 or f16 storage)")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--imgsz", type=int, default=None, help="square input size (default: the model's imgsz, else 640)")
    p.add_argument("--int8", action="store_true", help="also the full-integer int8 model (calibrated)")
    p.add_argument("--calib-frames", type=int, default=64, help="synthetic frames for int8 calibration")
    p.add_argument("--calib-dir", type=Path, default=None, help="use these *.jpg frames instead of rendering")
    p.add_argument("--edgesift", default=None, help="edgesift binary for `edgesift synth`")
    p.add_argument("--torch-python", default=None, help="Python with torch + ultralytics for the ONNX stage")
    p.add_argument("--keep-onnx", action="store_true", help="also copy the ONNX file it went through to OUT")
    p.add_argument("--name", default=None, help="file stem (default: <weights stem>-<imgsz>)")
    p.add_argument("--stage", choices=["onnx"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.stage == "onnx":  # internal: runs under the torch Python
        return stage_onnx(args)

    import numpy as np

    imgsz = args.imgsz or read_imgsz(args.weights) or 640
    if imgsz % 32:
        raise SystemExit(f"--imgsz {imgsz} is not a multiple of 32")
    name = args.name or f"{args.weights.stem}-{imgsz}"
    args.out = args.out.resolve()
    args.weights = args.weights.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / f".{name}.work"
    work.mkdir(exist_ok=True)
    onnx_path = work / f"{name}.onnx"

    calib_dir = args.calib_dir.resolve() if args.calib_dir else None
    if calib_dir is None:
        calib_dir = work / "calib"
        if not calib_dir.exists():
            subprocess.run(
                [edgesift_bin(args.edgesift), "synth", "--out", str(calib_dir), "--frames", str(args.calib_frames),
                 "--seed", "7", "--width", "640", "--height", "360", "--per-stream", "8", "--val-fraction", "0.125"],
                check=True, stdout=subprocess.DEVNULL,
            )
    subprocess.run(
        [torch_python(args.torch_python), str(Path(__file__).resolve()), "--stage", "onnx", str(args.weights),
         str(onnx_path), "--imgsz", str(imgsz), "--calib-dir", str(calib_dir), "--calib-frames", str(args.calib_frames)],
        check=True,
    )
    meta = json.loads(onnx_path.with_suffix(".meta.json").read_text())
    calib = onnx_path.with_suffix(".calib.npy")

    import onnx
    import onnx2tf

    if not hasattr(onnx.helper, "float32_to_bfloat16"):  # onnx_graphsurgeon still calls it (onnx >= 1.17)
        import struct

        onnx.helper.float32_to_bfloat16 = lambda v: struct.unpack("=I", struct.pack("=f", v))[0] >> 16

    # onnx2tf reads its sample data for test runs from the working directory and downloads it
    # when absent (no network here): give it 20 of our calibration frames at 128x128 instead.
    sample = work / "calibration_image_sample_data_20x128x128x3_float32.npy"
    if not sample.exists():
        frames = np.load(calib, mmap_mode="r")
        idx = np.linspace(0, len(frames) - 1, 20).astype(int)
        step = max(1, frames.shape[1] // 128)
        small = np.stack([frames[i, ::step, ::step][:128, :128] for i in idx]) / 255.0
        np.save(sample, small.astype(np.float32))
    tf_dir = work / "tf"
    cwd = os.getcwd()
    os.chdir(work)
    onnx2tf.convert(
        input_onnx_file_path=str(onnx_path),
        output_folder_path=str(tf_dir),
        not_use_onnxsim=True,
        verbosity="error",
        output_integer_quantized_tflite=args.int8,
        quant_type="per-channel",
        custom_input_op_name_np_data_path=[["images", str(calib), [[[[0, 0, 0]]]], [[[[255, 255, 255]]]]]]
        if args.int8 else None,
        input_quant_dtype="int8",
        output_quant_dtype="int8",
        output_signaturedefs=True,
    )
    os.chdir(cwd)
    wanted = {"float32": f"{name}_float32.tflite", "float16": f"{name}_float16.tflite"}
    if args.int8:
        wanted["int8"] = f"{name}_full_integer_quant.tflite"

    import onnxruntime as ort

    x = np.load(onnx_path.with_suffix(".probe.npy"))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"images": x})))
    ref["proto"] = ref["proto"].transpose(0, 2, 3, 1)  # NHWC, as TFLite has it
    for precision, src in wanted.items():
        f = tf_dir / src
        if not f.exists():
            raise SystemExit(f"onnx2tf wrote no {f}")
        dst = args.out / f"{name}_{precision}.tflite"
        shutil.copyfile(f, dst)
        out, inp = run_tflite(dst, x)
        errs = [f"{what} {rel_l2(same_shape(out, r.shape), r):.2e}" for what, r in ref.items()]
        side = dict(meta, precision=precision, input_dtype=str(inp["dtype"].__name__))
        dst.with_suffix(".json").write_text(json.dumps(side, indent=1) + "\n")
        print(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB); rel L2 vs onnxruntime: {', '.join(errs)}")
    if args.keep_onnx:
        shutil.copyfile(onnx_path, args.out / onnx_path.name)
    if not os.environ.get("EXPORT_TFLITE_KEEP"):
        shutil.rmtree(work)
    return 0


def read_imgsz(weights: Path) -> int | None:
    """The `imgsz` metadata of a safetensors file (its JSON header), without torch."""
    import struct

    with open(weights, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    s = (header.get("__metadata__") or {}).get("imgsz")
    if s is None:
        return None
    v = json.loads(s)
    return int(v if isinstance(v, int) else v[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
