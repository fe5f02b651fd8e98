use std::path::PathBuf;

/// Everything the diffusion crate can refuse or fail at. Each message names the file, tensor or
/// value at fault and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Cancelled(#[from] mintframe_jobs::Cancelled),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{path} is a pickle checkpoint ({ext}); pickles can run code when loaded, so Mintframe only loads safetensors. Convert it (e.g. with diffusers' conversion scripts) or download the .safetensors release"
    )]
    PickleRefused { path: PathBuf, ext: String },

    #[error(
        "{path} is not a valid safetensors file ({reason}); the file is truncated or corrupt: download or import it again"
    )]
    CorruptWeights { path: PathBuf, reason: String },

    #[error(
        "model folder {folder} has no {component}; run `mintframe models pull` or `mintframe models import` again"
    )]
    MissingComponent { folder: PathBuf, component: String },

    #[error("{file}: tensor `{name}` is missing; these weights are not a {expected} model")]
    MissingTensor {
        file: String,
        name: String,
        expected: String,
    },

    #[error(
        "{file}: tensor `{name}` has shape {found:?} but the model's config needs {expected:?}; the weights do not match config.json"
    )]
    WrongShape {
        file: String,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },

    #[error("{path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },

    #[error("LoRA {path}: {reason}")]
    Lora { path: PathBuf, reason: String },

    #[error(
        "{what} {value} is not divisible by 8; Stable Diffusion works on 8×8 pixel latents: use e.g. {suggestion}"
    )]
    NotDivisibleBy8 {
        what: &'static str,
        value: u32,
        suggestion: u32,
    },

    #[error("{0}")]
    InvalidRequest(String),

    #[error("training checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },

    #[error("{0}")]
    SafetensorsWrite(#[from] safetensors::SafeTensorError),

    #[error(
        "not enough memory: this run needs about {needed_mib} MiB at peak but {available_mib} MiB is available ({detail}); lower the size or batch, use --dtype f16, or free memory"
    )]
    OutOfMemory {
        needed_mib: u64,
        available_mib: u64,
        detail: String,
    },

    #[error("image {path}: {reason}")]
    Image { path: PathBuf, reason: String },

    #[error("model `{0}` is not known; `mintframe models list` shows the ones there are")]
    UnknownModel(String),

    #[error(
        "model `{id}` is not installed; run `mintframe models pull {id}` (online) or `mintframe models import {id} <folder>`"
    )]
    NotInstalled { id: String },

    #[error(
        "cannot download {url}: {reason}. This machine looks offline: on an offline machine, copy the files over and run `mintframe models import <id> <folder>`"
    )]
    Offline { url: String, reason: String },

    #[error(
        "{path}: sha256 is {found}, the manifest says {expected}; the file is damaged or a different release"
    )]
    HashMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },

    #[error(
        "device {0} is not available in this build; rebuild with `--features {0}` or use --device cpu"
    )]
    DeviceUnavailable(String),

    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
