//! SAM's prompt encoder and mask decoder (two-way transformer, upscaling, hypernetwork MLPs, IoU
//! head), read from the tensor names of `mobile_sam/modeling/{prompt_encoder,mask_decoder,
//! transformer}.py` (`prompt_encoder.*`, `mask_decoder.*`). Mask prompts are not supported.

use super::nn::{gelu, LayerNorm, Linear};
use super::tiny_vit::OUT_CHANS as DIM;
use crate::segment::kernels::NormAxis;
use crate::segment::layers::{Target, Upsample2x};
use crate::segment::weights::Scope;
use crate::segment::SegmentError;
use candle_core::Tensor;

type Result<T> = std::result::Result<T, SegmentError>;

/// Side of the square model input.
pub(super) const IMAGE_SIZE: usize = 1024;
/// Side of the image embedding grid.
pub(super) const GRID: usize = 64;
/// Side of the low-resolution mask logits.
pub(super) const LOW_RES: usize = 256;
/// Mask tokens: one single-mask output and three multimask outputs.
pub(super) const NUM_MASK_TOKENS: usize = 4;
const HEADS: usize = 8;
const MLP_DIM: usize = 2048;
const DEPTH: usize = 2;
/// Cross attention runs at half the embedding width.
const DOWNSAMPLE: usize = 2;
const LN_EPS: f64 = 1e-5;
const LN2D_EPS: f64 = 1e-6;

/// One point prompt in model-input pixels (the 1024 frame).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointPrompt {
    pub x: f32,
    pub y: f32,
    /// Foreground (`true`, label 1) or background (`false`, label 0).
    pub foreground: bool,
}

/// Random Fourier features of positions, shared by the prompts and the image grid.
#[derive(Debug)]
pub(super) struct PromptEncoder {
    /// `[2, DIM / 2]`.
    gauss: Vec<f32>,
    /// pos/neg point, box corner 1, box corner 2.
    point_embeddings: [Vec<f32>; 4],
    not_a_point: Vec<f32>,
    no_mask: Tensor,
    /// `[1, DIM, GRID, GRID]`.
    dense_pe: Tensor,
}

impl PromptEncoder {
    pub(super) fn load(s: &Scope, t: &Target) -> Result<Self> {
        let gauss = s.f32(
            "pe_layer.positional_encoding_gaussian_matrix",
            &[2, DIM / 2],
        )?;
        let pe = |i: usize| s.f32(&format!("point_embeddings.{i}.weight"), &[1, DIM]);
        let mut me = Self {
            gauss,
            point_embeddings: [pe(0)?, pe(1)?, pe(2)?, pe(3)?],
            not_a_point: s.f32("not_a_point_embed.weight", &[1, DIM])?,
            no_mask: t.tensor(s.f32("no_mask_embed.weight", &[1, DIM])?, &[1, DIM, 1, 1])?,
            dense_pe: Tensor::zeros(1, candle_core::DType::F32, &candle_core::Device::Cpu)?,
        };
        let mut dense = vec![0f32; DIM * GRID * GRID];
        for y in 0..GRID {
            for x in 0..GRID {
                let v = me.encode(
                    (x as f32 + 0.5) / GRID as f32,
                    (y as f32 + 0.5) / GRID as f32,
                );
                for (c, val) in v.iter().enumerate() {
                    dense[(c * GRID + y) * GRID + x] = *val;
                }
            }
        }
        me.dense_pe = t.tensor(dense, &[1, DIM, GRID, GRID])?;
        Ok(me)
    }

    /// The encoding of a position normalised to [0, 1]: `[sin, cos](2 pi (2p - 1) G)`.
    fn encode(&self, x: f32, y: f32) -> Vec<f32> {
        let half = DIM / 2;
        let (cx, cy) = (2.0 * x - 1.0, 2.0 * y - 1.0);
        let mut out = vec![0f32; DIM];
        for j in 0..half {
            let v = (cx * self.gauss[j] + cy * self.gauss[half + j]) * std::f32::consts::TAU;
            out[j] = v.sin();
            out[half + j] = v.cos();
        }
        out
    }

    /// A point at pixel (x, y) of the model input; SAM shifts to the pixel centre.
    fn encode_pixel(&self, x: f32, y: f32) -> Vec<f32> {
        self.encode((x + 0.5) / IMAGE_SIZE as f32, (y + 0.5) / IMAGE_SIZE as f32)
    }

    /// The sparse embeddings `[tokens * DIM]` of one prompt, tokens in upstream's order
    /// (points, a padding point when there is no box, then the two box corners).
    pub(super) fn sparse(&self, points: &[PointPrompt], bbox: Option<[f32; 4]>) -> Vec<f32> {
        let add = |v: &mut Vec<f32>, e: &[f32]| v.iter_mut().zip(e).for_each(|(a, b)| *a += b);
        let mut out = Vec::new();
        for p in points {
            let mut v = self.encode_pixel(p.x, p.y);
            add(&mut v, &self.point_embeddings[p.foreground as usize]);
            out.extend(v);
        }
        match bbox {
            None => out.extend(&self.not_a_point),
            Some([x0, y0, x1, y1]) => {
                for (i, (x, y)) in [(x0, y0), (x1, y1)].into_iter().enumerate() {
                    let mut v = self.encode_pixel(x, y);
                    add(&mut v, &self.point_embeddings[2 + i]);
                    out.extend(v);
                }
            }
        }
        out
    }
}

