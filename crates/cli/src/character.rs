//! `mintframe character`: one prompt to a sprite pack — every facing of a view, every frame of
//! some animations — with engine exports, a poster, previews, the recipe and a consistency
//! report; `--recipe` makes a pack again from its recipe, `--from` + `--reroll` draws frames or
//! rows of a pack again.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mintframe_studio::{App, Settings};
use mintframe_types::{AnimationKind, CharacterSpec, Facing, JobSpec, JobState, Reroll, View};

use crate::jobs::submit_and_follow;

#[derive(Debug, clap::Args)]
pub(crate) struct CharacterArgs {
    /// Who to draw ("knight with a red cape"); not needed with --recipe or --from.
    #[arg(required_unless_present_any = ["recipe", "from"])]
    prompt: Option<String>,
    #[arg(long, short = 'n', default_value = "")]
    negative: String,
    /// A model id or path (default: the offline sprite model).
    #[arg(long, short = 'm', default_value = "")]
    model: String,
    #[arg(long, value_enum, default_value_t = View::Topdown)]
    view: View,
    /// 4 or 8 (top-down, isometric); a side view has its two.
    #[arg(long, default_value_t = 4)]
    directions: u32,
    /// Which cycles, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "walk")]
    animations: Vec<AnimationKind>,
    /// Frames per animation (2–16); each template's own count when left out.
    #[arg(long)]
    frames: Option<u32>,
    /// The sprite's side in pixels.
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// The side each frame is generated at (default: the model's).
    #[arg(long)]
    gen_size: Option<u32>,
    /// A built-in palette or a palette file; otherwise the best --colors for the pack.
    #[arg(long)]
    palette: Option<String>,
    #[arg(long, default_value_t = 16)]
    colors: u32,
    #[arg(long, short = 's', allow_negative_numbers = true, value_parser = |s: &str| mintframe_types::ranges::parse_seed(s).map(crate::generate::Seed))]
    seed: Option<crate::generate::Seed>,
    #[arg(long)]
    steps: Option<u32>,
    #[arg(long)]
    guidance: Option<f32>,
    /// The sampler (default: the model's); `lcm` with an LCM model or LCM-LoRA draws in 2–8 steps.
    #[arg(long, value_enum)]
    scheduler: Option<mintframe_types::Scheduler>,
    /// What decodes each board: the model's VAE (full), or TAESD (tiny: a fraction of the time).
    #[arg(long, value_enum)]
    decoder: Option<mintframe_types::Decoder>,
    /// The tiny autoencoder (a diffusers AutoencoderTiny folder or its weight file); default:
    /// the model's own `taesd/`, else `<models>/taesd` or `<models>/taesdxl`.
    #[arg(long, value_name = "FOLDER|FILE")]
    tiny_decoder: Option<PathBuf>,
    /// How much of each pose's silhouette is repainted (0–1].
    #[arg(long, default_value_t = 0.8)]
    strength: f32,
    /// An OpenPose ControlNet for the model (diffusers folder or .safetensors).
    #[arg(long)]
    controlnet: Option<PathBuf>,
    #[arg(long, default_value_t = 1.0)]
    control_weight: f32,
    /// An edited template (JSON) used instead of the bundled one for its animation.
    #[arg(long = "template")]
    templates: Vec<PathBuf>,
    /// A picture of the character (PNG, --size or the generation size) in the first
    /// animation's first pose: every board keeps to it (reference attention and chaining).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Reference attention: boards attend to the reference (given, or the first frame);
    /// on with --reference. Each step then costs two UNet passes.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    reference_attention: Option<bool>,
    /// How far the prompt may pull away from the reference, 0–1.
    #[arg(long, default_value_t = 0.5)]
    style_fidelity: f32,
    /// img2img chaining: boards start from the reference moved into each pose, repainted at
    /// this strength (0–1]; 0.6 with --reference.
    #[arg(long = "chain")]
    chain_strength: Option<f32>,
    /// The pack's name.
    #[arg(long)]
    name: Option<String>,
    /// Engine exports beside the sheet (comma-separated; default aseprite-json, aseprite, godot).
    #[arg(long = "format", value_enum, value_delimiter = ',')]
    formats: Vec<mintframe_types::SheetFormat>,
    /// Make a pack again from its recipe file (`<name>.pack.json`).
    #[arg(long, conflicts_with = "from")]
    recipe: Option<PathBuf>,
    /// Start from a pack in the library (its id), with --reroll: the pack's own settings are
    /// kept (only --reroll and --name apply), so the frames not drawn again stay as they were.
    #[arg(long)]
    from: Option<String>,
    /// Draw again: ANIMATION:FACING (a row) or ANIMATION:FACING:FRAME (0-based), repeatable.
    #[arg(long)]
    reroll: Vec<String>,
    /// Open the native preview window on the boards as they are drawn (every facing of each
    /// animation side by side).
    #[arg(long)]
    preview: bool,
    /// Also write the pack's files here.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    #[command(flatten)]
    output: crate::Output,
    #[command(flatten)]
    detach: crate::Detach,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s}: use on or off")),
    }
}

fn parse_reroll(s: &str, seed: u64) -> Result<Reroll> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        bail!("--reroll {s}: use ANIMATION:FACING or ANIMATION:FACING:FRAME (e.g. walk:e:3)");
    }
    let animation: AnimationKind = parts[0].parse()?;
    let facing: Facing = parts[1].parse()?;
    let frame = match parts.get(2) {
        Some(f) => Some(
            f.parse::<u32>()
                .with_context(|| format!("--reroll {s}: frame {f} is not a number"))?,
        ),
        None => None,
    };
    Ok(Reroll {
        animation,
        facing,
        frame,
        seed,
    })
}

