//! Character packs (`JobSpec::Character`, `mintframe character`, the Character screen): one
//! prompt drawn in every facing of a view and every frame of some animations, as one sprite
//! sheet with its engine exports, a poster, an animated preview per animation, a recipe that
//! makes every frame again and a consistency report.
//!
//! How the frames hold together:
//! - **a pose board**: a facing's frames are laid out in one canvas and generated in one
//!   denoising pass, so every frame attends to the others (same colours, same costume);
//! - each cell starts from the pose's **body silhouette** (img2img at `strength`) and, when an
//!   OpenPose ControlNet is given, follows the pose's **skeleton** drawn as the annotator draws it;
//! - **one palette** for the whole pack, locked after generation;
//! - **registration**: frames anchored on the ground line and the body's core column;
//! - facings that are a mirror of another (W of E, for symmetric cycles) are that row **flipped**,
//!   as artists draw them.
//!
//! - a **reference** (a given picture, or the pack's first frame) that the other boards keep
//!   to: by **reference attention** (every self-attention also attends to the reference's
//!   tokens) and by **img2img chaining** (each cell starts from the reference moved bone by bone
//!   into its pose, repainted at `chain_strength`).
//!
//! A re-roll draws one frame again by inpainting its cell of the board with a new seed (the
//! other cells are pasted back unchanged) or a whole row with a new row seed.

use std::path::Path;

use mintframe_diffusion::controlnet::ControlNet;
use mintframe_diffusion::pipeline::{Control, ReferenceImage, generate_referenced};
use mintframe_diffusion::{Gray, LoadOptions, Padding, Request, Rgb};
use mintframe_jobs::JobCtx;
use mintframe_library::sanitize_file_name;
use mintframe_media::Rgba;
use mintframe_media::pose::render::{Canvas, openpose, silhouette, warp_onto};
use mintframe_media::sheet::{Animation, PackOptions, Sheet};
use mintframe_types::pose::{Pose, PoseTemplate};
use mintframe_types::{
    Anchor, AnimationKind, CharacterSpec, ConsistencyReport, Dither, Downscale, Facing, JobRecord,
    JobSpec, PlayDirection, PostStep, RowReport, SheetFormat, SheetLayout, WeightFile,
};
use serde::{Deserialize, Serialize};

use crate::generate::{Generator, candle_dtype, fresh_seed, sha256_hex};
use crate::live::{Live, LiveRow};
use crate::{App, StudioError};

/// The body and background colours of the silhouettes frames start from.
const BODY: [u8; 3] = [112, 112, 112];
const BACKGROUND: [u8; 3] = [208, 208, 208];
/// How far from the border's colour a pixel may be and still count as background.
const BACKGROUND_TOLERANCE: u8 = 28;
/// Frames per row of a pose board.
const BOARD_COLUMNS: usize = 4;
/// The largest board side: past it one denoising pass needs more memory than a desktop has
/// (a 1024×512 board at SD 1.5 size peaks at 8.3 GiB, BENCHMARKS.md).
const MAX_BOARD_SIDE: usize = 2048;

/// A facing as engines name animation rows.
pub fn facing_name(f: Facing) -> &'static str {
    match f {
        Facing::S => "down",
        Facing::W => "left",
        Facing::E => "right",
        Facing::N => "up",
        Facing::Sw => "down_left",
        Facing::Se => "down_right",
        Facing::Nw => "up_left",
        Facing::Ne => "up_right",
    }
}

fn settings(m: String) -> StudioError {
    StudioError::Settings(m)
}

/// How one row (an animation in one facing) was made: what regenerates its frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowRecipe {
    pub animation: AnimationKind,
    pub facing: Facing,
    /// Drawn as this facing's row, flipped.
    pub mirror_of: Option<Facing>,
    /// The board's seed (drawn rows).
    pub seed: Option<u64>,
    /// Columns and rows of the board, and the side of a cell in pixels.
    pub board: Option<[u32; 3]>,
    /// Frames drawn again after the board, in order: (frame, seed).
    pub rerolls: Vec<(u32, u64)>,
    /// The sha256 of the reference's pixels the board kept to, if any.
    #[serde(default)]
    pub reference: Option<String>,
    /// The img2img strength the board was repainted at (`chain_strength` when chained).
    #[serde(default)]
    pub strength: f32,
    pub fps: u32,
    pub looped: bool,
    pub frames: Vec<FrameRecipe>,
}

/// One frame: its pose, its cell of the board and the sha256 of its PNG (before registration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRecipe {
    pub index: u32,
    pub pose: Pose,
    pub sha256: String,
}

/// Everything that made a pack: the completed spec, the weights by hash, the palette and each
/// row's boards. `mintframe character --recipe` runs the spec again; the frames' hashes say
/// whether the result is the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackRecipe {
    pub format: String,
    pub spec: CharacterSpec,
    pub model_id: String,
    pub model_files: Vec<WeightFile>,
    pub controlnet: Option<WeightFile>,
    pub palette: Vec<String>,
    pub app_version: String,
    pub rows: Vec<RowRecipe>,
}

/// A pack before it is stored.
#[derive(Debug)]
pub struct Pack {
    pub recipe: PackRecipe,
    pub report: ConsistencyReport,
    pub sheet: Sheet,
    /// Per row, its frames (RGBA, `size`×`size`, before registration).
    pub rows: Vec<Vec<Rgba>>,
    /// The reference the boards kept to, at the generation size, stored with the pack so a
    /// re-roll keeps to the same one.
    pub reference: Option<Rgb>,
}

/// The pack's template for `kind`: an edited one (embedded in the spec at submit) of the
/// pack's view, else the bundled one.
fn template_for(spec: &CharacterSpec, kind: AnimationKind) -> Result<PoseTemplate, StudioError> {
    if let Some(t) = spec
        .custom_templates
        .iter()
        .find(|t| t.animation == kind && t.view == spec.view)
    {
        return Ok(t.clone());
    }
    Ok(mintframe_media::pose::bundled(spec.view, kind)?)
}

/// Whether `facing` is drawn as another facing of the pack, mirrored.
fn mirrored_in_pack(t: &PoseTemplate, facing: Facing, facings: &[Facing]) -> Option<Facing> {
    t.facings
        .iter()
        .find(|x| x.facing == facing)
        .and_then(|x| x.mirror_of)
        .filter(|m| facings.contains(m))
}

