//! Model configs as diffusers writes them (`unet/config.json`, `vae/config.json`,
//! `text_encoder/config.json`, `scheduler/scheduler_config.json`). They are public data: a tiny
//! config and a real one go through the same code.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// diffusers writes some per-block fields either as one number or as a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(usize),
    Many(Vec<usize>),
}

impl OneOrMany {
    pub fn at(&self, i: usize) -> usize {
        match self {
            OneOrMany::One(n) => *n,
            OneOrMany::Many(v) => v.get(i).or(v.last()).copied().unwrap_or(1),
        }
    }
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    /// diffusers' historical name for the number of heads.
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
    /// `"text_time"` for SDXL: pooled text embeddings and size/crop ids join the time embedding.
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    #[serde(default)]
    pub sample_size: Option<usize>,
}

impl UNetConfig {
    pub fn heads(&self, level: usize) -> usize {
        self.num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim)
            .at(level)
    }

    pub fn has_attention(&self, level: usize) -> bool {
        self.down_block_types
            .get(level)
            .is_some_and(|t| t.starts_with("CrossAttn"))
    }

    pub fn is_sdxl(&self) -> bool {
        self.addition_embed_type.as_deref() == Some("text_time")
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| Error::BadConfig {
            path: path.to_owned(),
            reason,
        };
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(bad(format!(
                "block_out_channels ({n}), down_block_types ({}) and up_block_types ({}) must have the same length",
                self.down_block_types.len(),
                self.up_block_types.len()
            )));
        }
        for t in self.down_block_types.iter().chain(&self.up_block_types) {
            if !matches!(
                t.as_str(),
                "CrossAttnDownBlock2D" | "DownBlock2D" | "CrossAttnUpBlock2D" | "UpBlock2D"
            ) {
                return Err(bad(format!("block type {t} is not supported")));
            }
        }
        for (i, c) in self.block_out_channels.iter().enumerate() {
            if c % self.norm_num_groups != 0 {
                return Err(bad(format!(
                    "block_out_channels[{i}] = {c} is not a multiple of norm_num_groups {}",
                    self.norm_num_groups
                )));
            }
            if self.has_attention(i) && c % self.heads(i) != 0 {
                return Err(bad(format!(
                    "block_out_channels[{i}] = {c} is not a multiple of its {} attention heads",
                    self.heads(i)
                )));
            }
        }
        if self.is_sdxl()
            && (self.addition_time_embed_dim.is_none()
                || self.projection_class_embeddings_input_dim.is_none())
        {
            return Err(bad(
                "addition_embed_type text_time needs addition_time_embed_dim and projection_class_embeddings_input_dim".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    #[serde(default = "three")]
    pub in_channels: usize,
    #[serde(default = "three")]
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub latent_channels: usize,
    #[serde(default = "groups")]
    pub norm_num_groups: usize,
    #[serde(default = "scaling")]
    pub scaling_factor: f64,
    #[serde(default)]
    pub sample_size: Option<usize>,
}

fn three() -> usize {
    3
}
fn scaling() -> f64 {
    0.18215
}

impl VaeConfig {
    /// Pixels per latent cell: 8 for every Stable Diffusion VAE.
    pub fn factor(&self) -> usize {
        1 << (self.block_out_channels.len().saturating_sub(1))
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        for (i, c) in self.block_out_channels.iter().enumerate() {
            if self.norm_num_groups == 0 || c % self.norm_num_groups != 0 {
                return Err(Error::BadConfig {
                    path: path.to_owned(),
                    reason: format!(
                        "block_out_channels[{i}] = {c} is not a multiple of norm_num_groups {}",
                        self.norm_num_groups
                    ),
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "eps5")]
    pub layer_norm_eps: f64,
    /// Set for `CLIPTextModelWithProjection` (SDXL's second encoder).
    #[serde(default)]
    pub projection_dim: Option<usize>,
    #[serde(default)]
    pub architectures: Vec<String>,
}

fn quick_gelu() -> String {
    "quick_gelu".into()
}

impl ClipConfig {
    pub fn with_projection(&self) -> bool {
        self.architectures
            .iter()
            .any(|a| a == "CLIPTextModelWithProjection")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerConfig {
    #[serde(default = "beta_start")]
    pub beta_start: f64,
    #[serde(default = "beta_end")]
    pub beta_end: f64,
    #[serde(default = "scaled_linear")]
    pub beta_schedule: String,
    #[serde(default = "train_steps")]
    pub num_train_timesteps: usize,
    #[serde(default = "epsilon")]
    pub prediction_type: String,
    /// `leading` (SD1.5/2.1), `trailing` (the Turbo models) or `linspace`.
    #[serde(default = "leading")]
    pub timestep_spacing: String,
    #[serde(default)]
    pub steps_offset: usize,
    #[serde(default, rename = "_class_name")]
    pub class_name: Option<String>,
    /// DDIM clamps its predicted x₀ to ±`clip_sample_range`. Absent means false, as Stable
    /// Diffusion's own configs say.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clip_sample: bool,
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    pub clip_sample_range: f64,
    /// DDIM's ᾱ after the last step: 1, or (false, as SD's configs say) ᾱ at t = 0.
    #[serde(default, skip_serializing_if = "is_false")]
    pub set_alpha_to_one: bool,
    /// Dynamic thresholding (pixel-space models): refused by name.
    #[serde(default, skip_serializing_if = "is_false")]
    pub thresholding: bool,
    /// Zero-terminal-SNR rescaling: refused by name.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rescale_betas_zero_snr: bool,
    /// LCM: the distillation's schedule length, which its timesteps are drawn from.
    #[serde(default = "fifty", skip_serializing_if = "is_fifty")]
    pub original_inference_steps: usize,
    /// LCM: the scale of the timestep in its boundary condition (c_skip, c_out).
    #[serde(default = "ten", skip_serializing_if = "is_ten")]
    pub timestep_scaling: f64,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn one_f64() -> f64 {
    1.0
}
fn is_one(x: &f64) -> bool {
    *x == 1.0
}

fn fifty() -> usize {
    50
}
fn is_fifty(x: &usize) -> bool {
    *x == 50
}
fn ten() -> f64 {
    10.0
}
fn is_ten(x: &f64) -> bool {
    *x == 10.0
}

fn beta_start() -> f64 {
    0.00085
}
fn beta_end() -> f64 {
    0.012
}
fn scaled_linear() -> String {
    "scaled_linear".into()
}
fn train_steps() -> usize {
    1000
}
fn epsilon() -> String {
    "epsilon".into()
}
fn leading() -> String {
    "leading".into()
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            beta_start: beta_start(),
            beta_end: beta_end(),
            beta_schedule: scaled_linear(),
            num_train_timesteps: train_steps(),
            prediction_type: epsilon(),
            timestep_spacing: leading(),
            steps_offset: 1,
            class_name: None,
            clip_sample: false,
            clip_sample_range: 1.0,
            set_alpha_to_one: false,
            thresholding: false,
            rescale_betas_zero_snr: false,
            original_inference_steps: 50,
            timestep_scaling: 10.0,
        }
    }
}

/// `model_index.json`: which pipeline and which components a diffusers folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelIndex {
    #[serde(rename = "_class_name")]
    pub class_name: String,
    #[serde(flatten)]
    pub components: serde_json::Map<String, serde_json::Value>,
}

impl ModelIndex {
    pub fn is_sdxl(&self) -> bool {
        self.class_name.contains("XL")
    }

    pub fn is_inpaint(&self) -> bool {
        self.class_name.contains("Inpaint")
    }
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(crate::error::io(path))?;
    serde_json::from_str(&text).map_err(|e| Error::BadConfig {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Real configs, for benchmarks and preflight estimates of models not on disk.
pub mod presets {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    pub fn sd15_unet() -> UNetConfig {
        UNetConfig {
            in_channels: 4,
            out_channels: 4,
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: 2,
            down_block_types: s(&[
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ]),
            up_block_types: s(&[
                "UpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
            ]),
            attention_head_dim: OneOrMany::One(8),
            num_attention_heads: None,
            cross_attention_dim: 768,
            transformer_layers_per_block: OneOrMany::One(1),
            use_linear_projection: false,
            norm_num_groups: 32,
            norm_eps: 1e-5,
            addition_embed_type: None,
            addition_time_embed_dim: None,
            projection_class_embeddings_input_dim: None,
            sample_size: Some(64),
        }
    }

    pub fn sd21_unet() -> UNetConfig {
        UNetConfig {
            attention_head_dim: OneOrMany::Many(vec![5, 10, 20, 20]),
            cross_attention_dim: 1024,
            use_linear_projection: true,
            sample_size: Some(96),
            ..sd15_unet()
        }
    }

    pub fn sdxl_unet() -> UNetConfig {
        UNetConfig {
            block_out_channels: vec![320, 640, 1280],
            down_block_types: s(&[
                "DownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
            ]),
            up_block_types: s(&["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]),
            attention_head_dim: OneOrMany::Many(vec![5, 10, 20]),
            cross_attention_dim: 2048,
            transformer_layers_per_block: OneOrMany::Many(vec![1, 2, 10]),
            use_linear_projection: true,
            addition_embed_type: Some("text_time".into()),
            addition_time_embed_dim: Some(256),
            projection_class_embeddings_input_dim: Some(2816),
            sample_size: Some(128),
            ..sd15_unet()
        }
    }

    pub fn sd_vae() -> VaeConfig {
        VaeConfig {
            in_channels: 3,
            out_channels: 3,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            latent_channels: 4,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
            sample_size: Some(512),
        }
    }

    pub fn clip_l() -> ClipConfig {
        ClipConfig {
            vocab_size: 49408,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            projection_dim: Some(768),
            architectures: vec!["CLIPTextModel".into()],
        }
    }
}
