//! A loaded Stable Diffusion model: its components, where their weights came from, and how its
//! prompts are encoded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::clip::{ClipTextModel, PadToken, PromptTokenizer};
use crate::config::{
    ClipConfig, ModelIndex, SchedulerConfig, UNetConfig, VaeConfig, presets, read_json,
};
use crate::error::{Error, Result};
use crate::keymap::KeyMap;
use crate::nn::Padding;
use crate::unet::{AddedCond, UNet};
use crate::vae::Vae;
use crate::weights::{Lora, Trainable, Weights, open_safetensors, refuse_pickle};

/// Model families, which decide how prompts are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Sd1,
    Sd2,
    Sdxl,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Sd1 => "sd1",
            Arch::Sd2 => "sd2",
            Arch::Sdxl => "sdxl",
        }
    }
}

/// Every config a model needs; a diffusers folder spreads it over several files, a single-file
/// checkpoint takes it from a preset or a sidecar `<file>.config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub unet: UNetConfig,
    pub vae: VaeConfig,
    /// One per text encoder (two for SDXL).
    pub text_encoders: Vec<ClipConfig>,
    pub scheduler: SchedulerConfig,
}

impl ModelConfig {
    pub fn sd15() -> ModelConfig {
        ModelConfig {
            arch: Arch::Sd1,
            unet: presets::sd15_unet(),
            vae: presets::sd_vae(),
            text_encoders: vec![presets::clip_l()],
            scheduler: SchedulerConfig::default(),
        }
    }

    pub fn sd21() -> ModelConfig {
        ModelConfig {
            arch: Arch::Sd2,
            unet: presets::sd21_unet(),
            vae: presets::sd_vae(),
            text_encoders: vec![ClipConfig {
                hidden_size: 1024,
                intermediate_size: 4096,
                num_hidden_layers: 23,
                num_attention_heads: 16,
                hidden_act: "gelu".into(),
                projection_dim: Some(512),
                ..presets::clip_l()
            }],
            scheduler: SchedulerConfig {
                prediction_type: "v_prediction".into(),
                ..SchedulerConfig::default()
            },
        }
    }

    pub fn sdxl() -> ModelConfig {
        ModelConfig {
            arch: Arch::Sdxl,
            unet: presets::sdxl_unet(),
            vae: VaeConfig {
                scaling_factor: 0.13025,
                sample_size: Some(1024),
                ..presets::sd_vae()
            },
            text_encoders: vec![
                ClipConfig {
                    projection_dim: None,
                    ..presets::clip_l()
                },
                ClipConfig {
                    hidden_size: 1280,
                    intermediate_size: 5120,
                    num_hidden_layers: 32,
                    num_attention_heads: 20,
                    hidden_act: "gelu".into(),
                    projection_dim: Some(1280),
                    architectures: vec!["CLIPTextModelWithProjection".into()],
                    ..presets::clip_l()
                },
            ],
            scheduler: SchedulerConfig::default(),
        }
    }

    pub fn preset(arch: Arch) -> ModelConfig {
        match arch {
            Arch::Sd1 => ModelConfig::sd15(),
            Arch::Sd2 => ModelConfig::sd21(),
            Arch::Sdxl => ModelConfig::sdxl(),
        }
    }

    /// Pad token of text encoder `i`.
    pub fn pad_token(&self, i: usize) -> PadToken {
        match (self.arch, i) {
            (Arch::Sd2, _) | (Arch::Sdxl, 1) => PadToken::Zero,
            _ => PadToken::Eos,
        }
    }
}

/// How to load: precision, device, seamless padding and LoRAs.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
    pub padding: Padding,
    /// kohya LoRA files and their strengths.
    pub loras: Vec<(PathBuf, f32)>,
    /// What of the UNet is trainable (training runs, gradient checks); frozen when `None`.
    pub train: Option<Arc<Trainable>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
            padding: Padding::ZEROS,
            loras: Vec::new(),
            train: None,
        }
    }
}

/// Which weight file a model read, for the recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub path: PathBuf,
    pub sha256: Option<String>,
}

