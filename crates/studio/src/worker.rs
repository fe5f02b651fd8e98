//! The one job worker both shells start. It drains the queue oldest first with one lane per
//! resource — diffusion jobs one at a time (one model resident, the memory preflight holds),
//! I/O jobs (imports, publishes) alongside — and sends each job's [`JobEvent`]s to whoever
//! follows: the studio's window over a Tauri channel, the CLI's progress bars.
//!
//! Jobs are rows first, so a job queued by another process, or re-queued after a crash when the
//! app opened, is picked up too: a lane that finds nothing to do sleeps until a submit here
//! wakes it, or for [`IDLE_RESCAN`] at most.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mintframe_jobs::Progress;
use mintframe_types::{GenerateSpec, JobEvent, JobId, JobRecord, JobSpec, JobState};

use crate::{App, StudioError};

/// How long an idle lane waits before it looks at the queue again (another process may have
/// queued a job; this process's own submits wake it at once).
pub const IDLE_RESCAN: Duration = Duration::from_millis(1000);

/// Progress events per job are sent at most this often; stage changes, the last step and state
/// changes always go.
pub const EVENT_EVERY: Duration = Duration::from_millis(100);

/// Previews (an image a step) are sent at most this often.
pub const PREVIEW_EVERY: Duration = Duration::from_millis(250);

/// What a job needs to itself while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// A diffusion model: one job at a time, so two models are never resident together.
    Diffusion,
    /// Files and the network: imports and publishes, alongside a generation.
    Io,
    /// Model downloads (gigabytes): beside the rest, so a pull holds up no publish.
    Download,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Diffusion, Lane::Io, Lane::Download];

    pub fn of(spec: &JobSpec) -> Lane {
        match spec {
            JobSpec::Generate(_)
            | JobSpec::Train(_)
            | JobSpec::Character(_)
            | JobSpec::Clip(_)
            | JobSpec::Shots(_)
            | JobSpec::Interpolate(_)
            | JobSpec::Collection(_) => Lane::Diffusion,
            JobSpec::Import { .. }
            | JobSpec::Publish(_)
            | JobSpec::Process { .. }
            | JobSpec::Sheet(_) => Lane::Io,
            // Seams painted by a model take the diffusion lane; cutting tiles is light work.
            JobSpec::Tileset(t) if t.seam.is_some() => Lane::Diffusion,
            JobSpec::Tileset(_) => Lane::Io,
            JobSpec::PullModel { .. } => Lane::Download,
        }
    }
}

/// Which queued jobs a worker takes.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every queued job (the studio, `mintframe jobs resume`).
    Queue,
    /// Only these (a CLI command runs the job it submitted and leaves the rest to others).
    Only(HashSet<JobId>),
}

#[derive(Debug)]
struct Shared {
    app: Arc<App>,
    scope: Mutex<Scope>,
    wake: Condvar,
    /// Bumped by every submit, so a lane that was scanning when it happened scans again.
    submits: Mutex<u64>,
    stop: AtomicBool,
    busy: Mutex<HashSet<Lane>>,
    followers: Mutex<Vec<Sender<JobEvent>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running worker. Dropping it stops the lanes after the jobs they are running end.
#[derive(Debug)]
pub struct Worker {
    shared: Arc<Shared>,
    lanes: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Starts one thread per lane.
    pub fn start(app: Arc<App>, scope: Scope) -> Result<Worker, StudioError> {
        Worker::with_lanes(app, scope, Lane::ALL)
    }

    /// A worker that runs nothing: its submits only queue (`--detach`), so the job cannot
    /// start in this process before it returns; the studio or `jobs resume` runs it.
    pub fn queue_only(app: Arc<App>) -> Result<Worker, StudioError> {
        Worker::with_lanes(app, Scope::Only(HashSet::new()), [])
    }

