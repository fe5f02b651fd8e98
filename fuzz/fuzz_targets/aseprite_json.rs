//! Aseprite sheet JSON (hash and array exports) against a 64×64 sheet.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sheet = mintframe_media::Rgba {
        width: 64,
        height: 64,
        data: vec![7; 64 * 64 * 4],
    };
    if let Ok(seq) = mintframe_media::aseprite_sheet(std::path::Path::new("f.json"), text, sheet) {
        assert_eq!(seq.frames.len(), seq.durations_ms.len());
        for t in &seq.tags {
            assert!(t.from <= t.to && t.to < seq.frames.len());
        }
    }
});
