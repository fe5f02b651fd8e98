//! The studio window: a thin Tauri shell. Every command forwards to `mintframe-studio`; errors
//! reach the UI as a typed `{ kind, message }`. TypeScript bindings for the commands and types
//! are generated from here into `ui/src/bindings.ts` (see the `bindings_are_current` test).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::Arc;

use mintframe_studio::{App, Scope, Settings, StudioError, Worker};
use mintframe_types::pose::PoseTemplate;
use mintframe_types::shots::ShotList;
use mintframe_types::{
    AnimationKind, ArweaveQuote, ArweaveWalletInfo, AssetDetail, AssetSummary, BuiltinPalette,
    CharacterSpec, CidProfile, ClipSpec, CollectionCheck, CollectionJob, CollectionReport,
    ConsistencyReport, DoctorReport, ErrorKind, FarmStatus, GenerateSpec, InterpolateSpec,
    JobEvent, JobRecord, JobSpec, JobState, LibraryHealth, LoopScore, ModelInfo,
    PinningServiceInfo, PostStep, PreviewSpec, PublishReport, PublishSpec, PublishSummary, Reroll,
    SheetSpec, TrainSpec, TrainStatus, TraitSpec, View,
};
use serde::Serialize;
use tauri::State;
use tauri::ipc::Channel;

/// An error as the UI sees it: a stable `kind` to branch on and a message to show.
#[derive(Debug, Clone, Serialize, specta::Type)]
struct UiError {
    kind: ErrorKind,
    message: String,
}

impl From<StudioError> for UiError {
    fn from(e: StudioError) -> UiError {
        UiError {
            kind: e.kind(),
            message: mintframe_studio::error_chain(&e),
        }
    }
}

/// The process's studio. The library may have failed to open (a damaged database): the window
/// still opens, shows the doctor, and every library command returns that error.
struct Studio {
    settings: Settings,
    /// The job worker (and through it the app); it runs every queued job, re-queued ones too.
    worker: Result<Arc<Worker>, UiError>,
}

impl Studio {
    fn app(&self) -> Result<Arc<App>, UiError> {
        Ok(Arc::clone(self.worker()?.app()))
    }

    fn worker(&self) -> Result<Arc<Worker>, UiError> {
        self.worker.clone()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StudioError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| UiError::from(StudioError::Task(e.to_string())))?
        .map_err(UiError::from)
}

#[tauri::command]
#[specta::specta]
async fn doctor(studio: State<'_, Studio>) -> Result<DoctorReport, UiError> {
    Ok(mintframe_studio::doctor(&studio.settings).await)
}

#[tauri::command]
#[specta::specta]
async fn library_list(studio: State<'_, Studio>) -> Result<Vec<AssetSummary>, UiError> {
    let app = studio.app()?;
    blocking(move || app.list_assets()).await
}

/// `library check` (`deep`: every file re-hashed and every asset decoded). Works when the
/// library did not open (a damaged database is the error it reports).
#[tauri::command]
#[specta::specta]
async fn library_check(studio: State<'_, Studio>, deep: bool) -> Result<LibraryHealth, UiError> {
    let settings = studio.settings.clone();
    blocking(move || mintframe_studio::library_health(&settings, deep)).await
}

/// `library check --repair`: keeps every file (undecodable ones go to `quarantine/`).
#[tauri::command]
#[specta::specta]
async fn library_repair(studio: State<'_, Studio>) -> Result<LibraryHealth, UiError> {
    let settings = studio.settings.clone();
    blocking(move || mintframe_studio::repair_and_check(&settings)).await
}

#[tauri::command]
#[specta::specta]
async fn asset_detail(studio: State<'_, Studio>, id: String) -> Result<AssetDetail, UiError> {
    let app = studio.app()?;
    blocking(move || app.asset(&id)).await
}

#[tauri::command]
#[specta::specta]
async fn jobs_list(studio: State<'_, Studio>, all: bool) -> Result<Vec<JobRecord>, UiError> {
    let app = studio.app()?;
    blocking(move || app.jobs().list(!all)).await
}

