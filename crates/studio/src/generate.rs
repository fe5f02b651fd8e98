//! Generation as a user does it: defaults from the model's manifest, a memory preflight, the
//! pipeline under the job's progress and cancel, and every image stored in the library with its
//! recipe (in the database and inside the PNG).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mintframe_diffusion::latents::Latents;
use mintframe_diffusion::manager::{Manager, Resolved};
use mintframe_diffusion::memory::{available_bytes, preflight};
use mintframe_diffusion::pngio::encode_png;
use mintframe_diffusion::taesd::TinyDecoder;
use mintframe_diffusion::{DType, LoadOptions, Model, Padding, Request, Tiling, device};
use mintframe_jobs::JobCtx;
use mintframe_library::{Library, NewAsset, NewFile};
use mintframe_types::{
    AssetId, AssetKind, Decoder, GenerateSpec, JobId, ModelInfo, Recipe, RecipeLora, Scheduler,
    SeamlessAxes, WeightFile,
};

use crate::StudioError;

/// The models folder inside a data folder.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

/// What the manager knows, as the UI and `models list` show it.
pub fn model_infos(manager: &Manager) -> Result<Vec<ModelInfo>, StudioError> {
    Ok(manager
        .list()?
        .into_iter()
        .map(|e| {
            let m = e.manifest;
            ModelInfo {
                addon: m.layout == mintframe_diffusion::manager::Layout::Layerdiffuse,
                installed: e.installed.is_some() || m.builtin,
                license: m.license.label(),
                license_url: m.license.url.clone(),
                license_summary: m.license.summary.clone(),
                commercial: m.license.commercial,
                arch: m.arch.as_str().to_owned(),
                default_scheduler: m.defaults.scheduler,
                default_steps: m.defaults.steps,
                default_guidance: m.defaults.guidance,
                default_width: m.defaults.width,
                default_height: m.defaults.height,
                id: m.id,
                name: m.name,
                description: m.description,
            }
        })
        .collect())
}

/// Fills every left-out setting from the model's manifest (or SD 1.5's defaults for a path) and
/// fixes the seed, so the stored job reproduces exactly.
pub fn complete_spec(
    manager: &Manager,
    mut spec: GenerateSpec,
) -> Result<GenerateSpec, StudioError> {
    check_numbers(&spec)?;
    if spec.model.is_empty() {
        spec.model = mintframe_diffusion::offline::DEFAULT_MODEL.to_owned();
    }
    let defaults = manager.manifest(&spec.model).ok().map(|m| m.defaults);
    // A path has no manifest: SD 1.5's, from the manager's one table of defaults.
    let d = defaults.unwrap_or_else(|| {
        mintframe_diffusion::manager::default_for(mintframe_diffusion::Arch::Sd1)
    });
    // img2img: the init image's size unless the user gave one.
    if let Some(p) = &spec.init_image
        && spec.width.is_none()
        && spec.height.is_none()
    {
        let img = read_rgb(Path::new(p))?;
        spec.width = Some(img.width);
        spec.height = Some(img.height);
    }
    spec.steps.get_or_insert(d.steps);
    spec.guidance.get_or_insert(d.guidance);
    spec.width.get_or_insert(d.width);
    spec.height.get_or_insert(d.height);
    spec.scheduler.get_or_insert(d.scheduler);
    spec.batch.get_or_insert(1);
    spec.dtype.get_or_insert(mintframe_types::DType::F32);
    spec.device.get_or_insert_with(|| "cpu".into());
    spec.seed.get_or_insert_with(fresh_seed);
    // Cheap checks now, so a bad request fails at submit and not minutes into a queue.
    if spec.prompt.trim().is_empty() {
        return Err(StudioError::Diffusion(
            mintframe_diffusion::Error::InvalidRequest(
                "the prompt is empty: describe what to generate".into(),
            ),
        ));
    }
    let probe = Request {
        width: spec.width.unwrap_or(512),
        height: spec.height.unwrap_or(512),
        steps: spec.steps.unwrap_or(1) as usize,
        batch: spec.batch.unwrap_or(1) as usize,
        strength: f64::from(spec.strength.unwrap_or(0.75)),
        ..Request::default()
    };
    probe.validate(8)?;
    for c in &spec.controls {
        if !Path::new(&c.controlnet).exists() {
            return Err(StudioError::NotFound(format!(
                "ControlNet {}",
                c.controlnet
            )));
        }
        crate::control::condition(c, probe.width, probe.height)?;
    }
    Ok(spec)
}

