//! Sheet jobs (`mintframe sheet`; the studio's Sheet view): the frames of library assets (or
//! files: a PNG, an Aseprite JSON with its PNG, an `.aseprite`, a GIF) become one sprite sheet
//! asset — the packed PNG plus every export asked for, all files of that one asset, so an
//! export of it is a folder an engine imports as is.

use std::io::Cursor;
use std::path::Path;

use mintframe_jobs::JobCtx;
use mintframe_library::{NewAsset, NewFile, sanitize_file_name};
use mintframe_media::sheet::{Animation, PackOptions, Sheet};
use mintframe_media::{Rgba, Sequence};
use mintframe_types::{AnimationSpec, AssetKind, JobRecord, PlayDirection, SheetFormat, SheetSpec};

use crate::{App, StudioError};

/// The role each export has among the sheet asset's files, and its file name's ending.
pub fn format_file(f: SheetFormat) -> (&'static str, &'static str, &'static str) {
    match f {
        SheetFormat::AsepriteJson => ("aseprite-json", ".json", "application/json"),
        SheetFormat::AsepriteJsonArray => {
            ("aseprite-json-array", ".array.json", "application/json")
        }
        SheetFormat::Aseprite => ("aseprite", ".aseprite", "image/x-aseprite"),
        SheetFormat::TexturePacker => ("texturepacker", ".tp.json", "application/json"),
        SheetFormat::TexturePackerArray => {
            ("texturepacker-array", ".tp-array.json", "application/json")
        }
        SheetFormat::Phaser => ("phaser", ".phaser.json", "application/json"),
        SheetFormat::Godot => ("godot", ".tres", "text/plain"),
        SheetFormat::GridInfo => ("grid", ".grid.json", "application/json"),
    }
}

/// The directions of a walk, in the order RPG sheets put their rows.
pub const DIRECTIONS: [&str; 8] = [
    "down",
    "left",
    "right",
    "up",
    "down_left",
    "down_right",
    "up_left",
    "up_right",
];

/// `n` animations named after directions, splitting `frames` evenly (4: down, left, right, up).
pub fn direction_animations(
    prefix: &str,
    n: usize,
    frames: usize,
) -> Result<Vec<AnimationSpec>, StudioError> {
    if !matches!(n, 1 | 2 | 4 | 8) || frames == 0 || !frames.is_multiple_of(n) {
        return Err(StudioError::Settings(format!(
            "{frames} frames do not split into {n} directions: give 1, 2, 4 or 8 directions and \
             a multiple of them in frames"
        )));
    }
    let per = frames / n;
    Ok((0..n)
        .map(|d| AnimationSpec {
            name: if prefix.is_empty() {
                DIRECTIONS[d].to_owned()
            } else {
                format!("{prefix}_{}", DIRECTIONS[d])
            },
            from: (d * per) as u32,
            to: (d * per + per - 1) as u32,
            direction: PlayDirection::Forward,
            looped: true,
        })
        .collect())
}

/// A file of a sheet asset: role, file name, MIME type, bytes.
pub type ExportFile = (String, String, String, Vec<u8>);

