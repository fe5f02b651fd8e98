//! Helpers for the end-to-end tests: the workspace's binaries, free ports, scratch mounts, a
//! display, and child processes that are always cleaned up.

#![allow(clippy::unwrap_used)] // test support: a failed set-up should stop the test loudly

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A binary of the workspace, built by scripts/test before the tests run.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build -p mintframe-cli -p mintframe-app` (scripts/test does)",
        path.display()
    );
    path
}

/// `mintframe` with a data folder and IPFS address of the test's own.
pub fn mintframe(data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin("mintframe"));
    cmd.env("MINTFRAME_DATA_DIR", data_dir)
        .env("MINTFRAME_IPFS_API", "http://127.0.0.1:1")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on loopback whose neighbours at the given offsets are free too.
pub fn free_port_with(offsets: &[i32]) -> u16 {
    for _ in 0..200 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ok = offsets.iter().all(|o| {
            let p = base as i32 + o;
            (1024..65536).contains(&p) && TcpListener::bind(("127.0.0.1", p as u16)).is_ok()
        });
        if ok {
            return base;
        }
    }
    panic!("no free port group found");
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {} s waiting for {what}", timeout.as_secs());
}

/// A tmpfs of a given size (or read-only), unmounted when dropped: a real full or read-only disk.
/// Needs root, which CI and the set-up machines have.
#[derive(Debug)]
pub struct Mount {
    pub dir: tempfile::TempDir,
}

impl Mount {
    pub fn tmpfs(size_kib: u64) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs failed: the disk-fault tests need root (as in CI)"
        );
        Mount { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount read-only failed");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// An Xvfb display of the test's own.
#[derive(Debug)]
pub struct Display {
    pub name: String,
    number: u32,
    server: Option<Guard>,
}

fn x_files(n: u32) -> (PathBuf, PathBuf) {
    (
        PathBuf::from(format!("/tmp/.X{n}-lock")),
        PathBuf::from(format!("/tmp/.X11-unix/X{n}")),
    )
}

/// Whether an X lock file names a process that is still alive.
fn held(lock: &Path) -> bool {
    std::fs::read_to_string(lock)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

impl Display {
    pub fn start() -> Display {
        for n in 90..190 {
            let (lock, socket) = x_files(n);
            if lock.exists() || socket.exists() {
                if held(&lock) {
                    continue;
                }
                // Left by an Xvfb that was killed: the number is free again.
                let _ = std::fs::remove_file(&lock);
                let _ = std::fs::remove_file(&socket);
            }
            let name = format!(":{n}");
            let child = Command::new("Xvfb")
                .args([&name, "-screen", "0", "1280x900x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb is not installed: run scripts/setup");
            let mut server = Guard(child);
            let started = std::time::Instant::now();
            let mut exited = false;
            while !socket.exists() && started.elapsed() < Duration::from_secs(10) {
                if server.0.try_wait().ok().flatten().is_some() {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // Another test took the number first: its Xvfb owns the socket, ours exited.
            if exited || server.0.try_wait().ok().flatten().is_some() {
                continue;
            }
            assert!(socket.exists(), "Xvfb {name} did not start within 10 s");
            return Display {
                name,
                number: n,
                server: Some(server),
            };
        }
        panic!("no free X display number");
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        // Killed, Xvfb leaves its lock and socket behind; remove them so the number is free.
        drop(self.server.take());
        let (lock, socket) = x_files(self.number);
        let _ = std::fs::remove_file(lock);
        let _ = std::fs::remove_file(socket);
    }
}

/// Bytes that do not repeat, so every test file has its own hash.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
