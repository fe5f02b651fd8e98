//! Where a model's tensors come from. The model code asks for tensors by their diffusers names
//! ([`Vb::get`]); a [`Weights`] answers from safetensors files (a diffusers component, or an
//! A1111/Civitai single-file checkpoint through a key map), with kohya LoRAs merged on the fly, or
//! from a seeded random source (tiny test models, real-size benchmarks).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor, Var};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::error::{Error, Result};
use crate::keymap::{KeyMap, Mapped, Transform};
use crate::nn::Adapter;
use crate::train::LoraPlan;

/// What a [`Weights`] hands out as trainable (candle `Var`s, whose gradients `backward`
/// returns): every tensor it gives (gradient checks against PyTorch, full fine-tuning), and/or a
/// low-rank adapter beside each layer a [`LoraPlan`] targets (LoRA and LoCon training). The
/// variables are recorded by name: a parameter's diffusers name, or an adapter tensor's kohya
/// name (`lora_unet_<layer>.lora_down.weight`, `.lora_up.weight`).
#[derive(Debug, Default)]
pub struct Trainable {
    pub all: bool,
    pub lora: Option<LoraPlan>,
    /// Recompute each block's activations in the backward pass instead of keeping them
    /// (gradient checkpointing): much less memory for about a third more time.
    pub recompute: bool,
    vars: Mutex<BTreeMap<String, Var>>,
    /// Gradients that recomputed blocks found, by name, until the trainer takes them.
    recomputed: Mutex<BTreeMap<String, Tensor>>,
}

impl crate::nn::GradSink for Trainable {
    fn add(&self, grads: &candle_core::backprop::GradStore) {
        let vars = self.vars();
        let Ok(mut acc) = self.recomputed.lock() else {
            return;
        };
        for (name, v) in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let sum = match acc.remove(&name) {
                    Some(prev) => (prev + g).unwrap_or_else(|_| g.clone()),
                    None => g.clone(),
                };
                acc.insert(name, sum);
            }
        }
    }
}

impl Trainable {
    /// Every tensor trainable when `all`, and adapters where `lora` says.
    pub fn new(all: bool, lora: Option<LoraPlan>) -> Arc<Trainable> {
        Arc::new(Trainable {
            all,
            lora,
            ..Trainable::default()
        })
    }

    /// Every tensor of the component trainable.
    pub fn all() -> Arc<Trainable> {
        Arc::new(Trainable {
            all: true,
            ..Trainable::default()
        })
    }

    /// Adapters on the layers `plan` targets; the component's own weights stay frozen.
    pub fn lora(plan: LoraPlan) -> Arc<Trainable> {
        Arc::new(Trainable {
            lora: Some(plan),
            ..Trainable::default()
        })
    }

    /// Adapters where `plan` targets, their blocks recomputed in the backward pass.
    pub fn lora_recomputed(plan: LoraPlan) -> Arc<Trainable> {
        Arc::new(Trainable {
            lora: Some(plan),
            recompute: true,
            ..Trainable::default()
        })
    }

    /// The gradients recomputed blocks found since the last call, by name.
    pub fn take_recomputed(&self) -> BTreeMap<String, Tensor> {
        self.recomputed
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }

