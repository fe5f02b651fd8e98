//! Clips out and in: any sequence Mintframe reads (a sheet, an Aseprite export, a GIF, a folder
//! of PNGs, a video, a library asset) encoded to MP4, WebM with alpha, APNG, animated WebP or
//! GIF, chosen by the output's extension; and what a video file holds (`probe`).

use std::path::Path;

use mintframe_media::{Rgba, Sequence};
pub use mintframe_media::{VideoFormat, VideoProbe};
use serde::Serialize;

use crate::StudioError;

/// What an output file's extension asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Video(VideoFormat),
    /// GIF through the gif crate: one palette per frame, per-frame delays kept.
    Gif,
}

/// The target for `out`'s extension.
pub fn target_for(out: &Path) -> Result<Target, StudioError> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "mp4" => Target::Video(VideoFormat::Mp4),
        "webm" => Target::Video(VideoFormat::WebM),
        "apng" | "png" => Target::Video(VideoFormat::Apng),
        "webp" => Target::Video(VideoFormat::WebP),
        "gif" => Target::Gif,
        other => {
            return Err(StudioError::Settings(format!(
                "{}: .{other} is not a format Mintframe writes; use .mp4, .webm, .png (APNG), .webp or .gif",
                out.display()
            )));
        }
    })
}

/// What an encode wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Encoded {
    pub path: String,
    pub frames: usize,
    pub fps: u32,
    pub width: u32,
    pub height: u32,
}

/// The rate a sequence plays at: its frames' own timing (their mean, so a GIF's 12/13
/// hundredths alternation reads as the 8 fps it is) when every frame has one, else `fallback`.
pub fn sequence_fps(seq: &Sequence, fallback: u32) -> u32 {
    let known: Option<Vec<u32>> = seq.durations_ms.iter().copied().collect();
    match known {
        Some(ms) if !ms.is_empty() && ms.iter().all(|d| *d > 0) => {
            let total: u64 = ms.iter().map(|d| u64::from(*d)).sum();
            ((1000 * ms.len() as u64 + total / 2) / total).clamp(1, 120) as u32
        }
        _ => fallback,
    }
}

/// Encodes `seq` to `out` (format by extension) at `fps` (the sequence's own rate when
/// `None`), `crf` for MP4 and WebM, with `audio` (any file FFmpeg reads) as its soundtrack in
/// MP4 and WebM. Whole or not at all.
pub fn encode_sequence(
    seq: &Sequence,
    out: &Path,
    fps: Option<u32>,
    crf: Option<u32>,
    audio: Option<&Path>,
) -> Result<Encoded, StudioError> {
    let target = target_for(out)?;
    if audio.is_some() && !matches!(target, Target::Video(f) if f.audio_encoder().is_some()) {
        return Err(StudioError::Settings(format!(
            "{}: only .mp4 and .webm carry a soundtrack",
            out.display()
        )));
    }
    let first = seq.frames.first().ok_or_else(|| {
        StudioError::Settings(format!("{}: the source has no frames", out.display()))
    })?;
    let fps = fps.unwrap_or_else(|| sequence_fps(seq, 12));
    match target {
        Target::Video(f) => {
            mintframe_media::encode_video_with_audio(&seq.frames, f, fps, crf, audio, out)?
        }
        Target::Gif => {
            let bytes = mintframe_media::encode_gif(&seq.frames, fps)?;
            crate::paths::write_whole(out, &bytes)?;
        }
    }
    Ok(Encoded {
        path: out.display().to_string(),
        frames: seq.frames.len(),
        fps,
        width: first.width,
        height: first.height,
    })
}

/// What a video or animation file holds.
pub fn probe(path: &Path) -> Result<VideoProbe, StudioError> {
    Ok(mintframe_media::probe_video(path)?)
}

/// The frames of a probe-able file, for tests and callers that need pixels.
pub fn frames_of(path: &Path) -> Result<Vec<Rgba>, StudioError> {
    Ok(mintframe_media::decode_video(path)?.frames)
}
