//! Stable Diffusion on candle-core / candle-nn: our own CLIP, UNet and VAE (SD1.x, SD2.x, SDXL,
//! inpainting), DDIM / Euler / Euler ancestral / DPM++ 2M Karras, txt2img / img2img / inpaint
//! pipelines that report progress and stop on cancel, tiled VAE and sliced attention for bounded
//! memory, safetensors-only loading (diffusers folders, A1111 single files, kohya LoRAs), the
//! model manager and tiny random-weight models for tests.
//!
//! candle lives here and nowhere else. The API is synchronous: callers run it on a worker thread.

mod error;

pub mod animate;
mod blas;
pub mod clip;
pub mod config;
pub mod controlnet;
pub mod keymap;
pub mod latents;
pub mod layerdiffuse;
pub mod manager;
pub mod matte;
pub mod memory;
pub mod model;
pub mod motion;
pub mod mutation;
pub mod nn;
pub mod offline;
pub mod onnx;
pub mod pipeline;
pub mod pngio;
pub mod reference;
pub mod rife;
pub mod scheduler;
pub mod taesd;
mod textclean;
pub mod tiny;
pub mod train;
pub mod unet;
pub mod vae;
pub mod weights;

pub use candle_core::{DType, Device, Tensor};
pub use error::{Error, Result};
pub use model::{Arch, LoadOptions, Model, ModelConfig};
pub use nn::Padding;
pub use pipeline::{Generated, Gray, ReferenceImage, Request, Rgb, generate};
pub use scheduler::SchedulerKind;
pub use vae::Tiling;

/// The compute device for `name` (`cpu`, `cuda`, `cuda:N`, `metal`), refusing ones this build
/// was compiled without.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        n if n == "cuda" || n.starts_with("cuda:") => {
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::DeviceUnavailable("cuda".into()));
            }
            let ord = n
                .strip_prefix("cuda:")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            Ok(Device::new_cuda(ord)?)
        }
        "metal" => {
            if !candle_core::utils::metal_is_available() {
                return Err(Error::DeviceUnavailable("metal".into()));
            }
            Ok(Device::new_metal(0)?)
        }
        other => Err(Error::InvalidRequest(format!(
            "unknown device `{other}`; use cpu, cuda, cuda:N or metal"
        ))),
    }
}

/// `f32` or `f16`.
pub fn dtype(name: &str) -> Result<DType> {
    match name {
        "f32" | "fp32" => Ok(DType::F32),
        "f16" | "fp16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        other => Err(Error::InvalidRequest(format!(
            "unknown dtype `{other}`; use f32, f16 or bf16"
        ))),
    }
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        _ => "f32",
    }
}

/// The library the CPU path's f32 GEMMs run in: the machine's OpenBLAS (named), or `None` for
/// candle's own (about half its speed on this project's machines).
pub fn cpu_blas() -> Option<&'static str> {
    blas::in_use()
}

/// Sets the process up for the engine; call first thing in `main`, before any thread starts:
/// glibc keeps freed tensor memory ([`memory::keep_freed_memory`]) and OpenBLAS's idle
/// threads sleep at once instead of spinning (`blas::sleep_when_idle`).
pub fn tune_process() {
    memory::keep_freed_memory();
    blas::sleep_when_idle();
}

#[cfg(test)]
mod parity;
#[cfg(test)]
mod parity_models;
#[cfg(test)]
mod parity_samplers;
#[cfg(test)]
mod tests;