/// Starts the managed IPFS node, as the doctor screen's button asks; returns a line to show.
#[tauri::command]
#[specta::specta]
async fn ipfs_start(studio: State<'_, Studio>) -> Result<String, UiError> {
    let status = mintframe_studio::ipfs_start(&studio.settings).await?;
    Ok(format!(
        "{} {} at {}",
        status.version.implementation, status.version.version, status.api
    ))
}

/// An asset's main image as a `data:` URL, or null when it has none to show.
#[tauri::command]
#[specta::specta]
async fn asset_image(studio: State<'_, Studio>, id: String) -> Result<Option<String>, UiError> {
    let app = studio.app()?;
    blocking(move || app.asset_image_data_url(&id)).await
}

/// A headless preview render of an asset (zoom, 3×3 tile, grid, backdrop) as a `data:` URL.
#[tauri::command]
#[specta::specta]
async fn asset_preview(
    studio: State<'_, Studio>,
    id: String,
    spec: PreviewSpec,
) -> Result<String, UiError> {
    let app = studio.app()?;
    blocking(move || app.asset_preview_data_url(&id, &spec)).await
}

/// Every frame of a sheet asset, rendered headless, as a looping GIF `data:` URL.
#[tauri::command]
#[specta::specta]
async fn asset_animation(
    studio: State<'_, Studio>,
    id: String,
    spec: PreviewSpec,
    fps: u32,
) -> Result<String, UiError> {
    let app = studio.app()?;
    blocking(move || app.asset_animation_data_url(&id, &spec, fps)).await
}

/// An asset's library thumbnail (PNG, or an animated GIF for anything that moves) as a `data:` URL.
#[tauri::command]
#[specta::specta]
async fn asset_thumbnail(studio: State<'_, Studio>, id: String) -> Result<String, UiError> {
    let app = studio.app()?;
    blocking(move || app.asset_thumbnail_data_url(&id)).await
}

/// Opens the native preview window (its own process) on an asset; `frame` is a sheet's cell
/// size. Returns the window's process id.
#[tauri::command]
#[specta::specta]
async fn asset_open_preview(
    studio: State<'_, Studio>,
    id: String,
    frame: Option<[u32; 2]>,
) -> Result<u32, UiError> {
    let app = studio.app()?;
    blocking(move || app.open_preview(&id, frame)).await
}

/// Opens the native preview window on a running character job's work so far (every facing of
/// each animation side by side, reloaded as boards finish). Returns the window's process id.
#[tauri::command]
#[specta::specta]
async fn character_open_live_preview(
    studio: State<'_, Studio>,
    job: String,
) -> Result<u32, UiError> {
    let app = studio.app()?;
    blocking(move || app.open_live_preview(&job)).await
}

/// Every model the manager knows, with its licence and defaults, for the Generate screen.
#[tauri::command]
#[specta::specta]
async fn models_list(studio: State<'_, Studio>) -> Result<Vec<ModelInfo>, UiError> {
    let app = studio.app()?;
    blocking(move || app.model_infos()).await
}

/// Queues a generation on the worker (one diffusion job at a time; a second waits its turn).
/// Its progress arrives through `jobs_follow`.
#[tauri::command]
#[specta::specta]
async fn generate(studio: State<'_, Studio>, spec: GenerateSpec) -> Result<JobRecord, UiError> {
    // The window names an installed LayerDiffuse add-on, never a file.
    if let Some(t) = &spec.transparent
        && t.decoder.contains(['/', '\\'])
    {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: format!("{:?} is not an add-on id", t.decoder),
        });
    }
    // Trained LoRAs by name (the Train screen's), never by file.
    if let Some(l) = spec.loras.iter().find(|l| l.path.contains(['/', '\\'])) {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: format!("{:?} is not a trained LoRA's name", l.path),
        });
    }
    // ControlNets, init images and masks are files: the window names none (the CLI does).
    if !spec.controls.is_empty()
        || spec.init_image.is_some()
        || spec.mask.is_some()
        || spec.latents.is_some()
        || spec.tiny_decoder.is_some()
    {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: "the window names no files: ControlNets, init images, masks, latents and \
                      tiny decoders by path are the CLI's"
                .into(),
        });
    }
    let worker = studio.worker()?;
    refuse_model_path(&worker, &spec.model)?;
    blocking(move || worker.submit_generate(spec)).await
}

