//! Post-processing jobs (`mintframe pixelate`, `cutout`; the studio's Sprite tools): each
//! source, a library asset or a file, goes through `media::pixel`'s steps into one new asset.
//! Every source is loaded before any step runs, so a palette computed for the batch is one
//! palette for all of them.

use std::io::Cursor;
use std::path::Path;

use mintframe_jobs::JobCtx;
use mintframe_library::{NewAsset, NewFile, sanitize_file_name};
use mintframe_media::Rgba;
use mintframe_types::{AssetKind, JobRecord, PostStep, Recipe};

use crate::{App, StudioError};

/// A palette's colours: a built-in by name (`pico-8`, …) or a palette file (`.gpl`, `.pal`,
/// `.hex`, a palette PNG), read by its content.
pub fn palette_colors(spec: &str) -> Result<Vec<[u8; 3]>, StudioError> {
    if let Ok(b) = spec.parse::<mintframe_types::BuiltinPalette>() {
        return Ok(mintframe_media::pixel::Palette::builtin(b).colors);
    }
    let path = Path::new(spec);
    if !path.exists() {
        return Err(StudioError::NotFound(format!(
            "palette {spec:?} (neither a built-in palette — {} — nor a file)",
            mintframe_types::BuiltinPalette::names()
        )));
    }
    Ok(mintframe_media::pixel::Palette::read(path)?.colors)
}

/// `#rrggbb` (opaque) or `#rrggbbaa`.
pub fn parse_color(s: &str) -> Option<[u8; 4]> {
    let h = s.trim().trim_start_matches('#');
    let [r, g, b] = mintframe_media::pixel::parse_hex(h.get(..6)?)?;
    match h.len() {
        6 => Some([r, g, b, 255]),
        8 => Some([r, g, b, u8::from_str_radix(h.get(6..8)?, 16).ok()?]),
        _ => None,
    }
}

/// One loaded source: its frames and timing, a name for the output, its recipe if generated.
pub(crate) struct Source {
    pub(crate) frames: Vec<Rgba>,
    durations_ms: Vec<Option<u32>>,
    name: String,
    kind: AssetKind,
    pub(crate) recipe: Option<Recipe>,
}

/// What the outputs are called after: the last step that changes what the image is.
fn suffix(steps: &[PostStep]) -> &'static str {
    let pixel = steps
        .iter()
        .any(|s| matches!(s, PostStep::Pixelate { .. } | PostStep::Quantize { .. }));
    let cut = steps
        .iter()
        .any(|s| matches!(s, PostStep::Key { .. } | PostStep::Matte { .. }));
    match (pixel, cut) {
        (true, _) => "pixel",
        (false, true) => "cutout",
        _ => "processed",
    }
}

impl App {
    pub(crate) fn load_source(&self, s: &str) -> Result<Source, StudioError> {
        let path = Path::new(s);
        if path.is_absolute() && path.exists() {
            let seq = mintframe_media::load_sequence(path, None)?;
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or("image")
                .to_owned();
            let kind = if seq.frames.len() > 1 {
                AssetKind::Animation
            } else {
                AssetKind::Image
            };
            return Ok(Source {
                frames: seq.frames,
                durations_ms: seq.durations_ms,
                name,
                kind,
                recipe: None,
            });
        }
        let detail = self.healthy_asset(s)?;
        let seq = self.asset_sequence(&detail.summary.id.0, None)?;
        Ok(Source {
            frames: seq.frames,
            durations_ms: seq.durations_ms,
            name: detail.summary.name,
            kind: detail.summary.kind,
            recipe: detail.recipe,
        })
    }

    /// Runs a `Process` job: outputs already made (a resumed job) are not made again; the
    /// steps are deterministic, so the rest come out as they would have.
    pub(crate) fn run_process(
        &self,
        job: &JobRecord,
        sources: &[String],
        steps: &[PostStep],
        kind: Option<AssetKind>,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        if sources.is_empty() {
            return Err(StudioError::Settings(
                "nothing to process: give at least one image".into(),
            ));
        }
        let total = sources.len() as u64 * 2;
        let mut loaded = Vec::with_capacity(sources.len());
        for (i, s) in sources.iter().enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress("load", i as u64, total);
            loaded.push(self.load_source(s)?);
        }
        let mut images: Vec<Vec<Rgba>> = loaded
            .iter_mut()
            .map(|s| std::mem::take(&mut s.frames))
            .collect();
        ctx.progress("process", sources.len() as u64, total);
        // Image steps run in media; a matte step runs a network here, between them.
        let mut recorded = Vec::with_capacity(steps.len());
        let mut rest = steps;
        while !rest.is_empty() {
            let cut = rest
                .iter()
                .position(|s| matches!(s, PostStep::Matte { .. }))
                .unwrap_or(rest.len());
            mintframe_media::pixel::apply(&mut images, &rest[..cut])?;
            recorded.extend(rest[..cut].iter().cloned());
            if let Some(PostStep::Matte { model, .. }) = rest.get(cut) {
                recorded.push(self.matte_frames(&mut images, *model, ctx)?);
                rest = &rest[cut + 1..];
            } else {
                rest = &[];
            }
        }
        let steps = recorded.as_slice();
        let tag = suffix(steps);
        for (i, (src, frames)) in loaded
            .iter()
            .zip(&images)
            .enumerate()
            .skip(job.outputs.len())
        {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress("save", (sources.len() + i) as u64, total);
            let (bytes, mime, ext) = if frames.len() == 1 {
                (
                    mintframe_media::encode_png_rgba(&frames[0])?,
                    "image/png",
                    "png",
                )
            } else {
                // The source's own timing where it had one; 12 fps otherwise.
                let ms = src
                    .durations_ms
                    .iter()
                    .flatten()
                    .next()
                    .copied()
                    .unwrap_or(83);
                let fps = (1000 / ms.max(1)).clamp(1, 50);
                (
                    mintframe_media::encode_gif(frames, fps)?,
                    "image/gif",
                    "gif",
                )
            };
            let name = format!("{}-{tag}", src.name);
            let stored = self
                .library
                .store(&mut Cursor::new(&bytes), bytes.len() as u64, ctx)?;
            let recipe = src.recipe.clone().map(|mut r| {
                r.post_steps.extend(steps.iter().cloned());
                r
            });
            let out_kind = kind.unwrap_or(match src.kind {
                AssetKind::Animation | AssetKind::Clip if frames.len() == 1 => AssetKind::Image,
                AssetKind::Clip => AssetKind::Animation,
                k => k,
            });
            self.library.add_asset(NewAsset {
                kind: out_kind,
                name: name.clone(),
                recipe,
                job: Some(job.id.clone()),
                files: vec![NewFile {
                    role: "main".into(),
                    file_name: sanitize_file_name(&format!("{name}.{ext}")),
                    mime: mime.into(),
                    stored,
                }],
            })?;
        }
        ctx.progress("save", total, total);
        Ok(())
    }
}
