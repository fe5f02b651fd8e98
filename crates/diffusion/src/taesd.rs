//! TAESD and TAESDXL's decoder (madebyollin's tiny autoencoders, MIT; diffusers'
//! `AutoencoderTiny`): plain 3×3 convolutions and ReLUs, no normalisation or attention, so a
//! 512² image decodes in a small fraction of the full VAE's time — for drafts, long batches and
//! a live preview at every step. It reads the UNet's latents as they are (its `scaling_factor`
//! is 1) and gives images in [-1, 1] like [`crate::vae::Vae::decode`].
//!
//! Loads a diffusers `AutoencoderTiny` folder (`config.json` and
//! `diffusion_pytorch_model.safetensors`, as `madebyollin/taesd` and `madebyollin/taesdxl`
//! ship) or that weight file alone (the released shape is assumed). Matched to diffusers on a
//! tiny random config by `parity_models` (`tests/fixtures/parity/taesd`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::keymap::KeyMap;
use crate::nn::{Conv2d, Padding, upsample_nearest};
use crate::weights::{Vb, Weights};

/// The fields of diffusers' `AutoencoderTiny` config the decoder needs; the defaults are the
/// released TAESD's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TinyConfig {
    #[serde(default = "channels")]
    pub decoder_block_out_channels: Vec<usize>,
    #[serde(default = "blocks")]
    pub num_decoder_blocks: Vec<usize>,
    #[serde(default = "four")]
    pub latent_channels: usize,
    #[serde(default = "three")]
    pub out_channels: usize,
    #[serde(default = "two")]
    pub upsampling_scaling_factor: usize,
    #[serde(default = "relu")]
    pub act_fn: String,
    #[serde(default = "nearest")]
    pub upsample_fn: String,
    #[serde(default = "one")]
    pub scaling_factor: f64,
    #[serde(default)]
    pub shift_factor: f64,
}

fn channels() -> Vec<usize> {
    vec![64; 4]
}
fn blocks() -> Vec<usize> {
    vec![3, 3, 3, 1]
}
fn four() -> usize {
    4
}
fn three() -> usize {
    3
}
fn two() -> usize {
    2
}
fn relu() -> String {
    "relu".into()
}
fn nearest() -> String {
    "nearest".into()
}
fn one() -> f64 {
    1.0
}