/// SAM's attention with projections to `internal` channels split over [`HEADS`].
#[derive(Debug)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    internal: usize,
}

impl Attention {
    fn load(s: &Scope, t: &Target, downsample: usize) -> Result<Self> {
        let internal = DIM / downsample;
        Ok(Self {
            q: Linear::load(&s.pp("q_proj"), t, DIM, internal)?,
            k: Linear::load(&s.pp("k_proj"), t, DIM, internal)?,
            v: Linear::load(&s.pp("v_proj"), t, DIM, internal)?,
            out: Linear::load(&s.pp("out_proj"), t, internal, DIM)?,
            internal,
        })
    }

    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, _) = x.dims3()?;
        Ok(x.reshape((b, n, HEADS, self.internal / HEADS))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    fn forward(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let q = self.heads(&self.q.forward(q)?)?;
        let k = self.heads(&self.k.forward(k)?)?;
        let v = self.heads(&self.v.forward(v)?)?;
        let scale = 1.0 / ((self.internal / HEADS) as f64).sqrt();
        let attn = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
        let attn = candle_nn::ops::softmax_last_dim(&attn)?;
        let (b, _, n, _) = attn.dims4()?;
        let y = attn
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, n, self.internal))?;
        self.out.forward(&y)
    }
}

#[derive(Debug)]
struct TwoWayBlock {
    self_attn: Attention,
    norm1: LayerNorm,
    cross_token_to_image: Attention,
    norm2: LayerNorm,
    lin1: Linear,
    lin2: Linear,
    norm3: LayerNorm,
    norm4: LayerNorm,
    cross_image_to_token: Attention,
    skip_first_layer_pe: bool,
}

impl TwoWayBlock {
    fn load(s: &Scope, t: &Target, skip_first_layer_pe: bool) -> Result<Self> {
        let ln = |name: &str| LayerNorm::load(&s.pp(name), t, DIM, LN_EPS, NormAxis::Last);
        Ok(Self {
            self_attn: Attention::load(&s.pp("self_attn"), t, 1)?,
            norm1: ln("norm1")?,
            cross_token_to_image: Attention::load(
                &s.pp("cross_attn_token_to_image"),
                t,
                DOWNSAMPLE,
            )?,
            norm2: ln("norm2")?,
            lin1: Linear::load(&s.pp("mlp.lin1"), t, DIM, MLP_DIM)?,
            lin2: Linear::load(&s.pp("mlp.lin2"), t, MLP_DIM, DIM)?,
            norm3: ln("norm3")?,
            norm4: ln("norm4")?,
            cross_image_to_token: Attention::load(
                &s.pp("cross_attn_image_to_token"),
                t,
                DOWNSAMPLE,
            )?,
            skip_first_layer_pe,
        })
    }

    fn forward(
        &self,
        queries: &Tensor,
        keys: &Tensor,
        query_pe: &Tensor,
        key_pe: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let queries = if self.skip_first_layer_pe {
            self.self_attn.forward(queries, queries, queries)?
        } else {
            let q = (queries + query_pe)?;
            (queries + self.self_attn.forward(&q, &q, queries)?)?
        };
        let queries = self.norm1.forward(&queries)?;
        let q = (&queries + query_pe)?;
        let k = keys.broadcast_add(key_pe)?;
        let queries = (&queries + self.cross_token_to_image.forward(&q, &k, keys)?)?;
        let queries = self.norm2.forward(&queries)?;
        let mlp = self.lin2.forward(&self.lin1.forward(&queries)?.relu()?)?;
        let queries = self.norm3.forward(&(queries + mlp)?)?;
        let q = (&queries + query_pe)?;
        let keys = (keys + self.cross_image_to_token.forward(&k, &q, &queries)?)?;
        let keys = self.norm4.forward(&keys)?;
        Ok((queries, keys))
    }
}

/// Linear layers with ReLU between them.
#[derive(Debug)]
struct Mlp(Vec<Linear>);

impl Mlp {
    fn load(s: &Scope, t: &Target, hidden: usize, out: usize, layers: usize) -> Result<Self> {
        (0..layers)
            .map(|i| {
                let c_in = if i == 0 { DIM } else { hidden };
                let c_out = if i + 1 == layers { out } else { hidden };
                Linear::load(&s.pp(format!("layers.{i}")), t, c_in, c_out)
            })
            .collect::<Result<Vec<_>>>()
            .map(Self)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (i, l) in self.0.iter().enumerate() {
            x = l.forward(&x)?;
            if i + 1 < self.0.len() {
                x = x.relu()?;
            }
        }
        Ok(x)
    }
}

