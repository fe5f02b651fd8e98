//! The memory preflight: estimates a run's peak memory from the model's config before any weight
//! is read, and picks VAE tiling when the budget (free RAM by default) is short.

use candle_core::DType;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ModelConfig, param_counts};
use crate::vae::Tiling;

/// What a run needs, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    pub weights: u64,
    pub unet_activations: u64,
    pub vae_activations: u64,
    pub baseline: u64,
    pub peak: u64,
    pub tiling: Option<Tiling>,
}

/// What the process holds before any model: code, the tokenizer's tables, allocator slack.
/// Measured on this machine with `mintframe generate` on the tiny model.
const BASELINE_BYTES: u64 = 120 << 20;

/// Live feature maps per (channel × pixel) at the widest UNet level: the resnet's input, its
/// norm (in f32), activation and convolution outputs, and the transformer's GEGLU (8× wide
/// projection, then 4× wide gate and product). Calibrated against measured peak RSS.
const UNET_LIVE_MAPS: f64 = 22.0;
/// Same for the VAE decoder's full-resolution level (channel × pixel).
const VAE_LIVE_MAPS: f64 = 7.0;

fn attention_bytes() -> u64 {
    // Scores, their f32 softmax and the probabilities of one slice.
    3 * crate::nn::ATTENTION_CHUNK_BYTES as u64
}

/// Peak bytes of one run of `config` at `width`×`height`.
pub fn estimate(
    config: &ModelConfig,
    dtype: DType,
    width: u32,
    height: u32,
    batch: usize,
    guidance: bool,
    tiling: Option<Tiling>,
) -> Result<Estimate> {
    let (u, v, t) = param_counts(config)?;
    let elem = dtype.size_in_bytes() as u64;
    let weights = (u + v + t) as u64 * elem;
    let f = config.vae.factor() as u64;
    let (lh, lw) = (u64::from(height) / f, u64::from(width) / f);
    let rows = (batch as u64) * if guidance { 2 } else { 1 };
    // UNet: every skip connection is held until the up path takes it, plus the working set of
    // the widest level.
    let mut skips = 0f64;
    let mut widest = 0f64;
    let (mut h, mut w) = (lh as f64, lw as f64);
    let n = config.unet.block_out_channels.len();
    for (i, c) in config.unet.block_out_channels.iter().enumerate() {
        let maps = *c as f64 * h * w;
        skips += maps * (config.unet.layers_per_block as f64 + if i == 0 { 1.0 } else { 0.0 });
        widest = widest.max(maps);
        if i + 1 < n {
            h = (h / 2.0).ceil();
            w = (w / 2.0).ceil();
            skips += *c as f64 * h * w;
        }
    }
    // f16 runs keep norms and softmax in f32.
    let act_elem = if elem < 4 { 3.0 } else { 4.0 };
    let unet_activations =
        ((skips + UNET_LIVE_MAPS * widest) * rows as f64 * act_elem) as u64 + attention_bytes();
    // VAE decode: its widest level is at full resolution (or a tile's).
    let (ph, pw) = match tiling {
        Some(t) => {
            let tile = (t.tile as u64 * f) as f64;
            (
                (u64::from(height) as f64).min(tile),
                (u64::from(width) as f64).min(tile),
            )
        }
        None => (f64::from(height), f64::from(width)),
    };
    let ch = &config.vae.block_out_channels;
    let c0 = ch.first().copied().unwrap_or(128) as f64;
    let c1 = ch.get(1).copied().unwrap_or(ch[0]) as f64;
    let mut vae_activations =
        ((c1 + VAE_LIVE_MAPS * c0) * ph * pw * act_elem) as u64 + attention_bytes();
    if tiling.is_some() {
        // The blended output and weight maps at full size.
        vae_activations += 2 * 4 * 4 * u64::from(width) * u64::from(height);
    }
    let peak = BASELINE_BYTES + weights + unet_activations.max(vae_activations);
    Ok(Estimate {
        weights,
        unet_activations,
        vae_activations,
        baseline: BASELINE_BYTES,
        peak,
        tiling,
    })
}

