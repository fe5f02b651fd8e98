//! `mintframe worker`: pulls tasks, draws them, returns the images.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use mintframe_jobs::{CancelToken, JobCtx};
use mintframe_types::{Recipe, WorkerBeat, WorkerState};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    Cancel, Credentials, Done, FarmError, FarmModel, FarmUrl, JOBS_STREAM, MODELS_BUCKET, Task,
    WORKERS_CONSUMER, beat_subject, nats, now_ms, result_subject, results_bucket, sha256_hex,
};

/// What a worker drew.
#[derive(Debug)]
pub struct Output {
    pub png: Vec<u8>,
    pub recipe: Recipe,
}

/// The engine behind a worker (the studio's, in `mintframe worker`).
pub trait Executor: Send + Sync + 'static {
    /// Whether `model` is installed here with exactly those files.
    fn has_model(&self, model: &FarmModel) -> bool;
    /// Installs `model` from its files, fetched and checked, in `dir`.
    fn install_model(&self, model: &FarmModel, dir: &Path) -> Result<(), String>;
    /// Where fetched files wait to be installed.
    fn scratch(&self) -> PathBuf;
    /// Draws the task's image.
    fn run(&self, task: &Task, ctx: &JobCtx) -> Result<Output, String>;
    fn device(&self) -> String;
}

struct Shared {
    beat: Mutex<WorkerBeat>,
    /// The run and cancel token of the task in hand.
    current: Mutex<Option<(String, CancelToken)>>,
}

fn set_state(shared: &Shared, state: WorkerState, task: Option<String>) {
    if let Ok(mut b) = shared.beat.lock() {
        b.state = state;
        b.task = task;
    }
}

