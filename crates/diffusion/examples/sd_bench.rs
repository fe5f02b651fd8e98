//! Real-size Stable Diffusion architectures with random weights: UNet step, VAE decode and a
//! whole txt2img, with timings, peak RSS and the preflight's estimate for the same run.
//! Speed does not depend on the weights' values.
//!
//! `cargo run --locked -p mintframe-diffusion --example sd_bench -- <unet|vae|clip|txt2img> <size> [sd15|sd21|sdxl|tiny] [f32|f16|bf16] [tiled] [cpu|cuda] [steps=N]`
//! (`tiny` is the built-in test model's shape: `scripts/bench --smoke` keeps this running in CI.)
//! One phase per process, so each peak RSS is that phase's own.

use std::time::Instant;

use mintframe_diffusion::memory::{estimate, peak_rss_bytes};
use mintframe_diffusion::{
    Arch, LoadOptions, Model, ModelConfig, Request, SchedulerKind, Tiling, dtype, generate,
};
use mintframe_jobs::JobCtx;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the product's binaries run.
    mintframe_diffusion::tune_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let phase = args.first().map(String::as_str).unwrap_or("txt2img");
    let size: u32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(512);
    let has = |w: &str| args.iter().skip(2).any(|a| a == w);
    let arch = if has("sd21") {
        Arch::Sd2
    } else if has("sdxl") {
        Arch::Sdxl
    } else {
        Arch::Sd1
    };
    let dt = dtype(if has("f16") {
        "f16"
    } else if has("bf16") {
        "bf16"
    } else {
        "f32"
    })?;
    let device_name = if has("cuda") { "cuda" } else { "cpu" };
    let steps: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("steps=").and_then(|n| n.parse().ok()))
        .unwrap_or(1);
    let tiling = args.iter().any(|a| a == "tiled").then_some(Tiling::DEFAULT);
    let config = if has("tiny") {
        mintframe_diffusion::tiny::tiny_config(false)
    } else {
        ModelConfig::preset(arch)
    };
    let arch = config.arch;
    let est = estimate(&config, dt, size, size, 1, true, tiling)?;
    let t0 = Instant::now();
    let opts = LoadOptions {
        dtype: dt,
        device: mintframe_diffusion::device(device_name)?,
        ..LoadOptions::default()
    };
    let model = Model::random(config, 1, &opts)?;
    let build_s = t0.elapsed().as_secs_f64();
    let lat = (size / 8) as usize;
    let dev = model.device.clone();
    // What the model computes in: f32 for bf16 weights on the CPU.
    let asked = dt;
    let dt = model.dtype;
    let mut timings = Vec::new();
    match phase {
        "unet" => {
            let cond = model.encode_prompt("a knight", 1)?;
            let ctx = cond.context.repeat((2, 1, 1))?;
            let added = match &cond.pooled {
                Some(p) => model.added_cond(p, size, size, 2)?,
                None => None,
            };
            let x = candle_core::Tensor::randn(0f32, 1.0, (2, 4, lat, lat), &dev)?.to_dtype(dt)?;
            for _ in 0..2 {
                let t = Instant::now();
                let _ = model.unet.forward(&x, 999.0, &ctx, added.as_ref())?;
                // GPU work is queued: wait for it, or the time is only the launch.
                dev.synchronize()?;
                timings.push(t.elapsed().as_secs_f64());
            }
        }
        "gemm" => {
            // The GEMM every convolution and attention ends in, alone: 3072³ f32.
            let n = 3072;
            let a = candle_core::Tensor::randn(0f32, 1.0, (n, n), &dev)?;
            let b = candle_core::Tensor::randn(0f32, 1.0, (n, n), &dev)?;
            let _ = a.matmul(&b)?;
            for _ in 0..8 {
                let t = Instant::now();
                let _ = a.matmul(&b)?;
                dev.synchronize()?;
                timings.push(t.elapsed().as_secs_f64());
            }
        }
        "clip" => {
            for _ in 0..2 {
                let t = Instant::now();
                let _ = model.encode_prompt("a knight in a red cloak, pixel art, side view", 1)?;
                dev.synchronize()?;
                timings.push(t.elapsed().as_secs_f64());
            }
        }
        "vae" => {
            let z = candle_core::Tensor::randn(0f32, 1.0, (1, 4, lat, lat), &dev)?.to_dtype(dt)?;
            for _ in 0..2 {
                let t = Instant::now();
                let _ = model.vae.decode(&z, tiling)?;
                dev.synchronize()?;
                timings.push(t.elapsed().as_secs_f64());
            }
        }
        _ => {
            let req = Request {
                prompt: "a knight".into(),
                steps,
                width: size,
                height: size,
                scheduler: SchedulerKind::EulerA,
                vae_tiling: tiling,
                ..Request::default()
            };
            let t = Instant::now();
            generate(&model, &req, &JobCtx::detached(), None)?;
            dev.synchronize()?;
            timings.push(t.elapsed().as_secs_f64());
        }
    }
    let rss = peak_rss_bytes().unwrap_or(0);
    println!(
        "{{\"phase\":\"{phase}\",\"device\":\"{device_name}\",\"arch\":\"{}\",\"size\":{size},\"dtype\":\"{}\",\"tiled\":{},\"build_s\":{build_s:.1},\"seconds\":{timings:?},\"peak_rss_mib\":{},\"estimate_mib\":{},\"ratio\":{:.2}}}",
        arch.as_str(),
        mintframe_diffusion::dtype_name(asked),
        tiling.is_some(),
        rss >> 20,
        est.peak >> 20,
        est.peak as f64 / rss.max(1) as f64
    );
    Ok(())
}
