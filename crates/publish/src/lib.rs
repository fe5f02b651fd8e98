//! IPFS for Mintframe: the local node it manages and the Kubo RPC client it talks to.
//!
//! Any node that serves Kubo's RPC API works: Kubo itself (`ipfs`, IPFS Desktop) or js-ipfs
//! (`jsipfs`), which the set-up script installs where no Kubo can be had.

pub mod arweave;
pub mod client;
pub mod cluster;
pub mod collection;
pub mod hamt;
#[cfg(test)]
mod kubo_vectors;
pub mod metadata;
pub mod node;
pub mod pinning;
pub mod unixfs;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ipfs_api_backend_hyper::{IpfsApi, IpfsClient, TryFromUri};

pub use node::{
    NodeBinary, NodeFlavor, NodeStatus, find_node_binary, find_node_binary_for, start_node,
    stop_node,
};

/// The offline CID of a file or folder, exactly as `ipfs add [-r] [--wrap-with-directory]`
/// on a Kubo node with the same import profile would give it. Folders skip hidden entries (names starting with a
/// dot), as `ipfs add -r` does by default; symbolic links are refused.
pub fn cid_of_path(
    path: &std::path::Path,
    profile: &unixfs::Profile,
    wrap: bool,
    sink: &mut dyn FnMut(unixfs::Block) -> std::io::Result<()>,
) -> Result<unixfs::Node, PublishError> {
    let node = walk(path, profile, sink)?;
    if !wrap {
        return Ok(node);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    unixfs::directory(&[(name, node)], profile, sink).map_err(|e| io_error("cannot hash", path, e))
}

fn io_error(action: &'static str, path: &std::path::Path, source: std::io::Error) -> PublishError {
    PublishError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn walk(
    path: &std::path::Path,
    profile: &unixfs::Profile,
    sink: &mut dyn FnMut(unixfs::Block) -> std::io::Result<()>,
) -> Result<unixfs::Node, PublishError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_error("cannot read", path, e))?;
    if meta.file_type().is_symlink() {
        return Err(io_error(
            "will not follow the symbolic link",
            path,
            std::io::Error::other("links are not published; copy the file instead"),
        ));
    }
    if meta.is_dir() {
        let mut entries = Vec::new();
        for e in std::fs::read_dir(path).map_err(|e| io_error("cannot list", path, e))? {
            let e = e.map_err(|e| io_error("cannot list", path, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            entries.push((name, walk(&e.path(), profile, sink)?));
        }
        return unixfs::directory(&entries, profile, sink)
            .map_err(|e| io_error("cannot hash", path, e));
    }
    let mut f = std::fs::File::open(path).map_err(|e| io_error("cannot read", path, e))?;
    unixfs::file(&mut f, profile, sink).map_err(|e| io_error("cannot read", path, e))
}

/// The RPC address our own node listens on unless told otherwise. Kubo's default (5001) is left
/// free for a node the user already runs.
pub const DEFAULT_API: &str = "http://127.0.0.1:5002";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    #[error("{0:?} is not an IPFS RPC address: expected http://HOST:PORT, e.g. {DEFAULT_API}")]
    BadApiAddr(String),
    #[error(
        "no IPFS node answers at {api} ({reason}). Start one with `mintframe ipfs start`, or point MINTFRAME_IPFS_API at a running node"
    )]
    Unreachable { api: String, reason: String },
    #[error("the IPFS node at {api} answered {endpoint} with an error: {reason}")]
    NodeError {
        api: String,
        endpoint: &'static str,
        reason: String,
    },
    #[error(
        "no IPFS node program found: install Kubo (`ipfs` on PATH) or run scripts/setup, which installs js-ipfs; or set MINTFRAME_IPFS_BIN"
    )]
    NoNodeInstalled,
    #[error("the managed node's RPC address must be on loopback (127.0.0.1 or localhost), not {0}")]
    NotLoopback(String),
    #[error("the IPFS node failed to start: {reason}. Its log: {log}")]
    StartFailed { reason: String, log: PathBuf },
    #[error("no node started by Mintframe runs from {repo}")]
    NotManaged { repo: PathBuf },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pinning(#[from] pinning::PinningError),
    #[error(transparent)]
    Arweave(#[from] mintframe_arweave::ArweaveError),
    #[error("the collection cannot be published: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(
        "the node gave the {folder} folder the CID {got}, but it was computed offline as {expected}; nothing that links to it was uploaded"
    )]
    CidMismatch {
        folder: &'static str,
        expected: String,
        got: String,
    },
    #[error("the node's config {path} is not valid JSON: {source}")]
    BadConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Where a node's RPC API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAddr {
    pub host: String,
    pub port: u16,
}

