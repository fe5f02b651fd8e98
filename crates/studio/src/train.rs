//! Training runs (`JobSpec::Train`): a LoRA from a creator's own images. The images come from
//! folders, files or the library, each with its caption; they are cropped to buckets, encoded
//! once, and the LoRA is trained on the diffusion lane. A run keeps its folder
//! (`<data>/training/<job id>/`): a log line per step (what `mintframe train status` and the
//! Train screen's loss curve read), checkpoints, and sample images per checkpoint. The LoRA
//! lands in `<data>/loras/<name>.safetensors`, where Generate finds it by name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mintframe_diffusion::train::{Example, LoraPlan, TrainOptions, Trainer, encode_example};
use mintframe_diffusion::weights::Trainable;
use mintframe_diffusion::{LoadOptions, Padding, Request, SchedulerKind};
use mintframe_jobs::JobCtx;
use mintframe_media::Rgba;
use mintframe_types::{
    JobId, JobRecord, JobSpec, TrainPoint, TrainSamples, TrainSpec, TrainStatus,
};

use crate::{App, StudioError};

/// Where trained LoRAs live.
pub fn loras_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("loras")
}

/// A training image before encoding: its pixels and its caption.
struct Item {
    label: String,
    image: Rgba,
    caption: String,
}

fn bad(msg: impl Into<String>) -> StudioError {
    StudioError::Settings(msg.into())
}

const IMAGE_EXTS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "aseprite"];

