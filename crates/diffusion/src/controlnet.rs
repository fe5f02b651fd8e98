//! ControlNet (diffusers' `ControlNetModel`) for SD 1.x/2.x and SDXL: a copy of the UNet's down
//! path and middle block that reads a conditioning image (pose skeleton, edges) and returns one
//! residual per skip connection and one for the middle block, which the UNet adds to its own
//! ([`crate::unet::UNet::forward_controlled`]). Loaded from diffusers folders, diffusers-named
//! single files and the original ControlNet names A1111 and ComfyUI use (`control_model.*`,
//! `input_hint_block`, `zero_convs`, `middle_block_out`), safetensors only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Tensor;
use candle_core::safetensors::MmapedSafetensors;
use serde::{Deserialize, Serialize};

use crate::config::{OneOrMany, UNetConfig, presets, read_json};
use crate::error::{Error, Result};
use crate::keymap::KeyMap;
use crate::model::LoadOptions;
use crate::nn::{Conv2d, Linear, Padding, silu};
use crate::unet::{
    AddedCond, Level, Mid, added_embedding, down_levels, mid_block, run_down_mid, time_embedding,
};
use crate::weights::{Weights, open_safetensors, refuse_pickle};

fn three() -> usize {
    3
}
fn one() -> OneOrMany {
    OneOrMany::One(1)
}
fn groups() -> usize {
    32
}
fn eps5() -> f64 {
    1e-5
}
fn hint_channels() -> Vec<usize> {
    vec![16, 32, 96, 256]
}
fn rgb() -> ChannelOrder {
    ChannelOrder::Rgb
}
fn mid_type() -> String {
    "UNetMidBlock2DCrossAttn".into()
}

/// The channel order the conditioning image is given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// `config.json` of a diffusers ControlNet, the fields that change what it computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlNetConfig {
    pub in_channels: usize,
    #[serde(default = "three")]
    pub conditioning_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub down_block_types: Vec<String>,
    pub attention_head_dim: OneOrMany,
    #[serde(default)]
    pub num_attention_heads: Option<OneOrMany>,
    pub cross_attention_dim: usize,
    #[serde(default = "one")]
    pub transformer_layers_per_block: OneOrMany,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default = "groups")]
    pub norm_num_groups: usize,
    #[serde(default = "eps5")]
    pub norm_eps: f64,
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    #[serde(default = "hint_channels")]
    pub conditioning_embedding_out_channels: Vec<usize>,
    /// Shuffle ControlNets pool their residuals to one value per channel.
    #[serde(default)]
    pub global_pool_conditions: bool,
    #[serde(default = "rgb")]
    pub controlnet_conditioning_channel_order: ChannelOrder,
    #[serde(default)]
    pub class_embed_type: Option<String>,
    #[serde(default = "mid_type")]
    pub mid_block_type: String,
}

impl ControlNetConfig {
    /// The ControlNet of a UNet's shape, as diffusers' `ControlNetModel.from_unet` makes it and
    /// the released ControlNets for SD 1.5, 2.1 and SDXL are.
    pub fn for_unet(u: &UNetConfig) -> ControlNetConfig {
        ControlNetConfig {
            in_channels: 4,
            conditioning_channels: 3,
            block_out_channels: u.block_out_channels.clone(),
            layers_per_block: u.layers_per_block,
            down_block_types: u.down_block_types.clone(),
            attention_head_dim: u.attention_head_dim.clone(),
            num_attention_heads: u.num_attention_heads.clone(),
            cross_attention_dim: u.cross_attention_dim,
            transformer_layers_per_block: u.transformer_layers_per_block.clone(),
            use_linear_projection: u.use_linear_projection,
            norm_num_groups: u.norm_num_groups,
            norm_eps: u.norm_eps,
            addition_embed_type: u.addition_embed_type.clone(),
            addition_time_embed_dim: u.addition_time_embed_dim,
            projection_class_embeddings_input_dim: u.projection_class_embeddings_input_dim,
            conditioning_embedding_out_channels: hint_channels(),
            global_pool_conditions: false,
            controlnet_conditioning_channel_order: ChannelOrder::Rgb,
            class_embed_type: None,
            mid_block_type: mid_type(),
        }
    }

