//! Media encode and decode: PNG stills and GIFs in and out, animations in from sheets, Aseprite
//! JSON, PNG sequences, GIFs and videos (FFmpeg), and what the linked FFmpeg can do for
//! `mintframe doctor`.

use ffmpeg_next as ffmpeg;

pub mod aseprite;
mod audio;
pub mod cine;
mod encode;
pub mod export;
mod frames;
mod guard;
pub mod pixel;
pub mod pose;
mod sequence;
pub mod sheet;
pub mod tileset;
pub use sequence::{Direction, Sequence, Tag};
mod still;
mod video;

pub use audio::{AUDIO_RATE, Audio, decode_audio, track_channels as audio_channels};
pub use encode::{
    VideoFormat, VideoProbe, VideoWriter, encode_video, encode_video_with_audio, encode_webp,
    probe_video,
};
pub use frames::{
    MAX_FRAMES, aseprite_sheet, check_file, decode_bytes, grid, load_sequence, load_sequence_as,
};
pub use guard::{Format, Limits, Probe, open_regular, sniff_file};
pub use still::{Rgba, decode_png_rgba, encode_gif, encode_png_rgba, read_png_rgba, resize_cover};
pub use video::decode_video;

/// The FFmpeg encoders the code calls ([`VideoFormat::encoder`] of each format and
/// [`VideoFormat::audio_encoder`] of those with sound). GIFs and PNG stills are written by Rust
/// crates, not FFmpeg, so no other encoder is required.
pub const REQUIRED_ENCODERS: &[&str] = &[
    "libx264",
    "libvpx-vp9",
    "apng",
    "libwebp_anim",
    "aac",
    "libopus",
];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("the FFmpeg libraries failed to initialise: {0}")]
    Init(#[from] ffmpeg::Error),
    #[error("image {path}: {reason}")]
    Image {
        path: std::path::PathBuf,
        reason: String,
    },
    /// A header claims more than [`Limits`] allow; nothing was allocated for it.
    #[error("{path} {what}; it was refused before decoding")]
    OverLimit {
        path: std::path::PathBuf,
        what: String,
    },
    /// Not something that can be read as media at all (a FIFO, an empty or unknown file).
    #[error("{path} {reason}")]
    Refused {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// The linked FFmpeg libraries and which of the encoders we need they provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfmpegInfo {
    /// `(library, "major.minor.micro")`, e.g. `("libavcodec", "59.37.100")`.
    pub libraries: Vec<(&'static str, String)>,
    /// `(encoder, found)` for each of [`REQUIRED_ENCODERS`].
    pub encoders: Vec<(&'static str, bool)>,
    pub configuration: String,
}

impl FfmpegInfo {
    pub fn missing_encoders(&self) -> Vec<&'static str> {
        self.encoders
            .iter()
            .filter(|(_, found)| !found)
            .map(|(name, _)| *name)
            .collect()
    }
}

fn dotted(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

/// Asks the linked FFmpeg what it is and what it can encode.
pub fn ffmpeg_info() -> Result<FfmpegInfo, MediaError> {
    ffmpeg::init()?;
    let libraries = vec![
        ("libavutil", dotted(ffmpeg::util::version())),
        ("libavcodec", dotted(ffmpeg::codec::version())),
        ("libavformat", dotted(ffmpeg::format::version())),
        ("libswscale", dotted(ffmpeg::software::scaling::version())),
    ];
    let encoders = REQUIRED_ENCODERS
        .iter()
        .map(|name| (*name, ffmpeg::encoder::find_by_name(name).is_some()))
        .collect();
    Ok(FfmpegInfo {
        libraries,
        encoders,
        configuration: ffmpeg::codec::configuration().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linked_ffmpeg_reports_versions_and_encoders() {
        let info = ffmpeg_info().expect("ffmpeg");
        let (name, avcodec) = &info.libraries[1];
        assert_eq!(*name, "libavcodec");
        let major: u32 = avcodec
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .expect("major");
        assert!(major >= 58, "libavcodec {avcodec} is older than FFmpeg 4");
        // Debian's FFmpeg is built with libx264, libvpx and libwebp, which the writers call.
        assert_eq!(
            info.encoders,
            vec![
                ("libx264", true),
                ("libvpx-vp9", true),
                ("apng", true),
                ("libwebp_anim", true),
                ("aac", true),
                ("libopus", true)
            ]
        );
        for f in [
            VideoFormat::Mp4,
            VideoFormat::WebM,
            VideoFormat::Apng,
            VideoFormat::WebP,
        ] {
            assert!(REQUIRED_ENCODERS.contains(&f.encoder()), "{f:?}");
            if let Some(a) = f.audio_encoder() {
                assert!(REQUIRED_ENCODERS.contains(&a), "{f:?}");
            }
        }
        assert!(!info.configuration.is_empty());
    }
}
