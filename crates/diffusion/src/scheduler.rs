//! Samplers: DDIM, Euler, Euler ancestral, DPM++ 2M (Karras) and LCM. The Euler family follows
//! k-diffusion's formulation (sigmas, `x = x0 + σ·ε`); every random draw comes from a seeded
//! generator per batch item, so a recipe reproduces on any backend.

use std::fmt;

use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::config::SchedulerConfig;
use crate::error::{Error, Result};
use crate::weights::normal;

/// The closed set lives in `types` (serde, TypeScript and the CLI share one spelling).
pub use mintframe_types::Scheduler as SchedulerKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prediction {
    Epsilon,
    V,
}

/// One denoising run's schedule and state.
pub struct Sampler {
    kind: SchedulerKind,
    prediction: Prediction,
    alphas_cumprod: Vec<f64>,
    /// Model timesteps, one per step.
    timesteps: Vec<f64>,
    /// k-diffusion sigmas, one per step plus a final 0 (unused by DDIM).
    sigmas: Vec<f64>,
    /// ᾱ after the last step for DDIM.
    final_alpha: f64,
    /// DDIM's clamp of the predicted x₀, if the config asks for one.
    clip_x0: Option<f64>,
    /// LCM's boundary-condition timestep scale.
    timestep_scaling: f64,
    old_denoised: Option<Tensor>,
    rngs: Vec<ChaCha8Rng>,
    /// Draws the parity test hands in (diffusers' own), used before the seeded streams.
    #[cfg(test)]
    given_noise: std::collections::VecDeque<Tensor>,
}

impl fmt::Debug for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sampler")
            .field("kind", &self.kind)
            .field("timesteps", &self.timesteps)
            .finish_non_exhaustive()
    }
}

pub(crate) fn alphas_cumprod(cfg: &SchedulerConfig) -> Result<Vec<f64>> {
    let n = cfg.num_train_timesteps;
    let betas: Vec<f64> = match cfg.beta_schedule.as_str() {
        "scaled_linear" => {
            let (a, b) = (cfg.beta_start.sqrt(), cfg.beta_end.sqrt());
            (0..n)
                .map(|i| {
                    let v = a + (b - a) * i as f64 / (n - 1) as f64;
                    v * v
                })
                .collect()
        }
        "linear" => (0..n)
            .map(|i| cfg.beta_start + (cfg.beta_end - cfg.beta_start) * i as f64 / (n - 1) as f64)
            .collect(),
        other => {
            return Err(Error::InvalidRequest(format!(
                "beta_schedule `{other}` is not supported (scaled_linear or linear)"
            )));
        }
    };
    let mut acc = 1.0;
    Ok(betas
        .into_iter()
        .map(|b| {
            acc *= 1.0 - b;
            acc
        })
        .collect())
}

fn spaced_timesteps(cfg: &SchedulerConfig, steps: usize) -> Vec<f64> {
    let t = cfg.num_train_timesteps;
    let mut v: Vec<f64> = match cfg.timestep_spacing.as_str() {
        "trailing" => {
            let ratio = t as f64 / steps as f64;
            (0..steps)
                .map(|i| (t as f64 - i as f64 * ratio).round() - 1.0)
                .collect()
        }
        "linspace" => (0..steps)
            .map(|i| {
                if steps == 1 {
                    (t - 1) as f64
                } else {
                    ((t - 1) as f64 * i as f64 / (steps - 1) as f64).round()
                }
            })
            .rev()
            .collect(),
        _ => {
            let ratio = t / steps;
            (0..steps)
                .map(|i| (i * ratio + cfg.steps_offset) as f64)
                .rev()
                .collect()
        }
    };
    for x in &mut v {
        *x = x.clamp(0.0, (t - 1) as f64);
    }
    v
}