/// The caption a file has beside it (`hero.png` → `hero.txt`), trimmed.
fn caption_file(path: &Path) -> Option<String> {
    let txt = path.with_extension("txt");
    fs::read_to_string(txt)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The caption of an image: the one set in the spec, else its own (`.txt` or the asset's
/// prompt) through the template, else the template alone; the trigger word in front.
fn caption_for(spec: &TrainSpec, key: &str, own: Option<String>) -> Option<String> {
    let body = match spec.captions.get(key) {
        Some(c) if !c.trim().is_empty() => Some(c.trim().to_owned()),
        _ => match (&spec.caption_template, own) {
            (Some(t), Some(o)) if t.contains("{caption}") => Some(t.replace("{caption}", &o)),
            (_, Some(o)) => Some(o),
            (Some(t), None) if !t.contains("{caption}") => Some(t.clone()),
            (Some(t), None) => Some(t.replace("{caption}", "").trim_matches([',', ' ']).into()),
            (None, None) => None,
        },
    }?;
    Some(match spec.trigger.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => format!("{t}, {body}"),
        _ => body,
    })
}

/// Sides in steps of 64 whose area is at most `res²`, nearest the image's aspect ratio.
pub fn bucket(width: u32, height: u32, res: u32, buckets: bool) -> (u32, u32) {
    let res = (res / 64).max(1) * 64;
    if !buckets || width == 0 || height == 0 {
        return (res, res);
    }
    let aspect = f64::from(width) / f64::from(height);
    let area = f64::from(res) * f64::from(res);
    let mut best = (res, res);
    let mut best_err = f64::MAX;
    let mut w = 64;
    while w <= res * 4 {
        let h = ((area / f64::from(w)) / 64.0).floor() as u32 * 64;
        if h >= 64 && h <= res * 4 {
            let err = ((f64::from(w) / f64::from(h)).ln() - aspect.ln()).abs();
            if err < best_err - 1e-12 {
                best_err = err;
                best = (w, h);
            }
        }
        w += 64;
    }
    best
}

impl App {
    /// Queues a training run with its seed fixed; a bad name, an empty dataset or impossible
    /// settings fail here, not in the queue.
    pub fn submit_train(&self, mut spec: TrainSpec) -> Result<JobRecord, StudioError> {
        crate::paths::plain_name("LoRA name", &spec.name)?;
        if spec.model.is_empty() {
            spec.model = mintframe_diffusion::manager::TINY_ID.to_owned();
        }
        if spec.dataset.is_empty() {
            return Err(bad(
                "no training images: give a folder, image files or library assets",
            ));
        }
        for (i, p) in spec.dataset.iter_mut().enumerate() {
            let path = Path::new(p.as_str());
            if path.exists() && !path.is_absolute() {
                *p = std::path::absolute(path)
                    .map_err(|e| bad(format!("dataset entry {i} {p}: {e}")))?
                    .display()
                    .to_string();
            }
        }
        if let Some(r) = &spec.resume_from {
            let abs = std::path::absolute(r).map_err(|e| bad(format!("{r}: {e}")))?;
            spec.resume_from = Some(abs.display().to_string());
        }
        LoraPlan::new(spec.rank as usize, spec.alpha, spec.targets, 0)?;
        options(&spec, 0).validate()?;
        if spec.repeats == 0 {
            return Err(bad("repeats must be at least 1"));
        }
        spec.seed.get_or_insert_with(crate::generate::fresh_seed);
        self.models()
            .manifest(&spec.model)
            .map(|_| ())
            .or_else(|e| {
                if Path::new(&spec.model).exists() {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
        self.jobs.submit(JobSpec::Train(Box::new(spec)))
    }

    fn run_dir(&self, id: &JobId) -> PathBuf {
        self.settings.data_dir.join("training").join(&id.0)
    }

    /// A training run's log, checkpoints, samples and LoRA.
    pub fn train_status(&self, id_or_prefix: &str) -> Result<TrainStatus, StudioError> {
        let job = self.jobs.get(id_or_prefix)?;
        let JobSpec::Train(spec) = &job.spec else {
            return Err(bad(format!("job {} is not a training run", job.id.0)));
        };
        let dir = self.run_dir(&job.id);
        let points = fs::read_to_string(dir.join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let mut checkpoints: Vec<u32> = list(&dir.join("checkpoints"))
            .iter()
            .filter_map(|p| step_of(p, "step-", ".safetensors"))
            .collect();
        checkpoints.sort_unstable();
        let mut samples = Vec::new();
        for d in list(&dir.join("samples")) {
            if let Some(step) = step_of(&d, "step-", "") {
                let mut files: Vec<String> = list(&d)
                    .iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "png"))
                    .map(|p| p.display().to_string())
                    .collect();
                files.sort();
                samples.push(TrainSamples { step, files });
            }
        }
        samples.sort_by_key(|s| s.step);
        let lora = loras_dir(&self.settings.data_dir).join(format!("{}.safetensors", spec.name));
        Ok(TrainStatus {
            name: spec.name.clone(),
            points,
            checkpoints,
            samples,
            lora: (job.state == mintframe_types::JobState::Succeeded && lora.is_file())
                .then(|| lora.display().to_string()),
            job,
        })
    }

    /// The trained LoRAs' names, sorted.
    pub fn lora_names(&self) -> Result<Vec<String>, StudioError> {
        let mut names: Vec<String> = list(&loras_dir(&self.settings.data_dir))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Sample `index` of the checkpoint at `step`, as a `data:` URL (by numbers, so the window
    /// never names a file).
    pub fn train_sample_data_url(
        &self,
        id_or_prefix: &str,
        step: u32,
        index: u32,
    ) -> Result<String, StudioError> {
        use base64::Engine;
        let job = self.jobs.get(id_or_prefix)?;
        let path = self
            .run_dir(&job.id)
            .join("samples")
            .join(format!("step-{step:06}"))
            .join(format!("{index:02}.png"));
        let bytes = fs::read(&path)
            .map_err(|_| StudioError::NotFound(format!("sample {index} at step {step}")))?;
        Ok(format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// The images and captions of a run, each decoded whole through the guarded decoders.
    fn dataset(&self, spec: &TrainSpec, ctx: &JobCtx) -> Result<Vec<Item>, StudioError> {
        let mut sources: Vec<(String, Option<PathBuf>)> = Vec::new();
        for entry in &spec.dataset {
            let p = Path::new(entry);
            if p.is_dir() {
                let mut files: Vec<PathBuf> = list(p)
                    .into_iter()
                    .filter(|f| {
                        f.extension()
                            .map(|e| e.to_string_lossy().to_ascii_lowercase())
                            .is_some_and(|e| IMAGE_EXTS.contains(&e.as_str()))
                    })
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(bad(format!(
                        "the dataset folder {} has no images (PNG, JPEG, WebP or .aseprite)",
                        p.display()
                    )));
                }
                sources.extend(
                    files
                        .into_iter()
                        .map(|f| (f.display().to_string(), Some(f))),
                );
            } else if p.is_absolute() && p.exists() {
                sources.push((entry.clone(), Some(p.to_owned())));
            } else {
                sources.push((entry.clone(), None));
            }
        }
        let mut items = Vec::with_capacity(sources.len());
        for (i, (key, file)) in sources.iter().enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress("read images", i as u64, sources.len() as u64);
            let src = self.load_source(key).map_err(|e| match file {
                Some(f) => bad(format!(
                    "training image {} cannot be read: {}",
                    f.display(),
                    crate::error_chain(&e)
                )),
                None => e,
            })?;
            let Some(image) = src.frames.into_iter().next() else {
                return Err(bad(format!("training image {key} has no frames")));
            };
            let own = match file {
                Some(f) => caption_file(f),
                None => src
                    .recipe
                    .map(|r| r.prompt)
                    .filter(|p| !p.trim().is_empty()),
            };
            let caption = caption_for(spec, key, own).ok_or_else(|| {
                bad(format!(
                    "training image {key} has no caption: write one beside it ({}), set it in \
                     the Train screen, or give a caption template (--caption-template \
                     \"a sprite in mystyle style\")",
                    file.as_ref()
                        .map(|f| f.with_extension("txt").display().to_string())
                        .unwrap_or_else(|| "<image>.txt".into())
                ))
            })?;
            items.push(Item {
                label: key.clone(),
                image,
                caption,
            });
        }
        Ok(items)
    }

    /// Runs a `Train` job: resumes from the run's own last checkpoint (or the one the spec
    /// names), and checkpoints when cancelled, so nothing trained is lost.
    pub(crate) fn run_train(
        &self,
        job: &JobRecord,
        spec: &TrainSpec,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        let seed = spec
            .seed
            .ok_or_else(|| bad("the training job has no seed: it was not submitted whole"))?;
        let items = self.dataset(spec, ctx)?;
        let dir = self.run_dir(&job.id);
        let mkdir = |p: &Path| {
            fs::create_dir_all(p).map_err(|source| StudioError::Io {
                action: "create",
                path: p.to_owned(),
                source,
            })
        };
        mkdir(&dir.join("checkpoints"))?;
        let fingerprint = fingerprint(spec, &items);

        let resolved = self.models().resolve(&spec.model, ctx)?;
        let dtype =
            crate::generate::candle_dtype(spec.dtype.unwrap_or(mintframe_types::DType::F32));
        let device = mintframe_diffusion::device(spec.device.as_deref().unwrap_or("cpu"))?;
        let plan = LoraPlan::new(spec.rank as usize, spec.alpha, spec.targets, seed)?;
        let trainable = if spec.gradient_checkpointing {
            Trainable::lora_recomputed(plan.clone())
        } else {
            Trainable::lora(plan.clone())
        };
        // The generation cache's model would be a second resident copy.
        self.jobs.cache().clear();
        ctx.progress("load model", 0, 1);
        let model = resolved.load(&LoadOptions {
            dtype,
            device: device.clone(),
            padding: Padding::ZEROS,
            loras: Vec::new(),
            train: Some(Arc::clone(&trainable)),
        })?;

        let factor = model.config.vae.factor() as u32;
        let mut examples: Vec<Example> = Vec::new();
        for (i, it) in items.iter().enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress("encode images", i as u64, items.len() as u64);
            let (w, h) = bucket(
                it.image.width,
                it.image.height,
                spec.resolution,
                spec.buckets,
            );
            let (w, h) = (w.max(factor), h.max(factor));
            let img = mintframe_media::resize_cover(&it.image, w, h);
            let t = to_tensor(&img, &device)?;
            let ex = encode_example(&model, &t, &it.caption, spec.flip)?;
            tracing::debug!(image = %it.label, w, h, caption = %it.caption, "training example");
            for _ in 0..spec.repeats.max(1) {
                examples.push(ex.clone());
            }
        }
        let opts = options(spec, seed);
        let mut trainer = Trainer::new(&model, &trainable, opts, examples)?;
        tracing::info!(params = trainer.param_count(), "training {}", spec.name);

        let ckpt_dir = dir.join("checkpoints");
        let resume = match &spec.resume_from {
            Some(p) => Some(PathBuf::from(p)),
            None => latest_checkpoint(&ckpt_dir),
        };
        if let Some(p) = resume {
            trainer.restore(&p, &fingerprint)?;
            tracing::info!(step = trainer.step, checkpoint = %p.display(), "training resumed");
        }
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log.jsonl"))
            .map_err(|source| StudioError::Io {
                action: "open",
                path: dir.join("log.jsonl"),
                source,
            })?;
        let started = Instant::now();
        let total = u64::from(spec.steps);
        while trainer.step < spec.steps {
            if ctx.check().is_err() {
                save_checkpoint(&trainer, &ckpt_dir, &fingerprint)?;
                return Err(StudioError::Cancelled);
            }
            let s = trainer.train_step()?;
            let point = TrainPoint {
                step: s.step,
                loss: s.loss,
                lr: s.lr,
                secs: started.elapsed().as_secs_f64(),
            };
            let line = serde_json::to_string(&point).unwrap_or_default();
            writeln!(log, "{line}").map_err(|source| StudioError::Io {
                action: "write",
                path: dir.join("log.jsonl"),
                source,
            })?;
            ctx.progress("train", u64::from(s.step), total);
            let at_checkpoint = spec.checkpoint_every > 0 && s.step % spec.checkpoint_every == 0;
            if at_checkpoint || s.step == spec.steps {
                save_checkpoint(&trainer, &ckpt_dir, &fingerprint)?;
                trainer.save_lora(
                    &ckpt_dir.join(format!("{}-step-{:06}.safetensors", spec.name, s.step)),
                    &plan,
                    &spec.name,
                )?;
                self.samples(&model, spec, s.step, &dir, seed, ctx)?;
            }
        }
        let out = loras_dir(&self.settings.data_dir).join(format!("{}.safetensors", spec.name));
        trainer.save_lora(&out, &plan, &spec.name)?;
        ctx.progress("train", total, total);
        tracing::info!(lora = %out.display(), "LoRA written");
        Ok(())
    }

    /// Sample images at a checkpoint, drawn with the adapters as they are now.
    fn samples(
        &self,
        model: &mintframe_diffusion::Model,
        spec: &TrainSpec,
        step: u32,
        dir: &Path,
        seed: u64,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        if spec.sample_prompts.is_empty() {
            return Ok(());
        }
        let out = dir.join("samples").join(format!("step-{step:06}"));
        fs::create_dir_all(&out).map_err(|source| StudioError::Io {
            action: "create",
            path: out.clone(),
            source,
        })?;
        let side = (spec.resolution / 64).max(1) * 64;
        for (i, prompt) in spec.sample_prompts.iter().enumerate() {
            ctx.progress("samples", i as u64, spec.sample_prompts.len() as u64);
            let req = Request {
                prompt: prompt.clone(),
                seed: seed.wrapping_add(i as u64),
                steps: spec.sample_steps.max(1) as usize,
                width: side,
                height: side,
                scheduler: SchedulerKind::EulerA,
                ..Request::default()
            };
            // Drawing needs no gradients: without a graph, the adapters are plain values.
            let images = mintframe_diffusion::nn::without_graph(|| {
                mintframe_diffusion::generate(model, &req, ctx, None)
            })?;
            for g in images {
                let png = mintframe_diffusion::pngio::encode_png(
                    &g.image,
                    &[("parameters", prompt.clone())],
                )?;
                let path = out.join(format!("{i:02}.png"));
                fs::write(&path, png).map_err(|source| StudioError::Io {
                    action: "write",
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }
}

fn options(spec: &TrainSpec, seed: u64) -> TrainOptions {
    TrainOptions {
        steps: spec.steps,
        batch_size: spec.batch_size as usize,
        grad_accum: spec.grad_accum as usize,
        learning_rate: spec.learning_rate,
        schedule: spec.schedule,
        warmup_steps: spec.warmup_steps,
        noise_offset: f64::from(spec.noise_offset),
        min_snr_gamma: spec.min_snr_gamma.map(f64::from),
        ema_decay: spec.ema_decay.map(f64::from),
        seed,
        ..TrainOptions::default()
    }
}

/// What makes two runs the same run: every setting that changes the training (not the step
/// count, the checkpoint interval or the samples) and every image's pixels and caption.
fn fingerprint(spec: &TrainSpec, items: &[Item]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let key = TrainSpec {
        steps: 0,
        // Where gradients are computed, not what they are.
        gradient_checkpointing: false,
        checkpoint_every: 0,
        sample_prompts: Vec::new(),
        sample_steps: 0,
        resume_from: None,
        name: String::new(),
        ..spec.clone()
    };
    h.update(serde_json::to_string(&key).unwrap_or_default());
    for it in items {
        h.update(it.image.width.to_le_bytes());
        h.update(it.image.height.to_le_bytes());
        h.update(&it.image.data);
        h.update(it.caption.as_bytes());
    }
    hex::encode(h.finalize())
}

fn save_checkpoint(trainer: &Trainer, dir: &Path, run: &str) -> Result<(), StudioError> {
    let path = dir.join(format!("step-{:06}.safetensors", trainer.step));
    trainer.save_checkpoint(&path, run)?;
    Ok(())
}

fn latest_checkpoint(dir: &Path) -> Option<PathBuf> {
    list(dir)
        .into_iter()
        .filter(|p| step_of(p, "step-", ".safetensors").is_some())
        .max_by_key(|p| step_of(p, "step-", ".safetensors"))
}

fn list(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn step_of(p: &Path, prefix: &str, suffix: &str) -> Option<u32> {
    let name = p.file_name()?.to_str()?;
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// RGBA over white (transparent sprites train on the background they are shown on) as a
/// `(3, h, w)` tensor in [-1, 1].
fn to_tensor(
    img: &Rgba,
    device: &mintframe_diffusion::Device,
) -> Result<mintframe_diffusion::Tensor, StudioError> {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut planes = vec![0f32; 3 * w * h];
    for (i, p) in img.data.chunks_exact(4).enumerate() {
        let a = f32::from(p[3]) / 255.0;
        for c in 0..3 {
            let v = (f32::from(p[c]) * a + 255.0 * (1.0 - a)) / 255.0;
            planes[c * w * h + i] = v * 2.0 - 1.0;
        }
    }
    Ok(
        mintframe_diffusion::Tensor::from_vec(planes, (3, h, w), device)
            .map_err(mintframe_diffusion::Error::from)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_the_aspect_ratio_within_the_area() {
        assert_eq!(bucket(100, 100, 512, true), (512, 512));
        let (w, h) = bucket(1920, 1080, 512, true);
        assert!(w * h <= 512 * 512 && w % 64 == 0 && h % 64 == 0);
        assert!(w > h);
        assert_eq!(bucket(1920, 1080, 512, false), (512, 512));
        let (w, h) = bucket(32, 96, 256, true);
        assert!(h > w && w * h <= 256 * 256, "{w}×{h}");
    }

    #[test]
    fn captions_come_from_the_spec_then_the_file_then_the_template() {
        let mut spec = TrainSpec {
            trigger: Some("mfstyle".into()),
            caption_template: Some("{caption}, pixel art".into()),
            ..TrainSpec::default()
        };
        assert_eq!(
            caption_for(&spec, "a", Some("a red potion".into())).as_deref(),
            Some("mfstyle, a red potion, pixel art")
        );
        spec.captions.insert("a".into(), "a sword".into());
        assert_eq!(
            caption_for(&spec, "a", Some("x".into())).as_deref(),
            Some("mfstyle, a sword")
        );
        spec.caption_template = None;
        spec.trigger = None;
        assert_eq!(caption_for(&spec, "b", None), None);
        spec.caption_template = Some("a sprite".into());
        assert_eq!(caption_for(&spec, "b", None).as_deref(), Some("a sprite"));
    }
}