/// The seed of a row's board: the pack's seed, offset per animation and facing so rows differ
/// and stay put when others are added.
fn row_seed(seed: u64, anim: AnimationKind, facing: Facing) -> u64 {
    let a = AnimationKind::ALL
        .iter()
        .position(|x| *x == anim)
        .unwrap_or(0) as u64;
    let f = Facing::ALL.iter().position(|x| *x == facing).unwrap_or(0) as u64;
    seed.wrapping_add(a * 100 + f) & ((1 << 53) - 1)
}

fn locked(hex: &[String]) -> Result<Vec<[u8; 3]>, StudioError> {
    hex.iter()
        .map(|h| {
            mintframe_media::pixel::parse_hex(h)
                .ok_or_else(|| settings(format!("palette colour {h:?} is not #rrggbb")))
        })
        .collect()
}

fn frames_of(spec: &CharacterSpec, t: &PoseTemplate) -> usize {
    spec.frames
        .map(|n| n as usize)
        .unwrap_or_else(|| t.frame_count())
}

impl App {
    /// Fills in what the user left out (model, seed, sampler settings, generation size) and
    /// checks everything a pack needs before it is queued: directions, animations, frames,
    /// sizes, palette, templates, the ControlNet file, the re-rolls.
    pub fn complete_character(
        &self,
        mut spec: CharacterSpec,
    ) -> Result<CharacterSpec, StudioError> {
        use mintframe_types::ranges::{GUIDANCE, MAX_SEED};
        if spec.prompt.trim().is_empty() {
            return Err(settings(
                "the prompt is empty: describe the character".into(),
            ));
        }
        if spec.model.is_empty() {
            spec.model = mintframe_diffusion::offline::DEFAULT_MODEL.to_owned();
        }
        let facings =
            Facing::for_view(spec.view, spec.directions).map_err(|e| settings(e.to_string()))?;
        if spec.animations.is_empty() {
            return Err(settings(format!(
                "no animations: give one or more of {}",
                AnimationKind::names()
            )));
        }
        let mut seen = spec.animations.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != spec.animations.len() {
            return Err(settings("an animation is listed twice".into()));
        }
        if let Some(n) = spec.frames
            && !(2..=16).contains(&n)
        {
            return Err(settings(format!("--frames {n} is out of range: 2 to 16")));
        }
        if !(8..=512).contains(&spec.size) {
            return Err(settings(format!(
                "--size {} is out of range: 8 to 512 pixels",
                spec.size
            )));
        }
        if !(1..=256).contains(&spec.colors) {
            return Err(settings(format!(
                "--colors {}: a palette has 1 to 256 colours",
                spec.colors
            )));
        }
        if !(spec.strength > 0.0 && spec.strength <= 1.0) {
            return Err(settings(format!(
                "--strength {} is out of range: above 0, at most 1",
                spec.strength
            )));
        }
        if !(0.0..=2.0).contains(&spec.control_weight) {
            return Err(settings(format!(
                "--control-weight {} is out of range: 0 to 2",
                spec.control_weight
            )));
        }
        if let Some(g) = spec.guidance {
            GUIDANCE.check(f64::from(g)).map_err(settings)?;
        }
        if let Some(p) = &spec.palette {
            crate::process::palette_colors(p)?;
        }
        locked(&spec.locked_palette)?;
        if let Some(n) = &spec.name {
            crate::paths::plain_name("pack name", n)?;
        }
        // Edited templates are read now and travel in the spec: a file saved or removed later
        // changes neither the queued job nor a re-roll nor `--recipe`.
        for p in std::mem::take(&mut spec.templates) {
            let t = mintframe_media::pose::read(Path::new(&p))?;
            if t.view != spec.view {
                return Err(settings(format!(
                    "template {p} is for the {} view but the pack is {}",
                    t.view, spec.view
                )));
            }
            spec.custom_templates.retain(|c| c.animation != t.animation);
            spec.custom_templates.push(t);
        }
        for t in &spec.custom_templates {
            t.validate().map_err(|e| settings(e.to_string()))?;
        }
        for k in &spec.animations {
            let t = template_for(&spec, *k)?;
            for f in &facings {
                t.frames(*f).map_err(|e| settings(e.to_string()))?;
            }
            let n = frames_of(&spec, &t);
            let cols = n.min(BOARD_COLUMNS);
            let side = spec.gen_size.unwrap_or(spec.size) as usize;
            let (bw, bh) = (cols * side, n.div_ceil(cols) * side);
            if bw > MAX_BOARD_SIDE || bh > MAX_BOARD_SIDE {
                return Err(settings(format!(
                    "{n} frames of {side} px make a {bw}×{bh} board, over {MAX_BOARD_SIDE} px a side: lower --gen-size or --frames"
                )));
            }
        }
        if let Some(c) = &spec.controlnet
            && !Path::new(c).exists()
        {
            return Err(StudioError::NotFound(format!("ControlNet {c}")));
        }
        for r in spec.rerolls.iter_mut() {
            if r.seed == 0 {
                r.seed = fresh_seed();
            }
            if r.seed > MAX_SEED {
                return Err(settings(format!(
                    "re-roll seed {} is out of range: use 0 to {MAX_SEED}",
                    r.seed
                )));
            }
        }
        for r in &spec.rerolls {
            if !spec.animations.contains(&r.animation) || !facings.contains(&r.facing) {
                return Err(settings(format!(
                    "re-roll {} {}: the pack has no such row",
                    r.animation, r.facing
                )));
            }
            let t = template_for(&spec, r.animation)?;
            if let Some(m) = mirrored_in_pack(&t, r.facing, &facings) {
                return Err(settings(format!(
                    "re-roll {} {}: that row is {m} mirrored; re-roll {} {m}",
                    r.animation, r.facing, r.animation
                )));
            }
            if let Some(f) = r.frame
                && f as usize >= frames_of(&spec, &t)
            {
                return Err(settings(format!(
                    "re-roll {} {} frame {f}: the row has {} frames (0-based)",
                    r.animation,
                    r.facing,
                    frames_of(&spec, &t)
                )));
            }
        }
        let defaults = self
            .models()
            .manifest(&spec.model)
            .ok()
            .map(|m| m.defaults)
            .unwrap_or_else(|| {
                mintframe_diffusion::manager::default_for(mintframe_diffusion::Arch::Sd1)
            });
        let steps = *spec.steps.get_or_insert(defaults.steps);
        if !(1..=1000).contains(&steps) {
            return Err(settings(format!(
                "steps {steps} is out of range: use 1 to 1000"
            )));
        }
        spec.guidance.get_or_insert(defaults.guidance);
        spec.scheduler.get_or_insert(defaults.scheduler);
        spec.gen_size
            .get_or_insert(defaults.width.min(defaults.height));
        spec.dtype.get_or_insert(mintframe_types::DType::F32);
        spec.device.get_or_insert_with(|| "cpu".into());
        let seed = *spec.seed.get_or_insert_with(fresh_seed);
        if seed > MAX_SEED {
            return Err(settings(format!(
                "seed {seed} is out of range: use 0 to {MAX_SEED}"
            )));
        }
        let g = spec.gen_size.unwrap_or(spec.size);
        if g == 0 || !g.is_multiple_of(8) || g > 1024 {
            return Err(settings(format!(
                "generation size {g} must be a multiple of 8 up to 1024"
            )));
        }
        if !(g.is_multiple_of(spec.size) || spec.size.is_multiple_of(g)) {
            return Err(settings(format!(
                "--size {} and the generation size {g} must divide one another (pixels are merged or repeated whole)",
                spec.size
            )));
        }
        if !(0.0..=1.0).contains(&spec.style_fidelity) {
            return Err(settings(format!(
                "--style-fidelity {} is out of range: 0 to 1",
                spec.style_fidelity
            )));
        }
        if let Some(c) = spec.chain_strength
            && !(c > 0.0 && c <= 1.0)
        {
            return Err(settings(format!(
                "--chain {c} is out of range: above 0, at most 1"
            )));
        }
        match spec.reference.clone() {
            Some(r) => {
                let sha = sha256_hex(&self.reference_image(&r, &spec)?.data);
                if let Some(old) = &spec.reference_sha256
                    && *old != sha
                {
                    return Err(settings(format!(
                        "the reference {r} is not the picture the pack was made with (its pixels changed)"
                    )));
                }
                spec.reference_sha256 = Some(sha);
                spec.reference_attention.get_or_insert(true);
                spec.chain_strength.get_or_insert(0.6);
            }
            None => {
                spec.reference_sha256 = None;
                spec.reference_first_frame = false;
                spec.reference_attention.get_or_insert(false);
            }
        }
        if spec.formats.is_empty() {
            spec.formats = vec![
                SheetFormat::AsepriteJson,
                SheetFormat::Aseprite,
                SheetFormat::Godot,
            ];
        }
        Ok(spec)
    }