pub(crate) struct TextEncoder {
    pub(crate) model: ClipTextModel,
    pad: PadToken,
}

pub struct Model {
    pub config: ModelConfig,
    pub unet: UNet,
    pub vae: Vae,
    pub(crate) text: Vec<TextEncoder>,
    tokenizer: PromptTokenizer,
    pub files: Vec<PathBuf>,
    pub dtype: DType,
    pub device: Device,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.config.arch)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// The prompt's conditioning for the UNet.
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// `(1, 77·chunks, cross_attention_dim)`.
    pub context: Tensor,
    /// SDXL's pooled embedding `(1, 1280)`.
    pub pooled: Option<Tensor>,
}

/// Finds the one safetensors file of a diffusers component, refusing pickles by name.
fn component_file(folder: &Path, component: &str) -> Result<PathBuf> {
    let dir = folder.join(component);
    let candidates = [
        "diffusion_pytorch_model.safetensors",
        "model.safetensors",
        "diffusion_pytorch_model.fp16.safetensors",
        "model.fp16.safetensors",
    ];
    for c in candidates {
        let p = dir.join(c);
        if p.is_file() {
            return Ok(p);
        }
    }
    for pickle in ["diffusion_pytorch_model.bin", "pytorch_model.bin"] {
        let p = dir.join(pickle);
        if p.is_file() {
            refuse_pickle(&p)?;
        }
    }
    Err(Error::MissingComponent {
        folder: folder.to_owned(),
        component: format!("{component}/diffusion_pytorch_model.safetensors"),
    })
}

fn component_config<T: serde::de::DeserializeOwned>(folder: &Path, rel: &str) -> Result<T> {
    let p = folder.join(rel);
    if !p.is_file() {
        return Err(Error::MissingComponent {
            folder: folder.to_owned(),
            component: rel.to_owned(),
        });
    }
    read_json(&p)
}

/// Loads the LoRAs and refuses one made for another base: its cross-attention keys say the
/// width of the text context it was trained on (768 SD 1.x, 1024 SD 2.x, 2048 SDXL).
fn load_loras(opts: &LoadOptions, config: &ModelConfig) -> Result<Vec<Lora>> {
    let loras: Vec<Lora> = opts
        .loras
        .iter()
        .map(|(p, s)| Lora::load(p, *s))
        .collect::<Result<_>>()?;
    let ours = config.unet.cross_attention_dim;
    for l in &loras {
        if let Some(theirs) = l.context_dim()
            && theirs != ours
        {
            return Err(Error::Lora {
                path: l.path.clone(),
                reason: format!(
                    "it was made for {} (a {theirs}-wide text context), another architecture \
                     than this model ({}, {ours}): use the version of this LoRA made for {}",
                    base_name(theirs),
                    base_name(ours),
                    base_name(ours)
                ),
            });
        }
    }
    Ok(loras)
}

fn base_name(context: usize) -> String {
    match context {
        768 => "SD 1.x".into(),
        1024 => "SD 2.x".into(),
        2048 => "SDXL".into(),
        c => format!("a model with a {c}-wide text context"),
    }
}

fn check_loras(parts: &[&Weights]) -> Result<()> {
    // A LoRA layer is used when any component took it; report the ones nobody did.
    let mut unused: Option<Vec<(PathBuf, String)>> = None;
    for w in parts {
        let mine = w.unused_lora_layers();
        unused = Some(match unused {
            None => mine,
            Some(prev) => prev.into_iter().filter(|x| mine.contains(x)).collect(),
        });
    }
    if let Some(u) = unused
        && let Some((path, layer)) = u.first()
    {
        return Err(Error::Lora {
            path: path.clone(),
            reason: format!(
                "{} of its layers match nothing in this model (first: `{layer}`): it was made for another architecture",
                u.len()
            ),
        });
    }
    Ok(())
}