    fn with_lanes<const N: usize>(
        app: Arc<App>,
        scope: Scope,
        lanes_to_run: [Lane; N],
    ) -> Result<Worker, StudioError> {
        let shared = Arc::new(Shared {
            app,
            scope: Mutex::new(scope),
            wake: Condvar::new(),
            submits: Mutex::new(0),
            stop: AtomicBool::new(false),
            busy: Mutex::new(HashSet::new()),
            followers: Mutex::new(Vec::new()),
        });
        let mut lanes = Vec::new();
        for lane in lanes_to_run {
            let s = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("jobs-{lane:?}").to_lowercase())
                .spawn(move || lane_loop(&s, lane))
                .map_err(|e| StudioError::Task(format!("cannot start a job lane: {e}")))?;
            lanes.push(handle);
        }
        Ok(Worker { shared, lanes })
    }

    pub fn app(&self) -> &Arc<App> {
        &self.shared.app
    }

    /// Every event of every job from now on. The receiver may be dropped at any time.
    pub fn subscribe(&self) -> Receiver<JobEvent> {
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.shared.followers).push(tx);
        rx
    }

    /// Queues a job, takes it into this worker's scope and wakes the lanes.
    pub fn submit(&self, spec: JobSpec) -> Result<JobRecord, StudioError> {
        let record = self.shared.app.jobs().submit(spec)?;
        self.enqueued(&record);
        Ok(record)
    }

    /// Queues a generation with its defaults filled in and its seed fixed.
    pub fn submit_generate(&self, spec: GenerateSpec) -> Result<JobRecord, StudioError> {
        let record = self.shared.app.submit_generate(spec)?;
        self.enqueued(&record);
        Ok(record)
    }

    /// [`App::complete_character`], then queues the pack and wakes the lanes.
    pub fn submit_character(
        &self,
        spec: mintframe_types::CharacterSpec,
    ) -> Result<JobRecord, StudioError> {
        let spec = self.shared.app.complete_character(spec)?;
        self.submit(JobSpec::Character(Box::new(spec)))
    }

    /// [`App::submit_collection`] (the spec must draw), then wakes the lanes.
    pub fn submit_collection(
        &self,
        job: mintframe_types::CollectionJob,
    ) -> Result<JobRecord, StudioError> {
        let record = self.shared.app.submit_collection(job)?;
        self.enqueued(&record);
        Ok(record)
    }

    /// [`App::complete_clip`], then queues the clip and wakes the lanes.
    pub fn submit_clip(&self, spec: mintframe_types::ClipSpec) -> Result<JobRecord, StudioError> {
        let spec = self.shared.app.complete_clip(spec)?;
        self.submit(JobSpec::Clip(Box::new(spec)))
    }

    /// [`App::complete_interpolate`], then queues it and wakes the lanes.
    pub fn submit_interpolate(
        &self,
        spec: mintframe_types::InterpolateSpec,
    ) -> Result<JobRecord, StudioError> {
        let spec = self.shared.app.complete_interpolate(spec)?;
        self.submit(JobSpec::Interpolate(Box::new(spec)))
    }

    /// [`App::complete_shots`], then queues the cinematic and wakes the lanes.
    pub fn submit_shots(
        &self,
        list: mintframe_types::shots::ShotList,
    ) -> Result<JobRecord, StudioError> {
        let list = self.shared.app.complete_shots(list)?;
        self.submit(JobSpec::Shots(Box::new(list)))
    }

    /// [`App::submit_train`], then wakes the lanes.
    pub fn submit_train(&self, spec: mintframe_types::TrainSpec) -> Result<JobRecord, StudioError> {
        let record = self.shared.app.submit_train(spec)?;
        self.enqueued(&record);
        Ok(record)
    }

    /// Queues a collection's publish (checked offline first).
    pub fn submit_publish(
        &self,
        spec: mintframe_types::PublishSpec,
    ) -> Result<JobRecord, StudioError> {
        let record = self.shared.app.submit_publish(spec)?;
        self.enqueued(&record);
        Ok(record)
    }

    /// Queues a model download.
    pub fn submit_pull(&self, model: &str) -> Result<JobRecord, StudioError> {
        let record = self.shared.app.submit_pull(model)?;
        self.enqueued(&record);
        Ok(record)
    }

    /// Takes an already queued job (`jobs resume ID`) into this worker's scope.
    pub fn adopt(&self, record: &JobRecord) {
        self.enqueued(record);
    }

    fn enqueued(&self, record: &JobRecord) {
        if let Scope::Only(ids) = &mut *lock(&self.shared.scope) {
            ids.insert(record.id.clone());
        }
        broadcast(&self.shared, event_of(record));
        *lock(&self.shared.submits) += 1;
        self.shared.wake.notify_all();
    }

    /// Waits until `id` has ended (here or in any process) and returns its record. `on_event`
    /// sees every event of it; a job another process runs is followed through its row.
    pub fn follow(
        &self,
        id: &JobId,
        rx: &Receiver<JobEvent>,
        on_event: &mut dyn FnMut(&JobEvent),
    ) -> Result<JobRecord, StudioError> {
        loop {
            match rx.recv_timeout(IDLE_RESCAN) {
                Ok(ev) if &ev.id == id => {
                    on_event(&ev);
                    if ev.state.is_finished() {
                        return self.shared.app.jobs().get(&id.0);
                    }
                }
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let record = self.shared.app.jobs().get(&id.0)?;
                    if record.state.is_finished() {
                        return Ok(record);
                    }
                    if record.state == JobState::Running && !self.runs_here(id) {
                        on_event(&event_of(&record));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(StudioError::Task("the job worker stopped".into()));
                }
            }
        }
    }

    fn runs_here(&self, id: &JobId) -> bool {
        self.shared.app.jobs().is_running_here(id)
    }

    /// Waits until no job in this worker's scope is queued or running.
    pub fn drain(&self) -> Result<(), StudioError> {
        loop {
            let pending = pending(&self.shared)?;
            if pending.is_empty() && lock(&self.shared.busy).is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        for lane in self.lanes.drain(..) {
            let _ = lane.join();
        }
    }
}

