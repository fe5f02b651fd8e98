//! Starting noise given from outside (`generate --latents FILE`): what makes a generation
//! comparable, latent for latent, with another tool's run from the same noise.

use std::path::Path;

use candle_core::{DType, Tensor};
use safetensors::tensor::Dtype;

use crate::error::{Error, Result};
use crate::weights::open_safetensors;

/// The name of the one tensor a latents file holds.
pub const LATENTS_TENSOR: &str = "latents";

/// Unit-normal starting noise, `(batch, latent channels, height/8, width/8)`. Each sampler
/// scales it as it scales its own seeded noise (see [`crate::scheduler::Sampler::init_noise`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Latents {
    pub shape: [usize; 4],
    pub data: Vec<f32>,
}

impl Latents {
    /// Reads a safetensors file with one floating-point tensor named `latents`, four dimensions.
    pub fn load(path: &Path) -> Result<Latents> {
        let bad = |reason: String| Error::BadConfig {
            path: path.to_owned(),
            reason,
        };
        let st = open_safetensors(path)?;
        let names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        let view = st.get(LATENTS_TENSOR).map_err(|_| {
            bad(format!(
                "a latents file holds one tensor named `{LATENTS_TENSOR}`; this one has {names:?}"
            ))
        })?;
        let dtype = view.dtype();
        if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64) {
            return Err(bad(format!(
                "`{LATENTS_TENSOR}` is {dtype:?}; latents are floating point (F32, F16, BF16 or F64)"
            )));
        }
        let shape: [usize; 4] = view.shape().try_into().map_err(|_| {
            bad(format!(
                "`{LATENTS_TENSOR}` has shape {:?}; latents are batch × channels × height/8 × width/8",
                view.shape()
            ))
        })?;
        let t = st.load(LATENTS_TENSOR, &candle_core::Device::Cpu)?;
        let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "`{LATENTS_TENSOR}` holds a non-finite value at element {i}"
            )));
        }
        Ok(Latents { shape, data })
    }

    /// The latents of a four-dimensional tensor.
    pub fn from_tensor(t: &Tensor) -> Result<Latents> {
        let shape: [usize; 4] = t.dims().try_into().map_err(|_| {
            Error::InvalidRequest(format!(
                "latents have four dimensions; this tensor has {:?}",
                t.dims()
            ))
        })?;
        let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Latents { shape, data })
    }

    /// Checks the shape against what a request makes, naming both.
    pub fn check(&self, expected: [usize; 4]) -> Result<()> {
        if self.shape == expected {
            return Ok(());
        }
        let [b, c, h, w] = expected;
        Err(Error::InvalidRequest(format!(
            "the latents are {:?} but this request needs {b}×{c}×{h}×{w} (batch {b} × {c} latent \
             channels × height/8 {h} × width/8 {w}): match --batch, --width and --height to the file",
            self.shape
        )))
    }

    pub fn tensor(&self, device: &candle_core::Device, dtype: DType) -> Result<Tensor> {
        Ok(Tensor::from_vec(self.data.clone(), self.shape.to_vec(), device)?.to_dtype(dtype)?)
    }
}
