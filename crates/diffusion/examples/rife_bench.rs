//! RIFE 4.6 at real size (block widths 192, 128, 96, 64; random weights: speed does not depend
//! on the values): one in-between of two `SIDE`² frames, after one untimed warm-up. Writes the
//! weights to `<dir>/rife-4.6-random.safetensors` on the first run.
//!
//!   cargo run --example rife_bench -p mintframe-diffusion -- [SIDE] [DIR]
//!
//! Prints one JSON line; `scripts/fixtures.d/rife_bench.py` times the reference IFNet the same
//! way, and farm-bench runs the two in turn.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use mintframe_diffusion::rife::Rife;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the product's binaries run.
    mintframe_diffusion::tune_process();
    let mut args = std::env::args().skip(1);
    let side: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(512);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/bench-rife".into()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("rife-4.6-random.safetensors");
    if !file.is_file() {
        mintframe_diffusion::tiny::write_rife(&file, [192, 128, 96, 64], 46)?;
    }
    let t = Instant::now();
    let net = Rife::load(&file, &Device::Cpu)?;
    let load_s = t.elapsed().as_secs_f64();
    let img = |seed: u64| -> Result<Tensor, Box<dyn std::error::Error>> {
        let v: Vec<f32> = mintframe_diffusion::weights::normal_vec(seed, 3 * side * side)
            .into_iter()
            .map(|x| (0.5 + 0.2 * x).clamp(0.0, 1.0))
            .collect();
        Ok(Tensor::from_vec(v, (1, 3, side, side), &Device::Cpu)?)
    };
    let (a, b) = (img(1)?, img(2)?);
    net.interpolate(&a, &b, 0.5)?;
    let t = Instant::now();
    let out = net.interpolate(&a, &b, 0.5)?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "{{\"side\": {side}, \"interpolate_s\": {s:.3}, \"load_s\": {load_s:.3}, \"dims\": {:?}}}",
        out.dims()
    );
    Ok(())
}
