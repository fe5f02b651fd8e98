//! The studio on a render farm: as the coordinator (a collection's tokens drawn by workers and
//! imported once each), and as the engine behind `mintframe worker`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mintframe_farm::{
    Coordinator, Credentials, Executor, FarmFile, FarmModel, FarmUrl, Output, Task,
};
use mintframe_types::{AssetId, FarmStatus, JobRecord, JobSpec, JobState};

use crate::collection::{Drawn, Made};
use crate::{App, JobCtx, StudioError};

pub use mintframe_farm::{FarmInit, init};

/// Runs this studio as a farm worker with the credential at `creds` until it is stopped (or
/// has done `max_tasks`); returns the tasks it finished.
pub fn run_worker(
    app: Arc<App>,
    creds: &Path,
    url: Option<&str>,
    device: Option<String>,
    max_tasks: Option<u64>,
) -> Result<u64, StudioError> {
    let creds = Credentials::read(creds).map_err(farm_error)?;
    let url = FarmUrl::parse(url.unwrap_or(&creds.url)).map_err(farm_error)?;
    tracing::info!(worker = %creds.name, %url, "joining the farm");
    let exec = Arc::new(StudioExecutor { app, device });
    runtime()?
        .block_on(mintframe_farm::run_worker(
            &url,
            &creds,
            exec,
            crate::CancelToken::new(),
            max_tasks,
        ))
        .map_err(farm_error)
}

fn farm_error(e: mintframe_farm::FarmError) -> StudioError {
    match e {
        mintframe_farm::FarmError::Cancelled => StudioError::Cancelled,
        e => StudioError::Farm(e),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, StudioError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StudioError::Task(format!("cannot start the async runtime: {e}")))
}

/// The farm folder `mintframe farm init` writes by default: `<data>/farm`.
pub fn farm_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("farm")
}

/// The farm URL in the coordinator's credential.
pub fn coordinator_url(data_dir: &Path) -> Result<String, StudioError> {
    Ok(coordinator_creds(data_dir)?.url)
}

/// The coordinator's credential: `MINTFRAME_FARM_CREDS`, else `<data>/farm/coordinator.creds`.
pub(crate) fn coordinator_creds(data_dir: &Path) -> Result<Credentials, StudioError> {
    let path = std::env::var_os("MINTFRAME_FARM_CREDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| farm_dir(data_dir).join("coordinator.creds"));
    if !path.is_file() {
        return Err(StudioError::NotFound(format!(
            "the farm's coordinator credential {} (`mintframe farm init` makes one)",
            path.display()
        )));
    }
    Credentials::read(&path).map_err(farm_error)
}

/// The workers the farm's folder has credentials for (each gets its results bucket).
fn worker_names(creds: &Credentials) -> Vec<String> {
    let dir = creds.path.parent().unwrap_or(Path::new("."));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".creds")
                        .filter(|s| *s != "coordinator")
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn sha256_file(path: &Path) -> Result<(String, u64), StudioError> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).map_err(|source| StudioError::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = sha2::Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|source| StudioError::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok((format!("{:x}", h.finalize()), n))
}

