//! An IPFS Cluster as the target: its REST API (`POST /add` with `replication-min/max`,
//! `GET /pins/{cid}` for each peer's status). Uploads stream from disk through a multipart body
//! built here, so a large file never sits in memory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::PublishError;
use crate::unixfs::CidVersion;

/// A cluster's REST API and how many peers should hold each pin (-1: every peer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub url: String,
    pub replication_min: i32,
    pub replication_max: i32,
}

/// A root's status across the cluster's peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPin {
    pub cid: String,
    /// Peers reporting `pinned`.
    pub pinned: usize,
    /// Every peer's status, e.g. `pinned`, `pinning`, `pin_queued`, `pin_error`.
    pub peers: Vec<String>,
}

fn err(c: &Cluster, reason: impl Into<String>) -> PublishError {
    PublishError::NodeError {
        api: c.url.clone(),
        endpoint: "cluster",
        reason: reason.into(),
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

fn base(c: &Cluster) -> Result<String, PublishError> {
    let u = c.url.trim().trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err(err(c, "the cluster URL must be http(s)://HOST:PORT"));
    }
    Ok(u.to_owned())
}

fn unreachable(c: &Cluster, e: ureq::Error) -> PublishError {
    PublishError::Unreachable {
        api: c.url.clone(),
        reason: e.to_string(),
    }
}

/// Parts of a multipart body read one after the other: headers from memory, files from disk.
struct Multipart {
    parts: std::collections::VecDeque<Box<dyn Read + Send>>,
}

impl Read for Multipart {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(front) = self.parts.front_mut() {
            let n = front.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.parts.pop_front();
        }
        Ok(0)
    }
}

const BOUNDARY: &str = "mintframe-cluster-7d1e0b";

fn multipart(dir: &Path) -> Result<Multipart, PublishError> {
    let base = dir.parent().unwrap_or(Path::new(""));
    let mut parts: std::collections::VecDeque<Box<dyn Read + Send>> = Default::default();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    let io = |p: &Path, e: std::io::Error| PublishError::Io {
        action: "cannot read",
        path: p.to_path_buf(),
        source: e,
    };
    while let Some(p) = stack.pop() {
        let rel = p
            .strip_prefix(base)
            .unwrap_or(&p)
            .to_string_lossy()
            .replace('%', "%25")
            .replace('/', "%2F");
        if p.is_dir() {
            parts.push_back(Box::new(std::io::Cursor::new(format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{rel}\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n"
            ))));
            let mut children = Vec::new();
            for e in std::fs::read_dir(&p).map_err(|e| io(&p, e))? {
                let e = e.map_err(|e| io(&p, e))?;
                if !e.file_name().to_string_lossy().starts_with('.') {
                    children.push(e.path());
                }
            }
            children.sort();
            children.reverse();
            stack.extend(children);
        } else {
            parts.push_back(Box::new(std::io::Cursor::new(format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{rel}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ))));
            parts.push_back(Box::new(std::fs::File::open(&p).map_err(|e| io(&p, e))?));
            parts.push_back(Box::new(std::io::Cursor::new("\r\n")));
        }
    }
    parts.push_back(Box::new(std::io::Cursor::new(format!(
        "--{BOUNDARY}--\r\n"
    ))));
    Ok(Multipart { parts })
}

/// Adds the folder `dir` through the cluster (which pins it with the replication asked for);
/// returns the root CID the cluster reported.
pub fn add_dir(
    c: &Cluster,
    dir: &Path,
    version: CidVersion,
    name: &str,
) -> Result<String, PublishError> {
    let v1 = version == CidVersion::V1;
    let url = format!(
        "{}/add?name={}&replication-min={}&replication-max={}&cid-version={}&raw-leaves={v1}&stream-channels=true",
        base(c)?,
        urlencode(name),
        c.replication_min,
        c.replication_max,
        u8::from(v1),
    );
    let mut body = multipart(dir)?;
    let mut resp = agent(Duration::from_secs(3600))
        .post(&url)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .send(ureq::SendBody::from_reader(&mut body))
        .map_err(|e| unreachable(c, e))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .map_err(|e| err(c, e.to_string()))?;
    if status != 200 {
        return Err(err(c, format!("add: HTTP {status}: {}", text.trim())));
    }
    // NDJSON (or one JSON array) of {"name","cid",…}; older clusters wrap the CID as {"/": …}.
    let values: Vec<serde_json::Value> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Array(a)) => a,
        _ => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| err(c, format!("add: unreadable answer ({e}): {text}")))?,
    };
    let root = values
        .iter()
        .rev()
        .find_map(|v| {
            let cid = &v["cid"];
            cid.as_str()
                .or_else(|| cid["/"].as_str())
                .map(str::to_owned)
        })
        .ok_or_else(|| err(c, format!("add: the answer named no CID: {text}")))?;
    Ok(root)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Each peer's status for `cid`; `None` when the cluster does not track it.
pub fn pin_status(c: &Cluster, cid: &str) -> Result<Option<ClusterPin>, PublishError> {
    let mut resp = agent(Duration::from_secs(30))
        .get(format!("{}/pins/{cid}", base(c)?))
        .call()
        .map_err(|e| unreachable(c, e))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| err(c, e.to_string()))?;
    if status == 404 {
        return Ok(None);
    }
    if status != 200 {
        return Err(err(
            c,
            format!("pins/{cid}: HTTP {status}: {}", text.trim()),
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(c, format!("pins/{cid}: {e}")))?;
    let peers: Vec<String> = v["peer_map"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|p| p["status"].as_str().unwrap_or("unknown").to_owned())
                .collect()
        })
        .unwrap_or_default();
    let pinned = peers.iter().filter(|s| *s == "pinned").count();
    if peers.iter().all(|s| s == "unpinned") {
        return Ok(None);
    }
    Ok(Some(ClusterPin {
        cid: cid.to_owned(),
        pinned,
        peers,
    }))
}

/// Polls until enough peers hold `cid` pinned (`replication_min`, at least one), a peer
/// reports an error, or `wait` passes; returns the last status.
pub fn wait_pinned(c: &Cluster, cid: &str, wait: Duration) -> Result<ClusterPin, PublishError> {
    let started = Instant::now();
    let want = usize::try_from(c.replication_min).unwrap_or(1).max(1);
    let mut pause = Duration::from_millis(500);
    loop {
        let st = pin_status(c, cid)?
            .ok_or_else(|| err(c, format!("pins/{cid}: the cluster does not track it")))?;
        if let Some(bad) = st.peers.iter().find(|s| s.contains("error")) {
            return Err(err(c, format!("pins/{cid}: a peer reports {bad}")));
        }
        // -1 asks every peer.
        let enough = if c.replication_min < 0 {
            st.pinned == st.peers.len()
        } else {
            st.pinned >= want
        };
        if enough || started.elapsed() + pause > wait {
            return Ok(st);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
