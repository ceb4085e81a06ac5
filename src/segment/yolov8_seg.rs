//! YOLOv8-seg (ultralytics), any scale, from a checkpoint with ultralytics' own tensor names.
//!
//! Reference: ultralytics `cfg/models/v8/yolov8-seg.yaml` and `nn/modules/{conv,block,head}.py`.
//! The layer indices below are those of the yaml (`model.0` ... `model.22`); widths, repeat
//! counts, class and mask counts are read from the tensor shapes, so one loader serves n/s/m/l/x
//! and any class count. What the weights cannot say (which blocks have residual shortcuts, how
//! the neck is wired) is the fixed v8 topology.
//!
//! Output layout is that of an ultralytics ONNX export: `pred` is `[1, 4 + nc + nm, anchors]`
//! (box centre/size in input pixels, class sigmoid scores, mask coefficients) and `proto` is
//! `[1, nm, H/4, W/4]`.

use super::kernels::{concat_channels, decode_f32, pool_pyramid, Level, Part};
use super::layers::{Activation, Conv, Target, Upsample2x};
use super::weights::{Scope, Weights};
use super::SegmentError;
use candle_core::{DType, Device, Tensor, D};

/// Strides of the three detection levels (P3, P4, P5); the network downsamples by 32 in all.
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// What a forward pass returns.
#[derive(Debug)]
pub struct RawOutput {
    /// `[1, 4 + nc + nm, anchors]`.
    pub pred: Tensor,
    /// `[1, nm, H/4, W/4]`.
    pub proto: Tensor,
    /// `[1, C3 + C4 + C5]`: the neck outputs averaged over space, a cheap description of the
    /// whole scene used by diversity selection.
    pub embedding: Tensor,
}

/// The shape of a loaded model, as read from its weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architecture {
    pub num_classes: usize,
    pub num_masks: usize,
    pub proto_channels: usize,
    pub reg_max: usize,
    /// Output channels of layers 0..=9 (backbone) and the three neck outputs.
    pub backbone_widths: Vec<usize>,
    pub neck_widths: [usize; 3],
    /// Bottlenecks in each C2f, in layer order (2, 4, 6, 8, 12, 15, 18, 21).
    pub c2f_depths: Vec<usize>,
}

impl Architecture {
    /// The ultralytics scale letter whose widths this model has, if any.
    pub fn scale(&self) -> Option<char> {
        // Width of layer 0 is 64 * width multiple; depth of layer 2 is 3 * depth multiple.
        match (self.backbone_widths.first()?, self.c2f_depths.first()?) {
            (16, 1) => Some('n'),
            (32, 1) => Some('s'),
            (48, 2) => Some('m'),
            (64, 3) => Some('l'),
            (80, 3) => Some('x'),
            _ => None,
        }
    }
}

/// `C2f`: split, a chain of bottlenecks each adding its output to the list, concat, 1x1.
#[derive(Debug)]
struct C2f {
    cv1: Conv,
    bottlenecks: Vec<(Conv, Conv)>,
    cv2: Conv,
    shortcut: bool,
    hidden: usize,
}

impl C2f {
    fn load(s: &Scope, t: &Target, c_in: usize, shortcut: bool) -> Result<Self, SegmentError> {
        let cv1 = Conv::load_bn(&s.pp("cv1"), t, c_in, 1, 1, Activation::Silu)?;
        if cv1.c_out() % 2 != 0 {
            return Err(SegmentError::Architecture(format!(
                "{} has an odd width {}, C2f splits it in two",
                s.key("cv1.conv.weight"),
                cv1.c_out()
            )));
        }
        let hidden = cv1.c_out() / 2;
        let mut bottlenecks = Vec::new();
        while s.contains(&format!("m.{}.cv1.conv.weight", bottlenecks.len())) {
            let m = s.pp(format!("m.{}", bottlenecks.len()));
            let a = Conv::load_bn(&m.pp("cv1"), t, hidden, 3, 1, Activation::Silu)?;
            let b = Conv::load_bn(&m.pp("cv2"), t, a.c_out(), 3, 1, Activation::Silu)?;
            if b.c_out() != hidden {
                return Err(SegmentError::ShapeMismatch {
                    key: m.key("cv2.conv.weight"),
                    expected: vec![hidden, a.c_out(), 3, 3],
                    actual: m.shape("cv2.conv.weight")?.to_vec(),
                });
            }
            bottlenecks.push((a, b));
        }
        if bottlenecks.is_empty() {
            return Err(SegmentError::MissingTensor {
                key: s.key("m.0.cv1.conv.weight"),
            });
        }
        let cv2 = Conv::load_bn(
            &s.pp("cv2"),
            t,
            (2 + bottlenecks.len()) * hidden,
            1,
            1,
            Activation::Silu,
        )?;
        Ok(Self {
            cv1,
            bottlenecks,
            cv2,
            shortcut,
            hidden,
        })
    }

