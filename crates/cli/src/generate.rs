//! `mintframe generate`: a generation job, followed with a progress bar.

use std::path::PathBuf;

use anyhow::{Result, bail};
use mintframe_studio::{App, Settings};
use mintframe_types::{DType, GenerateSpec, JobSpec, JobState, LoraSpec, Scheduler};

use mintframe_studio::paths;

use crate::jobs::submit_and_follow;

/// A seed as typed; `-1` (none) means a random one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seed(pub(crate) Option<u64>);

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// What to generate.
    pub(crate) prompt: String,
    /// What to steer away from (classifier-free guidance).
    #[arg(long, short = 'n', default_value = "")]
    pub(crate) negative: String,
    /// A model id (`mintframe models list`) or a path to a diffusers folder or .safetensors file.
    #[arg(long, short = 'm', default_value = mintframe_studio::DEFAULT_MODEL)]
    pub(crate) model: String,
    /// Random seed; the same recipe and seed give the same image. Random if left out or -1.
    #[arg(long, short = 's', allow_negative_numbers = true, value_parser = |s: &str| mintframe_types::ranges::parse_seed(s).map(Seed))]
    pub(crate) seed: Option<Seed>,
    /// Denoising steps (default: the model's).
    #[arg(long)]
    pub(crate) steps: Option<u32>,
    /// Guidance scale; 1 or less turns guidance off (Turbo models: 0).
    #[arg(long, short = 'g', allow_negative_numbers = true, value_parser = |s: &str| mintframe_types::ranges::GUIDANCE.parse(s))]
    pub(crate) guidance: Option<f32>,
    /// Size as WIDTHxHEIGHT, multiples of 8 (default: the model's).
    #[arg(long)]
    pub(crate) size: Option<String>,
    #[arg(long)]
    pub(crate) width: Option<u32>,
    #[arg(long)]
    pub(crate) height: Option<u32>,
    /// The sampler (default: the model's).
    #[arg(long, value_enum)]
    pub(crate) scheduler: Option<Scheduler>,
    /// Images in this run; item i uses seed + i.
    #[arg(long, short = 'b', default_value_t = 1)]
    pub(crate) batch: u32,
    /// img2img: a PNG to start from.
    #[arg(long)]
    pub(crate) init_image: Option<PathBuf>,
    /// Inpaint: a PNG mask the init image's size, white where to repaint.
    #[arg(long)]
    pub(crate) mask: Option<PathBuf>,
    /// The starting noise from a safetensors file (one tensor `latents`, batch × 4 × h/8 ×
    /// w/8, unit normal) instead of the seed's: to compare with another tool's run.
    #[arg(long)]
    pub(crate) latents: Option<PathBuf>,
    /// What turns the latents into pixels: the model's VAE (full), or TAESD, the tiny
    /// autoencoder (tiny: a fraction of the time, softer detail; for drafts and long batches).
    #[arg(long, value_enum)]
    pub(crate) decoder: Option<mintframe_types::Decoder>,
    /// The tiny autoencoder to use (a diffusers AutoencoderTiny folder or its weight file);
    /// default: the model's own `taesd/`, else `<models>/taesd` or `<models>/taesdxl`.
    #[arg(long, value_name = "FOLDER|FILE")]
    pub(crate) tiny_decoder: Option<PathBuf>,
    /// img2img / inpaint: how much to repaint, 0 < s <= 1.
    #[arg(long, allow_negative_numbers = true, value_parser = |s: &str| mintframe_types::ranges::STRENGTH.parse(s))]
    pub(crate) strength: Option<f32>,
    /// Seamless tile: the image wraps around on both axes.
    #[arg(long)]
    pub(crate) seamless: bool,
    /// RGBA output: a LayerDiffuse add-on's id (`layerdiffuse-sdxl`: its attention and decoder),
    /// or a transparent VAE decoder file (then give the attention with --lora).
    #[arg(long, value_name = "ADDON|DECODER")]
    pub(crate) transparent: Option<PathBuf>,
    /// With --transparent: the median of eight flipped and rotated decodes (slower, cleaner).
    #[arg(long, requires = "transparent")]
    pub(crate) transparent_augmented: bool,
    /// Seamless on these axes only (implies --seamless).
    #[arg(long, value_enum)]
    pub(crate) wrap: Option<mintframe_types::SeamlessAxes>,
    /// Decode the VAE in tiles (less memory; the preflight turns it on when memory is short).
    #[arg(long)]
    pub(crate) vae_tiling: bool,
    #[arg(long, value_enum, default_value_t = DType::F32)]
    pub(crate) dtype: DType,
    /// cpu, cuda, cuda:N or metal (the last two need a build with that feature).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// A kohya LoRA, as PATH or PATH:STRENGTH (repeatable); a trained LoRA by its NAME.
    #[arg(long)]
    pub(crate) lora: Vec<String>,
    /// Memory the run may use in MiB (default: what is free now).
    #[arg(long)]
    pub(crate) memory_budget: Option<u64>,
    /// A ControlNet (diffusers folder or .safetensors, diffusers or A1111 names); repeatable,
    /// each paired with the --control at its place.
    #[arg(long, requires = "control")]
    pub(crate) controlnet: Vec<PathBuf>,
    /// A ControlNet's condition: a PNG of the generation's size, or for pose a pose JSON.
    #[arg(long, requires = "controlnet")]
    pub(crate) control: Vec<PathBuf>,
    /// What each condition is made into: pose (a skeleton as is), canny or lineart (edges of
    /// any image); one for all or one per --control, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "pose")]
    pub(crate) control_kind: Vec<mintframe_types::ControlKind>,
    /// How strongly the ControlNets steer (0–2); one for all or one per --control,
    /// comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1.0")]
    pub(crate) control_weight: Vec<f32>,
    /// The share of the steps they start acting at; one for all or one each.
    #[arg(long, value_delimiter = ',', default_value = "0.0")]
    pub(crate) control_start: Vec<f32>,
    /// The share of the steps they stop acting at; one for all or one each.
    #[arg(long, value_delimiter = ',', default_value = "1.0")]
    pub(crate) control_end: Vec<f32>,
    /// Guess mode: the image leads the prompt.
    #[arg(long)]
    pub(crate) guess_mode: bool,
    /// Also write the PNGs into this folder.
    #[arg(long, short = 'o')]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) output: crate::Output,
    #[command(flatten)]
    pub(crate) detach: crate::Detach,
}

