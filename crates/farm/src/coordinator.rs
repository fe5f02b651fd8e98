//! The side that hands out tasks and takes results: the studio or the CLI.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, object_store, stream};
use futures::StreamExt;
use mintframe_types::{FarmStatus, WorkerBeat, WorkerState};
use tokio::io::AsyncReadExt;

use crate::{
    ACK_WAIT, CANCEL_SUBJECT, Cancel, Credentials, Done, FarmError, FarmModel, FarmUrl,
    JOBS_STREAM, MODELS_BUCKET, RESULTS_STREAM, Task, WORKERS_CONSUMER, jobs_subject, nats,
    results_bucket, sha256_hex,
};

#[derive(Debug)]
pub struct Coordinator {
    client: async_nats::Client,
    js: jetstream::Context,
    url: FarmUrl,
}

/// A result as it arrives, with what acknowledges it.
#[derive(Debug)]
pub struct Incoming {
    pub done: Done,
    /// The worker the subject names (the server lets each publish only on its own).
    pub worker: String,
    message: jetstream::Message,
}

impl Incoming {
    /// Done with: the stream forgets it.
    pub async fn ack(self) -> Result<(), FarmError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| nats("ack a result", e))
    }
}

impl Coordinator {
    pub async fn connect(url: &FarmUrl, creds: &Credentials) -> Result<Coordinator, FarmError> {
        let client = crate::connect(url, creds).await?;
        let js = jetstream::new(client.clone());
        Ok(Coordinator {
            client,
            js,
            url: url.clone(),
        })
    }