/// A model from the window is an id the manager knows (or empty: the default), never a path.
fn refuse_model_path(worker: &Worker, model: &str) -> Result<(), UiError> {
    if model.is_empty() || worker.app().models().manifest(model).is_ok() {
        return Ok(());
    }
    Err(UiError {
        kind: ErrorKind::InvalidRequest,
        message: format!("{model:?} is not a model id (`models list` shows them)"),
    })
}

/// Post-processes library assets (pixel art, cut-out) as one job; each makes a new asset. The
/// window names assets only: reading files from disk is the CLI's, not the webview's.
#[tauri::command]
#[specta::specta]
async fn process_assets(
    studio: State<'_, Studio>,
    assets: Vec<String>,
    steps: Vec<PostStep>,
) -> Result<JobRecord, UiError> {
    if let Some(p) = assets.iter().find(|a| a.contains(['/', '\\'])) {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: format!("{p:?} is not an asset id"),
        });
    }
    let worker = studio.worker()?;
    blocking(move || {
        worker.submit(JobSpec::Process {
            sources: assets,
            steps,
            kind: None,
        })
    })
    .await
}

/// Packs library assets' frames into one sheet asset with the exports asked for (the Sheet
/// view). Asset ids only: the webview names no files.
#[tauri::command]
#[specta::specta]
async fn pack_sheet(studio: State<'_, Studio>, spec: SheetSpec) -> Result<JobRecord, UiError> {
    if let Some(p) = spec.sources.iter().find(|a| a.contains(['/', '\\'])) {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: format!("{p:?} is not an asset id"),
        });
    }
    let worker = studio.worker()?;
    blocking(move || worker.submit(JobSpec::Sheet(Box::new(spec)))).await
}

/// Queues a LoRA training run on library assets (the window names asset ids, never files or
/// checkpoints: folders and resuming from a file are the CLI's).
#[tauri::command]
#[specta::specta]
async fn train_start(studio: State<'_, Studio>, spec: TrainSpec) -> Result<JobRecord, UiError> {
    if let Some(p) = spec.dataset.iter().find(|a| a.contains(['/', '\\'])) {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: format!("{p:?} is not an asset id"),
        });
    }
    if spec.resume_from.is_some() || spec.model.contains(['/', '\\']) {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: "the window names models by id and resumes runs as jobs, never by file".into(),
        });
    }
    let worker = studio.worker()?;
    blocking(move || worker.submit_train(spec)).await
}

/// A training run's loss by step, checkpoints, samples and LoRA (the Train screen redraws it
/// on each of the run's progress events).
#[tauri::command]
#[specta::specta]
async fn train_status(studio: State<'_, Studio>, id: String) -> Result<TrainStatus, UiError> {
    let app = studio.app()?;
    blocking(move || app.train_status(&id)).await
}

/// One sample image of a run, by checkpoint step and prompt number, as a `data:` URL.
#[tauri::command]
#[specta::specta]
async fn train_sample(
    studio: State<'_, Studio>,
    id: String,
    step: u32,
    index: u32,
) -> Result<String, UiError> {
    let app = studio.app()?;
    blocking(move || app.train_sample_data_url(&id, step, index)).await
}

/// The names of the trained LoRAs, for Generate's LoRA choice.
#[tauri::command]
#[specta::specta]
async fn loras_list(studio: State<'_, Studio>) -> Result<Vec<String>, UiError> {
    let app = studio.app()?;
    blocking(move || app.lora_names()).await
}

