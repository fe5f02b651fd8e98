//! AnimateDiff motion modules: temporal transformers placed after each block of an SD 1.5 UNet,
//! attending across a clip's frames at every pixel, so the frames move together. diffusers'
//! `MotionAdapter` (down, optional middle and up modules) on our [`crate::unet::UNet`]
//! (`UNet::forward_motion`). A clip is laid out frame-major, `(batch·frames, c, h, w)`, the way
//! diffusers' `UNetMotionModel` reshapes it inside.
//!
//! Files: diffusers folders (`config.json` + `diffusion_pytorch_model.safetensors`) and the
//! original AnimateDiff releases as `.safetensors` (`…motion_modules.N.temporal_transformer.…`,
//! `attention_blocks`, `norms`, `ff_norm`, `pos_encoder.pe`): v1 (no middle module, 24 positions),
//! v2 and AnimateLCM (a middle module, 32), v3 (none in the middle, 32), told apart by their keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keymap::KeyMap;
use crate::nn::{GroupNorm, LayerNorm, Linear};
use crate::unet::Attention;
use crate::weights::{Vb, Weights, open_safetensors};

/// Which AnimateDiff release a file is, from its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MotionKind {
    /// The first release: no middle module, 24 positions.
    V1,
    /// v2 and AnimateLCM: a middle module, 32 positions.
    V2,
    /// v3: no middle module, 32 positions.
    V3,
}

/// diffusers' `MotionAdapter` config (the keys it writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MotionConfig {
    pub block_out_channels: Vec<usize>,
    #[serde(default = "two")]
    pub motion_layers_per_block: usize,
    #[serde(default = "one")]
    pub motion_transformer_layers_per_block: usize,
    #[serde(default = "one")]
    pub motion_mid_block_layers_per_block: usize,
    #[serde(default = "one")]
    pub motion_transformer_layers_per_mid_block: usize,
    #[serde(default = "eight")]
    pub motion_num_attention_heads: usize,
    #[serde(default = "thirty_two")]
    pub motion_norm_num_groups: usize,
    #[serde(default = "thirty_two")]
    pub motion_max_seq_length: usize,
    #[serde(default = "yes")]
    pub use_motion_mid_block: bool,
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn eight() -> usize {
    8
}
fn thirty_two() -> usize {
    32
}
fn yes() -> bool {
    true
}

impl MotionConfig {
    /// The released SD 1.5 adapters' shape.
    pub fn sd15(kind: MotionKind) -> MotionConfig {
        MotionConfig {
            block_out_channels: vec![320, 640, 1280, 1280],
            motion_layers_per_block: 2,
            motion_transformer_layers_per_block: 1,
            motion_mid_block_layers_per_block: 1,
            motion_transformer_layers_per_mid_block: 1,
            motion_num_attention_heads: 8,
            motion_norm_num_groups: 32,
            motion_max_seq_length: if kind == MotionKind::V1 { 24 } else { 32 },
            use_motion_mid_block: kind == MotionKind::V2,
        }
    }
}

/// One temporal transformer block: self-attention twice across frames (sinusoidal positions
/// added before each), then GEGLU.
struct TemporalBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
}

impl TemporalBlock {
    fn new(vb: &Vb, dim: usize, heads: usize) -> Result<TemporalBlock> {
        let inner = dim * 4;
        Ok(TemporalBlock {
            norm1: LayerNorm::new(&vb.pp("norm1"), dim, 1e-5)?,
            attn1: Attention::new(&vb.pp("attn1"), dim, dim, heads)?,
            norm2: LayerNorm::new(&vb.pp("norm2"), dim, 1e-5)?,
            attn2: Attention::new(&vb.pp("attn2"), dim, dim, heads)?,
            norm3: LayerNorm::new(&vb.pp("norm3"), dim, 1e-5)?,
            ff_in: Linear::new(&vb.pp("ff.net.0.proj"), dim, inner * 2, true)?,
            ff_out: Linear::new(&vb.pp("ff.net.2"), inner, dim, true)?,
        })
    }

    fn forward(&self, x: &Tensor, pe: &Tensor) -> Result<Tensor> {
        let h = self.norm1.forward(x)?.broadcast_add(pe)?;
        let x = (x + self.attn1.forward(&h, &h)?)?;
        let h = self.norm2.forward(&x)?.broadcast_add(pe)?;
        let x = (&x + self.attn2.forward(&h, &h)?)?;
        let h = self.norm3.forward(&x)?;
        Ok((x + crate::unet::geglu(&self.ff_in, &self.ff_out, &h)?)?)
    }
}

