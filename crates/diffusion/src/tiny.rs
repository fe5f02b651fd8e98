//! Tiny random-weight models in exactly the real layouts (a diffusers folder, an A1111
//! single-file checkpoint, a kohya LoRA), written deterministically from a seed. Tests and the
//! `tiny-sd` smoke model run the same loading code as real weights.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::clip::ClipTextModel;
use crate::config::{ClipConfig, OneOrMany, SchedulerConfig, UNetConfig, VaeConfig};
use crate::error::{Error, Result, io};
use crate::keymap::{KeyMap, Mapped};
use crate::model::{Arch, ModelConfig};
use crate::nn::Padding;
use crate::unet::UNet;
use crate::vae::Vae;
use crate::weights::{Weights, normal_vec};

/// The seed `tiny-sd` is written from; its files' hashes are therefore fixed.
pub const TINY_SEED: u64 = 20_261_125;

/// A 4-channel SD1-style model small enough to run a 64×64 generation in well under a second.
pub fn tiny_config(inpaint: bool) -> ModelConfig {
    ModelConfig {
        arch: Arch::Sd1,
        unet: UNetConfig {
            in_channels: if inpaint { 9 } else { 4 },
            out_channels: 4,
            block_out_channels: vec![32, 64],
            layers_per_block: 1,
            down_block_types: vec!["CrossAttnDownBlock2D".into(), "DownBlock2D".into()],
            up_block_types: vec!["UpBlock2D".into(), "CrossAttnUpBlock2D".into()],
            attention_head_dim: OneOrMany::One(2),
            num_attention_heads: None,
            cross_attention_dim: 32,
            transformer_layers_per_block: OneOrMany::One(1),
            use_linear_projection: false,
            norm_num_groups: 8,
            norm_eps: 1e-5,
            addition_embed_type: None,
            addition_time_embed_dim: None,
            projection_class_embeddings_input_dim: None,
            sample_size: Some(8),
        },
        vae: VaeConfig {
            in_channels: 3,
            out_channels: 3,
            block_out_channels: vec![16, 16, 32, 32],
            layers_per_block: 1,
            latent_channels: 4,
            norm_num_groups: 8,
            scaling_factor: 0.18215,
            sample_size: Some(64),
        },
        text_encoders: vec![ClipConfig {
            vocab_size: 49408,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            projection_dim: None,
            architectures: vec!["CLIPTextModel".into()],
        }],
        scheduler: SchedulerConfig {
            class_name: Some("EulerAncestralDiscreteScheduler".into()),
            ..SchedulerConfig::default()
        },
    }
}

/// The tensors of each component, by diffusers name.
pub struct TinyTensors {
    pub unet: BTreeMap<String, Tensor>,
    pub vae: BTreeMap<String, Tensor>,
    pub text: BTreeMap<String, Tensor>,
}

impl std::fmt::Debug for TinyTensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TinyTensors")
            .field("unet", &self.unet.len())
            .field("vae", &self.vae.len())
            .field("text", &self.text.len())
            .finish()
    }
}