/// Writes an asset's files (a sheet: its PNG and every export) into the data folder's
/// `exports/<name>-<id>/`, the one place the window may write, and returns that folder.
#[tauri::command]
#[specta::specta]
async fn asset_export(studio: State<'_, Studio>, id: String) -> Result<String, UiError> {
    let app = studio.app()?;
    blocking(move || {
        let detail = app.asset(&id)?;
        let short: String = detail.summary.id.0.chars().take(8).collect();
        let folder = format!(
            "{}-{short}",
            mintframe_studio::sanitize_file_name(&detail.summary.name)
        );
        let dir = app.settings().data_dir.join("exports").join(folder);
        app.export_asset(&detail.summary.id.0, &dir)?;
        Ok(dir.display().to_string())
    })
    .await
}

/// The colours of a built-in palette, for the Sprite tools' picker.
#[tauri::command]
#[specta::specta]
fn builtin_palette(name: BuiltinPalette) -> Result<Vec<[u8; 3]>, UiError> {
    Ok(mintframe_studio::process::palette_colors(name.as_str())?)
}

/// Streams every job's events (queued, progress with ETA, finished with its assets, failed with
/// the reason, cancelled) to the window: the UI never polls for progress.
#[tauri::command]
#[specta::specta]
async fn jobs_follow(
    studio: State<'_, Studio>,
    on_event: Channel<JobEvent>,
) -> Result<(), UiError> {
    let worker = studio.worker()?;
    let rx = worker.subscribe();
    std::thread::Builder::new()
        .name("job-events".into())
        .spawn(move || {
            // Ends when the window's channel is gone (a reload subscribes again).
            for ev in rx {
                if on_event.send(ev).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| UiError::from(StudioError::Task(e.to_string())))?;
    Ok(())
}

/// A collection spec (TOML) drawn: its tokens and each trait value's share; nothing generated.
#[tauri::command]
#[specta::specta]
async fn collection_check(
    studio: State<'_, Studio>,
    spec_toml: String,
) -> Result<CollectionCheck, UiError> {
    let app = studio.app()?;
    blocking(move || app.collection_check(&spec_toml)).await
}

/// Queues a collection. A farm is only ever the one this studio's coordinator credential
/// names (`mintframe farm init`): the window picks "on the farm", not an address.
#[tauri::command]
#[specta::specta]
async fn collection_start(
    studio: State<'_, Studio>,
    spec_toml: String,
    on_farm: bool,
    publish: bool,
    profile: Option<CidProfile>,
) -> Result<JobRecord, UiError> {
    let worker = studio.worker()?;
    let data = studio.app()?.settings().data_dir.clone();
    blocking(move || {
        let farm = if on_farm {
            Some(mintframe_studio::farm::coordinator_url(&data)?)
        } else {
            None
        };
        worker.submit_collection(CollectionJob {
            spec_toml,
            farm,
            publish,
            profile,
        })
    })
    .await
}

/// Where a collection stands: tokens made and by whom, provenance, its publish.
#[tauri::command]
#[specta::specta]
async fn collection_report(
    studio: State<'_, Studio>,
    spec_toml: String,
) -> Result<CollectionReport, UiError> {
    let app = studio.app()?;
    blocking(move || app.collection_report(&spec_toml)).await
}

/// The farm this studio coordinates: workers, throughput, queue.
#[tauri::command]
#[specta::specta]
async fn farm_status(studio: State<'_, Studio>) -> Result<FarmStatus, UiError> {
    let app = studio.app()?;
    blocking(move || {
        let url = mintframe_studio::farm::coordinator_url(&app.settings().data_dir)?;
        app.farm_status(&url)
    })
    .await
}

/// The pre-mint report: planned CIDs and links and every finding, computed offline.
#[tauri::command]
#[specta::specta]
async fn publish_check(
    studio: State<'_, Studio>,
    spec: PublishSpec,
) -> Result<PublishReport, UiError> {
    let app = studio.app()?;
    blocking(move || app.publish_check(&spec)).await
}

/// Queues a collection's publish as a job (checked offline first). With no external node
/// configured, the job starts the managed node on demand (as IPFS Desktop does).
#[tauri::command]
#[specta::specta]
async fn publish_collection(
    studio: State<'_, Studio>,
    spec: PublishSpec,
) -> Result<JobRecord, UiError> {
    let worker = studio.worker()?;
    blocking(move || worker.submit_publish(spec)).await
}

/// What a finished publish of this collection recorded: CIDs, URIs, CARs, remote pins.
#[tauri::command]
#[specta::specta]
async fn publish_outcome(
    studio: State<'_, Studio>,
    spec: PublishSpec,
) -> Result<PublishReport, UiError> {
    let app = studio.app()?;
    blocking(move || app.publish_outcome(&spec)).await
}

/// Traits as typed, one `Name=Value` or `Name:display_type=Value` a line: the same grammar as
/// the CLI's `--trait`.
#[tauri::command]
#[specta::specta]
async fn traits_parse(text: String) -> Result<Vec<TraitSpec>, UiError> {
    TraitSpec::parse_lines(&text).map_err(|message| UiError {
        kind: ErrorKind::InvalidCollection,
        message,
    })
}

/// Every publish the library recorded, newest first.
#[tauri::command]
#[specta::specta]
async fn publish_list(studio: State<'_, Studio>) -> Result<Vec<PublishSummary>, UiError> {
    let app = studio.app()?;
    blocking(move || app.publish_summaries()).await
}

/// The Arweave wallet uploads are signed with: its address and where its key is kept (never
/// the key itself).
#[tauri::command]
#[specta::specta]
async fn arweave_wallet(studio: State<'_, Studio>) -> Result<ArweaveWalletInfo, UiError> {
    let app = studio.app()?;
    blocking(move || app.arweave_wallet_info()).await
}

/// Imports a JWK key file by its path: the key goes from the file to the OS keyring (or, with
/// `keep_file`, stays in the file), never through the webview.
#[tauri::command]
#[specta::specta]
async fn arweave_wallet_import(
    studio: State<'_, Studio>,
    path: String,
    keep_file: bool,
) -> Result<ArweaveWalletInfo, UiError> {
    let app = studio.app()?;
    blocking(move || app.arweave_wallet_import(std::path::Path::new(&path), keep_file)).await
}

/// What publishing this collection to its Arweave gateway costs, and the wallet's balance:
/// shown before the user confirms.
#[tauri::command]
#[specta::specta]
async fn arweave_quote(
    studio: State<'_, Studio>,
    spec: PublishSpec,
) -> Result<ArweaveQuote, UiError> {
    let app = studio.app()?;
    blocking(move || app.arweave_quote(&spec)).await
}

/// Mints AR on a local test gateway (arlocal); refused on a real network. Returns the balance
/// in AR.
#[tauri::command]
#[specta::specta]
async fn arweave_mint(
    studio: State<'_, Studio>,
    gateway: String,
    ar: String,
) -> Result<String, UiError> {
    let app = studio.app()?;
    blocking(move || {
        let winston = mintframe_studio::arweave::parse_ar(&ar)?;
        let url = mintframe_studio::arweave::gateway_url(Some(&gateway));
        app.arweave_mint(&url, winston)
            .map(mintframe_studio::arweave::ar)
    })
    .await
}

/// The pinning services added so far; tokens are never sent to the webview.
#[tauri::command]
#[specta::specta]
async fn pinning_services(studio: State<'_, Studio>) -> Result<Vec<PinningServiceInfo>, UiError> {
    let app = studio.app()?;
    blocking(move || app.pinning_services()).await
}

/// Adds or updates a pinning service; the token goes straight to the OS keyring.
#[tauri::command]
#[specta::specta]
async fn pinning_service_add(
    studio: State<'_, Studio>,
    name: String,
    endpoint: String,
    token: Option<String>,
) -> Result<(), UiError> {
    let app = studio.app()?;
    blocking(move || app.add_pinning_service(&name, &endpoint, token.as_deref(), None)).await
}

/// Forgets a pinning service and its token.
#[tauri::command]
#[specta::specta]
async fn pinning_service_remove(studio: State<'_, Studio>, name: String) -> Result<(), UiError> {
    let app = studio.app()?;
    blocking(move || app.remove_pinning_service(&name)).await
}

/// The skeleton template the Character screen edits (the studio's saved one, else the bundled).
#[tauri::command]
#[specta::specta]
async fn pose_template(
    studio: State<'_, Studio>,
    view: View,
    animation: AnimationKind,
) -> Result<PoseTemplate, UiError> {
    let app = studio.app()?;
    blocking(move || app.pose_template(view, animation)).await
}

/// Saves an edited skeleton template into the data folder (checked first); packs of its view
/// and animation use it from then on.
#[tauri::command]
#[specta::specta]
async fn pose_template_save(
    studio: State<'_, Studio>,
    template: PoseTemplate,
) -> Result<(), UiError> {
    let app = studio.app()?;
    blocking(move || app.save_pose_template(&template).map(|_| ())).await
}

fn refuse_files(spec: &CharacterSpec) -> Result<(), UiError> {
    let palette_file = spec
        .palette
        .as_deref()
        .is_some_and(|p| p.parse::<mintframe_types::BuiltinPalette>().is_err());
    // A reference is a library image's id; an id has neither separators nor dots.
    let reference_file = spec
        .reference
        .as_deref()
        .is_some_and(|r| r.contains(['/', '\\', '.']));
    if spec.controlnet.is_some()
        || spec.tiny_decoder.is_some()
        || !spec.templates.is_empty()
        || palette_file
        || reference_file
    {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message:
                "the window names models and references by id and templates by view and animation, never files"
                    .into(),
        });
    }
    Ok(())
}

