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
    _server: Guard,
}

impl Display {
    pub fn start() -> Display {
        for n in 90..140 {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                || Path::new(&format!("/tmp/.X{n}-lock")).exists()
            {
                continue;
            }
            let name = format!(":{n}");
            let child = Command::new("Xvfb")
                .args([&name, "-screen", "0", "1280x900x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb is not installed: run scripts/setup");
            let server = Guard(child);
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            wait_until("Xvfb", Duration::from_secs(10), || socket.exists());
            return Display {
                name,
                _server: server,
            };
        }
        panic!("no free X display number");
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
