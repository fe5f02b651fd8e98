//! Clips from a prompt: every frame denoised together with an AnimateDiff motion adapter
//! ([`mintframe_diffusion::animate`]), looped if asked, written in each format asked (MP4, WebM
//! with alpha, GIF, APNG, WebP) with a poster and a recipe, as one library asset. How well the
//! loop closes is measured and kept in the recipe.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use mintframe_diffusion::Request;
use mintframe_diffusion::animate::{
    ClipRequest, Keyframe, MAX_CLIP_FRAMES, MOTION_FOLDER, generate_clip, generate_walk,
};
use mintframe_diffusion::manager::Layout;
use mintframe_diffusion::motion::MotionAdapter;
use mintframe_jobs::JobCtx;
use mintframe_library::{NewAsset, NewFile, sanitize_file_name};
use mintframe_media::{Rgba, VideoFormat};
use mintframe_types::{AssetKind, ClipFormat, ClipSpec, JobRecord, LoopScore, WeightFile};
use serde::{Deserialize, Serialize};

use crate::generate::{Generator, candle_dtype, fresh_seed, rgb_of, rgba_of};
use crate::{App, StudioError};

fn settings(m: String) -> StudioError {
    StudioError::Settings(m)
}

fn mean_abs_diff(a: &Rgba, b: &Rgba) -> f32 {
    let (mut sum, mut n) = (0u64, 0u64);
    for (p, q) in a.data.chunks_exact(4).zip(b.data.chunks_exact(4)) {
        for c in 0..3 {
            sum += u64::from(p[c].abs_diff(q[c]));
        }
        n += 3;
    }
    sum as f32 / (n.max(1) as f32 * 255.0)
}

/// [`LoopScore`] of `frames` (a clip of fewer than two frames loops perfectly).
pub fn loop_score(frames: &[Rgba]) -> LoopScore {
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
        return LoopScore {
            score: 1.0,
            seam: 0.0,
            step: 0.0,
        };
    };
    if frames.len() < 2 {
        return LoopScore {
            score: 1.0,
            seam: 0.0,
            step: 0.0,
        };
    }
    let mut steps: Vec<f32> = frames
        .windows(2)
        .map(|w| mean_abs_diff(&w[0], &w[1]))
        .collect();
    steps.sort_by(f32::total_cmp);
    let step = steps[steps.len() / 2];
    let seam = mean_abs_diff(last, first);
    let score = if seam <= step {
        1.0
    } else {
        (step / seam).clamp(0.0, 1.0)
    };
    LoopScore { score, seam, step }
}

/// What a clip was made from, kept beside it (`<name>.clip.json`): the spec as run, the
/// weights by hash, and how well it loops.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipRecipe {
    pub spec: ClipSpec,
    pub model_files: Vec<WeightFile>,
    /// The motion adapter, unless the clip is a walk.
    pub motion: Option<WeightFile>,
    pub loop_score: LoopScore,
    pub seconds: f64,
}

/// Frames to store as a Clip asset: in which formats, at what rate, with which sound, under
/// which name, with which recipe file (name and bytes).
#[derive(Debug)]
pub(crate) struct Stored<'a> {
    pub frames: &'a [Rgba],
    pub formats: &'a [ClipFormat],
    pub fps: u32,
    pub audio: Option<&'a Path>,
    pub name: &'a str,
    pub stem: &'a str,
    pub recipe: (String, Vec<u8>),
}

/// The clip's frames and what they were made from, before they are written.
#[derive(Debug, Clone)]
pub struct Clip {
    pub frames: Vec<Rgba>,
    pub recipe: ClipRecipe,
}