    /// The UNet config whose down path and middle block this ControlNet copies.
    pub fn unet(&self) -> UNetConfig {
        UNetConfig {
            in_channels: self.in_channels,
            out_channels: 4,
            block_out_channels: self.block_out_channels.clone(),
            layers_per_block: self.layers_per_block,
            down_block_types: self.down_block_types.clone(),
            up_block_types: self
                .down_block_types
                .iter()
                .rev()
                .map(|t| {
                    if t.starts_with("CrossAttn") {
                        "CrossAttnUpBlock2D".to_owned()
                    } else {
                        "UpBlock2D".to_owned()
                    }
                })
                .collect(),
            attention_head_dim: self.attention_head_dim.clone(),
            num_attention_heads: self.num_attention_heads.clone(),
            cross_attention_dim: self.cross_attention_dim,
            transformer_layers_per_block: self.transformer_layers_per_block.clone(),
            use_linear_projection: self.use_linear_projection,
            norm_num_groups: self.norm_num_groups,
            norm_eps: self.norm_eps,
            addition_embed_type: self.addition_embed_type.clone(),
            addition_time_embed_dim: self.addition_time_embed_dim,
            projection_class_embeddings_input_dim: self.projection_class_embeddings_input_dim,
            sample_size: None,
        }
    }

    /// How many image pixels one latent cell covers: each conditioning stage after the first
    /// halves the image.
    pub fn factor(&self) -> usize {
        1 << self
            .conditioning_embedding_out_channels
            .len()
            .saturating_sub(1)
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| Error::BadConfig {
            path: path.to_owned(),
            reason,
        };
        if let Some(c) = &self.class_embed_type {
            return Err(bad(format!(
                "class_embed_type {c} is not supported (no released Stable Diffusion ControlNet uses one)"
            )));
        }
        if self.mid_block_type != "UNetMidBlock2DCrossAttn" {
            return Err(bad(format!(
                "mid_block_type {} is not supported",
                self.mid_block_type
            )));
        }
        if self.conditioning_embedding_out_channels.len() > 6 {
            return Err(bad(format!(
                "{} conditioning stages: released ControlNets have 4 (an image 8× the latent); at most 6 are read",
                self.conditioning_embedding_out_channels.len()
            )));
        }
        if self.conditioning_embedding_out_channels.is_empty() || self.conditioning_channels == 0 {
            return Err(bad(
                "conditioning_embedding_out_channels and conditioning_channels must not be empty"
                    .into(),
            ));
        }
        self.unet().validate(path)
    }
}

/// The ControlNet's residuals: one per UNet skip connection and one for the middle block.
#[derive(Debug, Clone)]
pub struct Residuals {
    pub down: Vec<Tensor>,
    pub mid: Tensor,
}