/// A generation after [`complete_spec`]: every setting the pipeline needs. A job row that lacks
/// one was not submitted through `complete_spec` and is refused rather than guessed at.
#[derive(Debug, Clone)]
struct Settled {
    seed: u64,
    steps: u32,
    guidance: f32,
    width: u32,
    height: u32,
    scheduler: Scheduler,
    batch: u32,
    dtype: mintframe_types::DType,
    device: String,
}

impl Settled {
    fn of(spec: &GenerateSpec) -> Result<Settled, StudioError> {
        let missing = |what: &str| {
            StudioError::Diffusion(mintframe_diffusion::Error::InvalidRequest(format!(
                "the job has no {what}: it was not completed at submit"
            )))
        };
        Ok(Settled {
            seed: spec.seed.ok_or_else(|| missing("seed"))?,
            steps: spec.steps.ok_or_else(|| missing("step count"))?,
            guidance: spec.guidance.ok_or_else(|| missing("guidance"))?,
            width: spec.width.ok_or_else(|| missing("width"))?,
            height: spec.height.ok_or_else(|| missing("height"))?,
            scheduler: spec.scheduler.ok_or_else(|| missing("scheduler"))?,
            batch: spec.batch.ok_or_else(|| missing("batch size"))?,
            dtype: spec.dtype.ok_or_else(|| missing("dtype"))?,
            device: spec.device.clone().ok_or_else(|| missing("device"))?,
        })
    }
}

/// A seed for a job that was given none, fixed at submit so a resumed job redoes the same work.
/// Seeds stay below 2^53 so the UI's JavaScript numbers hold them exactly.
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (t ^ u64::from(std::process::id()).rotate_left(32)) & ((1 << 53) - 1)
}

pub(crate) fn candle_dtype(d: mintframe_types::DType) -> DType {
    match d {
        mintframe_types::DType::F32 => DType::F32,
        mintframe_types::DType::F16 => DType::F16,
        mintframe_types::DType::Bf16 => DType::BF16,
    }
}

/// The last model loaded, kept so a studio session does not reload gigabytes per job.
#[derive(Default)]
pub struct ModelCache {
    slot: Mutex<Option<(String, Arc<Model>)>>,
}

impl std::fmt::Debug for ModelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCache").finish_non_exhaustive()
    }
}

impl ModelCache {
    /// Drops the cached model (a training run loads its own).
    pub fn clear(&self) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn get(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<Model, StudioError>,
    ) -> Result<Arc<Model>, StudioError> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, m)) = slot.as_ref()
            && k == key
        {
            return Ok(Arc::clone(m));
        }
        // Drop the old model first: two resident models may not fit.
        *slot = None;
        let m = Arc::new(load()?);
        *slot = Some((key.to_owned(), Arc::clone(&m)));
        Ok(m)
    }
}