/// Queued jobs in scope, oldest first.
fn pending(s: &Shared) -> Result<Vec<JobRecord>, StudioError> {
    let scope = lock(&s.scope).clone();
    let mut queued: Vec<JobRecord> = s
        .app
        .jobs()
        .list(true)?
        .into_iter()
        .filter(|j| j.state == JobState::Queued)
        .filter(|j| match &scope {
            Scope::Queue => true,
            Scope::Only(ids) => ids.contains(&j.id),
        })
        .collect();
    queued.reverse();
    Ok(queued)
}

fn lane_loop(s: &Shared, lane: Lane) {
    while !s.stop.load(Ordering::SeqCst) {
        let seen = *lock(&s.submits);
        let next = match pending(s) {
            Ok(jobs) => jobs.into_iter().find(|j| Lane::of(&j.spec) == lane),
            Err(e) => {
                tracing::error!(?lane, "cannot read the job queue: {e}");
                None
            }
        };
        let Some(job) = next else {
            let guard = lock(&s.submits);
            if *guard == seen && !s.stop.load(Ordering::SeqCst) {
                let _ = s.wake.wait_timeout(guard, IDLE_RESCAN);
            }
            continue;
        };
        lock(&s.busy).insert(lane);
        run_one(s, &job);
        lock(&s.busy).remove(&lane);
    }
}

