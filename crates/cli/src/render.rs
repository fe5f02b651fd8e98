//! `mintframe render`: headless stills, sheets, GIFs, WebPs, contact sheets, thumbnails.

use std::path::PathBuf;

use anyhow::{Context, Result};
use mintframe_studio::{App, Settings};

use mintframe_studio::paths::{self, Source};

#[derive(Debug, clap::Args)]
pub(crate) struct RenderArgs {
    /// An asset id (or a unique prefix) or a PNG file.
    pub(crate) source: String,
    /// Where to write the PNG.
    #[arg(long, short = 'o')]
    pub(crate) out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub(crate) zoom: u32,
    /// Repeat 3×3 to check that a tile is seamless.
    #[arg(long)]
    pub(crate) tile: bool,
    /// Linear filtering (default: nearest, for pixel art).
    #[arg(long)]
    pub(crate) linear: bool,
    /// Pixel grid (zoom 4 and up).
    #[arg(long)]
    pub(crate) grid: bool,
    /// `checker` or a colour such as `#20242c`.
    #[arg(long, default_value = "checker")]
    pub(crate) backdrop: String,
    /// A sprite sheet's cell size, WxH: render one frame of it.
    #[arg(long)]
    pub(crate) frame: Option<String>,
    /// Which frame (from 0, left to right, top to bottom).
    #[arg(long, default_value_t = 0)]
    pub(crate) index: u32,
    /// Show the previous and next frames faded behind this one.
    #[arg(long)]
    pub(crate) onion: bool,
    /// Write every frame of the sheet as a looping GIF instead (needs --frame).
    #[arg(long)]
    pub(crate) gif: bool,
    /// Frames per second of the GIF.
    #[arg(long, default_value_t = 12)]
    pub(crate) fps: u32,
    /// Write every frame in a grid of this many columns instead (a contact sheet; also for
    /// GIFs, videos, PNG folders and Aseprite JSON).
    #[arg(long)]
    pub(crate) contact_sheet: Option<u32>,
    /// Write the library's thumbnail instead: this many pixels on the longest side, PNG for
    /// a still, an animated GIF for anything that moves.
    #[arg(long)]
    pub(crate) thumbnail: Option<u32>,
    /// Write every frame of the sheet as a looping, lossless animated WebP (full alpha)
    /// instead (needs --frame).
    #[arg(long)]
    pub(crate) webp: bool,
    /// A game's background image (PNG) behind the sprite, stretched to the output.
    #[arg(long, value_name = "PNG")]
    pub(crate) backdrop_image: Option<PathBuf>,
}

pub(crate) fn render(settings: &Settings, a: RenderArgs) -> Result<()> {
    let RenderArgs {
        source,
        out,
        zoom,
        tile,
        linear,
        grid,
        backdrop,
        frame,
        index,
        onion,
        gif,
        fps,
        contact_sheet,
        thumbnail,
        webp,
        backdrop_image,
    } = a;
    let frame_size = frame
        .as_deref()
        .map(|f| paths::parse_size(f, "--frame"))
        .transpose()?;
    let spec = mintframe_types::PreviewSpec {
        zoom,
        tile,
        linear,
        grid,
        backdrop,
        frame_size,
        frame_index: index,
        onion,
    };
    let source = Source::of(&source);
    let sequence = || -> Result<mintframe_studio::Sequence> {
        Ok(match &source {
            Source::Path(p) => mintframe_studio::preview::load_sequence(p, frame_size)?,
            Source::Asset(id) => App::open(settings.clone())?.asset_sequence(id, frame_size)?,
        })
    };
    let still = || -> Result<mintframe_studio::Rgba> {
        Ok(match &source {
            Source::Path(p) => mintframe_studio::preview::read_png(p)?,
            Source::Asset(id) => App::open(settings.clone())?.asset_png(id)?,
        })
    };
    if webp {
        let frames = mintframe_studio::preview::render_animation_frames(&still()?, &spec)?;
        mintframe_studio::encode_webp(&frames, fps, &out)?;
        println!("{}", out.display());
        return Ok(());
    }
    let png = if let Some(bg) = &backdrop_image {
        let bg = mintframe_studio::preview::read_png(bg)?;
        let img = mintframe_studio::preview::render_still_over(&still()?, &spec, Some(&bg))?;
        mintframe_studio::encode_png(&img)?
    } else if let Some(columns) = contact_sheet {
        let sheet =
            mintframe_studio::preview::contact_sheet(&sequence()?, zoom, columns, &spec.backdrop)?;
        mintframe_studio::encode_png(&sheet)?
    } else if let Some(side) = thumbnail {
        mintframe_studio::preview::thumbnail(&sequence()?, side)?.0
    } else if gif {
        mintframe_studio::preview::render_animation(&still()?, &spec, fps)?
    } else {
        match &source {
            Source::Path(p) => mintframe_studio::encode_png(
                &mintframe_studio::preview::render_png_file(p, &spec)?,
            )?,
            Source::Asset(id) => App::open(settings.clone())?.asset_preview_png(id, &spec)?,
        }
    };
    let part = out.with_extension("part");
    std::fs::write(&part, &png).with_context(|| format!("cannot write {}", part.display()))?;
    std::fs::rename(&part, &out).with_context(|| format!("cannot write {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}
