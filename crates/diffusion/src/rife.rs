//! RIFE frame interpolation (Huang et al., "Real-Time Intermediate Flow Estimation for Video
//! Frame Interpolation"), the 4.x IFNet as RIFE 4.6 ships it: four IFBlocks from coarse (1/8)
//! to fine estimate both frames' flow to the wanted moment and a blend mask; the frames are
//! warped along the flows (bilinear, edges repeated) and blended. Any timestep between the two
//! frames. Weights are RIFE's `flownet` state dict saved as safetensors (names with or without
//! the `module.` prefix); block widths are read from the file, so a tiny file loads like the
//! real one. Matched to the reference IFNet by a fixture.

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::weights::open_safetensors;

/// Frames are padded to a multiple of this (the coarsest block works at 1/8, then halves twice).
pub const MODULO: usize = 32;
/// The blocks' working scales, coarse to fine.
const SCALES: [f64; 4] = [8.0, 4.0, 2.0, 1.0];
const RES_CONVS: usize = 8;

fn leaky(x: &Tensor) -> Result<Tensor> {
    Ok(x.maximum(&(x * 0.2)?)?)
}

struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.conv2d(&self.weight, 1, self.stride, 1, 1)?;
        Ok(y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)?)
    }
}

struct ResConv {
    conv: Conv,
    beta: Tensor,
}

struct Block {
    conv0: [Conv; 2],
    res: Vec<ResConv>,
    /// ConvTranspose2d(c, 24, 4, 2, 1), then PixelShuffle(2).
    last_w: Tensor,
    last_b: Tensor,
}

/// The interpolation network.
pub struct Rife {
    blocks: Vec<Block>,
    widths: Vec<usize>,
    device: Device,
}

impl std::fmt::Debug for Rife {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rife")
            .field("widths", &self.widths)
            .finish_non_exhaustive()
    }
}

/// `(N, C·r², H, W)` to `(N, C, H·r, W·r)`, as `nn.PixelShuffle(r)`.
fn pixel_shuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let c_out = c / (r * r);
    Ok(x.reshape((n, c_out, r, r, h, w))?
        .permute((0, 1, 4, 2, 5, 3))?
        .reshape((n, c_out, h * r, w * r))?)
}

/// The `(out, in)` matrix of PyTorch's bilinear resize by `scale` (align_corners=False, the
/// scale given): output `floor(in·scale)` samples at `(i + 0.5)/scale − 0.5`, clamped at 0.
fn resize_matrix(size: usize, scale: f64) -> (usize, Vec<f32>) {
    let out = (size as f64 * scale).floor() as usize;
    let mut m = vec![0f32; out * size];
    for i in 0..out {
        let src = ((i as f64 + 0.5) / scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(size - 1);
        let step = usize::from(i0 < size - 1);
        let l1 = (src - i0 as f64).clamp(0.0, 1.0) as f32;
        m[i * size + i0] += 1.0 - l1;
        m[i * size + i0 + step] += l1;
    }
    (out, m)
}

/// `F.interpolate(x, scale_factor=scale, mode="bilinear")`.
fn resize(x: &Tensor, scale: f64) -> Result<Tensor> {
    if scale == 1.0 {
        return Ok(x.clone());
    }
    let (_, _, h, w) = x.dims4()?;
    let (ho, ry) = resize_matrix(h, scale);
    let (wo, rx) = resize_matrix(w, scale);
    let ry = Tensor::from_vec(ry, (ho, h), x.device())?;
    let rx = Tensor::from_vec(rx, (wo, w), x.device())?.t()?;
    let y = x.broadcast_matmul(&rx.contiguous()?)?;
    Ok(ry.broadcast_matmul(&y)?)
}

/// Each pixel of `img` `(1, C, H, W)` fetched from where `flow` `(1, 2, H, W)` points (x then y,
/// in pixels), bilinearly, coordinates clamped to the frame: `grid_sample` with border padding
/// and align_corners, as RIFE's `warp` calls it.
fn warp(img: &Tensor, flow: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = img.dims4()?;
    let data: Vec<f32> = img.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let fl: Vec<f32> = flow.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let plane = h * w;
    let mut out = vec![0f32; n * c * plane];
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                let p = y * w + x;
                let fx = fl[(b * 2) * plane + p];
                let fy = fl[(b * 2 + 1) * plane + p];
                let sx = (x as f32 + fx).clamp(0.0, (w - 1) as f32);
                let sy = (y as f32 + fy).clamp(0.0, (h - 1) as f32);
                let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                let (ax, ay) = (sx - x0 as f32, sy - y0 as f32);
                for ch in 0..c {
                    let base = (b * c + ch) * plane;
                    let at = |xx: usize, yy: usize| data[base + yy * w + xx];
                    out[base + p] = at(x0, y0) * (1.0 - ax) * (1.0 - ay)
                        + at(x1, y0) * ax * (1.0 - ay)
                        + at(x0, y1) * (1.0 - ax) * ay
                        + at(x1, y1) * ax * ay;
                }
            }
        }
    }
    Ok(Tensor::from_vec(out, (n, c, h, w), img.device())?.to_dtype(img.dtype())?)
}