/// Free memory now (`MemAvailable`), or `None` where the OS does not say.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Keeps memory the engine frees in the process for its next allocation. Every layer frees
/// and allocates tensors of megabytes; glibc maps each large one fresh from the kernel and
/// unmaps it on free, so each costs page faults and zeroing again: a quarter of a UNet step's
/// CPU time went to the kernel, and this makes a 512² SD 1.5 UNet step about a fifth faster
/// (BENCHMARKS.md) at the same peak. Freed memory at the top of the heap beyond 1 GiB is still
/// given back. Call once at the start of `main`, before threads start; elsewhere than glibc
/// it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets two of glibc's allocator parameters; it is thread-safe and has
    // no memory-safety preconditions.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Drops the pages of `bytes` — a read-only view of a memory-mapped weight file, already
/// copied into a tensor — from this process's resident set. Otherwise every file page read
/// stays resident beside its copy while the model loads, and a model's peak holds its weights
/// twice (8.4 GB for SD 1.5 in f32 where the weights are 4.3 GB).
pub(crate) fn release_mapped_pages(bytes: &[u8]) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sysconf` has no preconditions.
        #[allow(unsafe_code)]
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let start = bytes.as_ptr() as usize;
        // Whole pages inside the view only: a page shared with a neighbour is left for it.
        let first = start.div_ceil(page) * page;
        let end = (start + bytes.len()) / page * page;
        if end > first {
            // SAFETY: the range lies inside a read-only, private file mapping (candle's
            // `MmapedSafetensors`) that outlives this call; MADV_DONTNEED on such a mapping
            // only drops the pages, and a later read faults them in again from the file, so
            // no reader can see different bytes.
            #[allow(unsafe_code)]
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// Peak resident memory of this process so far (`VmHWM`), for benchmarks and the preflight test.
pub fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Decides how to run within `budget` bytes: whole VAE if it fits, tiled if only that fits, or
/// an error naming the need and the budget.
#[allow(clippy::too_many_arguments)]
pub fn preflight(
    config: &ModelConfig,
    dtype: DType,
    width: u32,
    height: u32,
    batch: usize,
    guidance: bool,
    requested: Option<Tiling>,
    budget: u64,
) -> Result<Estimate> {
    let whole = estimate(config, dtype, width, height, batch, guidance, requested)?;
    if whole.peak <= budget {
        return Ok(whole);
    }
    if requested.is_none() {
        let tiled = estimate(
            config,
            dtype,
            width,
            height,
            batch,
            guidance,
            Some(Tiling::DEFAULT),
        )?;
        if tiled.peak <= budget {
            tracing::info!(
                needed_mib = whole.peak >> 20,
                budget_mib = budget >> 20,
                "VAE tiling switched on to fit the memory budget"
            );
            return Ok(tiled);
        }
    }
    Err(Error::OutOfMemory {
        needed_mib: whole.peak >> 20,
        available_mib: budget >> 20,
        detail: format!(
            "weights {} MiB, UNet activations {} MiB, VAE {} MiB at {width}×{height}, batch {batch}",
            whole.weights >> 20,
            whole.unet_activations >> 20,
            whole.vae_activations >> 20
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd15_parameter_counts_are_the_published_ones() {
        let (u, v, t) = param_counts(&ModelConfig::sd15()).expect("count");
        // 859.52 M, 83.65 M and 123.06 M in the diffusers release.
        assert_eq!(u, 859_520_964);
        assert_eq!(v, 83_653_863);
        assert_eq!(t, 123_060_480);
    }

    #[test]
    fn a_short_budget_switches_tiling_on_then_refuses() {
        let cfg = ModelConfig::sd15();
        let whole = estimate(&cfg, DType::F32, 1024, 1024, 1, true, None).expect("e");
        let tiled =
            estimate(&cfg, DType::F32, 1024, 1024, 1, true, Some(Tiling::DEFAULT)).expect("e");
        assert!(tiled.peak < whole.peak);
        let pick = preflight(&cfg, DType::F32, 1024, 1024, 1, true, None, tiled.peak + 1)
            .expect("fits tiled");
        assert_eq!(pick.tiling, Some(Tiling::DEFAULT));
        let err =
            preflight(&cfg, DType::F32, 1024, 1024, 1, true, None, 1 << 30).expect_err("too small");
        let msg = err.to_string();
        assert!(
            msg.contains("not enough memory") && msg.contains("1024 MiB"),
            "{msg}"
        );
    }
}