/// Queues a character pack; the studio's saved templates for its view are used.
#[tauri::command]
#[specta::specta]
async fn character_start(
    studio: State<'_, Studio>,
    mut spec: CharacterSpec,
) -> Result<JobRecord, UiError> {
    refuse_files(&spec)?;
    let worker = studio.worker()?;
    refuse_model_path(&worker, &spec.model)?;
    spec.templates = worker.app().saved_templates(&spec);
    blocking(move || worker.submit_character(spec)).await
}

/// Queues a clip (AnimateDiff with the model's own motion adapter). The window names models
/// by id; motion adapters and soundtracks given as files are the CLI's.
#[tauri::command]
#[specta::specta]
async fn clip_start(studio: State<'_, Studio>, spec: ClipSpec) -> Result<JobRecord, UiError> {
    let source_file = spec
        .source
        .as_deref()
        .is_some_and(|s| s.contains(['/', '\\', '.']));
    if !spec.motion.is_empty()
        || !spec.motion_loras.is_empty()
        || spec.audio.is_some()
        || source_file
    {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: "the window uses the model's own motion adapter, library videos by id and no sound files; `mintframe clip --motion --audio --from` take files".into(),
        });
    }
    let worker = studio.worker()?;
    refuse_model_path(&worker, &spec.model)?;
    blocking(move || worker.submit_clip(spec)).await
}