    /// The reference picture at the generation size: a PNG file or a library asset, its
    /// transparent pixels on the silhouettes' background, a sprite-sized one scaled whole pixels.
    fn reference_image(&self, r: &str, spec: &CharacterSpec) -> Result<Rgb, StudioError> {
        let path = if Path::new(r).is_file() {
            Path::new(r).to_path_buf()
        } else {
            let d = self.asset(r).map_err(|_| {
                StudioError::NotFound(format!("reference {r} (a PNG file or a library asset id)"))
            })?;
            let main = d
                .files
                .iter()
                .find(|f| f.role == "main")
                .ok_or_else(|| settings(format!("asset {} has no file", d.summary.id)))?;
            self.library.file_path(&main.sha256)
        };
        let img = mintframe_media::read_png_rgba(&path)?;
        let side = spec.gen_size.unwrap_or(spec.size);
        let (w, h) = (img.width, img.height);
        let img = if (w, h) == (side, side) {
            img
        } else if (w, h) == (spec.size, spec.size) && side.is_multiple_of(spec.size) {
            mintframe_media::pixel::upscale(&img, side / spec.size)
        } else if (w, h) == (spec.size, spec.size) && spec.size.is_multiple_of(side) {
            mintframe_media::pixel::downscale(&img, spec.size / side, Downscale::Majority)
        } else {
            return Err(settings(format!(
                "the reference {} is {w}×{h}: give a picture of the sprite's size ({s}×{s}) or of the generation size ({side}×{side})",
                path.display(),
                s = spec.size
            )));
        };
        let mut data = Vec::with_capacity((side * side * 3) as usize);
        for p in img.data.chunks_exact(4) {
            let a = u32::from(p[3]);
            for (c, bg) in p[..3].iter().zip(BACKGROUND) {
                data.push(((u32::from(*c) * a + u32::from(bg) * (255 - a) + 127) / 255) as u8);
            }
        }
        Ok(Rgb {
            width: side,
            height: side,
            data,
        })
    }

    /// Queues a character pack, completed and checked first.
    pub fn submit_character(&self, spec: CharacterSpec) -> Result<JobRecord, StudioError> {
        let spec = self.complete_character(spec)?;
        self.jobs.submit(JobSpec::Character(Box::new(spec)))
    }