/// `--controlnet` and `--control` in pairs, each with its kind.
fn controls(a: &GenerateArgs) -> Result<Vec<mintframe_types::ControlSpec>> {
    if a.controlnet.len() != a.control.len() {
        anyhow::bail!(
            "{} --controlnet but {} --control: give one condition per ControlNet, in the same order",
            a.controlnet.len(),
            a.control.len()
        );
    }
    let n = a.control.len();
    for (flag, given) in [
        ("--control-kind", a.control_kind.len()),
        ("--control-weight", a.control_weight.len()),
        ("--control-start", a.control_start.len()),
        ("--control-end", a.control_end.len()),
    ] {
        if given > 1 && given != n {
            anyhow::bail!(
                "{flag} gives {given} values for {n} conditions: give one for all or one each"
            );
        }
    }
    // The i-th value, or the one given for all.
    fn at<T: Copy>(v: &[T], i: usize, default: T) -> T {
        *v.get(i).or(v.first()).unwrap_or(&default)
    }
    a.controlnet
        .iter()
        .zip(&a.control)
        .enumerate()
        .map(|(i, (net, image))| {
            Ok(mintframe_types::ControlSpec {
                controlnet: paths::absolute(net)?,
                image: paths::absolute(image)?,
                kind: at(&a.control_kind, i, mintframe_types::ControlKind::Pose),
                weight: at(&a.control_weight, i, 1.0),
                start: at(&a.control_start, i, 0.0),
                end: at(&a.control_end, i, 1.0),
                guess: a.guess_mode,
            })
        })
        .collect()
}

