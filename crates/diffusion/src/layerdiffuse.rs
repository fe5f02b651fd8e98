//! LayerDiffuse's latent transparency (Zhang & Agrawala, "Transparent Image Layer Diffusion
//! using Latent Transparency"): the transparent VAE decoder (`UNet1024`: the ordinary VAE's
//! RGB and the latent in, alpha and straight colour out; one pass, or the median of the eight
//! flips and rotations), and the offset encoder for transparent img2img. Layouts are the
//! reference's diffusers keys; the channel widths are read from the file, so a tiny file in the
//! real layout loads like the real one. Matched to the reference code by a fixture.

use std::path::Path;
use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::keymap::KeyMap;
use crate::nn::{Conv2d, GroupNorm, Padding, silu};
use crate::unet::{PlainResnet, SelfAttention};
use crate::weights::{Vb, Weights, open_safetensors};

/// Down blocks 0–3 are plain, 4–6 have attention; up blocks mirror them.
const LEVELS: usize = 7;
const ATTN_FROM: usize = 4;
const GROUPS: usize = 4;
const EPS: f64 = 1e-5;
const HEAD_DIM: usize = 8;
const LAYERS: usize = 2;

struct Down {
    resnets: Vec<PlainResnet>,
    attns: Vec<SelfAttention>,
    down: Option<Conv2d>,
}

struct Up {
    resnets: Vec<PlainResnet>,
    attns: Vec<SelfAttention>,
    up: Option<Conv2d>,
}

/// The transparent VAE decoder.
pub struct TransparentDecoder {
    channels: Vec<usize>,
    conv_in: Conv2d,
    latent_conv_in: Conv2d,
    downs: Vec<Down>,
    mid: (PlainResnet, SelfAttention, PlainResnet),
    ups: Vec<Up>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl std::fmt::Debug for TransparentDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransparentDecoder")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// The tensors of one safetensors file, under `prefix` (`decoder.`) or at its root.
fn tensors_at(
    path: &Path,
    prefix: &str,
    expected: &str,
    dtype: DType,
    device: &Device,
) -> Result<Vb> {
    let w = Arc::new(Weights::from_files(
        &[path.to_owned()],
        KeyMap::Diffusers,
        expected,
        dtype,
        device,
    )?);
    let root = w.root();
    Ok(if prefix.is_empty() {
        root
    } else {
        root.pp(prefix.trim_end_matches('.'))
    })
}

fn attn(vb: &Vb, c: usize) -> Result<SelfAttention> {
    SelfAttention::with_heads(vb, c, GROUPS, EPS, c / HEAD_DIM)
}

/// The widths of the seven levels, read from a decoder file's shapes: `conv_in` gives the first,
/// each down block's first resnet its own.
fn channels_of(path: &Path, prefix: &str) -> Result<Vec<usize>> {
    let st = open_safetensors(path)?;
    let shape = |name: &str| -> Result<Vec<usize>> {
        let key = format!("{prefix}{name}");
        st.get(&key)
            .map(|t| t.shape().to_vec())
            .map_err(|_| Error::MissingTensor {
                file: path.display().to_string(),
                name: key,
                expected: "LayerDiffuse transparent VAE decoder (layer_*_vae_transparent_decoder)"
                    .into(),
            })
    };
    let mut c = Vec::with_capacity(LEVELS);
    for i in 0..LEVELS {
        let s = shape(&format!("down_blocks.{i}.resnets.0.conv1.weight"))?;
        c.push(s[0]);
    }
    let lat = shape("latent_conv_in.weight")?;
    if lat.len() != 4 || lat[1] != 4 || lat[0] != c[2] {
        return Err(Error::InvalidRequest(format!(
            "{}: latent_conv_in is {lat:?}; a LayerDiffuse decoder injects the 4-channel latent at level 2 ({} channels)",
            path.display(),
            c[2]
        )));
    }
    Ok(c)
}

impl TransparentDecoder {
    /// Reads a decoder from `path`, its tensors under `prefix` (empty for the real files; a
    /// file whose tensors all sit under `decoder.`, as the test fixture's do, is read there).
    pub fn load(
        path: &Path,
        prefix: &str,
        dtype: DType,
        device: &Device,
    ) -> Result<TransparentDecoder> {
        crate::weights::refuse_pickle(path)?;
        let prefix = if prefix.is_empty()
            && open_safetensors(path)?.get("conv_in.weight").is_err()
            && open_safetensors(path)?
                .get("decoder.conv_in.weight")
                .is_ok()
        {
            "decoder."
        } else {
            prefix
        };
        let channels = channels_of(path, prefix)?;
        let vb = tensors_at(
            path,
            prefix,
            "LayerDiffuse transparent VAE decoder",
            dtype,
            device,
        )?;
        TransparentDecoder::new(&vb, channels)
    }