    fn c_out(&self) -> usize {
        self.cv2.c_out()
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, SegmentError> {
        // y holds the first two parts (the split) side by side; each bottleneck takes the last
        // part and appends its output.
        let y = self.cv1.forward(x)?;
        let mut parts = vec![y.clone()];
        let mut last = y.narrow(1, self.hidden, self.hidden)?;
        for (a, b) in &self.bottlenecks {
            let z = if self.shortcut {
                b.forward_add(&a.forward(&last)?, &last)?
            } else {
                b.forward(&a.forward(&last)?)?
            };
            parts.push(z.clone());
            last = z;
        }
        let parts: Vec<Part<'_>> = parts.iter().map(Part::Plain).collect();
        self.cv2.forward(&concat_channels(&parts)?)
    }
}

/// `SPPF`: 1x1, three chained 5x5 max-pools, concat, 1x1.
#[derive(Debug)]
struct Sppf {
    cv1: Conv,
    cv2: Conv,
}

impl Sppf {
    fn load(s: &Scope, t: &Target, c_in: usize) -> Result<Self, SegmentError> {
        // v8 checkpoints (yaml rows without the YOLO26 `n`/`shortcut` args) keep SiLU on cv1.
        let cv1 = Conv::load_bn(&s.pp("cv1"), t, c_in, 1, 1, Activation::Silu)?;
        let cv2 = Conv::load_bn(&s.pp("cv2"), t, 4 * cv1.c_out(), 1, 1, Activation::Silu)?;
        Ok(Self { cv1, cv2 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, SegmentError> {
        let y0 = self.cv1.forward(x)?;
        self.cv2.forward(&pool_pyramid(&y0, 5, 3)?)
    }
}

/// One head branch: two 3x3 blocks and a plain 1x1 convolution.
#[derive(Debug)]
struct Branch {
    a: Conv,
    b: Conv,
    out: Conv,
}

impl Branch {
    fn load(s: &Scope, t: &Target, c_in: usize) -> Result<Self, SegmentError> {
        let a = Conv::load_bn(&s.pp(0), t, c_in, 3, 1, Activation::Silu)?;
        let b = Conv::load_bn(&s.pp(1), t, a.c_out(), 3, 1, Activation::Silu)?;
        let out = Conv::load_plain(&s.pp(2), t, b.c_out())?;
        Ok(Self { a, b, out })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, SegmentError> {
        self.out.forward(&self.b.forward(&self.a.forward(x)?)?)
    }
}

/// `Proto`: 3x3, transposed-conv 2x upsample, 3x3, 1x1 to `nm` prototypes.
#[derive(Debug)]
struct Proto {
    cv1: Conv,
    upsample: Upsample2x,
    cv2: Conv,
    cv3: Conv,
}

impl Proto {
    fn load(s: &Scope, t: &Target, c_in: usize) -> Result<Self, SegmentError> {
        let cv1 = Conv::load_bn(&s.pp("cv1"), t, c_in, 3, 1, Activation::Silu)?;
        let upsample = Upsample2x::load(&s.pp("upsample"), t, cv1.c_out())?;
        let cv2 = Conv::load_bn(&s.pp("cv2"), t, cv1.c_out(), 3, 1, Activation::Silu)?;
        let cv3 = Conv::load_bn(&s.pp("cv3"), t, cv2.c_out(), 1, 1, Activation::Silu)?;
        Ok(Self {
            cv1,
            upsample,
            cv2,
            cv3,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, SegmentError> {
        let y = self.upsample.forward(&self.cv1.forward(x)?)?;
        self.cv3.forward(&self.cv2.forward(&y)?)
    }
}

/// `Segment` head: box (`cv2`), class (`cv3`) and mask-coefficient (`cv4`) branches per level,
/// plus the prototypes.
#[derive(Debug)]
struct SegmentHead {
    boxes: Vec<Branch>,
    classes: Vec<Branch>,
    coefficients: Vec<Branch>,
    proto: Proto,
    /// `[1, 1, reg_max, 1]`: 0, 1, ..., reg_max - 1, the DFL projection.
    dfl_bins: Tensor,
    nc: usize,
    nm: usize,
    reg_max: usize,
}

impl SegmentHead {
    fn load(s: &Scope, t: &Target, ch: [usize; 3]) -> Result<Self, SegmentError> {
        if s.contains("cv3.0.0.0.conv.weight") {
            return Err(SegmentError::Architecture(format!(
                "{} uses the YOLO11/26 depthwise class head; only YOLOv8-seg is supported",
                s.prefix()
            )));
        }
        let mut boxes = Vec::new();
        let mut classes = Vec::new();
        let mut coefficients = Vec::new();
        for (i, &c) in ch.iter().enumerate() {
            boxes.push(Branch::load(&s.pp("cv2").pp(i), t, c)?);
            classes.push(Branch::load(&s.pp("cv3").pp(i), t, c)?);
            coefficients.push(Branch::load(&s.pp("cv4").pp(i), t, c)?);
        }
        let box_out = boxes[0].out.c_out();
        if box_out % 4 != 0 {
            return Err(SegmentError::Architecture(format!(
                "{} has {box_out} outputs, not 4 x reg_max",
                s.key("cv2.0.2.weight")
            )));
        }
        let reg_max = box_out / 4;
        let nc = classes[0].out.c_out();
        let nm = coefficients[0].out.c_out();
        for (name, branches) in [("cv2", &boxes), ("cv3", &classes), ("cv4", &coefficients)] {
            let first = branches[0].out.c_out();
            for (i, b) in branches.iter().enumerate() {
                if b.out.c_out() != first {
                    return Err(SegmentError::ShapeMismatch {
                        key: s.key(&format!("{name}.{i}.2.weight")),
                        expected: vec![first],
                        actual: vec![b.out.c_out()],
                    });
                }
            }
        }
        let proto = Proto::load(&s.pp("proto"), t, ch[0])?;
        if proto.cv3.c_out() != nm {
            return Err(SegmentError::ShapeMismatch {
                key: s.key("proto.cv3.conv.weight"),
                expected: vec![nm],
                actual: vec![proto.cv3.c_out()],
            });
        }
        let bins: Vec<f32> = (0..reg_max).map(|i| i as f32).collect();
        let dfl_bins = t.tensor(bins, &[1, 1, reg_max, 1])?;
        Ok(Self {
            boxes,
            classes,
            coefficients,
            proto,
            dfl_bins,
            nc,
            nm,
            reg_max,
        })
    }

    /// Decoded predictions `[1, 4 + nc + nm, A]` and prototypes, for the three levels `xs`.
    fn forward(&self, xs: [&Tensor; 3]) -> Result<(Tensor, Tensor), SegmentError> {
        let mut branches = Vec::with_capacity(3);
        for (i, x) in xs.iter().enumerate() {
            branches.push([
                self.boxes[i].forward(x)?,
                self.classes[i].forward(x)?,
                self.coefficients[i].forward(x)?,
            ]);
        }
        let levels: Vec<Level<'_>> = branches
            .iter()
            .zip(STRIDES)
            .map(|([boxes, classes, coefs], stride)| Level {
                boxes,
                classes,
                coefs,
                stride,
            })
            .collect();
        let pred = match decode_f32(&levels, self.reg_max) {
            Some(pred) => pred?,
            None => self.decode(&levels)?,
        };
        let proto = self.proto.forward(xs[0])?;
        Ok((pred, proto))
    }

    /// [`decode_f32`] written with candle's ops, for CUDA and half precision.
    fn decode(&self, levels: &[Level<'_>]) -> Result<Tensor, SegmentError> {
        let b = levels[0].boxes.dim(0)?;
        let mut boxes = Vec::with_capacity(3);
        let mut scores = Vec::with_capacity(3);
        let mut coefs = Vec::with_capacity(3);
        let mut anchors = Vec::new();
        let mut strides = Vec::new();
        for l in levels {
            let (_, _, h, w) = l.boxes.dims4()?;
            boxes.push(l.boxes.reshape((b, 4 * self.reg_max, h * w))?);
            scores.push(l.classes.reshape((b, self.nc, h * w))?);
            coefs.push(l.coefs.reshape((b, self.nm, h * w))?);
            // Anchor points at pixel centres of each level, row-major (ultralytics make_anchors).
            for y in 0..h {
                for xx in 0..w {
                    anchors.push((xx as f32 + 0.5, y as f32 + 0.5));
                }
            }
            strides.extend(std::iter::repeat_n(l.stride as f32, h * w));
        }
        let a = anchors.len();
        let boxes = Tensor::cat(&boxes, 2)?;
        let scores = Tensor::cat(&scores, 2)?;
        let coefs = Tensor::cat(&coefs, 2)?;

        // DFL: softmax over the reg_max bins of each side, expectation of the bin index.
        let dist = candle_nn::ops::softmax(&boxes.reshape((b, 4, self.reg_max, a))?, 2)?
            .broadcast_mul(&self.dfl_bins)?
            .sum(2)?;
        let device = boxes.device();
        let dtype = boxes.dtype();
        let (ax, ay): (Vec<f32>, Vec<f32>) = anchors.into_iter().unzip();
        let anchor_xy = Tensor::cat(
            &[
                Tensor::from_vec(ax, (1, 1, a), device)?,
                Tensor::from_vec(ay, (1, 1, a), device)?,
            ],
            1,
        )?
        .to_dtype(dtype)?;
        let stride = Tensor::from_vec(strides, (1, 1, a), device)?.to_dtype(dtype)?;
        let lt = dist.narrow(1, 0, 2)?;
        let rb = dist.narrow(1, 2, 2)?;
        let x1y1 = anchor_xy.broadcast_sub(&lt)?;
        let x2y2 = anchor_xy.broadcast_add(&rb)?;
        let centre = ((&x1y1 + &x2y2)? * 0.5)?;
        let size = (x2y2 - x1y1)?;
        let dbox = Tensor::cat(&[centre, size], 1)?.broadcast_mul(&stride)?;
        Ok(Tensor::cat(
            &[dbox, candle_nn::ops::sigmoid(&scores)?, coefs],
            1,
        )?)
    }
}

/// The whole network.
#[derive(Debug)]
pub struct YoloV8Seg {
    // Backbone: layers 0..=9.
    stem: [Conv; 2],
    c2f2: C2f,
    down3: Conv,
    c2f4: C2f,
    down5: Conv,
    c2f6: C2f,
    down7: Conv,
    c2f8: C2f,
    sppf9: Sppf,
    // Neck: layers 10..=21 (10, 11, 13, 14, 17, 20 have no weights: upsample and concat).
    c2f12: C2f,
    c2f15: C2f,
    down16: Conv,
    c2f18: C2f,
    down19: Conv,
    c2f21: C2f,
    head: SegmentHead,
    arch: Architecture,
    dtype: DType,
    device: Device,
}

impl YoloV8Seg {
    /// Builds the network from `weights` (ultralytics `state_dict` names under `model.`), on
    /// `device`, computing in `dtype`.
    pub fn load(weights: &Weights, device: &Device, dtype: DType) -> Result<Self, SegmentError> {
        let t = Target {
            device: device.clone(),
            dtype,
        };
        let m = weights.scope("model");
        if !m.contains("22.proto.cv1.conv.weight") {
            return Err(if m.contains("22.cv2.0.0.conv.weight") {
                SegmentError::Architecture(
                    "the file is a detection model (no `model.22.proto`); edgesift needs a -seg model"
                        .into(),
                )
            } else if m.contains("0.conv.weight") {
                SegmentError::MissingTensor {
                    key: "model.22.proto.cv1.conv.weight".into(),
                }
            } else {
                SegmentError::Architecture(
                    "no `model.0.conv.weight`: tensors must carry ultralytics' state_dict names \
                     (export with scripts/export_ultralytics.py)"
                        .into(),
                )
            });
        }
        if m.contains("2.m.0.m.0.cv1.conv.weight") || m.contains("10.m.0.attn.qkv.conv.weight") {
            return Err(SegmentError::Architecture(
                "layer 2 is a C3k2 block (YOLO11/26); only YOLOv8-seg is supported".into(),
            ));
        }
        let silu = Activation::Silu;
        let l0 = Conv::load_bn(&m.pp(0), &t, 3, 3, 2, silu)?;
        let l1 = Conv::load_bn(&m.pp(1), &t, l0.c_out(), 3, 2, silu)?;
        let c2f2 = C2f::load(&m.pp(2), &t, l1.c_out(), true)?;
        let down3 = Conv::load_bn(&m.pp(3), &t, c2f2.c_out(), 3, 2, silu)?;
        let c2f4 = C2f::load(&m.pp(4), &t, down3.c_out(), true)?;
        let down5 = Conv::load_bn(&m.pp(5), &t, c2f4.c_out(), 3, 2, silu)?;
        let c2f6 = C2f::load(&m.pp(6), &t, down5.c_out(), true)?;
        let down7 = Conv::load_bn(&m.pp(7), &t, c2f6.c_out(), 3, 2, silu)?;
        let c2f8 = C2f::load(&m.pp(8), &t, down7.c_out(), true)?;
        let sppf9 = Sppf::load(&m.pp(9), &t, c2f8.c_out())?;
        let p5 = sppf9.cv2.c_out();
        let p4 = c2f6.c_out();
        let p3 = c2f4.c_out();
        let c2f12 = C2f::load(&m.pp(12), &t, p5 + p4, false)?;
        let c2f15 = C2f::load(&m.pp(15), &t, c2f12.c_out() + p3, false)?;
        let down16 = Conv::load_bn(&m.pp(16), &t, c2f15.c_out(), 3, 2, silu)?;
        let c2f18 = C2f::load(&m.pp(18), &t, down16.c_out() + c2f12.c_out(), false)?;
        let down19 = Conv::load_bn(&m.pp(19), &t, c2f18.c_out(), 3, 2, silu)?;
        let c2f21 = C2f::load(&m.pp(21), &t, down19.c_out() + p5, false)?;
        let neck_widths = [c2f15.c_out(), c2f18.c_out(), c2f21.c_out()];
        let head = SegmentHead::load(&m.pp(22), &t, neck_widths)?;
        let arch = Architecture {
            num_classes: head.nc,
            num_masks: head.nm,
            proto_channels: head.proto.cv1.c_out(),
            reg_max: head.reg_max,
            backbone_widths: vec![
                l0.c_out(),
                l1.c_out(),
                c2f2.c_out(),
                down3.c_out(),
                c2f4.c_out(),
                down5.c_out(),
                c2f6.c_out(),
                down7.c_out(),
                c2f8.c_out(),
                p5,
            ],
            neck_widths,
            c2f_depths: [&c2f2, &c2f4, &c2f6, &c2f8, &c2f12, &c2f15, &c2f18, &c2f21]
                .iter()
                .map(|c| c.bottlenecks.len())
                .collect(),
        };
        Ok(Self {
            stem: [l0, l1],
            c2f2,
            down3,
            c2f4,
            down5,
            c2f6,
            down7,
            c2f8,
            sppf9,
            c2f12,
            c2f15,
            down16,
            c2f18,
            down19,
            c2f21,
            head,
            arch,
            dtype,
            device: device.clone(),
        })
    }

    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Runs the network on `images` (`[B, 3, H, W]`, RGB in 0..1, H and W multiples of 32).
    pub fn forward(&self, images: &Tensor) -> Result<RawOutput, SegmentError> {
        let (_, c, h, w) = images.dims4()?;
        if c != 3 || h % 32 != 0 || w % 32 != 0 || h == 0 || w == 0 {
            return Err(SegmentError::BadInput(format!(
                "the network takes [B, 3, H, W] with H and W multiples of 32, got {:?}",
                images.dims()
            )));
        }
        let x = images.to_dtype(self.dtype)?.to_device(&self.device)?;
        let x = self.stem[1].forward(&self.stem[0].forward(&x)?)?;
        let x = self.down3.forward(&self.c2f2.forward(&x)?)?;
        let p3 = self.c2f4.forward(&x)?;
        let p4 = self.c2f6.forward(&self.down5.forward(&p3)?)?;
        let p5 = self
            .sppf9
            .forward(&self.c2f8.forward(&self.down7.forward(&p4)?)?)?;

        let n12 = self
            .c2f12
            .forward(&concat_channels(&[Part::Up2(&p5), Part::Plain(&p4)])?)?;
        let n15 = self
            .c2f15
            .forward(&concat_channels(&[Part::Up2(&n12), Part::Plain(&p3)])?)?;
        let d16 = self.down16.forward(&n15)?;
        let n18 = self
            .c2f18
            .forward(&concat_channels(&[Part::Plain(&d16), Part::Plain(&n12)])?)?;
        let d19 = self.down19.forward(&n18)?;
        let n21 = self
            .c2f21
            .forward(&concat_channels(&[Part::Plain(&d19), Part::Plain(&p5)])?)?;

        let (pred, proto) = self.head.forward([&n15, &n18, &n21])?;
        let embedding = Tensor::cat(
            &[
                n15.mean((D::Minus2, D::Minus1))?,
                n18.mean((D::Minus2, D::Minus1))?,
                n21.mean((D::Minus2, D::Minus1))?,
            ],
            1,
        )?;
        Ok(RawOutput {
            pred,
            proto,
            embedding,
        })
    }
}
