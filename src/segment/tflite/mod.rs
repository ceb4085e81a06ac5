//! YOLOv8-seg on TensorFlow Lite (the `tflite` feature): the same letterbox, post-processing and
//! [`Detections`] as the candle path, from a `.tflite` file exported by
//! `scripts/export_tflite.py` (or by ultralytics' own `format=tflite`).
//!
//! What differs from the candle path, and is handled here:
//! - The input is channels-last (`[1, H, W, 3]`) and of a fixed size: every frame is letterboxed to
//!   exactly that size (`square` padding), whatever `[model] imgsz` / `square` say.
//! - Full-integer models take int8 (or uint8) input and give int8 outputs: the input is quantised
//!   and every output dequantised with its tensor's scale and zero point.
//! - ultralytics' TF exports divide box coordinates by the input size (one int8 scale must fit
//!   boxes and scores alike); whether a model does is measured once at load (the anchor centres
//!   span the whole input, so the largest box centre is about 1 when normalised, about W if not),
//!   and normalised boxes are scaled back to input pixels.
//! - `proto` is `[1, H/4, W/4, nm]` (NHWC); `pred` may be `[1, 4+nc+nm, A]` or `[1, A, 4+nc+nm]`.
//!   Outputs are told apart by rank (3: pred, 4: proto, 2: the optional scene embedding). The
//!   export script writes the mask coefficients as a second rank-3 output (`[1, nm, A]`, told
//!   from `pred` by having nm rows): a full-integer model quantises each output with one scale,
//!   and the coefficients' range would otherwise coarsen boxes and scores.
//! - A model without the embedding output (a plain ultralytics export) gives an empty embedding,
//!   which diversity selection treats as "no description" (see the warning at load).
//!
//! Class names come from the sidecar `X.json` the export script writes beside `X.tflite`
//! (`names`, `imgsz`); without it classes are called `class<i>`.

use super::post::{postprocess, PostOptions, RawView};
use super::pre::Letterbox;
use super::{Architecture, Detections, ModelInfo, SegmentError, Segmenter, Timings, STRIDES};
use image::RgbImage;
use std::path::Path;
use std::time::Instant;

mod ffi;
mod runtime;

/// Element type of a model tensor, as far as this backend cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElemType {
    F32,
    I8,
    U8,
    /// Anything else (named for the error message).
    Other(&'static str),
}

/// One input or output tensor of a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorDesc {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: ElemType,
    /// `(scale, zero_point)` of a quantised tensor.
    pub quant: Option<(f32, i32)>,
}

/// What this backend needs from a TFLite runtime: one input, some outputs, run.
pub(crate) trait Runtime: Send {
    fn input(&self) -> &TensorDesc;
    fn outputs(&self) -> &[TensorDesc];
    /// Copies the raw bytes of the input tensor in (exactly its size).
    fn set_input(&mut self, bytes: &[u8]) -> Result<(), SegmentError>;
    fn invoke(&mut self) -> Result<(), SegmentError>;
    /// The raw bytes of output `i` after [`Runtime::invoke`].
    fn output(&self, i: usize) -> Result<&[u8], SegmentError>;
}

/// How to run a TFLite model.
#[derive(Debug, Clone, Default)]
pub struct TfliteOptions {
    /// Threads of LiteRT's CPU accelerator (0: its default, one).
    pub threads: usize,
    pub post: PostOptions,
}

/// Where each network output is, and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    /// Input `[height, width]`.
    pub input_hw: [usize; 2],
    pub pred: usize,
    /// `pred` is `[1, A, rows]` rather than `[1, rows, A]`.
    pub pred_anchors_first: bool,
    /// Mask coefficients as an output of their own (`[1, nm, A]` or `[1, A, nm]`), with the
    /// anchors-first flag; `None` when they are the last rows of `pred`.
    pub coefs: Option<(usize, bool)>,
    pub proto: usize,
    /// `proto` is `[1, nm, h, w]` rather than NHWC.
    pub proto_channels_first: bool,
    pub embedding: Option<usize>,
    pub num_classes: usize,
    pub num_masks: usize,
    pub anchors: usize,
    pub proto_hw: [usize; 2],
}

