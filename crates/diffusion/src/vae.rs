//! AutoencoderKL (the SD VAE): images ↔ latents, whole or in overlapping tiles blended at the
//! seams so large images decode in bounded memory.

use candle_core::{DType, Device, Tensor};

use crate::config::VaeConfig;
use crate::error::Result;
use crate::nn::{Conv2d, GroupNorm, Padding, silu};
use crate::unet::{PlainResnet, SelfAttention};
use crate::weights::Vb;

struct Mid {
    r1: PlainResnet,
    attn: SelfAttention,
    r2: PlainResnet,
}

impl Mid {
    fn new(vb: &Vb, c: usize, g: usize, pad: Padding) -> Result<Mid> {
        Ok(Mid {
            r1: PlainResnet::new(&vb.pp("resnets.0"), c, c, g, pad)?,
            attn: SelfAttention::new(&vb.pp("attentions.0"), c, g)?,
            r2: PlainResnet::new(&vb.pp("resnets.1"), c, c, g, pad)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.r1.forward(x)?;
        let h = self.attn.forward(&h)?;
        self.r2.forward(&h)
    }
}

struct Block {
    resnets: Vec<PlainResnet>,
    sampler: Option<Conv2d>,
}

pub struct Vae {
    cfg: VaeConfig,
    pad: Padding,
    enc_in: Conv2d,
    enc_down: Vec<Block>,
    enc_mid: Mid,
    enc_norm: GroupNorm,
    enc_out: Conv2d,
    quant: Conv2d,
    post_quant: Conv2d,
    dec_in: Conv2d,
    dec_mid: Mid,
    dec_up: Vec<Block>,
    dec_norm: GroupNorm,
    dec_out: Conv2d,
}

impl std::fmt::Debug for Vae {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vae")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// How [`Vae::decode`] and [`Vae::encode`] split their work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tiling {
    /// Tile edge in latent cells (×8 in pixels).
    pub tile: usize,
    /// Overlap between neighbouring tiles in latent cells, blended linearly.
    pub overlap: usize,
}

impl Tiling {
    pub const DEFAULT: Tiling = Tiling {
        tile: 32,
        overlap: 8,
    };
}

impl Vae {
    pub fn new(vb: &Vb, cfg: &VaeConfig, pad: Padding) -> Result<Vae> {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let g = cfg.norm_num_groups;
        let l = cfg.latent_channels;
        let e = vb.pp("encoder");
        let mut enc_down = Vec::with_capacity(n);
        for i in 0..n {
            let b = e.pp("down_blocks").pp(i);
            let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
            let mut resnets = Vec::new();
            for j in 0..cfg.layers_per_block {
                let cin = if j == 0 { c_in } else { ch[i] };
                resnets.push(PlainResnet::new(
                    &b.pp("resnets").pp(j),
                    cin,
                    ch[i],
                    g,
                    pad,
                )?);
            }
            let sampler = if i + 1 < n {
                Some(Conv2d::new(
                    &b.pp("downsamplers.0.conv"),
                    ch[i],
                    ch[i],
                    3,
                    2,
                    0,
                    pad,
                )?)
            } else {
                None
            };
            enc_down.push(Block { resnets, sampler });
        }
        let d = vb.pp("decoder");
        let mut dec_up = Vec::with_capacity(n);
        for i in 0..n {
            let level = n - 1 - i;
            let b = d.pp("up_blocks").pp(i);
            let prev = if i == 0 { ch[n - 1] } else { ch[level + 1] };
            let mut resnets = Vec::new();
            for j in 0..=cfg.layers_per_block {
                let cin = if j == 0 { prev } else { ch[level] };
                resnets.push(PlainResnet::new(
                    &b.pp("resnets").pp(j),
                    cin,
                    ch[level],
                    g,
                    pad,
                )?);
            }
            let sampler = if i + 1 < n {
                Some(Conv2d::new(
                    &b.pp("upsamplers.0.conv"),
                    ch[level],
                    ch[level],
                    3,
                    1,
                    1,
                    pad,
                )?)
            } else {
                None
            };
            dec_up.push(Block { resnets, sampler });
        }
        Ok(Vae {
            cfg: cfg.clone(),
            pad,
            enc_in: Conv2d::new(&e.pp("conv_in"), cfg.in_channels, ch[0], 3, 1, 1, pad)?,
            enc_down,
            enc_mid: Mid::new(&e.pp("mid_block"), ch[n - 1], g, pad)?,
            enc_norm: GroupNorm::new(&e.pp("conv_norm_out"), g, ch[n - 1], 1e-6)?,
            enc_out: Conv2d::new(&e.pp("conv_out"), ch[n - 1], 2 * l, 3, 1, 1, pad)?,
            quant: Conv2d::new(&vb.pp("quant_conv"), 2 * l, 2 * l, 1, 1, 0, pad)?,
            post_quant: Conv2d::new(&vb.pp("post_quant_conv"), l, l, 1, 1, 0, pad)?,
            dec_in: Conv2d::new(&d.pp("conv_in"), l, ch[n - 1], 3, 1, 1, pad)?,
            dec_mid: Mid::new(&d.pp("mid_block"), ch[n - 1], g, pad)?,
            dec_up,
            dec_norm: GroupNorm::new(&d.pp("conv_norm_out"), g, ch[0], 1e-6)?,
            dec_out: Conv2d::new(&d.pp("conv_out"), ch[0], cfg.out_channels, 3, 1, 1, pad)?,
        })
    }

    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// Scaled latents `(b, 4, h/8, w/8)` → images in [-1, 1] `(b, 3, h, w)`.
    pub fn decode(&self, latents: &Tensor, tiling: Option<Tiling>) -> Result<Tensor> {
        let z = (latents / self.cfg.scaling_factor)?;
        match tiling {
            Some(t) if !self.pad.is_tiling() => {
                tiled(&z, t, self.cfg.factor() as f64, |x| self.decode_whole(x))
            }
            _ => self.decode_whole(&z),
        }
    }

    /// Images in [-1, 1] → scaled latents, using the posterior mean so an encode is
    /// deterministic (a recipe re-run gives the same bytes).
    pub fn encode(&self, images: &Tensor, tiling: Option<Tiling>) -> Result<Tensor> {
        let f = self.cfg.factor();
        let z = match tiling {
            Some(t) if !self.pad.is_tiling() => {
                let pixel = Tiling {
                    tile: t.tile * f,
                    overlap: t.overlap * f,
                };
                tiled(images, pixel, 1.0 / f as f64, |x| self.encode_whole(x))?
            }
            _ => self.encode_whole(images)?,
        };
        Ok((z * self.cfg.scaling_factor)?)
    }

    fn encode_whole(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.enc_in.forward(x)?;
        for b in &self.enc_down {
            for r in &b.resnets {
                h = r.forward(&h)?;
            }
            if let Some(s) = &b.sampler {
                h = s.forward_padded(&h, 0, 1, 0, 1)?;
            }
        }
        h = self.enc_mid.forward(&h)?;
        h = self.enc_out.forward(&silu(&self.enc_norm.forward(&h)?)?)?;
        let moments = self.quant.forward(&h)?;
        Ok(moments.narrow(1, 0, self.cfg.latent_channels)?)
    }

    fn decode_whole(&self, z: &Tensor) -> Result<Tensor> {
        let mut h = self.dec_in.forward(&self.post_quant.forward(z)?)?;
        h = self.dec_mid.forward(&h)?;
        for b in &self.dec_up {
            for r in &b.resnets {
                h = r.forward(&h)?;
            }
            if let Some(s) = &b.sampler {
                let (hh, ww) = (h.dim(2)?, h.dim(3)?);
                h = s.forward(&h.upsample_nearest2d(hh * 2, ww * 2)?)?;
            }
        }
        self.dec_out.forward(&silu(&self.dec_norm.forward(&h)?)?)
    }
}

/// Tile starts covering `len` with tiles of `tile` overlapping by `overlap`.
fn starts(len: usize, tile: usize, overlap: usize) -> Vec<usize> {
    if len <= tile {
        return vec![0];
    }
    let stride = tile.saturating_sub(overlap).max(1);
    let mut v: Vec<usize> = (0..)
        .map(|i| i * stride)
        .take_while(|&s| s + tile < len)
        .collect();
    v.push(len - tile);
    v.dedup();
    v
}

/// A weight that rises linearly over `ramp` cells at each inner edge of a tile, so overlapping
/// tiles fade into each other instead of meeting at a hard seam.
fn ramp(len: usize, ramp: usize, fade_start: bool, fade_end: bool) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let mut w = 1.0f32;
            if fade_start && ramp > 0 {
                w = w.min((i as f32 + 0.5) / ramp as f32);
            }
            if fade_end && ramp > 0 {
                w = w.min((len - i) as f32 / ramp as f32);
            }
            w.clamp(1e-3, 1.0)
        })
        .collect()
}