/// diffusers' `AnimateDiffTransformer3D`: group norm over a clip, attention across frames at
/// each pixel, added back to its input.
pub(crate) struct MotionModule {
    norm: GroupNorm,
    proj_in: Linear,
    blocks: Vec<TemporalBlock>,
    proj_out: Linear,
    /// `(max_len, c)` sinusoidal positions.
    pe: Tensor,
}

impl MotionModule {
    fn new(vb: &Vb, c: usize, cfg: &MotionConfig, layers: usize) -> Result<MotionModule> {
        let heads = cfg.motion_num_attention_heads;
        if heads == 0 || !c.is_multiple_of(heads) {
            return Err(Error::BadConfig {
                path: PathBuf::from("motion adapter"),
                reason: format!("{heads} heads do not divide {c} channels"),
            });
        }
        let blocks = (0..layers)
            .map(|k| TemporalBlock::new(&vb.pp("transformer_blocks").pp(k), c, heads))
            .collect::<Result<_>>()?;
        Ok(MotionModule {
            norm: GroupNorm::new(&vb.pp("norm"), cfg.motion_norm_num_groups, c, 1e-6)?,
            proj_in: Linear::new(&vb.pp("proj_in"), c, c, true)?,
            blocks,
            proj_out: Linear::new(&vb.pp("proj_out"), c, c, true)?,
            pe: positions(cfg.motion_max_seq_length, c, vb.device())?.to_dtype(vb.dtype())?,
        })
    }

    /// `x`: `(batch·frames, c, h, w)`, frame-major.
    pub(crate) fn forward(&self, x: &Tensor, frames: usize) -> Result<Tensor> {
        let (bf, c, h, w) = x.dims4()?;
        if frames == 0 || !bf.is_multiple_of(frames) {
            return Err(Error::InvalidRequest(format!(
                "a batch of {bf} is not whole clips of {frames} frames"
            )));
        }
        let max = self.pe.dim(0)?;
        if frames > max {
            return Err(Error::InvalidRequest(format!(
                "{frames} frames at once, but this motion module knows {max} positions: use a context of at most {max} frames"
            )));
        }
        let b = bf / frames;
        // (b, c, f, h, w), normalised per clip as a 5-D group norm does.
        let clip = x
            .reshape((b, frames, c, h * w))?
            .permute((0, 2, 1, 3))?
            .contiguous()?;
        let normed = self
            .norm
            .forward(&clip.reshape((b, c, frames, h * w))?)?
            .reshape((b, c, frames, h, w))?;
        // One sequence of frames per pixel: (b·h·w, f, c).
        let seq = normed
            .permute((0, 3, 4, 2, 1))?
            .reshape((b * h * w, frames, c))?
            .contiguous()?;
        let mut t = self.proj_in.forward(&seq)?;
        let pe = self.pe.narrow(0, 0, frames)?.unsqueeze(0)?;
        for blk in &self.blocks {
            t = blk.forward(&t, &pe)?;
        }
        let t = self.proj_out.forward(&t)?;
        let out = t
            .reshape((b, h, w, frames, c))?
            .permute((0, 3, 4, 1, 2))?
            .reshape((bf, c, h, w))?;
        Ok((out + x)?)
    }
}

/// diffusers' `SinusoidalPositionalEmbedding` table: sin at even channels, cos at odd.
fn positions(len: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let mut data = vec![0f32; len * dim];
    for p in 0..len {
        for i in (0..dim).step_by(2) {
            let div = (-(10000f64.ln()) * i as f64 / dim as f64).exp();
            let a = p as f64 * div;
            data[p * dim + i] = a.sin() as f32;
            if i + 1 < dim {
                data[p * dim + i + 1] = a.cos() as f32;
            }
        }
    }
    Ok(Tensor::from_vec(data, (len, dim), device)?)
}

/// A loaded motion adapter: modules per down level, the middle, per up level.
pub struct MotionAdapter {
    cfg: MotionConfig,
    pub(crate) down: Vec<Vec<MotionModule>>,
    pub(crate) mid: Option<MotionModule>,
    pub(crate) up: Vec<Vec<MotionModule>>,
    pub kind: Option<MotionKind>,
    pub source: PathBuf,
}