impl Layout {
    /// Reads the layout from the tensor shapes; errors name the tensor at fault.
    pub fn identify(input: &TensorDesc, outputs: &[TensorDesc]) -> Result<Self, SegmentError> {
        let bad = |msg: String| SegmentError::Architecture(msg);
        let [h, w] = match input.shape.as_slice() {
            [1, h, w, 3] if h % 32 == 0 && w % 32 == 0 && *h > 0 && *w > 0 => [*h, *w],
            s => {
                return Err(bad(format!(
                    "input `{}` has shape {s:?}; a YOLOv8-seg TFLite model takes [1, H, W, 3] \
                     (NHWC, H and W multiples of 32)",
                    input.name
                )))
            }
        };
        let anchors: usize = STRIDES.iter().map(|s| (h / s) * (w / s)).sum();
        let (ph, pw) = (h / 4, w / 4);
        let mut rank3 = Vec::new();
        let mut proto = None;
        let mut embedding = None;
        for (i, t) in outputs.iter().enumerate() {
            let slot = match t.shape.len() {
                4 => &mut proto,
                3 => {
                    rank3.push(i);
                    if rank3.len() <= 2 {
                        continue;
                    }
                    return Err(bad(format!(
                        "three outputs of rank 3 (third: `{}`); expected pred and at most the \
                         mask coefficients",
                        t.name
                    )));
                }
                2 => &mut embedding,
                _ => {
                    return Err(bad(format!(
                        "output `{}` has shape {:?}; expected pred (rank 3), proto (rank 4) \
                         and optionally an embedding (rank 2)",
                        t.name, t.shape
                    )))
                }
            };
            if slot.replace(i).is_some() {
                return Err(bad(format!(
                    "two outputs of rank {} (second: `{}`); a YOLOv8-seg model has one each",
                    t.shape.len(),
                    t.name
                )));
            }
        }
        let proto = proto.ok_or_else(|| bad("no rank-4 output (mask prototypes)".into()))?;
        if rank3.is_empty() {
            return Err(bad("no rank-3 output (predictions)".into()));
        }
        let pt = &outputs[proto];
        let (nm, proto_channels_first) = match pt.shape.as_slice() {
            [1, a, b, c] if *a == ph && *b == pw => (*c, false),
            [1, c, a, b] if *a == ph && *b == pw => (*c, true),
            s => {
                return Err(bad(format!(
                    "output `{}` has shape {s:?}; mask prototypes of a {h}x{w} input are \
                     [1, {ph}, {pw}, nm]",
                    pt.name
                )))
            }
        };
        let orient = |i: usize| {
            let t = &outputs[i];
            match t.shape.as_slice() {
                [1, r, a] if *a == anchors => Ok((*r, false)),
                [1, a, r] if *a == anchors => Ok((*r, true)),
                s => Err(bad(format!(
                    "output `{}` has shape {s:?}; predictions of a {h}x{w} input are \
                     [1, 4 + classes + {nm}, {anchors}] (or [1, 4 + classes, {anchors}] beside \
                     [1, {nm}, {anchors}] mask coefficients)",
                    t.name
                ))),
            }
        };
        let (pred, coefs) = match rank3[..] {
            [p] => (p, None),
            [a, b] => {
                let (ra, fa) = orient(a)?;
                let (rb, fb) = orient(b)?;
                // The coefficients have nm rows; if both do (4 + nc == nm), the first is pred,
                // as scripts/export_tflite.py orders them.
                if rb == nm {
                    (a, Some((b, fb)))
                } else if ra == nm {
                    (b, Some((a, fa)))
                } else {
                    return Err(bad(format!(
                        "two rank-3 outputs (`{}`, `{}`) and neither has {nm} rows, the mask \
                         coefficients of {nm} prototypes",
                        outputs[a].name, outputs[b].name
                    )));
                }
            }
            _ => unreachable!("at most two rank-3 outputs"),
        };
        let (pred_rows, pred_anchors_first) = orient(pred)?;
        let pr = &outputs[pred];
        let rows = pred_rows + if coefs.is_some() { nm } else { 0 };
        if rows <= 4 + nm {
            return Err(bad(format!(
                "output `{}` has {rows} rows per anchor, too few for 4 box values, at least one \
                 class and {nm} mask coefficients",
                pr.name
            )));
        }
        if let Some(e) = embedding {
            if outputs[e].shape[0] != 1 {
                return Err(bad(format!(
                    "output `{}` has shape {:?}; the embedding is [1, C]",
                    outputs[e].name, outputs[e].shape
                )));
            }
        }
        for i in [Some(pred), coefs.map(|c| c.0), Some(proto), embedding]
            .into_iter()
            .flatten()
        {
            check_dtype(&outputs[i])?;
        }
        check_dtype(input)?;
        Ok(Self {
            input_hw: [h, w],
            pred,
            pred_anchors_first,
            coefs,
            proto,
            proto_channels_first,
            embedding,
            num_classes: rows - 4 - nm,
            num_masks: nm,
            anchors,
            proto_hw: [ph, pw],
        })
    }
}

