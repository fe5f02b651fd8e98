//! What the parity tests share: how far our output is from a fixture's, and the fixture's
//! UNet (its `unet.*` tensors) built as ours.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::config::UNetConfig;
use crate::keymap::KeyMap;
use crate::nn::Padding;
use crate::train::files::write_safetensors;
use crate::unet::UNet;
use crate::weights::Weights;

pub(crate) fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.max(0))
        .and_then(|t| t.to_scalar::<f32>())
        .expect("max")
}

/// The largest difference relative to the reference's largest magnitude.
pub(crate) fn rel_err(ours: &Tensor, theirs: &Tensor) -> f32 {
    assert_eq!(ours.dims(), theirs.dims());
    max_abs(&(ours - theirs).expect("diff")) / max_abs(theirs).max(1e-12)
}

/// A fixture's UNet (`unet.*`, diffusers names), written to `file` and loaded as ours.
pub(crate) fn fixture_unet(fx: &BTreeMap<String, Tensor>, file: &Path, cfg: &UNetConfig) -> UNet {
    let w: BTreeMap<String, Tensor> = fx
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("unet.").map(|k| (k.to_owned(), v.clone())))
        .collect();
    write_safetensors(file, &w, Default::default()).expect("write");
    let weights = Arc::new(
        Weights::from_files(
            std::slice::from_ref(&file.to_path_buf()),
            KeyMap::Diffusers,
            "unet",
            DType::F32,
            &Device::Cpu,
        )
        .expect("weights"),
    );
    UNet::new(&weights.root(), cfg, Padding::ZEROS).expect("unet")
}

/// The tiny UNet configs the ControlNet fixtures' folders hold (`sd15`, `sdxl`); the reference
/// attention and AnimateDiff fixtures use the same shapes.
pub(crate) fn fixture_unet_config(name: &str) -> UNetConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/controlnet");
    crate::controlnet::ControlNet::load(&dir.join(name), &Default::default())
        .expect("controlnet config")
        .config()
        .unet()
}
