//! The Kubo RPC calls a publish makes, through ipfs-api's hyper backend.
//!
//! `add` goes through the backend's raw request rather than `add_with_form`: the typed answer
//! expects `Size` as a string (Kubo) where js-ipfs sends a number, and mis-reads multi-line
//! answers; here each NDJSON line is read tolerantly. js-ipfs also answers CIDv1 in base58
//! unless `cid-base` is given, so it always is for v1.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use ipfs_api_backend_hyper::{Form, IpfsApi, IpfsClient, request::ApiRequest};
use ipfs_api_prelude::Backend;
use serde::Serialize;

use crate::unixfs::CidVersion;
use crate::{ApiAddr, PublishError};

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AddQuery {
    cid_version: u32,
    raw_leaves: bool,
    pin: bool,
    wrap_with_directory: bool,
    progress: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cid_base: Option<&'static str>,
}

impl ApiRequest for AddQuery {
    const PATH: &'static str = "/add";
}

#[derive(Serialize)]
struct ArgQuery<'a> {
    arg: &'a str,
}

struct PinAdd<'a>(ArgQuery<'a>);
impl Serialize for PinAdd<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}
impl ApiRequest for PinAdd<'_> {
    const PATH: &'static str = "/pin/add";
}

struct PinLs<'a>(ArgQuery<'a>);
impl Serialize for PinLs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}
impl ApiRequest for PinLs<'_> {
    const PATH: &'static str = "/pin/ls";
}

/// One entry `add` reported: a file or folder under the added root, and the root last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub name: String,
    pub cid: String,
}

/// Reports bytes sent so far and the total.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

struct Counting<R> {
    inner: R,
    sent: Arc<AtomicU64>,
    total: u64,
    progress: Progress,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let sent = self.sent.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        (self.progress)(sent, self.total);
        Ok(n)
    }
}

/// A file opened when the request body first reads from it and closed at its end, so a folder
/// of ten thousand files never holds ten thousand descriptors at once.
struct OpenOnRead {
    path: PathBuf,
    file: Option<std::fs::File>,
    done: bool,
}

impl OpenOnRead {
    fn new(path: PathBuf) -> OpenOnRead {
        OpenOnRead {
            path,
            file: None,
            done: false,
        }
    }
}

impl Read for OpenOnRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self
                .file
                .insert(std::fs::File::open(&self.path).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot read {}: {e}", self.path.display()),
                    )
                })?),
        };
        let n = file.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.file = None;
            self.done = true;
        }
        Ok(n)
    }
}

fn io_err(action: &'static str, path: &Path, e: std::io::Error) -> PublishError {
    PublishError::Io {
        action,
        path: path.to_path_buf(),
        source: e,
    }
}

/// Every file and folder under `dir` (sorted, hidden entries skipped as `ipfs add -r` does),
/// as paths relative to `dir`'s parent.
fn entries(dir: &Path) -> Result<Vec<(PathBuf, bool, u64)>, PublishError> {
    let base = dir.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).map_err(|e| io_err("cannot read", &p, e))?;
        let rel = p.strip_prefix(base).unwrap_or(&p).to_path_buf();
        if meta.is_dir() {
            out.push((rel, true, 0));
            let mut children = Vec::new();
            for e in std::fs::read_dir(&p).map_err(|e| io_err("cannot list", &p, e))? {
                let e = e.map_err(|e| io_err("cannot list", &p, e))?;
                if !e.file_name().to_string_lossy().starts_with('.') {
                    children.push(e.path());
                }
            }
            children.sort();
            children.reverse();
            stack.extend(children);
        } else if meta.is_file() {
            out.push((rel, false, meta.len()));
        } else {
            return Err(io_err(
                "will not publish",
                &p,
                std::io::Error::other("only plain files and folders are published"),
            ));
        }
    }
    Ok(out)
}

fn node_error(api: &ApiAddr, endpoint: &'static str, reason: impl Into<String>) -> PublishError {
    PublishError::NodeError {
        api: api.to_string(),
        endpoint,
        reason: reason.into(),
    }
}