fn check_dtype(t: &TensorDesc) -> Result<(), SegmentError> {
    match (t.dtype, t.quant) {
        (ElemType::F32, _) => Ok(()),
        (ElemType::I8 | ElemType::U8, Some((s, _))) if s > 0.0 && s.is_finite() => Ok(()),
        (ElemType::I8 | ElemType::U8, _) => Err(SegmentError::Architecture(format!(
            "tensor `{}` is quantised but has no usable scale",
            t.name
        ))),
        (ElemType::Other(d), _) => Err(SegmentError::UnsupportedDtype {
            key: t.name.clone(),
            dtype: d.into(),
        }),
    }
}

/// Reads a float view of a raw tensor: f32 as it is, int8/uint8 as `(q - zero_point) * scale`.
fn dequantize(t: &TensorDesc, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), SegmentError> {
    let n: usize = t.shape.iter().product();
    let size = match t.dtype {
        ElemType::F32 => 4,
        _ => 1,
    };
    if bytes.len() != n * size {
        return Err(SegmentError::BadInput(format!(
            "output `{}` holds {} bytes, its shape {:?} needs {}",
            t.name,
            bytes.len(),
            t.shape,
            n * size
        )));
    }
    out.clear();
    match (t.dtype, t.quant) {
        (ElemType::F32, _) => out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        ),
        (ElemType::I8, Some((s, z))) => {
            let lut: [f32; 256] = std::array::from_fn(|q| ((q as u8 as i8) as i32 - z) as f32 * s);
            out.extend(bytes.iter().map(|&b| lut[b as usize]));
        }
        (ElemType::U8, Some((s, z))) => {
            let lut: [f32; 256] = std::array::from_fn(|q| (q as i32 - z) as f32 * s);
            out.extend(bytes.iter().map(|&b| lut[b as usize]));
        }
        _ => {
            return Err(SegmentError::BadInput(format!(
                "tensor `{}`: unreadable type",
                t.name
            )))
        }
    }
    Ok(())
}

/// Bytes of the input tensor for each 8-bit colour value (0..255 maps to 0..1 first).
fn input_lut(t: &TensorDesc) -> InputLut {
    match (t.dtype, t.quant) {
        (ElemType::I8, Some((s, z))) => InputLut::Byte(Box::new(std::array::from_fn(|v| {
            let q = (v as f32 / 255.0 / s).round() as i32 + z;
            q.clamp(-128, 127) as i8 as u8
        }))),
        (ElemType::U8, Some((s, z))) => InputLut::Byte(Box::new(std::array::from_fn(|v| {
            let q = (v as f32 / 255.0 / s).round() as i32 + z;
            q.clamp(0, 255) as u8
        }))),
        _ => InputLut::Float(Box::new(std::array::from_fn(|v| v as f32 / 255.0))),
    }
}

