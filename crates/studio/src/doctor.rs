//! `mintframe doctor` and the studio's first screen: what this machine gives Mintframe, found by
//! asking each component for real (wgpu enumerates adapters, FFmpeg looks up encoders, the IPFS
//! node answers `version`, the data folder takes a write).

use std::path::Path;
use std::time::Duration;

use mintframe_types::{Check, CheckStatus, DoctorReport};

use crate::Settings;

const LOW_SPACE_BYTES: u64 = 2 << 30;

/// Runs every check; never fails, since a failing component is what the report is for.
pub async fn doctor(settings: &Settings) -> DoctorReport {
    let gpu = tokio::task::spawn_blocking(gpu_check);
    let ffmpeg = tokio::task::spawn_blocking(ffmpeg_check);
    let data_dir = settings.data_dir.clone();
    let data = tokio::task::spawn_blocking(move || data_check(&data_dir));
    let ipfs = ipfs_check(settings).await;
    let joined = |r: Result<Check, tokio::task::JoinError>, component: &str| {
        r.unwrap_or_else(|e| {
            Check::new(
                component,
                CheckStatus::Missing,
                format!("check crashed: {e}"),
            )
        })
    };
    DoctorReport {
        app_version: env!("CARGO_PKG_VERSION").to_owned(),
        checks: vec![
            cpu_check(),
            joined(gpu.await, "gpu"),
            joined(ffmpeg.await, "ffmpeg"),
            ipfs,
            joined(data.await, "data"),
        ],
    }
}

fn cpu_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { found.push($f); } )* };
        }
        probe!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bf16"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_aarch64_feature_detected!($f) { found.push($f); } )* };
        }
        probe!("neon", "fp16", "bf16");
    }
    found
}

fn cpu_check() -> Check {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let features = cpu_features();
    // Half the CPU engine's speed rides on the GEMM library (BENCHMARKS.md).
    let (status, gemm) = match mintframe_diffusion::cpu_blas() {
        Some(lib) => (CheckStatus::Ok, format!("OpenBLAS, {lib}")),
        None => (
            CheckStatus::Warning,
            "candle's own (no OpenBLAS found, or MINTFRAME_BLAS=off): CPU generation runs about \
             half as fast; `apt install libopenblas0-pthread` (scripts/setup does)"
                .to_owned(),
        ),
    };
    Check::new(
        "cpu",
        status,
        format!("{cores} cores, {}", features.join(" ")),
    )
    .detail("gemm", gemm)
    .detail("model", model)
    .detail("arch", std::env::consts::ARCH)
    .detail("cores", cores.to_string())
    .detail("features", features.join(" "))
}

/// The GPU check covers both users of a GPU: generation (compute backends built in) and
/// previews (the adapter wgpu renders on; Mesa's lavapipe counts, it is how headless renders run
/// on a machine with no GPU).
fn gpu_check() -> Check {
    let mintframe_render::Adapters {
        all: adapters,
        preferred,
    } = mintframe_render::adapters();
    let nvidia = std::fs::read_to_string("/proc/driver/nvidia/version")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned));
    let compute = "cpu (cuda and metal are cargo features of the diffusion engine, not built in)";
    let mut check = match &preferred {
        Some(a) => Check::new(
            "gpu",
            CheckStatus::Ok,
            format!("renders on {} ({}, {})", a.name, a.backend, a.device_type),
        ),
        None => Check::new(
            "gpu",
            CheckStatus::Missing,
            "wgpu found no adapter: install Mesa's Vulkan drivers (mesa-vulkan-drivers) for CPU rendering",
        ),
    };
    check = check.detail("generation backends", compute);
    if let Some(n) = nvidia {
        check = check.detail("nvidia driver", n);
    }
    for a in adapters {
        check = check.detail(
            format!("adapter {}", a.backend),
            format!("{} ({}; {})", a.name, a.device_type, a.driver),
        );
    }
    check
}

