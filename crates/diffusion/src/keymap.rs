//! Tensor names of single-file checkpoints (the original `ldm` layout A1111 and Civitai use)
//! expressed from diffusers names, which is what the model code asks for.

use candle_core::Tensor;

use crate::error::Result;

/// How a stored tensor becomes the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    None,
    /// Rows `start..start+len` (OpenCLIP fuses q, k, v into one `in_proj`).
    Rows {
        start: usize,
        len: usize,
    },
    /// OpenCLIP stores `text_projection` as `x @ P`; diffusers as a linear layer.
    Transpose,
}

impl Transform {
    pub fn apply(self, t: Tensor) -> Result<Tensor> {
        Ok(match self {
            Transform::None => t,
            Transform::Rows { start, len } => t.narrow(0, start, len)?,
            Transform::Transpose => t.t()?.contiguous()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    Same,
    To(String, Transform),
}

/// Which naming a component's file uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMap {
    /// diffusers names as they are.
    Diffusers,
    /// `model.diffusion_model.*` of an ldm checkpoint.
    LdmUnet {
        layers_per_block: usize,
        /// Per level: does the down/up block have attentions?
        attention: Vec<bool>,
    },
    /// `first_stage_model.*`.
    LdmVae { levels: usize },
    /// A ControlNet under its original names (`input_hint_block`, `zero_convs`,
    /// `middle_block_out`, the UNet's `input_blocks`), after `prefix` (`control_model.` or none);
    /// `hint_blocks` convolutions between the hint's first and last.
    LdmControlNet {
        prefix: String,
        layers_per_block: usize,
        hint_blocks: usize,
    },
    /// An OpenAI CLIP (HF transformers names) under `prefix`, e.g. `cond_stage_model.transformer.`.
    HfClip { prefix: String },
    /// An OpenCLIP text tower under `prefix` (`conditioner.embedders.1.model.`), hidden size `width`.
    OpenClip { prefix: String, width: usize },
    /// An AnimateDiff motion adapter under its original names (`temporal_transformer`,
    /// `attention_blocks`, `norms`, `ff_norm`).
    AnimateDiff,
    /// Diffusers names with `prefix` left out: the CLIP text encoders transformers 5 saves
    /// (`embeddings.…`, `encoder.…` where transformers 4 wrote `text_model.embeddings.…`).
    Strip { prefix: String },
}

impl KeyMap {
    pub fn map(&self, name: &str) -> Mapped {
        match self {
            KeyMap::Diffusers => Mapped::Same,
            KeyMap::LdmUnet {
                layers_per_block,
                attention,
            } => Mapped::To(
                format!(
                    "model.diffusion_model.{}",
                    ldm_unet(name, *layers_per_block, attention)
                ),
                Transform::None,
            ),
            KeyMap::LdmVae { levels } => Mapped::To(
                format!("first_stage_model.{}", ldm_vae(name, *levels)),
                Transform::None,
            ),
            KeyMap::LdmControlNet {
                prefix,
                layers_per_block,
                hint_blocks,
            } => Mapped::To(
                format!(
                    "{prefix}{}",
                    ldm_controlnet(name, *layers_per_block, *hint_blocks)
                ),
                Transform::None,
            ),
            KeyMap::HfClip { prefix } => Mapped::To(format!("{prefix}{name}"), Transform::None),
            KeyMap::AnimateDiff => Mapped::To(animatediff(name), Transform::None),
            KeyMap::Strip { prefix } => match name.strip_prefix(prefix.as_str()) {
                Some(rest) => Mapped::To(rest.to_owned(), Transform::None),
                None => Mapped::Same,
            },
            KeyMap::OpenClip { prefix, width } => {
                let (key, t) = open_clip(name, *width);
                Mapped::To(format!("{prefix}{key}"), t)
            }
        }
    }
}

/// diffusers MotionAdapter name → AnimateDiff's: `temporal_transformer.` after the module's
/// index, `attn1/2` → `attention_blocks.0/1`, `norm1/2` → `norms.0/1`, `norm3` → `ff_norm`.
pub fn animatediff(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    let head = match parts.first() {
        Some(&"down_blocks") | Some(&"up_blocks") => 4,
        _ => 3,
    };
    if parts.len() <= head {
        return name.to_owned();
    }
    let rest = parts[head..]
        .iter()
        .map(|p| match *p {
            "attn1" => "attention_blocks.0",
            "attn2" => "attention_blocks.1",
            "norm1" => "norms.0",
            "norm2" => "norms.1",
            "norm3" => "ff_norm",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(".");
    format!("{}.temporal_transformer.{rest}", parts[..head].join("."))
}

/// AnimateDiff's name → diffusers' MotionAdapter name (the inverse of [`animatediff`]);
/// a diffusers name comes back as it is.
pub fn animatediff_to_diffusers(name: &str) -> String {
    if !name.contains(".temporal_transformer.") {
        return name.to_owned();
    }
    name.replace(".temporal_transformer.", ".")
        .split('.')
        .collect::<Vec<_>>()
        .join(".")
        .replace("attention_blocks.0", "attn1")
        .replace("attention_blocks.1", "attn2")
        .replace("norms.0", "norm1")
        .replace("norms.1", "norm2")
        .replace("ff_norm", "norm3")
}

fn split_idx<'a>(rest: &'a str, head: &str) -> Option<(usize, &'a str)> {
    let r = rest.strip_prefix(head)?;
    let (n, tail) = r.split_once('.')?;
    Some((n.parse().ok()?, tail))
}

fn resnet_ldm(tail: &str) -> String {
    let pairs = [
        ("norm1.", "in_layers.0."),
        ("conv1.", "in_layers.2."),
        ("time_emb_proj.", "emb_layers.1."),
        ("norm2.", "out_layers.0."),
        ("conv2.", "out_layers.3."),
        ("conv_shortcut.", "skip_connection."),
    ];
    for (d, l) in pairs {
        if let Some(t) = tail.strip_prefix(d) {
            return format!("{l}{t}");
        }
    }
    tail.to_owned()
}

/// diffusers UNet name → ldm name (without `model.diffusion_model.`).
pub fn ldm_unet(name: &str, lpb: usize, attention: &[bool]) -> String {
    let simple = [
        ("conv_in.", "input_blocks.0.0."),
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("add_embedding.linear_1.", "label_emb.0.0."),
        ("add_embedding.linear_2.", "label_emb.0.2."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
    ];
    for (d, l) in simple {
        if let Some(t) = name.strip_prefix(d) {
            return format!("{l}{t}");
        }
    }
    if let Some(rest) = name.strip_prefix("down_blocks.")
        && let Some((i, tail)) = split_idx(rest, "")
    {
        if let Some((j, t)) = split_idx(tail, "resnets.") {
            return format!("input_blocks.{}.0.{}", 1 + i * (lpb + 1) + j, resnet_ldm(t));
        }
        if let Some((j, t)) = split_idx(tail, "attentions.") {
            return format!("input_blocks.{}.1.{t}", 1 + i * (lpb + 1) + j);
        }
        if let Some(t) = tail.strip_prefix("downsamplers.0.conv.") {
            return format!("input_blocks.{}.0.op.{t}", (i + 1) * (lpb + 1));
        }
    }
    if let Some(rest) = name.strip_prefix("mid_block.") {
        if let Some((j, t)) = split_idx(rest, "resnets.") {
            return format!("middle_block.{}.{}", j * 2, resnet_ldm(t));
        }
        if let Some(t) = rest.strip_prefix("attentions.0.") {
            return format!("middle_block.1.{t}");
        }
    }
    if let Some(rest) = name.strip_prefix("up_blocks.")
        && let Some((i, tail)) = split_idx(rest, "")
    {
        if let Some((j, t)) = split_idx(tail, "resnets.") {
            return format!("output_blocks.{}.0.{}", i * (lpb + 1) + j, resnet_ldm(t));
        }
        if let Some((j, t)) = split_idx(tail, "attentions.") {
            return format!("output_blocks.{}.1.{t}", i * (lpb + 1) + j);
        }
        if let Some(t) = tail.strip_prefix("upsamplers.0.conv.") {
            // Up block i mirrors down level (levels-1-i); its upsampler follows the attention.
            let level = attention.len().saturating_sub(1 + i);
            let slot = if attention.get(level).copied().unwrap_or(false) {
                2
            } else {
                1
            };
            return format!("output_blocks.{}.{slot}.conv.{t}", i * (lpb + 1) + lpb);
        }
    }
    name.to_owned()
}

/// diffusers ControlNet name → original ControlNet name (without `control_model.`).
pub fn ldm_controlnet(name: &str, lpb: usize, hint_blocks: usize) -> String {
    if let Some(t) = name.strip_prefix("controlnet_cond_embedding.conv_in.") {
        return format!("input_hint_block.0.{t}");
    }
    if let Some(t) = name.strip_prefix("controlnet_cond_embedding.conv_out.") {
        return format!("input_hint_block.{}.{t}", 2 * hint_blocks + 2);
    }
    if let Some((k, t)) = split_idx(name, "controlnet_cond_embedding.blocks.") {
        return format!("input_hint_block.{}.{t}", 2 * k + 2);
    }
    if let Some((k, t)) = split_idx(name, "controlnet_down_blocks.") {
        return format!("zero_convs.{k}.0.{t}");
    }
    if let Some(t) = name.strip_prefix("controlnet_mid_block.") {
        return format!("middle_block_out.0.{t}");
    }
    // The UNet's own layers; a ControlNet has no up blocks, so the attention list is unused.
    ldm_unet(name, lpb, &[])
}

/// An ldm UNet attention path (`input_blocks.4.1.transformer_blocks.0.attn1.to_q`) as
/// diffusers names it (`down_blocks.1.attentions.0.…`), for `lpb` layers per block; `None` for
/// anything that is not inside an attention.
pub fn ldm_unet_to_diffusers(name: &str, lpb: usize) -> Option<String> {
    let per = lpb + 1;
    let split = |rest: &str| -> Option<(usize, String)> {
        let (n, tail) = rest.split_once('.')?;
        let tail = tail.strip_prefix("1.")?;
        Some((n.parse().ok()?, tail.to_owned()))
    };
    if let Some(rest) = name.strip_prefix("input_blocks.") {
        let (n, tail) = split(rest)?;
        let n = n.checked_sub(1)?;
        return Some(format!(
            "down_blocks.{}.attentions.{}.{tail}",
            n / per,
            n % per
        ));
    }
    if let Some(tail) = name.strip_prefix("middle_block.1.") {
        return Some(format!("mid_block.attentions.0.{tail}"));
    }
    if let Some(rest) = name.strip_prefix("output_blocks.") {
        let (n, tail) = split(rest)?;
        return Some(format!(
            "up_blocks.{}.attentions.{}.{tail}",
            n / per,
            n % per
        ));
    }
    None
}

fn vae_resnet(tail: &str) -> String {
    tail.replace("conv_shortcut.", "nin_shortcut.")
}

fn vae_mid(rest: &str) -> String {
    if let Some((j, t)) = split_idx(rest, "resnets.") {
        return format!("mid.block_{}.{}", j + 1, vae_resnet(t));
    }
    if let Some(t) = rest.strip_prefix("attentions.0.") {
        let t = t
            .replace("group_norm.", "norm.")
            .replace("to_q.", "q.")
            .replace("to_k.", "k.")
            .replace("to_v.", "v.")
            .replace("to_out.0.", "proj_out.");
        return format!("mid.attn_1.{t}");
    }
    rest.to_owned()
}

/// diffusers VAE name → ldm name (without `first_stage_model.`).
pub fn ldm_vae(name: &str, levels: usize) -> String {
    for side in ["encoder.", "decoder."] {
        let Some(rest) = name.strip_prefix(side) else {
            continue;
        };
        let mapped = if let Some(t) = rest.strip_prefix("mid_block.") {
            vae_mid(t)
        } else if let Some(t) = rest.strip_prefix("conv_norm_out.") {
            format!("norm_out.{t}")
        } else if let Some(r) = rest.strip_prefix("down_blocks.")
            && let Some((i, tail)) = split_idx(r, "")
        {
            if let Some((j, t)) = split_idx(tail, "resnets.") {
                format!("down.{i}.block.{j}.{}", vae_resnet(t))
            } else if let Some(t) = tail.strip_prefix("downsamplers.0.conv.") {
                format!("down.{i}.downsample.conv.{t}")
            } else {
                rest.to_owned()
            }
        } else if let Some(r) = rest.strip_prefix("up_blocks.")
            && let Some((i, tail)) = split_idx(r, "")
        {
            let level = levels.saturating_sub(1 + i);
            if let Some((j, t)) = split_idx(tail, "resnets.") {
                format!("up.{level}.block.{j}.{}", vae_resnet(t))
            } else if let Some(t) = tail.strip_prefix("upsamplers.0.conv.") {
                format!("up.{level}.upsample.conv.{t}")
            } else {
                rest.to_owned()
            }
        } else {
            rest.to_owned()
        };
        return format!("{side}{mapped}");
    }
    name.to_owned()
}

/// diffusers CLIP text model name → OpenCLIP name and how to cut it.
pub fn open_clip(name: &str, width: usize) -> (String, Transform) {
    let n = Transform::None;
    if name == "text_model.embeddings.token_embedding.weight" {
        return ("token_embedding.weight".into(), n);
    }
    if name == "text_model.embeddings.position_embedding.weight" {
        return ("positional_embedding".into(), n);
    }
    if name == "text_projection.weight" {
        return ("text_projection".into(), Transform::Transpose);
    }
    if let Some(t) = name.strip_prefix("text_model.final_layer_norm.") {
        return (format!("ln_final.{t}"), n);
    }
    if let Some(rest) = name.strip_prefix("text_model.encoder.layers.")
        && let Some((i, tail)) = split_idx(rest, "")
    {
        let base = format!("transformer.resblocks.{i}.");
        for (k, idx) in [("q_proj.", 0), ("k_proj.", 1), ("v_proj.", 2)] {
            if let Some(t) = tail.strip_prefix(&format!("self_attn.{k}")) {
                return (
                    format!("{base}attn.in_proj_{t}"),
                    Transform::Rows {
                        start: idx * width,
                        len: width,
                    },
                );
            }
        }
        let pairs = [
            ("self_attn.out_proj.", "attn.out_proj."),
            ("layer_norm1.", "ln_1."),
            ("layer_norm2.", "ln_2."),
            ("mlp.fc1.", "mlp.c_fc."),
            ("mlp.fc2.", "mlp.c_proj."),
        ];
        for (d, l) in pairs {
            if let Some(t) = tail.strip_prefix(d) {
                return (format!("{base}{l}{t}"), n);
            }
        }
    }
    (name.to_owned(), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd15_unet_names_match_the_ldm_checkpoint() {
        // Names from the real v1-5-pruned-emaonly.safetensors.
        let attn = [true, true, true, false];
        let cases = [
            ("conv_in.weight", "input_blocks.0.0.weight"),
            (
                "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
                "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
            ),
            (
                "down_blocks.1.resnets.1.conv1.weight",
                "input_blocks.5.0.in_layers.2.weight",
            ),
            (
                "down_blocks.1.resnets.0.conv_shortcut.weight",
                "input_blocks.4.0.skip_connection.weight",
            ),
            (
                "down_blocks.2.downsamplers.0.conv.weight",
                "input_blocks.9.0.op.weight",
            ),
            (
                "down_blocks.3.resnets.1.time_emb_proj.bias",
                "input_blocks.11.0.emb_layers.1.bias",
            ),
            (
                "mid_block.resnets.1.norm2.weight",
                "middle_block.2.out_layers.0.weight",
            ),
            (
                "mid_block.attentions.0.proj_in.weight",
                "middle_block.1.proj_in.weight",
            ),
            (
                "up_blocks.0.upsamplers.0.conv.weight",
                "output_blocks.2.1.conv.weight",
            ),
            (
                "up_blocks.1.upsamplers.0.conv.bias",
                "output_blocks.5.2.conv.bias",
            ),
            (
                "up_blocks.3.attentions.2.proj_out.weight",
                "output_blocks.11.1.proj_out.weight",
            ),
            (
                "up_blocks.2.resnets.2.conv2.weight",
                "output_blocks.8.0.out_layers.3.weight",
            ),
            ("time_embedding.linear_2.weight", "time_embed.2.weight"),
            ("conv_norm_out.bias", "out.0.bias"),
        ];
        for (d, l) in cases {
            assert_eq!(ldm_unet(d, 2, &attn), l, "{d}");
        }
    }

    #[test]
    fn sd_vae_names_match_the_ldm_checkpoint() {
        let cases = [
            (
                "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
                "encoder.down.1.block.0.nin_shortcut.weight",
            ),
            (
                "encoder.down_blocks.0.downsamplers.0.conv.weight",
                "encoder.down.0.downsample.conv.weight",
            ),
            (
                "decoder.up_blocks.0.resnets.2.norm1.weight",
                "decoder.up.3.block.2.norm1.weight",
            ),
            (
                "decoder.up_blocks.2.upsamplers.0.conv.bias",
                "decoder.up.1.upsample.conv.bias",
            ),
            (
                "decoder.mid_block.attentions.0.to_q.weight",
                "decoder.mid.attn_1.q.weight",
            ),
            (
                "encoder.mid_block.attentions.0.to_out.0.bias",
                "encoder.mid.attn_1.proj_out.bias",
            ),
            (
                "encoder.mid_block.resnets.1.conv2.weight",
                "encoder.mid.block_2.conv2.weight",
            ),
            ("decoder.conv_norm_out.weight", "decoder.norm_out.weight"),
            ("post_quant_conv.weight", "post_quant_conv.weight"),
        ];
        for (d, l) in cases {
            assert_eq!(ldm_vae(d, 4), l, "{d}");
        }
    }

    #[test]
    fn open_clip_splits_the_fused_projection() {
        let (k, t) = open_clip("text_model.encoder.layers.3.self_attn.v_proj.weight", 1280);
        assert_eq!(k, "transformer.resblocks.3.attn.in_proj_weight");
        assert_eq!(
            t,
            Transform::Rows {
                start: 2560,
                len: 1280
            }
        );
        assert_eq!(
            open_clip("text_model.encoder.layers.0.mlp.fc1.bias", 1280).0,
            "transformer.resblocks.0.mlp.c_fc.bias"
        );
    }
}
