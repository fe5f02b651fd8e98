//! The job registry: jobs are rows first (so a restart sees them), then run on the caller's
//! thread under a [`JobCtx`] whose progress lands in the row and whose cancel flag follows the
//! row's `cancel_requested`, so `mintframe jobs cancel` in another process stops a job here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mintframe_jobs::{CancelToken, JobCtx, Progress};
use mintframe_library::{Library, LibraryError};
use mintframe_types::{JobId, JobRecord, JobSpec, JobState};

use crate::StudioError;
use crate::generate::{Generator, ModelCache};
use mintframe_diffusion::manager::Manager;

const CANCEL_POLL: Duration = Duration::from_millis(200);
const PROGRESS_WRITE_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct JobRegistry {
    library: Arc<Library>,
    models: Manager,
    cache: ModelCache,
    running: Mutex<HashMap<JobId, CancelToken>>,
}

impl JobRegistry {
    pub fn new(library: Arc<Library>) -> JobRegistry {
        let models = Manager::new(crate::generate::models_dir(library.data_dir()));
        JobRegistry {
            library,
            models,
            cache: ModelCache::default(),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The model manager for this data folder.
    pub fn models(&self) -> &Manager {
        &self.models
    }

    /// Jobs whose process died while running them go back to the queue: every job kind so far
    /// resumes safely (an import skips the files it already stored).
    pub fn recover(&self) -> Result<Vec<JobRecord>, StudioError> {
        let mut requeued = Vec::new();
        for job in self.library.jobs(true)? {
            let orphaned = job.record.state == JobState::Running
                && !job
                    .owner
                    .as_deref()
                    .is_some_and(|o| self.library.owner_alive(o));
            if orphaned {
                if job.cancel_requested {
                    self.library.finish_job(
                        &job.record.id,
                        JobState::Cancelled,
                        Some("cancelled while its process was stopping"),
                    )?;
                } else {
                    self.library
                        .finish_job(&job.record.id, JobState::Queued, None)?;
                    tracing::info!(job = %job.record.id, "re-queued a job whose process stopped");
                    requeued.push(job.record);
                }
            }
        }
        Ok(requeued)
    }

    pub fn submit(&self, spec: JobSpec) -> Result<JobRecord, StudioError> {
        Ok(self.library.insert_job(&spec)?)
    }

    pub fn list(&self, unfinished_only: bool) -> Result<Vec<JobRecord>, StudioError> {
        Ok(self
            .library
            .jobs(unfinished_only)?
            .into_iter()
            .map(|j| j.record)
            .collect())
    }

    pub fn get(&self, id_or_prefix: &str) -> Result<JobRecord, StudioError> {
        let id = self.library.resolve_job_id(id_or_prefix)?;
        Ok(self.library.job(&id)?.record)
    }

    /// Cancels a job here or in whichever process runs it. Returns its state after the call.
    pub fn cancel(&self, id_or_prefix: &str) -> Result<JobState, StudioError> {
        let id = self.library.resolve_job_id(id_or_prefix)?;
        if let Some(token) = self.lock_running().get(&id) {
            token.cancel();
        }
        Ok(self.library.request_cancel(&id)?)
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, CancelToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs every queued job, oldest first, on this thread.
    pub fn run_queued(
        &self,
        on_progress: &(dyn Fn(&JobId, &Progress) + Sync),
    ) -> Result<Vec<JobRecord>, StudioError> {
        let mut queued: Vec<JobRecord> = self
            .list(true)?
            .into_iter()
            .filter(|j| j.state == JobState::Queued)
            .collect();
        queued.reverse();
        let mut done = Vec::new();
        for job in queued {
            match self.run(&job.id, &|p| on_progress(&job.id, p)) {
                Ok(r) => done.push(r),
                // Claimed by another process meanwhile: theirs to run.
                Err(StudioError::JobNotQueued(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Runs one queued job to its end on this thread and returns its final record. The job's own
    /// failure is recorded in the row, not returned as an error.
    pub fn run(
        &self,
        id: &JobId,
        on_progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<JobRecord, StudioError> {
        if !self.library.claim_job(id)? {
            return Err(StudioError::JobNotQueued(id.0.clone()));
        }
        let stored = self.library.job(id)?;
        let token = CancelToken::new();
        self.lock_running().insert(id.clone(), token.clone());
        let finished = AtomicBool::new(false);
        let outcome = thread::scope(|scope| {
            // Follows the row's cancel flag, set by `jobs cancel` from any process.
            scope.spawn(|| {
                while !finished.load(Ordering::SeqCst) {
                    if self
                        .library
                        .job(id)
                        .map(|j| j.cancel_requested)
                        .unwrap_or(false)
                    {
                        token.cancel();
                        break;
                    }
                    thread::sleep(CANCEL_POLL);
                }
            });
            let last_write = Mutex::new(Instant::now() - PROGRESS_WRITE_EVERY);
            let (tx, rx) = std::sync::mpsc::sync_channel::<Progress>(64);
            let ctx = JobCtx::new(token.clone(), move |p| {
                // Dropped when full: progress is advisory, the work must not wait on a reader.
                let _ = tx.try_send(p.clone());
            });
            let result = thread::scope(|inner| {
                let reader = inner.spawn(|| {
                    for p in rx {
                        on_progress(&p);
                        let mut last = last_write.lock().unwrap_or_else(|e| e.into_inner());
                        if last.elapsed() >= PROGRESS_WRITE_EVERY || p.step == p.total {
                            let _ = self.library.set_job_progress(id, &p);
                            *last = Instant::now();
                        }
                    }
                });
                let result = self.execute(id, &stored.record, &ctx);
                drop(ctx);
                let _ = reader.join();
                result
            });
            finished.store(true, Ordering::SeqCst);
            result
        });
        self.lock_running().remove(id);
        let (state, error) = match &outcome {
            Ok(()) => (JobState::Succeeded, None),
            Err(StudioError::Cancelled) | Err(StudioError::Library(LibraryError::Cancelled(_))) => {
                (
                    JobState::Cancelled,
                    Some("cancelled by the user".to_owned()),
                )
            }
            Err(e) => (JobState::Failed, Some(e.to_string())),
        };
        self.library.finish_job(id, state, error.as_deref())?;
        Ok(self.library.job(id)?.record)
    }

    fn execute(&self, id: &JobId, job: &JobRecord, ctx: &JobCtx) -> Result<(), StudioError> {
        match &job.spec {
            JobSpec::Import { paths, kind } => {
                // On resume, files already imported (recorded as outputs, in order) are skipped.
                let total = paths.len() as u64;
                for (i, path) in paths.iter().enumerate().skip(job.outputs.len()) {
                    ctx.check().map_err(|_| StudioError::Cancelled)?;
                    ctx.progress("import", i as u64, total);
                    self.library
                        .import_file(Path::new(path), *kind, Some(id), ctx)?;
                }
                ctx.progress("import", total, total);
                Ok(())
            }
            JobSpec::Generate(spec) => {
                let generator = Generator {
                    library: &self.library,
                    manager: &self.models,
                    cache: &self.cache,
                };
                match generator.run(id, spec, job.outputs.len(), ctx) {
                    Ok(_) => Ok(()),
                    Err(StudioError::Diffusion(mintframe_diffusion::Error::Cancelled(_))) => {
                        Err(StudioError::Cancelled)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}