impl App {
    /// The model a collection draws with, as a farm names it: every file by sha256, and the
    /// manifest a worker installs it under.
    fn farm_model(&self, model: &str, ctx: &JobCtx) -> Result<(FarmModel, PathBuf), StudioError> {
        let resolved = self.models().resolve(model, ctx)?;
        let single_file = resolved.location.is_file();
        let mut files = Vec::new();
        if single_file {
            let (sha256, size) = sha256_file(&resolved.location)?;
            files.push(FarmFile {
                path: resolved
                    .location
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256,
                size,
            });
        } else {
            let mut stack = vec![resolved.location.clone()];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir).map_err(|source| StudioError::Io {
                    action: "cannot list",
                    path: dir.clone(),
                    source,
                })? {
                    let p = e
                        .map_err(|source| StudioError::Io {
                            action: "cannot list",
                            path: dir.clone(),
                            source,
                        })?
                        .path();
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    // The manager's own bookkeeping is not the model.
                    if name.starts_with('.') || name == "install.json" {
                        continue;
                    }
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        let rel = p
                            .strip_prefix(&resolved.location)
                            .map(|r| r.to_string_lossy().replace('\\', "/"))
                            .unwrap_or(name);
                        let (sha256, size) = sha256_file(&p)?;
                        files.push(FarmFile {
                            path: rel,
                            sha256,
                            size,
                        });
                    }
                }
            }
            files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        let manifest = self
            .models()
            .manifest(&resolved.id)
            .ok()
            .filter(|m| !m.builtin)
            .map(|m| serde_json::to_string_pretty(&m))
            .transpose()
            .map_err(|e| StudioError::Task(format!("the model's manifest: {e}")))?;
        Ok((
            FarmModel {
                id: resolved.id.clone(),
                manifest,
                single_file,
                files,
            },
            resolved.location,
        ))
    }

    /// Draws a collection's missing tokens on the farm at `url` and imports each result once.
    /// The run is named by the collection's folder, so a coordinator started again (after a
    /// crash, or `jobs resume`) takes up the results the last one left.
    pub(crate) fn collection_on_farm(
        &self,
        job: &JobRecord,
        drawn: &Drawn,
        url: &FarmUrl,
        made: &mut BTreeMap<u32, Made>,
        earlier: &BTreeMap<(String, u64), AssetId>,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        let creds = coordinator_creds(&self.settings.data_dir)?;
        // A NATS subject token: no dots, wildcards or spaces.
        let run: String = drawn
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let total = drawn.tokens.len() as u64;
        ctx.progress("model", 0, 0);
        let (model, location) = self.farm_model(&drawn.spec.model, ctx)?;
        let rt = runtime()?;
        rt.block_on(async {
            let farm = Coordinator::connect(url, &creds)
                .await
                .map_err(farm_error)?;
            farm.ensure(&worker_names(&creds))
                .await
                .map_err(farm_error)?;
            farm.publish_model(&model, &location)
                .await
                .map_err(farm_error)?;
            // Queued again from scratch under new ids (an earlier coordinator's may still be in
            // the stream's duplicate window): at most the tasks workers hold now are drawn
            // twice, and imported once.
            farm.purge(&run).await.map_err(farm_error)?;
            let batch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            for t in &drawn.tokens {
                if made.contains_key(&t.number) {
                    continue;
                }
                if let Some(id) = earlier.get(&(t.prompt.clone(), t.seed)) {
                    self.record_made(&drawn.dir, made, t.number, id, "local")?;
                    continue;
                }
                let spec = self.collection_generate_spec(&drawn.spec, t)?;
                farm.submit(
                    &Task {
                        run: run.clone(),
                        token: t.number,
                        spec,
                        model: model.clone(),
                    },
                    &batch.to_string(),
                )
                .await
                .map_err(farm_error)?;
            }
            let results = farm.results(&run).await.map_err(farm_error)?;
            while (made.len() as u64) < total {
                ctx.progress("tokens", made.len() as u64, total);
                if ctx.check().is_err() {
                    farm.cancel(&run).await.map_err(farm_error)?;
                    return Err(StudioError::Cancelled);
                }
                let Some(incoming) = results
                    .next(Duration::from_secs(2))
                    .await
                    .map_err(farm_error)?
                else {
                    continue;
                };
                let done = incoming.done.clone();
                let wanted = drawn
                    .tokens
                    .get(done.token as usize)
                    .filter(|t| t.number == done.token);
                // The subject says who sent it; a worker can name no other, nor another run.
                let honest = incoming.worker == done.worker && done.run == run;
                let Some(token) = wanted.filter(|_| honest) else {
                    tracing::warn!(
                        from = %incoming.worker,
                        token = done.token,
                        "a result for no token of this run, dropped"
                    );
                    incoming.ack().await.map_err(farm_error)?;
                    continue;
                };
                if made.contains_key(&done.token) {
                    tracing::info!(
                        token = done.token,
                        worker = %done.worker,
                        "delivered again; already imported"
                    );
                    if done.error.is_none() {
                        farm.forget_image(&done).await.map_err(farm_error)?;
                    }
                    incoming.ack().await.map_err(farm_error)?;
                    continue;
                }
                let imported = self.import_result(job, &farm, &done, token, ctx).await;
                let id = match imported {
                    Ok(id) => id,
                    Err(e) => {
                        // The run stops here: the workers are told, its queue dropped.
                        incoming.ack().await.map_err(farm_error)?;
                        farm.cancel(&run).await.map_err(farm_error)?;
                        return Err(e);
                    }
                };
                self.record_made(&drawn.dir, made, done.token, &id, &done.worker)?;
                farm.forget_image(&done).await.map_err(farm_error)?;
                incoming.ack().await.map_err(farm_error)?;
            }
            Ok(())
        })
    }

    /// One worker's token, checked: drawn without error, from the task's prompt and seed, its
    /// image the bytes announced; then imported.
    async fn import_result(
        &self,
        job: &JobRecord,
        farm: &Coordinator,
        done: &mintframe_farm::Done,
        token: &mintframe_collection::Token,
        ctx: &JobCtx,
    ) -> Result<AssetId, StudioError> {
        if let Some(reason) = &done.error {
            return Err(StudioError::Task(format!(
                "worker {} could not draw token {}: {reason}",
                done.worker, done.token
            )));
        }
        let recipe = done
            .recipe
            .clone()
            .filter(|r| r.prompt == token.prompt && r.seed == token.seed)
            .ok_or_else(|| {
                StudioError::Task(format!(
                    "worker {} sent token {} with a recipe that is not the task's",
                    done.worker, done.token
                ))
            })?;
        let png = farm.fetch_image(done).await.map_err(farm_error)?;
        self.import_drawn(job, &png, recipe, ctx)
    }

    /// The farm at a glance (`mintframe farm status`, the Farm screen).
    pub fn farm_status(&self, url: &str) -> Result<FarmStatus, StudioError> {
        let url = FarmUrl::parse(url).map_err(farm_error)?;
        let creds = coordinator_creds(&self.settings.data_dir)?;
        runtime()?.block_on(async {
            let farm = Coordinator::connect(&url, &creds)
                .await
                .map_err(farm_error)?;
            farm.status(Duration::from_millis(2500))
                .await
                .map_err(farm_error)
        })
    }
}