    fn new(vb: &Vb, c: Vec<usize>) -> Result<TransparentDecoder> {
        let p = Padding::ZEROS;
        let conv_in = Conv2d::new(&vb.pp("conv_in"), 3, c[0], 3, 1, 1, p)?;
        let latent_conv_in = Conv2d::new(&vb.pp("latent_conv_in"), 4, c[2], 1, 1, 0, p)?;
        let mut downs = Vec::with_capacity(LEVELS);
        for i in 0..LEVELS {
            let bv = vb.pp(format!("down_blocks.{i}"));
            let (cin, cout) = (if i == 0 { c[0] } else { c[i - 1] }, c[i]);
            let mut resnets = Vec::new();
            let mut attns = Vec::new();
            for j in 0..LAYERS {
                let r_in = if j == 0 { cin } else { cout };
                resnets.push(PlainResnet::with_eps(
                    &bv.pp(format!("resnets.{j}")),
                    r_in,
                    cout,
                    GROUPS,
                    EPS,
                    p,
                )?);
                if i >= ATTN_FROM {
                    attns.push(attn(&bv.pp(format!("attentions.{j}")), cout)?);
                }
            }
            let down = if i + 1 < LEVELS {
                Some(Conv2d::new(
                    &bv.pp("downsamplers.0.conv"),
                    cout,
                    cout,
                    3,
                    2,
                    1,
                    p,
                )?)
            } else {
                None
            };
            downs.push(Down {
                resnets,
                attns,
                down,
            });
        }
        let top = c[LEVELS - 1];
        let mv = vb.pp("mid_block");
        let mid = (
            PlainResnet::with_eps(&mv.pp("resnets.0"), top, top, GROUPS, EPS, p)?,
            attn(&mv.pp("attentions.0"), top)?,
            PlainResnet::with_eps(&mv.pp("resnets.1"), top, top, GROUPS, EPS, p)?,
        );
        let rev: Vec<usize> = c.iter().rev().copied().collect();
        let mut ups = Vec::with_capacity(LEVELS);
        let mut prev = rev[0];
        for i in 0..LEVELS {
            let bv = vb.pp(format!("up_blocks.{i}"));
            let out = rev[i];
            let skip_in = rev[(i + 1).min(LEVELS - 1)];
            let mut resnets = Vec::new();
            let mut attns = Vec::new();
            for j in 0..=LAYERS {
                let res_skip = if j == LAYERS { skip_in } else { out };
                let r_in = if j == 0 { prev } else { out } + res_skip;
                resnets.push(PlainResnet::with_eps(
                    &bv.pp(format!("resnets.{j}")),
                    r_in,
                    out,
                    GROUPS,
                    EPS,
                    p,
                )?);
                // Up blocks 0–2 mirror the attention levels.
                if i < LEVELS - ATTN_FROM {
                    attns.push(attn(&bv.pp(format!("attentions.{j}")), out)?);
                }
            }
            let up = if i + 1 < LEVELS {
                Some(Conv2d::new(
                    &bv.pp("upsamplers.0.conv"),
                    out,
                    out,
                    3,
                    1,
                    1,
                    p,
                )?)
            } else {
                None
            };
            ups.push(Up { resnets, attns, up });
            prev = out;
        }
        Ok(TransparentDecoder {
            norm_out: GroupNorm::new(&vb.pp("conv_norm_out"), GROUPS, c[0], EPS)?,
            conv_out: Conv2d::new(&vb.pp("conv_out"), c[0], 4, 3, 1, 1, p)?,
            channels: c,
            conv_in,
            latent_conv_in,
            downs,
            mid,
            ups,
        })
    }

    fn conv_in_device(&self) -> Device {
        self.conv_in.device()
    }

