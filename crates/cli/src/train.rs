//! `mintframe train lora` (a LoRA from a folder of images, with captions) and
//! `mintframe train status` (a run's loss, checkpoints, samples and LoRA).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use mintframe_studio::{App, Scope, Settings, Worker};
use mintframe_types::{
    DType, JobEvent, JobKind, JobState, LoraTargets, LrSchedule, TrainSpec, TrainStatus,
};

#[derive(Debug, Subcommand)]
pub(crate) enum TrainCmd {
    /// Train a LoRA on images: folders (a `.txt` caption beside each image), image files or
    /// library assets. It lands in the data folder's loras/, and `generate --lora NAME` uses it.
    Lora(Box<LoraArgs>),
    /// A training run: its loss by step, checkpoints, sample images and LoRA (the latest run
    /// if no id is given).
    Status {
        /// A job id or a unique prefix.
        id: Option<String>,
        #[command(flatten)]
        out: crate::Output,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct LoraArgs {
    /// Folders, image files or library asset ids.
    #[arg(required = true)]
    dataset: Vec<String>,
    /// The LoRA's name (its file is NAME.safetensors).
    #[arg(long)]
    name: String,
    /// The base model: an id from `mintframe models list` or a path.
    #[arg(long, short = 'm', default_value = "tiny-sd")]
    model: String,
    /// A word put in front of every caption; use it in prompts to call up the style.
    #[arg(long)]
    trigger: Option<String>,
    /// The caption of images with none; `{caption}` in it stands for an image's own caption.
    #[arg(long)]
    caption_template: Option<String>,
    /// Training side in pixels.
    #[arg(long, default_value_t = 512)]
    resolution: u32,
    /// Crop every image square instead of keeping its aspect ratio.
    #[arg(long)]
    no_buckets: bool,
    #[arg(long, default_value_t = 1)]
    repeats: u32,
    /// Also train on mirror images.
    #[arg(long)]
    flip: bool,
    #[arg(long, default_value_t = 8)]
    rank: u32,
    /// Scales the LoRA by alpha/rank (default: half the rank).
    #[arg(long)]
    alpha: Option<f32>,
    #[arg(long, value_enum, default_value_t = LoraTargets::Transformer)]
    targets: LoraTargets,
    #[arg(long, default_value_t = 500)]
    steps: u32,
    #[arg(long, default_value_t = 1)]
    batch_size: u32,
    /// Forward passes per optimiser step.
    #[arg(long, default_value_t = 1)]
    grad_accum: u32,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, value_enum, default_value_t = LrSchedule::Constant)]
    schedule: LrSchedule,
    #[arg(long, default_value_t = 0)]
    warmup: u32,
    #[arg(long, default_value_t = 0.0)]
    noise_offset: f32,
    /// Min-SNR-γ loss weighting; 0 turns it off.
    #[arg(long, default_value_t = 5.0)]
    min_snr_gamma: f32,
    /// Keep and save an EMA of the LoRA with this decay (e.g. 0.999).
    #[arg(long)]
    ema: Option<f32>,
    #[arg(long)]
    seed: Option<u64>,
    /// A checkpoint and sample images every N steps (0: at the end only).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: u32,
    /// A prompt to draw at each checkpoint (repeatable).
    #[arg(long = "sample")]
    samples: Vec<String>,
    #[arg(long, default_value_t = 20)]
    sample_steps: u32,
    /// Recompute activations in the backward pass: far less memory, about a third more time
    /// (SD 1.5 at 512² needs it on a 24 GiB machine).
    #[arg(long)]
    gradient_checkpointing: bool,
    /// Continue from a checkpoint of this same run (after a crash, on another job).
    #[arg(long)]
    resume_from: Option<String>,
    #[arg(long, value_enum)]
    dtype: Option<DType>,
    #[arg(long)]
    device: Option<String>,
    #[command(flatten)]
    output: crate::Output,
    #[command(flatten)]
    detach: crate::Detach,
}

impl LoraArgs {
    fn spec(&self) -> Result<TrainSpec> {
        Ok(TrainSpec {
            name: self.name.clone(),
            model: mintframe_studio::paths::model_ref(&self.model)?,
            dataset: self.dataset.clone(),
            caption_template: self.caption_template.clone(),
            trigger: self.trigger.clone(),
            resolution: self.resolution,
            buckets: !self.no_buckets,
            repeats: self.repeats,
            flip: self.flip,
            rank: self.rank,
            alpha: self.alpha.unwrap_or((self.rank as f32 / 2.0).max(1.0)),
            targets: self.targets,
            steps: self.steps,
            batch_size: self.batch_size,
            grad_accum: self.grad_accum,
            learning_rate: self.lr,
            schedule: self.schedule,
            warmup_steps: self.warmup,
            noise_offset: self.noise_offset,
            min_snr_gamma: (self.min_snr_gamma > 0.0).then_some(self.min_snr_gamma),
            ema_decay: self.ema,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            sample_prompts: self.samples.clone(),
            sample_steps: self.sample_steps,
            dtype: self.dtype,
            device: self.device.clone(),
            resume_from: self.resume_from.clone(),
            gradient_checkpointing: self.gradient_checkpointing,
            ..TrainSpec::default()
        })
    }
}

