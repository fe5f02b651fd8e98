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
    #[arg(long, value_enum, default_value_t = mintframe_types::PaletteLock::Auto)]
    palette_lock: mintframe_types::PaletteLock,
    /// A sheet's cell size, WxH.
    #[arg(long)]
    frame: Option<String>,
    /// Frames per second (default: the source's rate times the factor).
    #[arg(long)]
    fps: Option<u32>,
    #[command(flatten)]
    output: crate::Output,
    #[command(flatten)]
    detach: crate::Detach,
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

/// An in-between clip is a job (it can take minutes at real size): its asset's main file is
/// then copied to `-o`.
pub(crate) fn interpolate(settings: &Settings, a: InterpolateArgs) -> Result<()> {
    use mintframe_types::{ClipFormat, InterpolateSpec, JobState};
    let format = match mintframe_studio::video::target_for(&a.out)? {
        mintframe_studio::video::Target::Gif => ClipFormat::Gif,
        mintframe_studio::video::Target::Video(f) => match f {
            mintframe_studio::video::VideoFormat::Mp4 => ClipFormat::Mp4,
            mintframe_studio::video::VideoFormat::WebM => ClipFormat::Webm,
            mintframe_studio::video::VideoFormat::Apng => ClipFormat::Apng,
            mintframe_studio::video::VideoFormat::WebP => ClipFormat::Webp,
        },
    };
    // Files are made absolute (the job may run elsewhere); anything else is an asset id or a
    // RIFE name.
    let absolute = |s: &str| -> Result<String> {
        Ok(if std::path::Path::new(s).exists() {
            paths::absolute(s)?
        } else {
            s.to_owned()
        })
    };
    let spec = InterpolateSpec {
        source: absolute(&a.source)?,
        rife: absolute(&a.rife.to_string_lossy())?,
        factor: a.factor,
        looped: a.looped,
        palette_lock: a.palette_lock,
        fps: a.fps,
        frame_size: a
            .frame
            .as_deref()
            .map(|f| paths::parse_size(f, "--frame"))
            .transpose()?,
        formats: vec![format],
        name: a.out.file_stem().map(|s| s.to_string_lossy().into_owned()),
    };
    let app = App::open(settings.clone())?;
    let done = crate::jobs::submit_and_follow(
        app,
        a.detach.detach,
        |w| w.submit_interpolate(spec),
        |_, _| {},
    )?;
    let Some((app, record)) = done else {
        return Ok(());
    };
    if record.state != JobState::Succeeded {
        anyhow::bail!(
            "job {} {}: {}",
            record.id,
            record.state,
            record.error.as_deref().unwrap_or("no reason recorded")
        );
    }
    let id = record
        .outputs
        .first()
        .ok_or_else(|| anyhow::anyhow!("job {} made no clip", record.id))?
        .to_string();
    app.copy_asset_file(&id, "main", &a.out)?;
    let recipe = app.interpolate_recipe(&id)?;
    let frames =
        recipe.source_frames * a.factor as usize - if a.looped { 0 } else { a.factor as usize - 1 };
    if a.output.json {
        println!(
            "{}",
            serde_json::json!({
                "asset": id,
                "path": a.out,
                "frames": frames,
                "source_frames": recipe.source_frames,
                "palette": recipe.palette,
            })
        );
    } else {
        println!(
            "made {id}\nwrote {} ({frames} frames from {}{})",
            a.out.display(),
            recipe.source_frames,
            recipe
                .palette
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