impl Model {
    /// Loads a diffusers folder (`model_index.json` + one folder per component).
    pub fn load_diffusers(folder: &Path, opts: &LoadOptions) -> Result<Model> {
        let index_path = folder.join("model_index.json");
        if !index_path.is_file() {
            return Err(Error::MissingComponent {
                folder: folder.to_owned(),
                component: "model_index.json".into(),
            });
        }
        let index: ModelIndex = read_json(&index_path)?;
        let unet: UNetConfig = component_config(folder, "unet/config.json")?;
        unet.validate(&folder.join("unet/config.json"))?;
        let vae: VaeConfig = component_config(folder, "vae/config.json")?;
        vae.validate(&folder.join("vae/config.json"))?;
        let mut text_encoders: Vec<ClipConfig> =
            vec![component_config(folder, "text_encoder/config.json")?];
        let sdxl = index.is_sdxl() || unet.is_sdxl();
        if sdxl {
            text_encoders.push(component_config(folder, "text_encoder_2/config.json")?);
        }
        let scheduler: SchedulerConfig =
            component_config(folder, "scheduler/scheduler_config.json")?;
        let arch = if sdxl {
            Arch::Sdxl
        } else if text_encoders[0].hidden_act == "gelu" {
            Arch::Sd2
        } else {
            Arch::Sd1
        };
        let config = ModelConfig {
            arch,
            unet,
            vae,
            text_encoders,
            scheduler,
        };
        let mut pads = Vec::new();
        for (i, dir) in ["tokenizer", "tokenizer_2"]
            .iter()
            .enumerate()
            .take(config.text_encoders.len())
        {
            let p = folder.join(dir).join("tokenizer_config.json");
            let pad = if p.is_file() {
                let v: serde_json::Value = read_json(&p)?;
                let name = match &v["pad_token"] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Object(o) => o
                        .get("content")
                        .and_then(|c| c.as_str())
                        .unwrap_or("")
                        .to_owned(),
                    _ => String::new(),
                };
                PadToken::from_name(&name)
            } else {
                config.pad_token(i)
            };
            pads.push(pad);
        }
        let loras = load_loras(opts, &config)?;
        let unet_file = component_file(folder, "unet")?;
        let vae_file = component_file(folder, "vae")?;
        let mut te_files = vec![component_file(folder, "text_encoder")?];
        if sdxl {
            te_files.push(component_file(folder, "text_encoder_2")?);
        }
        let unet_w = Arc::new(
            Weights::from_files(
                std::slice::from_ref(&unet_file),
                KeyMap::Diffusers,
                arch_label(arch),
                opts.dtype,
                &opts.device,
            )?
            .with_loras("lora_unet_", loras.clone())
            .with_trainable("lora_unet_", opts.train.clone()),
        );
        let vae_w = Arc::new(Weights::from_files(
            std::slice::from_ref(&vae_file),
            KeyMap::Diffusers,
            "AutoencoderKL",
            opts.dtype,
            &opts.device,
        )?);
        let mut te_w = Vec::new();
        for (i, f) in te_files.iter().enumerate() {
            let prefix = match (sdxl, i) {
                (false, _) => "lora_te_",
                (true, 0) => "lora_te1_",
                (true, _) => "lora_te2_",
            };
            // transformers 5 saves CLIP without the `text_model.` level.
            let map = {
                let st = crate::weights::open_safetensors(f)?;
                if st
                    .get("text_model.embeddings.token_embedding.weight")
                    .is_err()
                    && st.get("embeddings.token_embedding.weight").is_ok()
                {
                    KeyMap::Strip {
                        prefix: "text_model.".into(),
                    }
                } else {
                    KeyMap::Diffusers
                }
            };
            te_w.push(Arc::new(
                Weights::from_files(
                    std::slice::from_ref(f),
                    map,
                    "CLIP text encoder",
                    opts.dtype,
                    &opts.device,
                )?
                .with_loras(prefix, loras.clone()),
            ));
        }
        let mut files = vec![unet_file, vae_file];
        files.extend(te_files);
        Model::build(
            config,
            pads,
            &unet_w,
            &vae_w,
            &te_w,
            files,
            opts,
            !loras.is_empty(),
        )
    }

    /// Loads an A1111/Civitai single-file checkpoint. Configs come from `<file>.config.json`
    /// when it exists, else from the preset of the architecture its tensor names reveal.
    pub fn load_single_file(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let st = open_safetensors(path)?;
        let names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        drop(st);
        let has = |p: &str| names.iter().any(|n| n.starts_with(p));
        let sidecar = path.with_extension("config.json");
        let config: ModelConfig = if sidecar.is_file() {
            read_json(&sidecar)?
        } else if has("conditioner.embedders.1") {
            ModelConfig::sdxl()
        } else if has("cond_stage_model.model.") {
            ModelConfig::sd21()
        } else if has("model.diffusion_model.") {
            ModelConfig::sd15()
        } else {
            return Err(Error::CorruptWeights {
                path: path.to_owned(),
                reason: "no `model.diffusion_model.*` tensors: this is not a Stable Diffusion checkpoint".into(),
            });
        };
        config.unet.validate(&sidecar)?;
        let loras = load_loras(opts, &config)?;
        let files = vec![path.to_owned()];
        let attention: Vec<bool> = (0..config.unet.block_out_channels.len())
            .map(|i| config.unet.has_attention(i))
            .collect();
        let label = arch_label(config.arch);
        let unet_w = Arc::new(
            Weights::from_files(
                &files,
                KeyMap::LdmUnet {
                    layers_per_block: config.unet.layers_per_block,
                    attention,
                },
                label,
                opts.dtype,
                &opts.device,
            )?
            .with_loras("lora_unet_", loras.clone())
            .with_trainable("lora_unet_", opts.train.clone()),
        );
        let vae_w = Arc::new(Weights::from_files(
            &files,
            KeyMap::LdmVae {
                levels: config.vae.block_out_channels.len(),
            },
            label,
            opts.dtype,
            &opts.device,
        )?);
        let mut te_w = Vec::new();
        for (i, te) in config.text_encoders.iter().enumerate() {
            let (map, prefix) = match (config.arch, i) {
                (Arch::Sd1, _) => (
                    KeyMap::HfClip {
                        prefix: "cond_stage_model.transformer.".into(),
                    },
                    "lora_te_",
                ),
                (Arch::Sd2, _) => (
                    KeyMap::OpenClip {
                        prefix: "cond_stage_model.model.".into(),
                        width: te.hidden_size,
                    },
                    "lora_te_",
                ),
                (Arch::Sdxl, 0) => (
                    KeyMap::HfClip {
                        prefix: "conditioner.embedders.0.transformer.".into(),
                    },
                    "lora_te1_",
                ),
                (Arch::Sdxl, _) => (
                    KeyMap::OpenClip {
                        prefix: "conditioner.embedders.1.model.".into(),
                        width: te.hidden_size,
                    },
                    "lora_te2_",
                ),
            };
            te_w.push(Arc::new(
                Weights::from_files(&files, map, label, opts.dtype, &opts.device)?
                    .with_loras(prefix, loras.clone()),
            ));
        }
        let pads = (0..config.text_encoders.len())
            .map(|i| config.pad_token(i))
            .collect();
        Model::build(
            config,
            pads,
            &unet_w,
            &vae_w,
            &te_w,
            files,
            opts,
            !loras.is_empty(),
        )
    }

    /// A model of `config`'s real size with seeded random weights (benchmarks, tests).
    pub fn random(config: ModelConfig, seed: u64, opts: &LoadOptions) -> Result<Model> {
        let w = |s: u64| {
            let w = Weights::random(seed.wrapping_add(s), false, opts.dtype, &opts.device);
            // Component 1 is the UNet.
            Arc::new(if s == 1 {
                w.with_trainable("lora_unet_", opts.train.clone())
            } else {
                w
            })
        };
        let te: Vec<Arc<Weights>> = (0..config.text_encoders.len())
            .map(|i| w(10 + i as u64))
            .collect();
        let pads = (0..config.text_encoders.len())
            .map(|i| config.pad_token(i))
            .collect();
        Model::build(config, pads, &w(1), &w(2), &te, Vec::new(), opts, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        config: ModelConfig,
        pads: Vec<PadToken>,
        unet_w: &Arc<Weights>,
        vae_w: &Arc<Weights>,
        te_w: &[Arc<Weights>],
        files: Vec<PathBuf>,
        opts: &LoadOptions,
        check_lora: bool,
    ) -> Result<Model> {
        let unet = UNet::new(&unet_w.root(), &config.unet, opts.padding)?;
        let vae = Vae::new(&vae_w.root(), &config.vae, opts.padding)?;
        let mut text = Vec::new();
        for ((cfg, w), pad) in config.text_encoders.iter().zip(te_w).zip(pads) {
            text.push(TextEncoder {
                model: ClipTextModel::new(&w.root(), cfg)?,
                pad,
            });
        }
        if check_lora {
            let mut parts: Vec<&Weights> = vec![unet_w.as_ref()];
            parts.extend(te_w.iter().map(|w| w.as_ref()));
            check_loras(&parts)?;
        }
        Ok(Model {
            config,
            unet,
            vae,
            text,
            tokenizer: PromptTokenizer::new(),
            files,
            dtype: crate::weights::activation_dtype(opts.dtype, &opts.device),
            device: opts.device.clone(),
        })
    }

    /// Number of 77-token chunks `prompt` needs.
    pub fn chunk_count(&self, prompt: &str) -> usize {
        self.tokenizer.words(prompt).len().div_ceil(75).max(1)
    }

    /// Encodes a prompt into `chunks` chunks of context (SD1: last layer; SD2: last layer;
    /// SDXL: both encoders' penultimate layers side by side, plus the pooled embedding).
    pub fn encode_prompt(&self, prompt: &str, chunks: usize) -> Result<Conditioning> {
        let mut per_encoder = Vec::new();
        let mut pooled = None;
        for (i, te) in self.text.iter().enumerate() {
            let ids = self.tokenizer.chunks(prompt, te.pad, chunks);
            let ids: Vec<Vec<u32>> = ids.into_iter().take(chunks).collect();
            let out = te.model.forward(&ids, &self.device)?;
            let hidden = if self.config.arch == Arch::Sdxl {
                out.penultimate
            } else {
                out.last
            };
            // (chunks, 77, d) → (1, chunks·77, d)
            let (c, n, d) = hidden.dims3()?;
            per_encoder.push(hidden.reshape((1, c * n, d))?);
            if i == 1
                && let Some(p) = out.pooled
            {
                pooled = Some(p.narrow(0, 0, 1)?);
            }
        }
        let context = Tensor::cat(&per_encoder, 2)?.to_dtype(self.dtype)?;
        Ok(Conditioning { context, pooled })
    }

    /// SDXL's time ids: original size, crop top-left, target size.
    pub fn added_cond(
        &self,
        pooled: &Tensor,
        width: u32,
        height: u32,
        batch: usize,
    ) -> Result<Option<AddedCond>> {
        if self.config.arch != Arch::Sdxl {
            return Ok(None);
        }
        let (h, w) = (height as f32, width as f32);
        let ids: Vec<f32> = (0..batch).flat_map(|_| [h, w, 0.0, 0.0, h, w]).collect();
        Ok(Some(AddedCond {
            text_embeds: pooled.repeat((batch, 1))?,
            time_ids: Tensor::from_vec(ids, (batch, 6), &self.device)?,
        }))
    }
}

fn arch_label(arch: Arch) -> &'static str {
    match arch {
        Arch::Sd1 => "Stable Diffusion 1.x",
        Arch::Sd2 => "Stable Diffusion 2.x",
        Arch::Sdxl => "Stable Diffusion XL",
    }
}

/// Parameter counts of a config's components, without allocating them.
pub fn param_counts(config: &ModelConfig) -> Result<(usize, usize, usize)> {
    let u = Arc::new(Weights::meta(DType::F32));
    UNet::new(&u.root(), &config.unet, Padding::ZEROS)?;
    let v = Arc::new(Weights::meta(DType::F32));
    Vae::new(&v.root(), &config.vae, Padding::ZEROS)?;
    let t = Arc::new(Weights::meta(DType::F32));
    for (i, c) in config.text_encoders.iter().enumerate() {
        ClipTextModel::new(&t.root().pp(format!("te{i}")), c)?;
    }
    Ok((u.param_count(), v.param_count(), t.param_count()))
}
