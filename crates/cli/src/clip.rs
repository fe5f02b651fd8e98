//! `mintframe clip`: a prompt to a clip with AnimateDiff motion modules — every frame denoised
//! together, looped if asked — written as MP4, WebM (with alpha), GIF, APNG or WebP into the
//! library, with a poster and a recipe that says how well the loop closes.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mintframe_studio::{App, Settings};
use mintframe_types::{ClipFormat, ClipKeyframe, ClipSpec, JobSpec, JobState};

use crate::jobs::submit_and_follow;

#[derive(Debug, clap::Args)]
pub(crate) struct ClipArgs {
    /// What happens in the clip ("a campfire flickering at night, pixel art").
    prompt: String,
    #[arg(long, short = 'n', default_value = "")]
    negative: String,
    /// A model id or path, SD 1.x (default: tiny-sd, which carries its own motion adapter).
    #[arg(long, short = 'm', default_value = "")]
    model: String,
    /// An AnimateDiff motion adapter (diffusers folder or one .safetensors; v1, v2, v3,
    /// AnimateLCM); the model folder's own `motion_adapter/` when left out.
    #[arg(long)]
    motion: Option<PathBuf>,
    /// A MotionLoRA (AnimateDiff's camera moves and the like), FILE or FILE:STRENGTH;
    /// repeatable.
    #[arg(long = "motion-lora")]
    motion_loras: Vec<String>,
    #[arg(long, default_value_t = 16)]
    frames: u32,
    #[arg(long, default_value_t = 8)]
    fps: u32,
    /// Frames the motion modules see at once; longer clips go in overlapping windows.
    #[arg(long, default_value_t = 16)]
    context: u32,
    /// Frames neighbouring windows share.
    #[arg(long, default_value_t = 4)]
    overlap: u32,
    /// Close the loop: the last frame flows into the first.
    #[arg(long = "loop")]
    looped: bool,
    /// A later keyframe, FRAME:PROMPT or FRAME:PROMPT@SEED (repeatable, in order): the clip
    /// travels from its prompt to each in turn (text embeddings slerped; noise too on a walk).
    #[arg(long = "key", value_name = "FRAME:PROMPT[@SEED]", value_parser = parse_key)]
    keys: Vec<ClipKeyframe>,
    /// A keyframe walk without motion modules: every frame its own image between keyframes.
    #[arg(long)]
    walk: bool,
    /// vid2vid: restyle this video (a file or a library asset id) frame by frame; its frames,
    /// rate and sound become the clip's.
    #[arg(long = "from")]
    source: Option<String>,
    /// How much of each source frame is repainted (0–1], with --from.
    #[arg(long)]
    strength: Option<f32>,
    /// How much of the last restyled frame is mixed into the next one's start (0–1), with
    /// --from: higher is steadier.
    #[arg(long)]
    coherence: Option<f32>,
    #[arg(long)]
    width: Option<u32>,
    #[arg(long)]
    height: Option<u32>,
    #[arg(long)]
    steps: Option<u32>,
    #[arg(long)]
    guidance: Option<f32>,
    #[arg(long, short = 's', allow_negative_numbers = true, value_parser = |s: &str| mintframe_types::ranges::parse_seed(s).map(crate::generate::Seed))]
    seed: Option<crate::generate::Seed>,
    /// Files to write, comma-separated (default mp4, webm, gif); the first is the clip's main
    /// file in the library.
    #[arg(long = "format", value_enum, value_delimiter = ',')]
    formats: Vec<ClipFormat>,
    /// A soundtrack for the MP4 and WebM (any audio FFmpeg reads), cut to the clip's length.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// The clip's name in the library.
    #[arg(long)]
    name: Option<String>,
    /// Also write the clip's files here.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    #[command(flatten)]
    output: crate::Output,
    #[command(flatten)]
    detach: crate::Detach,
}

