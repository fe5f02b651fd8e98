//! The job registry: jobs are rows first (so a restart sees them), then run on the caller's
//! thread under a [`JobCtx`] whose progress lands in the row and whose cancel flag follows the
//! row's `cancel_requested`, so `mintframe jobs cancel` in another process stops a job here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mintframe_jobs::{CancelToken, JobCtx, Progress};
use mintframe_library::{Library, LibraryError};
use mintframe_types::{JobId, JobRecord, JobSpec, JobState};

use crate::StudioError;
use crate::generate::ModelCache;
use mintframe_diffusion::manager::Manager;

const CANCEL_POLL: Duration = Duration::from_millis(200);
const PROGRESS_WRITE_EVERY: Duration = Duration::from_millis(250);

/// Takes a preview of a running job's work, as PNG bytes.
pub type OnPreview<'a> = &'a (dyn Fn(&[u8]) + Sync);

/// Who hears a running job: its progress, and (when someone shows them) its previews as PNGs.
pub struct Reports<'a> {
    pub on_progress: &'a (dyn Fn(&Progress) + Sync),
    pub on_preview: Option<OnPreview<'a>>,
}

impl<'a> Reports<'a> {
    pub fn progress(on_progress: &'a (dyn Fn(&Progress) + Sync)) -> Reports<'a> {
        Reports {
            on_progress,
            on_preview: None,
        }
    }
}

impl std::fmt::Debug for Reports<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("previews", &self.on_preview.is_some())
            .finish_non_exhaustive()
    }
}

enum Report {
    Progress(Progress),
    Preview(Vec<u8>),
}

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
    /// resumes safely (an import skips the files it already stored, a generation makes the same
    /// bytes again, a publish re-sends nothing its target holds).
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

    /// Puts a cancelled or failed job back in the queue, to run again from where it stopped.
    pub fn requeue(&self, id_or_prefix: &str) -> Result<JobRecord, StudioError> {
        let id = self.library.resolve_job_id(id_or_prefix)?;
        let job = self.library.job(&id)?.record;
        match job.state {
            JobState::Cancelled | JobState::Failed => {
                self.library.requeue_job(&id)?;
                Ok(self.library.job(&id)?.record)
            }
            JobState::Queued => Ok(job),
            _ => Err(StudioError::JobRunning(id.0.clone())),
        }
    }

    /// Cancels a job here or in whichever process runs it. Returns its state after the call.
    pub fn cancel(&self, id_or_prefix: &str) -> Result<JobState, StudioError> {
        let id = self.library.resolve_job_id(id_or_prefix)?;
        if let Some(token) = self.lock_running().get(&id) {
            token.cancel();
        }
        Ok(self.library.request_cancel(&id)?)
    }

    /// Whether this process runs `id` now.
    pub fn is_running_here(&self, id: &JobId) -> bool {
        self.lock_running().contains_key(id)
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, CancelToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one queued job to its end on this thread and returns its final record. The job's own
    /// failure is recorded in the row, not returned as an error.
    pub fn run(
        &self,
        id: &JobId,
        report: &Reports<'_>,
        execute: &(dyn Fn(&JobRecord, &JobCtx) -> Result<(), StudioError> + Sync),
    ) -> Result<JobRecord, StudioError> {
        if !self.library.claim_job(id)? {
            return Err(StudioError::JobNotQueued(id.0.clone()));
        }
        let stored = self.library.job(id)?;
        let token = CancelToken::new();
        self.lock_running().insert(id.clone(), token.clone());
        let finished = AtomicBool::new(false);
        let outcome = thread::scope(|scope| {
            // Follows the row's cancel flag, set by `jobs cancel` from any process; woken when
            // the job ends, so a short job (a farm worker's token) does not wait out a poll.
            let watcher = scope.spawn(|| {
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
                    thread::park_timeout(CANCEL_POLL);
                }
            });
            let last_write = Mutex::new(Instant::now() - PROGRESS_WRITE_EVERY);
            let (tx, rx) = std::sync::mpsc::sync_channel::<Report>(64);
            let preview_tx = tx.clone();
            let mut ctx = JobCtx::new(token.clone(), move |p| {
                // Dropped when full: progress is advisory, the work must not wait on a reader.
                let _ = tx.try_send(Report::Progress(p.clone()));
            });
            if report.on_preview.is_some() {
                ctx = ctx.with_preview(move |png| {
                    let _ = preview_tx.try_send(Report::Preview(png.to_vec()));
                });
            } else {
                drop(preview_tx);
            }
            let result = thread::scope(|inner| {
                let reader = inner.spawn(|| {
                    for r in rx {
                        let p = match r {
                            Report::Progress(p) => p,
                            Report::Preview(png) => {
                                if let Some(f) = report.on_preview {
                                    f(&png);
                                }
                                continue;
                            }
                        };
                        (report.on_progress)(&p);
                        let mut last = last_write.lock().unwrap_or_else(|e| e.into_inner());
                        if last.elapsed() >= PROGRESS_WRITE_EVERY || p.step == p.total {
                            let _ = self.library.set_job_progress(id, &p);
                            *last = Instant::now();
                        }
                    }
                });
                let result = execute(&stored.record, &ctx);
                drop(ctx);
                let _ = reader.join();
                result
            });
            finished.store(true, Ordering::SeqCst);
            watcher.thread().unpark();
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

    pub(crate) fn cache(&self) -> &ModelCache {
        &self.cache
    }
}