impl Default for TinyConfig {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

/// `AutoencoderTinyBlock`: three 3×3 convolutions with ReLUs between, added to the input, ReLU.
struct Block {
    convs: [Conv2d; 3],
}

impl Block {
    fn new(vb: &Vb, c: usize) -> Result<Block> {
        let conv = |i: usize| Conv2d::new(&vb.pp("conv").pp(i), c, c, 3, 1, 1, Padding::ZEROS);
        Ok(Block {
            convs: [conv(0)?, conv(2)?, conv(4)?],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.convs[0].forward(x)?.relu()?;
        let h = self.convs[1].forward(&h)?.relu()?;
        let h = self.convs[2].forward(&h)?;
        Ok((h + x)?.relu()?)
    }
}

enum Layer {
    Conv { conv: Conv2d, relu: bool },
    Block(Block),
    Upsample(usize),
}

/// The tiny decoder: latents → images in [-1, 1].
pub struct TinyDecoder {
    layers: Vec<Layer>,
    pub config: TinyConfig,
    /// Where it was loaded from (recipes name it).
    pub path: PathBuf,
}

/// Two decoders are the same when they are one loaded decoder (requests compare by identity).
impl PartialEq for TinyDecoder {
    fn eq(&self, other: &TinyDecoder) -> bool {
        std::ptr::eq(self, other)
    }
}

impl std::fmt::Debug for TinyDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TinyDecoder")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const WEIGHTS: &str = "diffusion_pytorch_model.safetensors";

/// The folder a model may carry its own tiny autoencoder in.
pub const FOLDER: &str = "taesd";

impl TinyDecoder {
    /// A diffusers `AutoencoderTiny` folder, or its weight file.
    pub fn load(path: &Path, dtype: DType, device: &Device) -> Result<TinyDecoder> {
        let (file, config) = if path.is_dir() {
            let cfg_path = path.join("config.json");
            let config: TinyConfig = if cfg_path.is_file() {
                crate::config::read_json(&cfg_path)?
            } else {
                TinyConfig::default()
            };
            (path.join(WEIGHTS), config)
        } else {
            (path.to_owned(), TinyConfig::default())
        };
        let bad = |reason: String| Error::BadConfig {
            path: path.to_owned(),
            reason,
        };
        if config.act_fn != "relu" || config.upsample_fn != "nearest" {
            return Err(bad(format!(
                "a tiny autoencoder with act_fn `{}` and upsample_fn `{}`: Mintframe runs TAESD's (relu, nearest)",
                config.act_fn, config.upsample_fn
            )));
        }
        if config.scaling_factor != 1.0 || config.shift_factor != 0.0 {
            return Err(bad(format!(
                "scaling_factor {} and shift_factor {}: TAESD decodes the UNet's latents as they are (1 and 0)",
                config.scaling_factor, config.shift_factor
            )));
        }
        let weights = Arc::new(Weights::from_files(
            std::slice::from_ref(&file),
            KeyMap::Diffusers,
            "tiny autoencoder (TAESD)",
            dtype,
            device,
        )?);
        TinyDecoder::new(&weights.root(), config, path)
    }

    /// The decoder of `config` from `vb` (its `decoder.layers.*`).
    pub fn new(vb: &Vb, config: TinyConfig, path: &Path) -> Result<TinyDecoder> {
        let bad = |reason: String| Error::BadConfig {
            path: path.to_owned(),
            reason,
        };
        let n = config.decoder_block_out_channels.len();
        if n == 0 || config.num_decoder_blocks.len() != n {
            return Err(bad(format!(
                "decoder_block_out_channels {:?} and num_decoder_blocks {:?} must name the same levels",
                config.decoder_block_out_channels, config.num_decoder_blocks
            )));
        }
        let vb = vb.pp("decoder").pp("layers");
        let ch = &config.decoder_block_out_channels;
        let conv = |i: usize, c_in: usize, c_out: usize, bias: bool| {
            if bias {
                Conv2d::new(&vb.pp(i), c_in, c_out, 3, 1, 1, Padding::ZEROS)
            } else {
                Conv2d::without_bias(&vb.pp(i), c_in, c_out, 3, 1, 1, Padding::ZEROS)
            }
        };
        // diffusers' `nn.Sequential` numbering: each module takes an index, ReLU and Upsample too.
        let mut layers = vec![Layer::Conv {
            conv: conv(0, config.latent_channels, ch[0], true)?,
            relu: true,
        }];
        let mut i = 2;
        for (level, (&c, &blocks)) in ch.iter().zip(&config.num_decoder_blocks).enumerate() {
            let last = level + 1 == n;
            if level > 0 && ch[level - 1] != c {
                return Err(bad(format!(
                    "decoder_block_out_channels {ch:?}: TAESD keeps one width between levels"
                )));
            }
            for _ in 0..blocks {
                layers.push(Layer::Block(Block::new(&vb.pp(i), c)?));
                i += 1;
            }
            if !last {
                layers.push(Layer::Upsample(config.upsampling_scaling_factor));
                i += 1;
            }
            let out = if last { config.out_channels } else { c };
            layers.push(Layer::Conv {
                conv: conv(i, c, out, last)?,
                relu: false,
            });
            i += 1;
        }
        Ok(TinyDecoder {
            layers,
            config,
            path: path.to_owned(),
        })
    }

    /// How many pixels one latent covers along a side.
    pub fn factor(&self) -> usize {
        self.config
            .upsampling_scaling_factor
            .pow(self.config.num_decoder_blocks.len().saturating_sub(1) as u32)
    }

    /// The UNet's latents `(b, 4, h, w)` → images `(b, 3, h·8, w·8)` in [-1, 1].
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        // TAESD's input clamp: a soft one to ±3.
        let mut x = ((latents / 3.0)?.tanh()? * 3.0)?;
        for layer in &self.layers {
            x = match layer {
                Layer::Conv { conv, relu } => {
                    let y = conv.forward(&x)?;
                    if *relu { y.relu()? } else { y }
                }
                Layer::Block(b) => b.forward(&x)?,
                Layer::Upsample(f) => {
                    let (_, _, h, w) = x.dims4()?;
                    upsample_nearest(&x, h * f, w * f)?
                }
            };
        }
        Ok(((x * 2.0)? - 1.0)?)
    }
}
