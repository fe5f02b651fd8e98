//! NPC cinematics from a shot list (TOML): each shot drawn (a keyframe, moved by its camera,
//! optionally repainted frame by frame Deforum-style, or an AnimateDiff clip), joined to the
//! last by its transition, its line burned in and/or written as WebVTT, its sound mixed over the
//! list's music, streamed to one MP4 with a poster, the completed list and each shot's frames
//! (which the preview window offers shot by shot).

use std::path::{Path, PathBuf};

use mintframe_diffusion::Request;
use mintframe_diffusion::animate::{ClipRequest, MOTION_FOLDER, generate_clip};
use mintframe_diffusion::manager::Layout;
use mintframe_diffusion::motion::MotionAdapter;
use mintframe_jobs::JobCtx;
use mintframe_library::{NewAsset, NewFile, sanitize_file_name};
use mintframe_media::cine::{Subtitles, View, camera, match_colours, transition};
use mintframe_media::{Audio, Rgba, VideoFormat, VideoWriter};
use mintframe_types::shots::{Shot, ShotList, check};
use mintframe_types::{AssetKind, JobRecord, SubtitleMode, Transition};
use serde::{Deserialize, Serialize};

use crate::generate::{Generator, candle_dtype, fresh_seed, rgb_of, rgba_of};
use crate::{App, StudioError};

fn settings(m: String) -> StudioError {
    StudioError::Settings(m)
}

/// The most a shot list file may weigh: it is text.
const MAX_LIST_BYTES: u64 = 1 << 20;

/// A shot list from TOML text, checked (paths in it are left as written).
pub fn parse_shot_list(text: &str) -> Result<ShotList, StudioError> {
    let list: ShotList =
        toml::from_str(text).map_err(|e| settings(format!("not a shot list: {e}")))?;
    check(&list).map_err(settings)?;
    Ok(list)
}

/// A shot list as TOML, as `mintframe shots` reads it.
pub fn shot_list_toml(list: &ShotList) -> Result<String, StudioError> {
    toml::to_string_pretty(list)
        .map_err(|e| settings(format!("cannot write the shot list as TOML: {e}")))
}