/// This studio as a farm worker's engine: tasks run as generate jobs in its own library.
#[derive(Debug)]
pub struct StudioExecutor {
    pub app: Arc<App>,
    /// Where this worker draws (`cpu`, `cuda:0`); none: where each task says.
    pub device: Option<String>,
}

impl Executor for StudioExecutor {
    fn has_model(&self, model: &FarmModel) -> bool {
        let Ok(r) = self.app.models().resolve(&model.id, &JobCtx::detached()) else {
            return false;
        };
        !r.weight_files.is_empty()
            && r.weight_files.iter().all(|(path, sha)| {
                model
                    .files
                    .iter()
                    .any(|f| (f.path == *path || model.single_file) && f.sha256 == *sha)
            })
    }

    fn install_model(&self, model: &FarmModel, dir: &Path) -> Result<(), String> {
        let models = self.app.models();
        if let Some(text) = &model.manifest {
            let manifests = models.root().join("manifests");
            std::fs::create_dir_all(&manifests).map_err(|e| e.to_string())?;
            mintframe_diffusion::manager::check_id(&model.id).map_err(|e| e.to_string())?;
            std::fs::write(manifests.join(format!("{}.json", model.id)), text)
                .map_err(|e| e.to_string())?;
        }
        let src = if model.single_file {
            dir.join(model.files.first().map(|f| f.path.as_str()).unwrap_or(""))
        } else {
            dir.to_path_buf()
        };
        if models.record(&model.id).ok().flatten().is_some() {
            models.remove(&model.id).map_err(|e| e.to_string())?;
        }
        models
            .import(&model.id, &src, &JobCtx::detached())
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn scratch(&self) -> PathBuf {
        self.app.settings.data_dir.join("tmp").join("farm")
    }

    fn run(&self, task: &Task, ctx: &JobCtx) -> Result<Output, String> {
        let s = &task.spec;
        // A task draws from its prompt and the model it names, nothing else: a path in it
        // would be read from this worker's disk.
        if s.init_image.is_some()
            || s.mask.is_some()
            || s.latents.is_some()
            || s.tiny_decoder.is_some()
            || s.transparent.is_some()
            || !s.loras.is_empty()
            || !s.controls.is_empty()
        {
            return Err(
                "the task names files (init image, mask, latents, LoRAs, ControlNets or \
                 decoders); a farm draws from prompts and the task's model only"
                    .into(),
            );
        }
        let record = self
            .app
            .jobs()
            .submit(JobSpec::Generate(Box::new(mintframe_types::GenerateSpec {
                model: task.model.id.clone(),
                device: self.device.clone().or_else(|| s.device.clone()),
                ..s.clone()
            })))
            .map_err(|e| e.to_string())?;
        // A cancel from the coordinator reaches the job as `jobs cancel` would.
        let watching = ctx.cancel_token().clone();
        let app = Arc::clone(&self.app);
        let id = record.id.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let watcher = std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                if watching.is_cancelled() {
                    let _ = app.jobs().cancel(&id.0);
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let finished = self.app.run_job(&record.id, &|_| {});
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = watcher.join();
        let finished = finished.map_err(|e| e.to_string())?;
        match finished.state {
            JobState::Succeeded => {}
            JobState::Cancelled => return Err("cancelled".into()),
            _ => {
                return Err(finished
                    .error
                    .unwrap_or_else(|| "the generation failed with no reason".into()));
            }
        }
        let id = finished
            .outputs
            .first()
            .ok_or("the generation made no image")?;
        let d = self.app.library.asset(id).map_err(|e| e.to_string())?;
        let main = d
            .files
            .iter()
            .find(|f| f.role == "main")
            .ok_or("the image has no file")?;
        let png =
            std::fs::read(self.app.library.file_path(&main.sha256)).map_err(|e| e.to_string())?;
        let recipe = d.recipe.ok_or("the image has no recipe")?;
        Ok(Output { png, recipe })
    }

    fn device(&self) -> String {
        self.device.clone().unwrap_or_else(|| "cpu".into())
    }
}
