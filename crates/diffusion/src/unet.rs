//! UNet2DConditionModel in diffusers' layout: SD1.x, SD2.x (linear projections, per-level
//! heads), SDXL (text-time embeddings, deep transformer stacks) and inpainting (9 input channels).

use std::sync::Arc;

use candle_core::{DType, Tensor};

use crate::config::UNetConfig;
use crate::error::Result;
use crate::nn::{
    Conv2d, GradSink, GroupNorm, LayerNorm, Linear, Padding, attention, merge_heads, recompute,
    silu, split_heads, timestep_embedding, upsample_nearest,
};
use crate::reference::Reference;
use crate::weights::Vb;

pub(crate) struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl ResnetBlock {
    #[allow(clippy::too_many_arguments)]
    fn new(
        vb: &Vb,
        c_in: usize,
        c_out: usize,
        temb: Option<usize>,
        groups: usize,
        eps: f64,
        pad: Padding,
    ) -> Result<ResnetBlock> {
        Ok(ResnetBlock {
            norm1: GroupNorm::new(&vb.pp("norm1"), groups, c_in, eps)?,
            conv1: Conv2d::new(&vb.pp("conv1"), c_in, c_out, 3, 1, 1, pad)?,
            time_emb_proj: match temb {
                Some(t) => Some(Linear::new(&vb.pp("time_emb_proj"), t, c_out, true)?),
                None => None,
            },
            norm2: GroupNorm::new(&vb.pp("norm2"), groups, c_out, eps)?,
            conv2: Conv2d::new(&vb.pp("conv2"), c_out, c_out, 3, 1, 1, pad)?,
            shortcut: if c_in != c_out {
                Some(Conv2d::new(
                    &vb.pp("conv_shortcut"),
                    c_in,
                    c_out,
                    1,
                    1,
                    0,
                    pad,
                )?)
            } else {
                None
            },
        })
    }

    fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let mut h = self.conv1.forward(&silu(&self.norm1.forward(x)?)?)?;
        if let (Some(p), Some(t)) = (&self.time_emb_proj, temb) {
            let t = p.forward(&silu(t)?)?;
            h = h.broadcast_add(&t.unsqueeze(2)?.unsqueeze(3)?)?;
        }
        let h = self.conv2.forward(&silu(&self.norm2.forward(&h)?)?)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        Ok((skip + h)?)
    }
}

pub(crate) use vae_attention::SelfAttention;

mod vae_attention {
    use super::*;

    /// Attention over the pixels of a feature map (the VAE's mid block: one head), diffusers'
    /// `Attention` with a group norm in front and the input added back.
    pub(crate) struct SelfAttention {
        norm: GroupNorm,
        q: Linear,
        k: Linear,
        v: Linear,
        out: Linear,
        heads: usize,
    }

    impl SelfAttention {
        pub(crate) fn new(vb: &Vb, c: usize, groups: usize) -> Result<SelfAttention> {
            SelfAttention::with_heads(vb, c, groups, 1e-6, 1)
        }

        pub(crate) fn with_heads(
            vb: &Vb,
            c: usize,
            groups: usize,
            eps: f64,
            heads: usize,
        ) -> Result<SelfAttention> {
            Ok(SelfAttention {
                norm: GroupNorm::new(&vb.pp("group_norm"), groups, c, eps)?,
                q: Linear::new(&vb.pp("to_q"), c, c, true)?,
                k: Linear::new(&vb.pp("to_k"), c, c, true)?,
                v: Linear::new(&vb.pp("to_v"), c, c, true)?,
                out: Linear::new(&vb.pp("to_out.0"), c, c, true)?,
                heads: heads.max(1),
            })
        }

        pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
            let (b, c, h, w) = x.dims4()?;
            let t = self
                .norm
                .forward(x)?
                .reshape((b, c, h * w))?
                .transpose(1, 2)?
                .contiguous()?;
            let q = split_heads(&self.q.forward(&t)?, self.heads)?;
            let k = split_heads(&self.k.forward(&t)?, self.heads)?;
            let v = split_heads(&self.v.forward(&t)?, self.heads)?;
            let a = merge_heads(&attention(&q, &k, &v, None)?, self.heads)?;
            let o = self
                .out
                .forward(&a)?
                .transpose(1, 2)?
                .reshape((b, c, h, w))?;
            Ok((x + o)?)
        }
    }
}

pub(crate) struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    pub(crate) fn new(vb: &Vb, dim: usize, ctx_dim: usize, heads: usize) -> Result<Attention> {
        Ok(Attention {
            q: Linear::new(&vb.pp("to_q"), dim, dim, false)?,
            k: Linear::new(&vb.pp("to_k"), ctx_dim, dim, false)?,
            v: Linear::new(&vb.pp("to_v"), ctx_dim, dim, false)?,
            out: Linear::new(&vb.pp("to_out.0"), dim, dim, true)?,
            heads,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, ctx: &Tensor) -> Result<Tensor> {
        let q = split_heads(&self.q.forward(x)?, self.heads)?;
        let k = split_heads(&self.k.forward(ctx)?, self.heads)?;
        let v = split_heads(&self.v.forward(ctx)?, self.heads)?;
        let a = merge_heads(&attention(&q, &k, &v, None)?, self.heads)?;
        self.out.forward(&a)
    }
}

struct TransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
}