impl std::fmt::Debug for MotionAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotionAdapter")
            .field("cfg", &self.cfg)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl MotionAdapter {
    pub fn new(vb: &Vb, cfg: &MotionConfig) -> Result<MotionAdapter> {
        let ch = &cfg.block_out_channels;
        let lpb = cfg.motion_layers_per_block;
        let tl = cfg.motion_transformer_layers_per_block;
        let mut down = Vec::with_capacity(ch.len());
        for (i, &c) in ch.iter().enumerate() {
            let b = vb.pp("down_blocks").pp(i).pp("motion_modules");
            down.push(
                (0..lpb)
                    .map(|j| MotionModule::new(&b.pp(j), c, cfg, tl))
                    .collect::<Result<_>>()?,
            );
        }
        let mid = if cfg.use_motion_mid_block {
            if cfg.motion_mid_block_layers_per_block != 1 {
                return Err(Error::BadConfig {
                    path: PathBuf::from("motion adapter"),
                    reason:
                        "a middle block with more than one motion module is not an SD 1.5 adapter"
                            .into(),
                });
            }
            let c = *ch.last().ok_or_else(|| Error::BadConfig {
                path: PathBuf::from("motion adapter"),
                reason: "no block_out_channels".into(),
            })?;
            Some(MotionModule::new(
                &vb.pp("mid_block").pp("motion_modules").pp(0),
                c,
                cfg,
                cfg.motion_transformer_layers_per_mid_block,
            )?)
        } else {
            None
        };
        let mut up = Vec::with_capacity(ch.len());
        for (i, &c) in ch.iter().rev().enumerate() {
            let b = vb.pp("up_blocks").pp(i).pp("motion_modules");
            up.push(
                (0..=lpb)
                    .map(|j| MotionModule::new(&b.pp(j), c, cfg, tl))
                    .collect::<Result<_>>()?,
            );
        }
        Ok(MotionAdapter {
            cfg: cfg.clone(),
            down,
            mid,
            up,
            kind: None,
            source: PathBuf::new(),
        })
    }

    pub fn config(&self) -> &MotionConfig {
        &self.cfg
    }

    /// Loads a diffusers folder or one `.safetensors` file under diffusers or AnimateDiff's own
    /// names; a single file's config is `<file>.config.json` beside it, else the SD 1.5
    /// release its keys say it is.
    pub fn load(path: &Path, dtype: DType, device: &Device) -> Result<MotionAdapter> {
        MotionAdapter::load_with_loras(path, Vec::new(), dtype, device)
    }

    /// [`MotionAdapter::load`] with MotionLoRAs merged into its attention projections (each at
    /// its scale). A LoRA that names no layer of this adapter is refused.
    pub fn load_with_loras(
        path: &Path,
        loras: Vec<crate::weights::Lora>,
        dtype: DType,
        device: &Device,
    ) -> Result<MotionAdapter> {
        if let Some(l) = loras.iter().find(|l| !l.is_motion()) {
            return Err(Error::Lora {
                path: l.path.clone(),
                reason: "is not a MotionLoRA (it names no motion module): give image LoRAs to the model, MotionLoRAs here".into(),
            });
        }
        let (file, sidecar) = if path.is_dir() {
            let file = path.join("diffusion_pytorch_model.safetensors");
            let bin = path.join("diffusion_pytorch_model.bin");
            if !file.is_file() && bin.is_file() {
                crate::weights::refuse_pickle(&bin)?;
            }
            if !file.is_file() {
                return Err(Error::MissingComponent {
                    folder: path.to_owned(),
                    component: "diffusion_pytorch_model.safetensors".into(),
                });
            }
            (file, Some(path.join("config.json")))
        } else {
            crate::weights::refuse_pickle(path)?;
            let side = path.with_extension("config.json");
            (path.to_owned(), side.is_file().then_some(side))
        };
        let st = open_safetensors(&file)?;
        let names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        let original = names.iter().any(|n| n.contains(".temporal_transformer."));
        if !original && !names.iter().any(|n| n.contains("motion_modules.")) {
            return Err(Error::InvalidRequest(format!(
                "{} has no motion modules: it is not an AnimateDiff motion adapter",
                file.display()
            )));
        }
        let kind = if original {
            Some(kind_of(&file, &st, &names)?)
        } else {
            None
        };
        drop(st);
        let cfg: MotionConfig = match (&sidecar, kind) {
            (Some(side), _) if side.is_file() => crate::config::read_json(side)?,
            (Some(_), _) if path.is_dir() => {
                return Err(Error::MissingComponent {
                    folder: path.to_owned(),
                    component: "config.json".into(),
                });
            }
            (_, Some(k)) => MotionConfig::sd15(k),
            (_, None) => {
                return Err(Error::MissingComponent {
                    folder: file.clone(),
                    component: format!(
                        "{} (a diffusers-named file needs its config beside it)",
                        file.with_extension("config.json").display()
                    ),
                });
            }
        };
        let map = if original {
            KeyMap::AnimateDiff
        } else {
            KeyMap::Diffusers
        };
        let w = Arc::new(
            Weights::from_files(
                std::slice::from_ref(&file),
                map,
                "motion adapter",
                dtype,
                device,
            )?
            .with_loras(crate::weights::MOTION_LORA_PREFIX, loras),
        );
        let mut a = MotionAdapter::new(&w.root(), &cfg)?;
        if let Some((lora, layer)) = w.unused_lora_layers().into_iter().next() {
            return Err(Error::Lora {
                path: lora,
                reason: format!(
                    "names `{layer}`, which this motion adapter does not have: the MotionLoRA is for another motion module"
                ),
            });
        }
        a.kind = kind;
        a.source = file;
        Ok(a)
    }

    /// Refuses an adapter made for another UNet than `unet`'s, by name.
    pub fn check_base(&self, unet: &crate::config::UNetConfig) -> Result<()> {
        if self.cfg.block_out_channels != unet.block_out_channels
            || self.cfg.motion_layers_per_block != unet.layers_per_block
            || unet.is_sdxl()
        {
            return Err(Error::InvalidRequest(format!(
                "motion module {} is for a UNet with blocks {:?} but the model's are {:?}{}: use a motion module made for the model's base (SD 1.5)",
                self.source.display(),
                self.cfg.block_out_channels,
                unet.block_out_channels,
                if unet.is_sdxl() { " (SDXL)" } else { "" }
            )));
        }
        Ok(())
    }
}

