//! Mintframe's render farm on NATS JetStream (`nats-server`, the `async-nats` client).
//!
//! - Tasks go to the work-queue stream `FARM_JOBS` (`mintframe.farm.jobs.<run>`); every worker
//!   pulls from its one durable consumer `workers` with explicit acks, and sends in-progress
//!   acks while it works, so a long task stays its own and a dead worker's comes back after
//!   [`ACK_WAIT`].
//! - A worker puts the image in its own object store bucket (`results_<worker>`) and announces
//!   it on `mintframe.farm.result.<worker>.<run>` (stream `FARM_RESULTS`), then acks the task.
//!   The coordinator imports each token once, whatever is delivered twice.
//! - Models are named by sha256 in the `models` bucket; a worker without a task's model fetches
//!   its files from there and checks every hash before it installs them.
//! - Users are nkeys; a worker may publish and subscribe only on its own subjects and inbox
//!   ([`config`]), and the server can require TLS.

pub mod config;
pub mod coordinator;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mintframe_types::{GenerateSpec, Recipe};
use serde::{Deserialize, Serialize};

pub use config::{Credentials, FarmInit, init};
pub use coordinator::{Coordinator, Incoming, ResultStream};
pub use mintframe_types::{FarmStatus, WorkerBeat};
pub use worker::{Executor, Output, run_worker};

pub const JOBS_STREAM: &str = "FARM_JOBS";
pub const RESULTS_STREAM: &str = "FARM_RESULTS";
pub const WORKERS_CONSUMER: &str = "workers";
pub const MODELS_BUCKET: &str = "models";
/// How long a delivered task stays a worker's without an ack or an in-progress ack.
pub const ACK_WAIT: Duration = Duration::from_secs(10);

pub fn jobs_subject(run: &str) -> String {
    format!("mintframe.farm.jobs.{run}")
}
pub fn result_subject(worker: &str, run: &str) -> String {
    format!("mintframe.farm.result.{worker}.{run}")
}
pub fn beat_subject(worker: &str) -> String {
    format!("mintframe.farm.beat.{worker}")
}
pub const CANCEL_SUBJECT: &str = "mintframe.farm.cancel";
pub fn results_bucket(worker: &str) -> String {
    format!("results_{worker}")
}
pub fn inbox_prefix(worker: &str) -> String {
    format!("_INBOX_{worker}")
}

#[derive(Debug, thiserror::Error)]
pub enum FarmError {
    #[error("farm URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach the farm at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the farm at {url} refused the credential {creds}: {reason}")]
    Refused {
        url: String,
        creds: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Credentials { path: PathBuf, reason: String },
    #[error("the farm: {action}: {reason}")]
    Nats {
        action: &'static str,
        reason: String,
    },
    #[error("{what} from the farm has sha256 {got}, not {expected}; it was not used")]
    Corrupt {
        what: String,
        expected: String,
        got: String,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the farm task was cancelled")]
    Cancelled,
}

pub(crate) fn nats(action: &'static str, e: impl std::fmt::Display) -> FarmError {
    FarmError::Nats {
        action,
        reason: e.to_string(),
    }
}

pub(crate) fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> FarmError {
    FarmError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A farm address: `nats://host:port` or `tls://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarmUrl(String);

impl FarmUrl {
    pub fn parse(url: &str) -> Result<FarmUrl, FarmError> {
        let bad = |reason: &str| FarmError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("nats://")
            .or_else(|| url.strip_prefix("tls://"))
            .ok_or_else(|| bad("use nats://HOST:PORT or tls://HOST:PORT"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("the port is missing"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("use HOST:PORT with a port number"));
        }
        Ok(FarmUrl(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_tls(&self) -> bool {
        self.0.starts_with("tls://")
    }
}

impl std::fmt::Display for FarmUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One file of a model, named by its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmFile {
    /// Relative to the model's folder (or the file's own name for a single file).
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// The model a task needs: its id on the coordinator, the manifest that describes it there
/// (none for a built-in), and every file by sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmModel {
    pub id: String,
    pub manifest: Option<String>,
    pub single_file: bool,
    pub files: Vec<FarmFile>,
}

/// One token to draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub run: String,
    pub token: u32,
    /// Completed by the coordinator, so every worker runs the same generation.
    pub spec: GenerateSpec,
    pub model: FarmModel,
}

/// What a worker says it drew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    pub run: String,
    pub token: u32,
    pub worker: String,
    /// The object in the worker's results bucket.
    pub object: String,
    pub sha256: String,
    pub recipe: Option<Recipe>,
    /// Why the worker could not draw it (then no image).
    #[serde(default)]
    pub error: Option<String>,
}

/// The cancel of a run, to every worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    pub run: String,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Connects as the user of `creds` (its nkey seed), with its inbox prefix, trusting the farm's
/// CA where the URL is `tls://`.
pub async fn connect(url: &FarmUrl, creds: &Credentials) -> Result<async_nats::Client, FarmError> {
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut opts = async_nats::ConnectOptions::new()
        .nkey(creds.seed.clone())
        .name(format!("mintframe {}", creds.name))
        .custom_inbox_prefix(inbox_prefix(&creds.name))
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |e| {
            let tx = events_tx.clone();
            async move {
                let _ = tx.send(e.to_string());
            }
        });
    if url.is_tls() {
        let ca = creds.ca.as_ref().ok_or_else(|| FarmError::Credentials {
            path: creds.path.clone(),
            reason: "the farm URL is tls:// but the credential names no CA certificate".into(),
        })?;
        if !ca.is_file() {
            return Err(FarmError::Credentials {
                path: creds.path.clone(),
                reason: format!(
                    "the farm's CA certificate {} is not there (copy ca.pem beside the credential)",
                    ca.display()
                ),
            });
        }
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    match opts.connect(url.as_str()).await {
        Ok(c) => Ok(c),
        Err(e) => {
            let reason = e.to_string();
            let mut said = Vec::new();
            while let Ok(ev) = events_rx.try_recv() {
                said.push(ev);
            }
            let all = format!("{reason} {}", said.join(" "));
            if all.to_lowercase().contains("authoriz") || all.to_lowercase().contains("auth") {
                Err(FarmError::Refused {
                    url: url.to_string(),
                    creds: creds.path.display().to_string(),
                    reason: all.trim().to_owned(),
                })
            } else {
                Err(FarmError::Unreachable {
                    url: url.to_string(),
                    reason: all.trim().to_owned(),
                })
            }
        }
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn farm_urls_need_a_scheme_and_a_port() {
        assert!(FarmUrl::parse("nats://127.0.0.1:4222").is_ok());
        assert!(
            FarmUrl::parse("tls://farm.example:4443")
                .expect("tls")
                .is_tls()
        );
        for bad in [
            "127.0.0.1:4222",
            "http://x:1",
            "nats://x",
            "nats://:4222",
            "nats://x:y",
        ] {
            assert!(FarmUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests;