    /// Makes a pack from a completed spec without storing it.
    /// Draws a pack. With `live`, the work so far is written there as boards finish (and while
    /// they denoise) for the native preview window ([`crate::live`]).
    pub fn build_character(
        &self,
        spec: &CharacterSpec,
        ctx: &JobCtx,
        live: Option<&Path>,
    ) -> Result<Pack, StudioError> {
        let facings =
            Facing::for_view(spec.view, spec.directions).map_err(|e| settings(e.to_string()))?;
        let missing = |w: &str| {
            settings(format!(
                "the pack has no {w}: it was not completed at submit"
            ))
        };
        let seed = spec.seed.ok_or_else(|| missing("seed"))?;
        let side = spec.gen_size.ok_or_else(|| missing("generation size"))?;
        let dtype = spec.dtype.ok_or_else(|| missing("dtype"))?;
        let device = spec.device.clone().ok_or_else(|| missing("device"))?;
        let generator = Generator {
            library: &self.library,
            manager: self.jobs.models(),
            cache: self.jobs.cache(),
        };
        let clock = std::time::Instant::now();
        let (resolved, model) = generator.load_plain(&spec.model, dtype, &device, ctx)?;
        let tiny_decoder = generator
            .tiny_decoder(
                spec.decoder,
                spec.tiny_decoder.as_deref(),
                &resolved,
                &model,
                ctx,
            )?
            .map(|(_, d)| d);
        let net = match &spec.controlnet {
            Some(p) => {
                ctx.progress("load ControlNet", 0, 1);
                let net = ControlNet::load(
                    Path::new(p),
                    &LoadOptions {
                        dtype: candle_dtype(dtype),
                        device: model.device.clone(),
                        padding: Padding::ZEROS,
                        loras: Vec::new(),
                        train: None,
                    },
                )?;
                net.check_base(&model.config.unet)?;
                Some(net)
            }
            None => None,
        };

        // Which rows are drawn and which are mirrors, in the order of the sheet.
        struct Plan {
            animation: AnimationKind,
            facing: Facing,
            mirror_of: Option<Facing>,
            poses: Vec<Pose>,
            fps: u32,
            looped: bool,
        }
        let mut plans = Vec::new();
        for k in &spec.animations {
            let t = template_for(spec, *k)?;
            let n = frames_of(spec, &t);
            for f in &facings {
                let mirror_of = mirrored_in_pack(&t, *f, &facings);
                let poses = t.resampled(*f, n).map_err(|e| settings(e.to_string()))?;
                plans.push(Plan {
                    animation: *k,
                    facing: *f,
                    mirror_of,
                    poses,
                    fps: t.fps,
                    looped: t.looped,
                });
            }
        }
        let drawn = plans.iter().filter(|p| p.mirror_of.is_none()).count();
        let live = live
            .map(|path| {
                let rows = plans
                    .iter()
                    .map(|p| LiveRow {
                        animation: p.animation,
                        mirror_of: p.mirror_of.and_then(|m| {
                            plans
                                .iter()
                                .position(|q| q.animation == p.animation && q.facing == m)
                        }),
                        fps: p.fps,
                        frames: p.poses.len(),
                    })
                    .collect();
                Live::new(path, spec.size, rows)
            })
            .transpose()?
            .map(std::cell::RefCell::new);

        // The reference the boards keep to: the given picture (shown in the first drawn row's
        // first pose), else — when asked for — the first board's first frame.
        let attend = spec.reference_attention.unwrap_or(false);
        let chain = spec.chain_strength;
        let first_pose = plans
            .iter()
            .find(|p| p.mirror_of.is_none())
            .and_then(|p| p.poses.first().cloned())
            .ok_or_else(|| settings("the pack has no row to draw".into()))?;
        let mut reference: Option<(Rgb, String)> = match &spec.reference {
            Some(r) => {
                let img = self.reference_image(r, spec)?;
                let sha = sha256_hex(&img.data);
                if spec.reference_sha256.as_deref() != Some(sha.as_str()) {
                    return Err(settings(format!(
                        "the reference {r} is not the picture the pack was made with (its pixels changed)"
                    )));
                }
                Some((img, sha))
            }
            None => None,
        };
        let first_plain = spec.reference.is_none() || spec.reference_first_frame;

        let load_s = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        // Generate each drawn row's board.
        let mut raw: Vec<Option<Vec<Rgb>>> = Vec::with_capacity(plans.len());
        let mut recipes: Vec<RowRecipe> = Vec::with_capacity(plans.len());
        let mut done = 0;
        for (row_index, p) in plans.iter().enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            if p.mirror_of.is_some() {
                raw.push(None);
                recipes.push(RowRecipe {
                    animation: p.animation,
                    facing: p.facing,
                    mirror_of: p.mirror_of,
                    seed: None,
                    board: None,
                    rerolls: Vec::new(),
                    reference: None,
                    strength: 0.0,
                    fps: p.fps,
                    looped: p.looped,
                    frames: Vec::new(),
                });
                continue;
            }
            ctx.progress(
                &format!("draw {} {}", p.animation, facing_name(p.facing)),
                done,
                drawn as u64,
            );
            let mut row_seed = row_seed(seed, p.animation, p.facing);
            let mine: Vec<_> = spec
                .rerolls
                .iter()
                .filter(|r| r.animation == p.animation && r.facing == p.facing)
                .collect();
            for r in &mine {
                if r.frame.is_none() {
                    row_seed = r.seed;
                }
            }
            let n = p.poses.len();
            let cols = n.min(BOARD_COLUMNS);
            let rows = n.div_ceil(cols);
            let (bw, bh) = (cols as u32 * side, rows as u32 * side);
            let cell_at = |i: usize| ((i % cols) as u32 * side, (i / cols) as u32 * side);
            let row_ref = match &reference {
                Some(r) if (attend || chain.is_some()) && !(done == 0 && first_plain) => Some(r),
                _ => None,
            };
            // Chained: each cell starts from the reference carried into its pose.
            let chained = row_ref.zip(chain).map(|((img, _), c)| {
                let canvas = Canvas {
                    width: img.width,
                    height: img.height,
                    data: img.data.clone(),
                };
                (
                    canvas,
                    mintframe_media::pixel::border_median(&crate::generate::rgba_of(img)),
                    c,
                )
            });
            let start_cell = |pose: &Pose| {
                let mut cell = silhouette(pose, side, side, BODY, BACKGROUND);
                if let Some((src, bg, _)) = &chained {
                    warp_onto(&mut cell, src, &first_pose, pose, *bg, BACKGROUND_TOLERANCE);
                }
                cell
            };
            let strength = chained.as_ref().map_or(spec.strength, |(_, _, c)| *c);
            let mut init = Canvas::new(bw, bh, BACKGROUND);
            let mut skel = Canvas::new(bw, bh, [0, 0, 0]);
            for (i, pose) in p.poses.iter().enumerate() {
                let (x, y) = cell_at(i);
                paste(&mut init, &start_cell(pose), x, y);
                paste(&mut skel, &openpose(pose, side, side), x, y);
            }
            let attention = row_ref.filter(|_| attend).map(|(img, _)| ReferenceImage {
                image: img.clone(),
                style_fidelity: f64::from(spec.style_fidelity),
                seed: row_seed,
            });
            let mut req = Request {
                prompt: spec.prompt.clone(),
                negative_prompt: spec.negative_prompt.clone(),
                seed: row_seed,
                steps: spec.steps.ok_or_else(|| missing("step count"))? as usize,
                guidance: f64::from(spec.guidance.ok_or_else(|| missing("guidance"))?),
                width: bw,
                height: bh,
                scheduler: spec.scheduler.ok_or_else(|| missing("scheduler"))?,
                batch: 1,
                strength: f64::from(strength),
                init_image: Some(to_rgb(&init)),
                mask: None,
                vae_tiling: None,
                between: None,
                latents: None,
                tiny_decoder: tiny_decoder.clone(),
            };
            if model.device.is_cpu() {
                // A board is one big image: tile its VAE passes when memory is short, as
                // `generate` does, and refuse with the numbers when even that does not fit.
                let budget = mintframe_diffusion::memory::available_bytes()
                    .unwrap_or(u64::MAX)
                    .saturating_add(crate::generate::weight_bytes(&model.config, model.dtype));
                req.vae_tiling = mintframe_diffusion::memory::preflight(
                    &model.config,
                    model.dtype,
                    bw,
                    bh,
                    1,
                    req.guidance > 1.0,
                    None,
                    budget,
                )?
                .tiling;
            }
            let controls: Vec<Control<'_>> = net
                .iter()
                .map(|n| Control {
                    net: n,
                    image: to_rgb(&skel),
                    weight: f64::from(spec.control_weight),
                    start: 0.0,
                    end: 1.0,
                    guess: false,
                })
                .collect();
            // While the board denoises, its cells as the latents show them.
            let step_preview = |_: usize, img: &Rgb| {
                let Some(l) = &live else { return };
                let scale = (bw / img.width.max(1)).max(1);
                let cell = (side / scale).max(1);
                let frames = (0..n)
                    .map(|i| {
                        let (x, y) = cell_at(i);
                        crate::live::resize_nearest(
                            &crate::generate::rgba_of(&crop(img, x / scale, y / scale, cell)),
                            spec.size,
                            spec.size,
                        )
                    })
                    .collect();
                if let Err(e) = l.borrow_mut().set_step(row_index, frames) {
                    tracing::warn!(error = %e, "live preview");
                }
            };
            let mut board = first_image(generate_referenced(
                &model,
                &req,
                &controls,
                attention.as_ref(),
                ctx,
                live.is_some().then_some(&step_preview as _),
            )?)?;
            let used_reference = row_ref.map(|(_, sha)| sha.clone());
            if reference.is_none() && (attend || chain.is_some()) {
                // The first board, before any re-roll, is the reference for the rest.
                let img = crop(&board, 0, 0, side);
                let sha = sha256_hex(&img.data);
                reference = Some((img, sha));
            }
            let mut rerolled = Vec::new();
            for r in &mine {
                let Some(f) = r.frame else { continue };
                let i = f as usize;
                if i >= n {
                    return Err(settings(format!(
                        "re-roll {} {} frame {f}: the row has {n} frames",
                        p.animation, p.facing
                    )));
                }
                let (x, y) = cell_at(i);
                // The cell starts from its silhouette again; the rest of the board is kept.
                let mut start = Canvas {
                    width: board.width,
                    height: board.height,
                    data: board.data.clone(),
                };
                paste(&mut start, &start_cell(&p.poses[i]), x, y);
                let mut mask = vec![0u8; (bw * bh) as usize];
                for yy in y..y + side {
                    for xx in x..x + side {
                        mask[(yy * bw + xx) as usize] = 255;
                    }
                }
                let again = Request {
                    seed: r.seed,
                    init_image: Some(to_rgb(&start)),
                    mask: Some(Gray {
                        width: bw,
                        height: bh,
                        data: mask,
                    }),
                    ..req.clone()
                };
                let out = first_image(generate_referenced(
                    &model,
                    &again,
                    &controls,
                    attention.as_ref(),
                    ctx,
                    None,
                )?)?;
                copy_cell(&out, &mut board, x, y, side);
                rerolled.push((f, r.seed));
            }
            let frames: Vec<Rgb> = (0..n)
                .map(|i| {
                    let (x, y) = cell_at(i);
                    crop(&board, x, y, side)
                })
                .collect();
            if let Some(l) = &live {
                l.borrow_mut().set(
                    row_index,
                    frames
                        .iter()
                        .map(|f| to_sprite(f, side, spec.size))
                        .collect(),
                )?;
            }
            raw.push(Some(frames));
            recipes.push(RowRecipe {
                animation: p.animation,
                facing: p.facing,
                mirror_of: None,
                seed: Some(row_seed),
                board: Some([cols as u32, rows as u32, side]),
                rerolls: rerolled,
                reference: used_reference,
                strength,
                fps: p.fps,
                looped: p.looped,
                frames: Vec::new(),
            });
            done += 1;
        }
        let generate_s = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        ctx.progress("post-process", 0, 1);