    /// One pass: `pixel` is the ordinary VAE's decoded RGB in [0, 1] `(b, 3, h, w)`, `latent`
    /// the unscaled latent `(b, 4, h/8, w/8)`; sides multiples of 64. Returns the raw
    /// `(b, 4, h, w)`: alpha, then straight RGB.
    pub fn forward(&self, pixel: &Tensor, latent: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = pixel.dims4()?;
        if h % 64 != 0 || w % 64 != 0 {
            return Err(Error::InvalidRequest(format!(
                "the transparent decoder works on sides that are multiples of 64; this image is {w}×{h}"
            )));
        }
        let lat = self.latent_conv_in.forward(latent)?;
        let mut x = self.conv_in.forward(pixel)?;
        let mut skips = vec![x.clone()];
        for (i, d) in self.downs.iter().enumerate() {
            if i == 3 {
                x = (x + &lat)?;
            }
            for (j, r) in d.resnets.iter().enumerate() {
                x = r.forward(&x)?;
                if let Some(a) = d.attns.get(j) {
                    x = a.forward(&x)?;
                }
                skips.push(x.clone());
            }
            if let Some(conv) = &d.down {
                x = conv.forward(&x)?;
                skips.push(x.clone());
            }
        }
        x = self.mid.0.forward(&x)?;
        x = self.mid.1.forward(&x)?;
        x = self.mid.2.forward(&x)?;
        for u in &self.ups {
            for (j, r) in u.resnets.iter().enumerate() {
                let skip = skips.pop().ok_or_else(|| {
                    Error::InvalidRequest("the decoder ran out of skip connections".into())
                })?;
                x = r.forward(&Tensor::cat(&[&x, &skip], 1)?)?;
                if let Some(a) = u.attns.get(j) {
                    x = a.forward(&x)?;
                }
            }
            if let Some(conv) = &u.up {
                let (_, _, hh, ww) = x.dims4()?;
                x = conv.forward(&x.upsample_nearest2d(hh * 2, ww * 2)?)?;
            }
        }
        let x = silu(&self.norm_out.forward(&x)?)?;
        self.conv_out.forward(&x)
    }

    /// The reference's quality mode: the median of eight passes over the image flipped and
    /// rotated (each clamped to [0, 1] and turned back), the lower of the middle two as
    /// `torch.median` takes it, clamped again.
    pub fn forward_augmented(&self, pixel: &Tensor, latent: &Tensor) -> Result<Tensor> {
        let mut passes = Vec::with_capacity(8);
        for flip in [false, true] {
            for k in 0..4 {
                let (p, l) = if flip {
                    (flip_w(pixel)?, flip_w(latent)?)
                } else {
                    (pixel.clone(), latent.clone())
                };
                let y = self
                    .forward(&rot90(&p, k)?, &rot90(&l, k)?)?
                    .clamp(0f32, 1f32)?;
                let y = rot90(&y, (4 - k) % 4)?;
                passes.push(if flip { flip_w(&y)? } else { y });
            }
        }
        let stacked = Tensor::stack(&passes, D::Minus1)?.contiguous()?;
        let sorted = stacked.sort_last_dim(true)?.0;
        Ok(sorted
            .narrow(D::Minus1, 3, 1)?
            .squeeze(D::Minus1)?
            .clamp(0f32, 1f32)?)
    }
}

fn reverse(x: &Tensor, dim: usize) -> Result<Tensor> {
    let n = x.dim(dim)?;
    let idx: Vec<u32> = (0..n as u32).rev().collect();
    let idx = Tensor::from_vec(idx, n, x.device())?;
    Ok(x.index_select(&idx, dim)?)
}

fn flip_w(x: &Tensor) -> Result<Tensor> {
    reverse(x, 3)
}

/// `torch.rot90(x, k, dims=(2, 3))`.
fn rot90(x: &Tensor, k: usize) -> Result<Tensor> {
    Ok(match k % 4 {
        0 => x.clone(),
        1 => reverse(x, 3)?.transpose(2, 3)?.contiguous()?,
        2 => reverse(&reverse(x, 2)?, 3)?,
        _ => reverse(x, 2)?.transpose(2, 3)?.contiguous()?,
    })
}

/// Straight-alpha RGBA8 of a generation: its ordinary decode (`image`) and its latent through
/// the transparent decoder, clamped to [0, 1] and truncated to bytes as the reference does.
pub fn transparent_rgba(
    image: &crate::pipeline::Rgb,
    latent: &Tensor,
    scaling_factor: f64,
    decoder: &TransparentDecoder,
    augmented: bool,
) -> Result<Vec<u8>> {
    let (w, h) = (image.width as usize, image.height as usize);
    let device = decoder.conv_in_device();
    let pixel = (Tensor::from_slice(&image.data, (h, w, 3), &Device::Cpu)?
        .permute((2, 0, 1))?
        .to_dtype(DType::F32)?
        .unsqueeze(0)?
        / 255.0)?
        .to_device(&device)?;
    let latent = (latent.to_dtype(DType::F32)?.to_device(&device)? / scaling_factor)?;
    let y = if augmented {
        decoder.forward_augmented(&pixel, &latent)?
    } else {
        decoder.forward(&pixel, &latent)?.clamp(0f32, 1f32)?
    };
    let y = (y.squeeze(0)?.to_device(&Device::Cpu)? * 255.0)?
        .floor()?
        .permute((1, 2, 0))?
        .contiguous()?;
    let v: Vec<f32> = y.flatten_all()?.to_vec1()?;
    // Channels come alpha first; PNG wants R, G, B, A.
    Ok(v.chunks_exact(4)
        .flat_map(|p| [p[1] as u8, p[2] as u8, p[3] as u8, p[0] as u8])
        .collect())
}

/// The offset encoder: RGBA (alpha first, then colour padded under the clear) to the offset
/// that replaces the noise of the ordinary VAE's posterior sample.
pub struct OffsetEncoder {
    convs: Vec<Conv2d>,
}

impl std::fmt::Debug for OffsetEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetEncoder").finish_non_exhaustive()
    }
}