/// Pulls and draws tasks until `stop` is cancelled (or `max_tasks` are done); returns how many
/// it finished. A task it cannot draw is answered with the reason, so the coordinator stops
/// rather than waits.
pub async fn run_worker(
    url: &FarmUrl,
    creds: &Credentials,
    exec: Arc<dyn Executor>,
    stop: CancelToken,
    max_tasks: Option<u64>,
) -> Result<u64, FarmError> {
    let client = crate::connect(url, creds).await?;
    let js = jetstream::new(client.clone());
    let name = creds.name.clone();
    let started = now_ms();
    let shared = Arc::new(Shared {
        beat: Mutex::new(WorkerBeat {
            worker: name.clone(),
            state: WorkerState::Idle,
            task: None,
            done: 0,
            started_ms: started,
            device: exec.device(),
            per_minute: 0.0,
        }),
        current: Mutex::new(None),
    });
    // Heartbeats, every two seconds, for `farm status`.
    let beats = {
        let client = client.clone();
        let shared = Arc::clone(&shared);
        let subject = beat_subject(&name);
        tokio::spawn(async move {
            loop {
                let body = shared.beat.lock().ok().map(|b| {
                    let mut b = b.clone();
                    let minutes = (now_ms().saturating_sub(b.started_ms)) as f64 / 60_000.0;
                    b.per_minute = if minutes > 0.0 {
                        b.done as f64 / minutes
                    } else {
                        0.0
                    };
                    serde_json::to_vec(&b).unwrap_or_default()
                });
                if let Some(body) = body {
                    let _ = client.publish(subject.clone(), body.into()).await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    // Cancels reach the task in hand.
    let cancels = {
        let mut sub = client
            .subscribe(crate::CANCEL_SUBJECT)
            .await
            .map_err(|e| nats("listen for cancels", e))?;
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let Ok(c) = serde_json::from_slice::<Cancel>(&m.payload) else {
                    continue;
                };
                if let Ok(cur) = shared.current.lock()
                    && let Some((run, token)) = cur.as_ref()
                    && *run == c.run
                {
                    token.cancel();
                }
            }
        })
    };
    let result = work(&js, &name, exec, &shared, &stop, max_tasks).await;
    beats.abort();
    cancels.abort();
    result
}

async fn work(
    js: &jetstream::Context,
    name: &str,
    exec: Arc<dyn Executor>,
    shared: &Arc<Shared>,
    stop: &CancelToken,
    max_tasks: Option<u64>,
) -> Result<u64, FarmError> {
    // The coordinator makes the stream and buckets; a worker started first waits for them.
    let (consumer, results) = loop {
        let consumer = js
            .get_consumer_from_stream::<pull::Config, _, _>(WORKERS_CONSUMER, JOBS_STREAM)
            .await;
        let results = js.get_object_store(results_bucket(name)).await;
        match (consumer, results) {
            (Ok(c), Ok(r)) => break (c, r),
            _ if stop.is_cancelled() => return Ok(0),
            (c, r) => {
                tracing::info!(
                    consumer = c.is_ok(),
                    bucket = r.is_ok(),
                    "the farm is not set up yet; waiting for a coordinator"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut done = 0u64;
    while !stop.is_cancelled() && max_tasks.is_none_or(|m| done < m) {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| nats("ask for a task", e))?;
        let Some(msg) = batch.next().await else {
            continue;
        };
        let msg = msg.map_err(|e| nats("receive a task", e))?;
        let task: Task = match serde_json::from_slice(&msg.payload) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("not a task, dropped: {e}");
                msg.ack_with(AckKind::Term)
                    .await
                    .map_err(|e| nats("drop a message", e))?;
                continue;
            }
        };
        let label = format!("{}/{}", task.run, task.token);
        tracing::info!(task = %label, "drawing");
        let outcome = draw(js, &exec, shared, &task, &msg).await;
        match answer(js, &results, name, &task, outcome, &msg).await {
            Ok(true) => {
                done += 1;
                if let Ok(mut b) = shared.beat.lock() {
                    b.done = done;
                }
            }
            Ok(false) => tracing::info!(task = %label, "cancelled by the coordinator"),
            Err(e) => {
                // The task goes back to the queue for whoever is next; this worker goes on.
                tracing::warn!(task = %label, "could not hand the result back: {e}");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
            }
        }
        set_state(shared, WorkerState::Idle, None);
    }
    Ok(done)
}

/// Hands a drawn task back: the image into this worker's bucket, the result announced, then the
/// task acked. `Ok(false)`: it was cancelled, and dropped.
async fn answer(
    js: &jetstream::Context,
    results: &jetstream::object_store::ObjectStore,
    name: &str,
    task: &Task,
    outcome: Result<Output, FarmError>,
    msg: &jetstream::Message,
) -> Result<bool, FarmError> {
    // One object per delivery: a task delivered again to this worker must not overwrite an
    // image the coordinator may be reading.
    let delivery = msg
        .info()
        .map(|i| format!("{}-{}", i.stream_sequence, i.delivered))
        .unwrap_or_else(|_| now_ms().to_string());
    let object = format!("{}-{}-{delivery}.png", task.run, task.token);
    let answer = match outcome {
        Ok(out) => {
            let sha256 = sha256_hex(&out.png);
            results
                .put(object.as_str(), &mut out.png.as_slice())
                .await
                .map_err(|e| nats("upload a result image", e))?;
            Done {
                run: task.run.clone(),
                token: task.token,
                worker: name.to_owned(),
                object,
                sha256,
                recipe: Some(out.recipe),
                error: None,
            }
        }
        Err(FarmError::Cancelled) => {
            msg.ack_with(AckKind::Term)
                .await
                .map_err(|e| nats("drop a cancelled task", e))?;
            return Ok(false);
        }
        Err(e) => Done {
            run: task.run.clone(),
            token: task.token,
            worker: name.to_owned(),
            object: String::new(),
            sha256: String::new(),
            recipe: None,
            error: Some(e.to_string()),
        },
    };
    let body = serde_json::to_vec(&answer).map_err(|e| nats("encode a result", e))?;
    js.publish(result_subject(name, &task.run), body.into())
        .await
        .map_err(|e| nats("send a result", e))?
        .await
        .map_err(|e| nats("send a result", e))?;
    // Only now is the task finished: killed before this line, it is delivered again.
    msg.double_ack().await.map_err(|e| nats("ack a task", e))?;
    Ok(true)
}

/// A model id as a folder name: what the task says is the coordinator's, not to be trusted
/// with a path.
fn safe_id(id: &str) -> Result<(), FarmError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(FarmError::Nats {
            action: "take the task",
            reason: format!("the model id {id:?} is not a plain name"),
        })
    }
}

/// Fetches the model if need be, then draws on a blocking thread; in-progress acks keep the
/// task this worker's the whole time (a model's files take a while too).
async fn draw(
    js: &jetstream::Context,
    exec: &Arc<dyn Executor>,
    shared: &Arc<Shared>,
    task: &Task,
    msg: &jetstream::Message,
) -> Result<Output, FarmError> {
    let cancel = CancelToken::new();
    if let Ok(mut cur) = shared.current.lock() {
        *cur = Some((task.run.clone(), cancel.clone()));
    }
    let work = draw_inner(js, exec, shared, task, &cancel);
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            () = tokio::time::sleep(crate::ACK_WAIT / 3) => {
                let _ = msg.ack_with(AckKind::Progress).await;
            }
        }
    };
    if let Ok(mut cur) = shared.current.lock() {
        *cur = None;
    }
    if cancel.is_cancelled() {
        return Err(FarmError::Cancelled);
    }
    result
}

