//! U²-Net-p on candle with its real weights: `N` masks of a synthetic 320² subject (rembg's
//! input size), load included, for `farm-bench` to set beside onnxruntime running the same
//! ONNX file (`scripts/fixtures.d/u2netp_bench.py`).
//!
//! `target/debug/examples/matte_bench [N] [path/to/u2netp.onnx]`

use std::path::PathBuf;
use std::time::Instant;

use mintframe_diffusion::Device;
use mintframe_diffusion::matte::{U2NetP, checkout_u2netp};
use mintframe_diffusion::pipeline::Rgb;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the product's binaries run.
    mintframe_diffusion::tune_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let path = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(checkout_u2netp);
    let t0 = Instant::now();
    let net = U2NetP::from_onnx(&path, &Device::Cpu)?;
    let load = t0.elapsed();
    let (w, h) = (320u32, 320u32);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f64::from(x) - 160.0, f64::from(y) - 160.0);
            let inside = fx * fx + fy * fy <= 80.0 * 80.0;
            data.extend_from_slice(if inside {
                &[255, 0, 0]
            } else {
                &[211, 211, 211]
            });
        }
    }
    let img = Rgb {
        width: w,
        height: h,
        data,
    };
    let t1 = Instant::now();
    let mut opaque = 0;
    for _ in 0..n {
        opaque = net.mask(&img)?.data.iter().filter(|v| **v >= 128).count();
    }
    let each = t1.elapsed().as_secs_f64() / n.max(1) as f64;
    println!(
        "{{\"load_ms\": {:.1}, \"mask_ms\": {:.1}, \"runs\": {n}, \"opaque_px\": {opaque}}}",
        load.as_secs_f64() * 1e3,
        each * 1e3
    );
    Ok(())
}
