//! Starting and stopping the node Mintframe manages, with its repo in the data folder and every
//! address it listens on bound to loopback.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ApiAddr, NodeVersion, PublishError, node_version};

const PID_FILE: &str = "mintframe-node.pid";
const LOG_FILE: &str = "daemon.log";

/// Which implementation a node program is; they differ in flags and config keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFlavor {
    Kubo,
    JsIpfs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBinary {
    pub path: PathBuf,
    pub flavor: NodeFlavor,
}

/// The node program to run: `MINTFRAME_IPFS_BIN`, then Kubo on PATH (preferred where a user has
/// it), then js-ipfs on PATH, then the js-ipfs that scripts/setup installs in this checkout.
pub fn find_node_binary() -> Option<NodeBinary> {
    find_node_binary_for(None)
}

/// The npm manifest of the node a package install ships (`<prefix>/share/mintframe/ipfs-node`,
/// beside `<prefix>/bin/mintframe`): the node itself is installed from it on first start.
pub fn packaged_node_manifest() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.join("share/mintframe/ipfs-node");
    dir.join("package.json").is_file().then_some(dir)
}

/// Where a packaged install keeps the js-ipfs it set up for the repo at `repo`.
pub fn node_install_dir(repo: &Path) -> PathBuf {
    repo.with_file_name("ipfs-node")
}

/// [`find_node_binary`], and for a packaged install the node it set up beside `repo` (checked
/// before the source tree, so an installed app never depends on a checkout).
pub fn find_node_binary_for(repo: Option<&Path>) -> Option<NodeBinary> {
    let packaged = packaged_node_manifest().is_some();
    find_node_binary_where(repo.filter(|_| packaged))
}