/// The sheet's PNG and every export asked for, as (role, file name, MIME type, bytes), each file
/// named after `stem`.
pub fn export_files(
    sheet: &Sheet,
    stem: &str,
    formats: &[SheetFormat],
) -> Result<Vec<ExportFile>, StudioError> {
    let image = format!("{stem}.png");
    let mut files: Vec<ExportFile> = vec![(
        "main".into(),
        image.clone(),
        "image/png".into(),
        mintframe_media::encode_png_rgba(&sheet.image)?,
    )];
    let mut formats = formats.to_vec();
    formats.sort();
    formats.dedup();
    for f in formats {
        let (role, ending, mime) = format_file(f);
        let bytes = match f {
            SheetFormat::AsepriteJson => {
                mintframe_media::export::aseprite_json(sheet, stem, &image, true).into_bytes()
            }
            SheetFormat::AsepriteJsonArray => {
                mintframe_media::export::aseprite_json(sheet, stem, &image, false).into_bytes()
            }
            SheetFormat::TexturePacker => {
                mintframe_media::export::texturepacker_json(sheet, stem, &image, true).into_bytes()
            }
            SheetFormat::TexturePackerArray => {
                mintframe_media::export::texturepacker_json(sheet, stem, &image, false).into_bytes()
            }
            SheetFormat::Phaser => {
                mintframe_media::export::phaser_atlas(sheet, stem, &image).into_bytes()
            }
            SheetFormat::Godot => {
                mintframe_media::export::godot_sprite_frames(sheet, stem, &image).into_bytes()
            }
            SheetFormat::GridInfo => {
                if sheet.layout != mintframe_types::SheetLayout::Grid {
                    return Err(StudioError::Settings(
                        "grid slicing info needs a grid layout (--layout grid)".into(),
                    ));
                }
                mintframe_media::export::grid_info(sheet, &image).into_bytes()
            }
            SheetFormat::Aseprite => {
                let frames: Vec<Rgba> = (0..sheet.placed.len()).map(|i| sheet.frame(i)).collect();
                mintframe_media::aseprite::write_aseprite(
                    &mintframe_media::aseprite::AseDocument {
                        frames: &frames,
                        durations_ms: &sheet.durations_ms,
                        animations: &sheet.animations,
                        pivot: Some(("pivot", sheet.pivot)),
                        layer_name: stem,
                    },
                )?
            }
        };
        files.push((role.into(), format!("{stem}{ending}"), mime.into(), bytes));
    }
    Ok(files)
}

/// One source's frames, its name and where its frames start in the sheet.
struct Loaded {
    seq: Sequence,
    name: String,
}

fn to_play(d: mintframe_media::Direction) -> PlayDirection {
    match d {
        mintframe_media::Direction::Forward => PlayDirection::Forward,
        mintframe_media::Direction::Reverse => PlayDirection::Reverse,
        mintframe_media::Direction::PingPong => PlayDirection::PingPong,
    }
}

impl App {
    fn load_frames(&self, s: &str) -> Result<Loaded, StudioError> {
        let path = Path::new(s);
        if path.is_absolute() && path.exists() {
            let seq = mintframe_media::load_sequence(path, None)?;
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or("sheet")
                .to_owned();
            return Ok(Loaded { seq, name });
        }
        let detail = self.healthy_asset(s)?;
        let seq = self.asset_sequence(&detail.summary.id.0, None)?;
        Ok(Loaded {
            seq,
            name: detail.summary.name,
        })
    }

    /// How many frames `sources` hold together (to split them into directions).
    pub fn count_frames(&self, sources: &[String]) -> Result<usize, StudioError> {
        let mut n = 0;
        for s in sources {
            n += self.load_frames(s)?.seq.frames.len();
        }
        Ok(n)
    }