    /// The variables handed out so far, by name.
    pub fn vars(&self) -> BTreeMap<String, Var> {
        self.vars.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn record(&self, name: String, var: &Var) {
        if let Ok(mut v) = self.vars.lock() {
            v.insert(name, var.clone());
        }
    }
}

/// Refuses pickle formats by extension before anything reads them.
pub fn refuse_pickle(path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(
        ext.as_str(),
        "ckpt" | "bin" | "pt" | "pth" | "pkl" | "pickle"
    ) {
        return Err(Error::PickleRefused {
            path: path.to_owned(),
            ext: format!(".{ext}"),
        });
    }
    Ok(())
}

/// Opens a safetensors file memory-mapped, checking that its header and every tensor's byte range
/// fit the file, so a truncated download fails here with its name instead of deep in a layer.
pub fn open_safetensors(path: &Path) -> Result<MmapedSafetensors> {
    refuse_pickle(path)?;
    if !path.exists() {
        return Err(Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    // SAFETY: the file is mapped read-only and Mintframe never writes a weight file while a model
    // is loaded from it (pulls and imports write to a temporary name and rename).
    #[allow(unsafe_code)]
    let st = unsafe { MmapedSafetensors::new(path) }.map_err(|e| Error::CorruptWeights {
        path: path.to_owned(),
        reason: short(&e.to_string()),
    })?;
    Ok(st)
}

fn short(s: &str) -> String {
    s.lines().next().unwrap_or(s).chars().take(300).collect()
}

/// One LoRA pair for a layer: `W' = W + scale · (alpha / rank) · up · down`.
#[derive(Debug, Clone)]
struct LoraPair {
    up: Tensor,
    down: Tensor,
    alpha: Option<f32>,
}

/// The kohya-style prefix of a motion adapter's layers (MotionLoRAs name these).
pub const MOTION_LORA_PREFIX: &str = "lora_motion_";

/// A kohya-format LoRA file, merged into the layers it names at load time.
#[derive(Debug, Clone)]
pub struct Lora {
    pub path: PathBuf,
    pub scale: f32,
    pairs: BTreeMap<String, LoraPair>,
}

impl Lora {
    pub fn load(path: &Path, scale: f32) -> Result<Lora> {
        let st = open_safetensors(path)?;
        let bad = |reason: String| Error::Lora {
            path: path.to_owned(),
            reason,
        };
        let names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        if names.iter().any(|n| n.starts_with("hookers.layers.")) {
            return Err(bad(
                "is LayerDiffuse's SD 1.5 attention-sharing module (`hookers.layers.*`): it adds \
                 attention layers of its own rather than merging into the UNet, which Mintframe \
                 does not run yet; for transparent SD 1.5 use the transparent decoder alone, or \
                 an SDXL model with layer_xl_transparent_attn"
                    .into(),
            ));
        }
        if names.iter().any(|n| n.contains("::lora::")) {
            return Lora::load_layerdiffuse(path, &st, &names, scale);
        }
        if names
            .iter()
            .any(|n| n.contains(".processor.") && n.contains("motion_modules."))
        {
            return Lora::load_motion(path, &st, &names, scale);
        }
        let mut ups = BTreeMap::new();
        let mut downs = BTreeMap::new();
        let mut alphas = BTreeMap::new();
        for (name, _) in st.tensors() {
            let t = st
                .load(&name, &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|e| bad(format!("tensor {name}: {e}")))?;
            if let Some(base) = name.strip_suffix(".lora_up.weight") {
                ups.insert(base.to_owned(), t);
            } else if let Some(base) = name.strip_suffix(".lora_down.weight") {
                downs.insert(base.to_owned(), t);
            } else if let Some(base) = name.strip_suffix(".alpha") {
                let a = t
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| bad(format!("alpha {name}: {e}")))?;
                alphas.insert(base.to_owned(), a.first().copied().unwrap_or(1.0));
            } else {
                return Err(bad(format!(
                    "tensor `{name}` is not kohya LoRA format (`<layer>.lora_up.weight`, `.lora_down.weight`, `.alpha`)"
                )));
            }
        }
        if ups.is_empty() {
            return Err(bad("holds no lora_up/lora_down pairs".into()));
        }
        let mut pairs = BTreeMap::new();
        for (base, up) in ups {
            let down = downs
                .remove(&base)
                .ok_or_else(|| bad(format!("`{base}` has lora_up but no lora_down")))?;
            let alpha = alphas.get(&base).copied();
            pairs.insert(base, LoraPair { up, down, alpha });
        }
        Ok(Lora {
            path: path.to_owned(),
            scale,
            pairs,
        })
    }

    /// An AnimateDiff MotionLoRA (`<motion module attention>.processor.to_{q,k,v,out}_lora.
    /// {down,up}.weight`, AnimateDiff's or diffusers' module names, no alpha: the update is
    /// `up·down` times the scale), renamed to [`MOTION_LORA_PREFIX`] + our layer names.
    fn load_motion(
        path: &Path,
        st: &MmapedSafetensors,
        names: &[String],
        scale: f32,
    ) -> Result<Lora> {
        let bad = |reason: String| Error::Lora {
            path: path.to_owned(),
            reason,
        };
        let mut ups = BTreeMap::new();
        let mut downs = BTreeMap::new();
        for name in names {
            let (module, rest) = name.split_once(".processor.").ok_or_else(|| {
                bad(format!(
                    "tensor `{name}` is not MotionLoRA format (`….processor.to_q_lora.down.weight`)"
                ))
            })?;
            let (proj, part) = rest.split_once("_lora.").ok_or_else(|| {
                bad(format!(
                    "tensor `{name}`: expected `to_q_lora.down.weight` and the like"
                ))
            })?;
            let layer = match proj {
                "to_q" | "to_k" | "to_v" => proj.to_owned(),
                "to_out" => "to_out.0".to_owned(),
                other => return Err(bad(format!("tensor `{name}`: no projection `{other}`"))),
            };
            let ours = format!(
                "{}.{layer}",
                crate::keymap::animatediff_to_diffusers(module)
            );
            let key = format!("{MOTION_LORA_PREFIX}{}", ours.replace('.', "_"));
            let t = st
                .load(name, &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|e| bad(format!("tensor {name}: {e}")))?;
            match part {
                "down.weight" => {
                    downs.insert(key, t);
                }
                "up.weight" => {
                    ups.insert(key, t);
                }
                other => return Err(bad(format!("tensor `{name}`: unknown part `{other}`"))),
            }
        }
        let mut pairs = BTreeMap::new();
        for (base, up) in ups {
            let down = downs
                .remove(&base)
                .ok_or_else(|| bad(format!("`{base}` has an up matrix but no down")))?;
            pairs.insert(
                base,
                LoraPair {
                    up,
                    down,
                    alpha: None,
                },
            );
        }
        if pairs.is_empty() {
            return Err(bad("holds no to_*_lora.down/up pairs".into()));
        }
        Ok(Lora {
            path: path.to_owned(),
            scale,
            pairs,
        })
    }

    /// Whether it is a MotionLoRA (its layers are a motion adapter's).
    pub fn is_motion(&self) -> bool {
        self.pairs.keys().all(|k| k.starts_with(MOTION_LORA_PREFIX))
    }

    /// LayerDiffuse's forge layout (`diffusion_model.<ldm path>.weight::lora::0` up and
    /// `::lora::1` down, e.g. `layer_xl_transparent_attn`), renamed to the kohya names of our
    /// diffusers layers.
    fn load_layerdiffuse(
        path: &Path,
        st: &MmapedSafetensors,
        names: &[String],
        scale: f32,
    ) -> Result<Lora> {
        let bad = |reason: String| Error::Lora {
            path: path.to_owned(),
            reason,
        };
        let mut ups = BTreeMap::new();
        let mut downs = BTreeMap::new();
        let mut alphas = BTreeMap::new();
        for name in names {
            let (layer, part) = name
                .rsplit_once("::lora::")
                .ok_or_else(|| bad(format!("tensor `{name}` mixes layouts")))?;
            let ldm = layer
                .strip_prefix("diffusion_model.")
                .and_then(|l| l.strip_suffix(".weight"))
                .ok_or_else(|| {
                    bad(format!(
                        "tensor `{name}` is not `diffusion_model.<layer>.weight::lora::N`"
                    ))
                })?;
            let diffusers = crate::keymap::ldm_unet_to_diffusers(ldm, 2).ok_or_else(|| {
                bad(format!(
                    "`{ldm}` is no attention layer of a Stable Diffusion UNet"
                ))
            })?;
            let kohya = format!("lora_unet_{}", diffusers.replace('.', "_"));
            let t = st
                .load(name, &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|e| bad(format!("tensor {name}: {e}")))?;
            match part {
                "0" => {
                    ups.insert(kohya, t);
                }
                "1" => {
                    downs.insert(kohya, t);
                }
                "2" => {
                    let a = t
                        .flatten_all()
                        .and_then(|t| t.to_vec1::<f32>())
                        .map_err(|e| bad(format!("alpha {name}: {e}")))?;
                    alphas.insert(kohya, a.first().copied().unwrap_or(1.0));
                }
                other => {
                    return Err(bad(format!(
                        "tensor `{name}`: unknown part ::lora::{other}"
                    )));
                }
            }
        }
        let mut pairs = BTreeMap::new();
        for (base, up) in ups {
            let down = downs
                .remove(&base)
                .ok_or_else(|| bad(format!("`{base}` has an up matrix but no down")))?;
            let alpha = alphas.get(&base).copied();
            pairs.insert(base, LoraPair { up, down, alpha });
        }
        if pairs.is_empty() {
            return Err(bad("holds no ::lora::0/::lora::1 pairs".into()));
        }
        Ok(Lora {
            path: path.to_owned(),
            scale,
            pairs,
        })
    }

    /// The width of the text context its cross-attention keys take, if it touches one.
    pub fn context_dim(&self) -> Option<usize> {
        self.pairs
            .iter()
            .find(|(k, _)| k.ends_with("attn2_to_k"))
            .and_then(|(_, p)| p.down.dims().get(1).copied())
    }

    /// The layer names this LoRA touches, in kohya form.
    pub fn layers(&self) -> impl Iterator<Item = &str> {
        self.pairs.keys().map(String::as_str)
    }
}

enum Source {
    Files {
        files: Vec<(PathBuf, MmapedSafetensors)>,
        index: HashMap<String, usize>,
        map: KeyMap,
    },
    /// No data at all: every tensor is a broadcast view of one zero, so a model of any size
    /// can be built to count its parameters (the memory preflight).
    Meta {
        count: std::sync::atomic::AtomicUsize,
    },
    /// Seeded random tensors, optionally recorded so they can be written as a model.
    Random {
        seed: u64,
        record: Option<Mutex<BTreeMap<String, Tensor>>>,
    },
}

/// The tensors of one model component (UNet, VAE or a text encoder).
pub struct Weights {
    source: Source,
    /// The file named in error messages.
    label: String,
    /// What the model is, for "not a {expected} model" messages.
    expected: String,
    /// Kohya prefix of this component (`lora_unet_`, `lora_te_`, ...).
    lora_prefix: String,
    loras: Vec<Lora>,
    used_lora: Mutex<BTreeSet<(usize, String)>>,
    trainable: Option<Arc<Trainable>>,
    /// Convolution and linear weights kept in bf16 for the bf16 kernels (`--dtype bf16` on a
    /// CPU with AVX-512 BF16); everything else, and the activations, in `dtype` (f32).
    gemm_bf16: bool,
    pub dtype: DType,
    pub device: Device,
}

/// What the activations run in for weights asked in `dtype`: bf16 on the CPU means bf16
/// weights for the GEMMs and f32 everywhere else (candle's CPU kernels have no fast bf16).
pub fn activation_dtype(dtype: DType, device: &Device) -> DType {
    if dtype == DType::BF16 && device.is_cpu() {
        DType::F32
    } else {
        dtype
    }
}

/// `(storage dtype, bf16 GEMM weights)` for weights asked in `dtype` on `device`.
fn storage(dtype: DType, device: &Device) -> (DType, bool) {
    if dtype != DType::BF16 || !device.is_cpu() {
        return (dtype, false);
    }
    if mintframe_kernels::bf16::available() {
        return (DType::F32, true);
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!("this CPU has no AVX-512 BF16: bf16 runs in f32 (the portable path)");
    });
    (DType::F32, false)
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("label", &self.label)
            .field("dtype", &self.dtype)
            .finish_non_exhaustive()
    }
}