fn find_node_binary_where(installed_for: Option<&Path>) -> Option<NodeBinary> {
    let flavor_of = |p: &Path| {
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("jsipfs"))
        {
            NodeFlavor::JsIpfs
        } else {
            NodeFlavor::Kubo
        }
    };
    if let Some(p) = std::env::var_os("MINTFRAME_IPFS_BIN").map(PathBuf::from) {
        return Some(NodeBinary {
            flavor: flavor_of(&p),
            path: p,
        });
    }
    if let Some(p) = on_path("ipfs") {
        return Some(NodeBinary {
            path: p,
            flavor: NodeFlavor::Kubo,
        });
    }
    if let Some(p) = on_path("jsipfs") {
        return Some(NodeBinary {
            path: p,
            flavor: NodeFlavor::JsIpfs,
        });
    }
    if let Some(repo) = installed_for {
        let bin = node_install_dir(repo).join("node_modules/.bin/jsipfs");
        // Only a packaged install looks here; it does not fall back to a source tree.
        return bin.is_file().then_some(NodeBinary {
            path: bin,
            flavor: NodeFlavor::JsIpfs,
        });
    }
    // The folder is canonicalised, not the file: `.bin/jsipfs` is a link whose name tells the
    // flavour and whose target is an implementation detail of npm.
    let bin_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/ipfs/node_modules/.bin")
        .canonicalize()
        .ok()?;
    let bundled = bin_dir.join("jsipfs");
    if !bundled.is_file() {
        return None;
    }
    Some(NodeBinary {
        path: bundled,
        flavor: NodeFlavor::JsIpfs,
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// First start of a packaged install: js-ipfs from the npm registry, at the versions the package
/// pins (its `package-lock.json`), into the data folder. Without a packaged manifest there is
/// nothing to install from, and the error says how to get a node.
async fn install_packaged_node(repo: &Path) -> Result<NodeBinary, PublishError> {
    let manifest = packaged_node_manifest().ok_or(PublishError::NoNodeInstalled)?;
    let dir = node_install_dir(repo);
    fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
    for f in ["package.json", "package-lock.json"] {
        let from = manifest.join(f);
        if from.is_file() {
            fs::copy(&from, dir.join(f)).map_err(io_err("cannot copy", &from))?;
        }
    }
    let log = dir.join("npm-install.log");
    tracing::info!(dir = %dir.display(), "setting up the local IPFS node (first start)");
    let log_file = fs::File::create(&log).map_err(io_err("cannot create", &log))?;
    let err_file = log_file.try_clone().map_err(io_err("cannot write", &log))?;
    // Not `npm ci`: an optional dependency deep in js-ipfs names a git tarball that `npm ci`
    // insists on fetching; `npm install` honours the lock and skips it. Install scripts only
    // fetch optional prebuilt binaries; the node runs without them.
    let cwd = dir.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("npm")
            .args([
                "install",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .status()
    })
    .await;
    let status = match run {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(PublishError::StartFailed {
                reason: format!("cannot run npm to set up the local IPFS node: {e}"),
                log,
            });
        }
        Err(e) => {
            return Err(PublishError::StartFailed {
                reason: format!("the npm set-up task failed: {e}"),
                log,
            });
        }
    };
    if !status.success() {
        return Err(PublishError::StartFailed {
            reason: format!(
                "setting up the local IPFS node with npm failed ({status}); install Kubo (`ipfs` on PATH) to skip it"
            ),
            log,
        });
    }
    find_node_binary_where(Some(repo)).ok_or(PublishError::StartFailed {
        reason: "npm finished but installed no jsipfs".into(),
        log,
    })
}

/// How the managed node stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub api: ApiAddr,
    pub version: NodeVersion,
    pub pid: Option<u32>,
    /// False when a node was already answering at the address.
    pub started_now: bool,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PublishError {
    let path = path.to_path_buf();
    move |source| PublishError::Io {
        action,
        path,
        source,
    }
}

/// Ports next to the API port, so one setting (the API address) places the whole node.
fn ports(api: &ApiAddr) -> (u16, u16, u16, u16) {
    let p = api.port;
    (
        p.wrapping_sub(1000), // swarm tcp (4002 for 5002)
        p.wrapping_sub(999),  // swarm websockets (js-ipfs)
        p.wrapping_add(1),    // js-ipfs gRPC
        p.wrapping_add(4088), // gateway (9090 for 5002)
    )
}

/// Points every address of the repo's config at loopback and drops bootstrap peers: the node is
/// for this machine's studio, and publishing from it needs no open port.
fn write_config(repo: &Path, api: &ApiAddr) -> Result<(), PublishError> {
    let path = repo.join("config");
    let text = fs::read_to_string(&path).map_err(io_err("cannot read", &path))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| PublishError::BadConfig {
            path: path.clone(),
            source,
        })?;
    let (swarm, ws, grpc, gateway) = ports(api);
    config["Addresses"]["API"] = format!("/ip4/127.0.0.1/tcp/{}", api.port).into();
    config["Addresses"]["Gateway"] = format!("/ip4/127.0.0.1/tcp/{gateway}").into();
    config["Addresses"]["RPC"] = format!("/ip4/127.0.0.1/tcp/{grpc}/ws").into();
    config["Addresses"]["Swarm"] = serde_json::json!([
        format!("/ip4/127.0.0.1/tcp/{swarm}"),
        format!("/ip4/127.0.0.1/tcp/{ws}/ws"),
    ]);
    config["Addresses"]["Announce"] = serde_json::json!([]);
    config["Bootstrap"] = serde_json::json!([]);
    let tmp = repo.join("config.mintframe-tmp");
    let body = serde_json::to_vec_pretty(&config).map_err(|source| PublishError::BadConfig {
        path: path.clone(),
        source,
    })?;
    fs::write(&tmp, body).map_err(io_err("cannot write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err("cannot write", &path))
}

/// Starts a node with its repo in `repo`, serving its RPC API at `api` (loopback only), and
/// waits until it answers. A node already answering there is left as it is.
pub async fn start_node(repo: &Path, api: &ApiAddr) -> Result<NodeStatus, PublishError> {
    if !api.is_loopback() {
        return Err(PublishError::NotLoopback(api.to_string()));
    }
    if let Ok(version) = node_version(api, Duration::from_secs(3)).await {
        return Ok(NodeStatus {
            api: api.clone(),
            version,
            pid: read_pid(repo),
            started_now: false,
        });
    }
    let bin = match find_node_binary_for(Some(repo)) {
        Some(b) => b,
        None => install_packaged_node(repo).await?,
    };
    fs::create_dir_all(repo).map_err(io_err("cannot create", repo))?;
    let log = repo.join(LOG_FILE);
    if !repo.join("config").exists() {
        let mut init = Command::new(&bin.path);
        init.arg("init").env("IPFS_PATH", repo);
        if bin.flavor == NodeFlavor::Kubo {
            init.arg("--profile=test");
        }
        let out = init
            .stdin(Stdio::null())
            .output()
            .map_err(io_err("cannot run", &bin.path))?;
        if !out.status.success() {
            return Err(PublishError::StartFailed {
                reason: format!(
                    "`{} init` failed: {}",
                    bin.path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                log,
            });
        }
    }
    write_config(repo, api)?;
    let log_file = fs::File::create(&log).map_err(io_err("cannot create", &log))?;
    let log_err = log_file.try_clone().map_err(io_err("cannot open", &log))?;
    let mut cmd = Command::new(&bin.path);
    cmd.args(["daemon", "--offline"])
        .env("IPFS_PATH", repo)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    #[cfg(unix)]
    {
        // Its own process group: closing the terminal that ran `mintframe ipfs start` must not
        // take the node down with it.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(io_err("cannot run", &bin.path))?;
    let pid = child.id();
    let pid_path = repo.join(PID_FILE);
    fs::write(&pid_path, pid.to_string()).map_err(io_err("cannot write", &pid_path))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = fs::remove_file(&pid_path);
            return Err(PublishError::StartFailed {
                reason: format!("the daemon exited ({status}) before it answered"),
                log,
            });
        }
        if let Ok(version) = node_version(api, Duration::from_secs(2)).await {
            tracing::info!(%api, pid, "IPFS node started");
            return Ok(NodeStatus {
                api: api.clone(),
                version,
                pid: Some(pid),
                started_now: true,
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = fs::remove_file(&pid_path);
            return Err(PublishError::StartFailed {
                reason: "it did not answer within 120 s".to_owned(),
                log,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn read_pid(repo: &Path) -> Option<u32> {
    fs::read_to_string(repo.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Stops the node that [`start_node`] started from `repo`, and waits until its API is gone.
pub async fn stop_node(repo: &Path, api: &ApiAddr) -> Result<u32, PublishError> {
    let pid = read_pid(repo).ok_or_else(|| PublishError::NotManaged {
        repo: repo.to_path_buf(),
    })?;
    let pid_path = repo.join(PID_FILE);
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map_err(io_err("cannot run", Path::new("kill")))?;
    if !status.success() {
        // The process is already gone: the pid file was stale.
        let _ = fs::remove_file(&pid_path);
        return Err(PublishError::NotManaged {
            repo: repo.to_path_buf(),
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if node_version(api, Duration::from_secs(1)).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = fs::remove_file(&pid_path);
    Ok(pid)
}