pub(crate) fn backend_name(dev: &mintframe_diffusion::Device) -> String {
    match dev {
        mintframe_diffusion::Device::Cpu => "candle-cpu".into(),
        mintframe_diffusion::Device::Cuda(_) => "candle-cuda".into(),
        mintframe_diffusion::Device::Metal(_) => "candle-metal".into(),
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The A1111 `parameters` text: the format other tools (and civitai) read back.
fn a1111_parameters(r: &Recipe) -> String {
    let mut line = format!(
        "Steps: {}, Sampler: {}, CFG scale: {}, Seed: {}, Size: {}x{}, Model: {}",
        r.steps,
        r.scheduler.a1111_name(),
        r.guidance,
        r.seed,
        r.width,
        r.height,
        r.model_id
    );
    if let Some(f) = r
        .model_files
        .iter()
        .find(|f| f.path.contains("unet") || r.model_files.len() == 1)
    {
        line.push_str(&format!(
            ", Model hash: {}",
            &f.sha256[..10.min(f.sha256.len())]
        ));
    }
    if let Some(s) = r.strength {
        line.push_str(&format!(", Denoising strength: {s}"));
    }
    if r.tiling {
        line.push_str(", Tiling: True");
    }
    for l in &r.loras {
        line.push_str(&format!(", Lora: {} {}", l.file.path, l.strength));
    }
    if let Some(lic) = &r.license {
        line.push_str(&format!(", License: {lic}"));
    }
    line.push_str(&format!(", Version: mintframe {}", r.app_version));
    let mut text = r.prompt.clone();
    if !r.negative_prompt.is_empty() {
        text.push_str(&format!("\nNegative prompt: {}", r.negative_prompt));
    }
    text.push('\n');
    text.push_str(&line);
    text
}

/// Everything a generation job needs from the studio.
#[derive(Debug)]
pub struct Generator<'a> {
    pub library: &'a Library,
    pub manager: &'a Manager,
    pub cache: &'a ModelCache,
}

impl Generator<'_> {
    /// The tiny autoencoder a spec asks for (`decoder` tiny, or a `path`), loaded on the
    /// model's device: the path given, else the one the manager finds for the model.
    pub(crate) fn tiny_decoder(
        &self,
        decoder: Option<Decoder>,
        path: Option<&str>,
        resolved: &Resolved,
        model: &Model,
        ctx: &JobCtx,
    ) -> Result<Option<(PathBuf, Arc<TinyDecoder>)>, StudioError> {
        if decoder != Some(Decoder::Tiny) && path.is_none() {
            return Ok(None);
        }
        let path = match path {
            Some(p) => PathBuf::from(p),
            None => self.manager.tiny_decoder(resolved, model.config.arch)?,
        };
        ctx.progress("load tiny decoder", 0, 1);
        let loaded = TinyDecoder::load(&path, DType::F32, &model.device)?;
        Ok(Some((path, Arc::new(loaded))))
    }

    /// The model `id` (or path) without LoRAs or seamless padding, from the cache when it is
    /// the one loaded last.
    pub(crate) fn load_plain(
        &self,
        id: &str,
        dtype: mintframe_types::DType,
        device_name: &str,
        ctx: &JobCtx,
    ) -> Result<(Resolved, Arc<Model>), StudioError> {
        let resolved = self.manager.resolve(id, ctx)?;
        let dt = candle_dtype(dtype);
        let dev = device(device_name)?;
        let key = format!(
            "{}|{}|{:?}|{:?}|{:?}",
            resolved.location.display(),
            dtype,
            dev.location(),
            Padding::ZEROS,
            Vec::<(PathBuf, f32)>::new()
        );
        let model = self.cache.get(&key, || {
            ctx.progress("load model", 0, 1);
            Ok(resolved.load(&LoadOptions {
                dtype: dt,
                device: dev.clone(),
                padding: Padding::ZEROS,
                loras: Vec::new(),
                train: None,
            })?)
        })?;
        Ok((resolved, model))
    }

    /// Inpaints each image where its mask is white with `spec`'s model, prompt and settings
    /// (already completed); item i uses seed + i. Nothing is stored: the caller keeps the
    /// images (a tileset's seams).
    pub fn inpaint_in_memory(
        &self,
        spec: &GenerateSpec,
        items: &[(mintframe_diffusion::Rgb, mintframe_diffusion::Gray)],
        ctx: &JobCtx,
    ) -> Result<Vec<mintframe_diffusion::Rgb>, StudioError> {
        let settled = Settled::of(spec)?;
        let (_, model) = self.load_plain(&spec.model, settled.dtype, &settled.device, ctx)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, (init, mask)) in items.iter().enumerate() {
            ctx.check().map_err(mintframe_diffusion::Error::from)?;
            let req = Request {
                prompt: spec.prompt.clone(),
                negative_prompt: spec.negative_prompt.clone(),
                seed: settled.seed + i as u64,
                steps: settled.steps as usize,
                guidance: f64::from(settled.guidance),
                width: init.width,
                height: init.height,
                scheduler: settled.scheduler,
                batch: 1,
                strength: f64::from(spec.strength.unwrap_or(0.75)),
                init_image: Some(init.clone()),
                mask: Some(mask.clone()),
                vae_tiling: None,
                between: None,
                latents: None,
                tiny_decoder: None,
            };
            req.validate(8)?;
            let mut images = mintframe_diffusion::generate(&model, &req, ctx, None)?;
            out.push(images.remove(0).image);
        }
        Ok(out)
    }

    /// Runs `spec` (already completed) and adds one asset per image not yet made (`done` of them
    /// exist from an earlier, interrupted run of the same job).
    pub fn run(
        &self,
        job: &JobId,
        spec: &GenerateSpec,
        done: usize,
        ctx: &JobCtx,
    ) -> Result<Vec<AssetId>, StudioError> {
        let settled = Settled::of(spec)?;
        let resolved = self.manager.resolve(&spec.model, ctx)?;
        let dt = candle_dtype(settled.dtype);
        let dev = device(&settled.device)?;
        let padding = match (spec.seamless, spec.wrap) {
            (false, _) => Padding::ZEROS,
            (true, None | Some(SeamlessAxes::Both)) => Padding::CIRCULAR,
            (true, Some(SeamlessAxes::X)) => Padding {
                circular_x: true,
                circular_y: false,
            },
            (true, Some(SeamlessAxes::Y)) => Padding {
                circular_x: false,
                circular_y: true,
            },
        };
        let mut loras: Vec<(PathBuf, f32)> = spec
            .loras
            .iter()
            .map(|l| (PathBuf::from(&l.path), l.strength))
            .collect();
        // A LayerDiffuse add-on by id: its attention joins the LoRAs, its decoder reads alpha.
        let addon = match &spec.transparent {
            Some(t) if !Path::new(&t.decoder).is_file() => {
                Some(self.manager.transparency(&t.decoder)?)
            }
            _ => None,
        };
        if let Some(a) = &addon {
            // Known before anything loads: the add-on's base against the model's manifest.
            if let Ok(m) = self.manager.manifest(&spec.model)
                && m.arch != a.arch
            {
                return Err(StudioError::Settings(format!(
                    "`{}` is LayerDiffuse for {} but `{}` is {}: use the add-on made for this model's base",
                    a.id,
                    a.arch.as_str(),
                    spec.model,
                    m.arch.as_str()
                )));
            }
            if let Some(att) = a.attention.clone() {
                loras.push((att, 1.0));
            }
        }
        let batch = settled.batch as usize;
        let width = settled.width;
        let height = settled.height;
        let guidance = settled.guidance;
        let mut req = Request {
            prompt: spec.prompt.clone(),
            negative_prompt: spec.negative_prompt.clone(),
            seed: settled.seed,
            steps: settled.steps as usize,
            guidance: f64::from(guidance),
            width,
            height,
            scheduler: settled.scheduler,
            batch,
            strength: f64::from(spec.strength.unwrap_or(0.75)),
            init_image: None,
            mask: None,
            vae_tiling: spec.vae_tiling.then_some(Tiling::DEFAULT),
            between: None,
            latents: None,
            tiny_decoder: None,
        };
        let mut init_sha = None;
        let mut mask_sha = None;
        if let Some(p) = &spec.init_image {
            let img = read_rgb(Path::new(p))?;
            init_sha = Some(sha256_hex(&img.data));
            req.init_image = Some(img);
        }
        if let Some(p) = &spec.mask {
            let m = read_gray(Path::new(p))?;
            mask_sha = Some(sha256_hex(&m.data));
            req.mask = Some(m);
        }
        if let Some(p) = &spec.latents {
            req.latents = Some(Latents::load(Path::new(p))?);
        }
        // Validate before loading: a bad size costs nothing.
        req.validate(8)?;

        let key = format!(
            "{}|{}|{:?}|{:?}|{:?}",
            resolved.location.display(),
            settled.dtype,
            dev.location(),
            padding,
            loras
        );
        let model = self.cache.get(&key, || {
            ctx.progress("load model", 0, 1);
            let opts = LoadOptions {
                dtype: dt,
                device: dev.clone(),
                padding,
                loras: loras.clone(),
                train: None,
            };
            Ok(resolved.load(&opts)?)
        })?;
        ctx.check().map_err(mintframe_diffusion::Error::from)?;
        if dev.is_cpu() {
            // The loaded weights are already resident, so they count as available.
            let budget = match spec.memory_budget_mib {
                Some(mib) => mib << 20,
                None => available_bytes()
                    .unwrap_or(u64::MAX)
                    .saturating_add(weight_bytes(&model.config, dt)),
            };
            let est = preflight(
                &model.config,
                dt,
                width,
                height,
                batch,
                guidance > 1.0,
                req.vae_tiling,
                budget,
            )?;
            req.vae_tiling = est.tiling;
        }
        let mut tiny_recipe = None;
        if let Some((path, decoder)) = self.tiny_decoder(
            spec.decoder,
            spec.tiny_decoder.as_deref(),
            &resolved,
            &model,
            ctx,
        )? {
            let file = if path.is_dir() {
                path.join("diffusion_pytorch_model.safetensors")
            } else {
                path.clone()
            };
            let (sha256, _) =
                mintframe_diffusion::manager::sha256_file(&file, ctx, "hash tiny decoder")?;
            tiny_recipe = Some(WeightFile {
                path: path.display().to_string(),
                sha256,
            });
            req.tiny_decoder = Some(decoder);
        }
        // The latent preview (1/8 of the size, microseconds a step) for a progress view, or
        // the tiny decoder's image when one decodes.
        let preview = |_step: usize, rgb: &mintframe_diffusion::Rgb| {
            if let Ok(png) = encode_png(rgb, &[]) {
                ctx.preview(&png);
            }
        };
        let preview_fn: Option<mintframe_diffusion::pipeline::PreviewFn<'_>> =
            ctx.wants_preview().then_some(&preview);
        let prepared = if spec.controls.is_empty() {
            None
        } else {
            ctx.progress("load ControlNet", 0, 1);
            Some(crate::control::prepare(
                &spec.controls,
                width,
                height,
                &model,
                padding,
            )?)
        };
        let controls = prepared
            .as_ref()
            .map(crate::control::Prepared::controls)
            .unwrap_or_default();
        let images = mintframe_diffusion::pipeline::generate_controlled(
            &model, &req, &controls, ctx, preview_fn,
        )?;

        let mut recipe_base = self.recipe(
            &resolved, spec, &settled, &model, init_sha, mask_sha, &loras,
        )?;
        if let Some(p) = &prepared {
            recipe_base.controls = p.recipe.clone();
        }
        if let Some(l) = &req.latents {
            let bytes: Vec<u8> = l.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            recipe_base.latents_sha256 = Some(sha256_hex(&bytes));
        }
        recipe_base.tiny_decoder = tiny_recipe;
        // Latent transparency: the alpha decoded from each image's latent.
        let transparent = match &spec.transparent {
            Some(t) => {
                let path = Path::new(&t.decoder);
                let path: PathBuf = match &addon {
                    Some(a) => a.decoder.clone(),
                    None => path.to_owned(),
                };
                let path = path.as_path();
                ctx.progress("load transparent decoder", 0, 1);
                let decoder = mintframe_diffusion::layerdiffuse::TransparentDecoder::load(
                    path,
                    "",
                    DType::F32,
                    &model.device,
                )?;
                let bytes = std::fs::read(path).map_err(|source| StudioError::Io {
                    action: "cannot read",
                    path: path.to_owned(),
                    source,
                })?;
                // An add-on's decoder as `<add-on id>/<file>`, like a model's weight files.
                let named = match &addon {
                    Some(a) => format!(
                        "{}/{}",
                        a.id,
                        path.file_name()
                            .map(|n| n.to_string_lossy())
                            .unwrap_or_default()
                    ),
                    None => t.decoder.clone(),
                };
                recipe_base.transparent = Some(mintframe_types::TransparentRecipe {
                    decoder: WeightFile {
                        path: named,
                        sha256: sha256_hex(&bytes),
                    },
                    augmented: t.augmented,
                });
                Some((decoder, t.augmented))
            }
            None => None,
        };
        let mut ids = Vec::new();
        for (i, g) in images.iter().enumerate().skip(done) {
            ctx.check().map_err(mintframe_diffusion::Error::from)?;
            let recipe = Recipe {
                seed: g.seed,
                ..recipe_base.clone()
            };
            let json = serde_json::to_string(&recipe)
                .map_err(|e| StudioError::Task(format!("recipe JSON: {e}")))?;
            let chunks = [
                ("parameters", a1111_parameters(&recipe)),
                ("mintframe", json),
            ];
            let png = match &transparent {
                Some((decoder, augmented)) => {
                    ctx.progress("decode alpha", i as u64, images.len() as u64);
                    let rgba = mintframe_diffusion::layerdiffuse::transparent_rgba(
                        &g.image,
                        &g.latent,
                        model.vae.config().scaling_factor,
                        decoder,
                        *augmented,
                    )?;
                    mintframe_diffusion::pngio::encode_png_rgba(
                        g.image.width,
                        g.image.height,
                        &rgba,
                        &chunks,
                    )?
                }
                None => encode_png(&g.image, &chunks)?,
            };
            let stored = self
                .library
                .store(&mut Cursor::new(&png), png.len() as u64, ctx)?;
            let name = asset_name(&spec.prompt, g.seed, i);
            let id = self.library.add_asset(NewAsset {
                kind: if spec.seamless {
                    AssetKind::Tile
                } else {
                    AssetKind::Image
                },
                name: name.clone(),
                recipe: Some(recipe),
                job: Some(job.clone()),
                files: vec![NewFile {
                    role: "main".into(),
                    file_name: format!("{name}.png"),
                    mime: "image/png".into(),
                    stored,
                }],
            })?;
            ids.push(id);
        }
        Ok(ids)
    }

    #[allow(clippy::too_many_arguments)]
    fn recipe(
        &self,
        resolved: &Resolved,
        spec: &GenerateSpec,
        settled: &Settled,
        model: &Model,
        init_image_sha256: Option<String>,
        mask_sha256: Option<String>,
        loras: &[(PathBuf, f32)],
    ) -> Result<Recipe, StudioError> {
        let mut lora_files = Vec::new();
        for (p, s) in loras {
            let (sha, _) =
                mintframe_diffusion::manager::sha256_file(p, &JobCtx::detached(), "hash LoRA")?;
            lora_files.push(RecipeLora {
                file: WeightFile {
                    path: p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    sha256: sha,
                },
                strength: *s,
            });
        }
        Ok(Recipe {
            model_id: resolved.id.clone(),
            model_files: resolved
                .weight_files
                .iter()
                .map(|(path, sha256)| WeightFile {
                    path: path.clone(),
                    sha256: sha256.clone(),
                })
                .collect(),
            license: resolved.license.as_ref().map(|l| l.label()),
            prompt: spec.prompt.clone(),
            negative_prompt: spec.negative_prompt.clone(),
            seed: settled.seed,
            scheduler: settled.scheduler,
            steps: settled.steps,
            guidance: settled.guidance,
            width: settled.width,
            height: settled.height,
            strength: spec
                .init_image
                .as_ref()
                .map(|_| spec.strength.unwrap_or(0.75)),
            tiling: spec.seamless,
            post_processing: Vec::new(),
            post_steps: Vec::new(),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            backend: backend_name(&model.device),
            dtype: settled.dtype,
            loras: lora_files,
            init_image_sha256,
            mask_sha256,
            transparent: None,
            controls: Vec::new(),
            latents_sha256: None,
            tiny_decoder: None,
        })
    }
}