impl OffsetEncoder {
    /// The nine convolutions and their strides, as the reference builds them.
    const PLAN: [(usize, usize, usize); 9] = [
        (4, 32, 1),
        (32, 32, 1),
        (32, 64, 2),
        (64, 64, 1),
        (64, 128, 2),
        (128, 128, 1),
        (128, 256, 2),
        (256, 256, 1),
        (256, 4, 1),
    ];

    pub fn load(path: &Path, prefix: &str, dtype: DType, device: &Device) -> Result<OffsetEncoder> {
        crate::weights::refuse_pickle(path)?;
        let vb = tensors_at(
            path,
            prefix,
            "LayerDiffuse transparent VAE encoder",
            dtype,
            device,
        )?;
        let convs = OffsetEncoder::PLAN
            .iter()
            .enumerate()
            .map(|(i, (cin, cout, stride))| {
                Conv2d::new(
                    &vb.pp(format!("blocks.{}", 2 * i)),
                    *cin,
                    *cout,
                    3,
                    *stride,
                    1,
                    Padding::ZEROS,
                )
            })
            .collect::<Result<_>>()?;
        Ok(OffsetEncoder { convs })
    }

    /// `(b, 4, h, w)` in [0, 1] → `(b, 4, h/8, w/8)`.
    pub fn forward(&self, rgba: &Tensor) -> Result<Tensor> {
        let mut x = rgba.clone();
        for (i, c) in self.convs.iter().enumerate() {
            x = c.forward(&x)?;
            if i + 1 < self.convs.len() {
                x = silu(&x)?;
            }
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/layerdiffuse/tiny.safetensors")
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .expect("sub")
            .abs()
            .expect("abs")
            .flatten_all()
            .expect("flat")
            .max(0)
            .expect("max")
            .to_scalar::<f32>()
            .expect("scalar")
    }

    /// The fixture is LayerDiffuse's own code (`scripts/fixtures layerdiffuse`) run on a tiny
    /// decoder in the real key layout: one pass and the 8-way median must match within 1e-4.
    #[test]
    fn the_transparent_decoder_matches_layerdiffuse_in_one_pass_and_augmented() {
        let path = fixture();
        let fx = candle_core::safetensors::load(&path, &Device::Cpu).expect("fixture");
        let dec =
            TransparentDecoder::load(&path, "decoder.", DType::F32, &Device::Cpu).expect("decoder");
        assert_eq!(dec.channels, vec![4, 4, 8, 12, 16, 24, 24]);
        let single = dec
            .forward(&fx["in.pixel"], &fx["in.latent"])
            .expect("forward");
        let d = max_diff(&single, &fx["out.single"]);
        assert!(d < 1e-4, "one pass differs by {d}");
        let aug = dec
            .forward_augmented(&fx["in.pixel"], &fx["in.latent"])
            .expect("augmented");
        let d = max_diff(&aug, &fx["out.augmented"]);
        assert!(d < 1e-4, "the 8-way median differs by {d}");
    }

    #[test]
    fn the_offset_encoder_matches_layerdiffuse() {
        let path = fixture();
        let fx = candle_core::safetensors::load(&path, &Device::Cpu).expect("fixture");
        let enc =
            OffsetEncoder::load(&path, "encoder.", DType::F32, &Device::Cpu).expect("encoder");
        let y = enc.forward(&fx["in.rgba"]).expect("forward");
        let d = max_diff(&y, &fx["out.offset"]);
        assert!(d < 1e-4, "the offset differs by {d}");
    }

    #[test]
    fn a_decoder_refuses_sides_off_the_64_grid_and_files_that_are_not_decoders() {
        let path = fixture();
        let dec =
            TransparentDecoder::load(&path, "decoder.", DType::F32, &Device::Cpu).expect("decoder");
        let px = Tensor::zeros((1, 3, 96, 64), DType::F32, &Device::Cpu).expect("px");
        let lat = Tensor::zeros((1, 4, 12, 8), DType::F32, &Device::Cpu).expect("lat");
        let e = dec.forward(&px, &lat).expect_err("96").to_string();
        assert!(e.contains("multiples of 64") && e.contains("64×96"), "{e}");
        // The encoder's tensors are no decoder.
        let e = TransparentDecoder::load(&path, "encoder.", DType::F32, &Device::Cpu)
            .expect_err("not a decoder")
            .to_string();
        assert!(e.contains("transparent VAE decoder"), "{e}");
    }
}