/// The release an original-name file is, as diffusers' single-file loader tells them apart.
fn kind_of(
    file: &Path,
    st: &candle_core::safetensors::MmapedSafetensors,
    names: &[String],
) -> Result<MotionKind> {
    if names
        .iter()
        .any(|n| n.starts_with("controlnet_cond_embedding"))
    {
        return Err(Error::InvalidRequest(format!(
            "{} is a SparseCtrl ControlNet, not a motion module",
            file.display()
        )));
    }
    if names
        .iter()
        .any(|n| n == "mid_block.motion_modules.0.temporal_transformer.norm.bias")
    {
        return Ok(MotionKind::V2);
    }
    let pe = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe";
    match st.get(pe).ok().and_then(|t| t.shape().get(1).copied()) {
        Some(24) => Ok(MotionKind::V1),
        _ => Ok(MotionKind::V3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::{fixture_unet, fixture_unet_config, rel_err};
    use crate::train::files::read_safetensors;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/animatediff")
    }

    /// Our motion modules in our UNet against diffusers' `UNetMotionModel` (built from the same
    /// UNet and `MotionAdapter`), 6 frames: v2 (a middle module) and v1 (none, 24 positions),
    /// each from the diffusers folder and from the original AnimateDiff file (with its config
    /// beside it: a tiny adapter cannot be told from its keys), within 1e-4.
    #[test]
    fn motion_modules_match_diffusers_from_folders_and_original_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        for (name, kind) in [("v2", MotionKind::V2), ("v1", MotionKind::V1)] {
            let fx = read_safetensors(&fixtures().join(name).join("io.safetensors"))
                .expect("fixture")
                .0;
            let unet = fixture_unet(
                &fx,
                &tmp.path().join("unet.safetensors"),
                &fixture_unet_config("sd15"),
            );
            let (x, t, ctx) = (&fx["in.x"], &fx["in.t"], &fx["in.ctx"]);
            let plain = unet
                .forward_controlled(x, t, ctx, None, None)
                .expect("plain");
            let e = rel_err(&plain, &fx["out.plain"]);
            assert!(e < 1e-4, "{name}: the plain UNet differs by {e:e}");
            let original = tmp.path().join(format!("{name}.safetensors"));
            std::fs::copy(
                fixtures().join(format!("{name}_original.safetensors")),
                &original,
            )
            .expect("copy");
            std::fs::copy(
                fixtures().join(name).join("adapter/config.json"),
                original.with_extension("config.json"),
            )
            .expect("config");
            for source in [fixtures().join(name).join("adapter"), original.clone()] {
                let a = MotionAdapter::load(&source, DType::F32, &Device::Cpu).expect("load");
                let out = unet
                    .forward_motion(x, t, ctx, None, &a, 6)
                    .expect("forward");
                let e = rel_err(&out, &fx["out.motion"]);
                assert!(
                    e < 1e-4,
                    "{name} from {}: differs by {e:e}",
                    source.display()
                );
                assert!(
                    rel_err(&out, &plain) > 1e-3,
                    "{name}: the modules did nothing"
                );
            }
            let a = MotionAdapter::load(&original, DType::F32, &Device::Cpu).expect("load");
            assert_eq!(a.kind, Some(kind), "{name}: told from its keys");
        }
    }

    /// A MotionLoRA (AnimateDiff's layout) merged at 0.8 into the v2 adapter, from the folder
    /// and from the original file, against diffusers' UNetMotionModel with the same update
    /// folded into its weights (`scripts/fixtures motion_lora`), within 1e-4.
    #[test]
    fn a_motion_lora_matches_diffusers_with_the_update_merged() {
        let tmp = tempfile::tempdir().expect("tmp");
        let fx = read_safetensors(&fixtures().join("v2/io.safetensors"))
            .expect("fixture")
            .0;
        let lora_dir = fixtures().join("../motion_lora");
        let want = read_safetensors(&lora_dir.join("io.safetensors"))
            .expect("lora fixture")
            .0;
        let unet = fixture_unet(
            &fx,
            &tmp.path().join("unet.safetensors"),
            &fixture_unet_config("sd15"),
        );
        let (x, t, ctx) = (&fx["in.x"], &fx["in.t"], &fx["in.ctx"]);
        let original = tmp.path().join("v2.safetensors");
        std::fs::copy(fixtures().join("v2_original.safetensors"), &original).expect("copy");
        std::fs::copy(
            fixtures().join("v2/adapter/config.json"),
            original.with_extension("config.json"),
        )
        .expect("config");
        let lora_file = lora_dir.join("motion_lora.safetensors");
        for source in [fixtures().join("v2/adapter"), original] {
            let lora = crate::weights::Lora::load(&lora_file, 0.8).expect("lora");
            assert!(lora.is_motion());
            let a = MotionAdapter::load_with_loras(&source, vec![lora], DType::F32, &Device::Cpu)
                .expect("load");
            let out = unet
                .forward_motion(x, t, ctx, None, &a, 6)
                .expect("forward");
            let e = rel_err(&out, &want["out.lora"]);
            assert!(e < 1e-4, "from {}: differs by {e:e}", source.display());
            assert!(
                rel_err(&out, &fx["out.motion"]) > 1e-3,
                "the LoRA did nothing"
            );
        }
        // A MotionLoRA for another adapter (here: v1's, whose middle block has no module) names
        // layers that are not there.
        let lora = crate::weights::Lora::load(&lora_file, 1.0).expect("lora");
        let e = MotionAdapter::load_with_loras(
            &fixtures().join("v1/adapter"),
            vec![lora],
            DType::F32,
            &Device::Cpu,
        )
        .expect_err("another adapter")
        .to_string();
        assert!(e.contains("for another motion module"), "{e}");
    }

    #[test]
    fn a_clip_longer_than_the_positions_or_another_base_is_refused() {
        let a = MotionAdapter::load(&fixtures().join("v1/adapter"), DType::F32, &Device::Cpu)
            .expect("load");
        let module = &a.down[0][0];
        let c = a.config().block_out_channels[0];
        let x = Tensor::zeros((25, c, 2, 2), DType::F32, &Device::Cpu).expect("x");
        let err = module.forward(&x, 25).expect_err("refused").to_string();
        assert!(
            err.contains("this motion module knows 24 positions"),
            "{err}"
        );
        let err = module.forward(&x, 4).expect_err("refused").to_string();
        assert!(err.contains("not whole clips of 4 frames"), "{err}");
        let mut xl = crate::config::presets::sd15_unet();
        xl.block_out_channels = vec![320, 640, 1280];
        let err = a.check_base(&xl).expect_err("refused").to_string();
        assert!(
            err.contains("use a motion module made for the model's base"),
            "{err}"
        );
    }
}