impl Weights {
    /// Tensors from safetensors files, named by `map` (identity for diffusers folders).
    pub fn from_files(
        paths: &[PathBuf],
        map: KeyMap,
        expected: &str,
        dtype: DType,
        device: &Device,
    ) -> Result<Weights> {
        let mut files = Vec::new();
        let mut index = HashMap::new();
        for (i, p) in paths.iter().enumerate() {
            let st = open_safetensors(p)?;
            for (name, _) in st.tensors() {
                index.insert(name, i);
            }
            files.push((p.clone(), st));
        }
        let label = paths
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let (dtype, gemm_bf16) = storage(dtype, device);
        Ok(Weights {
            source: Source::Files { files, index, map },
            label,
            expected: expected.to_owned(),
            lora_prefix: String::new(),
            loras: Vec::new(),
            used_lora: Mutex::new(BTreeSet::new()),
            trainable: None,
            gemm_bf16,
            dtype,
            device: device.clone(),
        })
    }

    /// Random tensors of whatever shape the model asks for; with `record`, they are kept so
    /// [`Weights::recorded`] can return them for writing to disk.
    pub fn random(seed: u64, record: bool, dtype: DType, device: &Device) -> Weights {
        let (dtype, gemm_bf16) = storage(dtype, device);
        Weights {
            gemm_bf16,
            source: Source::Random {
                seed,
                record: record.then(|| Mutex::new(BTreeMap::new())),
            },
            label: format!("<random seed {seed}>"),
            expected: "random".into(),
            lora_prefix: String::new(),
            loras: Vec::new(),
            used_lora: Mutex::new(BTreeSet::new()),
            trainable: None,
            dtype,
            device: device.clone(),
        }
    }