impl ApiAddr {
    pub fn parse(s: &str) -> Result<ApiAddr, PublishError> {
        let bad = || PublishError::BadApiAddr(s.to_owned());
        let rest = s.trim().strip_prefix("http://").ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || host.contains('/') {
            return Err(bad());
        }
        Ok(ApiAddr {
            host: host.to_owned(),
            port,
        })
    }

    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub fn client(&self) -> Result<IpfsClient, PublishError> {
        IpfsClient::from_str(&self.to_string())
            .map_err(|_| PublishError::BadApiAddr(self.to_string()))
    }
}

impl fmt::Display for ApiAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

/// What a node says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVersion {
    pub version: String,
    pub repo: String,
    /// "kubo" when the node reports a Go version, "js-ipfs" otherwise.
    pub implementation: String,
}

/// Asks the node at `api` for its version, giving up after `timeout`.
pub async fn node_version(api: &ApiAddr, timeout: Duration) -> Result<NodeVersion, PublishError> {
    let client = api.client()?;
    let answer = tokio::time::timeout(timeout, client.version())
        .await
        .map_err(|_| PublishError::Unreachable {
            api: api.to_string(),
            reason: format!("no answer within {} s", timeout.as_secs()),
        })?;
    let v = answer.map_err(|e| classify(api, "version", e))?;
    Ok(NodeVersion {
        implementation: if v.golang.is_some() {
            "kubo"
        } else {
            "js-ipfs"
        }
        .to_owned(),
        version: v.version,
        repo: v.repo,
    })
}

/// The node's own addresses (`id`), for pinning services to fetch from; empty when it has none
/// (an offline node) or cannot say.
pub async fn node_addresses(api: &ApiAddr) -> Vec<String> {
    let Ok(client) = api.client() else {
        return Vec::new();
    };
    match tokio::time::timeout(Duration::from_secs(10), client.id(None)).await {
        Ok(Ok(id)) => id.addresses,
        _ => Vec::new(),
    }
}

/// Tells "nothing listens there" apart from "the node said no".
pub(crate) fn classify(
    api: &ApiAddr,
    endpoint: &'static str,
    e: ipfs_api_backend_hyper::Error,
) -> PublishError {
    match e {
        ipfs_api_backend_hyper::Error::Client(inner) => PublishError::Unreachable {
            api: api.to_string(),
            reason: inner.to_string(),
        },
        other => PublishError::NodeError {
            api: api.to_string(),
            endpoint,
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_addresses_parse_and_know_loopback() {
        let a = ApiAddr::parse("http://127.0.0.1:5002/").expect("parse");
        assert_eq!(a.port, 5002);
        assert!(a.is_loopback());
        assert!(
            ApiAddr::parse("http://localhost:5001")
                .expect("parse")
                .is_loopback()
        );
        assert!(
            !ApiAddr::parse("http://0.0.0.0:5001")
                .expect("parse")
                .is_loopback()
        );
        assert!(
            !ApiAddr::parse("http://192.0.2.7:5001")
                .expect("parse")
                .is_loopback()
        );
        for bad in [
            "127.0.0.1:5001",
            "http://127.0.0.1",
            "http://:80",
            "http://h:99999",
        ] {
            assert!(
                matches!(ApiAddr::parse(bad), Err(PublishError::BadApiAddr(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_with_a_way_out() {
        // Bind then drop, so the port is known to be closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind")
            .port();
        let api = ApiAddr::parse(&format!("http://127.0.0.1:{port}")).expect("parse");
        let err = node_version(&api, Duration::from_secs(5))
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, PublishError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("mintframe ipfs start"), "{err}");
    }
}
