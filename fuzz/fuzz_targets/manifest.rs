//! Model manifests (a user's `<data>/models/manifests/*.json`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = mintframe_diffusion::manager::parse_manifest(text, std::path::Path::new("m.json")) {
        // What parsing admits must be safe to install: a plain id, paths inside the folder.
        assert!(mintframe_diffusion::manager::check_id(&m.id).is_ok());
        // (A name with ".." inside it, like "a..b", stays inside; only a ".." component leaves.)
        for f in &m.files {
            assert!(
                std::path::Path::new(&f.path)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))),
                "{}",
                f.path
            );
        }
    }
});
