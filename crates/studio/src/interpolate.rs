//! In-between frames with RIFE: `factor − 1` new frames between every two of a clip (and
//! between the last and the first of a loop), alpha carried by a second pass over the alpha
//! plane, and — for pixel-art clips, whose frames share a few colours — every new frame put
//! back into the source's exact palette so no blended colour appears.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mintframe_diffusion::rife::Rife;
use mintframe_diffusion::{Device, Rgb};
use mintframe_jobs::JobCtx;
use mintframe_media::Rgba;
use mintframe_types::{ClipFormat, Dither, InterpolateSpec, JobRecord};

use crate::{App, StudioError};

/// The most colours a clip may use and still count as pixel art for the palette lock.
pub const PALETTE_LOCK_MAX: usize = 256;

pub use mintframe_types::PaletteLock;

/// Where RIFE weights live, by name (`<name>.safetensors`): the window names them, never files.
pub fn rife_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("rife")
}

/// What an interpolation made.
#[derive(Debug, Clone)]
pub struct Interpolated {
    pub frames: Vec<Rgba>,
    /// The source palette the new frames were locked to, if they were.
    pub palette: Option<usize>,
}

/// The distinct colours of the opaque-enough pixels of `frames`, up to `max + 1`.
fn colours(frames: &[Rgba], max: usize) -> BTreeSet<[u8; 3]> {
    let mut set = BTreeSet::new();
    for f in frames {
        for p in f.data.chunks_exact(4).filter(|p| p[3] >= 128) {
            set.insert([p[0], p[1], p[2]]);
            if set.len() > max {
                return set;
            }
        }
    }
    set
}

fn rgb_of(f: &Rgba, alpha: bool) -> Rgb {
    Rgb {
        width: f.width,
        height: f.height,
        data: f
            .data
            .chunks_exact(4)
            .flat_map(|p| if alpha { [p[3]; 3] } else { [p[0], p[1], p[2]] })
            .collect(),
    }
}

/// Loads RIFE weights (a safetensors file: RIFE's `flownet` state dict).
pub fn load_rife(path: &Path) -> Result<Rife, StudioError> {
    Ok(Rife::load(path, &Device::Cpu)?)
}

