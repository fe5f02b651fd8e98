//! LoRA training speed on a real-size UNet with random weights (speed does not depend on the
//! values): the SD 1.5 UNet frozen, rank-8 adapters on every linear layer and 1×1 convolution
//! of its transformer blocks (kohya's default targets), AdamW, batch 1, epsilon loss with
//! min-SNR 5 — the same configuration `scripts/bench/lora_train_bench.py` runs in PyTorch
//! diffusers + peft. The first step (graph set-up, allocations) is warm-up and not timed.
//!
//! `cargo run --locked -p mintframe-diffusion --example train_bench -- <size> [steps] [recompute] [cpu|cuda]`
//! (`recompute`: gradient checkpointing, each block's activations recomputed in the backward).
//! Prints one JSON line: steps/s, seconds per step, trainable parameters, peak RSS.

use std::sync::Arc;
use std::time::Instant;

use mintframe_diffusion::config::SchedulerConfig;
use mintframe_diffusion::memory::peak_rss_bytes;
use mintframe_diffusion::train::{Example, LoraPlan, TrainOptions, Trainer};
use mintframe_diffusion::unet::UNet;
use mintframe_diffusion::weights::{Trainable, Weights, normal_vec};
use mintframe_diffusion::{Arch, DType, ModelConfig, Padding, Tensor};
use mintframe_types::LoraTargets;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the product's binaries run.
    mintframe_diffusion::tune_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let steps: u32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let device = mintframe_diffusion::device(if args.iter().any(|a| a == "cuda") {
        "cuda"
    } else {
        "cpu"
    })?;
    let config = ModelConfig::preset(Arch::Sd1);
    let plan = LoraPlan::new(8, 8.0, LoraTargets::Transformer, 1)?;
    let train = if args.iter().any(|a| a == "recompute") {
        Trainable::lora_recomputed(plan)
    } else {
        Trainable::lora(plan)
    };
    let t0 = Instant::now();
    let w = Arc::new(
        Weights::random(1, false, DType::F32, &device)
            .with_trainable("lora_unet_", Some(Arc::clone(&train))),
    );
    let unet = UNet::new(&w.root(), &config.unet, Padding::ZEROS)?;
    let build_s = t0.elapsed().as_secs_f64();
    let lat = size / 8;
    let ctx_dim = config.unet.cross_attention_dim;
    let examples = vec![Example {
        latents: Tensor::from_vec(normal_vec(2, 4 * lat * lat), (4, lat, lat), &device)?,
        flipped: None,
        context: Tensor::from_vec(normal_vec(3, 77 * ctx_dim), (77, ctx_dim), &device)?,
        pooled: None,
        width: size as u32,
        height: size as u32,
    }];
    let mut trainer = Trainer::for_unet(
        &unet,
        Arch::Sd1,
        &SchedulerConfig::default(),
        &train,
        TrainOptions {
            steps: steps + 1,
            min_snr_gamma: Some(5.0),
            ..TrainOptions::default()
        },
        examples,
    )?;
    trainer.train_step()?;
    let t1 = Instant::now();
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = trainer.train_step()?.loss;
    }
    let secs = t1.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "size": size,
            "recompute": args.iter().any(|a| a == "recompute"),
            "steps": steps,
            "steps_per_s": f64::from(steps) / secs,
            "s_per_step": secs / f64::from(steps),
            "build_s": build_s,
            "trainable_params": trainer.param_count(),
            "last_loss": loss,
            "peak_rss_mib": peak_rss_bytes().map(|b| b >> 20),
        })
    );
    Ok(())
}