enum InputLut {
    Float(Box<[f32; 256]>),
    Byte(Box<[u8; 256]>),
}

/// YOLOv8-seg on a TFLite interpreter, with edgesift's letterbox and post-processing.
pub struct TfliteSegmenter {
    rt: Box<dyn Runtime>,
    layout: Layout,
    info: ModelInfo,
    post: PostOptions,
    lut: InputLut,
    boxes_normalized: bool,
    rgb: Vec<u8>,
    input: Vec<u8>,
    pred_raw: Vec<f32>,
    pred: Vec<f32>,
    proto_raw: Vec<f32>,
    proto: Vec<f32>,
    embedding: Vec<f32>,
}

impl TfliteSegmenter {
    /// Loads a `.tflite` file, and LiteRT's `libLiteRt.so` on first use (see `ffi::candidates`
    /// for where it is looked for; without it this says so).
    pub fn load(path: &Path, opts: TfliteOptions) -> Result<Self, SegmentError> {
        let rt = runtime::open(path, &opts)?;
        Self::with_runtime(Box::new(rt), path, opts.post)
    }

    /// Wraps a loaded runtime: reads the layout, the sidecar metadata, and probes whether the
    /// model normalises its boxes.
    pub(crate) fn with_runtime(
        rt: Box<dyn Runtime>,
        path: &Path,
        post: PostOptions,
    ) -> Result<Self, SegmentError> {
        let layout = Layout::identify(rt.input(), rt.outputs())?;
        let side = Sidecar::read(path, layout.num_classes)?;
        if let Some(s) = side.imgsz {
            if s != [layout.input_hw[0] as u32, layout.input_hw[1] as u32] {
                return Err(SegmentError::Metadata {
                    key: "imgsz".into(),
                    reason: format!(
                        "the sidecar says {s:?} but the model's input is {:?}",
                        layout.input_hw
                    ),
                });
            }
        }
        if layout.embedding.is_none() {
            tracing::warn!(
                model = %path.display(),
                "this TFLite model has no embedding output (scripts/export_tflite.py adds one): \
                 diversity selection sees every frame as equally novel"
            );
        }
        let emb_len = layout
            .embedding
            .map(|e| rt.outputs()[e].shape[1])
            .unwrap_or(0);
        let info = ModelInfo {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_owned(),
            sha256: super::sha256_file(path)?,
            class_names: side.names.into(),
            trained_imgsz: Some([layout.input_hw[0] as u32, layout.input_hw[1] as u32]),
            architecture: Architecture {
                num_classes: layout.num_classes,
                num_masks: layout.num_masks,
                proto_channels: 0,
                reg_max: 16,
                backbone_widths: Vec::new(),
                neck_widths: [0, 0, emb_len],
                c2f_depths: Vec::new(),
            },
        };
        let lut = input_lut(rt.input());
        let mut seg = Self {
            rt,
            layout,
            info,
            post,
            lut,
            boxes_normalized: false,
            rgb: Vec::new(),
            input: Vec::new(),
            pred_raw: Vec::new(),
            pred: Vec::new(),
            proto_raw: Vec::new(),
            proto: Vec::new(),
            embedding: Vec::new(),
        };
        seg.boxes_normalized = seg.probe_normalized()?;
        tracing::debug!(
            boxes_normalized = seg.boxes_normalized,
            input = ?seg.layout.input_hw,
            "tflite model layout"
        );
        Ok(seg)
    }

    /// The network input size, `[height, width]` (fixed by the model file).
    pub fn imgsz(&self) -> [u32; 2] {
        [
            self.layout.input_hw[0] as u32,
            self.layout.input_hw[1] as u32,
        ]
    }