/// `frames` with `factor − 1` RIFE frames between each two (and after the last, towards the
/// first, when `looped`).
pub fn interpolate_frames(
    rife: &Rife,
    frames: &[Rgba],
    factor: u32,
    looped: bool,
    lock: PaletteLock,
    ctx: &JobCtx,
) -> Result<Interpolated, StudioError> {
    if !(2..=16).contains(&factor) {
        return Err(StudioError::Settings(format!(
            "--factor {factor} is out of range: 2 to 16 (frames become that many times as many)"
        )));
    }
    let first = frames
        .first()
        .ok_or_else(|| StudioError::Settings("the source has no frames".into()))?;
    if frames.len() < 2 {
        return Err(StudioError::Settings(
            "one frame has nothing to interpolate to: give a clip of two or more".into(),
        ));
    }
    if let Some((i, f)) = frames
        .iter()
        .enumerate()
        .find(|(_, f)| (f.width, f.height) != (first.width, first.height))
    {
        return Err(StudioError::Settings(format!(
            "frame {i} is {}×{} but the first is {}×{}",
            f.width, f.height, first.width, first.height
        )));
    }
    let palette: Option<Vec<[u8; 3]>> = {
        let set = colours(frames, PALETTE_LOCK_MAX);
        match (lock, set.len() <= PALETTE_LOCK_MAX) {
            (PaletteLock::Off, _) => None,
            (PaletteLock::Auto, false) => None,
            (PaletteLock::On, false) => {
                return Err(StudioError::Settings(format!(
                    "the clip uses more than {PALETTE_LOCK_MAX} colours: it has no palette to lock to"
                )));
            }
            (_, true) => Some(set.into_iter().collect()),
        }
    };
    let has_alpha = frames
        .iter()
        .any(|f| f.data.chunks_exact(4).any(|p| p[3] < 255));
    let binary_alpha = frames
        .iter()
        .all(|f| f.data.chunks_exact(4).all(|p| p[3] == 0 || p[3] == 255));
    let pairs = if looped {
        frames.len()
    } else {
        frames.len() - 1
    };
    let total = (pairs * (factor as usize - 1)) as u64;
    let mut out = Vec::with_capacity(frames.len() * factor as usize);
    let mut made = 0u64;
    for i in 0..frames.len() {
        out.push(frames[i].clone());
        if i == pairs {
            break;
        }
        let (a, b) = (&frames[i], &frames[(i + 1) % frames.len()]);
        for k in 1..factor {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            let t = k as f32 / factor as f32;
            let rgb = rife.interpolate_rgb(&rgb_of(a, false), &rgb_of(b, false), t)?;
            let alpha = if has_alpha {
                Some(rife.interpolate_rgb(&rgb_of(a, true), &rgb_of(b, true), t)?)
            } else {
                None
            };
            let mut f = Rgba {
                width: a.width,
                height: a.height,
                data: rgb
                    .data
                    .chunks_exact(3)
                    .enumerate()
                    .flat_map(|(p, c)| {
                        let al = alpha.as_ref().map_or(255, |m| {
                            let v = m.data[p * 3];
                            if binary_alpha {
                                if v >= 128 { 255 } else { 0 }
                            } else {
                                v
                            }
                        });
                        [c[0], c[1], c[2], al]
                    })
                    .collect(),
            };
            if let Some(p) = &palette {
                mintframe_media::pixel::quantize(&mut f, p, Dither::None);
            }
            out.push(f);
            made += 1;
            ctx.progress("interpolate", made, total);
        }
    }
    Ok(Interpolated {
        frames: out,
        palette: palette.map(|p| p.len()),
    })
}

/// What an in-between clip was made from (`<name>.interpolate.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InterpolateRecipe {
    pub spec: InterpolateSpec,
    pub rife_sha256: String,
    pub source_frames: usize,
    /// Colours of the source palette the new frames were locked to.
    pub palette: Option<usize>,
}