        // Cut out and scale every drawn frame, then one palette for all of them.
        let mut processed: Vec<Vec<Rgba>> = Vec::with_capacity(plans.len());
        for frames in &raw {
            let mut row = Vec::new();
            for f in frames.iter().flatten() {
                row.push(to_sprite(f, side, spec.size));
            }
            processed.push(row);
        }
        let palette = if !spec.locked_palette.is_empty() {
            locked(&spec.locked_palette)?
        } else {
            match &spec.palette {
                Some(p) => crate::process::palette_colors(p)?,
                None => Vec::new(),
            }
        };
        let steps = [
            PostStep::BinaryAlpha { threshold: 128 },
            PostStep::Quantize {
                palette,
                colors: spec.colors,
                dither: Dither::None,
            },
        ];
        let used = mintframe_media::pixel::apply(&mut processed, &steps)?.unwrap_or_default();
        // Mirrored rows: their source row, flipped.
        for (i, p) in plans.iter().enumerate() {
            if let Some(src) = p.mirror_of {
                let j = plans
                    .iter()
                    .position(|q| q.animation == p.animation && q.facing == src)
                    .ok_or_else(|| settings(format!("no row for facing {src}")))?;
                processed[i] = processed[j]
                    .iter()
                    .map(mintframe_media::pixel::flip_horizontal)
                    .collect();
            }
        }
        for (i, p) in plans.iter().enumerate() {
            for (k, (f, pose)) in processed[i].iter().zip(&p.poses).enumerate() {
                recipes[i].frames.push(FrameRecipe {
                    index: k as u32,
                    pose: pose.clone(),
                    sha256: sha256_hex(&mintframe_media::encode_png_rgba(f)?),
                });
            }
        }

        if let Some(l) = &live {
            // The pack as it will be stored: one palette, mirrors flipped.
            let mut l = l.borrow_mut();
            for (i, p) in plans.iter().enumerate() {
                if p.mirror_of.is_none() {
                    l.set(i, processed[i].clone())?;
                }
            }
        }
        let mut report = consistency(
            &plans
                .iter()
                .map(|p| (p.animation, p.facing, &p.poses[..]))
                .collect::<Vec<_>>(),
            &processed,
            spec.size,
        );
        for (r, p) in report.rows.iter_mut().zip(&plans) {
            r.mirror_of = p.mirror_of;
        }