fn run_one(s: &Shared, job: &JobRecord) {
    let throttle = Mutex::new(Throttle::default());
    let mut running = job.clone();
    running.state = JobState::Running;
    let kind = job.spec.kind();
    let last_progress = Mutex::new(None::<Progress>);
    let last_preview = Mutex::new(None::<Instant>);
    let on_progress = |p: &Progress| {
        *lock(&last_progress) = Some(p.clone());
        let mut t = lock(&throttle);
        if let Some(eta_secs) = t.accept(p) {
            broadcast(
                s,
                JobEvent {
                    id: job.id.clone(),
                    kind,
                    state: JobState::Running,
                    progress: Some(p.clone()),
                    eta_secs,
                    preview: None,
                    outputs: Vec::new(),
                    refused: Vec::new(),
                    error: None,
                    error_kind: None,
                },
            );
        }
    };
    let on_preview = |png: &[u8]| {
        use base64::Engine;
        {
            let mut last = lock(&last_preview);
            if last.is_some_and(|t| t.elapsed() < PREVIEW_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        broadcast(
            s,
            JobEvent {
                id: job.id.clone(),
                kind,
                state: JobState::Running,
                progress: lock(&last_progress).clone(),
                eta_secs: None,
                preview: Some(format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(png)
                )),
                outputs: Vec::new(),
                refused: Vec::new(),
                error: None,
                error_kind: None,
            },
        );
    };
    // Previews cost an encode per step: made only while someone follows.
    let followed = !lock(&s.followers).is_empty();
    let reports = crate::Reports {
        on_progress: &on_progress,
        on_preview: followed.then_some(&on_preview as crate::registry::OnPreview<'_>),
    };
    let result = s.app.run_job_with(&job.id, &reports);
    match result {
        Ok(record) => broadcast(s, event_of(&record)),
        // Another process claimed it first: it is theirs to run and to report.
        Err(StudioError::JobNotQueued(_)) => {}
        Err(e) => {
            tracing::error!(job = %job.id, "the job could not run: {e}");
            let mut ev = event_of(&running);
            ev.state = JobState::Failed;
            ev.error = Some(e.to_string());
            ev.error_kind = Some(e.kind());
            broadcast(s, ev);
        }
    }
}

/// A job's record as an event (no ETA: that needs the rate the lane measures).
pub fn event_of(r: &JobRecord) -> JobEvent {
    JobEvent {
        id: r.id.clone(),
        kind: r.spec.kind(),
        state: r.state,
        progress: r.progress.clone(),
        eta_secs: None,
        preview: None,
        outputs: r.outputs.clone(),
        refused: r.refused.clone(),
        error: r.error.clone(),
        error_kind: match r.state {
            JobState::Cancelled => Some(mintframe_types::ErrorKind::Cancelled),
            _ => None,
        },
    }
}

fn broadcast(s: &Shared, ev: JobEvent) {
    lock(&s.followers).retain(|tx| tx.send(ev.clone()).is_ok());
}

/// Decides which progress reports become events, and the ETA of each.
#[derive(Debug, Default)]
struct Throttle {
    last_sent: Option<Instant>,
    stage: String,
    /// When the stage began and at which step, for the rate.
    stage_start: Option<(Instant, u64)>,
    sent_by_stage: HashMap<String, u64>,
}

impl Throttle {
    /// `Some(eta)` when `p` should be sent.
    fn accept(&mut self, p: &Progress) -> Option<Option<u32>> {
        let now = Instant::now();
        let new_stage = p.stage != self.stage;
        if new_stage {
            self.stage = p.stage.clone();
            self.stage_start = Some((now, p.step));
        }
        let last = p.total > 0 && p.step >= p.total;
        let due = self
            .last_sent
            .is_none_or(|t| now.duration_since(t) >= EVENT_EVERY);
        if !(new_stage || last || due) {
            return None;
        }
        self.last_sent = Some(now);
        *self.sent_by_stage.entry(p.stage.clone()).or_default() += 1;
        Some(self.eta(p, now))
    }

    fn eta(&self, p: &Progress, now: Instant) -> Option<u32> {
        let (t0, s0) = self.stage_start?;
        let done = p.step.checked_sub(s0)?;
        let elapsed = now.duration_since(t0).as_secs_f64();
        if p.total == 0 || done == 0 || elapsed < 0.2 {
            return None;
        }
        let left = p.total.saturating_sub(p.step) as f64;
        Some((elapsed / done as f64 * left).ceil() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Arc<App> {
        Arc::new(
            App::open(crate::Settings {
                data_dir: dir.to_path_buf(),
                ipfs_api: "http://127.0.0.1:1".into(),
                start_node_on_demand: false,
            })
            .expect("app"),
        )
    }

    fn tiny(prompt: &str, steps: u32) -> GenerateSpec {
        GenerateSpec {
            model: "tiny-sd".into(),
            prompt: prompt.into(),
            seed: Some(7),
            steps: Some(steps),
            ..GenerateSpec::default()
        }
    }

    #[test]
    fn a_second_generation_waits_for_the_first_and_both_report_by_events() {
        let dir = tempfile::tempdir().expect("tmp");
        let worker = Worker::start(open(dir.path()), Scope::Queue).expect("worker");
        let rx = worker.subscribe();
        let a = worker.submit_generate(tiny("a slime", 6)).expect("a");
        let b = worker.submit_generate(tiny("a knight", 2)).expect("b");
        let mut order = Vec::new();
        let mut last_step = HashMap::new();
        let mut previews = HashSet::new();
        while order.len() < 4 {
            let ev = rx.recv_timeout(Duration::from_secs(120)).expect("event");
            if ev
                .preview
                .as_deref()
                .is_some_and(|p| p.starts_with("data:image/png;base64,"))
            {
                previews.insert(ev.id.clone());
            }
            if ev.state == JobState::Running && ev.progress.is_none() {
                continue;
            }
            if let Some(p) = &ev.progress
                && p.stage == "denoise"
            {
                last_step.insert(ev.id.clone(), (p.step, p.total));
            }
            if ev.state == JobState::Running && !order.contains(&(ev.id.clone(), "ran")) {
                order.push((ev.id.clone(), "ran"));
            }
            if ev.state.is_finished() {
                assert_eq!(ev.state, JobState::Succeeded, "{ev:?}");
                assert_eq!(ev.outputs.len(), 1);
                order.push((ev.id.clone(), "done"));
            }
        }
        // One diffusion job at a time: b starts only after a ended.
        assert_eq!(
            order,
            vec![
                (a.id.clone(), "ran"),
                (a.id.clone(), "done"),
                (b.id.clone(), "ran"),
                (b.id.clone(), "done"),
            ]
        );
        assert_eq!(last_step[&a.id], (6, 6), "progress rose to the last step");
        assert_eq!(last_step[&b.id], (2, 2));
        assert!(
            previews.contains(&a.id) && previews.contains(&b.id),
            "each followed generation sends a preview of its latents"
        );
    }

    #[test]
    fn a_job_left_running_by_a_dead_process_is_run_again_by_the_next_worker() {
        let dir = tempfile::tempdir().expect("tmp");
        let id = {
            let app = open(dir.path());
            let job = app.submit_generate(tiny("a slime", 2)).expect("job");
            // As a crashed process leaves it: claimed, running, its owner gone.
            assert!(app.library().claim_job(&job.id).expect("claim"));
            job.id
        };
        let app = open(dir.path());
        assert_eq!(
            app.jobs().get(&id.0).expect("job").state,
            JobState::Queued,
            "re-queued when the app opened"
        );
        let worker = Worker::start(Arc::clone(&app), Scope::Queue).expect("worker");
        let rx = worker.subscribe();
        let done = worker.follow(&id, &rx, &mut |_| {}).expect("follow");
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
        assert_eq!(done.outputs.len(), 1);
    }

    fn p(stage: &str, step: u64, total: u64) -> Progress {
        Progress {
            stage: stage.into(),
            step,
            total,
        }
    }

    #[test]
    fn progress_is_throttled_but_stage_changes_and_the_last_step_always_go() {
        let mut t = Throttle::default();
        assert!(t.accept(&p("denoise", 0, 100)).is_some(), "first report");
        let mut sent = 0;
        for step in 1..99 {
            if t.accept(&p("denoise", step, 100)).is_some() {
                sent += 1;
            }
        }
        assert_eq!(sent, 0, "98 reports within 100 ms are folded");
        assert!(t.accept(&p("denoise", 100, 100)).is_some(), "the last step");
        assert!(t.accept(&p("decode", 0, 1)).is_some(), "a new stage");
    }

    #[test]
    fn the_eta_follows_the_rate_of_the_stage() {
        let mut t = Throttle::default();
        let start = Instant::now() - Duration::from_secs(10);
        t.stage = "denoise".into();
        t.stage_start = Some((start, 0));
        let eta = t.eta(&p("denoise", 10, 30), Instant::now()).expect("eta");
        assert!((19..=21).contains(&eta), "{eta}");
        assert_eq!(t.eta(&p("denoise", 0, 30), Instant::now()), None);
        assert_eq!(t.eta(&p("denoise", 5, 0), Instant::now()), None);
    }

    #[test]
    fn generations_share_one_lane_and_io_runs_beside_them() {
        assert_eq!(
            Lane::of(&JobSpec::Generate(Box::default())),
            Lane::Diffusion
        );
        assert_eq!(
            Lane::of(&JobSpec::Import {
                paths: vec![],
                kind: None
            }),
            Lane::Io
        );
    }
}