impl Residuals {
    /// The sum of several ControlNets' residuals, as diffusers' `MultiControlNetModel` adds them.
    pub fn sum(self, other: &Residuals) -> Result<Residuals> {
        if self.down.len() != other.down.len() {
            return Err(Error::InvalidRequest(format!(
                "two ControlNets give {} and {} residuals: they are for different base models",
                self.down.len(),
                other.down.len()
            )));
        }
        let down = self
            .down
            .iter()
            .zip(&other.down)
            .map(|(a, b)| Ok((a + b)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Residuals {
            down,
            mid: (&self.mid + &other.mid)?,
        })
    }

    /// Zeros of the same shapes, for the unconditional half of a guess-mode batch.
    pub fn zeros_like(&self) -> Result<Residuals> {
        Ok(Residuals {
            down: self
                .down
                .iter()
                .map(|t| Ok(t.zeros_like()?))
                .collect::<Result<Vec<_>>>()?,
            mid: self.mid.zeros_like()?,
        })
    }

    /// `[a; b]` along the batch: `self` first.
    pub fn cat_batch(&self, other: &Residuals) -> Result<Residuals> {
        let down = self
            .down
            .iter()
            .zip(&other.down)
            .map(|(a, b)| Ok(Tensor::cat(&[a, b], 0)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Residuals {
            down,
            mid: Tensor::cat(&[&self.mid, &other.mid], 0)?,
        })
    }
}

/// The conditioning image to the UNet's first feature width: convolutions with SiLU, each stage
/// after the first at half the size, then a (zero-initialised when trained) output convolution.
struct CondEmbedding {
    conv_in: Conv2d,
    blocks: Vec<Conv2d>,
    conv_out: Conv2d,
}

impl CondEmbedding {
    fn new(vb: &Vb, cfg: &ControlNetConfig, pad: Padding) -> Result<CondEmbedding> {
        let ch = &cfg.conditioning_embedding_out_channels;
        let conv_in = Conv2d::new(
            &vb.pp("conv_in"),
            cfg.conditioning_channels,
            ch[0],
            3,
            1,
            1,
            pad,
        )?;
        let mut blocks = Vec::new();
        for i in 0..ch.len() - 1 {
            let k = blocks.len();
            blocks.push(Conv2d::new(
                &vb.pp("blocks").pp(k),
                ch[i],
                ch[i],
                3,
                1,
                1,
                pad,
            )?);
            blocks.push(Conv2d::new(
                &vb.pp("blocks").pp(k + 1),
                ch[i],
                ch[i + 1],
                3,
                2,
                1,
                pad,
            )?);
        }
        let conv_out = Conv2d::new(
            &vb.pp("conv_out"),
            ch[ch.len() - 1],
            cfg.block_out_channels[0],
            3,
            1,
            1,
            pad,
        )?;
        Ok(CondEmbedding {
            conv_in,
            blocks,
            conv_out,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = silu(&self.conv_in.forward(x)?)?;
        for b in &self.blocks {
            h = silu(&b.forward(&h)?)?;
        }
        self.conv_out.forward(&h)
    }
}

use crate::weights::Vb;

pub struct ControlNet {
    cfg: ControlNetConfig,
    unet_cfg: UNetConfig,
    conv_in: Conv2d,
    time_1: Linear,
    time_2: Linear,
    add: Option<(Linear, Linear)>,
    cond: CondEmbedding,
    down: Vec<Level>,
    mid: Mid,
    zero_down: Vec<Conv2d>,
    zero_mid: Conv2d,
    /// The file the weights came from, for messages and recipes.
    pub source: PathBuf,
}

impl std::fmt::Debug for ControlNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlNet")
            .field("source", &self.source)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Which naming a ControlNet file uses, read from its tensor names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Naming {
    Diffusers,
    /// The original names, under `prefix` (`control_model.` or nothing).
    Original {
        prefix: String,
    },
}

fn naming(path: &Path, names: &[String]) -> Result<Naming> {
    let has = |n: &str| names.iter().any(|k| k == n);
    if has("controlnet_cond_embedding.conv_in.weight") {
        return Ok(Naming::Diffusers);
    }
    for prefix in ["control_model.", ""] {
        if has(&format!("{prefix}input_hint_block.0.weight")) {
            return Ok(Naming::Original {
                prefix: prefix.to_owned(),
            });
        }
    }
    let reason = if names.iter().any(|k| k.contains("lora_controlnet")) {
        "this is a Control-LoRA (Stability's rank-reduced ControlNet), which Mintframe does not load; use a full ControlNet"
    } else if names.iter().any(|k| k.starts_with("adapter.")) {
        "this is a T2I-Adapter, not a ControlNet"
    } else if names
        .iter()
        .any(|k| k.starts_with("model.diffusion_model."))
    {
        "this is a Stable Diffusion checkpoint, not a ControlNet; import it as a model"
    } else {
        "no `controlnet_cond_embedding` or `input_hint_block` tensors: this is not a ControlNet"
    };
    Err(Error::CorruptWeights {
        path: path.to_owned(),
        reason: reason.into(),
    })
}

/// The architecture preset a single file's tensors reveal: SDXL has added embeddings, and the
/// first cross-attention's key width is the text context (768 SD 1.x, 1024 SD 2.x).
fn preset_for(path: &Path, st: &MmapedSafetensors, n: &Naming) -> Result<UNetConfig> {
    let (xl, key) = match n {
        Naming::Diffusers => (
            "add_embedding.linear_1.weight".to_owned(),
            "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight".to_owned(),
        ),
        Naming::Original { prefix } => (
            format!("{prefix}label_emb.0.0.weight"),
            format!("{prefix}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"),
        ),
    };
    if st.get(&xl).is_ok() {
        return Ok(presets::sdxl_unet());
    }
    let width = st.get(&key).ok().and_then(|t| t.shape().get(1).copied());
    match width {
        Some(768) => Ok(presets::sd15_unet()),
        Some(1024) => Ok(presets::sd21_unet()),
        other => Err(Error::BadConfig {
            path: path.to_owned(),
            reason: format!(
                "cannot tell which base model this ControlNet is for (text context width {other:?}); put its diffusers config.json beside it as {}",
                path.with_extension("config.json").display()
            ),
        }),
    }
}

impl ControlNet {
    /// Builds a ControlNet from weights under diffusers names.
    pub fn new(vb: &Vb, cfg: &ControlNetConfig, pad: Padding) -> Result<ControlNet> {
        let u = cfg.unet();
        let ch = &cfg.block_out_channels;
        let temb = ch[0] * 4;
        let conv_in = Conv2d::new(&vb.pp("conv_in"), cfg.in_channels, ch[0], 3, 1, 1, pad)?;
        let time_1 = Linear::new(&vb.pp("time_embedding.linear_1"), ch[0], temb, true)?;
        let time_2 = Linear::new(&vb.pp("time_embedding.linear_2"), temb, temb, true)?;
        let add = added_embedding(vb, &u, temb)?;
        let cond = CondEmbedding::new(&vb.pp("controlnet_cond_embedding"), cfg, pad)?;
        let down = down_levels(vb, &u, temb, pad)?;
        let mid = mid_block(vb, &u, temb, pad)?;
        // One 1×1 convolution per skip: conv_in's output, each resnet, each downsampler.
        let mut widths = vec![ch[0]];
        for (i, level) in down.iter().enumerate() {
            widths.extend(std::iter::repeat_n(ch[i], level.resnets.len()));
            if level.sampler.is_some() {
                widths.push(ch[i]);
            }
        }
        let zero_down = widths
            .iter()
            .enumerate()
            .map(|(k, &c)| Conv2d::new(&vb.pp("controlnet_down_blocks").pp(k), c, c, 1, 1, 0, pad))
            .collect::<Result<Vec<_>>>()?;
        let last = ch[ch.len() - 1];
        let zero_mid = Conv2d::new(&vb.pp("controlnet_mid_block"), last, last, 1, 1, 0, pad)?;
        Ok(ControlNet {
            cfg: cfg.clone(),
            unet_cfg: u,
            conv_in,
            time_1,
            time_2,
            add,
            cond,
            down,
            mid,
            zero_down,
            zero_mid,
            source: PathBuf::new(),
        })
    }

    /// Loads a diffusers folder (`config.json` + `diffusion_pytorch_model.safetensors`) or one
    /// `.safetensors` file under diffusers or original names; a single file's config comes from
    /// `<file>.config.json` beside it, else from the base model its tensors reveal.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<ControlNet> {
        let (file, sidecar) = if path.is_dir() {
            let mut found = None;
            for c in [
                "diffusion_pytorch_model.safetensors",
                "diffusion_pytorch_model.fp16.safetensors",
            ] {
                if path.join(c).is_file() {
                    found = Some(path.join(c));
                    break;
                }
            }
            let bin = path.join("diffusion_pytorch_model.bin");
            if found.is_none() && bin.is_file() {
                refuse_pickle(&bin)?;
            }
            let file = found.ok_or_else(|| Error::MissingComponent {
                folder: path.to_owned(),
                component: "diffusion_pytorch_model.safetensors".into(),
            })?;
            (file, Some(path.join("config.json")))
        } else {
            refuse_pickle(path)?;
            let side = path.with_extension("config.json");
            (path.to_owned(), side.is_file().then_some(side))
        };
        let st = open_safetensors(&file)?;
        let names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        let naming = naming(&file, &names)?;
        let cfg: ControlNetConfig = match &sidecar {
            Some(side) => {
                if !side.is_file() {
                    return Err(Error::MissingComponent {
                        folder: path.to_owned(),
                        component: "config.json".into(),
                    });
                }
                read_json(side)?
            }
            None => ControlNetConfig::for_unet(&preset_for(&file, &st, &naming)?),
        };
        drop(st);
        cfg.validate(sidecar.as_deref().unwrap_or(&file))?;
        let map = match &naming {
            Naming::Diffusers => KeyMap::Diffusers,
            Naming::Original { prefix } => KeyMap::LdmControlNet {
                prefix: prefix.clone(),
                layers_per_block: cfg.layers_per_block,
                hint_blocks: 2 * (cfg.conditioning_embedding_out_channels.len() - 1),
            },
        };
        let w = Arc::new(Weights::from_files(
            std::slice::from_ref(&file),
            map,
            "ControlNet",
            opts.dtype,
            &opts.device,
        )?);
        let mut net = ControlNet::new(&w.root(), &cfg, opts.padding)?;
        net.source = file;
        Ok(net)
    }

    pub fn config(&self) -> &ControlNetConfig {
        &self.cfg
    }

    /// Refuses a ControlNet made for another base model than `unet`'s, by name.
    pub fn check_base(&self, unet: &UNetConfig) -> Result<()> {
        let name = |c: usize, xl: bool| match (c, xl) {
            (_, true) => "SDXL".to_owned(),
            (768, _) => "SD 1.x".to_owned(),
            (1024, _) => "SD 2.x".to_owned(),
            (c, _) => format!("a model with text context width {c}"),
        };
        let mine = (self.cfg.cross_attention_dim, self.unet_cfg.is_sdxl());
        let base = (unet.cross_attention_dim, unet.is_sdxl());
        if mine != base
            || self.cfg.block_out_channels != unet.block_out_channels
            || self.cfg.layers_per_block != unet.layers_per_block
            || self.cfg.down_block_types != unet.down_block_types
        {
            return Err(Error::InvalidRequest(format!(
                "ControlNet {} is for {} but the model is {}: use a ControlNet made for the model's base",
                self.source.display(),
                name(mine.0, mine.1),
                name(base.0, base.1),
            )));
        }
        Ok(())
    }

    /// The residuals for latents `x` at timesteps `t` (`(b,)`) given the text context and the
    /// conditioning image `cond` (`(b, 3, H, W)` in [0, 1], H and W the latent's × [`Self::factor`]).
    /// In guess mode the residuals are scaled from 0.1 at the first skip to 1 at the middle
    /// block (logarithmically), as diffusers does, so the image steers more than the prompt.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        x: &Tensor,
        t: &Tensor,
        ctx: &Tensor,
        added: Option<&AddedCond>,
        cond: &Tensor,
        scale: f64,
        guess: bool,
    ) -> Result<Residuals> {
        let (_, _, h, w) = x.dims4()?;
        let (_, cc, ch, cw) = cond.dims4()?;
        let f = self.cfg.factor();
        if (ch, cw) != (h * f, w * f) || cc != self.cfg.conditioning_channels {
            return Err(Error::InvalidRequest(format!(
                "the control image is {cw}×{ch} with {cc} channels but this ControlNet needs {}×{} with {}",
                w * f,
                h * f,
                self.cfg.conditioning_channels
            )));
        }
        let cond = match self.cfg.controlnet_conditioning_channel_order {
            ChannelOrder::Rgb => cond.clone(),
            ChannelOrder::Bgr => Tensor::cat(
                &[
                    cond.narrow(1, 2, 1)?,
                    cond.narrow(1, 1, 1)?,
                    cond.narrow(1, 0, 1)?,
                ],
                1,
            )?,
        }
        .to_dtype(x.dtype())?;
        let emb = time_embedding(
            &self.unet_cfg,
            (&self.time_1, &self.time_2, self.add.as_ref()),
            t,
            added,
            x.dtype(),
        )?;
        let h = (self.conv_in.forward(x)? + self.cond.forward(&cond)?)?;
        let (skips, mid) = run_down_mid(&self.down, &self.mid, h, &emb, ctx)?;
        let n = skips.len();
        let scale_at = |k: usize| -> f64 {
            if guess {
                // torch.logspace(-1, 0, n + 1)[k]
                10f64.powf(-1.0 + k as f64 / n as f64) * scale
            } else {
                scale
            }
        };
        let pool = |t: Tensor| -> Result<Tensor> {
            if self.cfg.global_pool_conditions {
                Ok(t.mean_keepdim(2)?.mean_keepdim(3)?)
            } else {
                Ok(t)
            }
        };
        let mut down = Vec::with_capacity(n);
        for (k, (s, z)) in skips.iter().zip(&self.zero_down).enumerate() {
            down.push(pool((z.forward(s)? * scale_at(k))?)?);
        }
        let mid = pool((self.zero_mid.forward(&mid)? * scale_at(n))?)?;
        Ok(Residuals { down, mid })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use candle_core::Device;

    use super::*;
    use crate::parity::{fixture_unet, rel_err};
    use crate::train::files::{read_safetensors, write_safetensors};

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/controlnet")
    }

    fn io(name: &str) -> BTreeMap<String, Tensor> {
        read_safetensors(&fixtures().join(format!("{name}_io.safetensors")))
            .expect("fixture")
            .0
    }

    fn added(fx: &BTreeMap<String, Tensor>) -> Option<AddedCond> {
        Some(AddedCond {
            text_embeds: fx.get("in.text_embeds")?.clone(),
            time_ids: fx.get("in.time_ids")?.clone(),
        })
    }

    fn assert_residuals(r: &Residuals, fx: &BTreeMap<String, Tensor>, tag: &str, what: &str) {
        let n = fx
            .keys()
            .filter(|k| k.starts_with(&format!("{tag}.down.")))
            .count();
        assert_eq!(r.down.len(), n, "{what}: residual count");
        for (k, d) in r.down.iter().enumerate() {
            let e = rel_err(d, &fx[&format!("{tag}.down.{k}")]);
            assert!(e < 1e-4, "{what}: down residual {k} differs by {e:e}");
        }
        let e = rel_err(&r.mid, &fx[&format!("{tag}.mid")]);
        assert!(e < 1e-4, "{what}: mid residual differs by {e:e}");
    }

    /// Our ControlNet against diffusers' `ControlNetModel` with the same weights: from the
    /// diffusers folder and from the single file under the original names, plain at scale 0.8
    /// and in guess mode, and the UNet's prediction with the residuals added.
    #[test]
    fn controlnet_matches_diffusers_from_folders_and_original_single_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        for name in ["sd15", "sdxl"] {
            let fx = io(name);
            let single = tmp.path().join(format!("{name}.safetensors"));
            std::fs::copy(
                fixtures().join(format!("{name}_single.safetensors")),
                &single,
            )
            .expect("copy");
            // A tiny config cannot be told from the tensors; real files get a preset.
            std::fs::copy(
                fixtures().join(name).join("config.json"),
                single.with_extension("config.json"),
            )
            .expect("copy config");
            let unet_path = tmp.path().join(format!("{name}_unet.safetensors"));
            let opts = LoadOptions::default();
            for source in [fixtures().join(name), single.clone()] {
                let net = ControlNet::load(&source, &opts).expect("load");
                let what = format!("{name} from {}", source.display());
                let add = added(&fx);
                let r = net
                    .forward(
                        &fx["in.x"],
                        &fx["in.t"],
                        &fx["in.ctx"],
                        add.as_ref(),
                        &fx["in.cond"],
                        0.8,
                        false,
                    )
                    .expect("forward");
                assert_residuals(&r, &fx, "out", &what);
                let g = net
                    .forward(
                        &fx["in.x"],
                        &fx["in.t"],
                        &fx["in.ctx"],
                        add.as_ref(),
                        &fx["in.cond"],
                        1.0,
                        true,
                    )
                    .expect("guess");
                assert_residuals(&g, &fx, "guess", &format!("{what}, guess mode"));

                let unet = fixture_unet(&fx, &unet_path, &net.config().unet());
                net.check_base(unet.config()).expect("same base");
                let pred = unet
                    .forward_controlled(
                        &fx["in.x"],
                        &fx["in.t"],
                        &fx["in.ctx"],
                        add.as_ref(),
                        Some(&r),
                    )
                    .expect("unet");
                let e = rel_err(&pred, &fx["out.unet"]);
                assert!(e < 1e-4, "{what}: UNet with residuals differs by {e:e}");
            }
        }
    }

    use candle_core::DType;

    #[test]
    fn a_controlnet_for_another_base_model_is_refused_by_name() {
        let net =
            ControlNet::load(&fixtures().join("sd15"), &LoadOptions::default()).expect("load");
        let mut xl = net.config().unet();
        xl.cross_attention_dim = 2048;
        xl.addition_embed_type = Some("text_time".into());
        let err = net.check_base(&xl).expect_err("refused").to_string();
        assert!(
            err.contains("is for a model with text context width 32")
                && err.contains("the model is SDXL"),
            "{err}"
        );
        let err = net
            .check_base(&presets::sd15_unet())
            .expect_err("a real SD 1.5 UNet has other widths")
            .to_string();
        assert!(err.contains("made for the model's base"), "{err}");
    }

    #[test]
    fn files_that_are_not_controlnets_are_refused_with_what_they_are() {
        let tmp = tempfile::tempdir().expect("tmp");
        let write = |name: &str, key: &str| -> PathBuf {
            let p = tmp.path().join(name);
            let mut m = BTreeMap::new();
            m.insert(
                key.to_owned(),
                Tensor::zeros(2, DType::F32, &Device::Cpu).expect("t"),
            );
            write_safetensors(&p, &m, Default::default()).expect("write");
            p
        };
        let cases = [
            (
                "ckpt.safetensors",
                "model.diffusion_model.input_blocks.0.0.weight",
                "import it as a model",
            ),
            ("clora.safetensors", "lora_controlnet", "Control-LoRA"),
            ("other.safetensors", "foo.weight", "not a ControlNet"),
        ];
        for (file, key, says) in cases {
            let err = ControlNet::load(&write(file, key), &LoadOptions::default())
                .expect_err("refused")
                .to_string();
            assert!(err.contains(says), "{file}: {err}");
        }
        let pickle = tmp.path().join("control_sd15_openpose.pth");
        std::fs::write(&pickle, b"PK\x03\x04").expect("write");
        let err = ControlNet::load(&pickle, &LoadOptions::default())
            .expect_err("pickle")
            .to_string();
        assert!(err.contains("pickle"), "{err}");
    }

    #[test]
    fn a_single_file_tells_its_base_model_from_its_tensor_shapes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cases = [
            (
                vec![(
                    "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                    vec![4, 768],
                )],
                768,
                false,
            ),
            (
                vec![(
                    "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                    vec![4, 1024],
                )],
                1024,
                false,
            ),
            (
                vec![("control_model.label_emb.0.0.weight", vec![4, 4])],
                2048,
                true,
            ),
        ];
        for (i, (tensors, ctx, xl)) in cases.into_iter().enumerate() {
            let p = tmp.path().join(format!("{i}.safetensors"));
            let mut m = BTreeMap::new();
            let prefix = if tensors[0].0.starts_with("control_model.") {
                "control_model."
            } else {
                ""
            };
            m.insert(
                format!("{prefix}input_hint_block.0.weight"),
                Tensor::zeros(1, DType::F32, &Device::Cpu).expect("t"),
            );
            for (k, shape) in tensors {
                m.insert(
                    k.to_owned(),
                    Tensor::zeros(shape, DType::F32, &Device::Cpu).expect("t"),
                );
            }
            write_safetensors(&p, &m, Default::default()).expect("write");
            let st = open_safetensors(&p).expect("open");
            let names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
            let n = naming(&p, &names).expect("naming");
            let u = preset_for(&p, &st, &n).expect("preset");
            assert_eq!((u.cross_attention_dim, u.is_sdxl()), (ctx, xl));
        }
    }
}