    /// The streams, the workers' consumer and the buckets, made where missing (each worker
    /// named gets its own results bucket).
    pub async fn ensure(&self, workers: &[String]) -> Result<(), FarmError> {
        let jobs = self
            .js
            .get_or_create_stream(stream::Config {
                name: JOBS_STREAM.into(),
                subjects: vec!["mintframe.farm.jobs.>".into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| nats("create the task stream", e))?;
        jobs.get_or_create_consumer(
            WORKERS_CONSUMER,
            pull::Config {
                durable_name: Some(WORKERS_CONSUMER.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 1000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| nats("create the workers' consumer", e))?;
        self.js
            .get_or_create_stream(stream::Config {
                name: RESULTS_STREAM.into(),
                subjects: vec!["mintframe.farm.result.>".into()],
                // Gone once the coordinator acks it; each run's consumer sees only its own.
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| nats("create the results stream", e))?;
        let mut buckets = vec![MODELS_BUCKET.to_owned()];
        buckets.extend(workers.iter().map(|w| results_bucket(w)));
        for b in buckets {
            if self.js.get_object_store(&b).await.is_err() {
                self.js
                    .create_object_store(object_store::Config {
                        bucket: b.clone(),
                        storage: stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| nats("create an object store bucket", e))?;
            }
        }
        Ok(())
    }

    /// Puts every file of `model` (found under `root`) in the models bucket, by sha256, unless
    /// it is there already.
    pub async fn publish_model(&self, model: &FarmModel, root: &Path) -> Result<(), FarmError> {
        let store = self
            .js
            .get_object_store(MODELS_BUCKET)
            .await
            .map_err(|e| nats("open the models bucket", e))?;
        for f in &model.files {
            if store.info(&f.sha256).await.is_ok() {
                continue;
            }
            let path = if model.single_file {
                root.to_path_buf()
            } else {
                root.join(&f.path)
            };
            let mut file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| crate::io_err("cannot read", &path, e))?;
            store
                .put(f.sha256.as_str(), &mut file)
                .await
                .map_err(|e| nats("upload a model file", e))?;
        }
        Ok(())
    }

    /// Queues `task`; the same task of the same `batch` queued again within two minutes is
    /// dropped by the stream (a retried publish), anything else is one more delivery the
    /// coordinator imports once.
    pub async fn submit(&self, task: &Task, batch: &str) -> Result<(), FarmError> {
        let body = serde_json::to_vec(task).map_err(|e| nats("encode a task", e))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}-{}-{batch}", task.run, task.token).as_str(),
        );
        self.js
            .publish_with_headers(jobs_subject(&task.run), headers, body.into())
            .await
            .map_err(|e| nats("queue a task", e))?
            .await
            .map_err(|e| nats("queue a task", e))?;
        Ok(())
    }

    /// Drops every queued task of `run` (tasks a worker holds are not affected).
    pub async fn purge(&self, run: &str) -> Result<(), FarmError> {
        let stream = self
            .js
            .get_stream(JOBS_STREAM)
            .await
            .map_err(|e| nats("open the task stream", e))?;
        stream
            .purge()
            .filter(jobs_subject(run))
            .await
            .map_err(|e| nats("purge a run's tasks", e))?;
        Ok(())
    }

    /// Stops `run`: its queued tasks dropped, the workers drawing one told to stop.
    pub async fn cancel(&self, run: &str) -> Result<(), FarmError> {
        self.purge(run).await?;
        let body = serde_json::to_vec(&Cancel {
            run: run.to_owned(),
        })
        .map_err(|e| nats("encode a cancel", e))?;
        self.client
            .publish(CANCEL_SUBJECT, body.into())
            .await
            .map_err(|e| nats("send a cancel", e))?;
        self.client
            .flush()
            .await
            .map_err(|e| nats("send a cancel", e))
    }

    /// The results of `run`, from where this coordinator (or an earlier one, before a restart)
    /// left off: a durable consumer per run.
    pub async fn results(&self, run: &str) -> Result<ResultStream, FarmError> {
        let stream = self
            .js
            .get_stream(RESULTS_STREAM)
            .await
            .map_err(|e| nats("open the results stream", e))?;
        let name = format!("run-{run}");
        let consumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("mintframe.farm.result.*.{run}"),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(60),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| nats("follow a run's results", e))?;
        Ok(ResultStream { consumer })
    }

    /// The image a worker put in its bucket, checked against the sha256 it announced.
    pub async fn fetch_image(&self, done: &Done) -> Result<Vec<u8>, FarmError> {
        let store = self
            .js
            .get_object_store(results_bucket(&done.worker))
            .await
            .map_err(|e| nats("open a worker's results bucket", e))?;
        let mut object = store
            .get(&done.object)
            .await
            .map_err(|e| nats("get a result image", e))?;
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| nats("read a result image", e))?;
        let got = sha256_hex(&bytes);
        if got != done.sha256 {
            return Err(FarmError::Corrupt {
                what: format!("token {}'s image from {}", done.token, done.worker),
                expected: done.sha256.clone(),
                got,
            });
        }
        Ok(bytes)
    }

    /// Deletes an image once it is imported (or was already).
    pub async fn forget_image(&self, done: &Done) -> Result<(), FarmError> {
        let store = self
            .js
            .get_object_store(results_bucket(&done.worker))
            .await
            .map_err(|e| nats("open a worker's results bucket", e))?;
        match store.delete(&done.object).await {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(nats("delete a result image", e)),
        }
    }

    /// The queue and the workers heard from within `listen`.
    pub async fn status(&self, listen: Duration) -> Result<FarmStatus, FarmError> {
        let mut beats = self
            .client
            .subscribe("mintframe.farm.beat.>")
            .await
            .map_err(|e| nats("listen to the workers", e))?;
        let mut workers: BTreeMap<String, WorkerBeat> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + listen;
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, beats.next()).await {
            if let Ok(b) = serde_json::from_slice::<WorkerBeat>(&m.payload) {
                workers.insert(b.worker.clone(), b);
            }
        }
        let (queued, in_flight) = match self
            .js
            .get_consumer_from_stream::<pull::Config, _, _>(WORKERS_CONSUMER, JOBS_STREAM)
            .await
        {
            Ok(c) => {
                let info = c.get_info().await.map_err(|e| nats("read the queue", e))?;
                (info.num_pending, info.num_ack_pending as u32)
            }
            // A farm nobody has run yet.
            Err(_) => (0, 0),
        };
        let results = match self.js.get_stream(RESULTS_STREAM).await {
            Ok(s) => s.get_info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        let workers: Vec<WorkerBeat> = workers.into_values().collect();
        Ok(FarmStatus {
            url: self.url.to_string(),
            queued,
            in_flight,
            results,
            per_minute: workers.iter().map(|w| w.per_minute).sum(),
            workers,
        })
    }
}

/// Whether a worker is busy, for the status line.
pub fn busy(b: &WorkerBeat) -> bool {
    b.state != WorkerState::Idle
}

#[derive(Debug)]
pub struct ResultStream {
    consumer: jetstream::consumer::Consumer<pull::Config>,
}

impl ResultStream {
    /// The next result, or `None` when none came within `wait`. A message that is not a
    /// result is acked and skipped (it can never become one).
    pub async fn next(&self, wait: Duration) -> Result<Option<Incoming>, FarmError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| nats("wait for results", e))?;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| nats("wait for results", e))?;
            let worker = m
                .subject
                .as_str()
                .strip_prefix("mintframe.farm.result.")
                .and_then(|rest| rest.split('.').next())
                .unwrap_or_default()
                .to_owned();
            match serde_json::from_slice::<Done>(&m.payload) {
                Ok(done) => {
                    return Ok(Some(Incoming {
                        done,
                        worker,
                        message: m,
                    }));
                }
                Err(e) => {
                    tracing::warn!(subject = %m.subject, "not a result, skipped: {e}");
                    m.ack().await.map_err(|e| nats("skip a message", e))?;
                }
            }
        }
        Ok(None)
    }
}