    /// Packs a sheet from `spec` without storing it: what the job stores, and what the
    /// studio's Sheet view shows before the job is submitted.
    pub fn build_sheet(
        &self,
        spec: &SheetSpec,
        ctx: &JobCtx,
    ) -> Result<(Sheet, String), StudioError> {
        if spec.sources.is_empty() {
            return Err(StudioError::Settings(
                "nothing to pack: give at least one image or animation".into(),
            ));
        }
        if spec.fps == 0 || spec.fps > 120 {
            return Err(StudioError::Settings(format!(
                "--fps {} is out of range: 1 to 120",
                spec.fps
            )));
        }
        let default_ms = (1000 / spec.fps).max(1);
        let mut frames: Vec<Rgba> = Vec::new();
        let mut durations = Vec::new();
        let mut from_sources = Vec::new();
        let mut first_name = None;
        for (i, s) in spec.sources.iter().enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress("load", i as u64, spec.sources.len() as u64 + 1);
            let l = self.load_frames(s)?;
            let base = frames.len();
            if l.seq.tags.is_empty() && l.seq.frames.len() > 1 {
                from_sources.push(Animation {
                    name: l.name.clone(),
                    from: base,
                    to: base + l.seq.frames.len() - 1,
                    direction: PlayDirection::Forward,
                    looped: true,
                });
            }
            for t in &l.seq.tags {
                from_sources.push(Animation {
                    name: t.name.clone(),
                    from: base + t.from,
                    to: base + t.to,
                    direction: to_play(t.direction),
                    looped: true,
                });
            }
            durations.extend(l.seq.durations_ms.iter().map(|d| d.unwrap_or(default_ms)));
            frames.extend(l.seq.frames);
            first_name.get_or_insert(l.name);
        }
        let animations = if spec.animations.is_empty() {
            from_sources
        } else {
            spec.animations
                .iter()
                .map(|a| Animation {
                    name: a.name.clone(),
                    from: a.from as usize,
                    to: a.to as usize,
                    direction: a.direction,
                    looped: a.looped,
                })
                .collect()
        };
        for a in &animations {
            crate::paths::plain_name("animation name", &a.name)?;
        }
        ctx.progress(
            "pack",
            spec.sources.len() as u64,
            spec.sources.len() as u64 + 1,
        );
        let sheet = mintframe_media::sheet::pack(
            &frames,
            &durations,
            animations,
            &PackOptions {
                layout: spec.layout,
                columns: spec.columns,
                padding: spec.padding,
                extrude: spec.extrude,
                anchor: spec.anchor,
            },
        )?;
        if let Some(n) = &spec.name {
            crate::paths::plain_name("sheet name", n)?;
        }
        let mut sheet = sheet;
        if let Some([px, py]) = spec.pivot {
            let [fw, fh] = sheet.frame_size;
            if px > fw || py > fh {
                return Err(StudioError::Settings(format!(
                    "pivot {px},{py} lies outside the {fw}×{fh} frame"
                )));
            }
            sheet.pivot = [px, py];
        }
        let name = spec
            .name
            .clone()
            .or(first_name)
            .unwrap_or_else(|| "sheet".into());
        Ok((sheet, name))
    }

    /// Runs a `Sheet` job: one SpriteSheet asset holding the PNG and every export.
    pub(crate) fn run_sheet(
        &self,
        job: &JobRecord,
        spec: &SheetSpec,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        if !job.outputs.is_empty() {
            // Made before a restart, in the transaction that recorded it.
            return Ok(());
        }
        let (sheet, name) = self.build_sheet(spec, ctx)?;
        // Every file is named after the sheet, sanitised: a name from the user never leaves
        // the export folder.
        let stem = sanitize_file_name(&name);
        let stem = stem.trim_end_matches(".png").to_owned();
        let files = export_files(&sheet, &stem, &spec.formats)?;
        ctx.check().map_err(|_| StudioError::Cancelled)?;
        let total = spec.sources.len() as u64 + 1;
        ctx.progress("save", total, total);
        self.store_sheet_asset(job, name, files, ctx)
    }

    /// Stores `files` and adds them as one SpriteSheet asset of `job`.
    pub(crate) fn store_sheet_asset(
        &self,
        job: &JobRecord,
        name: String,
        files: Vec<ExportFile>,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        let mut new_files = Vec::with_capacity(files.len());
        for (role, file_name, mime, bytes) in files {
            let stored = self
                .library
                .store(&mut Cursor::new(&bytes), bytes.len() as u64, ctx)?;
            new_files.push(NewFile {
                role,
                file_name,
                mime,
                stored,
            });
        }
        self.library.add_asset(NewAsset {
            kind: AssetKind::SpriteSheet,
            name,
            recipe: None,
            job: Some(job.id.clone()),
            files: new_files,
        })?;
        Ok(())
    }
}
