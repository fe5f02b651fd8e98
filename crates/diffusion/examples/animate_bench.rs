//! One AnimateDiff sampling step for a 16-frame clip at 256² on a real-size SD 1.5 UNet and a
//! real-size v2 motion adapter (random weights: speed does not depend on the values), with
//! classifier-free guidance (a batch of 32 frames through UNet and motion modules).
//!
//! `cargo run --locked -p mintframe-diffusion --example animate_bench -- <dir> [frames] [side]`
//! where `<dir>` holds `model/` from `random_model <dir> sd15`; the adapter is written to
//! `<dir>/motion` on the first run.

use std::path::Path;
use std::time::Instant;

use mintframe_diffusion::animate::{ClipRequest, generate_clip};
use mintframe_diffusion::motion::{MotionAdapter, MotionConfig, MotionKind};
use mintframe_diffusion::{LoadOptions, Model, Request, SchedulerKind};
use mintframe_jobs::JobCtx;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the product's binaries run.
    mintframe_diffusion::tune_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(
        args.first()
            .ok_or("usage: animate_bench DIR [frames] [side]")?,
    );
    let frames: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(16);
    let side: u32 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(256);
    let motion_dir = dir.join("motion");
    if !motion_dir.join("config.json").is_file() {
        mintframe_diffusion::tiny::write_motion_config(
            &motion_dir,
            &MotionConfig::sd15(MotionKind::V2),
            11,
        )?;
    }
    let t = Instant::now();
    let model = Model::load_diffusers(&dir.join("model"), &LoadOptions::default())?;
    let motion = MotionAdapter::load(&motion_dir, candle_core::DType::F32, &model.device)?;
    let load_s = t.elapsed().as_secs_f64();
    let clip = ClipRequest {
        req: Request {
            prompt: "a knight walking, pixel art".into(),
            negative_prompt: "blurry".into(),
            seed: 1,
            steps: 1,
            guidance: 7.5,
            width: side,
            height: side,
            scheduler: SchedulerKind::EulerA,
            ..Request::default()
        },
        frames,
        context: 16,
        overlap: 4,
        looped: false,
        keyframes: Vec::new(),
    };
    let t = Instant::now();
    let out = generate_clip(&model, &motion, &clip, &JobCtx::detached(), None)?;
    println!(
        "animatediff: {frames} frames at {side}², 1 step (prompt encode, UNet + motion modules on {} rows, {frames} VAE decodes): {:.1} s; load {:.1} s",
        2 * frames.min(16),
        t.elapsed().as_secs_f64(),
        load_s
    );
    assert_eq!(out.len(), frames);
    Ok(())
}