/// The mask decoder with its two-way transformer.
#[derive(Debug)]
pub(super) struct MaskDecoder {
    /// `[1 + NUM_MASK_TOKENS, DIM]`: the IoU token, then the mask tokens.
    output_tokens: Tensor,
    blocks: Vec<TwoWayBlock>,
    final_attn: Attention,
    norm_final: LayerNorm,
    up1: Upsample2x,
    up_norm: LayerNorm,
    up2: Upsample2x,
    hyper: Vec<Mlp>,
    iou_head: Mlp,
}

impl MaskDecoder {
    pub(super) fn load(s: &Scope, t: &Target) -> Result<Self> {
        let mut tokens = s.f32("iou_token.weight", &[1, DIM])?;
        tokens.extend(s.f32("mask_tokens.weight", &[NUM_MASK_TOKENS, DIM])?);
        let tr = s.pp("transformer");
        let up = s.pp("output_upscaling");
        Ok(Self {
            output_tokens: t.tensor(tokens, &[1 + NUM_MASK_TOKENS, DIM])?,
            blocks: (0..DEPTH)
                .map(|i| TwoWayBlock::load(&tr.pp(format!("layers.{i}")), t, i == 0))
                .collect::<Result<Vec<_>>>()?,
            final_attn: Attention::load(&tr.pp("final_attn_token_to_image"), t, DOWNSAMPLE)?,
            norm_final: LayerNorm::load(&tr.pp("norm_final_attn"), t, DIM, LN_EPS, NormAxis::Last)?,
            up1: Upsample2x::load(&up.pp(0), t, DIM)?,
            up_norm: LayerNorm::load(&up.pp(1), t, DIM / 4, LN2D_EPS, NormAxis::Channels)?,
            up2: Upsample2x::load(&up.pp(3), t, DIM / 4)?,
            hyper: (0..NUM_MASK_TOKENS)
                .map(|i| {
                    Mlp::load(
                        &s.pp(format!("output_hypernetworks_mlps.{i}")),
                        t,
                        DIM,
                        DIM / 8,
                        3,
                    )
                })
                .collect::<Result<Vec<_>>>()?,
            iou_head: Mlp::load(&s.pp("iou_prediction_head"), t, DIM, NUM_MASK_TOKENS, 3)?,
        })
    }

    /// All four masks of a batch of prompts with the same token count.
    ///
    /// `embedding` is `[1, DIM, GRID, GRID]`, `sparse` `[b, tokens, DIM]`; returns the mask logits
    /// `[b, 4, LOW_RES, LOW_RES]` and the IoU predictions `[b, 4]`.
    pub(super) fn forward(
        &self,
        prompt: &PromptEncoder,
        embedding: &Tensor,
        sparse: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let _span = tracing::trace_span!("mask_decoder").entered();
        let b = sparse.dim(0)?;
        let tokens = Tensor::cat(
            &[
                &self
                    .output_tokens
                    .unsqueeze(0)?
                    .broadcast_as((b, 1 + NUM_MASK_TOKENS, DIM))?,
                sparse,
            ],
            1,
        )?
        .contiguous()?;
        // src = image embedding + the no-mask dense embedding, per prompt.
        let src = embedding.broadcast_add(&prompt.no_mask)?;
        let keys = src
            .flatten_from(2)?
            .transpose(1, 2)?
            .broadcast_as((b, GRID * GRID, DIM))?
            .contiguous()?;
        let key_pe = prompt
            .dense_pe
            .flatten_from(2)?
            .transpose(1, 2)?
            .contiguous()?;
        let (mut queries, mut keys) = (tokens.clone(), keys);
        for blk in &self.blocks {
            (queries, keys) = blk.forward(&queries, &keys, &tokens, &key_pe)?;
        }
        let q = (&queries + &tokens)?;
        let k = keys.broadcast_add(&key_pe)?;
        let queries = (&queries + self.final_attn.forward(&q, &k, &keys)?)?;
        let hs = self.norm_final.forward(&queries)?;

        let src = keys.transpose(1, 2)?.reshape((b, DIM, GRID, GRID))?;
        let up = gelu(&self.up_norm.forward(&self.up1.forward(&src)?)?)?;
        let up = gelu(&self.up2.forward(&up)?)?;
        let hyper = (0..NUM_MASK_TOKENS)
            .map(|i| self.hyper[i].forward(&hs.narrow(1, 1 + i, 1)?))
            .collect::<Result<Vec<_>>>()?;
        let hyper = Tensor::cat(&hyper, 1)?; // [b, 4, DIM / 8]
        let masks = hyper
            .matmul(&up.reshape((b, DIM / 8, LOW_RES * LOW_RES))?)?
            .reshape((b, NUM_MASK_TOKENS, LOW_RES, LOW_RES))?;
        let iou = self.iou_head.forward(&hs.narrow(1, 0, 1)?)?.squeeze(1)?;
        Ok((masks, iou))
    }
}