impl Block {
    fn forward(&self, x: &Tensor, flow: Option<&Tensor>, scale: f64) -> Result<(Tensor, Tensor)> {
        let mut x = resize(x, 1.0 / scale)?;
        if let Some(f) = flow {
            let f = (resize(f, 1.0 / scale)? / scale)?;
            x = Tensor::cat(&[&x, &f], 1)?;
        }
        let mut feat = leaky(&self.conv0[0].forward(&x)?)?;
        feat = leaky(&self.conv0[1].forward(&feat)?)?;
        for r in &self.res {
            let y = r.conv.forward(&feat)?.broadcast_mul(&r.beta)?;
            feat = leaky(&(y + &feat)?)?;
        }
        let tmp = feat
            .conv_transpose2d(&self.last_w, 1, 0, 2, 1)?
            .broadcast_add(&self.last_b.reshape((1, (), 1, 1))?)?;
        let tmp = resize(&pixel_shuffle(&tmp, 2)?, scale)?;
        let flow = (tmp.narrow(1, 0, 4)? * scale)?;
        let mask = tmp.narrow(1, 4, 1)?;
        Ok((flow, mask))
    }
}

impl Rife {
    /// Reads RIFE 4.x IFNet weights (safetensors) onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Rife> {
        let st = open_safetensors(path)?;
        let prefix = if st.get("module.block0.conv0.0.0.weight").is_ok() {
            "module."
        } else {
            ""
        };
        let get = |name: &str| -> Result<Tensor> {
            let key = format!("{prefix}{name}");
            st.load(&key, device)
                .map_err(|_| Error::MissingTensor {
                    file: path.display().to_string(),
                    name: key,
                    expected: "RIFE 4.x IFNet (flownet, block0…block3)".into(),
                })?
                .to_dtype(DType::F32)
                .map_err(Error::from)
        };
        let mut blocks = Vec::with_capacity(4);
        let mut widths = Vec::with_capacity(4);
        for i in 0..4 {
            let b = format!("block{i}");
            let c0 = get(&format!("{b}.conv0.0.0.weight"))?;
            let c1 = get(&format!("{b}.conv0.1.0.weight"))?;
            let c = c1.dim(0)?;
            let want_in = if i == 0 { 7 } else { 12 };
            if c0.dim(1)? != want_in || c1.dim(1)? != c0.dim(0)? {
                return Err(Error::InvalidRequest(format!(
                    "{}: block{i} takes {} channels; RIFE 4.x's takes {want_in} (this is another RIFE version)",
                    path.display(),
                    c0.dim(1)?
                )));
            }
            let mut res = Vec::with_capacity(RES_CONVS);
            for k in 0..RES_CONVS {
                res.push(ResConv {
                    conv: Conv {
                        weight: get(&format!("{b}.convblock.{k}.conv.weight"))?,
                        bias: get(&format!("{b}.convblock.{k}.conv.bias"))?,
                        stride: 1,
                    },
                    beta: get(&format!("{b}.convblock.{k}.beta"))?,
                });
            }
            blocks.push(Block {
                conv0: [
                    Conv {
                        weight: c0,
                        bias: get(&format!("{b}.conv0.0.0.bias"))?,
                        stride: 2,
                    },
                    Conv {
                        weight: c1,
                        bias: get(&format!("{b}.conv0.1.0.bias"))?,
                        stride: 2,
                    },
                ],
                res,
                last_w: get(&format!("{b}.lastconv.0.weight"))?,
                last_b: get(&format!("{b}.lastconv.0.bias"))?,
            });
            widths.push(c);
        }
        Ok(Rife {
            blocks,
            widths,
            device: device.clone(),
        })
    }

    /// The frame at `t` (0–1) between `img0` and `img1`, each `(1, 3, H, W)` in 0–1, any size
    /// (padded to a multiple of [`MODULO`] with zeros, as RIFE pads, and cropped back).
    pub fn interpolate(&self, img0: &Tensor, img1: &Tensor, t: f32) -> Result<Tensor> {
        let (_, c, h, w) = img0.dims4()?;
        if img1.dims4()? != (1, c, h, w) || c != 3 {
            return Err(Error::InvalidRequest(format!(
                "RIFE interpolates two RGB frames of one size; got {:?} and {:?}",
                img0.dims(),
                img1.dims()
            )));
        }
        if !(0.0..=1.0).contains(&t) {
            return Err(Error::InvalidRequest(format!(
                "timestep {t}: a moment between the frames is 0 to 1"
            )));
        }
        let (ph, pw) = (h.div_ceil(MODULO) * MODULO, w.div_ceil(MODULO) * MODULO);
        let pad = |x: &Tensor| -> Result<Tensor> {
            let x = x.to_dtype(DType::F32)?.clamp(0f32, 1f32)?;
            Ok(x.pad_with_zeros(2, 0, ph - h)?
                .pad_with_zeros(3, 0, pw - w)?)
        };
        let (i0, i1) = (pad(img0)?, pad(img1)?);
        let ts = Tensor::full(t, (1, 1, ph, pw), &self.device)?;
        let mut flow: Option<Tensor> = None;
        let mut mask: Option<Tensor> = None;
        let (mut w0, mut w1) = (i0.clone(), i1.clone());
        for (block, scale) in self.blocks.iter().zip(SCALES) {
            match (&flow, &mask) {
                (Some(f), Some(m)) => {
                    let x = Tensor::cat(&[&w0, &w1, &ts, m], 1)?;
                    let (fd, md) = block.forward(&x, Some(f), scale)?;
                    flow = Some((f + fd)?);
                    mask = Some((m + md)?);
                }
                _ => {
                    let x = Tensor::cat(&[&i0, &i1, &ts], 1)?;
                    let (f, m) = block.forward(&x, None, scale)?;
                    flow = Some(f);
                    mask = Some(m);
                }
            }
            let f = flow
                .as_ref()
                .ok_or_else(|| Error::InvalidRequest("no flow".into()))?;
            w0 = warp(&i0, &f.narrow(1, 0, 2)?)?;
            w1 = warp(&i1, &f.narrow(1, 2, 2)?)?;
        }
        let m = candle_nn::ops::sigmoid(
            mask.as_ref()
                .ok_or_else(|| Error::InvalidRequest("no mask".into()))?,
        )?;
        let out = (w0.broadcast_mul(&m)? + w1.broadcast_mul(&(1.0 - &m)?)?)?;
        Ok(out.narrow(2, 0, h)?.narrow(3, 0, w)?)
    }

    /// [`Rife::interpolate`] on 8-bit RGB frames.
    pub fn interpolate_rgb(&self, a: &crate::Rgb, b: &crate::Rgb, t: f32) -> Result<crate::Rgb> {
        let to = |img: &crate::Rgb| -> Result<Tensor> {
            let (w, h) = (img.width as usize, img.height as usize);
            let v: Vec<f32> = img.data.iter().map(|x| f32::from(*x) / 255.0).collect();
            Ok(Tensor::from_vec(v, (h, w, 3), &self.device)?
                .permute((2, 0, 1))?
                .unsqueeze(0)?
                .contiguous()?)
        };
        if (a.width, a.height) != (b.width, b.height) {
            return Err(Error::InvalidRequest(format!(
                "frames of {}×{} and {}×{}: RIFE interpolates frames of one size",
                a.width, a.height, b.width, b.height
            )));
        }
        let out = self.interpolate(&to(a)?, &to(b)?, t)?;
        let data: Vec<u8> = (out.squeeze(0)?.permute((1, 2, 0))? * 255.0)?
            .round()?
            .clamp(0f32, 255f32)?
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|v| v as u8)
            .collect();
        Ok(crate::Rgb {
            width: a.width,
            height: a.height,
            data,
        })
    }

    /// The block widths read from the file (192, 128, 96, 64 for RIFE 4.6).
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resize_matrix_is_pytorchs_bilinear() {
        // Down by 2: each output averages its two inputs.
        let (n, m) = resize_matrix(4, 0.5);
        assert_eq!(n, 2);
        assert_eq!(m, vec![0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
        // Up by 2: (i + 0.5) / 2 − 0.5, clamped at 0 and the last input.
        let (n, m) = resize_matrix(2, 2.0);
        assert_eq!(n, 4);
        assert_eq!(m, vec![1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0]);
        let (n, m) = resize_matrix(3, 1.0);
        assert_eq!(
            (n, m),
            (3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
        );
    }

    #[test]
    fn pixel_shuffle_puts_channel_groups_into_blocks() {
        let x = Tensor::arange(0f32, 8.0, &Device::Cpu)
            .expect("t")
            .reshape((1, 8, 1, 1))
            .expect("r");
        let y = pixel_shuffle(&x, 2).expect("shuffle");
        assert_eq!(y.dims(), &[1, 2, 2, 2]);
        let v: Vec<f32> = y.flatten_all().expect("f").to_vec1().expect("v");
        assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    }
}

#[cfg(test)]
mod parity {
    use super::*;

    /// The fixture's IFNet (tiny widths, RIFE 4.6's layout) against the reference's output at
    /// three moments (`scripts/fixtures rife`).
    #[test]
    fn rife_matches_the_reference_ifnet_at_any_timestep() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/rife/tiny.safetensors");
        let fx = candle_core::safetensors::load(&file, &Device::Cpu).expect("fixture");
        let net = Rife::load(&file, &Device::Cpu).expect("load");
        assert_eq!(net.widths(), &[16, 16, 8, 8]);
        for (t, key) in [(0.3, "out.t30"), (0.5, "out.t50"), (0.75, "out.t75")] {
            let ours = net
                .interpolate(&fx["in.img0"], &fx["in.img1"], t)
                .expect("interpolate");
            let err = crate::parity::max_abs(&(ours - &fx[key]).expect("diff"));
            assert!(err < 1e-4, "t = {t}: max error {err}");
        }
        // Another size is padded and cropped back.
        let crop = |x: &Tensor| {
            x.narrow(2, 0, 50)
                .and_then(|x| x.narrow(3, 0, 70))
                .expect("crop")
        };
        let out = net
            .interpolate(&crop(&fx["in.img0"]), &crop(&fx["in.img1"]), 0.5)
            .expect("odd size");
        assert_eq!(out.dims(), &[1, 3, 50, 70]);
        let e = net
            .interpolate(&fx["in.img0"], &fx["in.img1"], 1.5)
            .expect_err("timestep")
            .to_string();
        assert!(e.contains("0 to 1"), "{e}");
    }
}