    /// A source that only counts what is asked of it; see [`Weights::param_count`].
    pub fn meta(dtype: DType) -> Weights {
        Weights {
            source: Source::Meta {
                count: std::sync::atomic::AtomicUsize::new(0),
            },
            label: "<meta>".into(),
            expected: "meta".into(),
            lora_prefix: String::new(),
            loras: Vec::new(),
            used_lora: Mutex::new(BTreeSet::new()),
            trainable: None,
            gemm_bf16: false,
            dtype,
            device: Device::Cpu,
        }
    }

    /// Parameters handed out so far by a [`Weights::meta`] source.
    pub fn param_count(&self) -> usize {
        match &self.source {
            Source::Meta { count } => count.load(std::sync::atomic::Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Merges `loras` into the layers they name; `prefix` is this component's kohya prefix.
    pub fn with_loras(mut self, prefix: &str, loras: Vec<Lora>) -> Weights {
        self.lora_prefix = prefix.to_owned();
        self.loras = loras;
        self
    }

    /// Hands out trainable tensors as `train` says; `prefix` is this component's kohya prefix,
    /// which names its adapters.
    pub fn with_trainable(mut self, prefix: &str, train: Option<Arc<Trainable>>) -> Weights {
        if train.is_some() {
            self.lora_prefix = prefix.to_owned();
        }
        self.trainable = train;
        self
    }

    /// The adapter for `layer` when this component trains one there: `fan_in` is `[in]` for a
    /// linear layer, `[in, k, k]` for a convolution.
    fn adapter(&self, layer: &str, fan_in: &[usize], out: usize) -> Result<Option<Adapter>> {
        let Some(train) = &self.trainable else {
            return Ok(None);
        };
        let Some(plan) = &train.lora else {
            return Ok(None);
        };
        let conv = fan_in.len() == 3;
        if !plan.targets_layer(layer, conv) {
            return Ok(None);
        }
        let key = format!("{}{}", self.lora_prefix, layer.replace('.', "_"));
        let rank = plan.rank;
        let down_shape: Vec<usize> = std::iter::once(rank)
            .chain(fan_in.iter().copied())
            .collect();
        let up_shape: Vec<usize> = if conv {
            vec![out, rank, 1, 1]
        } else {
            vec![out, rank]
        };
        let take = |suffix: &str, shape: &[usize], fresh: &dyn Fn() -> Result<Tensor>| {
            let name = format!("{key}.{suffix}");
            let t = match plan.init.get(&name) {
                Some(t) if t.dims() == shape => t.to_dtype(DType::F32)?,
                Some(t) => {
                    return Err(Error::InvalidRequest(format!(
                        "adapter `{name}` has shape {:?} but this model's layer needs {shape:?}: \
                         the checkpoint belongs to another model or rank",
                        t.dims()
                    )));
                }
                None => fresh()?,
            };
            let var = Var::from_tensor(&t.to_device(&self.device)?)?;
            train.record(name, &var);
            Ok::<Tensor, Error>(var.as_tensor().clone())
        };
        // kohya's initialisation: `down` kaiming-uniform (bound 1/√fan_in), `up` zero, so a
        // fresh adapter changes nothing until it has been trained.
        let fan: usize = fan_in.iter().product();
        let down = take("lora_down.weight", &down_shape, &|| {
            let bound = 1.0 / (fan as f32).sqrt();
            let mut rng = ChaCha8Rng::seed_from_u64(plan.seed ^ fnv1a(&key));
            let n: usize = down_shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|_| ((rng.next_u32() >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0) * bound)
                .collect();
            Ok(Tensor::from_vec(data, down_shape.as_slice(), &Device::Cpu)?)
        })?;
        let up = take("lora_up.weight", &up_shape, &|| {
            Ok(Tensor::zeros(
                up_shape.as_slice(),
                DType::F32,
                &Device::Cpu,
            )?)
        })?;
        Ok(Some(Adapter {
            down,
            up,
            scale: f64::from(plan.alpha) / rank as f64,
        }))
    }

    pub fn root(self: &Arc<Self>) -> Vb {
        Vb {
            weights: Arc::clone(self),
            prefix: String::new(),
        }
    }

    /// The tensors a random source handed out, by name.
    pub fn recorded(&self) -> BTreeMap<String, Tensor> {
        match &self.source {
            Source::Random {
                record: Some(r), ..
            } => r.lock().map(|m| m.clone()).unwrap_or_default(),
            _ => BTreeMap::new(),
        }
    }

    /// LoRA layers that matched no tensor of this component. A layer no component took
    /// belongs to another architecture.
    pub fn unused_lora_layers(&self) -> Vec<(PathBuf, String)> {
        let used = self.used_lora.lock().map(|u| u.clone()).unwrap_or_default();
        let mut out = Vec::new();
        for (i, lora) in self.loras.iter().enumerate() {
            for layer in lora.layers() {
                if !used.contains(&(i, layer.to_owned())) {
                    out.push((lora.path.clone(), layer.to_owned()));
                }
            }
        }
        out
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = match &self.source {
            Source::Files { files, index, map } => {
                let mapped = map.map(name);
                let (key, transform) = match mapped {
                    Mapped::Same => (name.to_owned(), Transform::None),
                    Mapped::To(key, transform) => (key, transform),
                };
                let file_idx = index.get(&key).ok_or_else(|| Error::MissingTensor {
                    file: self.label.clone(),
                    name: key.clone(),
                    expected: self.expected.clone(),
                })?;
                let (path, st) = &files[*file_idx];
                let corrupt = |e: candle_core::Error| Error::CorruptWeights {
                    path: path.clone(),
                    reason: format!("tensor {key}: {}", short(&e.to_string())),
                };
                let t = st.load(&key, &Device::Cpu).map_err(corrupt)?;
                // `load` copied the bytes: the mapped pages need not stay resident.
                crate::memory::release_mapped_pages(st.get(&key).map_err(corrupt)?.data());
                let t = transform.apply(t)?;
                let t = if t.dims() != shape && t.elem_count() == shape.iter().product::<usize>()
                    // ldm stores attention projections as 1×1 convolutions; diffusers as linears.
                    && (t.rank() == 4 || shape.len() == 4)
                {
                    t.reshape(shape)?
                } else {
                    t
                };
                if t.dims() != shape {
                    return Err(Error::WrongShape {
                        file: path.display().to_string(),
                        name: key,
                        found: t.dims().to_vec(),
                        expected: shape.to_vec(),
                    });
                }
                t.to_dtype(DType::F32)?
            }
            Source::Meta { count } => {
                count.fetch_add(
                    shape.iter().product::<usize>(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                return Ok(Tensor::zeros(1, self.dtype, &Device::Cpu)?
                    .reshape(vec![1; shape.len().max(1)])?
                    .broadcast_as(shape)?);
            }
            Source::Random { seed, record } => {
                let t = random_tensor(*seed, name, shape)?;
                if let Some(r) = record
                    && let Ok(mut m) = r.lock()
                {
                    m.insert(name.to_owned(), t.clone());
                }
                t
            }
        };
        let t = self.merge_lora(name, t)?;
        let t = t.to_dtype(self.dtype)?.to_device(&self.device)?;
        match &self.trainable {
            Some(train) if train.all => {
                let var = Var::from_tensor(&t)?;
                train.record(name.to_owned(), &var);
                Ok(var.as_tensor().clone())
            }
            _ => Ok(t),
        }
    }

    fn merge_lora(&self, name: &str, mut w: Tensor) -> Result<Tensor> {
        let Some(layer) = name.strip_suffix(".weight") else {
            return Ok(w);
        };
        if self.loras.is_empty() {
            return Ok(w);
        }
        let kohya = format!("{}{}", self.lora_prefix, layer.replace('.', "_"));
        for (i, lora) in self.loras.iter().enumerate() {
            let Some(pair) = lora.pairs.get(&kohya) else {
                continue;
            };
            let bad = |reason: String| Error::Lora {
                path: lora.path.clone(),
                reason,
            };
            let rank = pair.down.dim(0)?;
            let up = pair.up.flatten_from(1)?;
            let down = pair.down.flatten_from(1)?;
            let scale = lora.scale * pair.alpha.map(|a| a / rank as f32).unwrap_or(1.0);
            let delta = up.matmul(&down).map_err(|e| bad(format!("{kohya}: {e}")))?;
            if delta.elem_count() != w.elem_count() || delta.dim(0)? != w.dim(0)? {
                return Err(bad(format!(
                    "layer `{kohya}` has shape {:?} but the model's `{name}` is {:?}: this LoRA was made for another architecture",
                    delta.dims(),
                    w.dims()
                )));
            }
            let delta = delta.reshape(w.dims())?.affine(f64::from(scale), 0.0)?;
            w = (w + delta)?;
            if let Ok(mut used) = self.used_lora.lock() {
                used.insert((i, kohya.clone()));
            }
        }
        Ok(w)
    }
}

/// Deterministic random weights: the same (seed, name, shape) always gives the same tensor.
/// Scales follow the usual initialisations so activations stay finite through a real-size model.
fn random_tensor(seed: u64, name: &str, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let leaf = name.rsplit('.').next().unwrap_or(name);
    let is_norm = name.contains("norm") || name.contains("ln_");
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(name));
    let data: Vec<f32> = if is_norm && leaf == "weight" {
        (0..n).map(|_| 1.0 + 0.05 * normal(&mut rng)).collect()
    } else if leaf == "bias" {
        (0..n).map(|_| 0.02 * normal(&mut rng)).collect()
    } else {
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let std = if name.contains("embedding") {
            0.02
        } else {
            (1.0 / fan_in as f32).sqrt()
        };
        (0..n).map(|_| std * normal(&mut rng)).collect()
    };
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A standard normal sample (Box–Muller) from a seeded generator, so noise is the same on every
/// backend and every platform.
pub fn normal(rng: &mut ChaCha8Rng) -> f32 {
    // 24 random bits give a uniform in (0, 1] without ever hitting 0 (ln(0) = -inf).
    let u1 = ((rng.next_u32() >> 8) as f64 + 1.0) / 16_777_216.0;
    let u2 = (rng.next_u32() >> 8) as f64 / 16_777_216.0;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` standard normal samples from `seed`.
pub fn normal_vec(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| normal(&mut rng)).collect()
}

/// A path into a [`Weights`], like candle-nn's VarBuilder but with our errors.
#[derive(Clone)]
pub struct Vb {
    weights: Arc<Weights>,
    prefix: String,
}

impl std::fmt::Debug for Vb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vb({})", self.prefix)
    }
}

impl Vb {
    pub fn pp(&self, s: impl std::fmt::Display) -> Vb {
        let prefix = if self.prefix.is_empty() {
            s.to_string()
        } else {
            format!("{}.{s}", self.prefix)
        };
        Vb {
            weights: Arc::clone(&self.weights),
            prefix,
        }
    }

    pub fn get(&self, shape: &[usize], name: &str) -> Result<Tensor> {
        let full = if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        };
        self.weights.get(&full, shape)
    }

    /// A convolution's or linear layer's weight `(out, in…)`: in bf16 when its component keeps
    /// GEMM weights in bf16 and the kernels can take it (an even `in…` product: pairs), else as
    /// [`Vb::get`] gives it.
    pub fn gemm_weight(&self, shape: &[usize], name: &str) -> Result<Tensor> {
        let t = self.get(shape, name)?;
        let k: usize = shape.iter().skip(1).product();
        let frozen = self.weights.trainable.is_none() && !t.track_op();
        if self.weights.gemm_bf16 && frozen && k.is_multiple_of(2) && t.device().is_cpu() {
            Ok(t.to_dtype(DType::BF16)?)
        } else {
            Ok(t)
        }
    }

    /// Where recomputed blocks send their gradients, when this component recomputes them.
    pub fn recompute_sink(&self) -> Option<Arc<dyn crate::nn::GradSink>> {
        match &self.weights.trainable {
            Some(t) if t.recompute => Some(Arc::clone(t) as Arc<dyn crate::nn::GradSink>),
            _ => None,
        }
    }

    /// The trainable adapter for this layer, if its component trains one here.
    pub fn adapter(&self, fan_in: &[usize], out: usize) -> Result<Option<Adapter>> {
        self.weights.adapter(&self.prefix, fan_in, out)
    }

    pub fn dtype(&self) -> DType {
        self.weights.dtype
    }

    pub fn device(&self) -> &Device {
        &self.weights.device
    }
}