async fn draw_inner(
    js: &jetstream::Context,
    exec: &Arc<dyn Executor>,
    shared: &Arc<Shared>,
    task: &Task,
    cancel: &CancelToken,
) -> Result<Output, FarmError> {
    let label = format!("{}/{}", task.run, task.token);
    safe_id(&task.model.id)?;
    let e = Arc::clone(exec);
    let model = task.model.clone();
    // Hashing what is installed is blocking work.
    let has = tokio::task::spawn_blocking(move || e.has_model(&model))
        .await
        .map_err(|e| nats("look for the task's model", e))?;
    if !has {
        set_state(shared, WorkerState::Fetching, Some(label.clone()));
        let dir = exec.scratch().join(format!("{}.fetch", task.model.id));
        let fetched = fetch_model(js, &task.model, &dir).await;
        let installed = match fetched {
            Ok(()) => {
                let e = Arc::clone(exec);
                let model = task.model.clone();
                let d = dir.clone();
                tokio::task::spawn_blocking(move || e.install_model(&model, &d))
                    .await
                    .map_err(|e| nats("install a model", e))
                    .and_then(|r| {
                        r.map_err(|reason| FarmError::Nats {
                            action: "install the task's model",
                            reason,
                        })
                    })
            }
            Err(e) => Err(e),
        };
        // Whatever happened, the fetched copy goes: installed, it was copied in.
        let _ = tokio::fs::remove_dir_all(&dir).await;
        installed?;
    }
    set_state(shared, WorkerState::Working, Some(label));
    let e = Arc::clone(exec);
    let t = task.clone();
    let c = cancel.clone();
    tokio::task::spawn_blocking(move || {
        let ctx = JobCtx::new(c, |_| {});
        e.run(&t, &ctx)
    })
    .await
    .map_err(|e| nats("draw", e))?
    .map_err(|reason| FarmError::Nats {
        action: "draw the task",
        reason,
    })
}

/// Every file of `model` from the models bucket into a fresh folder, each checked against its
/// sha256 before anything is installed.
async fn fetch_model(
    js: &jetstream::Context,
    model: &FarmModel,
    dir: &Path,
) -> Result<(), FarmError> {
    let store = js
        .get_object_store(MODELS_BUCKET)
        .await
        .map_err(|e| nats("open the models bucket", e))?;
    let _ = tokio::fs::remove_dir_all(dir).await;
    for f in &model.files {
        let rel = Path::new(&f.path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(FarmError::Nats {
                action: "fetch the task's model",
                reason: format!("the file name {:?} would leave the model's folder", f.path),
            });
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| crate::io_err("cannot create", parent, e))?;
        }
        let mut object = store
            .get(&f.sha256)
            .await
            .map_err(|e| nats("fetch a model file", e))?;
        // Streamed to disk and hashed on the way: a model is gigabytes.
        let mut out = tokio::fs::File::create(&path)
            .await
            .map_err(|e| crate::io_err("cannot write", &path, e))?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = object
                .read(&mut buf)
                .await
                .map_err(|e| nats("fetch a model file", e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .await
                .map_err(|e| crate::io_err("cannot write", &path, e))?;
        }
        out.flush()
            .await
            .map_err(|e| crate::io_err("cannot write", &path, e))?;
        let got: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != f.sha256 {
            return Err(FarmError::Corrupt {
                what: format!("model {} file {}", model.id, f.path),
                expected: f.sha256.clone(),
                got,
            });
        }
    }
    tracing::info!(model = %model.id, files = model.files.len(), "model fetched and checked");
    Ok(())
}
