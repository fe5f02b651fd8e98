//! `mintframe encode` and `mintframe probe`: clips out (MP4, WebM with alpha, APNG, WebP, GIF,
//! by the output's extension) from anything the preview reads, and what a video file holds.

use std::path::PathBuf;

use anyhow::Result;
use mintframe_studio::paths::{self, Source};
use mintframe_studio::{App, Settings};

#[derive(Debug, clap::Args)]
pub(crate) struct EncodeArgs {
    /// An asset id (or a unique prefix), a PNG sheet (with --frame or an Aseprite JSON beside
    /// it), an Aseprite JSON, a folder of PNGs, a GIF or a video.
    source: String,
    /// The file to write: .mp4 (H.264), .webm (VP9 with alpha), .png (APNG), .webp or .gif.
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// A sheet's cell size, WxH.
    #[arg(long)]
    frame: Option<String>,
    /// Frames per second (default: the source's own timing, else 12).
    #[arg(long)]
    fps: Option<u32>,
    /// Quality for MP4 and WebM, lower is better (default 18 for H.264, 24 for VP9).
    #[arg(long)]
    crf: Option<u32>,
    /// A soundtrack (any audio FFmpeg reads: WAV, MP3, Ogg, FLAC, a video's sound) for .mp4
    /// (AAC) or .webm (Opus), cut to the clip's length.
    #[arg(long)]
    audio: Option<PathBuf>,
    #[command(flatten)]
    output: crate::Output,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Lock {
    Auto,
    On,
    Off,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InterpolateArgs {
    /// What to put frames between: an asset id, a sheet (with --frame), an Aseprite JSON, a
    /// folder of PNGs, a GIF or a video.
    source: String,
    /// The file to write (.mp4, .webm, .png for APNG, .webp or .gif).
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// RIFE 4.x weights as safetensors (RIFE's flownet state dict; convert a flownet.pkl once
    /// with safetensors' `save_file(torch.load(…, weights_only=True))`).
    #[arg(long)]
    rife: PathBuf,
    /// Frames become this many times as many (2 to 16).
    #[arg(long, default_value_t = 2)]
    factor: u32,
    /// Also put frames between the last and the first.
    #[arg(long = "loop")]
    looped: bool,
    /// Put new frames back into the source's colours: auto (when it uses 256 or fewer), on,
    /// off.
    #[arg(long, value_enum, default_value_t = Lock::Auto)]
    palette_lock: Lock,
    /// A sheet's cell size, WxH.
    #[arg(long)]
    frame: Option<String>,
    /// Frames per second (default: the source's rate times the factor).
    #[arg(long)]
    fps: Option<u32>,
    #[command(flatten)]
    output: crate::Output,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ProbeArgs {
    /// A video or animation file.
    file: PathBuf,
    #[command(flatten)]
    output: crate::Output,
}

pub(crate) fn encode(settings: &Settings, a: EncodeArgs) -> Result<()> {
    let frame_size = a
        .frame
        .as_deref()
        .map(|f| paths::parse_size(f, "--frame"))
        .transpose()?;
    // Refused before reading the source: a wrong extension costs nothing.
    mintframe_studio::video::target_for(&a.out)?;
    let seq = match Source::of(&a.source) {
        Source::Path(p) => mintframe_studio::preview::load_sequence(&p, frame_size)?,
        Source::Asset(prefix) => {
            let app = App::open(settings.clone())?;
            let id = app.asset(&prefix)?.summary.id.to_string();
            app.asset_sequence(&id, frame_size)?
        }
    };
    let done =
        mintframe_studio::video::encode_sequence(&seq, &a.out, a.fps, a.crf, a.audio.as_deref())?;
    if a.output.json {
        println!("{}", serde_json::to_string(&done)?);
    } else {
        println!(
            "wrote {} ({} frames, {}×{}, {} fps)",
            done.path, done.frames, done.width, done.height, done.fps
        );
    }
    Ok(())
}

fn source_sequence(
    settings: &Settings,
    source: &str,
    frame: Option<&str>,
) -> Result<mintframe_studio::Sequence> {
    let frame_size = frame.map(|f| paths::parse_size(f, "--frame")).transpose()?;
    Ok(match Source::of(source) {
        Source::Path(p) => mintframe_studio::preview::load_sequence(&p, frame_size)?,
        Source::Asset(prefix) => {
            let app = App::open(settings.clone())?;
            let id = app.asset(&prefix)?.summary.id.to_string();
            app.asset_sequence(&id, frame_size)?
        }
    })
}

pub(crate) fn interpolate(settings: &Settings, a: InterpolateArgs) -> Result<()> {
    use mintframe_studio::interpolate::{PaletteLock, interpolate_frames, load_rife};
    mintframe_studio::video::target_for(&a.out)?;
    let rife = load_rife(&a.rife)?;
    let seq = source_sequence(settings, &a.source, a.frame.as_deref())?;
    let lock = match a.palette_lock {
        Lock::Auto => PaletteLock::Auto,
        Lock::On => PaletteLock::On,
        Lock::Off => PaletteLock::Off,
    };
    let src_fps = mintframe_studio::video::sequence_fps(&seq, 12);
    let made = interpolate_frames(
        &rife,
        &seq.frames,
        a.factor,
        a.looped,
        lock,
        &mintframe_studio::JobCtx::detached(),
    )?;
    let fps = a.fps.unwrap_or((src_fps * a.factor).min(120));
    let out_seq = mintframe_studio::Sequence {
        durations_ms: vec![None; made.frames.len()],
        frames: made.frames,
        tags: Vec::new(),
    };
    let done = mintframe_studio::video::encode_sequence(&out_seq, &a.out, Some(fps), None, None)?;
    if a.output.json {
        println!(
            "{}",
            serde_json::json!({
                "path": done.path,
                "frames": done.frames,
                "fps": done.fps,
                "source_frames": seq.frames.len(),
                "palette": made.palette,
            })
        );
    } else {
        println!(
            "wrote {} ({} frames from {}, {} fps{})",
            done.path,
            done.frames,
            seq.frames.len(),
            done.fps,
            made.palette
                .map(|n| format!(", locked to the source's {n} colours"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub(crate) fn probe(a: ProbeArgs) -> Result<()> {
    let p = mintframe_studio::video::probe(&a.file)?;
    if a.output.json {
        println!(
            "{}",
            serde_json::json!({
                "width": p.width,
                "height": p.height,
                "fps": p.fps,
                "duration_s": p.duration_s,
                "codec": p.codec,
                "frames": p.frames,
                "alpha": p.alpha,
                "audio": p.audio,
            })
        );
    } else {
        println!(
            "{}: {} {}×{}, {} frames at {:.3} fps, {:.2} s, alpha {}, audio {}",
            a.file.display(),
            p.codec,
            p.width,
            p.height,
            p.frames,
            p.fps,
            p.duration_s,
            if p.alpha { "yes" } else { "no" },
            p.audio.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}