/// Retries what failed because the node could not be reached (a restart, a dropped
/// connection), waiting 0.5 s, 1 s, 2 s; anything the node itself refused fails at once.
async fn with_retry<T, F, Fut>(mut attempt: F) -> Result<T, PublishError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PublishError>>,
{
    let mut wait = Duration::from_millis(500);
    for _ in 0..3 {
        match attempt().await {
            Err(PublishError::Unreachable { api, reason }) => {
                tracing::warn!(%api, %reason, "IPFS node unreachable; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
    attempt().await
}

/// `ipfs add -r` of the folder `dir` (its name becomes the root's name), with Kubo's defaults
/// for `version` (v0; or v1 with raw leaves). Files stream from disk; memory stays bounded.
pub async fn add_dir(
    api: &ApiAddr,
    dir: &Path,
    version: CidVersion,
    pin: bool,
    progress: Progress,
) -> Result<Vec<Added>, PublishError> {
    let list = entries(dir)?;
    let total: u64 = list.iter().map(|(_, _, n)| n).sum();
    // Generous: a slow disk or a busy node, never a hung publish.
    let limit = Duration::from_secs(120 + total / (1 << 20));
    with_retry(|| {
        let list = &list;
        let progress = Arc::clone(&progress);
        async move {
            let client = api.client()?;
            let sent = Arc::new(AtomicU64::new(0));
            let mut form = Form::default();
            for (rel, is_dir, _) in list {
                // Kubo and js-ipfs read the part's file name as a URL-escaped path.
                let name = rel
                    .to_string_lossy()
                    .replace('%', "%25")
                    .replace('/', "%2F");
                if *is_dir {
                    let mime: mime::Mime = "application/x-directory"
                        .parse()
                        .map_err(|_| node_error(api, "add", "bad directory MIME type"))?;
                    form.add_reader_file_with_mime("file", std::io::empty(), name, mime);
                } else {
                    let full = dir.parent().unwrap_or(Path::new("")).join(rel);
                    let reader = Counting {
                        inner: OpenOnRead::new(full),
                        sent: Arc::clone(&sent),
                        total,
                        progress: Arc::clone(&progress),
                    };
                    form.add_reader_file("file", reader, name);
                }
            }
            let q = AddQuery {
                cid_version: match version {
                    CidVersion::V0 => 0,
                    CidVersion::V1 => 1,
                },
                raw_leaves: version == CidVersion::V1,
                pin,
                wrap_with_directory: false,
                progress: false,
                cid_base: (version == CidVersion::V1).then_some("base32"),
            };
            let (status, body) = tokio::time::timeout(limit, client.request_raw(q, Some(form)))
                .await
                .map_err(|_| PublishError::Unreachable {
                    api: api.to_string(),
                    reason: format!("add took over {} s", limit.as_secs()),
                })?
                .map_err(|e| crate::classify(api, "add", e))?;
            let text = String::from_utf8_lossy(&body);
            if !status.is_success() {
                return Err(node_error(
                    api,
                    "add",
                    format!("HTTP {status}: {}", text.trim()),
                ));
            }
            parse_add(api, &text)
        }
    })
    .await
}

/// Reads Kubo's (or js-ipfs's) `add` answer: newline-separated JSON objects, progress lines
/// without a hash, an error as `Message`. Public for the fuzz target.
pub fn parse_add(api: &ApiAddr, text: &str) -> Result<Vec<Added>, PublishError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| node_error(api, "add", format!("unreadable answer {line:?}: {e}")))?;
        if let Some(msg) = v.get("Message").and_then(|m| m.as_str()) {
            return Err(node_error(api, "add", msg));
        }
        // Progress lines carry "Bytes" and no hash.
        let (Some(name), Some(cid)) = (
            v.get("Name").and_then(|n| n.as_str()),
            v.get("Hash").and_then(|h| h.as_str()),
        ) else {
            continue;
        };
        out.push(Added {
            name: name.to_owned(),
            cid: cid.to_owned(),
        });
    }
    if out.is_empty() {
        return Err(node_error(api, "add", "the answer named no CID"));
    }
    Ok(out)
}

async fn raw<Q: ApiRequest>(
    api: &ApiAddr,
    endpoint: &'static str,
    q: Q,
) -> Result<(bool, serde_json::Value), PublishError> {
    let client = api.client()?;
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(120), client.request_raw(q, None))
            .await
            .map_err(|_| PublishError::Unreachable {
                api: api.to_string(),
                reason: format!("{endpoint} took over 120 s"),
            })?
            .map_err(|e| crate::classify(api, endpoint, e))?;
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    Ok((status.is_success(), v))
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct DagImport {
    pin_roots: bool,
}
impl ApiRequest for DagImport {
    const PATH: &'static str = "/dag/import";
}

struct DagExport<'a>(ArgQuery<'a>);
impl Serialize for DagExport<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}
impl ApiRequest for DagExport<'_> {
    const PATH: &'static str = "/dag/export";
}

/// `dag/import` of a CARv1 file (streamed), pinning its roots; returns the roots the node read.
pub async fn dag_import(api: &ApiAddr, car: &Path) -> Result<Vec<String>, PublishError> {
    let size = std::fs::metadata(car)
        .map_err(|e| io_err("cannot read", car, e))?
        .len();
    let limit = Duration::from_secs(120 + size / (1 << 20));
    with_retry(|| async {
        let client = api.client()?;
        let f = std::fs::File::open(car).map_err(|e| io_err("cannot read", car, e))?;
        let mut form = Form::default();
        form.add_reader_file("file", f, "collection.car");
        let (status, body) = tokio::time::timeout(
            limit,
            client.request_raw(DagImport { pin_roots: true }, Some(form)),
        )
        .await
        .map_err(|_| PublishError::Unreachable {
            api: api.to_string(),
            reason: format!("dag/import took over {} s", limit.as_secs()),
        })?
        .map_err(|e| crate::classify(api, "dag/import", e))?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(node_error(
                api,
                "dag/import",
                format!("HTTP {status}: {}", text.trim()),
            ));
        }
        let mut roots = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                node_error(
                    api,
                    "dag/import",
                    format!("unreadable answer {line:?}: {e}"),
                )
            })?;
            // Kubo: {"Root":{"Cid":{"/":"…"},"PinErrorMsg":""}}; stats lines carry no root.
            if let Some(root) = v.get("Root") {
                let msg = root
                    .get("PinErrorMsg")
                    .and_then(|m| m.as_str())
                    .unwrap_or("");
                if !msg.is_empty() {
                    return Err(node_error(api, "dag/import", msg));
                }
                if let Some(cid) = root["Cid"]["/"].as_str() {
                    roots.push(cid.to_owned());
                }
            }
        }
        if roots.is_empty() {
            return Err(node_error(
                api,
                "dag/import",
                format!("the answer named no root: {}", text.trim()),
            ));
        }
        Ok(roots)
    })
    .await
}