    /// Whether the model gives boxes divided by the input size (ultralytics' TF exports).
    pub fn boxes_normalized(&self) -> bool {
        self.boxes_normalized
    }

    pub fn set_post_options(&mut self, post: PostOptions) {
        self.post = post;
    }

    /// The letterbox this segmenter applies to an image of the given size.
    pub fn letterbox_for(&self, width: u32, height: u32) -> Letterbox {
        Letterbox::plan(width, height, self.imgsz(), false, 32)
    }

    /// Sets the network input from a letterboxed `[H, W, 3]` RGB image of the model's size, for
    /// timing the network alone with [`TfliteSegmenter::invoke`] (`edgesift bench-model`).
    pub fn set_input_rgb(&mut self, rgb: &[u8]) -> Result<(), SegmentError> {
        let [h, w] = self.layout.input_hw;
        if rgb.len() != h * w * 3 {
            return Err(SegmentError::BadInput(format!(
                "the model takes {w}x{h}x3 bytes, got {}",
                rgb.len()
            )));
        }
        self.rgb.clear();
        self.rgb.extend_from_slice(rgb);
        self.encode_input();
        self.rt.set_input(&self.input)
    }

    /// Runs the network on the input in place, nothing before or after (outputs stay raw).
    pub fn invoke(&mut self) -> Result<(), SegmentError> {
        self.rt.invoke()
    }

    fn encode_input(&mut self) {
        self.input.clear();
        match &self.lut {
            InputLut::Float(l) => {
                for &v in &self.rgb {
                    self.input.extend_from_slice(&l[v as usize].to_ne_bytes());
                }
            }
            InputLut::Byte(l) => self.input.extend(self.rgb.iter().map(|&v| l[v as usize])),
        }
    }

    /// Runs the network on a letterboxed RGB image (`self.rgb`) and fills `pred` (`[rows, A]`,
    /// input pixels), `proto` (`[nm, h, w]`) and `embedding`.
    fn run(&mut self) -> Result<(), SegmentError> {
        self.encode_input();
        self.rt.set_input(&self.input)?;
        self.rt.invoke()?;
        let outs = self.rt.outputs().to_vec();
        let l = &self.layout;
        let rows = 4 + l.num_classes + l.num_masks;
        let a = l.anchors;
        self.pred.resize(rows * a, 0.0);
        let coef_rows = if l.coefs.is_some() { l.num_masks } else { 0 };
        let parts = [
            Some((l.pred, l.pred_anchors_first, 0, rows - coef_rows)),
            l.coefs.map(|(i, f)| (i, f, rows - coef_rows, coef_rows)),
        ];
        for (i, anchors_first, first_row, n) in parts.into_iter().flatten() {
            dequantize(&outs[i], self.rt.output(i)?, &mut self.pred_raw)?;
            let dst = &mut self.pred[first_row * a..(first_row + n) * a];
            if anchors_first {
                for (k, chunk) in self.pred_raw.chunks_exact(n).enumerate() {
                    for (r, v) in chunk.iter().enumerate() {
                        dst[r * a + k] = *v;
                    }
                }
            } else {
                dst.copy_from_slice(&self.pred_raw);
            }
        }
        if self.boxes_normalized {
            let [h, w] = l.input_hw;
            for (r, scale) in [w, h, w, h].into_iter().enumerate() {
                for v in &mut self.pred[r * a..(r + 1) * a] {
                    *v *= scale as f32;
                }
            }
        }
        dequantize(
            &outs[l.proto],
            self.rt.output(l.proto)?,
            &mut self.proto_raw,
        )?;
        if l.proto_channels_first {
            std::mem::swap(&mut self.proto, &mut self.proto_raw);
        } else {
            let (nm, hw) = (l.num_masks, l.proto_hw[0] * l.proto_hw[1]);
            self.proto.resize(nm * hw, 0.0);
            for (p, chunk) in self.proto_raw.chunks_exact(nm).enumerate() {
                for (c, v) in chunk.iter().enumerate() {
                    self.proto[c * hw + p] = *v;
                }
            }
        }
        match l.embedding {
            Some(e) => dequantize(&outs[e], self.rt.output(e)?, &mut self.embedding)?,
            None => self.embedding.clear(),
        }
        Ok(())
    }