/// The RIFE weights this studio has (in `<data>/rife/`), by name.
#[tauri::command]
#[specta::specta]
async fn rife_models(studio: State<'_, Studio>) -> Result<Vec<String>, UiError> {
    Ok(studio.app()?.rife_models())
}

/// Queues RIFE in-betweens for a library clip; weights by name, the clip by id.
#[tauri::command]
#[specta::specta]
async fn interpolate_start(
    studio: State<'_, Studio>,
    spec: InterpolateSpec,
) -> Result<JobRecord, UiError> {
    if [&spec.source, &spec.rife]
        .iter()
        .any(|s| s.contains(['/', '\\', '.']))
    {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: "the window names clips by id and RIFE weights by name, never files".into(),
        });
    }
    let worker = studio.worker()?;
    blocking(move || worker.submit_interpolate(spec)).await
}

/// How well a clip asset loops (from its recipe).
#[tauri::command]
#[specta::specta]
async fn clip_loop_score(studio: State<'_, Studio>, id: String) -> Result<LoopScore, UiError> {
    let app = studio.app()?;
    blocking(move || app.clip_recipe(&id).map(|r| r.loop_score)).await
}

fn refuse_sound_files(list: &ShotList) -> Result<(), UiError> {
    if list.audio.is_some() || list.shots.iter().any(|s| s.audio.is_some()) {
        return Err(UiError {
            kind: ErrorKind::InvalidRequest,
            message: "the window renders shot lists without sound files; `mintframe shots LIST.toml` mixes them".into(),
        });
    }
    Ok(())
}

