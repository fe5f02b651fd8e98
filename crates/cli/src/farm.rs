//! `mintframe farm` and `mintframe worker`: a render farm on NATS JetStream.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mintframe_studio::{App, Settings};

#[derive(Debug, Subcommand)]
pub(crate) enum FarmCmd {
    /// Make a farm: nats-server's configuration with JetStream, an nkey for the coordinator
    /// and one for each worker (each allowed only its own subjects), and a TLS CA and server
    /// certificate. Give each worker its `worker-N.creds`.
    Init {
        /// Default: <data>/farm.
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 3)]
        workers: usize,
        /// The address workers reach the server at.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Not 4222: Debian's nats-server package runs its own server there.
        #[arg(long, default_value_t = 14222)]
        port: u16,
        /// Plain nats:// instead of TLS (only on a network you trust).
        #[arg(long)]
        no_tls: bool,
    },
    /// Start the farm's nats-server (Debian's `nats-server`) in the background.
    Start { dir: Option<PathBuf> },
    /// Stop it.
    Stop { dir: Option<PathBuf> },
    /// Workers, throughput and queue depth.
    Status {
        /// Default: the URL in the coordinator credential.
        #[arg(long, value_name = "URL")]
        nats: Option<String>,
        #[command(flatten)]
        out: crate::Output,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// The farm (`nats://…` or `tls://…`); default: the URL in the credential.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// This worker's credential (`worker-N.creds` from `mintframe farm init`).
    #[arg(long)]
    creds: PathBuf,
    /// Where this worker draws (cpu, cuda, cuda:N, metal); default: where each task says.
    #[arg(long)]
    device: Option<String>,
    /// Stop after this many tasks (default: run until stopped).
    #[arg(long)]
    max_tasks: Option<u64>,
}

fn dir_or_default(settings: &Settings, dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| mintframe_studio::farm::farm_dir(&settings.data_dir))
}

/// The address the server listens on, from its config.
fn address_of(config: &Path) -> Result<(String, u16)> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let value = |key: &str| {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix(key)
                .map(|v| v.trim().trim_matches('"').to_owned())
        })
    };
    let port = value("port:")
        .with_context(|| format!("{} names no port", config.display()))?
        .parse::<u16>()
        .with_context(|| format!("{} has a bad port", config.display()))?;
    Ok((value("host:").unwrap_or_else(|| "127.0.0.1".into()), port))
}

/// Whether `pid` is a nats-server (a pid file can outlive its process, and the number be
/// reused).
fn is_nats_server(pid: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("nats-server"))
}

fn start(dir: &Path) -> Result<()> {
    let config = dir.join("server.conf");
    if !config.is_file() {
        bail!(
            "{} is not there: `mintframe farm init {}` makes it",
            config.display(),
            dir.display()
        );
    }
    let pid_file = dir.join("server.pid");
    if let Ok(pid) = std::fs::read_to_string(&pid_file)
        && is_nats_server(pid.trim())
    {
        println!(
            "the farm's nats-server is already running (pid {})",
            pid.trim()
        );
        return Ok(());
    }
    let bin = which("nats-server").context(
        "nats-server is not installed: `sudo apt-get install nats-server` (Debian 12), or scripts/setup",
    )?;
    let log = dir.join("server.log");
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("-c")
        .arg(&config)
        .arg("-l")
        .arg(&log)
        .arg("-P")
        .arg(&pid_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().context("cannot start nats-server")?;
    let (host, port) = address_of(&config)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "nats-server stopped at once ({status}); its log {}:\n{}",
                log.display(),
                tail.lines().rev().take(10).collect::<Vec<_>>().join("\n")
            );
        }
        if std::net::TcpStream::connect((host.as_str(), port)).is_ok() {
            println!(
                "the farm's nats-server is running (pid {}, port {port}, log {})",
                child.id(),
                log.display()
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "nats-server did not listen on port {port} within 15 s; its log: {}",
        log.display()
    )
}

fn stop(dir: &Path) -> Result<()> {
    let pid_file = dir.join("server.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no {}: is the farm running?", pid_file.display()))?;
    let pid = pid.trim();
    if !is_nats_server(pid) {
        let _ = std::fs::remove_file(&pid_file);
        bail!(
            "pid {pid} in {} is not a running nats-server; nothing stopped",
            pid_file.display()
        );
    }
    let status = std::process::Command::new("kill")
        .arg(pid)
        .status()
        .context("cannot run kill")?;
    if !status.success() {
        bail!("could not stop pid {pid}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(&pid_file);
    println!("the farm's nats-server stopped (pid {pid})");
    Ok(())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

pub(crate) fn farm(settings: &Settings, cmd: FarmCmd) -> Result<()> {
    match cmd {
        FarmCmd::Init {
            dir,
            workers,
            host,
            port,
            no_tls,
        } => {
            let dir = dir_or_default(settings, dir);
            let made = mintframe_studio::farm::init(&dir, &host, port, workers, !no_tls)?;
            println!("farm         {}", made.url);
            println!("config       {}", made.config.display());
            println!("coordinator  {}", made.coordinator.display());
            for w in &made.workers {
                println!("worker       {}", w.display());
            }
            println!(
                "next         mintframe farm start {}; on each machine: mintframe worker --creds worker-N.creds",
                made.dir.display()
            );
        }
        FarmCmd::Start { dir } => start(&dir_or_default(settings, dir))?,
        FarmCmd::Stop { dir } => stop(&dir_or_default(settings, dir))?,
        FarmCmd::Status { nats, out } => {
            let url = match nats {
                Some(u) => u,
                None => mintframe_studio::farm::coordinator_url(&settings.data_dir)?,
            };
            let app = App::open(settings.clone())?;
            let s = app.farm_status(&url)?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("farm         {}", s.url);
                println!(
                    "queue        {} waiting, {} in hand, {} results not yet taken",
                    s.queued, s.in_flight, s.results
                );
                println!("throughput   {:.1} tasks/min", s.per_minute);
                if s.workers.is_empty() {
                    println!("workers      none heard from");
                }
                for w in &s.workers {
                    println!(
                        "worker       {:<12} {:<9} {:>5} done  {:>6.1}/min  {}{}",
                        w.worker,
                        w.state,
                        w.done,
                        w.per_minute,
                        w.device,
                        w.task
                            .as_deref()
                            .map(|t| format!("  on {t}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn worker(settings: &Settings, a: WorkerArgs) -> Result<()> {
    let app = std::sync::Arc::new(App::open(settings.clone())?);
    let done = mintframe_studio::farm::run_worker(
        app,
        &a.creds,
        a.nats.as_deref(),
        a.device.clone(),
        a.max_tasks,
    )?;
    println!("{done} tasks done");
    Ok(())
}