/// σ at a (possibly fractional) timestep, by interpolating log σ as diffusers does.
/// diffusers' `LCMScheduler.set_timesteps`: `steps` of the distillation's
/// `original_inference_steps`-long schedule (k = train steps ÷ it; t = k·j - 1), evenly from the
/// top; img2img `strength` shortens that schedule first.
fn lcm_timesteps(cfg: &SchedulerConfig, steps: usize, strength: f64) -> Result<Vec<f64>> {
    let original = cfg.original_inference_steps.max(1);
    let k = cfg.num_train_timesteps / original;
    let kept = (original as f64 * strength.clamp(0.0, 1.0)) as usize;
    if k == 0 || kept == 0 || steps > kept {
        return Err(Error::InvalidRequest(format!(
            "LCM draws {steps} steps from {kept} of its {original} distilled timesteps \
             (strength {strength}): ask for at most {kept}"
        )));
    }
    let origin: Vec<f64> = (1..=kept).rev().map(|j| (j * k) as f64 - 1.0).collect();
    Ok((0..steps)
        .map(|i| origin[(i as f64 * kept as f64 / steps as f64).floor() as usize])
        .collect())
}

fn sigma_at(log_sigmas: &[f64], t: f64) -> f64 {
    let lo = t.floor().max(0.0) as usize;
    let hi = (lo + 1).min(log_sigmas.len() - 1);
    let w = t - lo as f64;
    ((1.0 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp()
}

/// The timestep whose σ is `sigma` (inverse of [`sigma_at`]).
fn t_at(log_sigmas: &[f64], sigma: f64) -> f64 {
    let ls = sigma.ln();
    // log σ increases with t.
    let idx = log_sigmas
        .iter()
        .position(|&x| x >= ls)
        .unwrap_or(log_sigmas.len() - 1)
        .max(1);
    let (lo, hi) = (log_sigmas[idx - 1], log_sigmas[idx]);
    let w = ((ls - lo) / (hi - lo)).clamp(0.0, 1.0);
    (idx - 1) as f64 + w
}

impl Sampler {
    /// A run of `steps` steps; with `strength` < 1 (img2img), only the last
    /// `round(steps·strength)` of them. `seeds` gives one noise stream per batch item.
    pub fn new(
        kind: SchedulerKind,
        cfg: &SchedulerConfig,
        steps: usize,
        strength: f64,
        seeds: &[u64],
    ) -> Result<Sampler> {
        if steps == 0 {
            return Err(Error::InvalidRequest("steps must be at least 1".into()));
        }
        let prediction = match cfg.prediction_type.as_str() {
            "epsilon" => Prediction::Epsilon,
            "v_prediction" => Prediction::V,
            other => {
                return Err(Error::InvalidRequest(format!(
                    "prediction_type `{other}` is not supported"
                )));
            }
        };
        // What a released config may ask for and this sampler does not do is refused by name,
        // never silently ignored.
        for (on, name) in [
            (cfg.thresholding, "thresholding"),
            (cfg.rescale_betas_zero_snr, "rescale_betas_zero_snr"),
        ] {
            if on {
                return Err(Error::InvalidRequest(format!(
                    "scheduler_config.json sets `{name}`, which Mintframe's samplers do not do: set it false"
                )));
            }
        }
        if !matches!(
            cfg.timestep_spacing.as_str(),
            "leading" | "trailing" | "linspace"
        ) {
            return Err(Error::InvalidRequest(format!(
                "timestep_spacing `{}` is not supported (leading, trailing or linspace)",
                cfg.timestep_spacing
            )));
        }
        if cfg.clip_sample && !(cfg.clip_sample_range.is_finite() && cfg.clip_sample_range > 0.0) {
            return Err(Error::InvalidRequest(format!(
                "clip_sample_range {} must be above 0",
                cfg.clip_sample_range
            )));
        }
        let ac = alphas_cumprod(cfg)?;
        let log_sigmas: Vec<f64> = ac.iter().map(|a| ((1.0 - a) / a).sqrt().ln()).collect();
        let mut timesteps = spaced_timesteps(cfg, steps);
        let mut sigmas: Vec<f64> = if kind == SchedulerKind::DpmPp2mKarras {
            let smin = log_sigmas[0].exp();
            let smax = log_sigmas[log_sigmas.len() - 1].exp();
            let rho = 7.0;
            let (a, b) = (smax.powf(1.0 / rho), smin.powf(1.0 / rho));
            let ks: Vec<f64> = (0..steps)
                .map(|i| {
                    let r = if steps == 1 {
                        0.0
                    } else {
                        i as f64 / (steps - 1) as f64
                    };
                    (a + r * (b - a)).powf(rho)
                })
                .collect();
            timesteps = ks.iter().map(|&s| t_at(&log_sigmas, s)).collect();
            ks
        } else {
            timesteps
                .iter()
                .map(|&t| sigma_at(&log_sigmas, t))
                .collect()
        };
        sigmas.push(0.0);
        if kind == SchedulerKind::Lcm {
            timesteps = lcm_timesteps(cfg, steps, strength)?;
        }
        // LCM applies img2img strength to its own schedule (as diffusers does), the others by
        // keeping the last steps.
        let start = if kind == SchedulerKind::Lcm {
            0
        } else {
            steps - ((steps as f64 * strength.clamp(0.0, 1.0)).round() as usize).min(steps)
        };
        let timesteps = timesteps[start..].to_vec();
        let sigmas = sigmas[start..].to_vec();
        Ok(Sampler {
            kind,
            prediction,
            final_alpha: if cfg.set_alpha_to_one { 1.0 } else { ac[0] },
            clip_x0: cfg.clip_sample.then_some(cfg.clip_sample_range),
            timestep_scaling: cfg.timestep_scaling,
            alphas_cumprod: ac,
            timesteps,
            sigmas,
            old_denoised: None,
            #[cfg(test)]
            given_noise: Default::default(),
            rngs: seeds
                .iter()
                .map(|s| ChaCha8Rng::seed_from_u64(s.wrapping_add(0x0005_eed0_fa11)))
                .collect(),
        })
    }

    pub fn steps(&self) -> usize {
        self.timesteps.len()
    }

    pub fn timestep(&self, i: usize) -> f64 {
        self.timesteps[i]
    }

    fn alpha(&self, t: f64) -> f64 {
        let i = (t.round() as usize).min(self.alphas_cumprod.len() - 1);
        self.alphas_cumprod[i]
    }

    /// Starting latents from pure noise.
    pub fn init_noise(&self, noise: &Tensor) -> Result<Tensor> {
        Ok(match self.kind {
            SchedulerKind::Ddim | SchedulerKind::Lcm => noise.clone(),
            _ => (noise * self.sigmas.first().copied().unwrap_or(1.0))?,
        })
    }

    /// Starting latents for img2img: the image's latents noised to the first step.
    pub fn noise_latents(&self, latents: &Tensor, noise: &Tensor) -> Result<Tensor> {
        self.noise_latents_at(latents, noise, 0)
    }

    /// `latents` noised to the level before step `i` (inpainting re-noises the kept region).
    pub fn noise_latents_at(&self, latents: &Tensor, noise: &Tensor, i: usize) -> Result<Tensor> {
        if i >= self.steps() {
            return Ok(latents.clone());
        }
        Ok(match self.kind {
            SchedulerKind::Ddim | SchedulerKind::Lcm => {
                let a = self.alpha(self.timesteps[i]);
                ((latents * a.sqrt())? + (noise * (1.0 - a).sqrt())?)?
            }
            _ => (latents + (noise * self.sigmas[i])?)?,
        })
    }

    /// What the UNet sees at step `i`.
    pub fn scale_input(&self, x: &Tensor, i: usize) -> Result<Tensor> {
        Ok(match self.kind {
            SchedulerKind::Ddim | SchedulerKind::Lcm => x.clone(),
            _ => (x / (self.sigmas[i] * self.sigmas[i] + 1.0).sqrt())?,
        })
    }

    /// Advances `x` by one step given the model's output.
    pub fn step(&mut self, out: &Tensor, i: usize, x: &Tensor) -> Result<Tensor> {
        if self.kind == SchedulerKind::Lcm {
            return self.lcm_step(out, i, x);
        }
        if self.kind == SchedulerKind::Ddim {
            let a = self.alpha(self.timesteps[i]);
            let a_prev = match self.timesteps.get(i + 1) {
                Some(&t) => self.alpha(t),
                None => self.final_alpha,
            };
            let (x0, eps) = match self.prediction {
                Prediction::Epsilon => {
                    let x0 = ((x - (out * (1.0 - a).sqrt())?)? / a.sqrt())?;
                    (x0, out.clone())
                }
                Prediction::V => {
                    let x0 = ((x * a.sqrt())? - (out * (1.0 - a).sqrt())?)?;
                    let eps = ((out * a.sqrt())? + (x * (1.0 - a).sqrt())?)?;
                    (x0, eps)
                }
            };
            // diffusers clamps x₀ and keeps ε as predicted (`use_clipped_model_output` off).
            let x0 = match self.clip_x0 {
                Some(r) => x0.clamp(-r, r)?,
                None => x0,
            };
            return Ok(((x0 * a_prev.sqrt())? + (eps * (1.0 - a_prev).sqrt())?)?);
        }
        let s = self.sigmas[i];
        let s_next = self.sigmas[i + 1];
        let denoised = match self.prediction {
            Prediction::Epsilon => (x - (out * s)?)?,
            Prediction::V => ((x / (s * s + 1.0))? - (out * (s / (s * s + 1.0).sqrt()))?)?,
        };
        match self.kind {
            SchedulerKind::Euler => {
                let d = ((x - &denoised)? / s)?;
                Ok((x + (d * (s_next - s))?)?)
            }
            SchedulerKind::EulerA => {
                let up = if s_next == 0.0 {
                    0.0
                } else {
                    (s_next * s_next * (s * s - s_next * s_next) / (s * s))
                        .sqrt()
                        .min(s_next)
                };
                let down = (s_next * s_next - up * up).max(0.0).sqrt();
                let d = ((x - &denoised)? / s)?;
                let x = (x + (d * (down - s))?)?;
                if up == 0.0 {
                    return Ok(x);
                }
                let noise = self.noise_like(&x)?;
                Ok((x + (noise * up)?)?)
            }
            SchedulerKind::DpmPp2mKarras => {
                let x_next = if s_next == 0.0 {
                    denoised.clone()
                } else {
                    let t = -s.ln();
                    let t_next = -s_next.ln();
                    let h = t_next - t;
                    let d = match &self.old_denoised {
                        Some(old) if i > 0 => {
                            let h_last = t + self.sigmas[i - 1].ln();
                            let r = h_last / h;
                            ((&denoised * (1.0 + 1.0 / (2.0 * r)))? - (old * (1.0 / (2.0 * r)))?)?
                        }
                        _ => denoised.clone(),
                    };
                    ((x * (s_next / s))? - (d * (-h).exp_m1())?)?
                };
                self.old_denoised = Some(denoised);
                Ok(x_next)
            }
            SchedulerKind::Ddim | SchedulerKind::Lcm => Ok(x.clone()),
        }
    }

    /// diffusers' `LCMScheduler.step`: the consistency function's x₀ (the boundary condition
    /// mixes the sample back in at small t), then re-noised to the next timestep with a fresh
    /// draw, except at the last step.
    fn lcm_step(&mut self, out: &Tensor, i: usize, x: &Tensor) -> Result<Tensor> {
        let t = self.timesteps[i];
        let a = self.alpha(t);
        // The last step lands on its own timestep's x₀ (diffusers' `prev_timestep = timestep`).
        let last = i + 1 >= self.timesteps.len();
        let a_prev = if last {
            a
        } else {
            self.alpha(self.timesteps[i + 1])
        };
        let scaled = t * self.timestep_scaling;
        let sigma_data = 0.5f64;
        let c_skip = sigma_data * sigma_data / (scaled * scaled + sigma_data * sigma_data);
        let c_out = scaled / (scaled * scaled + sigma_data * sigma_data).sqrt();
        let x0 = match self.prediction {
            Prediction::Epsilon => ((x - (out * (1.0 - a).sqrt())?)? / a.sqrt())?,
            Prediction::V => ((x * a.sqrt())? - (out * (1.0 - a).sqrt())?)?,
        };
        let x0 = match self.clip_x0 {
            Some(r) => x0.clamp(-r, r)?,
            None => x0,
        };
        let denoised = ((x0 * c_out)? + (x * c_skip)?)?;
        if last {
            return Ok(denoised);
        }
        let noise = self.noise_like(&denoised)?;
        Ok(((denoised * a_prev.sqrt())? + (noise * (1.0 - a_prev).sqrt())?)?)
    }

    /// Euler a's next draws will be these, in order (the parity test's, so ours and
    /// diffusers' chains see the same noise).
    #[cfg(test)]
    pub(crate) fn give_noise(&mut self, draws: impl IntoIterator<Item = Tensor>) {
        self.given_noise.extend(draws);
    }

    #[cfg(test)]
    pub(crate) fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    #[cfg(test)]
    pub(crate) fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn noise_like(&mut self, x: &Tensor) -> Result<Tensor> {
        #[cfg(test)]
        if let Some(n) = self.given_noise.pop_front() {
            return Ok(n.to_dtype(x.dtype())?);
        }
        let dims = x.dims().to_vec();
        let per = dims.iter().skip(1).product::<usize>();
        let mut data = Vec::with_capacity(per * dims[0]);
        for b in 0..dims[0] {
            let last = self.rngs.len().saturating_sub(1);
            let rng = &mut self.rngs[b.min(last)];
            data.extend((0..per).map(|_| normal(rng)));
        }
        Ok(Tensor::from_vec(data, dims, x.device())?.to_dtype(x.dtype())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DDIM with `clip_sample` and `set_alpha_to_one` either way, against diffusers 0.31's
    /// `DDIMScheduler.step` on the same sample and output (values printed by it, f64), at the
    /// first of 4 steps and at the last (where the final ᾱ counts).
    #[test]
    fn ddim_honours_clip_sample_and_set_alpha_to_one_as_diffusers_does() {
        let dev = candle_core::Device::Cpu;
        let x = Tensor::new(&[[-3.0f32, 0.5, 3.0]], &dev).expect("x");
        let e = Tensor::new(&[[0.2f32, -0.1, 0.05]], &dev).expect("e");
        let cases = [
            (
                false,
                false,
                [-6.926236832, 1.241528815, 6.599401794],
                [-3.003711188, 0.501427983, 3.000675743],
            ),
            (
                false,
                true,
                [-6.926236832, 1.241528815, 6.599401794],
                [-3.010822116, 0.504557985, 3.000493497],
            ),
            (
                true,
                false,
                [-0.354109335, 0.439256334, 0.566976833],
                [-0.993743873, 0.501427983, 1.001032656],
            ),
            (
                true,
                true,
                [-0.354109335, 0.439256334, 0.566976833],
                [-1.0, 0.504557985, 1.0],
            ),
        ];
        for (clip, one, first, last) in cases {
            let cfg = SchedulerConfig {
                clip_sample: clip,
                set_alpha_to_one: one,
                ..SchedulerConfig::default()
            };
            let mut s = Sampler::new(SchedulerKind::Ddim, &cfg, 4, 1.0, &[0]).expect("sampler");
            assert_eq!(s.timesteps, vec![751.0, 501.0, 251.0, 1.0]);
            for (i, want) in [(0, first), (3, last)] {
                let got: Vec<f32> = s
                    .step(&e, i, &x)
                    .expect("step")
                    .flatten_all()
                    .expect("flat")
                    .to_vec1()
                    .expect("vec");
                for (g, w) in got.iter().zip(want) {
                    assert!(
                        (f64::from(*g) - w).abs() < 1e-5,
                        "clip {clip}, alpha to one {one}, step {i}: {got:?} vs {want:?}"
                    );
                }
            }
        }
        for (field, cfg) in [
            (
                "thresholding",
                SchedulerConfig {
                    thresholding: true,
                    ..SchedulerConfig::default()
                },
            ),
            (
                "rescale_betas_zero_snr",
                SchedulerConfig {
                    rescale_betas_zero_snr: true,
                    ..SchedulerConfig::default()
                },
            ),
            (
                "timestep_spacing `karras`",
                SchedulerConfig {
                    timestep_spacing: "karras".into(),
                    ..SchedulerConfig::default()
                },
            ),
        ] {
            let e = Sampler::new(SchedulerKind::Euler, &cfg, 4, 1.0, &[0])
                .expect_err("refused")
                .to_string();
            assert!(e.contains(field), "{e}");
        }
        // Fields at their defaults are not written, so configs this crate writes stay as they were.
        let json = serde_json::to_string(&SchedulerConfig::default()).expect("json");
        assert!(
            !json.contains("clip_sample") && !json.contains("set_alpha_to_one"),
            "{json}"
        );
        let read: SchedulerConfig = serde_json::from_str(
            r#"{"clip_sample": true, "set_alpha_to_one": true, "clip_sample_range": 2.0}"#,
        )
        .expect("parse");
        assert!(read.clip_sample && read.set_alpha_to_one && read.clip_sample_range == 2.0);
    }

    #[test]
    fn leading_and_trailing_spacings_match_diffusers() {
        let cfg = SchedulerConfig::default();
        assert_eq!(spaced_timesteps(&cfg, 4), vec![751.0, 501.0, 251.0, 1.0]);
        let turbo = SchedulerConfig {
            timestep_spacing: "trailing".into(),
            steps_offset: 0,
            ..SchedulerConfig::default()
        };
        assert_eq!(spaced_timesteps(&turbo, 1), vec![999.0]);
        assert_eq!(
            spaced_timesteps(&turbo, 4),
            vec![999.0, 749.0, 499.0, 249.0]
        );
    }

    #[test]
    fn sigmas_follow_the_sd_schedule() {
        let cfg = SchedulerConfig::default();
        let s = Sampler::new(SchedulerKind::Euler, &cfg, 1000, 1.0, &[1]).expect("sampler");
        // SD's σ_max ≈ 14.61, σ_min ≈ 0.0292.
        assert!((s.sigmas[0] - 14.6146).abs() < 1e-3, "{}", s.sigmas[0]);
        let k = Sampler::new(SchedulerKind::DpmPp2mKarras, &cfg, 10, 1.0, &[1]).expect("karras");
        assert!((k.sigmas[0] - 14.6146).abs() < 1e-3);
        assert!((k.sigmas[9] - 0.0292).abs() < 1e-3, "{}", k.sigmas[9]);
        assert!((k.timesteps[0] - 999.0).abs() < 1e-6);
        assert!(k.timesteps.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn strength_keeps_the_last_steps() {
        let cfg = SchedulerConfig::default();
        let s = Sampler::new(SchedulerKind::Ddim, &cfg, 20, 0.5, &[1]).expect("s");
        assert_eq!(s.steps(), 10);
        assert_eq!(s.timestep(0), 451.0);
    }

    #[test]
    fn a_perfect_denoiser_lands_on_the_clean_latents() {
        // With ε known exactly, every sampler must return x0 after its last step.
        let cfg = SchedulerConfig::default();
        let dev = candle_core::Device::Cpu;
        let x0 = Tensor::new(&[[0.5f32, -0.25]], &dev).expect("x0");
        let eps = Tensor::new(&[[1.0f32, -2.0]], &dev).expect("eps");
        for kind in [
            SchedulerKind::Ddim,
            SchedulerKind::Euler,
            SchedulerKind::DpmPp2mKarras,
        ] {
            let mut s = Sampler::new(kind, &cfg, 8, 1.0, &[1]).expect("s");
            let mut x = s.noise_latents(&x0, &eps).expect("noised");
            for i in 0..s.steps() {
                // The ε that takes the current x back to x0.
                let e = match kind {
                    SchedulerKind::Ddim => {
                        let a = s.alpha(s.timestep(i));
                        ((&x - (&x0 * a.sqrt()).expect("m")).expect("d") / (1.0 - a).sqrt())
                            .expect("e")
                    }
                    _ => ((&x - &x0).expect("d") / s.sigmas[i]).expect("e"),
                };
                x = s.step(&e, i, &x).expect("step");
            }
            let diff: Vec<f32> = (x - &x0)
                .expect("d")
                .flatten_all()
                .expect("f")
                .to_vec1()
                .expect("v");
            // DDIM ends at ᾱ_0 < 1, so √(1-ᾱ_0)·ε ≈ 0.03·ε remains; the others land exactly.
            let tol = if kind == SchedulerKind::Ddim {
                0.07
            } else {
                1e-4
            };
            assert!(diff.iter().all(|d| d.abs() < tol), "{kind}: {diff:?}");
        }
    }
}
