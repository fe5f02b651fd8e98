//! Training on candle: LoRA (and LoCon) adapters on a frozen UNet, learnt by backpropagation
//! with AdamW. The denoising objective is diffusers' and kohya's: noise a cached latent to a
//! random timestep, predict the noise (or v), mean squared error, optionally weighted by
//! min-SNR; noise offset, gradient accumulation, warm-up and decay of the learning rate, EMA.
//!
//! Everything random is drawn from seeds derived from the run's seed and the step, so a run
//! resumed from a checkpoint continues exactly as the uninterrupted run would have.

mod adamw;
pub mod files;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor, Var};
use mintframe_types::{LoraTargets, LrSchedule};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

pub use adamw::{AdamW, AdamWConfig};

use crate::config::SchedulerConfig;
use crate::error::{Error, Result};
use crate::model::{Arch, Model};
use crate::scheduler::alphas_cumprod;
use crate::unet::UNet;
use crate::weights::{Trainable, normal_vec};

/// Which layers get adapters, how large, and what they start from.
#[derive(Debug, Clone)]
pub struct LoraPlan {
    pub rank: usize,
    pub alpha: f32,
    pub targets: LoraTargets,
    /// Seeds the adapters' initialisation.
    pub seed: u64,
    /// Values to start from instead (a checkpoint), by kohya tensor name.
    pub init: BTreeMap<String, Tensor>,
}

impl LoraPlan {
    pub fn new(rank: usize, alpha: f32, targets: LoraTargets, seed: u64) -> Result<LoraPlan> {
        if rank == 0 {
            return Err(Error::InvalidRequest(
                "a LoRA's rank must be at least 1 (4 to 32 is usual; higher learns more detail \
                 and makes a larger file)"
                    .into(),
            ));
        }
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(Error::InvalidRequest(format!(
                "a LoRA's alpha must be a positive number, not {alpha} (the rank, or half of it, \
                 is usual)"
            )));
        }
        Ok(LoraPlan {
            rank,
            alpha,
            targets,
            seed,
            init: BTreeMap::new(),
        })
    }

    /// Whether the layer (a diffusers path) gets an adapter; `conv` for convolutions.
    pub fn targets_layer(&self, layer: &str, conv: bool) -> bool {
        let in_transformer = layer.contains(".attentions.");
        let attention =
            in_transformer && (layer.contains(".attn1.") || layer.contains(".attn2.")) && !conv;
        match self.targets {
            LoraTargets::Attention => attention,
            LoraTargets::Transformer => in_transformer,
            LoraTargets::Locon => {
                in_transformer
                    || (conv
                        && (layer.contains(".resnets.")
                            || layer.ends_with("downsamplers.0.conv")
                            || layer.ends_with("upsamplers.0.conv")))
            }
        }
    }
}

/// How a run learns.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Optimiser steps.
    pub steps: u32,
    /// Examples in one forward pass (all of one size: a bucket).
    pub batch_size: usize,
    /// Forward passes whose gradients add up to one optimiser step.
    pub grad_accum: usize,
    pub learning_rate: f64,
    pub schedule: LrSchedule,
    pub warmup_steps: u32,
    pub adamw: AdamWConfig,
    /// Adds `offset · N(0, 1)` per sample and channel to the noise, so the model learns to
    /// change an image's overall brightness (dark and light sprites on flat backgrounds).
    pub noise_offset: f64,
    /// Min-SNR-γ loss weighting (5 is the paper's value); `None` weighs every timestep alike.
    pub min_snr_gamma: Option<f64>,
    /// Keeps an exponential moving average of the adapters with this decay and saves it.
    pub ema_decay: Option<f64>,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            steps: 500,
            batch_size: 1,
            grad_accum: 1,
            learning_rate: 1e-4,
            schedule: LrSchedule::Constant,
            warmup_steps: 0,
            adamw: AdamWConfig::default(),
            noise_offset: 0.0,
            min_snr_gamma: None,
            ema_decay: None,
            seed: 0,
        }
    }
}

impl TrainOptions {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidRequest(m));
        if self.steps == 0 {
            return bad("a training run needs at least 1 step".into());
        }
        if self.batch_size == 0 || self.grad_accum == 0 {
            return bad("batch size and gradient accumulation must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning rate {} must be a positive number (1e-4 is usual for a LoRA)",
                self.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay.unwrap_or(0.0)) {
            return bad("the EMA decay must be in [0, 1), e.g. 0.999".into());
        }
        Ok(())
    }

    /// The learning rate at optimiser step `step` (from 0): linear warm-up, then the schedule.
    pub fn lr_at(&self, step: u32) -> f64 {
        let base = self.learning_rate;
        if step < self.warmup_steps {
            return base * f64::from(step + 1) / f64::from(self.warmup_steps);
        }
        let span = f64::from(self.steps.saturating_sub(self.warmup_steps).max(1));
        let done = f64::from(step - self.warmup_steps) / span;
        match self.schedule {
            LrSchedule::Constant => base,
            LrSchedule::Linear => base * (1.0 - done),
            LrSchedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * done).cos()),
        }
    }
}

