//! safetensors headers: a weight file opened as the model loader opens it, every tensor read.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch(data, "safetensors");
    if let Ok(st) = mintframe_diffusion::weights::open_safetensors(&p) {
        for (name, _) in st.tensors() {
            let _ = st.load(&name, &mintframe_diffusion::Device::Cpu);
        }
    }
});