/// `dag/export` of `cid` into `out` as a CARv1, streamed to disk.
pub async fn dag_export(api: &ApiAddr, cid: &str, out: &Path) -> Result<u64, PublishError> {
    use std::io::Write as _;
    let client = api.client()?;
    let req = client
        .build_base_request(DagExport(ArgQuery { arg: cid }), None)
        .map_err(|e| crate::classify(api, "dag/export", e))?;
    let part = out.with_extension("car.part");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&part).map_err(|e| io_err("cannot write", &part, e))?,
    );
    let mut n = 0u64;
    let mut stream = client.request_stream_bytes(req);
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| crate::classify(api, "dag/export", e))?
    {
        n += chunk.len() as u64;
        f.write_all(&chunk)
            .map_err(|e| io_err("cannot write", &part, e))?;
    }
    f.flush().map_err(|e| io_err("cannot write", &part, e))?;
    drop(f);
    if n == 0 {
        let _ = std::fs::remove_file(&part);
        return Err(node_error(
            api,
            "dag/export",
            format!("{cid}: the node sent nothing"),
        ));
    }
    std::fs::rename(&part, out).map_err(|e| io_err("cannot write", out, e))?;
    Ok(n)
}

/// Pins `cid` recursively.
pub async fn pin_add(api: &ApiAddr, cid: &str) -> Result<(), PublishError> {
    with_retry(|| async {
        let (ok, v) = raw(api, "pin/add", PinAdd(ArgQuery { arg: cid })).await?;
        if !ok {
            return Err(node_error(api, "pin/add", message(&v)));
        }
        Ok(())
    })
    .await
}

fn message(v: &serde_json::Value) -> String {
    v.get("Message")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

/// Whether the node holds a pin on `cid` (a recursive or direct one).
pub async fn is_pinned(api: &ApiAddr, cid: &str) -> Result<bool, PublishError> {
    with_retry(|| async {
        let (ok, v) = raw(api, "pin/ls", PinLs(ArgQuery { arg: cid })).await?;
        if !ok {
            // "not pinned" is an error answer from the node.
            let m = message(&v);
            if m.contains("not pinned") || m.contains("is not pinned") {
                return Ok(false);
            }
            return Err(node_error(api, "pin/ls", m));
        }
        Ok(v.get("Keys")
            .and_then(|k| k.as_object())
            .is_some_and(|k| !k.is_empty()))
    })
    .await
}

/// Reads `path` (`<cid>/<name>`) back from the node and returns its SHA-256 and length,
/// streaming; fails if it does not resolve within the time-out.
pub async fn cat_digest(
    api: &ApiAddr,
    path: &str,
    timeout: Duration,
) -> Result<([u8; 32], u64), PublishError> {
    use sha2::Digest;
    let client: IpfsClient = api.client()?;
    let fut = async {
        let mut h = sha2::Sha256::new();
        let mut n = 0u64;
        let mut stream = client.cat(path);
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| crate::classify(api, "cat", e))?
        {
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok::<_, PublishError>((h.finalize().into(), n))
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| {
        node_error(
            api,
            "cat",
            format!("{path} did not resolve within {} s", timeout.as_secs()),
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_answers_from_kubo_and_js_ipfs_both_parse() {
        let api = ApiAddr::parse("http://127.0.0.1:5002").expect("api");
        let kubo = "{\"Name\":\"m/0.png\",\"Hash\":\"QmA\",\"Size\":\"12\"}\n{\"Name\":\"m\",\"Hash\":\"QmB\",\"Size\":\"40\"}\n";
        let js = "{\"Name\":\"m/0.png\",\"Hash\":\"QmA\",\"Size\":12}\n{\"Bytes\":100}\n{\"Name\":\"m\",\"Hash\":\"QmB\",\"Size\":40}";
        for text in [kubo, js] {
            let added = parse_add(&api, text).expect("parse");
            assert_eq!(added.len(), 2);
            assert_eq!(added[1].cid, "QmB");
        }
        let e = parse_add(&api, "{\"Message\":\"disk full\",\"Code\":0}").expect_err("error");
        assert!(e.to_string().contains("disk full"), "{e}");
    }
}