impl App {
    /// Checks a clip and fills in what was left out (the model's defaults, a seed, the
    /// formats), so the job reproduces. Everything wrong is refused here, before any work.
    pub fn complete_clip(&self, mut spec: ClipSpec) -> Result<ClipSpec, StudioError> {
        use mintframe_types::ranges::{GUIDANCE, MAX_SEED};
        if spec.prompt.trim().is_empty() {
            return Err(settings("the prompt is empty: describe the clip".into()));
        }
        if spec.model.is_empty() {
            spec.model = mintframe_diffusion::manager::TINY_ID.to_owned();
        }
        if !(1..=MAX_CLIP_FRAMES as u32).contains(&spec.frames) {
            return Err(settings(format!(
                "--frames {} is out of range: 1 to {MAX_CLIP_FRAMES}",
                spec.frames
            )));
        }
        if !(1..=60).contains(&spec.fps) {
            return Err(settings(format!(
                "--fps {} is out of range: 1 to 60",
                spec.fps
            )));
        }
        if !(1..=32).contains(&spec.context) {
            return Err(settings(format!(
                "--context {} is out of range: 1 to 32 frames (AnimateDiff modules see 16 or 32)",
                spec.context
            )));
        }
        if spec.overlap >= spec.context {
            return Err(settings(format!(
                "--overlap {} must be shorter than --context {}",
                spec.overlap, spec.context
            )));
        }
        if spec.formats.is_empty() {
            spec.formats = vec![ClipFormat::Mp4, ClipFormat::Webm, ClipFormat::Gif];
        }
        let mut seen = spec.formats.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != spec.formats.len() {
            return Err(settings("a format is listed twice".into()));
        }
        if let Some(n) = &spec.name {
            crate::paths::plain_name("clip name", n)?;
        }
        if let Some(g) = spec.guidance {
            GUIDANCE.check(f64::from(g)).map_err(settings)?;
        }
        let manifest = self.models().manifest(&spec.model).ok();
        let defaults = manifest
            .as_ref()
            .map(|m| m.defaults.clone())
            .unwrap_or_else(|| {
                mintframe_diffusion::manager::default_for(mintframe_diffusion::Arch::Sd1)
            });
        if let Some(m) = &manifest
            && m.arch != mintframe_diffusion::Arch::Sd1
        {
            return Err(settings(format!(
                "model {} is {}: AnimateDiff's motion modules are for SD 1.x models",
                spec.model,
                m.arch.as_str()
            )));
        }
        let steps = *spec.steps.get_or_insert(defaults.steps);
        if !(1..=1000).contains(&steps) {
            return Err(settings(format!(
                "steps {steps} is out of range: use 1 to 1000"
            )));
        }
        spec.guidance.get_or_insert(defaults.guidance);
        spec.scheduler.get_or_insert(defaults.scheduler);
        for (side, what, default) in [
            (&mut spec.width, "--width", defaults.width),
            (&mut spec.height, "--height", defaults.height),
        ] {
            let v = *side.get_or_insert(default);
            if v == 0 || !v.is_multiple_of(8) || v > 1024 {
                return Err(settings(format!(
                    "{what} {v} must be a multiple of 8 up to 1024"
                )));
            }
        }
        spec.dtype.get_or_insert(mintframe_types::DType::F32);
        spec.device.get_or_insert_with(|| "cpu".into());
        let seed = *spec.seed.get_or_insert_with(fresh_seed);
        if seed > MAX_SEED {
            return Err(settings(format!(
                "seed {seed} is out of range: use 0 to {MAX_SEED}"
            )));
        }
        if let Some(a) = &spec.audio {
            if !spec
                .formats
                .iter()
                .any(|f| matches!(f, ClipFormat::Mp4 | ClipFormat::Webm))
            {
                return Err(settings(
                    "a soundtrack needs mp4 or webm among the formats: GIF, APNG and WebP carry no sound"
                        .into(),
                ));
            }
            mintframe_media::audio_channels(Path::new(a))?;
        }
        let mut last = 0;
        for k in &mut spec.keyframes {
            if k.frame <= last || k.frame >= spec.frames {
                return Err(settings(format!(
                    "a keyframe at frame {}: keyframes come after frame 0, in order, inside the clip's {} frames",
                    k.frame, spec.frames
                )));
            }
            if k.prompt.trim().is_empty() {
                return Err(settings(format!(
                    "the keyframe at frame {} has no prompt",
                    k.frame
                )));
            }
            last = k.frame;
            let s = *k.seed.get_or_insert(seed);
            if s > MAX_SEED {
                return Err(settings(format!(
                    "keyframe {}: seed {s} is out of range: use 0 to {MAX_SEED}",
                    k.frame
                )));
            }
        }
        if let Some(src) = &spec.source {
            if spec.walk || !spec.keyframes.is_empty() || !spec.motion.is_empty() {
                return Err(settings(
                    "a restyled video (--from) takes its motion from the video: no --walk, --key or --motion"
                        .into(),
                ));
            }
            let strength = *spec.strength.get_or_insert(0.5);
            if !(strength > 0.0 && strength <= 1.0) {
                return Err(settings(format!(
                    "--strength {strength} is out of range: above 0, at most 1"
                )));
            }
            let coherence = *spec.coherence.get_or_insert(0.3);
            if !(0.0..=1.0).contains(&coherence) {
                return Err(settings(format!(
                    "--coherence {coherence} is out of range: 0 to 1"
                )));
            }
            let seq = self.clip_source(src)?;
            if seq.frames.len() > MAX_CLIP_FRAMES {
                return Err(settings(format!(
                    "{src} has {} frames; a clip has at most {MAX_CLIP_FRAMES}: cut it first",
                    seq.frames.len()
                )));
            }
            spec.frames = seq.frames.len() as u32;
            spec.fps = crate::video::sequence_fps(&seq, spec.fps).min(60);
            // The video's own sound goes with it, unless another is given.
            if spec.audio.is_none()
                && self.library.resolve_id(src).is_err()
                && mintframe_media::audio_channels(Path::new(src)).is_ok()
            {
                spec.audio = Some(src.clone());
            }
        }
        for l in &spec.motion_loras {
            if !Path::new(&l.path).is_file() {
                return Err(StudioError::NotFound(format!("MotionLoRA {}", l.path)));
            }
            mintframe_types::ranges::LORA_STRENGTH
                .check(f64::from(l.strength))
                .map_err(settings)?;
            // Read now: a file that is no MotionLoRA is refused before the job is queued.
            let lora = mintframe_diffusion::weights::Lora::load(Path::new(&l.path), l.strength)?;
            if !lora.is_motion() {
                return Err(settings(format!(
                    "{} is an image LoRA, not a MotionLoRA (it names no motion module)",
                    l.path
                )));
            }
        }
        if (spec.walk || spec.source.is_some()) && !spec.motion_loras.is_empty() {
            return Err(settings(
                "MotionLoRAs steer the motion modules: a walk or a restyled video has none".into(),
            ));
        }
        if spec.walk && !spec.motion.is_empty() {
            return Err(settings(
                "a walk draws every frame on its own: it takes no motion adapter".into(),
            ));
        }
        if !spec.motion.is_empty() && !Path::new(&spec.motion).exists() {
            return Err(StudioError::NotFound(format!(
                "motion adapter {}",
                spec.motion
            )));
        }
        Ok(spec)
    }

