//! The trait grammar (`Name=Value`, `Name:display_type=Value`), one per line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mintframe_types::TraitSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(specs) = TraitSpec::parse_lines(text) {
        for s in specs {
            assert!(!s.trait_type.trim().is_empty());
        }
    }
    for line in text.lines() {
        let _ = line.parse::<TraitSpec>();
    }
});