pub(crate) fn weight_bytes(config: &mintframe_diffusion::ModelConfig, dt: DType) -> u64 {
    mintframe_diffusion::model::param_counts(config)
        .map(|(u, v, t)| (u + v + t) as u64 * dt.size_in_bytes() as u64)
        .unwrap_or(0)
}

/// A short, file-safe name from the prompt's first words and the seed.
pub(crate) fn asset_name(prompt: &str, seed: u64, _index: usize) -> String {
    let words: String = prompt
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(5)
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase();
    let words: String = words.chars().take(40).collect();
    if words.is_empty() {
        format!("image-{seed}")
    } else {
        format!("{words}-{seed}")
    }
}

/// The webview sends numbers the CLI's parsers never saw: the same ranges hold for both.
fn check_numbers(spec: &GenerateSpec) -> Result<(), StudioError> {
    use mintframe_types::ranges::{GUIDANCE, LORA_STRENGTH, MAX_SEED, STRENGTH};
    let bad = |m: String| StudioError::Diffusion(mintframe_diffusion::Error::InvalidRequest(m));
    if let Some(g) = spec.guidance {
        GUIDANCE.check(f64::from(g)).map_err(bad)?;
    }
    if let Some(s) = spec.strength {
        STRENGTH.check(f64::from(s)).map_err(bad)?;
    }
    for l in &spec.loras {
        LORA_STRENGTH.check(f64::from(l.strength)).map_err(bad)?;
    }
    for c in &spec.controls {
        if !(0.0..=2.0).contains(&c.weight) {
            return Err(bad(format!(
                "ControlNet weight {} is out of range: use 0.0 to 2.0",
                c.weight
            )));
        }
        if !(0.0..=1.0).contains(&c.start) || !(0.0..=1.0).contains(&c.end) || c.start >= c.end {
            return Err(bad(format!(
                "ControlNet start {} and end {} must lie in 0..1 with start before end",
                c.start, c.end
            )));
        }
    }
    if let Some(seed) = spec.seed
        && seed > MAX_SEED
    {
        return Err(bad(format!(
            "seed {seed} is out of range: use 0 to {MAX_SEED}"
        )));
    }
    Ok(())
}