fn ffmpeg_check() -> Check {
    match mintframe_media::ffmpeg_info() {
        Ok(info) => {
            let missing = info.missing_encoders();
            let avcodec = info
                .libraries
                .iter()
                .find(|(n, _)| *n == "libavcodec")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let mut check = if missing.is_empty() {
                Check::new(
                    "ffmpeg",
                    CheckStatus::Ok,
                    format!(
                        "libavcodec {avcodec}, encoders {}",
                        encoders_list(&info.encoders)
                    ),
                )
            } else {
                Check::new(
                    "ffmpeg",
                    CheckStatus::Warning,
                    format!(
                        "libavcodec {avcodec} lacks {}: install an FFmpeg built with them",
                        missing.join(", ")
                    ),
                )
            };
            for (lib, v) in &info.libraries {
                check = check.detail(*lib, v.clone());
            }
            for (enc, found) in &info.encoders {
                check = check.detail(
                    format!("encoder {enc}"),
                    if *found { "found" } else { "missing" },
                );
            }
            check
        }
        Err(e) => Check::new("ffmpeg", CheckStatus::Missing, e.to_string()),
    }
}

fn encoders_list(encoders: &[(&str, bool)]) -> String {
    encoders
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn ipfs_check(settings: &Settings) -> Check {
    let api = match settings.api() {
        Ok(a) => a,
        Err(e) => return Check::new("ipfs", CheckStatus::Missing, e.to_string()),
    };
    let repo = settings.ipfs_repo();
    let binary = mintframe_publish::find_node_binary_for(Some(&repo))
        .map(|b| format!("{} ({:?})", b.path.display(), b.flavor))
        .unwrap_or_else(|| {
            if mintframe_publish::node::packaged_node_manifest().is_some() {
                "set up on first start (npm)".to_owned()
            } else {
                "none installed".to_owned()
            }
        });
    match mintframe_publish::node_version(&api, Duration::from_secs(5)).await {
        Ok(v) => Check::new(
            "ipfs",
            CheckStatus::Ok,
            format!("{} {} at {api}", v.implementation, v.version),
        )
        .detail("api", api.to_string())
        .detail("loopback only", api.is_loopback().to_string())
        .detail("repo version", v.repo)
        .detail("node program", binary),
        Err(e) => Check::new("ipfs", CheckStatus::Missing, e.to_string())
            .detail("api", api.to_string())
            .detail("node program", binary),
    }
}

fn data_check(dir: &Path) -> Check {
    let probe = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let p = dir.join(format!(".doctor-probe-{}", std::process::id()));
        std::fs::write(&p, b"probe")?;
        std::fs::remove_file(&p)
    };
    let free = fs4::available_space(dir).ok();
    let free_text = free.map_or_else(|| "unknown".to_owned(), human_bytes);
    let check = match (probe(), free) {
        (Err(e), _) => Check::new(
            "data",
            CheckStatus::Missing,
            format!(
                "cannot write to {}: {e}; choose another folder with --data-dir or MINTFRAME_DATA_DIR",
                dir.display()
            ),
        ),
        (Ok(()), Some(f)) if f < LOW_SPACE_BYTES => Check::new(
            "data",
            CheckStatus::Warning,
            format!("{} has only {free_text} free", dir.display()),
        ),
        (Ok(()), _) => Check::new(
            "data",
            CheckStatus::Ok,
            format!("{} ({free_text} free)", dir.display()),
        ),
    };
    check
        .detail("path", dir.display().to_string())
        .detail("free", free_text)
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_wrote_them() {
        assert_eq!(human_bytes(512), "512.0 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[tokio::test]
    async fn an_unwritable_data_dir_is_reported_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A data dir below a regular file can never be created, even by root.
        let blocker = dir.path().join("not-a-folder");
        std::fs::write(&blocker, b"x").expect("write");
        let settings = Settings {
            data_dir: blocker.join("mintframe"),
            ipfs_api: "http://127.0.0.1:1".to_owned(),
            start_node_on_demand: false,
        };
        let report = doctor(&settings).await;
        let data = report
            .checks
            .iter()
            .find(|c| c.component == "data")
            .expect("data check");
        assert_eq!(data.status, CheckStatus::Missing);
        assert!(
            data.summary.contains("not-a-folder/mintframe"),
            "{}",
            data.summary
        );
        let ipfs = report
            .checks
            .iter()
            .find(|c| c.component == "ipfs")
            .expect("ipfs check");
        assert_eq!(ipfs.status, CheckStatus::Missing);
        assert!(
            ipfs.summary.contains("mintframe ipfs start"),
            "{}",
            ipfs.summary
        );
    }
}