        // One sheet: a row per animation and facing, frames anchored on the feet.
        let mut frames = Vec::new();
        let mut durations = Vec::new();
        let mut animations = Vec::new();
        for (p, row) in plans.iter().zip(&processed) {
            let from = frames.len();
            frames.extend(row.iter().cloned());
            durations.extend(std::iter::repeat_n((1000 / p.fps.max(1)).max(1), row.len()));
            animations.push(Animation {
                name: format!("{}_{}", p.animation, facing_name(p.facing)),
                from,
                to: frames.len() - 1,
                direction: PlayDirection::Forward,
                looped: p.looped,
            });
        }
        let columns = plans.iter().map(|p| p.poses.len()).max().unwrap_or(1) as u32;
        let sheet = mintframe_media::sheet::pack(
            &frames,
            &durations,
            animations,
            &PackOptions {
                layout: SheetLayout::Grid,
                columns: Some(columns),
                padding: 1,
                extrude: 0,
                anchor: Anchor::Feet,
            },
        )?;
        let recipe = PackRecipe {
            format: "mintframe-character-pack/1".into(),
            spec: spec.clone(),
            model_id: resolved.id.clone(),
            model_files: resolved
                .weight_files
                .iter()
                .map(|(path, sha256)| WeightFile {
                    path: path.clone(),
                    sha256: sha256.clone(),
                })
                .collect(),
            controlnet: match &net {
                Some(n) => Some(WeightFile {
                    path: n
                        .source
                        .file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    sha256: mintframe_diffusion::manager::sha256_file(
                        &n.source,
                        &JobCtx::detached(),
                        "hash ControlNet",
                    )?
                    .0,
                }),
                None => None,
            },
            palette: used
                .iter()
                .map(|c| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]))
                .collect(),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            rows: recipes,
        };
        ctx.progress("post-process", 1, 1);
        // Where the time goes, for `-v` and the benchmarks.
        tracing::info!(
            load_s,
            generate_s,
            post_process_s = clock.elapsed().as_secs_f64(),
            boards = drawn,
            "character pack stages"
        );
        if let Some(l) = live {
            l.into_inner().remove();
        }
        Ok(Pack {
            recipe,
            report,
            sheet,
            rows: processed,
            reference: reference.map(|(img, _)| img),
        })
    }

    /// Runs a `Character` job: one SpriteSheet asset holding the sheet, its exports, every
    /// frame, the poster, the previews, the recipe and the consistency report.
    pub(crate) fn run_character(
        &self,
        job: &JobRecord,
        spec: &CharacterSpec,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        if !job.outputs.is_empty() {
            return Ok(());
        }
        let live = crate::live::live_json(&self.settings.data_dir, &job.id.to_string());
        let pack = match self.build_character(spec, ctx, Some(&live)) {
            Err(StudioError::Diffusion(mintframe_diffusion::Error::Cancelled(_))) => {
                return Err(StudioError::Cancelled);
            }
            r => r?,
        };
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| crate::generate::name_from_prompt(&spec.prompt, "character"));
        let clock = std::time::Instant::now();
        let stem = sanitize_file_name(&name)
            .trim_end_matches(".png")
            .to_owned();
        let mut files = crate::sheet::export_files(&pack.sheet, &stem, &spec.formats)?;
        files.push((
            "recipe".into(),
            format!("{stem}.pack.json"),
            "application/json".into(),
            to_json(&pack.recipe)?,
        ));
        files.push((
            "consistency".into(),
            format!("{stem}.consistency.json"),
            "application/json".into(),
            to_json(&pack.report)?,
        ));
        if let Some(r) = &pack.reference {
            files.push((
                "reference".into(),
                format!("{stem}.reference.png"),
                "image/png".into(),
                mintframe_media::encode_png_rgba(&crate::generate::rgba_of(r))?,
            ));
        }
        for (row, recipe) in pack.rows.iter().zip(&pack.recipe.rows) {
            for (k, f) in row.iter().enumerate() {
                let tag = format!("{}_{}-{k}", recipe.animation, facing_name(recipe.facing));
                files.push((
                    format!("frame-{tag}"),
                    format!("{stem}-{tag}.png"),
                    "image/png".into(),
                    mintframe_media::encode_png_rgba(f)?,
                ));
            }
        }
        // Mint-ready: a poster and an animated preview per animation (every facing side by
        // side), scaled up whole pixels so marketplaces show them crisp.
        let first = pack
            .rows
            .first()
            .and_then(|r| r.first())
            .ok_or_else(|| settings("the pack has no frames".into()))?;
        let poster = mintframe_media::pixel::upscale(first, 256u32.div_ceil(spec.size).max(1));
        files.push((
            "poster".into(),
            format!("{stem}.poster.png"),
            "image/png".into(),
            mintframe_media::encode_png_rgba(&poster)?,
        ));
        for k in &spec.animations {
            let rows: Vec<(&RowRecipe, &Vec<Rgba>)> = pack
                .recipe
                .rows
                .iter()
                .zip(&pack.rows)
                .filter(|(r, _)| r.animation == *k)
                .collect();
            let Some((r0, f0)) = rows.first() else {
                continue;
            };
            let scale = 128u32.div_ceil(spec.size).max(1);
            let mut frames = Vec::with_capacity(f0.len());
            for i in 0..f0.len() {
                let strip: Vec<&Rgba> = rows.iter().filter_map(|(_, f)| f.get(i)).collect();
                frames.push(mintframe_media::pixel::upscale(
                    &side_by_side(&strip),
                    scale,
                ));
            }
            files.push((
                format!("preview-{k}"),
                format!("{stem}.{k}.gif"),
                "image/gif".into(),
                mintframe_media::encode_gif(&frames, r0.fps.clamp(1, 50))?,
            ));
        }
        ctx.check().map_err(|_| StudioError::Cancelled)?;
        self.store_sheet_asset(job, name, files, ctx)?;
        tracing::info!(
            export_s = clock.elapsed().as_secs_f64(),
            "character pack stages"
        );
        Ok(())
    }

    /// The folder of templates edited in the studio.
    fn poses_dir(&self) -> std::path::PathBuf {
        self.settings.data_dir.join("poses")
    }

    /// The template the Character screen edits: the one saved from the studio for this view
    /// and animation, else the bundled one.
    pub fn pose_template(
        &self,
        view: mintframe_types::View,
        kind: AnimationKind,
    ) -> Result<PoseTemplate, StudioError> {
        let saved = self
            .poses_dir()
            .join(mintframe_media::pose::rig::file_name(kind, view));
        if saved.is_file() {
            return Ok(mintframe_media::pose::read(&saved)?);
        }
        Ok(mintframe_media::pose::bundled(view, kind)?)
    }

    /// Saves an edited template (checked first; written to a temporary name and renamed, so a
    /// crash leaves the old file or the new one); returns the file a pack names it by.
    pub fn save_pose_template(&self, t: &PoseTemplate) -> Result<String, StudioError> {
        t.validate().map_err(|e| settings(e.to_string()))?;
        let dir = self.poses_dir();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StudioError::Io {
                action: "cannot write",
                path,
                source,
            }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(mintframe_media::pose::rig::file_name(t.animation, t.view));
        let tmp = path.with_extension(format!("{}.part", uuid_like()));
        std::fs::write(&tmp, mintframe_media::pose::rig::to_json(t)).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(path.display().to_string())
    }

    /// The studio's templates for `spec`'s view, as files for [`CharacterSpec::templates`].
    pub fn saved_templates(&self, spec: &CharacterSpec) -> Vec<String> {
        spec.animations
            .iter()
            .map(|k| {
                self.poses_dir()
                    .join(mintframe_media::pose::rig::file_name(*k, spec.view))
            })
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .collect()
    }

    /// A pack's spec with `targets` drawn again (each with a fresh seed where it has none) and
    /// its palette locked, so every other frame stays as it is.
    pub fn reroll_spec(
        &self,
        pack: &str,
        targets: &[mintframe_types::Reroll],
    ) -> Result<CharacterSpec, StudioError> {
        if targets.is_empty() {
            return Err(settings(
                "nothing to draw again: pick a frame or a row".into(),
            ));
        }
        let recipe = self.pack_recipe(pack)?;
        let mut spec = recipe.spec;
        spec.locked_palette = recipe.palette;
        // The pack's stored reference, so the rows not drawn again keep to the same one even
        // when it was the first frame and that frame is drawn again.
        let detail = self.asset(pack)?;
        if let Some(f) = detail.files.iter().find(|f| f.role == "reference") {
            spec.reference_first_frame = spec.reference.is_none() || spec.reference_first_frame;
            spec.reference = Some(
                self.library
                    .file_path(&f.sha256)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        for (i, t) in targets.iter().enumerate() {
            let mut t = t.clone();
            if t.seed == 0 {
                t.seed = fresh_seed().wrapping_add(i as u64) & ((1 << 53) - 1);
            }
            // A new draw replaces what it covers: a row re-roll every earlier one of its row,
            // a frame re-roll an earlier one of that frame.
            spec.rerolls.retain(|r| {
                !(r.animation == t.animation
                    && r.facing == t.facing
                    && (t.frame.is_none() || r.frame == t.frame))
            });
            spec.rerolls.push(t);
        }
        Ok(spec)
    }

    /// The consistency report stored with a pack asset.
    pub fn character_report(&self, pack: &str) -> Result<ConsistencyReport, StudioError> {
        self.pack_json(pack, "consistency", "consistency report")
    }

    /// The recipe stored with a pack asset.
    pub fn pack_recipe(&self, id_or_prefix: &str) -> Result<PackRecipe, StudioError> {
        self.pack_json(id_or_prefix, "recipe", "pack recipe")
    }

    /// A pack asset's JSON file of `role`, read back as `T`.
    fn pack_json<T: serde::de::DeserializeOwned>(
        &self,
        pack: &str,
        role: &str,
        what: &str,
    ) -> Result<T, StudioError> {
        let detail = self.asset(pack)?;
        let f = detail
            .files
            .iter()
            .find(|f| f.role == role)
            .ok_or_else(|| {
                settings(format!(
                    "asset {} is not a character pack (it has no {what})",
                    detail.summary.id
                ))
            })?;
        let path = self.library.file_path(&f.sha256);
        let text = std::fs::read_to_string(&path).map_err(|source| StudioError::Io {
            action: "cannot read",
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text)
            .map_err(|e| settings(format!("{}: not a {what}: {e}", path.display())))
    }
}

/// A name no other writer in this process or another picks at the same moment.
fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), fresh_seed())
}