pub(crate) fn parse_lora(s: &str) -> Result<LoraSpec> {
    // A file, or the name of a LoRA trained here (`mintframe train lora --name NAME`), which
    // the studio finds in the data folder.
    let resolve = |p: &str| -> Result<String> {
        let plain = !p.contains(['/', '\\']) && !p.ends_with(".safetensors");
        if plain && !std::path::Path::new(p).exists() {
            Ok(p.to_owned())
        } else {
            Ok(paths::absolute(p)?)
        }
    };
    // PATH:STRENGTH, where PATH itself may contain ':' (take the last one if it parses).
    if let Some((path, strength)) = s.rsplit_once(':')
        && let Ok(v) = strength.parse::<f64>()
    {
        let v = mintframe_types::ranges::LORA_STRENGTH
            .check(v)
            .map_err(anyhow::Error::msg)?;
        return Ok(LoraSpec {
            path: resolve(path)?,
            strength: v as f32,
        });
    }
    Ok(LoraSpec {
        path: resolve(s)?,
        strength: 1.0,
    })
}

pub(crate) fn generate(settings: &Settings, a: GenerateArgs) -> Result<()> {
    let (mut width, mut height) = (a.width, a.height);
    if let Some(size) = &a.size {
        let [w, h] = paths::parse_size(size, "--size")?;
        width = Some(w);
        height = Some(h);
    }
    // Paths are made absolute now: the job may be resumed from another working directory.
    let model = paths::model_ref(&a.model)?;
    let controls = controls(&a)?;
    let spec = GenerateSpec {
        model,
        prompt: a.prompt,
        negative_prompt: a.negative,
        seed: a.seed.and_then(|s| s.0),
        steps: a.steps,
        guidance: a.guidance,
        width,
        height,
        scheduler: a.scheduler,
        batch: Some(a.batch),
        strength: a.strength,
        init_image: a.init_image.as_ref().map(paths::absolute).transpose()?,
        mask: a.mask.as_ref().map(paths::absolute).transpose()?,
        latents: a.latents.as_ref().map(paths::absolute).transpose()?,
        decoder: a.decoder,
        tiny_decoder: a.tiny_decoder.as_ref().map(paths::absolute).transpose()?,
        seamless: a.seamless || a.wrap.is_some(),
        wrap: a.wrap,
        transparent: a
            .transparent
            .as_ref()
            .map(|p| -> Result<mintframe_types::TransparentSpec> {
                // A file is made absolute (the job may run elsewhere); anything else is an
                // add-on's id (`mintframe models list`).
                let decoder = if p.exists() {
                    paths::absolute(p)?
                } else {
                    p.to_string_lossy().into_owned()
                };
                Ok(mintframe_types::TransparentSpec {
                    decoder,
                    augmented: a.transparent_augmented,
                })
            })
            .transpose()?,
        vae_tiling: a.vae_tiling,
        dtype: Some(a.dtype),
        device: Some(a.device),
        loras: a
            .lora
            .iter()
            .map(|l| parse_lora(l))
            .collect::<Result<_>>()?,
        memory_budget_mib: a.memory_budget,
        controls,
    };
    let done = submit_and_follow(
        App::open(settings.clone())?,
        a.detach.detach,
        |w| w.submit_generate(spec),
        |app, job| {
            if let JobSpec::Generate(s) = &job.spec {
                let license = app.models().manifest(&s.model).ok().map(|m| m.license);
                eprintln!(
                    "job {}: {} · seed {} · {} steps · {} · {}x{}{}",
                    job.id,
                    s.model,
                    s.seed.unwrap_or(0),
                    s.steps.unwrap_or(0),
                    s.scheduler.map(Scheduler::as_str).unwrap_or(""),
                    s.width.unwrap_or(0),
                    s.height.unwrap_or(0),
                    license
                        .map(|l| format!(" · licence {}", l.label()))
                        .unwrap_or_default()
                );
            }
        },
    )?;
    let Some((app, record)) = done else {
        return Ok(());
    };
    if a.output.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    }
    match record.state {
        JobState::Succeeded => {}
        JobState::Cancelled => bail!("job {} was cancelled; no image was kept", record.id),
        _ => bail!(
            "{}",
            record
                .error
                .as_deref()
                .unwrap_or("the job failed with no reason recorded")
        ),
    }
    for id in &record.outputs {
        if let Some(dir) = &a.out {
            for p in app.export_asset(&id.0, dir)? {
                if p.extension().is_some_and(|e| e == "png") && !a.output.json {
                    println!("{id}  {}", p.display());
                }
            }
        } else if !a.output.json {
            println!("{id}");
        }
    }
    Ok(())
}
