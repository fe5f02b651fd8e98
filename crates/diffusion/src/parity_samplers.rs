//! Every sampler against diffusers (`tests/fixtures/parity/samplers.safetensors`, made by
//! `scripts/fixtures samplers`): the timestep and σ tables at 1, 4, 20 and 50 steps, and a
//! 4-step chain from the same sample, model outputs and (Euler a, LCM) noise draws, for SD 1.5's
//! config, SD 2.1's v-prediction and SD-Turbo's `trailing` spacing.
//!
//! Conventions, stated and tested: DDIM and LCM work where diffusers does (x = √ᾱ·x₀ + √(1-ᾱ)·ε);
//! Euler and Euler a where diffusers' Euler schedulers and k-diffusion do (x = x₀ + σ·ε); our
//! DPM++ 2M Karras also in that σ scale, where diffusers' `DPMSolverMultistepScheduler` keeps
//! x / √(σ²+1), so the chain is compared in diffusers' scale. DPM++'s timesteps are
//! k-diffusion's (the fractional t of each σ), which diffusers rounds: equal after rounding.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Tensor};

use crate::config::SchedulerConfig;
use crate::parity::rel_err;
use crate::scheduler::{Sampler, SchedulerKind};
use crate::train::files::read_safetensors;

/// Relative. Ours are f64; diffusers keeps ᾱ in float32, and σ = √((1-ᾱ)/ᾱ) near ᾱ ≈ 1
/// (σ_min, which the Karras schedule starts from) inherits float32's rounding over 1-ᾱ ≈ 1e-3.
const TABLE_TOLERANCE: f64 = 2e-5;
const CHAIN_TOLERANCE: f32 = 1e-5;

fn fixture() -> (BTreeMap<String, Tensor>, HashMap<String, String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/parity/samplers.safetensors");
    assert!(
        path.is_file(),
        "the sampler fixture is missing ({}): run `scripts/fixtures samplers` to make it",
        path.display()
    );
    read_safetensors(&path).expect("fixture")
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.to_vec1::<f64>())
        .expect("vector")
}

fn close(ours: &[f64], theirs: &[f64], what: &str) -> f64 {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: {ours:?} vs diffusers' {theirs:?}"
    );
    let mut worst = 0f64;
    for (a, b) in ours.iter().zip(theirs) {
        let e = (a - b).abs() / b.abs().max(1e-2);
        worst = worst.max(e);
        assert!(
            e <= TABLE_TOLERANCE,
            "{what}: {ours:?} vs diffusers' {theirs:?}"
        );
    }
    worst
}

fn configs(meta: &HashMap<String, String>) -> BTreeMap<String, SchedulerConfig> {
    serde_json::from_str(&meta["configs"]).expect("configs")
}

#[test]
fn every_sampler_has_diffusers_timesteps_and_sigmas_at_1_4_20_and_50_steps() {
    let (fx, meta) = fixture();
    let mut worst = 0f64;
    let mut checked = 0;
    for (name, cfg) in configs(&meta) {
        for kind in SchedulerKind::ALL.iter().copied() {
            for n in [1usize, 4, 20, 50] {
                let key = format!("{name}.{}.{n}", kind.as_str());
                let what = |s: &str| format!("{key} {s}");
                let s = Sampler::new(kind, &cfg, n, 1.0, &[0]).expect("sampler");
                let ts = values(&fx[&format!("{key}.timesteps")]);
                if kind == SchedulerKind::DpmPp2mKarras {
                    let rounded: Vec<f64> = s.timesteps().iter().map(|t| t.round()).collect();
                    assert_eq!(rounded, ts, "{}", what("timesteps (rounded)"));
                } else {
                    worst = worst.max(close(s.timesteps(), &ts, &what("timesteps")));
                }
                if !matches!(kind, SchedulerKind::Ddim | SchedulerKind::Lcm) {
                    let sig = values(&fx[&format!("{key}.sigmas")]);
                    worst = worst.max(close(s.sigmas(), &sig, &what("sigmas")));
                }
                checked += 1;
            }
        }
    }
    println!(
        "{checked} schedules, worst relative difference {worst:.2e} (tolerance {TABLE_TOLERANCE:.0e})"
    );
    assert_eq!(checked, 3 * SchedulerKind::ALL.len() * 4);
}

#[test]
fn every_sampler_steps_as_diffusers_does_over_a_4_step_chain() {
    let (fx, meta) = fixture();
    let chain: usize = meta["chain"].parse().expect("chain");
    let t = |k: &str| fx[k].to_dtype(DType::F32).expect("f32");
    let mut worst = (0f32, String::new());
    for (name, cfg) in configs(&meta) {
        for kind in SchedulerKind::ALL.iter().copied() {
            let mut s = Sampler::new(kind, &cfg, chain, 1.0, &[0]).expect("sampler");
            s.give_noise((0..chain).map(|i| t(&format!("in.noise.{i}"))));
            // diffusers' DPM++ sample is ours divided by √(σ²+1).
            let scale = |i: usize| match kind {
                SchedulerKind::DpmPp2mKarras => (s_sigma(&cfg, chain, i).powi(2) + 1.0).sqrt(),
                _ => 1.0,
            };
            let mut x = (t("in.x0") * scale(0)).expect("x");
            for i in 0..chain {
                x = s.step(&t(&format!("in.out.{i}")), i, &x).expect("step");
                let key = format!("{name}.{}.x.{}", kind.as_str(), i + 1);
                let ours = (&x / scale(i + 1)).expect("scale");
                let e = rel_err(&ours, &t(&key));
                if e > worst.0 {
                    worst = (e, key.clone());
                }
                assert!(
                    e <= CHAIN_TOLERANCE,
                    "{key}: relative error {e:.3e} exceeds {CHAIN_TOLERANCE:.0e}"
                );
            }
        }
    }
    println!(
        "worst chain error {:.2e} at {} (tolerance {CHAIN_TOLERANCE:.0e})",
        worst.0, worst.1
    );
}

fn s_sigma(cfg: &SchedulerConfig, steps: usize, i: usize) -> f64 {
    Sampler::new(SchedulerKind::DpmPp2mKarras, cfg, steps, 1.0, &[0])
        .expect("sampler")
        .sigmas()[i]
}