    /// The frames of a vid2vid source: a library asset (its id) or a file.
    fn clip_source(&self, src: &str) -> Result<mintframe_media::Sequence, StudioError> {
        match self.library.resolve_id(src) {
            Ok(id) => self.asset_sequence(&id.to_string(), None),
            Err(_) => crate::preview::load_sequence(Path::new(src), None),
        }
    }

    /// A video's frames repainted one by one: each from the video's frame mixed with the last
    /// result, at `strength`, one seed, colours held to the first result.
    fn restyle(
        &self,
        model: &mintframe_diffusion::Model,
        spec: &ClipSpec,
        req: &Request,
        ctx: &JobCtx,
    ) -> Result<Vec<Rgba>, StudioError> {
        let src = spec
            .source
            .as_deref()
            .ok_or_else(|| settings("no source video".into()))?;
        let seq = self.clip_source(src)?;
        let (w, h) = (req.width, req.height);
        let strength = spec.strength.unwrap_or(0.5);
        let coherence = spec.coherence.unwrap_or(0.3);
        let quiet = JobCtx::new(ctx.cancel_token().clone(), |_| {});
        let n = seq.frames.len();
        let mut out: Vec<Rgba> = Vec::with_capacity(n);
        for (k, f) in seq.frames.iter().enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress("restyle", k as u64, n as u64);
            let frame = mintframe_media::resize_cover(f, w, h);
            let init = match out.last() {
                Some(prev) if coherence > 0.0 => mintframe_media::cine::transition(
                    &frame,
                    prev,
                    mintframe_types::Transition::Dissolve,
                    coherence,
                ),
                _ => frame,
            };
            let again = Request {
                strength: f64::from(strength),
                init_image: Some(rgb_of(&init)),
                ..req.clone()
            };
            let painted = mintframe_diffusion::generate(model, &again, &quiet, None)?
                .into_iter()
                .next()
                .map(|g| rgba_of(&g.image))
                .ok_or_else(|| StudioError::Task("the generation returned no image".into()))?;
            let held = match out.first() {
                Some(first) => mintframe_media::cine::match_colours(&painted, first),
                None => painted,
            };
            out.push(held);
        }
        ctx.progress("restyle", n as u64, n as u64);
        Ok(out)
    }

    /// Draws a completed clip's frames without storing them.
    pub fn build_clip(&self, spec: &ClipSpec, ctx: &JobCtx) -> Result<Clip, StudioError> {
        let missing = |w: &str| {
            settings(format!(
                "the clip has no {w}: it was not completed at submit"
            ))
        };
        let dtype = spec.dtype.ok_or_else(|| missing("dtype"))?;
        let device = spec.device.clone().ok_or_else(|| missing("device"))?;
        let generator = Generator {
            library: &self.library,
            manager: self.jobs.models(),
            cache: self.jobs.cache(),
        };
        let clock = std::time::Instant::now();
        let (resolved, model) = generator.load_plain(&spec.model, dtype, &device, ctx)?;
        // A walk draws every frame on its own; a clip's frames move together through the
        // motion adapter (the model's own unless one is named).
        let motion = if spec.walk || spec.source.is_some() {
            None
        } else {
            let motion_path = if spec.motion.is_empty() {
                let own = resolved.location.join(MOTION_FOLDER);
                if resolved.layout != Layout::Diffusers || !own.is_dir() {
                    return Err(settings(format!(
                        "model {} has no motion adapter of its own ({MOTION_FOLDER}/): pass --motion, an AnimateDiff motion adapter for SD 1.5 (a diffusers folder or one .safetensors), or make a --walk",
                        spec.model
                    )));
                }
                own
            } else {
                PathBuf::from(&spec.motion)
            };
            ctx.progress("load motion adapter", 0, 1);
            let loras = spec
                .motion_loras
                .iter()
                .map(|l| mintframe_diffusion::weights::Lora::load(Path::new(&l.path), l.strength))
                .collect::<Result<Vec<_>, _>>()?;
            let adapter = MotionAdapter::load_with_loras(
                &motion_path,
                loras,
                candle_dtype(dtype),
                &model.device,
            )?;
            let file = if motion_path.is_dir() {
                motion_path.join("diffusion_pytorch_model.safetensors")
            } else {
                motion_path.clone()
            };
            let (sha, _) =
                mintframe_diffusion::manager::sha256_file(&file, ctx, "hash motion adapter")?;
            let weight = WeightFile {
                path: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: sha,
            };
            Some((adapter, weight))
        };
        let missing_setting = |w: &str| missing(w);
        let seed = spec.seed.ok_or_else(|| missing_setting("seed"))?;
        let req = Request {
            prompt: spec.prompt.clone(),
            negative_prompt: spec.negative_prompt.clone(),
            seed,
            steps: spec.steps.ok_or_else(|| missing_setting("step count"))? as usize,
            guidance: f64::from(spec.guidance.ok_or_else(|| missing_setting("guidance"))?),
            width: spec.width.ok_or_else(|| missing_setting("width"))?,
            height: spec.height.ok_or_else(|| missing_setting("height"))?,
            scheduler: spec.scheduler.ok_or_else(|| missing_setting("scheduler"))?,
            batch: 1,
            strength: 1.0,
            init_image: None,
            mask: None,
            vae_tiling: None,
            between: None,
            latents: None,
            tiny_decoder: None,
        };
        let clip = ClipRequest {
            req,
            frames: spec.frames as usize,
            context: spec.context as usize,
            overlap: spec.overlap as usize,
            looped: spec.looped,
            keyframes: spec
                .keyframes
                .iter()
                .map(|k| Keyframe {
                    frame: k.frame as usize,
                    prompt: k.prompt.clone(),
                    negative_prompt: k.negative_prompt.clone(),
                    seed: k.seed.unwrap_or(seed),
                })
                .collect(),
        };
        let frames: Vec<Rgba> = match (&motion, spec.source.is_some()) {
            (_, true) => self.restyle(&model, spec, &clip.req, ctx)?,
            (Some((adapter, _)), false) => generate_clip(&model, adapter, &clip, ctx, None)?
                .iter()
                .map(rgba_of)
                .collect(),
            (None, false) => generate_walk(&model, &clip, ctx)?
                .iter()
                .map(rgba_of)
                .collect(),
        };
        let recipe = ClipRecipe {
            spec: spec.clone(),
            model_files: resolved
                .weight_files
                .iter()
                .map(|(path, sha256)| WeightFile {
                    path: path.clone(),
                    sha256: sha256.clone(),
                })
                .collect(),
            motion: motion.map(|(_, w)| w),
            loop_score: loop_score(&frames),
            seconds: clock.elapsed().as_secs_f64(),
        };
        Ok(Clip { frames, recipe })
    }

    /// Runs a `Clip` job: one Clip asset holding each format (the first is the main file), a
    /// poster and the recipe. The encodes go to a scratch folder first, so a cancel or a
    /// failure leaves nothing half written in the library.
    pub(crate) fn run_clip(
        &self,
        job: &JobRecord,
        spec: &ClipSpec,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        if !job.outputs.is_empty() {
            return Ok(());
        }
        let clip = match self.build_clip(spec, ctx) {
            Err(StudioError::Diffusion(mintframe_diffusion::Error::Cancelled(_))) => {
                return Err(StudioError::Cancelled);
            }
            r => r?,
        };
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| crate::generate::name_from_prompt(&spec.prompt, "clip"));
        let stem = sanitize_file_name(&name);
        self.in_scratch(job, |scratch| {
            self.store_clip(job, &clip, spec, &name, &stem, scratch, ctx)
        })
    }

    /// Runs `f` in the job's own scratch folder (`<data>/scratch/<job>/`), emptied first (what
    /// an interrupted run left is not trusted) and removed after, whatever `f` returns.
    pub(crate) fn in_scratch<T>(
        &self,
        job: &JobRecord,
        f: impl FnOnce(&Path) -> Result<T, StudioError>,
    ) -> Result<T, StudioError> {
        let scratch = self
            .settings
            .data_dir
            .join("scratch")
            .join(job.id.to_string());
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|source| StudioError::Io {
            action: "cannot create",
            path: scratch.clone(),
            source,
        })?;
        let result = f(&scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn store_clip(
        &self,
        job: &JobRecord,
        clip: &Clip,
        spec: &ClipSpec,
        name: &str,
        stem: &str,
        scratch: &Path,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        let mut json = serde_json::to_vec_pretty(&clip.recipe)
            .map_err(|e| StudioError::Task(format!("JSON: {e}")))?;
        json.push(b'\n');
        self.store_frames(
            job,
            &Stored {
                frames: &clip.frames,
                formats: &spec.formats,
                fps: spec.fps,
                audio: spec.audio.as_deref().map(Path::new),
                name,
                stem,
                recipe: (format!("{stem}.clip.json"), json),
            },
            scratch,
            ctx,
        )
    }

    /// Encodes frames in each format (in `scratch`), with a poster and a recipe, and stores
    /// them as one Clip asset; the first format is its main file.
    pub(crate) fn store_frames(
        &self,
        job: &JobRecord,
        s: &Stored<'_>,
        scratch: &Path,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        let (stem, name) = (s.stem, s.name);
        let mut files = Vec::new();
        let total = s.formats.len() as u64;
        for (k, format) in s.formats.iter().enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress(&format!("encode {format}"), k as u64, total);
            let file_name = format!("{stem}.{}", format.extension());
            let path = scratch.join(&file_name);
            match format {
                ClipFormat::Gif => {
                    let bytes = mintframe_media::encode_gif(s.frames, s.fps.min(50))?;
                    crate::paths::write_whole(&path, &bytes)?;
                }
                other => {
                    let f = match other {
                        ClipFormat::Mp4 => VideoFormat::Mp4,
                        ClipFormat::Webm => VideoFormat::WebM,
                        ClipFormat::Apng => VideoFormat::Apng,
                        _ => VideoFormat::WebP,
                    };
                    encode_streamed(s.frames, f, s.fps, s.audio, &path, ctx)?;
                }
            }
            let role = if k == 0 {
                "main".to_owned()
            } else {
                format.as_str().to_owned()
            };
            files.push((role, file_name, format.mime().to_owned(), path));
        }
        ctx.progress("encode", total, total);
        let poster = scratch.join(format!("{stem}.poster.png"));
        let first = s
            .frames
            .first()
            .ok_or_else(|| settings("the clip has no frames".into()))?;
        crate::paths::write_whole(&poster, &mintframe_media::encode_png_rgba(first)?)?;
        files.push((
            "poster".into(),
            format!("{stem}.poster.png"),
            "image/png".into(),
            poster,
        ));
        let recipe = scratch.join(&s.recipe.0);
        crate::paths::write_whole(&recipe, &s.recipe.1)?;
        files.push((
            "recipe".into(),
            s.recipe.0.clone(),
            "application/json".into(),
            recipe,
        ));
        ctx.check().map_err(|_| StudioError::Cancelled)?;
        let mut new_files = Vec::with_capacity(files.len());
        for (role, file_name, mime, path) in files {
            let bytes = std::fs::read(&path).map_err(|source| StudioError::Io {
                action: "cannot read",
                path: path.clone(),
                source,
            })?;
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
            kind: AssetKind::Clip,
            name: name.to_owned(),
            recipe: None,
            job: Some(job.id.clone()),
            files: new_files,
        })?;
        tracing::info!(
            job = %job.id,
            frames = s.frames.len(),
            "clip stored"
        );
        Ok(())
    }

    /// The recipe of a clip asset: its spec, weights and loop score.
    pub fn clip_recipe(&self, id_or_prefix: &str) -> Result<ClipRecipe, StudioError> {
        let detail = self.asset(id_or_prefix)?;
        let f = detail
            .files
            .iter()
            .find(|f| f.role == "recipe")
            .ok_or_else(|| {
                StudioError::NotFound(format!("the recipe of clip {}", detail.summary.id))
            })?;
        let path = self.library.file_path(&f.sha256);
        let text = std::fs::read(&path).map_err(|source| StudioError::Io {
            action: "cannot read",
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|e| {
            StudioError::Settings(format!(
                "asset {} has no clip recipe: {e}",
                detail.summary.id
            ))
        })
    }
}

