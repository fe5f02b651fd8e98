//! Key names of single-file checkpoints (LDM, OpenCLIP) mapped to diffusers names.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let _ = mintframe_diffusion::keymap::ldm_unet(name, 2, &[false, true, true, true]);
    let _ = mintframe_diffusion::keymap::ldm_vae(name, 4);
    let _ = mintframe_diffusion::keymap::open_clip(name, 1024);
});