/// Queues a cinematic from the shot-list editor.
#[tauri::command]
#[specta::specta]
async fn shots_start(studio: State<'_, Studio>, list: ShotList) -> Result<JobRecord, UiError> {
    refuse_sound_files(&list)?;
    let worker = studio.worker()?;
    refuse_model_path(&worker, &list.model)?;
    blocking(move || worker.submit_shots(list)).await
}

/// A shot list from TOML text (as `mintframe shots` reads it), checked.
#[tauri::command]
#[specta::specta]
fn shots_parse(text: String) -> Result<ShotList, UiError> {
    let list = mintframe_studio::shots::parse_shot_list(&text)?;
    refuse_sound_files(&list)?;
    Ok(list)
}

/// The editor's shot list as TOML, for `mintframe shots`.
#[tauri::command]
#[specta::specta]
fn shots_toml(list: ShotList) -> Result<String, UiError> {
    Ok(mintframe_studio::shots::shot_list_toml(&list)?)
}

/// Queues a pack again with frames or rows drawn anew (fresh seeds, the pack's palette kept).
#[tauri::command]
#[specta::specta]
async fn character_reroll(
    studio: State<'_, Studio>,
    pack: String,
    rerolls: Vec<Reroll>,
) -> Result<JobRecord, UiError> {
    let worker = studio.worker()?;
    blocking(move || {
        let spec = worker.app().reroll_spec(&pack, &rerolls)?;
        worker.submit_character(spec)
    })
    .await
}

/// A pack's consistency report: palette distance, silhouette overlap, anchor drift.
#[tauri::command]
#[specta::specta]
async fn character_report(
    studio: State<'_, Studio>,
    pack: String,
) -> Result<ConsistencyReport, UiError> {
    let app = studio.app()?;
    blocking(move || app.character_report(&pack)).await
}

/// Cancels a job; returns its state after the call.
#[tauri::command]
#[specta::specta]
async fn job_cancel(studio: State<'_, Studio>, id: String) -> Result<JobState, UiError> {
    let app = studio.app()?;
    blocking(move || app.jobs().cancel(&id)).await
}

fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new().commands(tauri_specta::collect_commands![
        doctor,
        library_list,
        library_check,
        library_repair,
        asset_detail,
        jobs_list,
        ipfs_start,
        asset_image,
        asset_preview,
        asset_animation,
        asset_open_preview,
        character_open_live_preview,
        asset_thumbnail,
        models_list,
        generate,
        process_assets,
        builtin_palette,
        pack_sheet,
        asset_export,
        jobs_follow,
        job_cancel,
        publish_check,
        publish_collection,
        publish_outcome,
        traits_parse,
        publish_list,
        pinning_services,
        pinning_service_add,
        pinning_service_remove,
        arweave_wallet,
        arweave_wallet_import,
        arweave_quote,
        arweave_mint,
        train_start,
        train_status,
        train_sample,
        pose_template,
        pose_template_save,
        character_start,
        character_reroll,
        character_report,
        clip_start,
        clip_loop_score,
        rife_models,
        interpolate_start,
        shots_start,
        shots_parse,
        shots_toml,
        loras_list,
        collection_check,
        collection_start,
        collection_report,
        farm_status
    ])
}

