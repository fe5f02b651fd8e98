//! The studio facade: one [`App`] per process, which the Tauri shell and the `mintframe` CLI both
//! drive. Operations here are what a user can do; the crates below know nothing of users.

pub mod arweave;
pub mod character;
pub mod clip;
pub mod collection;
mod control;
mod doctor;
pub mod farm;
pub mod generate;
pub mod interpolate;
pub mod live;
pub mod matte;
pub mod paths;
pub mod preview;
pub mod process;
pub mod publish;
mod registry;
mod secrets;
pub mod sheet;
pub mod shots;
pub mod tileset;
pub mod train;
pub mod video;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mintframe_diffusion::manager::Manager;
use mintframe_library::{Library, LibraryError};
use mintframe_publish::{ApiAddr, PublishError};
use mintframe_types::{
    AssetDetail, AssetId, AssetSummary, ErrorKind, GenerateSpec, JobRecord, JobSpec, JobState,
    ModelInfo, PreviewSpec,
};

pub use doctor::doctor;
/// The model a generation uses when none is named (CLI and studio): the built-in offline
/// sprite model.
pub use mintframe_diffusion::offline::DEFAULT_MODEL;
pub use mintframe_diffusion::tune_process;
pub use mintframe_media::{Rgba, Sequence};
pub use registry::{JobRegistry, Reports};
pub use worker::{Scope, Worker};

/// Where things live and which node to talk to. Read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub ipfs_api: String,
    /// Start the managed IPFS node when a publish needs it and none answers (the studio does, as
    /// IPFS Desktop does; the CLI says how to start one instead).
    pub start_node_on_demand: bool,
}

impl Settings {
    /// `data_dir` wins, then `MINTFRAME_DATA_DIR`, then the platform's data folder
    /// (`$XDG_DATA_HOME/mintframe` on Linux). The IPFS API comes from `MINTFRAME_IPFS_API`.
    pub fn resolve(data_dir: Option<PathBuf>, ipfs_api: Option<String>) -> Settings {
        let data_dir = data_dir
            .or_else(|| std::env::var_os("MINTFRAME_DATA_DIR").map(PathBuf::from))
            .or_else(|| dirs::data_dir().map(|d| d.join("mintframe")))
            .unwrap_or_else(|| PathBuf::from(".mintframe"));
        let ipfs_api = ipfs_api
            .or_else(|| std::env::var("MINTFRAME_IPFS_API").ok())
            .unwrap_or_else(|| mintframe_publish::DEFAULT_API.to_owned());
        Settings {
            data_dir,
            ipfs_api,
            start_node_on_demand: false,
        }
    }

    /// The repo of the IPFS node Mintframe manages.
    pub fn ipfs_repo(&self) -> PathBuf {
        self.data_dir.join("ipfs")
    }