/// `loss 0.1234 · 2.3 step/s` from a run's log, for the progress bar.
fn loss_line(status: &TrainStatus) -> Option<String> {
    let last = status.points.last()?;
    let first = status.points.iter().find(|p| p.secs > 0.0 || p.step == 1)?;
    let rate = if last.secs > first.secs {
        f64::from(last.step - first.step) / (last.secs - first.secs)
    } else {
        0.0
    };
    Some(format!("loss {:.4} · {rate:.2} step/s", last.loss))
}

pub(crate) fn train(settings: &Settings, cmd: TrainCmd) -> Result<()> {
    match cmd {
        TrainCmd::Lora(a) => lora(settings, &a),
        TrainCmd::Status { id, out } => {
            let app = App::open(settings.clone())?;
            let id = match id {
                Some(id) => id,
                None => app
                    .jobs()
                    .list(false)
                    .ok()
                    .into_iter()
                    .flatten()
                    .chain(app.jobs().list(true).ok().into_iter().flatten())
                    .filter(|j| j.spec.kind() == JobKind::Train)
                    .max_by_key(|j| j.created_at_ms)
                    .map(|j| j.id.0)
                    .context("no training run yet: start one with `mintframe train lora`")?,
            };
            let status = app.train_status(&id)?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(());
            }
            print_status(&status);
            Ok(())
        }
    }
}

fn print_status(s: &TrainStatus) {
    let total = match &s.job.spec {
        mintframe_types::JobSpec::Train(t) => t.steps,
        _ => 0,
    };
    let step = s.points.last().map(|p| p.step).unwrap_or(0);
    println!(
        "{} ({}): {}, step {step}/{total}",
        s.name, s.job.id, s.job.state
    );
    if let Some(e) = &s.job.error {
        println!("  error: {e}");
    }
    if let Some(l) = loss_line(s) {
        println!("  {l}");
    }
    // The curve as a few numbers: the mean loss of each tenth of the steps so far.
    let n = s.points.len();
    if n >= 10 {
        let parts: Vec<String> = (0..10)
            .map(|i| {
                let chunk = &s.points[i * n / 10..(i + 1) * n / 10];
                let mean = chunk.iter().map(|p| p.loss).sum::<f64>() / chunk.len().max(1) as f64;
                format!("{mean:.4}")
            })
            .collect();
        println!("  loss by tenths: {}", parts.join(" "));
    }
    if !s.checkpoints.is_empty() {
        let steps: Vec<String> = s.checkpoints.iter().map(u32::to_string).collect();
        println!("  checkpoints at steps {}", steps.join(", "));
    }
    for smp in &s.samples {
        println!("  samples at step {}: {}", smp.step, smp.files.join(" "));
    }
    match &s.lora {
        Some(p) => println!("  LoRA: {p}"),
        None if s.job.state == JobState::Succeeded => println!("  LoRA: (removed)"),
        None => {}
    }
}

fn lora(settings: &Settings, a: &LoraArgs) -> Result<()> {
    let spec = a.spec()?;
    let app = std::sync::Arc::new(App::open(settings.clone())?);
    let worker = if a.detach.detach {
        Worker::queue_only(std::sync::Arc::clone(&app))?
    } else {
        Worker::start(std::sync::Arc::clone(&app), Scope::Only(Default::default()))?
    };
    let rx = worker.subscribe();
    let job = worker.submit_train(spec)?;
    if a.detach.detach {
        println!("{}", job.id);
        return Ok(());
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<44} [{bar:30}] {pos}/{len} {elapsed}")
            .context("progress template")?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let record = worker.follow(&job.id, &rx, &mut |ev: &JobEvent| {
        if let Some(p) = &ev.progress {
            let eta = ev
                .eta_secs
                .map(|s| format!(" · {s} s left"))
                .unwrap_or_default();
            let loss = if p.stage == "train" {
                app.train_status(&job.id.0)
                    .ok()
                    .and_then(|s| loss_line(&s))
                    .map(|l| format!(" · {l}"))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            bar.set_message(format!("{}{loss}{eta}", p.stage));
            bar.set_length(p.total);
            bar.set_position(p.step);
        }
    })?;
    bar.finish_and_clear();
    drop(worker);
    let status = app.train_status(&record.id.0)?;
    if a.output.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_status(&status);
    }
    if record.state != JobState::Succeeded {
        bail!(
            "training job {} {}: {}",
            record.id,
            record.state,
            record.error.as_deref().unwrap_or("no reason recorded")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: TrainCmd,
    }

    #[test]
    fn train_lora_parses_its_settings_and_refuses_a_bad_schedule() {
        let t = T::try_parse_from([
            "t",
            "lora",
            "imgs/",
            "--name",
            "style",
            "--rank",
            "4",
            "--targets",
            "locon",
            "--schedule",
            "cosine",
            "--sample",
            "a red potion",
        ])
        .expect("parse");
        let TrainCmd::Lora(a) = t.cmd else {
            panic!("not lora")
        };
        let spec = a.spec().expect("spec");
        assert_eq!(spec.rank, 4);
        assert_eq!(spec.alpha, 2.0);
        assert_eq!(spec.targets, LoraTargets::Locon);
        assert_eq!(spec.schedule, LrSchedule::Cosine);
        assert_eq!(spec.sample_prompts, vec!["a red potion".to_owned()]);
        let e = T::try_parse_from(["t", "lora", "x", "--name", "s", "--schedule", "wavy"])
            .expect_err("bad schedule")
            .to_string();
        assert!(e.contains("constant") && e.contains("cosine"), "{e}");
        assert!(T::try_parse_from(["t", "lora", "--name", "s"]).is_err());
    }
}