fn main() -> anyhow::Result<()> {
    mintframe_studio::tune_process();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wgpu_hal=off,wgpu_core=error".into()),
        )
        .init();
    let mut settings = Settings::resolve(None, None);
    settings.start_node_on_demand = true;
    // Jobs an earlier studio or CLI left running are re-queued as the app opens; the worker then
    // runs them, and everything queued after, in order.
    let worker = App::open(settings.clone())
        .map(Arc::new)
        .and_then(|app| Worker::start(app, Scope::Queue))
        .map(Arc::new)
        .map_err(UiError::from);
    if let Err(e) = &worker {
        tracing::error!(kind = %e.kind, "library unavailable: {}", e.message);
    }
    let builder = specta_builder();
    tauri::Builder::default()
        .manage(Studio { settings, worker })
        .invoke_handler(builder.invoke_handler())
        .run(tauri::generate_context!())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> String {
        // One file per call: tests run in parallel threads of one process, and one reading the
        // file while another rewrites it would see it truncated.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("mintframe-bindings-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bindings.ts");
        specta_builder()
            .export(
                specta_typescript::Typescript::default()
                    .header("// Generated from src-tauri by `UPDATE_BINDINGS=1 cargo test -p mintframe-app`. Do not edit.\n"),
                &path,
            )
            .expect("export bindings");
        std::fs::read_to_string(&path).expect("read bindings")
    }

    /// The UI's types come from Rust only: this fails when they drift.
    #[test]
    fn bindings_are_current() {
        let fresh = bindings();
        let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/src/bindings.ts");
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(committed, &fresh).expect("write bindings");
            return;
        }
        let current = std::fs::read_to_string(committed).unwrap_or_default();
        assert!(
            current == fresh,
            "ui/src/bindings.ts is out of date: run `UPDATE_BINDINGS=1 cargo test -p mintframe-app`"
        );
    }

    /// Every command the webview can invoke has a permission, and the capability grants no more.
    #[test]
    fn commands_have_permissions() {
        let cap: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/main.json"))
                .expect("capability json");
        let mut granted: Vec<String> = cap["permissions"]
            .as_array()
            .expect("permissions")
            .iter()
            .map(|p| p.as_str().expect("string").to_owned())
            .collect();
        granted.sort();
        let ts = bindings();
        let mut commands: Vec<String> = ts
            .match_indices("TAURI_INVOKE(\"")
            .map(|(i, m)| {
                let rest = &ts[i + m.len()..];
                let name = &rest[..rest.find('"').expect("closing quote")];
                format!("allow-{}", name.replace('_', "-"))
            })
            .collect();
        commands.sort();
        assert_eq!(granted, commands);
    }

    fn ui_sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("ui/src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                ui_sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "ts")
                && p.file_name().is_some_and(|n| n != "bindings.ts")
            {
                out.push(p);
            }
        }
    }

    /// The window names a reference picture by its library id; a path of any form is refused.
    #[test]
    fn the_window_refuses_a_reference_given_as_a_file() {
        let spec: CharacterSpec = serde_json::from_value(serde_json::json!({
            "prompt": "a knight", "view": "side", "directions": 2, "animations": ["walk"],
            "size": 32, "colors": 16, "strength": 0.8
        }))
        .expect("spec");
        assert!(refuse_files(&spec).is_ok());
        let with = |r: &str| CharacterSpec {
            reference: Some(r.into()),
            ..spec.clone()
        };
        assert!(refuse_files(&with("01a24d2d-8a48-71b9-b79a-7c3f3d780eda")).is_ok());
        for path in ["/etc/passwd", "..\\x.png", "hero.png", "../../x"] {
            let e = refuse_files(&with(path)).expect_err(path);
            assert!(
                e.message.contains("references by id"),
                "{path}: {}",
                e.message
            );
        }
    }

    /// Screens stay small (one module each), and progress arrives as events: no UI file polls.
    #[test]
    fn no_ui_file_is_over_400_lines_and_none_polls_with_a_timer() {
        let mut files = Vec::new();
        ui_sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src"),
            &mut files,
        );
        assert!(files.len() > 5, "{files:?}");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            let lines = text.lines().count();
            assert!(lines <= 400, "{} has {lines} lines", f.display());
            for timer in ["setInterval(", "setTimeout("] {
                assert!(
                    !text.contains(timer),
                    "{} uses {timer}: follow jobs through `jobs_follow` events",
                    f.display()
                );
            }
        }
    }
}