    pub fn api(&self) -> Result<ApiAddr, StudioError> {
        Ok(ApiAddr::parse(&self.ipfs_api)?)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StudioError {
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the job was cancelled")]
    Cancelled,
    #[error("job {0} is not queued, so it cannot be run again")]
    JobNotQueued(String),
    #[error("job {0} has not ended; only a cancelled or failed job can be run again")]
    JobRunning(String),
    #[error("a background task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Diffusion(#[from] mintframe_diffusion::Error),
    #[error("preview render: {0}")]
    Render(String),
    #[error(transparent)]
    Gpu(#[from] mintframe_render::RenderError),
    #[error(transparent)]
    Media(#[from] mintframe_media::MediaError),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} was not found")]
    NotFound(String),
    #[error(
        "asset {id} is damaged: {reason}. `mintframe library check --repair` keeps its file in the data folder's quarantine/ and marks it"
    )]
    Damaged { id: String, reason: String },
    #[error("{} was not imported: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error(transparent)]
    Invalid(#[from] mintframe_types::UnknownValue),
    #[error("{0}")]
    Secret(String),
    #[error(
        "no persistent keyring answers in this session ({0}), so a stored token would not survive a reboot. Install and unlock GNOME Keyring or KWallet (the Secret Service), or keep the token outside Mintframe: a file only you can read (`--token-file PATH`, chmod 600), or the environment variable the error for the service names"
    )]
    NoKeyring(String),
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Collection(#[from] mintframe_collection::CollectionError),
    #[error(transparent)]
    Farm(#[from] mintframe_farm::FarmError),
}

/// An error and its causes, outermost first, each said once: a message that already quotes its
/// source (`cannot read x: No such file`) is not followed by that source again.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

impl StudioError {
    /// A short, stable name of the error's kind, for the UI to branch on.
    pub fn kind(&self) -> ErrorKind {
        use mintframe_diffusion::Error as D;
        match self {
            StudioError::Library(LibraryError::Corrupt { .. }) => ErrorKind::LibraryCorrupt,
            StudioError::Library(LibraryError::DataDir { .. }) => ErrorKind::DataDir,
            StudioError::Library(LibraryError::DiskFull { .. }) => ErrorKind::DiskFull,
            StudioError::Library(
                LibraryError::AssetNotFound(_)
                | LibraryError::JobNotFound(_)
                | LibraryError::NotFound(_),
            ) => ErrorKind::NotFound,
            StudioError::Library(LibraryError::Cancelled(_)) => ErrorKind::Cancelled,
            StudioError::Library(_) => ErrorKind::Library,
            StudioError::Publish(PublishError::Unreachable { .. }) => ErrorKind::IpfsUnreachable,
            StudioError::Publish(PublishError::Pinning(_)) => ErrorKind::PinningService,
            StudioError::Publish(PublishError::Invalid(_)) => ErrorKind::InvalidCollection,
            StudioError::Publish(PublishError::CidMismatch { .. }) => ErrorKind::CidMismatch,
            StudioError::Publish(PublishError::Arweave(_)) => ErrorKind::Arweave,
            StudioError::Publish(_) => ErrorKind::Ipfs,
            StudioError::Cancelled => ErrorKind::Cancelled,
            StudioError::JobNotQueued(_) | StudioError::JobRunning(_) => ErrorKind::JobState,
            StudioError::Task(_) => ErrorKind::Internal,
            StudioError::Collection(_) => ErrorKind::InvalidCollection,
            StudioError::Farm(_) => ErrorKind::Farm,
            StudioError::Render(_) | StudioError::Gpu(_) => ErrorKind::Render,
            StudioError::Media(
                mintframe_media::MediaError::OverLimit { .. }
                | mintframe_media::MediaError::Refused { .. },
            )
            | StudioError::Damaged { .. }
            | StudioError::Refused { .. } => ErrorKind::Damaged,
            StudioError::Media(_) => ErrorKind::Media,
            StudioError::Io { .. } => ErrorKind::Io,
            StudioError::NotFound(_) => ErrorKind::NotFound,
            StudioError::Secret(_) | StudioError::NoKeyring(_) => ErrorKind::Keyring,
            StudioError::Settings(_) => ErrorKind::Settings,
            StudioError::Invalid(_) => ErrorKind::InvalidRequest,
            StudioError::Diffusion(e) => match e {
                D::Cancelled(_) => ErrorKind::Cancelled,
                D::OutOfMemory { .. } => ErrorKind::OutOfMemory,
                D::UnknownModel(_) => ErrorKind::UnknownModel,
                D::NotInstalled { .. } => ErrorKind::ModelNotInstalled,
                D::Offline { .. } => ErrorKind::Offline,
                D::PickleRefused { .. } => ErrorKind::PickleRefused,
                D::CorruptWeights { .. }
                | D::MissingComponent { .. }
                | D::MissingTensor { .. }
                | D::WrongShape { .. }
                | D::HashMismatch { .. }
                | D::BadConfig { .. } => ErrorKind::BadWeights,
                D::Lora { .. } => ErrorKind::BadLora,
                D::NotDivisibleBy8 { .. } | D::InvalidRequest(_) => ErrorKind::InvalidRequest,
                D::Image { .. } => ErrorKind::BadImage,
                D::DeviceUnavailable(_) => ErrorKind::DeviceUnavailable,
                _ => ErrorKind::Diffusion,
            },
        }
    }
}

/// One open studio: settings, the library and the job registry.
#[derive(Debug)]
pub struct App {
    settings: Settings,
    library: Arc<Library>,
    jobs: JobRegistry,
}

impl App {
    /// Opens the library and takes over jobs that an earlier process left unfinished.
    pub fn open(settings: Settings) -> Result<App, StudioError> {
        let library = Arc::new(Library::open(&settings.data_dir)?);
        let jobs = JobRegistry::new(Arc::clone(&library));
        let recovered = jobs.recover()?;
        if !recovered.is_empty() {
            tracing::info!(
                count = recovered.len(),
                "jobs left by an earlier run re-queued"
            );
        }
        Ok(App {
            settings,
            library,
            jobs,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    pub fn jobs(&self) -> &JobRegistry {
        &self.jobs
    }

    pub fn list_assets(&self) -> Result<Vec<AssetSummary>, StudioError> {
        Ok(self.library.list_assets()?)
    }

    pub fn asset(&self, id_or_prefix: &str) -> Result<AssetDetail, StudioError> {
        let id = self.library.resolve_id(id_or_prefix)?;
        Ok(self.library.asset(&id)?)
    }

    /// An asset whose file is there to be read: one a repair marked damaged (its file in
    /// quarantine) is an error that says so, not a missing-file error.
    fn healthy_asset(&self, id_or_prefix: &str) -> Result<AssetDetail, StudioError> {
        let detail = self.asset(id_or_prefix)?;
        match &detail.summary.damaged {
            Some(reason) => Err(StudioError::Damaged {
                id: detail.summary.id.to_string(),
                reason: reason.clone(),
            }),
            None => Ok(detail),
        }
    }

    pub fn export_asset(
        &self,
        id_or_prefix: &str,
        dest: &Path,
    ) -> Result<Vec<PathBuf>, StudioError> {
        let id = self.library.resolve_id(id_or_prefix)?;
        Ok(self.library.export_asset(&id, dest)?)
    }

    /// Copies an asset's file in `role` to `dest` (whole or not at all).
    pub fn copy_asset_file(
        &self,
        id_or_prefix: &str,
        role: &str,
        dest: &Path,
    ) -> Result<(), StudioError> {
        let detail = self.asset(id_or_prefix)?;
        let f = detail
            .files
            .iter()
            .find(|f| f.role == role)
            .ok_or_else(|| {
                StudioError::NotFound(format!("a {role} file of asset {}", detail.summary.id))
            })?;
        let bytes =
            std::fs::read(self.library.file_path(&f.sha256)).map_err(|source| StudioError::Io {
                action: "cannot read",
                path: self.library.file_path(&f.sha256),
                source,
            })?;
        paths::write_whole(dest, &bytes)
    }

    /// An asset's main image as a `data:` URL for the webview (whose CSP allows `data:` images
    /// and nothing from the file system), or `None` when it has no image under 16 MiB.
    pub fn asset_image_data_url(&self, id_or_prefix: &str) -> Result<Option<String>, StudioError> {
        use base64::Engine;
        let detail = self.healthy_asset(id_or_prefix)?;
        let Some(f) = detail.files.iter().find(|f| {
            f.role == "main"
                && matches!(
                    f.mime.as_str(),
                    "image/png" | "image/gif" | "image/jpeg" | "image/webp"
                )
                && f.size_bytes < 16 << 20
        }) else {
            return Ok(None);
        };
        let path = self.library.file_path(&f.sha256);
        let bytes = std::fs::read(&path).map_err(|source| StudioError::Io {
            action: "cannot read",
            path: path.clone(),
            source,
        })?;
        Ok(Some(format!(
            "data:{};base64,{}",
            f.mime,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )))
    }

    /// A headless preview render of an asset's main PNG (zoom, 3×3 tile, grid, backdrop), as
    /// a PNG.
    pub fn asset_preview_png(
        &self,
        id_or_prefix: &str,
        spec: &PreviewSpec,
    ) -> Result<Vec<u8>, StudioError> {
        let out = preview::render_still(&self.asset_png(id_or_prefix)?, spec)?;
        mintframe_media::encode_png_rgba(&out).map_err(StudioError::from)
    }

    /// Every frame of a sheet asset as a looping GIF `data:` URL (needs `spec.frame_size`).
    pub fn asset_animation_data_url(
        &self,
        id_or_prefix: &str,
        spec: &PreviewSpec,
        fps: u32,
    ) -> Result<String, StudioError> {
        use base64::Engine;
        let gif = preview::render_animation(&self.asset_png(id_or_prefix)?, spec, fps)?;
        Ok(format!(
            "data:image/gif;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(gif)
        ))
    }

    /// An asset's main PNG, decoded.
    pub fn asset_png(&self, id_or_prefix: &str) -> Result<mintframe_media::Rgba, StudioError> {
        let detail = self.healthy_asset(id_or_prefix)?;
        let f = detail
            .files
            .iter()
            .find(|f| f.role == "main" && f.mime.starts_with("image/") && f.mime != "image/gif")
            .ok_or_else(|| {
                StudioError::Render(format!(
                    "asset {} has no still image to preview (a GIF or clip plays in `mintframe preview`)",
                    detail.summary.id
                ))
            })?;
        if f.mime == "image/png" {
            return preview::read_png(&self.library.file_path(&f.sha256));
        }
        // JPEG and WebP stills: their one frame, through the same guarded decoders.
        let mut seq = self.asset_sequence(id_or_prefix, None)?;
        match seq.frames.len() {
            1 => Ok(seq.frames.remove(0)),
            n => Err(StudioError::Render(format!(
                "asset {} has {n} frames; a still preview needs one (play it with `mintframe preview`)",
                detail.summary.id
            ))),
        }
    }

    /// An asset's frames for the preview window: a still, a sheet cut into `frame_size` cells,
    /// a GIF or a clip.
    pub fn asset_sequence(
        &self,
        id_or_prefix: &str,
        frame_size: Option<[u32; 2]>,
    ) -> Result<mintframe_media::Sequence, StudioError> {
        let detail = self.healthy_asset(id_or_prefix)?;
        // A sheet plays as its frames: its `.aseprite` holds them whole with their timing.
        if frame_size.is_none()
            && let Some(f) = detail.files.iter().find(|f| f.role == "aseprite")
        {
            return mintframe_media::load_sequence_as(
                &self.library.file_path(&f.sha256),
                "media",
                None,
            )
            .map_err(StudioError::from);
        }
        let f = detail
            .files
            .iter()
            .find(|f| f.role == "main")
            .ok_or_else(|| {
                StudioError::Render(format!("asset {} has no file", detail.summary.id))
            })?;
        // What the file is comes from its bytes; only an Aseprite JSON is read by its type.
        let kind = match f.mime.as_str() {
            "application/json" => "json",
            m if m.starts_with("image/") || m.starts_with("video/") => "media",
            m => {
                return Err(StudioError::Render(format!(
                    "asset {} is {m}, which the preview cannot play",
                    detail.summary.id
                )));
            }
        };
        let mut seq = mintframe_media::load_sequence_as(
            &self.library.file_path(&f.sha256),
            kind,
            frame_size,
        )?;
        // A cinematic plays shot by shot: each shot is a tag the window can pick.
        if seq.tags.is_empty() {
            seq.tags = self.shot_tags(&detail);
        }
        Ok(seq)
    }

    /// The asset's thumbnail as a `data:` URL (PNG, or a looping GIF for anything that moves),
    /// rendered once by the headless renderer and kept in `<data>/thumbs/`.
    pub fn asset_thumbnail_data_url(&self, id_or_prefix: &str) -> Result<String, StudioError> {
        use base64::Engine;
        let id = self.asset(id_or_prefix)?.summary.id.to_string();
        let dir = self.settings.data_dir.join("thumbs");
        let cached = ["png", "gif"]
            .iter()
            .map(|ext| (dir.join(format!("{id}.{ext}")), *ext))
            .find(|(p, _)| p.is_file());
        let (bytes, mime) = match cached {
            Some((p, ext)) => (
                std::fs::read(&p).map_err(|source| StudioError::Io {
                    action: "cannot read the thumbnail",
                    path: p.clone(),
                    source,
                })?,
                if ext == "png" {
                    "image/png"
                } else {
                    "image/gif"
                },
            ),
            None => {
                // Without a frame size, a media error can only mean the file does not decode:
                // the asset is damaged, and the UI shows it so rather than failing.
                let seq = self.asset_sequence(&id, None).map_err(|e| match e {
                    StudioError::Media(m) if !matches!(m, mintframe_media::MediaError::Init(_)) => {
                        StudioError::Damaged {
                            id: id.clone(),
                            reason: media_reason(&m),
                        }
                    }
                    other => other,
                })?;
                let (bytes, mime) = preview::thumbnail(&seq, preview::THUMB_SIDE)?;
                let ext = if mime == "image/png" { "png" } else { "gif" };
                // A cache: failing to write it costs a re-render next time, nothing more.
                let _ = std::fs::create_dir_all(&dir).and_then(|()| {
                    let part = dir.join(format!("{id}.{ext}.part"));
                    std::fs::write(&part, &bytes)?;
                    std::fs::rename(&part, dir.join(format!("{id}.{ext}")))
                });
                (bytes, mime)
            }
        };
        Ok(format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// Opens the native preview window on an asset. It is its own process (`mintframe preview`,
    /// found beside this program, else on `PATH`): the window and the studio's webview each need
    /// a main thread's event loop. Returns the window's process id.
    pub fn open_preview(
        &self,
        id_or_prefix: &str,
        frame_size: Option<[u32; 2]>,
    ) -> Result<u32, StudioError> {
        let detail = self.asset(id_or_prefix)?;
        let mut args = vec![detail.summary.id.to_string()];
        if let Some([w, h]) = frame_size {
            args.extend(["--frame".to_owned(), format!("{w}x{h}")]);
        }
        self.spawn_preview(&args)
    }

    /// Opens the native preview window on a character job's work so far: each animation with
    /// every facing side by side, reloaded as boards finish (and while they denoise). A job
    /// that has just succeeded opens its finished pack instead.
    pub fn open_live_preview(&self, job_prefix: &str) -> Result<u32, StudioError> {
        let id = self.library.resolve_job_id(job_prefix)?;
        let job = self.library.job(&id)?.record;
        if !matches!(job.spec, JobSpec::Character(_)) {
            return Err(StudioError::Settings(format!(
                "job {} is not a character pack: only packs have a live preview",
                job.id
            )));
        }
        // A pack that finished while the user reached for the button is shown whole: what the
        // live view would have ended on.
        if let (JobState::Succeeded, Some(pack)) = (job.state, job.outputs.first()) {
            return self.open_preview(&pack.to_string(), None);
        }
        if !matches!(job.state, JobState::Queued | JobState::Running) {
            return Err(StudioError::Settings(format!(
                "job {} has ended ({}): open its pack from the library instead",
                job.id,
                job.state.as_str()
            )));
        }
        let json = live::live_json(&self.settings.data_dir, &job.id.to_string());
        self.spawn_preview(&[json.to_string_lossy().into_owned(), "--watch".into()])
    }

    /// Starts `mintframe preview ARGS` on this library, its own process (the window needs the
    /// main thread's event loop), and returns its process id.
    fn spawn_preview(&self, args: &[String]) -> Result<u32, StudioError> {
        let beside = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("mintframe")))
            .filter(|p| p.is_file());
        let program = beside.unwrap_or_else(|| PathBuf::from("mintframe"));
        let mut cmd = std::process::Command::new(&program);
        cmd.arg("--data-dir")
            .arg(&self.settings.data_dir)
            .arg("preview")
            .args(args)
            .stdin(std::process::Stdio::null());
        let mut child = cmd.spawn().map_err(|e| {
            StudioError::Render(format!(
                "cannot start the preview window ({}): {e}",
                program.display()
            ))
        })?;
        let pid = child.id();
        // Reaped in the background so a closed window leaves no zombie behind.
        std::thread::spawn(move || {
            let status = child.wait();
            tracing::info!(pid, ?status, "preview window closed");
        });
        Ok(pid)
    }

    /// [`App::asset_preview_png`] as a `data:` URL for the webview.
    pub fn asset_preview_data_url(
        &self,
        id_or_prefix: &str,
        spec: &PreviewSpec,
    ) -> Result<String, StudioError> {
        use base64::Engine;
        let png = self.asset_preview_png(id_or_prefix, spec)?;
        Ok(format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        ))
    }

    /// The model manager (models in `<data>/models`).
    pub fn models(&self) -> &Manager {
        self.jobs.models()
    }

    /// Every model the manager knows, with licence and defaults.
    pub fn model_infos(&self) -> Result<Vec<ModelInfo>, StudioError> {
        generate::model_infos(self.models())
    }

    /// Queues a generation with its left-out settings filled in and its seed fixed.
    pub fn submit_generate(&self, mut spec: GenerateSpec) -> Result<JobRecord, StudioError> {
        // A LoRA by name: one this studio trained, in `<data>/loras/`.
        for l in &mut spec.loras {
            if Path::new(&l.path).is_absolute() || paths::plain_name("LoRA", &l.path).is_err() {
                continue;
            }
            let dir = train::loras_dir(&self.settings.data_dir);
            let named = dir.join(format!("{}.safetensors", l.path));
            if !named.is_file() {
                return Err(StudioError::NotFound(format!(
                    "LoRA {:?} (trained LoRAs: {}; `mintframe train lora --name {}` makes one)",
                    l.path,
                    self.lora_names()?.join(", "),
                    l.path
                )));
            }
            l.path = named.display().to_string();
        }
        let spec = generate::complete_spec(self.models(), spec)?;
        self.jobs.submit(JobSpec::Generate(Box::new(spec)))
    }

    /// Queues a collection to publish (checked offline first, so a bad collection fails here and
    /// not in the queue).
    pub fn submit_publish(
        &self,
        spec: mintframe_types::PublishSpec,
    ) -> Result<JobRecord, StudioError> {
        if spec.arweave.is_some() {
            let plan = self.arweave_plan(&spec)?;
            mintframe_publish::arweave::refuse_errors(&plan)?;
        } else {
            let (_, plan) = self.publish_plan(&spec)?;
            mintframe_publish::collection::refuse_errors(&plan)?;
        }
        self.jobs.submit(JobSpec::Publish(Box::new(spec)))
    }

    /// Queues a model download (an unknown id fails here, not in the queue).
    pub fn submit_pull(&self, model: &str) -> Result<JobRecord, StudioError> {
        self.models().manifest(model)?;
        self.jobs.submit(JobSpec::PullModel {
            model: model.to_owned(),
        })
    }

    /// Runs one queued job to its end on this thread (the worker's lanes call this); the job's
    /// own failure is recorded in its row, not returned.
    pub fn run_job(
        &self,
        id: &mintframe_types::JobId,
        on_progress: &(dyn Fn(&mintframe_jobs::Progress) + Sync),
    ) -> Result<JobRecord, StudioError> {
        self.run_job_with(id, &registry::Reports::progress(on_progress))
    }

    /// [`App::run_job`], with previews of the work as it goes for whoever shows them.
    pub fn run_job_with(
        &self,
        id: &mintframe_types::JobId,
        reports: &registry::Reports<'_>,
    ) -> Result<JobRecord, StudioError> {
        self.jobs
            .run(id, reports, &|job, ctx| self.execute(job, ctx))
    }

    fn execute(&self, job: &JobRecord, ctx: &JobCtx) -> Result<(), StudioError> {
        match &job.spec {
            JobSpec::Import { paths, kind } => {
                // On resume, files already imported or refused (recorded in order) are skipped.
                let total = paths.len() as u64;
                let done = job.outputs.len() + job.refused.len();
                let mut refused = job.refused.len();
                for (i, path) in paths.iter().enumerate().skip(done) {
                    ctx.check().map_err(|_| StudioError::Cancelled)?;
                    ctx.progress("import", i as u64, total);
                    let path = Path::new(path);
                    match admit(path) {
                        Ok(format) => {
                            let kind = kind.unwrap_or_else(|| format.asset_kind());
                            self.library.import_file(
                                path,
                                kind,
                                format.mime(),
                                Some(&job.id),
                                ctx,
                            )?;
                        }
                        Err(reason) => {
                            tracing::info!(path = %path.display(), %reason, "import refused");
                            refused += 1;
                            self.library.add_job_refusal(
                                &job.id,
                                &mintframe_types::Refusal {
                                    path: path.display().to_string(),
                                    reason,
                                },
                            )?;
                        }
                    }
                }
                ctx.progress("import", total, total);
                if refused == paths.len() && !paths.is_empty() {
                    let last = self.library.job(&job.id)?.record.refused;
                    let reason = last.last().map(|r| r.reason.clone()).unwrap_or_default();
                    return Err(StudioError::Refused {
                        path: PathBuf::from(
                            last.last().map(|r| r.path.clone()).unwrap_or_default(),
                        ),
                        reason: if paths.len() == 1 {
                            reason
                        } else {
                            format!(
                                "none of the {} files decodes (the last: {reason})",
                                paths.len()
                            )
                        },
                    });
                }
                Ok(())
            }
            JobSpec::Generate(spec) => {
                let generator = generate::Generator {
                    library: &self.library,
                    manager: self.jobs.models(),
                    cache: self.jobs.cache(),
                };
                match generator.run(&job.id, spec, job.outputs.len(), ctx) {
                    Ok(_) => Ok(()),
                    Err(StudioError::Diffusion(mintframe_diffusion::Error::Cancelled(_))) => {
                        Err(StudioError::Cancelled)
                    }
                    Err(e) => Err(e),
                }
            }
            JobSpec::Publish(spec) => self.publish_collection(spec, ctx).map(|_| ()),
            JobSpec::Process {
                sources,
                steps,
                kind,
            } => self.run_process(job, sources, steps, *kind, ctx),
            JobSpec::Sheet(spec) => self.run_sheet(job, spec, ctx),
            JobSpec::Tileset(spec) => self.run_tileset(job, spec, ctx),
            JobSpec::Train(spec) => match self.run_train(job, spec, ctx) {
                Err(StudioError::Diffusion(mintframe_diffusion::Error::Cancelled(_))) => {
                    Err(StudioError::Cancelled)
                }
                r => r,
            },
            JobSpec::Character(spec) => self.run_character(job, spec, ctx),
            JobSpec::Clip(spec) => self.run_clip(job, spec, ctx),
            JobSpec::Shots(list) => self.run_shots(job, list, ctx),
            JobSpec::Interpolate(spec) => self.run_interpolate(job, spec, ctx),
            JobSpec::Collection(spec) => self.run_collection(job, spec, ctx),
            JobSpec::PullModel { model } => match self.models().pull(model, ctx) {
                Ok(_) => Ok(()),
                Err(mintframe_diffusion::Error::Cancelled(_)) => Err(StudioError::Cancelled),
                Err(e) => Err(e.into()),
            },
        }
    }

    pub fn remove_asset(&self, id_or_prefix: &str) -> Result<AssetId, StudioError> {
        let id = self.library.resolve_id(id_or_prefix)?;
        self.library.remove_asset(&id)?;
        Ok(id)
    }
}

pub use mintframe_jobs::{CancelToken, JobCtx};

/// Encodes an RGBA still as PNG.
pub fn encode_png(img: &mintframe_media::Rgba) -> Result<Vec<u8>, StudioError> {
    mintframe_media::encode_png_rgba(img).map_err(StudioError::from)
}
pub use mintframe_library::{CheckReport, RepairReport, sanitize_file_name};
pub use mintframe_publish::{DEFAULT_API as DEFAULT_IPFS_API, NodeStatus, NodeVersion};

/// Checks the library in `settings.data_dir`; `deep` re-hashes every file and decodes every
/// asset. A damaged database is reported as the error.
pub fn check_library(settings: &Settings, deep: bool) -> Result<CheckReport, StudioError> {
    let decode: mintframe_library::Decode<'_> = &decode_stored;
    Ok(Library::open(&settings.data_dir)?.check_with(deep, deep.then_some(decode))?)
}

/// Repairs the library in `settings.data_dir`, keeping every stored file: assets whose file
/// does not decode are marked damaged and their files moved to `quarantine/`.
pub fn repair_library(settings: &Settings) -> Result<RepairReport, StudioError> {
    Ok(Library::repair_with(&settings.data_dir, Some(&decode_stored))?.1)
}

/// [`check_library`] as the lines a user reads (the CLI prints them, the studio shows them).
pub fn library_health(
    settings: &Settings,
    deep: bool,
) -> Result<mintframe_types::LibraryHealth, StudioError> {
    let r = check_library(settings, deep)?;
    let mut findings = Vec::new();
    findings.extend(r.database_problems.iter().map(|p| format!("database: {p}")));
    findings.extend(r.missing_files.iter().map(|s| format!("missing file {s}")));
    findings.extend(r.damaged_files.iter().map(|s| format!("damaged file {s}")));
    findings.extend(
        r.undecodable
            .iter()
            .map(|u| format!("asset {} does not decode: {}", u.asset, u.reason)),
    );
    findings.extend(
        r.quarantined_assets
            .iter()
            .map(|a| format!("asset {a} is marked damaged (its file is in quarantine/)")),
    );
    Ok(mintframe_types::LibraryHealth {
        healthy: r.is_healthy(),
        files_checked: u32::try_from(r.files_checked).unwrap_or(u32::MAX),
        findings,
    })
}

/// [`repair_library`], then a deep check: what the repair did, then what is left.
pub fn repair_and_check(
    settings: &Settings,
) -> Result<mintframe_types::LibraryHealth, StudioError> {
    let r = repair_library(settings)?;
    let mut done = Vec::new();
    if let Some(p) = &r.moved_aside {
        done.push(format!("damaged database kept at {}", p.display()));
    }
    done.push(format!(
        "rows copied {}, rows lost {}, files recovered as assets {}, assets dropped {}, files quarantined {}",
        r.rows_copied,
        r.rows_lost,
        r.recovered_assets,
        r.assets_dropped.len(),
        r.quarantined.len()
    ));
    done.extend(
        r.quarantined
            .iter()
            .map(|p| format!("quarantined {}", p.display())),
    );
    done.extend(
        r.marked_damaged
            .iter()
            .map(|u| format!("asset {} marked damaged: {}", u.asset, u.reason)),
    );
    let mut after = library_health(settings, true)?;
    done.append(&mut after.findings);
    after.findings = done;
    Ok(after)
}

/// Whether a stored file decodes, under the same limits as import.
fn decode_stored(path: &Path, _mime: &str) -> Result<(), String> {
    mintframe_media::check_file(path, &mintframe_media::Limits::DEFAULT)
        .map(|_| ())
        .map_err(|e| media_reason(&e))
}

/// A media error without the path it names (the caller names the file its own way).
fn media_reason(e: &mintframe_media::MediaError) -> String {
    use mintframe_media::MediaError as M;
    match e {
        M::Image { reason, .. } | M::Refused { reason, .. } => reason.clone(),
        M::OverLimit { what, .. } => format!("{what}; refused before decoding"),
        other => other.to_string(),
    }
}

/// What import admits: a regular file whose bytes are a format we read, named as that format
/// (a text file called `.png` is mislabelled), decoding whole under the limits.
fn admit(path: &Path) -> Result<mintframe_types::MediaFormat, String> {
    let probe = mintframe_media::check_file(path, &mintframe_media::Limits::DEFAULT)
        .map_err(|e| media_reason(&e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if let Some(named) = mintframe_types::MediaFormat::from_extension(ext)
        && named != probe.format
    {
        return Err(format!(
            "is named .{ext} but its bytes are {}; rename it to .{} and import it again",
            probe.format.as_str().to_uppercase(),
            probe.format.extension()
        ));
    }
    Ok(probe.format)
}

/// Starts the managed IPFS node (repo in the data folder, API on loopback).
pub async fn ipfs_start(settings: &Settings) -> Result<NodeStatus, StudioError> {
    Ok(mintframe_publish::start_node(&settings.ipfs_repo(), &settings.api()?).await?)
}

/// Stops the managed IPFS node; returns the pid it had.
pub async fn ipfs_stop(settings: &Settings) -> Result<u32, StudioError> {
    Ok(mintframe_publish::stop_node(&settings.ipfs_repo(), &settings.api()?).await?)
}

/// What the node at the configured address says of itself.
pub async fn ipfs_status(settings: &Settings) -> Result<NodeVersion, StudioError> {
    Ok(
        mintframe_publish::node_version(&settings.api()?, std::time::Duration::from_secs(5))
            .await?,
    )
}

/// Writes frames as a looping, lossless animated WebP.
pub fn encode_webp(frames: &[Rgba], fps: u32, out: &Path) -> Result<(), StudioError> {
    mintframe_media::encode_webp(frames, fps, out).map_err(StudioError::from)
}

/// Writes a CARv1 of a file or folder offline; returns its root CID.
pub fn ipfs_car_make(
    path: &Path,
    profile: mintframe_types::CidProfile,
    out: &Path,
) -> Result<String, StudioError> {
    let root = mintframe_publish::collection::cid_and_car(path, profile, out)?;
    Ok(root.cid.to_string())
}

/// Adds a file or folder to the configured node so that it ends on the offline CID (see
/// [`mintframe_publish::collection::put_path`]); the CAR is written under the data folder's
/// `tmp/` and removed after.
pub async fn ipfs_add(
    settings: &Settings,
    path: &Path,
    profile: mintframe_types::CidProfile,
) -> Result<mintframe_publish::collection::Put, StudioError> {
    let dir = settings.data_dir.join("tmp");
    std::fs::create_dir_all(&dir).map_err(|e| StudioError::Io {
        action: "cannot create",
        path: dir.clone(),
        source: e,
    })?;
    let car = dir.join(format!("add-{}.car", std::process::id()));
    let put = mintframe_publish::collection::put_path(&settings.api()?, path, profile, &car).await;
    let _ = std::fs::remove_file(&car);
    Ok(put?)
}

/// Imports a CAR into the configured node (`dag/import`, roots pinned); returns the roots.
pub async fn ipfs_car_import(settings: &Settings, car: &Path) -> Result<Vec<String>, StudioError> {
    Ok(mintframe_publish::client::dag_import(&settings.api()?, car).await?)
}

/// Exports `cid` from the configured node as a CAR (`dag/export`); returns its size.
pub async fn ipfs_car_export(
    settings: &Settings,
    cid: &str,
    out: &Path,
) -> Result<u64, StudioError> {
    Ok(mintframe_publish::client::dag_export(&settings.api()?, cid, out).await?)
}

/// The CID a file or folder will have on IPFS, computed offline (no node needed).
pub fn ipfs_cid(
    path: &Path,
    profile: mintframe_types::CidProfile,
    wrap: bool,
) -> Result<String, StudioError> {
    let profile = mintframe_publish::unixfs::Profile::of(profile);
    let node = mintframe_publish::cid_of_path(path, &profile, wrap, &mut |_| Ok(()))?;
    Ok(node.cid.to_string())
}