/// An init image as RGB, through the guarded decoder (alpha dropped, grey spread over RGB).
pub(crate) fn read_rgb(path: &Path) -> Result<mintframe_diffusion::Rgb, StudioError> {
    let img = mintframe_media::read_png_rgba(path)?;
    Ok(mintframe_diffusion::Rgb {
        width: img.width,
        height: img.height,
        data: img
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
    })
}

/// A mask as grey, its luma: white repaints, black keeps.
fn read_gray(path: &Path) -> Result<mintframe_diffusion::Gray, StudioError> {
    let img = mintframe_media::read_png_rgba(path)?;
    let luma = |p: &[u8]| {
        ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
    };
    Ok(mintframe_diffusion::Gray {
        width: img.width,
        height: img.height,
        data: img.data.chunks_exact(4).map(luma).collect(),
    })
}

/// A name from the first words of a prompt (`"a red knight, pixel art"` → `a-red-knight-pixel`),
/// `fallback` when it has none.
pub(crate) fn name_from_prompt(prompt: &str, fallback: &str) -> String {
    let words: Vec<&str> = prompt
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(4)
        .collect();
    if words.is_empty() {
        fallback.into()
    } else {
        words.join("-").to_lowercase()
    }
}

/// An opaque RGBA copy of a generated image.
pub(crate) fn rgba_of(img: &mintframe_diffusion::Rgb) -> mintframe_media::Rgba {
    mintframe_media::Rgba {
        width: img.width,
        height: img.height,
        data: img
            .data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
    }
}