/// One training image, encoded once: the VAE's latent (and its mirror image's, when flips are
/// on) and its caption's text context. Latents of one batch must share a size.
#[derive(Debug, Clone)]
pub struct Example {
    /// `(c, h, w)`, already scaled by the VAE's scaling factor.
    pub latents: Tensor,
    pub flipped: Option<Tensor>,
    /// `(77, d)`.
    pub context: Tensor,
    /// SDXL's pooled text embedding `(d,)`.
    pub pooled: Option<Tensor>,
    /// The image's size in pixels (SDXL's size conditioning).
    pub width: u32,
    pub height: u32,
}

/// Encodes an image (`(3, h, w)` in [-1, 1]) and its caption into an [`Example`].
pub fn encode_example(model: &Model, image: &Tensor, caption: &str, flip: bool) -> Result<Example> {
    let (_, h, w) = image.dims3()?;
    let img = image.to_dtype(model.dtype)?.to_device(&model.device)?;
    let latents = model
        .vae
        .encode(&img.unsqueeze(0)?, None)?
        .squeeze(0)?
        .detach();
    let flipped = if flip {
        let idx: Vec<u32> = (0..w as u32).rev().collect();
        let idx = Tensor::from_vec(idx, w, &model.device)?;
        let mirrored = img.index_select(&idx, 2)?;
        Some(
            model
                .vae
                .encode(&mirrored.unsqueeze(0)?, None)?
                .squeeze(0)?
                .detach(),
        )
    } else {
        None
    };
    let cond = model.encode_prompt(caption, 1)?;
    Ok(Example {
        latents,
        flipped,
        context: cond.context.squeeze(0)?.detach(),
        pooled: match cond.pooled {
            Some(p) => Some(p.squeeze(0)?.detach()),
            None => None,
        },
        width: w as u32,
        height: h as u32,
    })
}

/// What one optimiser step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// The step just taken, from 1.
    pub step: u32,
    pub loss: f64,
    pub lr: f64,
}

/// A run in progress: the model (with adapters from a [`Trainable`]), its examples, the
/// optimiser, and where in the data and the step count it is.
pub struct Trainer<'m> {
    unet: &'m UNet,
    trainable: Arc<Trainable>,
    arch: Arch,
    dtype: DType,
    device: Device,
    names: Vec<String>,
    params: Vec<Var>,
    opt: AdamW,
    ema: Option<Vec<Tensor>>,
    opts: TrainOptions,
    examples: Vec<Example>,
    /// Batches of one epoch, in the order of epoch `epoch_cached`.
    epoch_cached: Option<(u64, Vec<Vec<usize>>)>,
    alphas_cumprod: Vec<f64>,
    v_prediction: bool,
    /// Optimiser steps taken.
    pub step: u32,
}