fn absolute(p: &std::path::Path) -> Result<String> {
    Ok(std::path::absolute(p)
        .with_context(|| format!("cannot resolve {}", p.display()))?
        .to_string_lossy()
        .into_owned())
}

pub(crate) fn character(settings: &Settings, a: CharacterArgs) -> Result<()> {
    let app = App::open(settings.clone())?;
    if a.recipe.is_some() && !a.reroll.is_empty() {
        bail!(
            "--recipe makes a pack again as it was; to draw frames again use --from PACK --reroll"
        );
    }
    let spec = if let Some(path) = &a.recipe {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let r: mintframe_studio::character::PackRecipe = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a pack recipe", path.display()))?;
        r.spec
    } else if let Some(id) = &a.from {
        if a.reroll.is_empty() {
            bail!("--from {id} needs --reroll ANIMATION:FACING[:FRAME] (what to draw again)");
        }
        // Seed 0: a fresh seed for each re-roll, kept in the new pack's recipe.
        let targets = a
            .reroll
            .iter()
            .map(|r| parse_reroll(r, 0))
            .collect::<Result<Vec<_>>>()?;
        let mut spec = app.reroll_spec(id, &targets)?;
        spec.name = a.name.clone().or(spec.name);
        spec
    } else {
        if !a.reroll.is_empty() {
            bail!("--reroll needs --from PACK: the pack whose frames to draw again");
        }
        CharacterSpec {
            prompt: a.prompt.clone().unwrap_or_default(),
            negative_prompt: a.negative.clone(),
            model: a.model.clone(),
            view: a.view,
            directions: if a.view == View::Side {
                2
            } else {
                a.directions
            },
            animations: a.animations.clone(),
            frames: a.frames,
            size: a.size,
            gen_size: a.gen_size,
            // A palette file is made absolute: the job may run from another folder.
            palette: match &a.palette {
                Some(p) if std::path::Path::new(p).exists() => {
                    Some(absolute(std::path::Path::new(p))?)
                }
                other => other.clone(),
            },
            colors: a.colors,
            locked_palette: Vec::new(),
            seed: a.seed.and_then(|s| s.0),
            steps: a.steps,
            guidance: a.guidance,
            scheduler: a.scheduler,
            decoder: a.decoder,
            tiny_decoder: a.tiny_decoder.as_deref().map(absolute).transpose()?,
            strength: a.strength,
            controlnet: a.controlnet.as_deref().map(absolute).transpose()?,
            control_weight: a.control_weight,
            templates: a
                .templates
                .iter()
                .map(|p| absolute(p))
                .collect::<Result<_>>()?,
            custom_templates: Vec::new(),
            rerolls: Vec::new(),
            // A file is made absolute (the job may run from another folder); anything else is
            // a library asset id.
            reference: match &a.reference {
                Some(p) if p.exists() => Some(absolute(p)?),
                other => other.as_ref().map(|p| p.to_string_lossy().into_owned()),
            },
            reference_sha256: None,
            reference_first_frame: false,
            reference_attention: a.reference_attention,
            style_fidelity: a.style_fidelity,
            chain_strength: a.chain_strength,
            name: a.name.clone(),
            formats: a.formats.clone(),
            dtype: None,
            device: None,
        }
    };
    let done = submit_and_follow(
        app,
        a.detach.detach,
        |w| w.submit_character(spec),
        |app, job| {
            if a.preview {
                // The window outlives nothing: it keeps the last frames when the job ends.
                if let Err(e) = app.open_live_preview(&job.id.to_string()) {
                    eprintln!("warning: no live preview: {e}");
                }
            }
            if let JobSpec::Character(s) = &job.spec {
                eprintln!(
                    "job {}: {} · seed {} · {} view, {} facings · {} · {} px",
                    job.id,
                    s.model,
                    s.seed.unwrap_or(0),
                    s.view,
                    s.directions,
                    s.animations
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.size
                );
            }
        },
    )?;
    let Some((app, record)) = done else {
        return Ok(());
    };
    if record.state != JobState::Succeeded {
        bail!(
            "job {} {}: {}",
            record.id,
            record.state,
            record.error.as_deref().unwrap_or("no reason recorded")
        );
    }
    let mut written = Vec::new();
    for id in &record.outputs {
        if let Some(dir) = &a.out {
            written.extend(app.export_asset(&id.0, dir)?);
        }
    }
    if a.output.json {
        let mut report = serde_json::Value::Null;
        if let Some(id) = record.outputs.first() {
            report = serde_json::to_value(app.character_report(&id.0)?)?;
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": record.id,
                "assets": record.outputs,
                "consistency": report,
                "written": written,
            }))?
        );
    } else {
        for id in &record.outputs {
            println!("made {id}");
        }
        for p in written {
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reroll_names_an_animation_a_facing_and_maybe_a_frame() {
        let r = parse_reroll("walk:e:3", 9).expect("frame");
        assert_eq!(
            (r.animation, r.facing, r.frame, r.seed),
            (AnimationKind::Walk, Facing::E, Some(3), 9)
        );
        assert_eq!(parse_reroll("idle:s", 1).expect("row").frame, None);
        assert!(parse_reroll("walk", 1).is_err());
        let e = parse_reroll("walk:up:1", 1)
            .expect_err("bad facing")
            .to_string();
        assert!(e.contains("unknown facing \"up\""), "{e}");
    }
}