impl TransformerBlock {
    fn new(vb: &Vb, dim: usize, ctx_dim: usize, heads: usize) -> Result<TransformerBlock> {
        let inner = dim * 4;
        Ok(TransformerBlock {
            norm1: LayerNorm::new(&vb.pp("norm1"), dim, 1e-5)?,
            attn1: Attention::new(&vb.pp("attn1"), dim, dim, heads)?,
            norm2: LayerNorm::new(&vb.pp("norm2"), dim, 1e-5)?,
            attn2: Attention::new(&vb.pp("attn2"), dim, ctx_dim, heads)?,
            norm3: LayerNorm::new(&vb.pp("norm3"), dim, 1e-5)?,
            ff_in: Linear::new(&vb.pp("ff.net.0.proj"), dim, inner * 2, true)?,
            ff_out: Linear::new(&vb.pp("ff.net.2"), inner, dim, true)?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        ctx: &Tensor,
        reference: Option<Reference<'_>>,
    ) -> Result<Tensor> {
        let h = self.norm1.forward(x)?;
        let a = match reference {
            None => self.attn1.forward(&h, &h)?,
            Some(Reference::Write(bank)) => {
                bank.push(h.clone())?;
                self.attn1.forward(&h, &h)?
            }
            Some(Reference::Read {
                bank,
                style_fidelity,
                uncond,
            }) => {
                let mut keys = bank.next()?;
                let b = h.dim(0)?;
                if keys.dim(0)? != b {
                    // One reference for every item of the batch.
                    keys = keys.narrow(0, 0, 1)?.repeat((b, 1, 1))?;
                }
                let with_ref = self.attn1.forward(&h, &Tensor::cat(&[&h, &keys], 1)?)?;
                if style_fidelity > 0.0 && uncond > 0 && uncond < b {
                    // The unconditional rows also see themselves alone, so guidance pulls
                    // away from the reference by `style_fidelity`.
                    let u = h.narrow(0, 0, uncond)?;
                    let own = Tensor::cat(
                        &[
                            &self.attn1.forward(&u, &u)?,
                            &with_ref.narrow(0, uncond, b - uncond)?,
                        ],
                        0,
                    )?;
                    ((own * style_fidelity)? + (with_ref * (1.0 - style_fidelity))?)?
                } else {
                    with_ref
                }
            }
        };
        let x = (x + a)?;
        let h = self.norm2.forward(&x)?;
        let x = (&x + self.attn2.forward(&h, ctx)?)?;
        let h = self.norm3.forward(&x)?;
        Ok((x + geglu(&self.ff_in, &self.ff_out, &h)?)?)
    }
}

/// The transformer blocks' feed-forward: GEGLU, half the projection gating the other half.
pub(crate) fn geglu(ff_in: &Linear, ff_out: &Linear, h: &Tensor) -> Result<Tensor> {
    let proj = ff_in.forward(h)?;
    let half = proj.dim(2)? / 2;
    let gated = (proj.narrow(2, 0, half)? * proj.narrow(2, half, half)?.gelu_erf()?)?;
    ff_out.forward(&gated)
}

enum Proj {
    Conv(Conv2d),
    Linear(Linear),
}

pub(crate) struct Transformer2D {
    norm: GroupNorm,
    proj_in: Proj,
    blocks: Vec<TransformerBlock>,
    proj_out: Proj,
}

impl Transformer2D {
    fn new(
        vb: &Vb,
        c: usize,
        heads: usize,
        depth: usize,
        cfg: &UNetConfig,
    ) -> Result<Transformer2D> {
        let proj = |name: &str| -> Result<Proj> {
            Ok(if cfg.use_linear_projection {
                Proj::Linear(Linear::new(&vb.pp(name), c, c, true)?)
            } else {
                Proj::Conv(Conv2d::new(&vb.pp(name), c, c, 1, 1, 0, Padding::ZEROS)?)
            })
        };
        let mut blocks = Vec::with_capacity(depth);
        for i in 0..depth {
            blocks.push(TransformerBlock::new(
                &vb.pp("transformer_blocks").pp(i),
                c,
                cfg.cross_attention_dim,
                heads,
            )?);
        }
        Ok(Transformer2D {
            norm: GroupNorm::new(&vb.pp("norm"), cfg.norm_num_groups, c, 1e-6)?,
            proj_in: proj("proj_in")?,
            blocks,
            proj_out: proj("proj_out")?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, ctx: &Tensor) -> Result<Tensor> {
        self.forward_ref(x, ctx, None)
    }

    fn forward_ref(
        &self,
        x: &Tensor,
        ctx: &Tensor,
        reference: Option<Reference<'_>>,
    ) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = self.norm.forward(x)?;
        let to_seq = |t: &Tensor| -> Result<Tensor> {
            Ok(t.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?)
        };
        let mut t = match &self.proj_in {
            Proj::Conv(p) => to_seq(&p.forward(&n)?)?,
            Proj::Linear(p) => p.forward(&to_seq(&n)?)?,
        };
        for blk in &self.blocks {
            t = blk.forward(&t, ctx, reference)?;
        }
        let from_seq =
            |t: &Tensor| -> Result<Tensor> { Ok(t.transpose(1, 2)?.reshape((b, c, h, w))?) };
        let out = match &self.proj_out {
            Proj::Conv(p) => p.forward(&from_seq(&t)?)?,
            Proj::Linear(p) => from_seq(&p.forward(&t)?)?,
        };
        Ok((x + out)?)
    }
}

// Blocks are shared (`Arc`) so a recomputed block's backward can run it again after the
// forward pass has returned.
pub(crate) struct Level {
    pub(crate) resnets: Vec<Arc<ResnetBlock>>,
    attentions: Vec<Arc<Transformer2D>>,
    pub(crate) sampler: Option<Conv2d>,
}

/// SDXL's extra conditioning: the pooled text embedding and the six size/crop numbers.
#[derive(Debug, Clone)]
pub struct AddedCond {
    pub text_embeds: Tensor,
    pub time_ids: Tensor,
}

pub(crate) type Mid = (Arc<ResnetBlock>, Arc<Transformer2D>, Arc<ResnetBlock>);

pub struct UNet {
    cfg: UNetConfig,
    conv_in: Conv2d,
    time_1: Linear,
    time_2: Linear,
    add: Option<(Linear, Linear)>,
    down: Vec<Level>,
    mid: Mid,
    up: Vec<Level>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    /// Set when training recomputes each block's activations in the backward pass.
    sink: Option<Arc<dyn GradSink>>,
}

impl std::fmt::Debug for UNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UNet")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl UNet {
    pub fn new(vb: &Vb, cfg: &UNetConfig, pad: Padding) -> Result<UNet> {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let g = cfg.norm_num_groups;
        let eps = cfg.norm_eps;
        let temb = ch[0] * 4;
        let conv_in = Conv2d::new(&vb.pp("conv_in"), cfg.in_channels, ch[0], 3, 1, 1, pad)?;
        let time_1 = Linear::new(&vb.pp("time_embedding.linear_1"), ch[0], temb, true)?;
        let time_2 = Linear::new(&vb.pp("time_embedding.linear_2"), temb, temb, true)?;
        let add = added_embedding(vb, cfg, temb)?;
        let down = down_levels(vb, cfg, temb, pad)?;
        let mid = mid_block(vb, cfg, temb, pad)?;
        let mut up = Vec::with_capacity(n);
        for i in 0..n {
            let level = n - 1 - i;
            let b = vb.pp("up_blocks").pp(i);
            let out = ch[level];
            let prev_out = if i == 0 { ch[n - 1] } else { ch[level + 1] };
            let c_in = ch[level.saturating_sub(1)];
            let attn = cfg
                .up_block_types
                .get(i)
                .is_some_and(|t| t.starts_with("CrossAttn"));
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..=cfg.layers_per_block {
                let skip = if j == cfg.layers_per_block { c_in } else { out };
                let cin = if j == 0 { prev_out } else { out };
                resnets.push(Arc::new(ResnetBlock::new(
                    &b.pp("resnets").pp(j),
                    cin + skip,
                    out,
                    Some(temb),
                    g,
                    eps,
                    pad,
                )?));
                if attn {
                    attentions.push(Arc::new(Transformer2D::new(
                        &b.pp("attentions").pp(j),
                        out,
                        cfg.heads(level),
                        cfg.transformer_layers_per_block.at(level),
                        cfg,
                    )?));
                }
            }
            let sampler = if i + 1 < n {
                Some(Conv2d::new(
                    &b.pp("upsamplers.0.conv"),
                    out,
                    out,
                    3,
                    1,
                    1,
                    pad,
                )?)
            } else {
                None
            };
            up.push(Level {
                resnets,
                attentions,
                sampler,
            });
        }
        Ok(UNet {
            cfg: cfg.clone(),
            conv_in,
            time_1,
            time_2,
            add,
            down,
            mid,
            up,
            norm_out: GroupNorm::new(&vb.pp("conv_norm_out"), g, ch[0], eps)?,
            conv_out: Conv2d::new(&vb.pp("conv_out"), ch[0], cfg.out_channels, 3, 1, 1, pad)?,
            sink: vb.recompute_sink(),
        })
    }

    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    /// Predicts noise (or v) for `x` at `timestep` given the text context.
    pub fn forward(
        &self,
        x: &Tensor,
        timestep: f64,
        ctx: &Tensor,
        added: Option<&AddedCond>,
    ) -> Result<Tensor> {
        let b = x.dim(0)?;
        let t = Tensor::from_vec(vec![timestep as f32; b], (b,), x.device())?;
        self.forward_timesteps(x, &t, ctx, added)
    }

    /// [`UNet::forward`] with a timestep per sample (`t`: `(b,)`), as training draws them.
    pub fn forward_timesteps(
        &self,
        x: &Tensor,
        t: &Tensor,
        ctx: &Tensor,
        added: Option<&AddedCond>,
    ) -> Result<Tensor> {
        self.forward_controlled(x, t, ctx, added, None)
    }

    /// [`UNet::forward_timesteps`] with ControlNet residuals added to the skips and to the
    /// middle block's output, as diffusers' `down_block_additional_residuals` and
    /// `mid_block_additional_residual` are.
    pub fn forward_controlled(
        &self,
        x: &Tensor,
        t: &Tensor,
        ctx: &Tensor,
        added: Option<&AddedCond>,
        control: Option<&crate::controlnet::Residuals>,
    ) -> Result<Tensor> {
        self.forward_referenced(x, t, ctx, added, control, None)
    }

    /// [`UNet::forward_controlled`] taking part in reference attention: recording the
    /// reference's tokens or attending to them (see [`crate::reference`]).
    pub fn forward_referenced(
        &self,
        x: &Tensor,
        t: &Tensor,
        ctx: &Tensor,
        added: Option<&AddedCond>,
        control: Option<&crate::controlnet::Residuals>,
        reference: Option<Reference<'_>>,
    ) -> Result<Tensor> {
        self.forward_with(x, t, ctx, added, control, reference, None)
    }

    /// The prediction for a clip: `x` is `(batch·frames, c, h, w)` frame-major, `t` and `ctx`
    /// one per frame; `motion`'s temporal modules run after each block, as diffusers'
    /// `UNetMotionModel` built from this UNet and the adapter does.
    pub fn forward_motion(
        &self,
        x: &Tensor,
        t: &Tensor,
        ctx: &Tensor,
        control: Option<&crate::controlnet::Residuals>,
        motion: &crate::motion::MotionAdapter,
        frames: usize,
    ) -> Result<Tensor> {
        motion.check_base(&self.cfg)?;
        self.forward_with(x, t, ctx, None, control, None, Some((motion, frames)))
    }

    #[allow(clippy::too_many_arguments)]
    fn forward_with(
        &self,
        x: &Tensor,
        t: &Tensor,
        ctx: &Tensor,
        added: Option<&AddedCond>,
        control: Option<&crate::controlnet::Residuals>,
        reference: Option<Reference<'_>>,
        motion: Option<(&crate::motion::MotionAdapter, usize)>,
    ) -> Result<Tensor> {
        let emb = time_embedding(
            &self.cfg,
            (&self.time_1, &self.time_2, self.add.as_ref()),
            t,
            added,
            x.dtype(),
        )?;
        let mut h = self.conv_in.forward(x)?;
        let sink = self.sink.as_ref();
        let res = |r: &Arc<ResnetBlock>, h: &Tensor| -> Result<Tensor> {
            let (r, emb) = (Arc::clone(r), emb.clone());
            recompute(h, Arc::new(move |x| r.forward(x, Some(&emb))), sink)
        };
        let att = |a: &Arc<Transformer2D>, h: &Tensor| -> Result<Tensor> {
            if reference.is_some() {
                // Sampling only: training never records a reference.
                return a.forward_ref(h, ctx, reference);
            }
            let (a, ctx) = (Arc::clone(a), ctx.clone());
            recompute(h, Arc::new(move |x| a.forward(x, &ctx)), sink)
        };
        // A motion module after a block, when the adapter has one there.
        let temporal = |m: Option<&crate::motion::MotionModule>, h: Tensor| -> Result<Tensor> {
            match (m, motion) {
                (Some(m), Some((_, frames))) => m.forward(&h, frames),
                _ => Ok(h),
            }
        };
        let mut skips = vec![h.clone()];
        for (i, level) in self.down.iter().enumerate() {
            for (j, r) in level.resnets.iter().enumerate() {
                h = res(r, &h)?;
                if let Some(a) = level.attentions.get(j) {
                    h = att(a, &h)?;
                }
                h = temporal(motion.and_then(|(m, _)| m.down.get(i)?.get(j)), h)?;
                skips.push(h.clone());
            }
            if let Some(s) = &level.sampler {
                h = s.forward(&h)?;
                skips.push(h.clone());
            }
        }
        h = res(&self.mid.0, &h)?;
        h = att(&self.mid.1, &h)?;
        h = temporal(motion.and_then(|(m, _)| m.mid.as_ref()), h)?;
        h = res(&self.mid.2, &h)?;
        if let Some(c) = control {
            if c.down.len() != skips.len() {
                return Err(crate::Error::InvalidRequest(format!(
                    "the ControlNet gives {} residuals but the UNet has {} skip connections; it was made for another base model",
                    c.down.len(),
                    skips.len()
                )));
            }
            for (s, r) in skips.iter_mut().zip(&c.down) {
                *s = (&*s + r.to_dtype(s.dtype())?)?;
            }
            h = (h + c.mid.to_dtype(x.dtype())?)?;
        }
        for (i, level) in self.up.iter().enumerate() {
            for (j, r) in level.resnets.iter().enumerate() {
                let skip = skips.pop().ok_or_else(|| {
                    crate::Error::InvalidRequest("UNet skip connections out of step".into())
                })?;
                h = Tensor::cat(&[&h, &skip], 1)?;
                h = res(r, &h)?;
                if let Some(a) = level.attentions.get(j) {
                    h = att(a, &h)?;
                }
                h = temporal(motion.and_then(|(m, _)| m.up.get(i)?.get(j)), h)?;
            }
            if let Some(s) = &level.sampler {
                // Upsample to the next skip's size so odd latent sizes line up.
                let (th, tw) = match skips.last() {
                    Some(k) => (k.dim(2)?, k.dim(3)?),
                    None => (h.dim(2)? * 2, h.dim(3)? * 2),
                };
                h = s.forward(&upsample_nearest(&h, th, tw)?)?;
            }
        }
        let h = silu(&self.norm_out.forward(&h)?)?;
        self.conv_out.forward(&h)
    }
}

/// The SDXL added embedding (pooled text and size/crop ids), when the config has one.
pub(crate) fn added_embedding(
    vb: &Vb,
    cfg: &UNetConfig,
    temb: usize,
) -> Result<Option<(Linear, Linear)>> {
    if !cfg.is_sdxl() {
        return Ok(None);
    }
    let input = cfg.projection_class_embeddings_input_dim.unwrap_or(2816);
    Ok(Some((
        Linear::new(&vb.pp("add_embedding.linear_1"), input, temb, true)?,
        Linear::new(&vb.pp("add_embedding.linear_2"), temb, temb, true)?,
    )))
}

/// The time embedding of `t` (`(b,)`), plus SDXL's added conditioning when both are there.
pub(crate) fn time_embedding(
    cfg: &UNetConfig,
    (time_1, time_2, add): (&Linear, &Linear, Option<&(Linear, Linear)>),
    t: &Tensor,
    added: Option<&AddedCond>,
    dtype: DType,
) -> Result<Tensor> {
    let b = t.dim(0)?;
    let t = timestep_embedding(t, cfg.block_out_channels[0])?.to_dtype(dtype)?;
    let mut emb = time_2.forward(&silu(&time_1.forward(&t)?)?)?;
    if let (Some((l1, l2)), Some(a)) = (add, added) {
        let dim = cfg.addition_time_embed_dim.unwrap_or(256);
        let ids = a.time_ids.to_dtype(DType::F32)?.flatten_all()?;
        let tproj = timestep_embedding(&ids, dim)?
            .reshape((b, ()))?
            .to_dtype(dtype)?;
        let input = Tensor::cat(&[a.text_embeds.to_dtype(dtype)?, tproj], 1)?;
        emb = (emb + l2.forward(&silu(&l1.forward(&input)?)?)?)?;
    }
    Ok(emb)
}

/// The down path's levels, which the UNet and a ControlNet of its shape share.
pub(crate) fn down_levels(
    vb: &Vb,
    cfg: &UNetConfig,
    temb: usize,
    pad: Padding,
) -> Result<Vec<Level>> {
    let ch = &cfg.block_out_channels;
    let n = ch.len();
    let mut down = Vec::with_capacity(n);
    for i in 0..n {
        let b = vb.pp("down_blocks").pp(i);
        let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for j in 0..cfg.layers_per_block {
            let cin = if j == 0 { c_in } else { ch[i] };
            resnets.push(Arc::new(ResnetBlock::new(
                &b.pp("resnets").pp(j),
                cin,
                ch[i],
                Some(temb),
                cfg.norm_num_groups,
                cfg.norm_eps,
                pad,
            )?));
            if cfg.has_attention(i) {
                attentions.push(Arc::new(Transformer2D::new(
                    &b.pp("attentions").pp(j),
                    ch[i],
                    cfg.heads(i),
                    cfg.transformer_layers_per_block.at(i),
                    cfg,
                )?));
            }
        }
        let sampler = if i + 1 < n {
            Some(Conv2d::new(
                &b.pp("downsamplers.0.conv"),
                ch[i],
                ch[i],
                3,
                2,
                1,
                pad,
            )?)
        } else {
            None
        };
        down.push(Level {
            resnets,
            attentions,
            sampler,
        });
    }
    Ok(down)
}

/// The middle block: resnet, transformer, resnet at the innermost width.
pub(crate) fn mid_block(vb: &Vb, cfg: &UNetConfig, temb: usize, pad: Padding) -> Result<Mid> {
    let n = cfg.block_out_channels.len();
    let last = cfg.block_out_channels[n - 1];
    let m = vb.pp("mid_block");
    let resnet = |name: &str| -> Result<Arc<ResnetBlock>> {
        Ok(Arc::new(ResnetBlock::new(
            &m.pp(name),
            last,
            last,
            Some(temb),
            cfg.norm_num_groups,
            cfg.norm_eps,
            pad,
        )?))
    };
    Ok((
        resnet("resnets.0")?,
        Arc::new(Transformer2D::new(
            &m.pp("attentions.0"),
            last,
            cfg.heads(n - 1),
            cfg.transformer_layers_per_block.at(n - 1),
            cfg,
        )?),
        resnet("resnets.1")?,
    ))
}

/// Runs the down path and the middle block without recomputation (inference only), returning
/// the skips in diffusers' order (`down_block_res_samples`) and the middle block's output.
pub(crate) fn run_down_mid(
    down: &[Level],
    mid: &Mid,
    mut h: Tensor,
    emb: &Tensor,
    ctx: &Tensor,
) -> Result<(Vec<Tensor>, Tensor)> {
    let mut skips = vec![h.clone()];
    for level in down {
        for (j, r) in level.resnets.iter().enumerate() {
            h = r.forward(&h, Some(emb))?;
            if let Some(a) = level.attentions.get(j) {
                h = a.forward(&h, ctx)?;
            }
            skips.push(h.clone());
        }
        if let Some(s) = &level.sampler {
            h = s.forward(&h)?;
            skips.push(h.clone());
        }
    }
    let h = mid.0.forward(&h, Some(emb))?;
    let h = mid.1.forward(&h, ctx)?;
    let h = mid.2.forward(&h, Some(emb))?;
    Ok((skips, h))
}

/// A resnet usable by the VAE, which has no time embedding.
pub(crate) struct PlainResnet(ResnetBlock);

impl PlainResnet {
    pub(crate) fn new(
        vb: &Vb,
        c_in: usize,
        c_out: usize,
        groups: usize,
        pad: Padding,
    ) -> Result<PlainResnet> {
        Ok(PlainResnet(ResnetBlock::new(
            vb, c_in, c_out, None, groups, 1e-6, pad,
        )?))
    }

    /// With the group norms' epsilon of its model (the VAE's is 1e-6, others 1e-5).
    pub(crate) fn with_eps(
        vb: &Vb,
        c_in: usize,
        c_out: usize,
        groups: usize,
        eps: f64,
        pad: Padding,
    ) -> Result<PlainResnet> {
        Ok(PlainResnet(ResnetBlock::new(
            vb, c_in, c_out, None, groups, eps, pad,
        )?))
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(x, None)
    }
}
