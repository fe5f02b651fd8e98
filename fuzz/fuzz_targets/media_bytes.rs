//! Image import: PNG, GIF, WebP and .aseprite bytes through the guarded decoders.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(seq) = mintframe_media::decode_bytes(data, &common::LIMITS) {
        for f in &seq.frames {
            assert_eq!(f.data.len(), f.width as usize * f.height as usize * 4);
            assert!(u64::from(f.width) * u64::from(f.height) <= common::LIMITS.max_pixels);
        }
        assert!(seq.frames.len() <= common::LIMITS.max_frames);
    }
});