/// The colour channels of an RGBA image, for a pipeline's init image.
pub(crate) fn rgb_of(img: &mintframe_media::Rgba) -> mintframe_diffusion::Rgb {
    mintframe_diffusion::Rgb {
        width: img.width,
        height: img.height,
        data: img
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{App, Settings};
    use mintframe_jobs::CancelToken;
    use mintframe_types::JobSpec;

    fn app(dir: &Path) -> App {
        App::open(Settings {
            data_dir: dir.to_owned(),
            ipfs_api: "http://127.0.0.1:5001".into(),
            start_node_on_demand: false,
        })
        .expect("open")
    }

    fn spec(prompt: &str) -> GenerateSpec {
        GenerateSpec {
            model: "tiny-sd".into(),
            prompt: prompt.into(),
            seed: Some(7),
            steps: Some(3),
            batch: Some(2),
            ..GenerateSpec::default()
        }
    }

    #[test]
    fn a_job_stores_each_image_with_its_recipe_inside_and_out() {
        let dir = tempfile::tempdir().expect("tmp");
        let app = app(dir.path());
        let job = app
            .submit_generate(spec("a slime, pixel art"))
            .expect("submit");
        let JobSpec::Generate(s) = &job.spec else {
            panic!("not a generate job")
        };
        assert_eq!((s.width, s.height, s.steps), (Some(64), Some(64), Some(3)));
        let done = app.run_job(&job.id, &|_| {}).expect("run");
        assert_eq!(
            done.state,
            mintframe_types::JobState::Succeeded,
            "{:?}",
            done.error
        );
        assert_eq!(done.outputs.len(), 2);
        let seeds: Vec<u64> = done
            .outputs
            .iter()
            .map(|id| {
                let a = app.asset(&id.0).expect("asset");
                let r = a.recipe.expect("recipe");
                assert_eq!(r.model_id, "tiny-sd");
                assert_eq!(r.license.as_deref(), Some("mit"));
                assert!(!r.model_files.is_empty());
                assert_eq!(r.backend, "candle-cpu");
                let png = std::fs::read(app.library().file_path(&a.files[0].sha256)).expect("png");
                let chunks = mintframe_diffusion::pngio::read_text_chunks(&png).expect("chunks");
                let params = &chunks
                    .iter()
                    .find(|(k, _)| k == "parameters")
                    .expect("parameters")
                    .1;
                assert!(
                    params.starts_with("a slime, pixel art\nSteps: 3, Sampler: Euler a"),
                    "{params}"
                );
                let json = &chunks
                    .iter()
                    .find(|(k, _)| k == "mintframe")
                    .expect("json")
                    .1;
                let inner: Recipe = serde_json::from_str(json).expect("recipe json");
                assert_eq!(inner.seed, r.seed);
                r.seed
            })
            .collect();
        assert_eq!(seeds, vec![7, 8]);
    }

    #[test]
    fn cancelling_mid_denoise_keeps_no_partial_asset() {
        let dir = tempfile::tempdir().expect("tmp");
        let app = app(dir.path());
        let library = app.library();
        let manager = app.models();
        let cache = ModelCache::default();
        let spec = complete_spec(manager, spec("a knight")).expect("spec");
        let token = CancelToken::new();
        let t2 = token.clone();
        // The sink runs inside the pipeline's own progress call, so the cancel lands before the
        // next step's check: deterministic, unlike a second thread.
        let ctx = JobCtx::new(token, move |p| {
            if p.stage == "denoise" && p.step == 2 {
                t2.cancel();
            }
        });
        let job = app
            .jobs()
            .submit(JobSpec::Generate(Box::new(spec.clone())))
            .expect("job");
        let generator = Generator {
            library,
            manager,
            cache: &cache,
        };
        let err = generator
            .run(&job.id, &spec, 0, &ctx)
            .expect_err("cancelled");
        assert!(
            matches!(
                err,
                StudioError::Diffusion(mintframe_diffusion::Error::Cancelled(_))
            ),
            "{err}"
        );
        assert!(app.list_assets().expect("list").is_empty());
    }

    #[test]
    fn bad_requests_fail_at_submit_with_the_value_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let app = app(dir.path());
        let mut s = spec("x");
        s.width = Some(100);
        let e = app.submit_generate(s).expect_err("size").to_string();
        assert!(e.contains("100") && e.contains("divisible by 8"), "{e}");
        let e = app
            .submit_generate(spec("  "))
            .expect_err("prompt")
            .to_string();
        assert!(e.contains("prompt is empty"), "{e}");
        let mut s = spec("x");
        s.model = "no-such-model".into();
        let job = app.submit_generate(s).expect("unknown ids fail when run");
        let done = app.run_job(&job.id, &|_| {}).expect("run");
        assert_eq!(done.state, mintframe_types::JobState::Failed);
        assert!(done.error.unwrap_or_default().contains("no-such-model"));
    }

    #[test]
    fn a_memory_budget_too_small_is_refused_before_generating() {
        let dir = tempfile::tempdir().expect("tmp");
        let app = app(dir.path());
        let mut s = spec("x");
        s.memory_budget_mib = Some(1);
        let job = app.submit_generate(s).expect("submit");
        let done = app.run_job(&job.id, &|_| {}).expect("run");
        assert_eq!(done.state, mintframe_types::JobState::Failed);
        let e = done.error.unwrap_or_default();
        assert!(
            e.contains("not enough memory") && e.contains("1 MiB"),
            "{e}"
        );
        assert!(done.outputs.is_empty());
    }
}
