// Shared by the targets that need a file on disk (the loaders memory-map or open files).

use std::path::PathBuf;

#[allow(dead_code)]
/// Writes `data` to this process's scratch file and returns its path.
pub fn scratch(data: &[u8], ext: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mintframe-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&p, data).expect("the scratch file cannot be written");
    p
}

/// Limits small enough that libFuzzer's memory cap never fires on an input the limits allow:
/// what is fuzzed is that every claimed size meets them before it is allocated.
#[allow(dead_code)]
pub const LIMITS: mintframe_media::Limits = mintframe_media::Limits {
    max_side: 1024,
    max_pixels: 1 << 20,
    max_frames: 64,
    max_decoded_bytes: 64 << 20,
    max_file_bytes: 1 << 20,
};
