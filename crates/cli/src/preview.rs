//! `mintframe preview`: the native preview window.

use std::path::PathBuf;

use anyhow::{Result, bail};
use mintframe_studio::{App, Settings};

use mintframe_studio::paths::{self, Source};

#[derive(Debug, clap::Args)]
pub(crate) struct PreviewArgs {
    /// An asset id (or a unique prefix), a PNG (a sheet with --frame, or with an Aseprite JSON of
    /// the same name beside it), an Aseprite JSON, a folder of PNGs, a GIF or a video.
    pub(crate) source: String,
    /// A sheet's cell size, WxH.
    #[arg(long)]
    pub(crate) frame: Option<String>,
    /// Frames per second where the source does not time its frames.
    #[arg(long, default_value_t = 12)]
    pub(crate) fps: u32,
    #[arg(long, default_value_t = 4)]
    pub(crate) zoom: u32,
    /// Repeat 3×3 to check that a tile is seamless.
    #[arg(long)]
    pub(crate) tile: bool,
    /// Show the previous and next frames faded behind this one.
    #[arg(long)]
    pub(crate) onion: bool,
    /// Linear filtering (default: nearest, for pixel art).
    #[arg(long)]
    pub(crate) linear: bool,
    /// Pixel grid (zoom 4 and up).
    #[arg(long)]
    pub(crate) grid: bool,
    /// `checker` or a colour such as `#20242c`.
    #[arg(long, default_value = "checker")]
    pub(crate) backdrop: String,
    /// Play forwards then backwards.
    #[arg(long)]
    pub(crate) pingpong: bool,
    /// Start paused.
    #[arg(long)]
    pub(crate) paused: bool,
    /// Start at this frame (from 0).
    #[arg(long, default_value_t = 0)]
    pub(crate) index: usize,
    /// Where "Export frame" writes PNGs (default: the current folder).
    #[arg(long, default_value = ".")]
    pub(crate) export_dir: PathBuf,
    /// A game's background image (PNG) to check the sprite against.
    #[arg(long, value_name = "PNG")]
    pub(crate) backdrop_image: Option<PathBuf>,
    /// Reload the file whenever it changes (a job's work so far); waits for it to appear.
    #[arg(long)]
    pub(crate) watch: bool,
}

/// How long `--watch` waits for a job to write its first frames.
const WATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

pub(crate) fn preview(settings: &Settings, a: PreviewArgs) -> Result<()> {
    let frame_size = a
        .frame
        .as_deref()
        .map(|f| paths::parse_size(f, "--frame"))
        .transpose()?;
    let mut watch = None;
    // Watched, the source is a file a job is about to write: not there yet is not an asset id.
    let source = if a.watch {
        Source::Path(PathBuf::from(&a.source))
    } else {
        Source::of(&a.source)
    };
    let (seq, stem) = match source {
        Source::Path(path) => {
            if a.watch {
                let until = std::time::Instant::now() + WATCH_WAIT;
                while !path.exists() {
                    if std::time::Instant::now() > until {
                        bail!(
                            "{} did not appear within {} s",
                            path.display(),
                            WATCH_WAIT.as_secs()
                        );
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                let p = path.clone();
                watch = Some(mintframe_preview::Watch {
                    path: path.clone(),
                    load: Box::new(move || {
                        mintframe_studio::preview::load_sequence(&p, frame_size)
                            .map_err(|e| e.to_string())
                    }),
                });
            }
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "frame".into());
            (
                mintframe_studio::preview::load_sequence(&path, frame_size)?,
                stem,
            )
        }
        Source::Asset(prefix) => {
            let app = App::open(settings.clone())?;
            let id = app.asset(&prefix)?.summary.id.to_string();
            (app.asset_sequence(&id, frame_size)?, id)
        }
    };
    // Names from a file or an asset id never leave the export folder.
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let opts = mintframe_preview::Options {
        title: format!("{} — Mintframe preview", a.source),
        fps: a.fps,
        zoom: a.zoom,
        tile: a.tile,
        onion: a.onion,
        linear: a.linear,
        grid: a.grid,
        backdrop: mintframe_studio::preview::backdrop(&a.backdrop)?,
        playback: if a.pingpong {
            mintframe_preview::Playback::PingPong
        } else {
            mintframe_preview::Playback::Loop
        },
        paused: a.paused,
        start_frame: a.index,
        export_dir: a.export_dir,
        export_stem: stem,
        backdrop_image: a
            .backdrop_image
            .as_deref()
            .map(mintframe_studio::preview::read_png)
            .transpose()?,
    };
    if a.index >= seq.frames.len() {
        bail!(
            "--index {} is past the last frame ({} frames)",
            a.index,
            seq.frames.len()
        );
    }
    mintframe_preview::run_watched(seq, opts, watch)?;
    Ok(())
}
