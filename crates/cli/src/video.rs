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