/// Runs `f` over overlapping tiles of `x` (NCHW) and blends the outputs, which are `scale`
/// times the tile's size.
fn tiled(
    x: &Tensor,
    t: Tiling,
    scale: f64,
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (b, _, h, w) = x.dims4()?;
    if h <= t.tile && w <= t.tile {
        return f(x);
    }
    let sc = |v: usize| ((v as f64) * scale).round() as usize;
    let ys = starts(h, t.tile, t.overlap);
    let xs = starts(w, t.tile, t.overlap);
    let mut acc: Option<Tensor> = None;
    let mut weight: Option<Tensor> = None;
    let dev: Device = x.device().clone();
    for &y in &ys {
        for &x0 in &xs {
            let th = t.tile.min(h);
            let tw = t.tile.min(w);
            let tile = x.narrow(2, y, th)?.narrow(3, x0, tw)?;
            let out = f(&tile)?.to_dtype(DType::F32)?;
            let (oh, ow) = (out.dim(2)?, out.dim(3)?);
            let wy = ramp(oh, sc(t.overlap), y > 0, y + th < h);
            let wx = ramp(ow, sc(t.overlap), x0 > 0, x0 + tw < w);
            let wmap = Tensor::from_vec(wy, (oh, 1), &dev)?.broadcast_mul(&Tensor::from_vec(
                wx,
                (1, ow),
                &dev,
            )?)?;
            let (fy, fx) = (sc(y), sc(x0));
            let (full_h, full_w) = (sc(h), sc(w));
            let place = |t: &Tensor| -> Result<Tensor> {
                let t = t.pad_with_zeros(2, fy, full_h - fy - oh)?;
                Ok(t.pad_with_zeros(3, fx, full_w - fx - ow)?)
            };
            let weighted = out.broadcast_mul(&wmap.reshape((1, 1, oh, ow))?)?;
            let wfull = place(&wmap.reshape((1, 1, oh, ow))?)?;
            let ofull = place(&weighted)?;
            acc = Some(match acc {
                Some(a) => (a + ofull)?,
                None => ofull,
            });
            weight = Some(match weight {
                Some(a) => (a + wfull)?,
                None => wfull,
            });
        }
    }
    match (acc, weight) {
        (Some(a), Some(wt)) => {
            Ok(a.broadcast_div(&wt)?
                .to_dtype(x.dtype())?
                .reshape((b, (), sc(h), sc(w)))?)
        }
        _ => f(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_whole_length() {
        assert_eq!(starts(32, 32, 8), vec![0]);
        assert_eq!(starts(64, 32, 8), vec![0, 24, 32]);
        assert_eq!(starts(100, 32, 8), vec![0, 24, 48, 68]);
    }

    #[test]
    fn tiled_identity_is_exact() {
        let x = Tensor::randn(0f32, 1.0, (1, 3, 50, 70), &Device::Cpu).expect("x");
        let y = tiled(
            &x,
            Tiling {
                tile: 16,
                overlap: 4,
            },
            1.0,
            |t| Ok(t.clone()),
        )
        .expect("tiled");
        let d = (x - y)
            .expect("d")
            .abs()
            .expect("a")
            .max_all()
            .expect("m")
            .to_scalar::<f32>()
            .expect("s");
        assert!(d < 1e-5, "{d}");
    }
}