/// Builds each component from a recording random source, so the tensors are exactly those the
/// model code asks for.
pub fn tiny_tensors(config: &ModelConfig, seed: u64) -> Result<TinyTensors> {
    let dev = Device::Cpu;
    let u = Arc::new(Weights::random(seed, true, DType::F32, &dev));
    UNet::new(&u.root(), &config.unet, Padding::ZEROS)?;
    let v = Arc::new(Weights::random(seed + 1, true, DType::F32, &dev));
    Vae::new(&v.root(), &config.vae, Padding::ZEROS)?;
    let t = Arc::new(Weights::random(seed + 2, true, DType::F32, &dev));
    ClipTextModel::new(&t.root(), &config.text_encoders[0])?;
    Ok(TinyTensors {
        unet: u.recorded(),
        vae: v.recorded(),
        text: t.recorded(),
    })
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::BadConfig {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    fs::write(path, text + "\n").map_err(io(path))
}

/// Writes tensors through a temporary name, so a crash never leaves a half-written weight file
/// under the real one.
pub fn save_safetensors(path: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    let tmp = path.with_extension("safetensors.part");
    let map: HashMap<String, Tensor> = tensors.clone().into_iter().collect();
    candle_core::safetensors::save(&map, &tmp).map_err(|e| Error::Io {
        path: tmp.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Writes a diffusers folder: `model_index.json` and the unet, vae, text_encoder, tokenizer and
/// scheduler components.
pub fn write_diffusers(dir: &Path, seed: u64, inpaint: bool) -> Result<()> {
    write_random(dir, &tiny_config(inpaint), seed, DType::F32)
}

/// Writes a diffusers folder of `config` with seeded random weights stored as `dtype`: tiny
/// test models, or real-size architectures for benchmarks (speed does not depend on the
/// values).
pub fn write_random(dir: &Path, config: &ModelConfig, seed: u64, dtype: DType) -> Result<()> {
    let inpaint = config.unet.in_channels == 9;
    let t = tiny_tensors(config, seed)?;
    let cast = |m: &BTreeMap<String, Tensor>| -> Result<BTreeMap<String, Tensor>> {
        m.iter()
            .map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?)))
            .collect()
    };
    for sub in ["unet", "vae", "text_encoder", "tokenizer", "scheduler"] {
        fs::create_dir_all(dir.join(sub)).map_err(io(dir.join(sub)))?;
    }
    let class = if inpaint {
        "StableDiffusionInpaintPipeline"
    } else {
        "StableDiffusionPipeline"
    };
    write_json(
        &dir.join("model_index.json"),
        &serde_json::json!({
            "_class_name": class,
            "_diffusers_version": "0.30.0",
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler"],
        }),
    )?;
    write_json(&dir.join("unet/config.json"), &config.unet)?;
    write_json(&dir.join("vae/config.json"), &config.vae)?;
    write_json(
        &dir.join("text_encoder/config.json"),
        &config.text_encoders[0],
    )?;
    write_json(
        &dir.join("tokenizer/tokenizer_config.json"),
        &serde_json::json!({"pad_token": "<|endoftext|>", "model_max_length": 77}),
    )?;
    write_json(
        &dir.join("scheduler/scheduler_config.json"),
        &config.scheduler,
    )?;
    save_safetensors(
        &dir.join("unet/diffusion_pytorch_model.safetensors"),
        &cast(&t.unet)?,
    )?;
    save_safetensors(
        &dir.join("vae/diffusion_pytorch_model.safetensors"),
        &cast(&t.vae)?,
    )?;
    save_safetensors(&dir.join("text_encoder/model.safetensors"), &cast(&t.text)?)?;
    Ok(())
}

/// Writes the same tiny model as one A1111-style checkpoint with ldm names, plus the sidecar
/// `<name>.config.json` a non-standard single file needs.
pub fn write_single_file(path: &Path, seed: u64) -> Result<()> {
    let config = tiny_config(false);
    let t = tiny_tensors(&config, seed)?;
    let attention: Vec<bool> = (0..config.unet.block_out_channels.len())
        .map(|i| config.unet.has_attention(i))
        .collect();
    let maps = [
        (
            &t.unet,
            KeyMap::LdmUnet {
                layers_per_block: config.unet.layers_per_block,
                attention,
            },
        ),
        (
            &t.vae,
            KeyMap::LdmVae {
                levels: config.vae.block_out_channels.len(),
            },
        ),
        (
            &t.text,
            KeyMap::HfClip {
                prefix: "cond_stage_model.transformer.".into(),
            },
        ),
    ];
    let mut all = BTreeMap::new();
    for (tensors, map) in maps {
        for (name, tensor) in tensors {
            let key = match map.map(name) {
                Mapped::Same => name.clone(),
                Mapped::To(k, _) => k,
            };
            // ldm keeps the VAE's attention projections as 1×1 convolutions.
            let tensor = if key.contains("mid.attn_1.") && tensor.rank() == 2 {
                let (o, i) = tensor.dims2()?;
                tensor.reshape((o, i, 1, 1))?
            } else {
                tensor.clone()
            };
            all.insert(key, tensor);
        }
    }
    save_safetensors(path, &all)?;
    write_json(&path.with_extension("config.json"), &config)
}

/// Writes a kohya LoRA of `rank` for every attention projection of the tiny UNet and the text
/// encoder's q projections, with alpha = rank (so the merge scale is exactly the strength).
pub fn write_lora(
    path: &Path,
    seed: u64,
    rank: usize,
) -> Result<BTreeMap<String, (Tensor, Tensor)>> {
    let config = tiny_config(false);
    let t = tiny_tensors(&config, TINY_SEED)?;
    let mut out = BTreeMap::new();
    let mut pairs = BTreeMap::new();
    let targets = t
        .unet
        .iter()
        .filter(|(n, _)| n.contains(".attn1.to_q.weight") || n.contains(".attn2.to_v.weight"))
        .map(|(n, w)| {
            (
                format!(
                    "lora_unet_{}",
                    n.trim_end_matches(".weight").replace('.', "_")
                ),
                w,
            )
        })
        .chain(
            t.text
                .iter()
                .filter(|(n, _)| n.ends_with("self_attn.q_proj.weight"))
                .map(|(n, w)| {
                    (
                        format!(
                            "lora_te_{}",
                            n.trim_end_matches(".weight").replace('.', "_")
                        ),
                        w,
                    )
                }),
        );
    for (i, (name, w)) in targets.enumerate() {
        let (o, inp) = w.dims2()?;
        let dev = Device::Cpu;
        let up = Tensor::from_vec(normal_vec(seed + 2 * i as u64, o * rank), (o, rank), &dev)?
            .affine(0.1, 0.0)?;
        let down = Tensor::from_vec(
            normal_vec(seed + 2 * i as u64 + 1, rank * inp),
            (rank, inp),
            &dev,
        )?
        .affine(0.1, 0.0)?;
        out.insert(format!("{name}.lora_up.weight"), up.clone());
        out.insert(format!("{name}.lora_down.weight"), down.clone());
        out.insert(
            format!("{name}.alpha"),
            Tensor::new(&[rank as f32], &dev)?.squeeze(0)?,
        );
        pairs.insert(name, (up, down));
    }
    save_safetensors(path, &out)?;
    Ok(pairs)
}

/// Writes a ControlNet for a model of `unet`'s shape as a diffusers folder (`config.json`,
/// `diffusion_pytorch_model.safetensors`) with seeded random weights; its conditioning image is
/// `factor`× the latent (the model's VAE factor: 8 for Stable Diffusion, 2 for the offline
/// model).
pub fn write_controlnet(
    dir: &Path,
    unet: &crate::config::UNetConfig,
    factor: usize,
    seed: u64,
) -> Result<()> {
    let mut cfg = crate::controlnet::ControlNetConfig::for_unet(unet);
    let stages = factor.max(1).trailing_zeros() as usize + 1;
    cfg.conditioning_embedding_out_channels = (0..stages).map(|i| 8 << (i / 2)).collect();
    write_controlnet_config(dir, &cfg, seed)
}

/// Writes a ControlNet of `cfg` (a real-size one for benchmarks: `ControlNetConfig::for_unet`
/// of a preset) with seeded random weights.
pub fn write_controlnet_config(
    dir: &Path,
    cfg: &crate::controlnet::ControlNetConfig,
    seed: u64,
) -> Result<()> {
    let w = Arc::new(Weights::random(seed, true, DType::F32, &Device::Cpu));
    crate::controlnet::ControlNet::new(&w.root(), cfg, Padding::ZEROS)?;
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut conf = serde_json::to_value(cfg).map_err(|e| Error::BadConfig {
        path: dir.to_owned(),
        reason: e.to_string(),
    })?;
    if let Some(o) = conf.as_object_mut() {
        o.insert("_class_name".into(), "ControlNetModel".into());
    }
    write_json(&dir.join("config.json"), &conf)?;
    save_safetensors(
        &dir.join("diffusion_pytorch_model.safetensors"),
        &w.recorded(),
    )
}

/// Writes an AnimateDiff motion adapter for a UNet of `unet`'s shape as a diffusers folder
/// (`config.json`, `diffusion_pytorch_model.safetensors`) with seeded random weights (not
/// AnimateDiff's zeroed output projections, so the modules change what the UNet predicts).
pub fn write_motion_adapter(dir: &Path, unet: &crate::config::UNetConfig, seed: u64) -> Result<()> {
    let cfg = crate::motion::MotionConfig {
        block_out_channels: unet.block_out_channels.clone(),
        motion_layers_per_block: unet.layers_per_block,
        motion_transformer_layers_per_block: 1,
        motion_mid_block_layers_per_block: 1,
        motion_transformer_layers_per_mid_block: 1,
        motion_num_attention_heads: 2,
        motion_norm_num_groups: unet.norm_num_groups,
        motion_max_seq_length: 32,
        use_motion_mid_block: true,
    };
    write_motion_config(dir, &cfg, seed)
}

/// Writes a motion adapter of `cfg` (a real-size one for benchmarks: `MotionConfig::sd15`) with
/// seeded random weights.
pub fn write_motion_config(dir: &Path, cfg: &crate::motion::MotionConfig, seed: u64) -> Result<()> {
    let w = Arc::new(Weights::random(seed, true, DType::F32, &Device::Cpu));
    crate::motion::MotionAdapter::new(&w.root(), cfg)?;
    fs::create_dir_all(dir).map_err(io(dir))?;
    write_json(&dir.join("config.json"), cfg)?;
    save_safetensors(
        &dir.join("diffusion_pytorch_model.safetensors"),
        &w.recorded(),
    )
}

/// Writes a TAESD-shaped tiny autoencoder decoder (diffusers `AutoencoderTiny` folder,
/// decoder only, `width` channels) with seeded random weights: the tiny model carries one so
/// `--decoder tiny` runs on a fresh install.
pub fn write_tiny_decoder(dir: &Path, width: usize, seed: u64) -> Result<()> {
    let cfg = crate::taesd::TinyConfig {
        decoder_block_out_channels: vec![width; 4],
        ..crate::taesd::TinyConfig::default()
    };
    let w = Arc::new(Weights::random(seed, true, DType::F32, &Device::Cpu));
    crate::taesd::TinyDecoder::new(&w.root(), cfg.clone(), dir)?;
    fs::create_dir_all(dir).map_err(io(dir))?;
    write_json(
        &dir.join("config.json"),
        &serde_json::json!({
            "_class_name": "AutoencoderTiny",
            "decoder_block_out_channels": cfg.decoder_block_out_channels,
            "num_decoder_blocks": cfg.num_decoder_blocks,
            "latent_channels": cfg.latent_channels,
            "scaling_factor": 1.0,
        }),
    )?;
    save_safetensors(
        &dir.join("diffusion_pytorch_model.safetensors"),
        &w.recorded(),
    )
}

/// Writes RIFE 4.x IFNet weights (block widths `widths`, RIFE 4.6's are 192, 128, 96, 64) with
/// seeded random values under the `module.` names a converted flownet file has: for
/// benchmarks, whose speed does not depend on the values.
pub fn write_rife(path: &Path, widths: [usize; 4], seed: u64) -> Result<()> {
    let mut t = BTreeMap::new();
    let mut put = |name: String, shape: &[usize], std: f32, k: &mut u64| -> Result<()> {
        *k += 1;
        let n: usize = shape.iter().product();
        let data: Vec<f32> = crate::weights::normal_vec(seed ^ k.wrapping_mul(0x9e37), n)
            .into_iter()
            .map(|v| v * std)
            .collect();
        t.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
        Ok(())
    };
    let mut k = 0u64;
    for (i, c) in widths.iter().copied().enumerate() {
        let b = format!("module.block{i}");
        let cin = if i == 0 { 7 } else { 12 };
        let h = c / 2;
        put(
            format!("{b}.conv0.0.0.weight"),
            &[h, cin, 3, 3],
            (1.0 / (cin * 9) as f32).sqrt(),
            &mut k,
        )?;
        put(format!("{b}.conv0.0.0.bias"), &[h], 0.01, &mut k)?;
        put(
            format!("{b}.conv0.1.0.weight"),
            &[c, h, 3, 3],
            (1.0 / (h * 9) as f32).sqrt(),
            &mut k,
        )?;
        put(format!("{b}.conv0.1.0.bias"), &[c], 0.01, &mut k)?;
        for r in 0..8 {
            put(
                format!("{b}.convblock.{r}.conv.weight"),
                &[c, c, 3, 3],
                (0.1 / (c * 9) as f32).sqrt(),
                &mut k,
            )?;
            put(format!("{b}.convblock.{r}.conv.bias"), &[c], 0.01, &mut k)?;
            put(
                format!("{b}.convblock.{r}.beta"),
                &[1, c, 1, 1],
                0.1,
                &mut k,
            )?;
        }
        put(
            format!("{b}.lastconv.0.weight"),
            &[c, 24, 4, 4],
            (0.1 / (c * 16) as f32).sqrt(),
            &mut k,
        )?;
        put(format!("{b}.lastconv.0.bias"), &[24], 0.01, &mut k)?;
    }
    save_safetensors(path, &t)
}
