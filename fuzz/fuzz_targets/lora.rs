//! LoRA files: kohya key names (`<layer>.lora_up.weight`, `.lora_down.weight`, `.alpha`) paired.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch(data, "safetensors");
    if let Ok(l) = mintframe_diffusion::weights::Lora::load(&p, 1.0) {
        assert!(l.layers().count() > 0);
    }
});
