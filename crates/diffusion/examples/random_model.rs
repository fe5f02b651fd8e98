//! Writes a real-size architecture with seeded random weights as a diffusers folder (and an
//! OpenPose-shaped ControlNet for it), for end-to-end benchmarks through the CLI: speed does
//! not depend on the weights' values.
//!
//! `cargo run --locked -p mintframe-diffusion --example random_model -- <out-dir> [sd15|sd21|sdxl] [f16|f32] [controlnet] [taesd]`

use std::path::Path;

use mintframe_diffusion::controlnet::ControlNetConfig;
use mintframe_diffusion::{Arch, DType, ModelConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = Path::new(
        args.first()
            .ok_or("usage: random_model OUT_DIR [sd15|sd21|sdxl] [f16|f32] [controlnet] [taesd]")?,
    );
    let has = |w: &str| args.iter().skip(1).any(|a| a == w);
    let arch = if has("sdxl") {
        Arch::Sdxl
    } else if has("sd21") {
        Arch::Sd2
    } else {
        Arch::Sd1
    };
    let dtype = if has("f32") { DType::F32 } else { DType::F16 };
    let config = ModelConfig::preset(arch);
    mintframe_diffusion::tiny::write_random(&out.join("model"), &config, 7, dtype)?;
    if has("taesd") {
        // TAESD's released shape (64 wide) inside the model folder, where `--decoder tiny`
        // looks first.
        mintframe_diffusion::tiny::write_tiny_decoder(
            &out.join("model").join(mintframe_diffusion::taesd::FOLDER),
            64,
            9,
        )?;
    }
    if has("controlnet") {
        mintframe_diffusion::tiny::write_controlnet_config(
            &out.join("controlnet"),
            &ControlNetConfig::for_unet(&config.unet),
            8,
        )?;
    }
    println!("wrote {}", out.display());
    Ok(())
}