    /// Runs a grey frame once: the largest box centre x tells normalised (about 1) from input
    /// pixels (about the input width), since anchor centres span the whole input.
    fn probe_normalized(&mut self) -> Result<bool, SegmentError> {
        let [h, w] = self.layout.input_hw;
        self.rgb.clear();
        self.rgb.resize(h * w * 3, super::pre::PAD_VALUE);
        self.run()?;
        let a = self.layout.anchors;
        let max_cx = self.pred[..a]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        Ok(max_cx < 2.0)
    }
}

impl Segmenter for TfliteSegmenter {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn segment(&mut self, image: &RgbImage) -> Result<Detections, SegmentError> {
        if image.width() == 0 || image.height() == 0 {
            return Err(SegmentError::BadInput("empty image".into()));
        }
        let t0 = Instant::now();
        let lb = self.letterbox_for(image.width(), image.height());
        let mut rgb = std::mem::take(&mut self.rgb);
        lb.apply_rgb8(image, &mut rgb);
        self.rgb = rgb;
        let t1 = Instant::now();
        self.run()?;
        let t2 = Instant::now();
        let l = &self.layout;
        let raw = RawView {
            pred: &self.pred,
            anchors: l.anchors,
            num_classes: l.num_classes,
            num_masks: l.num_masks,
            proto: &self.proto,
            proto_h: l.proto_hw[0],
            proto_w: l.proto_hw[1],
        };
        let instances = postprocess(&raw, &lb, &self.post);
        let t3 = Instant::now();
        Ok(Detections {
            image_width: image.width(),
            image_height: image.height(),
            instances,
            embedding: self.embedding.clone(),
            class_names: self.info.class_names.clone(),
            timings: Timings {
                preprocess: t1 - t0,
                inference: t2 - t1,
                postprocess: t3 - t2,
            },
        })
    }
}

/// `X.json` beside `X.tflite`, written by scripts/export_tflite.py.
struct Sidecar {
    names: Vec<String>,
    imgsz: Option<[u32; 2]>,
}

impl Sidecar {
    fn read(model: &Path, nc: usize) -> Result<Self, SegmentError> {
        let path = model.with_extension("json");
        let default = || (0..nc).map(|i| format!("class{i}")).collect();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    names: default(),
                    imgsz: None,
                })
            }
            Err(source) => return Err(SegmentError::Io { path, source }),
        };
        let bad = |key: &str, reason: String| SegmentError::Metadata {
            key: format!("{}: {key}", path.display()),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad("(file)", format!("not JSON: {e}")))?;
        let mut names: Vec<String> = default();
        if let Some(map) = v.get("names") {
            let map = map
                .as_object()
                .ok_or_else(|| bad("names", "is not an object of id -> name".into()))?;
            for (k, n) in map {
                let i: usize = k
                    .parse()
                    .map_err(|_| bad("names", format!("key `{k}` is not a class id")))?;
                let n = n
                    .as_str()
                    .ok_or_else(|| bad("names", format!("class {i} is not a string")))?;
                if i >= nc {
                    return Err(bad(
                        "names",
                        format!("class id {i} but the model has {nc} classes"),
                    ));
                }
                names[i] = n.to_owned();
            }
        }
        let imgsz = match v.get("imgsz") {
            None => None,
            Some(s) => Some(
                serde_json::from_value::<[u32; 2]>(s.clone())
                    .map_err(|_| bad("imgsz", format!("`{s}` is not [height, width]")))?,
            ),
        };
        Ok(Self { names, imgsz })
    }
}

#[cfg(test)]
mod tests;