impl std::fmt::Debug for Trainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("step", &self.step)
            .field("params", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl<'m> Trainer<'m> {
    /// `trainable` is what the model was loaded with (`LoadOptions::train`).
    pub fn new(
        model: &'m Model,
        trainable: &Arc<Trainable>,
        opts: TrainOptions,
        examples: Vec<Example>,
    ) -> Result<Trainer<'m>> {
        Trainer::for_unet(
            &model.unet,
            model.config.arch,
            &model.config.scheduler,
            trainable,
            opts,
            examples,
        )
    }

    /// A run over a UNet alone (its examples already encoded).
    pub fn for_unet(
        unet: &'m UNet,
        arch: Arch,
        sched: &SchedulerConfig,
        trainable: &Arc<Trainable>,
        opts: TrainOptions,
        examples: Vec<Example>,
    ) -> Result<Trainer<'m>> {
        opts.validate()?;
        if examples.is_empty() {
            return Err(Error::InvalidRequest(
                "the dataset has no images to train on".into(),
            ));
        }
        let vars = trainable.vars();
        if vars.is_empty() {
            return Err(Error::InvalidRequest(
                "this model has no layer the chosen LoRA targets adapt".into(),
            ));
        }
        let (names, params): (Vec<String>, Vec<Var>) = vars.into_iter().unzip();
        let opt = AdamW::new(&params, opts.adamw)?;
        let ema = match opts.ema_decay {
            Some(_) => Some(
                params
                    .iter()
                    .map(|p| p.as_tensor().copy().map(|t| t.detach()))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            None => None,
        };
        // The text context is in the model's dtype and on its device.
        let first = examples[0].context.clone();
        Ok(Trainer {
            unet,
            trainable: Arc::clone(trainable),
            arch,
            dtype: first.dtype(),
            device: first.device().clone(),
            names,
            params,
            opt,
            ema,
            alphas_cumprod: alphas_cumprod(sched)?,
            v_prediction: sched.prediction_type == "v_prediction",
            opts,
            examples,
            epoch_cached: None,
            step: 0,
        })
    }

    pub fn options(&self) -> &TrainOptions {
        &self.opts
    }

    /// Trainable parameters, and how many numbers they hold.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.as_tensor().elem_count()).sum()
    }

    /// The batches of `epoch`: examples grouped by size, shuffled within each group, cut into
    /// batches, and the batches shuffled, all from the run's seed.
    fn epoch(&mut self, epoch: u64) -> Result<Vec<Vec<usize>>> {
        if let Some((e, b)) = &self.epoch_cached
            && *e == epoch
        {
            return Ok(b.clone());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.opts.seed, 0xe90c, epoch));
        let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        for (i, ex) in self.examples.iter().enumerate() {
            groups
                .entry(ex.latents.dims().to_vec())
                .or_default()
                .push(i);
        }
        let mut batches = Vec::new();
        for (_, mut idx) in groups {
            shuffle(&mut idx, &mut rng);
            batches.extend(idx.chunks(self.opts.batch_size).map(<[usize]>::to_vec));
        }
        shuffle(&mut batches, &mut rng);
        self.epoch_cached = Some((epoch, batches.clone()));
        Ok(batches)
    }

    /// The `m`-th forward pass of the run (its batch, through epochs in order).
    fn batch(&mut self, m: u64) -> Result<Vec<usize>> {
        let per_epoch = {
            let mut sizes: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
            for ex in &self.examples {
                *sizes.entry(ex.latents.dims().to_vec()).or_default() += 1;
            }
            sizes
                .values()
                .map(|n| n.div_ceil(self.opts.batch_size))
                .sum::<usize>() as u64
        };
        let batches = self.epoch(m / per_epoch)?;
        batches
            .get((m % per_epoch) as usize)
            .cloned()
            .ok_or_else(|| Error::InvalidRequest("training batches out of step".into()))
    }

    /// The loss of forward pass `m` (a scalar tensor that backpropagates into the adapters).
    pub fn loss(&mut self, m: u64) -> Result<Tensor> {
        let idx = self.batch(m)?;
        let dev = self.device.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.opts.seed, 0x7153, m));
        let n_t = self.alphas_cumprod.len() as u32;
        let mut lat = Vec::with_capacity(idx.len());
        let mut ctx = Vec::with_capacity(idx.len());
        let mut pooled = Vec::new();
        let mut ts = Vec::with_capacity(idx.len());
        for &i in &idx {
            let ex = &self.examples[i];
            let use_flip = ex.flipped.is_some() && rng.next_u32() & 1 == 1;
            lat.push(match (&ex.flipped, use_flip) {
                (Some(f), true) => f.clone(),
                _ => ex.latents.clone(),
            });
            ctx.push(ex.context.clone());
            if let Some(p) = &ex.pooled {
                pooled.push(p.clone());
            }
            ts.push(rng.next_u32() % n_t);
        }
        let x0 = Tensor::stack(&lat, 0)?.to_dtype(DType::F32)?;
        let (b, c, h, w) = x0.dims4()?;
        let mut noise = Tensor::from_vec(
            normal_vec(mix(self.opts.seed, 0x4015e, m), b * c * h * w),
            (b, c, h, w),
            &dev,
        )?;
        if self.opts.noise_offset > 0.0 {
            let off = Tensor::from_vec(
                normal_vec(mix(self.opts.seed, 0x0ff5, m), b * c),
                (b, c, 1, 1),
                &dev,
            )?;
            noise = noise.broadcast_add(&(off * self.opts.noise_offset)?)?;
        }
        let ab: Vec<f64> = ts
            .iter()
            .map(|&t| self.alphas_cumprod[t as usize])
            .collect();
        let col = |v: Vec<f32>| Tensor::from_vec(v, (b, 1, 1, 1), &dev);
        let sa = col(ab.iter().map(|a| a.sqrt() as f32).collect())?;
        let s1 = col(ab.iter().map(|a| (1.0 - a).sqrt() as f32).collect())?;
        let noisy = (x0.broadcast_mul(&sa)? + noise.broadcast_mul(&s1)?)?;
        let target = if self.v_prediction {
            (noise.broadcast_mul(&sa)? - x0.broadcast_mul(&s1)?)?
        } else {
            noise
        };
        let t = Tensor::from_vec(ts.iter().map(|&t| t as f32).collect(), b, &dev)?;
        let context = Tensor::stack(&ctx, 0)?.to_dtype(self.dtype)?;
        let added = if self.arch == Arch::Sdxl {
            let p = Tensor::stack(&pooled, 0)?;
            let first = &self.examples[idx[0]];
            let ids: Vec<f32> = (0..b)
                .flat_map(|_| {
                    let (hh, ww) = (first.height as f32, first.width as f32);
                    [hh, ww, 0.0, 0.0, hh, ww]
                })
                .collect();
            Some(crate::unet::AddedCond {
                text_embeds: p,
                time_ids: Tensor::from_vec(ids, (b, 6), &dev)?,
            })
        } else {
            None
        };
        let pred = self
            .unet
            .forward_timesteps(&noisy.to_dtype(self.dtype)?, &t, &context, added.as_ref())?
            .to_dtype(DType::F32)?;
        let per_sample = (pred - target)?.sqr()?.flatten_from(1)?.mean(D::Minus1)?;
        let weights: Vec<f32> = ab
            .iter()
            .map(|&a| match self.opts.min_snr_gamma {
                None => 1.0,
                Some(g) => {
                    let snr = a / (1.0 - a);
                    let w = snr.min(g) / snr;
                    // v-prediction's loss is (snr + 1)/snr times epsilon's.
                    (if self.v_prediction {
                        snr.min(g) / (snr + 1.0)
                    } else {
                        w
                    }) as f32
                }
            })
            .collect();
        let weights = Tensor::from_vec(weights, b, &dev)?;
        Ok((per_sample * weights)?.mean_all()?)
    }

    /// One optimiser step: `grad_accum` forward and backward passes, gradients added up, AdamW.
    pub fn train_step(&mut self) -> Result<StepStats> {
        let accum = self.opts.grad_accum as u64;
        let mut sum: Vec<Option<Tensor>> = vec![None; self.params.len()];
        let mut loss_sum = 0.0;
        for k in 0..accum {
            let m = u64::from(self.step) * accum + k;
            let loss = (self.loss(m)? / accum as f64)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            let grads = loss.backward()?;
            // Adapters inside recomputed blocks got their gradients in those blocks' backward.
            let mut recomputed = self.trainable.take_recomputed();
            for ((acc, p), name) in sum.iter_mut().zip(&self.params).zip(&self.names) {
                for g in [grads.get(p.as_tensor()).cloned(), recomputed.remove(name)]
                    .into_iter()
                    .flatten()
                {
                    *acc = Some(match acc.take() {
                        Some(a) => (a + g)?,
                        None => g,
                    });
                }
            }
        }
        let lr = self.opts.lr_at(self.step);
        self.opt.step(&self.params, &sum, lr)?;
        if let (Some(ema), Some(d)) = (&mut self.ema, self.opts.ema_decay) {
            for (e, p) in ema.iter_mut().zip(&self.params) {
                *e = ((&*e * d)? + (p.as_tensor().detach() * (1.0 - d))?)?;
            }
        }
        self.step += 1;
        if !loss_sum.is_finite() {
            return Err(Error::InvalidRequest(format!(
                "the loss became {loss_sum} at step {}: lower the learning rate",
                self.step
            )));
        }
        Ok(StepStats {
            step: self.step,
            loss: loss_sum,
            lr,
        })
    }

    /// The adapters as a kohya LoRA (the EMA copy when the run keeps one): each layer's
    /// `lora_down.weight`, `lora_up.weight` and `alpha`.
    pub fn lora_tensors(&self, plan: &LoraPlan) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (i, (name, p)) in self.names.iter().zip(&self.params).enumerate() {
            let t = match &self.ema {
                Some(e) => e[i].clone(),
                None => p.as_tensor().detach(),
            };
            out.insert(name.clone(), t);
            if let Some(layer) = name.strip_suffix(".lora_down.weight") {
                out.insert(
                    format!("{layer}.alpha"),
                    Tensor::new(plan.alpha, &self.device)?,
                );
            }
        }
        Ok(out)
    }

    /// Writes the LoRA to `path` with kohya's metadata.
    pub fn save_lora(&self, path: &Path, plan: &LoraPlan, name: &str) -> Result<()> {
        let base = match self.arch {
            Arch::Sd1 => "sd_v1",
            Arch::Sd2 => "sd_v2",
            Arch::Sdxl => "sdxl_base_v1-0",
        };
        let module = match plan.targets {
            LoraTargets::Locon => "lycoris.kohya",
            _ => "networks.lora",
        };
        let meta = HashMap::from([
            ("ss_network_module".to_owned(), module.to_owned()),
            ("ss_network_dim".to_owned(), plan.rank.to_string()),
            ("ss_network_alpha".to_owned(), plan.alpha.to_string()),
            ("ss_base_model_version".to_owned(), base.to_owned()),
            ("ss_output_name".to_owned(), name.to_owned()),
            ("ss_steps".to_owned(), self.step.to_string()),
            (
                "ss_learning_rate".to_owned(),
                self.opts.learning_rate.to_string(),
            ),
            ("ss_lr_scheduler".to_owned(), self.opts.schedule.to_string()),
            ("ss_seed".to_owned(), self.opts.seed.to_string()),
            (
                "ss_training_comment".to_owned(),
                format!("trained by Mintframe {}", env!("CARGO_PKG_VERSION")),
            ),
        ]);
        files::write_safetensors(path, &self.lora_tensors(plan)?, meta)
    }

    /// Writes a checkpoint: adapters, the optimiser's moments, the EMA copy and the step,
    /// tagged with `run` (a fingerprint of the run's settings and data).
    pub fn save_checkpoint(&self, path: &Path, run: &str) -> Result<()> {
        let mut t = BTreeMap::new();
        for (i, (name, p)) in self.names.iter().zip(&self.params).enumerate() {
            t.insert(format!("param.{name}"), p.as_tensor().detach());
            t.insert(format!("adam_m.{name}"), self.opt.moments[i].m.clone());
            t.insert(format!("adam_v.{name}"), self.opt.moments[i].v.clone());
            if let Some(e) = &self.ema {
                t.insert(format!("ema.{name}"), e[i].clone());
            }
        }
        let meta = HashMap::from([
            ("mintframe.run".to_owned(), run.to_owned()),
            ("mintframe.step".to_owned(), self.step.to_string()),
            ("mintframe.adam_t".to_owned(), self.opt.t.to_string()),
        ]);
        files::write_safetensors(path, &t, meta)
    }

    /// Continues from a checkpoint of the same run; one of another run is refused.
    pub fn restore(&mut self, path: &Path, run: &str) -> Result<()> {
        let (t, meta) = files::read_safetensors(path)?;
        let bad = |reason: String| Error::Checkpoint {
            path: path.to_owned(),
            reason,
        };
        match meta.get("mintframe.run") {
            Some(r) if r == run => {}
            Some(_) => {
                return Err(bad(
                    "it belongs to another training run (other images, captions or settings); \
                     start this run afresh or resume the run that wrote it"
                        .into(),
                ));
            }
            None => return Err(bad("it is not a Mintframe training checkpoint".into())),
        }
        let num = |k: &str| -> Result<u64> {
            meta.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(format!("its metadata has no {k}")))
        };
        let step = num("mintframe.step")?;
        let adam_t = num("mintframe.adam_t")?;
        let get = |k: String, like: &Tensor| -> Result<Tensor> {
            let v = t
                .get(&k)
                .ok_or_else(|| bad(format!("it has no tensor {k}")))?;
            if v.dims() != like.dims() {
                return Err(bad(format!(
                    "{k} has shape {:?}, this run needs {:?}",
                    v.dims(),
                    like.dims()
                )));
            }
            Ok(v.to_device(like.device())?)
        };
        for (i, name) in self.names.iter().enumerate() {
            let like = self.params[i].as_tensor().clone();
            self.params[i].set(&get(format!("param.{name}"), &like)?)?;
            self.opt.moments[i].m = get(format!("adam_m.{name}"), &like)?;
            self.opt.moments[i].v = get(format!("adam_v.{name}"), &like)?;
            if let Some(e) = &mut self.ema {
                e[i] = get(format!("ema.{name}"), &like)?;
            }
        }
        self.opt.t = adam_t;
        self.step = u32::try_from(step).map_err(|_| bad("its step is out of range".into()))?;
        Ok(())
    }
}

fn mix(seed: u64, stream: u64, i: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(stream.rotate_left(32))
        .wrapping_add(i);
    // splitmix64's finaliser: nearby (seed, stream, i) give unrelated streams.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests;