/// Reads a shot list, checks it, and makes its sound files' paths absolute (relative ones are
/// taken from the list's folder, so the job runs from anywhere).
pub fn read_shot_list(path: &Path) -> Result<ShotList, StudioError> {
    let io = |source| StudioError::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() || meta.len() > MAX_LIST_BYTES {
        return Err(settings(format!(
            "{}: a shot list is a TOML file under 1 MiB",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut list: ShotList = toml::from_str(&text)
        .map_err(|e| settings(format!("{}: not a shot list: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let absolute = |p: &str| -> Result<String, StudioError> {
        let p = Path::new(p);
        let full = if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        };
        std::path::absolute(&full)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|source| StudioError::Io {
                action: "cannot resolve",
                path: full,
                source,
            })
    };
    if let Some(a) = list.audio.take() {
        list.audio = Some(absolute(&a)?);
    }
    for s in &mut list.shots {
        if let Some(a) = s.audio.take() {
            s.audio = Some(absolute(&a)?);
        }
    }
    check(&list).map_err(|e| settings(format!("{}: {e}", path.display())))?;
    Ok(list)
}

/// Where each shot sits in the cinematic, in frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShotSpan {
    /// 1-based, and the start of its prompt, for the preview's list.
    pub name: String,
    /// The shot's first frame (its transition in starts here) and one past its last.
    pub start: usize,
    pub end: usize,
    /// Frames shared with the shot before (the transition in).
    pub overlap: usize,
}

/// A subtitle: its text and the frames it shows on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cue {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// The frame plan of a list: every shot's span, the cues, the total frame count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub fps: u32,
    pub frames: usize,
    pub shots: Vec<ShotSpan>,
    pub cues: Vec<Cue>,
}

/// The plan of `list`: each shot lasts its duration in frames; a transition into it overlaps
/// that many frames with the shot before (a fade in on the first shot overlaps nothing).
pub fn timeline(list: &ShotList) -> Timeline {
    let fps = list.fps.max(1) as f32;
    let lens: Vec<usize> = list
        .shots
        .iter()
        .map(|s| ((s.duration * fps).round() as usize).max(1))
        .collect();
    let mut overlaps = vec![0usize; lens.len()];
    for i in 1..lens.len() {
        let s = &list.shots[i];
        if s.transition != Transition::Cut {
            // Never more than the shot before has left after its own transition in.
            overlaps[i] = ((s.transition_duration * fps).round() as usize)
                .min(lens[i])
                .min(lens[i - 1] - overlaps[i - 1]);
        }
    }
    let mut shots = Vec::with_capacity(lens.len());
    let mut cues = Vec::new();
    let mut at = 0usize;
    for (i, s) in list.shots.iter().enumerate() {
        let start = at - overlaps[i];
        let end = start + lens[i];
        let words: Vec<&str> = s.prompt.split_whitespace().take(4).collect();
        shots.push(ShotSpan {
            name: format!("{} {}", i + 1, words.join(" ")),
            start,
            end,
            overlap: overlaps[i],
        });
        if let Some(line) = s.line.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            // On screen once the shot has fully come in, until the next starts coming in.
            let next = overlaps.get(i + 1).copied().unwrap_or(0);
            let (from, to) = (start + overlaps[i], end - next);
            let (from, to) = if from < to { (from, to) } else { (start, end) };
            cues.push(Cue {
                text: match &s.speaker {
                    Some(who) if !who.trim().is_empty() => format!("{}: {line}", who.trim()),
                    _ => line.to_owned(),
                },
                start: from,
                end: to,
            });
        }
        at = end;
    }
    Timeline {
        fps: list.fps,
        frames: at,
        shots,
        cues,
    }
}

fn stamp(frame: usize, fps: u32) -> String {
    let ms = frame as u64 * 1000 / u64::from(fps.max(1));
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The cues as a WebVTT file.
pub fn webvtt(t: &Timeline) -> String {
    let mut out = String::from("WEBVTT\n");
    for (k, c) in t.cues.iter().enumerate() {
        out.push_str(&format!(
            "\n{}\n{} --> {}\n{}\n",
            k + 1,
            stamp(c.start, t.fps),
            stamp(c.end, t.fps),
            c.text.replace("-->", "->")
        ));
    }
    out
}

/// What a rendered list is kept with: the list as run and its plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShotsRecipe {
    pub list: ShotList,
    pub timeline: Timeline,
    pub seconds: f64,
}

impl App {
    /// Checks a shot list and fixes what was left open (the model's defaults, every shot's
    /// seed), so the job reproduces.
    pub fn complete_shots(&self, mut list: ShotList) -> Result<ShotList, StudioError> {
        use mintframe_types::ranges::{GUIDANCE, MAX_SEED};
        check(&list).map_err(settings)?;
        if list.model.is_empty() {
            list.model = mintframe_diffusion::manager::TINY_ID.to_owned();
        }
        if let Some(n) = &list.name {
            crate::paths::plain_name("cinematic name", n)?;
        }
        if let Some(g) = list.guidance {
            GUIDANCE.check(f64::from(g)).map_err(settings)?;
        }
        let defaults = self
            .models()
            .manifest(&list.model)
            .ok()
            .map(|m| m.defaults)
            .unwrap_or_else(|| {
                mintframe_diffusion::manager::default_for(mintframe_diffusion::Arch::Sd1)
            });
        let steps = *list.steps.get_or_insert(defaults.steps);
        if !(1..=1000).contains(&steps) {
            return Err(settings(format!(
                "steps {steps} is out of range: use 1 to 1000"
            )));
        }
        list.guidance.get_or_insert(defaults.guidance);
        list.scheduler.get_or_insert(defaults.scheduler);
        for (side, what, default) in [
            (&mut list.width, "width", defaults.width),
            (&mut list.height, "height", defaults.height),
        ] {
            let v = *side.get_or_insert(default);
            if v == 0 || !v.is_multiple_of(8) || v > 1024 {
                return Err(settings(format!(
                    "{what} {v} must be a multiple of 8 up to 1024"
                )));
            }
        }
        list.dtype.get_or_insert(mintframe_types::DType::F32);
        list.device.get_or_insert_with(|| "cpu".into());
        let seed = *list.seed.get_or_insert_with(fresh_seed);
        for (i, s) in list.shots.iter_mut().enumerate() {
            let s_seed = *s
                .seed
                .get_or_insert(seed.wrapping_add(i as u64) % (MAX_SEED + 1));
            if s_seed > MAX_SEED {
                return Err(settings(format!(
                    "shot {}: seed {s_seed} is out of range: use 0 to {MAX_SEED}",
                    i + 1
                )));
            }
        }
        let sounds = list
            .audio
            .iter()
            .chain(list.shots.iter().filter_map(|s| s.audio.as_ref()));
        for a in sounds {
            mintframe_media::audio_channels(Path::new(a))?;
        }
        Ok(list)
    }

    /// The list's sound: its music with every shot's audio laid in from the shot's start, cut
    /// to the cinematic's length; `None` when it has none.
    fn mix_sound(&self, list: &ShotList, t: &Timeline) -> Result<Option<Audio>, StudioError> {
        let seconds = t.frames as f64 / f64::from(t.fps.max(1));
        if list.audio.is_none() && list.shots.iter().all(|s| s.audio.is_none()) {
            return Ok(None);
        }
        let mut bed = Audio::silence(seconds);
        if let Some(a) = &list.audio {
            bed.mix_at(&mintframe_media::decode_audio(Path::new(a), seconds)?, 0.0);
        }
        for (s, span) in list.shots.iter().zip(&t.shots) {
            if let Some(a) = &s.audio {
                let at = span.start as f64 / f64::from(t.fps.max(1));
                bed.mix_at(
                    &mintframe_media::decode_audio(Path::new(a), seconds - at)?,
                    at,
                );
            }
        }
        Ok(Some(bed))
    }

    /// Renders a completed list to `out` (an MP4), streaming frames to the encoder as each
    /// shot is done. Returns the plan and the poster (the first shot's first frame).
    pub fn render_shots(
        &self,
        list: &ShotList,
        out: &Path,
        scratch: &Path,
        ctx: &JobCtx,
    ) -> Result<(Timeline, Rgba), StudioError> {
        let missing = |w: &str| {
            settings(format!(
                "the shot list has no {w}: it was not completed at submit"
            ))
        };
        let (w, h) = (
            list.width.ok_or_else(|| missing("width"))?,
            list.height.ok_or_else(|| missing("height"))?,
        );
        let dtype = list.dtype.ok_or_else(|| missing("dtype"))?;
        let device = list.device.clone().ok_or_else(|| missing("device"))?;
        let t = timeline(list);
        let generator = Generator {
            library: &self.library,
            manager: self.jobs.models(),
            cache: self.jobs.cache(),
        };
        let (resolved, model) = generator.load_plain(&list.model, dtype, &device, ctx)?;
        let motion = if list.shots.iter().any(|s| s.motion) {
            let own = resolved.location.join(MOTION_FOLDER);
            if resolved.layout != Layout::Diffusers || !own.is_dir() {
                return Err(settings(format!(
                    "a shot asks for motion but model {} has no motion adapter ({MOTION_FOLDER}/)",
                    list.model
                )));
            }
            Some(MotionAdapter::load(
                &own,
                candle_dtype(dtype),
                &model.device,
            )?)
        } else {
            None
        };
        let sound = match self.mix_sound(list, &t)? {
            Some(a) => {
                let wav = scratch.join("sound.wav");
                crate::paths::write_whole(&wav, &a.to_wav())?;
                Some(wav)
            }
            None => None,
        };
        let subs = match list.subtitles {
            SubtitleMode::Burn | SubtitleMode::Both => Some(Subtitles::new()?),
            SubtitleMode::Webvtt | SubtitleMode::Off => None,
        };
        let mut writer = VideoWriter::create_with_audio(
            out,
            VideoFormat::Mp4,
            w,
            h,
            list.fps,
            None,
            sound.as_deref(),
        )?;
        // The generations report nothing of their own: the job's progress is frames made.
        let quiet = JobCtx::new(ctx.cancel_token().clone(), |_| {});
        let base = Request {
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: 0,
            steps: list.steps.ok_or_else(|| missing("step count"))? as usize,
            guidance: f64::from(list.guidance.ok_or_else(|| missing("guidance"))?),
            width: w,
            height: h,
            scheduler: list.scheduler.ok_or_else(|| missing("scheduler"))?,
            batch: 1,
            strength: 1.0,
            init_image: None,
            mask: None,
            vae_tiling: None,
            between: None,
            latents: None,
            tiny_decoder: None,
        };
        let mut emitted = 0usize;
        let mut poster = None;
        let mut tail: Vec<Rgba> = Vec::new();
        let total = t.frames as u64;
        let n_shots = list.shots.len();
        for (i, (shot, span)) in list.shots.iter().zip(&t.shots).enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress(
                &format!("draw shot {}/{n_shots}", i + 1),
                emitted as u64,
                total,
            );
            let req = Request {
                prompt: shot.prompt.clone(),
                negative_prompt: shot.negative_prompt.clone(),
                seed: shot.seed.ok_or_else(|| missing("shot seed"))?,
                ..base.clone()
            };
            let frames = self.draw_shot(
                &model,
                motion.as_ref(),
                shot,
                &req,
                span.end - span.start,
                &quiet,
            )?;
            if poster.is_none() {
                poster = frames.first().cloned();
            }
            let next_overlap = t.shots.get(i + 1).map(|s| s.overlap).unwrap_or(0);
            let keep_from = frames.len() - next_overlap;
            let mut emit = |mut f: Rgba, emitted: &mut usize| -> Result<(), StudioError> {
                if let Some(s) = &subs
                    && let Some(c) = t.cues.iter().find(|c| (c.start..c.end).contains(emitted))
                {
                    s.draw(&mut f, &c.text);
                }
                ctx.check().map_err(|_| StudioError::Cancelled)?;
                writer.push(&f)?;
                *emitted += 1;
                ctx.progress(&format!("shot {}/{n_shots}", i + 1), *emitted as u64, total);
                Ok(())
            };
            for (j, f) in frames.iter().enumerate().take(keep_from) {
                let out = if j < span.overlap {
                    let k = (j as f32 + 0.5) / span.overlap as f32;
                    let from = tail.get(j).cloned().unwrap_or_else(|| f.clone());
                    transition(&from, f, shot.transition, k)
                } else if i == 0 && shot.transition == Transition::Fade {
                    // The first shot fades in from black over its transition's length.
                    let n = ((shot.transition_duration * list.fps as f32).round() as usize)
                        .min(frames.len());
                    if j < n {
                        let black = Rgba {
                            width: f.width,
                            height: f.height,
                            data: f
                                .data
                                .chunks_exact(4)
                                .flat_map(|p| [0, 0, 0, p[3]])
                                .collect(),
                        };
                        let k = (j as f32 + 0.5) / n as f32;
                        transition(&black, f, Transition::Dissolve, k)
                    } else {
                        f.clone()
                    }
                } else {
                    f.clone()
                };
                emit(out, &mut emitted)?;
            }
            tail = frames[keep_from..].to_vec();
        }
        writer.finish()?;
        ctx.progress("encode", total, total);
        let poster = poster.ok_or_else(|| settings("the shot list made no frames".into()))?;
        Ok((t, poster))
    }

    /// One shot's `n` frames: its keyframe (or AnimateDiff clip) under the camera move,
    /// repainted from frame to frame when the move has a strength.
    fn draw_shot(
        &self,
        model: &mintframe_diffusion::Model,
        motion: Option<&MotionAdapter>,
        shot: &Shot,
        req: &Request,
        n: usize,
        ctx: &JobCtx,
    ) -> Result<Vec<Rgba>, StudioError> {
        let c = &shot.camera;
        let end = View {
            zoom: c.zoom,
            pan: c.pan,
            rotate: c.rotate,
        };
        let view_at = |k: usize| {
            let t = if n > 1 {
                k as f32 / (n - 1) as f32
            } else {
                0.0
            };
            View::towards(end, c.easing.at(t))
        };
        let drawn: Vec<Rgba> = match (shot.motion, motion) {
            (true, Some(m)) => {
                let clip = ClipRequest {
                    req: req.clone(),
                    frames: n,
                    context: 16.min(m.config().motion_max_seq_length),
                    overlap: 4,
                    looped: false,
                    keyframes: Vec::new(),
                };
                generate_clip(model, m, &clip, ctx, None)?
                    .iter()
                    .map(rgba_of)
                    .collect()
            }
            _ => {
                let key = mintframe_diffusion::generate(model, req, ctx, None)?
                    .into_iter()
                    .next()
                    .map(|g| rgba_of(&g.image))
                    .ok_or_else(|| StudioError::Task("the generation returned no image".into()))?;
                vec![key]
            }
        };
        if drawn.len() == n {
            return Ok(drawn
                .iter()
                .enumerate()
                .map(|(k, f)| camera(f, view_at(k)))
                .collect());
        }
        let key = drawn
            .into_iter()
            .next()
            .ok_or_else(|| StudioError::Task("the shot has no keyframe".into()))?;
        if c.strength <= 0.0 {
            return Ok((0..n).map(|k| camera(&key, view_at(k))).collect());
        }
        // Deforum: each frame is the last one moved by this frame's step of the camera, then
        // repainted at the strength, its colours held to the keyframe's.
        let mut out = Vec::with_capacity(n);
        let mut last = key.clone();
        out.push(key.clone());
        for k in 1..n {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            let (a, b) = (view_at(k - 1), view_at(k));
            let step = View {
                zoom: b.zoom / a.zoom.max(1e-3),
                pan: [
                    (b.pan[0] - a.pan[0]) * a.zoom,
                    (b.pan[1] - a.pan[1]) * a.zoom,
                ],
                rotate: b.rotate - a.rotate,
            };
            let moved = camera(&last, step);
            let again = Request {
                seed: req.seed.wrapping_add(k as u64),
                strength: f64::from(c.strength),
                init_image: Some(rgb_of(&moved)),
                ..req.clone()
            };
            let painted = mintframe_diffusion::generate(model, &again, ctx, None)?
                .into_iter()
                .next()
                .map(|g| rgba_of(&g.image))
                .ok_or_else(|| StudioError::Task("the generation returned no image".into()))?;
            last = match_colours(&painted, &key);
            out.push(last.clone());
        }
        Ok(out)
    }

    /// Runs a `Shots` job: one Clip asset holding the MP4, its WebVTT (if asked), a poster and
    /// the recipe with each shot's frames. Rendered in a scratch folder, so a cancel or a
    /// failure leaves nothing in the library.
    pub(crate) fn run_shots(
        &self,
        job: &JobRecord,
        list: &ShotList,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        if !job.outputs.is_empty() {
            return Ok(());
        }
        let clock = std::time::Instant::now();
        let name = list.name.clone().unwrap_or_else(|| "cinematic".into());
        let stem = sanitize_file_name(&name);
        self.in_scratch(job, |scratch| {
            let mp4 = scratch.join(format!("{stem}.mp4"));
            let (t, poster) = match self.render_shots(list, &mp4, scratch, ctx) {
                Err(StudioError::Diffusion(mintframe_diffusion::Error::Cancelled(_))) => {
                    return Err(StudioError::Cancelled);
                }
                r => r?,
            };
            let mut files: Vec<(String, String, String, PathBuf)> = vec![(
                "main".into(),
                format!("{stem}.mp4"),
                "video/mp4".into(),
                mp4,
            )];
            if matches!(list.subtitles, SubtitleMode::Webvtt | SubtitleMode::Both)
                && !t.cues.is_empty()
            {
                let vtt = scratch.join(format!("{stem}.vtt"));
                crate::paths::write_whole(&vtt, webvtt(&t).as_bytes())?;
                files.push((
                    "subtitles".into(),
                    format!("{stem}.vtt"),
                    "text/vtt".into(),
                    vtt,
                ));
            }
            let poster_path = scratch.join(format!("{stem}.poster.png"));
            crate::paths::write_whole(&poster_path, &mintframe_media::encode_png_rgba(&poster)?)?;
            files.push((
                "poster".into(),
                format!("{stem}.poster.png"),
                "image/png".into(),
                poster_path,
            ));
            let recipe = ShotsRecipe {
                list: list.clone(),
                timeline: t,
                seconds: clock.elapsed().as_secs_f64(),
            };
            let mut json = serde_json::to_vec_pretty(&recipe)
                .map_err(|e| StudioError::Task(format!("JSON: {e}")))?;
            json.push(b'\n');
            let recipe_path = scratch.join(format!("{stem}.shots.json"));
            crate::paths::write_whole(&recipe_path, &json)?;
            files.push((
                "shots".into(),
                format!("{stem}.shots.json"),
                "application/json".into(),
                recipe_path,
            ));
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            let mut new_files = Vec::with_capacity(files.len());
            for (role, file_name, mime, path) in files {
                let mut f = std::fs::File::open(&path).map_err(|source| StudioError::Io {
                    action: "cannot read",
                    path: path.clone(),
                    source,
                })?;
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let stored = self.library.store(&mut f, len, ctx)?;
                new_files.push(NewFile {
                    role,
                    file_name,
                    mime,
                    stored,
                });
            }
            self.library.add_asset(NewAsset {
                kind: AssetKind::Clip,
                name: name.clone(),
                recipe: None,
                job: Some(job.id.clone()),
                files: new_files,
            })?;
            Ok(())
        })
    }

    /// The shots of a cinematic asset, as tags for the preview window (one per shot).
    pub(crate) fn shot_tags(
        &self,
        detail: &mintframe_types::AssetDetail,
    ) -> Vec<mintframe_media::Tag> {
        let Some(f) = detail.files.iter().find(|f| f.role == "shots") else {
            return Vec::new();
        };
        let recipe: Option<ShotsRecipe> = std::fs::read(self.library.file_path(&f.sha256))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        recipe
            .map(|r| {
                r.timeline
                    .shots
                    .iter()
                    .map(|s| mintframe_media::Tag {
                        name: s.name.clone(),
                        from: s.start,
                        to: s.end.saturating_sub(1),
                        direction: mintframe_media::Direction::Forward,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> ShotList {
        toml::from_str(text).expect("toml")
    }

    const THREE: &str = r#"
fps = 10
[[shot]]
prompt = "a forge at night"
duration = 2.0
transition = "fade"
line = "Mornin'."
speaker = "Smith"
[[shot]]
prompt = "the smith's face"
duration = 1.5
transition = "dissolve"
transition_duration = 0.5
camera = { zoom = 1.5, easing = "ease-in" }
[[shot]]
prompt = "a sword on the anvil"
duration = 1.0
transition = "wipe-left"
transition_duration = 0.3
line = "Need a blade?"
"#;

    #[test]
    fn a_timeline_overlaps_shots_by_their_transitions_and_cues_show_between_them() {
        let l = list(THREE);
        check(&l).expect("valid");
        let t = timeline(&l);
        let spans: Vec<(usize, usize, usize)> = t
            .shots
            .iter()
            .map(|s| (s.start, s.end, s.overlap))
            .collect();
        // 20 + 15 + 10 frames, 5 and 3 shared.
        assert_eq!(spans, vec![(0, 20, 0), (15, 30, 5), (27, 37, 3)]);
        assert_eq!(t.frames, 37);
        assert_eq!(
            t.cues,
            vec![
                Cue {
                    text: "Smith: Mornin'.".into(),
                    start: 0,
                    end: 15
                },
                Cue {
                    text: "Need a blade?".into(),
                    start: 30,
                    end: 37
                }
            ]
        );
        let vtt = webvtt(&t);
        assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
        assert!(
            vtt.contains("00:00:00.000 --> 00:00:01.500\nSmith: Mornin'."),
            "{vtt}"
        );
        assert!(
            vtt.contains("00:00:03.000 --> 00:00:03.700\nNeed a blade?"),
            "{vtt}"
        );
    }

    #[test]
    fn bad_shot_lists_are_refused_naming_the_shot_and_the_field() {
        let bad = |text: &str, says: &str| {
            let e = match toml::from_str::<ShotList>(text) {
                Err(e) => e.to_string(),
                Ok(l) => check(&l).expect_err("refused"),
            };
            assert!(e.contains(says), "{e}");
        };
        bad(
            "[[shot]]\nprompt = \"a\"\nduration = -1.0\n",
            "shot 1: duration -1 must be above 0",
        );
        bad(
            "[[shot]]\nprompt = \"a\"\nduration = 1.0\ntransition = \"spin\"\n",
            "unknown variant `spin`",
        );
        bad(
            "[[shot]]\nprompt = \"a\"\nduration = 1.0\ntransition = \"dissolve\"\n",
            "shot 1: a dissolve needs a shot before it",
        );
        bad("fps = 12\n", "missing field `shot`");
        bad(
            "[[shot]]\nprompt = \"a\"\nduration = 1.0\ncamera = { zoom = 20.0 }\n",
            "camera zoom 20 is out of range",
        );
        bad(
            "[[shot]]\nprompt = \"a\"\nduration = 1.0\n[[shot]]\nprompt = \"b\"\nduration = 0.4\ntransition = \"fade\"\ntransition_duration = 1.0\n",
            "shot 2: a 1 s fade is longer than the shots it joins",
        );
        bad(
            "[[shot]]\nprompt = \"a\"\nduration = 1.0\nmood = \"grim\"\n",
            "unknown field `mood`",
        );
    }
}