impl App {
    /// The RIFE weights this studio has, by name.
    pub fn rife_models(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(rife_dir(&self.settings.data_dir))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| {
                        let p = e.path();
                        if p.extension().is_some_and(|x| x == "safetensors") {
                            p.file_stem().map(|s| s.to_string_lossy().into_owned())
                        } else {
                            None
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// RIFE weights by name (in `<data>/rife/`) or as a file.
    pub fn rife_path(&self, name_or_path: &str) -> Result<PathBuf, StudioError> {
        let p = Path::new(name_or_path);
        if p.is_file() {
            return Ok(p.to_owned());
        }
        crate::paths::plain_name("RIFE weights", name_or_path)?;
        let named = rife_dir(&self.settings.data_dir).join(format!("{name_or_path}.safetensors"));
        if named.is_file() {
            return Ok(named);
        }
        Err(StudioError::NotFound(format!(
            "RIFE weights {name_or_path}: give a file, or put RIFE 4.x's flownet as safetensors in {}",
            named.display()
        )))
    }

    fn interpolate_source(
        &self,
        spec: &InterpolateSpec,
    ) -> Result<mintframe_media::Sequence, StudioError> {
        match self.library.resolve_id(&spec.source) {
            Ok(id) => self.asset_sequence(&id.to_string(), spec.frame_size),
            Err(_) => crate::preview::load_sequence(Path::new(&spec.source), spec.frame_size),
        }
    }

    /// Checks an interpolation before it is queued: the factor, the weights (loaded), the
    /// source (read), the formats (mp4, webm, gif when none), the name.
    pub fn complete_interpolate(
        &self,
        mut spec: InterpolateSpec,
    ) -> Result<InterpolateSpec, StudioError> {
        if !(2..=16).contains(&spec.factor) {
            return Err(StudioError::Settings(format!(
                "--factor {} is out of range: 2 to 16 (frames become that many times as many)",
                spec.factor
            )));
        }
        load_rife(&self.rife_path(&spec.rife)?)?;
        let seq = self.interpolate_source(&spec)?;
        if seq.frames.len() < 2 {
            return Err(StudioError::Settings(
                "one frame has nothing to interpolate to: give a clip of two or more".into(),
            ));
        }
        if seq.frames.len() * spec.factor as usize > 4096 {
            return Err(StudioError::Settings(format!(
                "{} frames × {} is over the 4096 frames one clip may have",
                seq.frames.len(),
                spec.factor
            )));
        }
        if let Some(f) = spec.fps
            && !(1..=120).contains(&f)
        {
            return Err(StudioError::Settings(format!(
                "--fps {f} is out of range: 1 to 120"
            )));
        }
        if spec.formats.is_empty() {
            spec.formats = vec![ClipFormat::Mp4, ClipFormat::Webm, ClipFormat::Gif];
        }
        if let Some(n) = &spec.name {
            crate::paths::plain_name("clip name", n)?;
        }
        Ok(spec)
    }

    /// Runs an `Interpolate` job: the in-between clip as a new Clip asset.
    pub(crate) fn run_interpolate(
        &self,
        job: &JobRecord,
        spec: &InterpolateSpec,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        if !job.outputs.is_empty() {
            return Ok(());
        }
        let path = self.rife_path(&spec.rife)?;
        let rife = load_rife(&path)?;
        let (rife_sha256, _) =
            mintframe_diffusion::manager::sha256_file(&path, ctx, "hash RIFE weights")?;
        let seq = self.interpolate_source(spec)?;
        let made = interpolate_frames(
            &rife,
            &seq.frames,
            spec.factor,
            spec.looped,
            spec.palette_lock,
            ctx,
        )?;
        let fps = spec
            .fps
            .unwrap_or_else(|| (crate::video::sequence_fps(&seq, 12) * spec.factor).clamp(1, 120));
        let name = spec.name.clone().unwrap_or_else(|| {
            let base = match self.library.resolve_id(&spec.source) {
                Ok(id) => self
                    .asset(&id.to_string())
                    .map(|a| a.summary.name)
                    .unwrap_or_else(|_| "clip".into()),
                Err(_) => Path::new(&spec.source)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "clip".into()),
            };
            format!("{base}-x{}", spec.factor)
        });
        let stem = mintframe_library::sanitize_file_name(&name);
        let recipe = InterpolateRecipe {
            spec: spec.clone(),
            rife_sha256,
            source_frames: seq.frames.len(),
            palette: made.palette,
        };
        let mut json = serde_json::to_vec_pretty(&recipe)
            .map_err(|e| StudioError::Task(format!("JSON: {e}")))?;
        json.push(b'\n');
        self.in_scratch(job, |scratch| {
            self.store_frames(
                job,
                &crate::clip::Stored {
                    frames: &made.frames,
                    formats: &spec.formats,
                    fps,
                    audio: None,
                    name: &name,
                    stem: &stem,
                    recipe: (format!("{stem}.interpolate.json"), json),
                },
                scratch,
                ctx,
            )
        })
    }

    /// The recipe of an in-between clip.
    pub fn interpolate_recipe(&self, id_or_prefix: &str) -> Result<InterpolateRecipe, StudioError> {
        let detail = self.asset(id_or_prefix)?;
        let f = detail
            .files
            .iter()
            .find(|f| f.role == "recipe")
            .ok_or_else(|| StudioError::NotFound(format!("the recipe of {}", detail.summary.id)))?;
        let bytes =
            std::fs::read(self.library.file_path(&f.sha256)).map_err(|source| StudioError::Io {
                action: "cannot read",
                path: self.library.file_path(&f.sha256),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            StudioError::Settings(format!(
                "asset {} has no interpolation recipe: {e}",
                detail.summary.id
            ))
        })
    }
}