fn parse_key(s: &str) -> Result<ClipKeyframe, String> {
    let (frame, rest) = s
        .split_once(':')
        .ok_or_else(|| format!("--key {s}: use FRAME:PROMPT or FRAME:PROMPT@SEED"))?;
    let frame: u32 = frame
        .trim()
        .parse()
        .map_err(|_| format!("--key {s}: {frame:?} is not a frame number"))?;
    let (prompt, seed) = match rest.rsplit_once('@') {
        Some((p, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => (
            p,
            Some(
                n.parse::<u64>()
                    .map_err(|_| format!("--key {s}: seed {n} is too large"))?,
            ),
        ),
        _ => (rest, None),
    };
    Ok(ClipKeyframe {
        frame,
        prompt: prompt.trim().to_owned(),
        negative_prompt: String::new(),
        seed,
    })
}

pub(crate) fn clip(settings: &Settings, a: ClipArgs) -> Result<()> {
    let app = App::open(settings.clone())?;
    let motion = match &a.motion {
        Some(p) => std::path::absolute(p)
            .with_context(|| format!("cannot resolve {}", p.display()))?
            .to_string_lossy()
            .into_owned(),
        None => String::new(),
    };
    let spec = ClipSpec {
        prompt: a.prompt.clone(),
        negative_prompt: a.negative.clone(),
        model: a.model.clone(),
        motion,
        motion_loras: a
            .motion_loras
            .iter()
            .map(|l| crate::generate::parse_lora(l))
            .collect::<Result<_>>()?,
        frames: a.frames,
        fps: a.fps,
        context: a.context,
        overlap: a.overlap,
        looped: a.looped,
        keyframes: a.keys.clone(),
        walk: a.walk,
        source: match &a.source {
            Some(s) if std::path::Path::new(s).exists() => Some(
                std::path::absolute(s)
                    .with_context(|| format!("cannot resolve {s}"))?
                    .to_string_lossy()
                    .into_owned(),
            ),
            other => other.clone(),
        },
        strength: a.strength,
        coherence: a.coherence,
        width: a.width,
        height: a.height,
        steps: a.steps,
        guidance: a.guidance,
        scheduler: None,
        seed: a.seed.and_then(|s| s.0),
        formats: a.formats.clone(),
        audio: a
            .audio
            .as_ref()
            .map(|p| {
                std::path::absolute(p)
                    .with_context(|| format!("cannot resolve {}", p.display()))
                    .map(|p| p.to_string_lossy().into_owned())
            })
            .transpose()?,
        name: a.name.clone(),
        dtype: None,
        device: None,
    };
    let done = submit_and_follow(
        app,
        a.detach.detach,
        |w| w.submit_clip(spec),
        |_, job| {
            if let JobSpec::Clip(s) = &job.spec {
                eprintln!(
                    "job {}: {} · seed {} · {} frames at {} fps{} · {}×{} · {}",
                    job.id,
                    s.model,
                    s.seed.unwrap_or(0),
                    s.frames,
                    s.fps,
                    if s.looped { ", looped" } else { "" },
                    s.width.unwrap_or(0),
                    s.height.unwrap_or(0),
                    s.formats
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
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
    if let Some(dir) = &a.out {
        for id in &record.outputs {
            written.extend(app.export_asset(&id.0, dir)?);
        }
    }
    let recipe = match record.outputs.first() {
        Some(id) => Some(app.clip_recipe(&id.0)?),
        None => None,
    };
    if a.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": record.id,
                "assets": record.outputs,
                "loop_score": recipe.as_ref().map(|r| r.loop_score),
                "seconds": recipe.as_ref().map(|r| r.seconds),
                "written": written,
            }))?
        );
    } else {
        for id in &record.outputs {
            println!("made {id}");
        }
        if let Some(r) = &recipe {
            println!(
                "loop score {:.2} (seam {:.3}, median step {:.3}) · {:.1} s",
                r.loop_score.score, r.loop_score.seam, r.loop_score.step, r.seconds
            );
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
    fn a_key_names_a_frame_a_prompt_and_maybe_a_seed() {
        let k = parse_key("12:a dragon at dusk@7").expect("key");
        assert_eq!(
            (k.frame, k.prompt.as_str(), k.seed),
            (12, "a dragon at dusk", Some(7))
        );
        let k = parse_key("4:mail@example").expect("no seed");
        assert_eq!((k.prompt.as_str(), k.seed), ("mail@example", None));
        assert!(parse_key("dragon").is_err());
        assert!(parse_key("x:dragon").is_err());
    }
}