/// The one image of a batch-of-one generation.
fn first_image(images: Vec<mintframe_diffusion::Generated>) -> Result<Rgb, StudioError> {
    images
        .into_iter()
        .next()
        .map(|g| g.image)
        .ok_or_else(|| StudioError::Task("the generation returned no image".into()))
}

/// Pretty JSON with a newline, the error as ours.
fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, StudioError> {
    let mut out =
        serde_json::to_vec_pretty(v).map_err(|e| StudioError::Task(format!("JSON: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

fn paste(dst: &mut Canvas, src: &Canvas, x: u32, y: u32) {
    for row in 0..src.height {
        let s = (row * src.width * 3) as usize;
        let d = (((y + row) * dst.width + x) * 3) as usize;
        let n = (src.width * 3) as usize;
        dst.data[d..d + n].copy_from_slice(&src.data[s..s + n]);
    }
}

fn to_rgb(c: &Canvas) -> Rgb {
    Rgb {
        width: c.width,
        height: c.height,
        data: c.data.clone(),
    }
}

fn crop(img: &Rgb, x: u32, y: u32, side: u32) -> Rgb {
    let mut data = Vec::with_capacity((side * side * 3) as usize);
    for row in y..y + side {
        let s = ((row * img.width + x) * 3) as usize;
        data.extend_from_slice(&img.data[s..s + (side * 3) as usize]);
    }
    Rgb {
        width: side,
        height: side,
        data,
    }
}

fn copy_cell(src: &Rgb, dst: &mut Rgb, x: u32, y: u32, side: u32) {
    for row in y..y + side {
        let s = ((row * src.width + x) * 3) as usize;
        let n = (side * 3) as usize;
        dst.data[s..s + n].copy_from_slice(&src.data[s..s + n]);
    }
}

/// A generated frame as a sprite: background cut, scaled to `size` whole pixels.
fn to_sprite(f: &Rgb, side: u32, size: u32) -> Rgba {
    let mut img = crate::generate::rgba_of(f);
    mintframe_media::pixel::cut_background(&mut img, BACKGROUND_TOLERANCE);
    if side > size {
        mintframe_media::pixel::downscale(&img, side / size, Downscale::Majority)
    } else {
        mintframe_media::pixel::upscale(&img, size / side)
    }
}

pub(crate) fn side_by_side(frames: &[&Rgba]) -> Rgba {
    let h = frames.iter().map(|f| f.height).max().unwrap_or(1);
    let w: u32 = frames.iter().map(|f| f.width).sum::<u32>().max(1);
    let mut out = Rgba {
        width: w,
        height: h,
        data: vec![0; (w * h * 4) as usize],
    };
    let mut x0 = 0;
    for f in frames {
        for y in 0..f.height {
            let s = (y * f.width * 4) as usize;
            let d = ((y * w + x0) * 4) as usize;
            let n = (f.width * 4) as usize;
            out.data[d..d + n].copy_from_slice(&f.data[s..s + n]);
        }
        x0 += f.width;
    }
    out
}

/// Colour use of a frame: the share of its opaque pixels in each colour.
fn histogram(img: &Rgba) -> std::collections::BTreeMap<[u8; 3], f64> {
    let mut h = std::collections::BTreeMap::new();
    let mut n = 0.0;
    for p in img.data.chunks_exact(4) {
        if p[3] >= 128 {
            *h.entry([p[0], p[1], p[2]]).or_insert(0.0) += 1.0;
            n += 1.0;
        }
    }
    if n > 0.0 {
        for v in h.values_mut() {
            *v /= n;
        }
    }
    h
}

/// Total variation distance between two colour histograms.
fn tv(
    a: &std::collections::BTreeMap<[u8; 3], f64>,
    b: &std::collections::BTreeMap<[u8; 3], f64>,
) -> f64 {
    let mut keys: Vec<&[u8; 3]> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.iter()
        .map(|k| (a.get(*k).unwrap_or(&0.0) - b.get(*k).unwrap_or(&0.0)).abs())
        .sum::<f64>()
        / 2.0
}

fn consistency(
    rows: &[(AnimationKind, Facing, &[Pose])],
    frames: &[Vec<Rgba>],
    size: u32,
) -> ConsistencyReport {
    let mut out_rows = Vec::new();
    let mut all_pd = Vec::new();
    let mut all_iou = Vec::new();
    let mut drift_before = 0u32;
    let mut drift_after = 0u32;
    let mut row_hists = Vec::new();
    for ((anim, facing, poses), row) in rows.iter().zip(frames) {
        let hists: Vec<_> = row.iter().map(histogram).collect();
        let pd: Vec<f64> = hists.iter().map(|h| tv(h, &hists[0])).collect();
        let iou: Vec<f64> = row
            .iter()
            .zip(poses.iter())
            .map(|(f, p)| {
                let s = silhouette(p, size, size, [255, 255, 255], [0, 0, 0]);
                let (mut inter, mut uni) = (0u32, 0u32);
                for (a, b) in f.data.chunks_exact(4).zip(s.data.chunks_exact(3)) {
                    let (fa, fb) = (a[3] >= 128, b[0] > 0);
                    inter += u32::from(fa && fb);
                    uni += u32::from(fa || fb);
                }
                if uni == 0 {
                    0.0
                } else {
                    f64::from(inter) / f64::from(uni)
                }
            })
            .collect();
        let drift = |fs: &[Rgba]| -> u32 {
            let pts: Vec<[u32; 2]> = fs
                .iter()
                .filter_map(|f| mintframe_media::sheet::anchor_point(f, Anchor::Feet))
                .collect();
            if pts.is_empty() {
                return 0;
            }
            let med = |i: usize| {
                let mut v: Vec<u32> = pts.iter().map(|p| p[i]).collect();
                v.sort_unstable();
                v[v.len() / 2]
            };
            let (mx, my) = (med(0), med(1));
            pts.iter()
                .map(|p| p[0].abs_diff(mx).max(p[1].abs_diff(my)))
                .max()
                .unwrap_or(0)
        };
        let before = drift(row);
        let (anchored, _) = mintframe_media::sheet::anchor_frames(row, Anchor::Feet);
        drift_before = drift_before.max(before);
        drift_after = drift_after.max(drift(&anchored));
        let mut mean = std::collections::BTreeMap::new();
        for h in &hists {
            for (k, v) in h {
                *mean.entry(*k).or_insert(0.0) += v / hists.len() as f64;
            }
        }
        row_hists.push(mean);
        out_rows.push(RowReport {
            animation: *anim,
            facing: *facing,
            mirror_of: None,
            palette_distance_max: pd.iter().copied().fold(0.0, f64::max),
            silhouette_iou_mean: iou.iter().sum::<f64>() / iou.len().max(1) as f64,
            anchor_drift_before_px: before,
        });
        all_pd.extend(pd.into_iter().skip(1));
        all_iou.extend(iou);
    }
    let mut pack_mean = std::collections::BTreeMap::new();
    for h in &row_hists {
        for (k, v) in h {
            *pack_mean.entry(*k).or_insert(0.0) += v / row_hists.len().max(1) as f64;
        }
    }
    let round = |v: f64| (v * 10000.0).round() / 10000.0;
    ConsistencyReport {
        palette_distance_mean: round(all_pd.iter().sum::<f64>() / all_pd.len().max(1) as f64),
        palette_distance_max: round(all_pd.iter().copied().fold(0.0, f64::max)),
        row_palette_distance_max: round(
            row_hists
                .iter()
                .map(|h| tv(h, &pack_mean))
                .fold(0.0, f64::max),
        ),
        silhouette_iou_mean: round(all_iou.iter().sum::<f64>() / all_iou.len().max(1) as f64),
        silhouette_iou_min: round(all_iou.iter().copied().fold(1.0, f64::min)),
        anchor_drift_before_px: drift_before,
        anchor_drift_after_px: drift_after,
        empty_frames: frames
            .iter()
            .flatten()
            .filter(|f| f.data.chunks_exact(4).all(|p| p[3] < 128))
            .count() as u32,
        rows: out_rows
            .into_iter()
            .map(|r| RowReport {
                palette_distance_max: round(r.palette_distance_max),
                silhouette_iou_mean: round(r.silhouette_iou_mean),
                ..r
            })
            .collect(),
    }
}