/// Frames to a video file one at a time, with encode progress (frames/s comes from it).
fn encode_streamed(
    frames: &[Rgba],
    format: VideoFormat,
    fps: u32,
    audio: Option<&Path>,
    out: &Path,
    ctx: &JobCtx,
) -> Result<(), StudioError> {
    let first = frames
        .first()
        .ok_or_else(|| settings(format!("{}: no frames to encode", out.display())))?;
    // Only MP4 and WebM carry the soundtrack.
    let audio = audio.filter(|_| format.audio_encoder().is_some());
    let mut w = mintframe_media::VideoWriter::create_with_audio(
        out,
        format,
        first.width,
        first.height,
        fps,
        None,
        audio,
    )?;
    let n = frames.len() as u64;
    for (k, f) in frames.iter().enumerate() {
        // A dropped writer removes its part file: nothing half written survives a cancel.
        ctx.check().map_err(|_| StudioError::Cancelled)?;
        w.push(f)?;
        ctx.progress(&format!("encode {}", format.encoder()), k as u64 + 1, n);
    }
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(v: u8) -> Rgba {
        Rgba {
            width: 2,
            height: 2,
            data: [v, v, v, 255].repeat(4),
        }
    }

    #[test]
    fn a_loop_scores_one_when_the_seam_is_no_bigger_than_a_step_and_less_when_it_jumps() {
        let ramp_up_down: Vec<Rgba> = [0, 10, 20, 30, 20, 10].into_iter().map(solid).collect();
        let s = loop_score(&ramp_up_down);
        assert_eq!(s.score, 1.0, "{s:?}");
        let ramp: Vec<Rgba> = [0, 10, 20, 30, 40, 50].into_iter().map(solid).collect();
        let s = loop_score(&ramp);
        assert!(
            (s.score - 0.2).abs() < 1e-6,
            "a 50 jump over steps of 10: {s:?}"
        );
        assert!((s.seam - 50.0 / 255.0).abs() < 1e-6);
        assert_eq!(loop_score(&[solid(3)]).score, 1.0);
        assert_eq!(loop_score(&[]).score, 1.0);
    }

    /// The cancel lands from the progress sink after the third frame, as a cancel from the
    /// studio lands between frames: the encode stops and no file, whole or part, is left.
    #[test]
    fn a_cancel_mid_encode_stops_it_and_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let frames: Vec<Rgba> = (0..12u8).map(|k| solid(k * 20)).collect();
        for format in [VideoFormat::Mp4, VideoFormat::WebM, VideoFormat::Apng] {
            let out = dir.path().join(format!("c.{}", format.encoder()));
            let token = mintframe_jobs::CancelToken::new();
            let t = token.clone();
            let ctx = JobCtx::new(token, move |p| {
                if p.step == 3 {
                    t.cancel();
                }
            });
            let e = encode_streamed(&frames, format, 8, None, &out, &ctx).expect_err("cancelled");
            assert!(matches!(e, StudioError::Cancelled), "{e}");
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .expect("dir")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert!(left.is_empty(), "{format:?} left {left:?}");
            encode_streamed(&frames, format, 8, None, &out, &JobCtx::detached()).expect("whole");
            assert!(out.is_file());
            std::fs::remove_file(&out).expect("rm");
        }
    }
}
