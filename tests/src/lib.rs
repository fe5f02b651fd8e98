//! Helpers for the end-to-end tests: the workspace's binaries, free ports, scratch mounts, a
//! display, and child processes that are always cleaned up.

#![allow(clippy::unwrap_used)] // test support: a failed set-up should stop the test loudly

pub mod kubo;
pub mod sprite_checker;

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
        // No test reaches the user's own keyring; those that need one start a [`Keyring`].
        .env("DBUS_SESSION_BUS_ADDRESS", NO_SESSION_BUS)
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
///
/// Picked below Linux's ephemeral range (32768–60999): a port the kernel hands out for port 0 is
/// also one it hands to outgoing connections, and with thousands of requests in flight beside
/// (the 10,000-token publish reads 20,001 files back) one could take a node's port between this
/// check and the node's own bind — the node then dies after it has started.
pub fn free_port_with(offsets: &[i32]) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761).wrapping_add(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    );
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // 21000..28000: every offset used here (-1000 … +4088) stays under 32768.
        let base = 21_000 + (seed.wrapping_add(n.wrapping_mul(7919)) % 7_000) as i32;
        let ok = offsets.iter().chain(std::iter::once(&0)).all(|o| {
            let p = base + o;
            (1024..65536).contains(&p) && TcpListener::bind(("127.0.0.1", p as u16)).is_ok()
        });
        if ok {
            return base as u16;
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

/// A Secret Service of the test's own: a private D-Bus session bus and GNOME Keyring's daemon
/// on it, with a home folder that outlives [`Keyring::restart`] (which is what a reboot is to a
/// token: the daemon and its session gone, the keyring file left on disk).
#[derive(Debug)]
pub struct Keyring {
    dir: tempfile::TempDir,
    bus: Option<Guard>,
    daemon: Option<Guard>,
}

/// A session bus address nothing listens on: a process given it finds no Secret Service (and
/// never falls back to the user's real one).
pub const NO_SESSION_BUS: &str = "unix:path=/nonexistent/mintframe-test-bus";

impl Keyring {
    pub fn start() -> Keyring {
        let mut k = Keyring {
            dir: tempfile::tempdir().unwrap(),
            bus: None,
            daemon: None,
        };
        k.up();
        k
    }

    pub fn address(&self) -> String {
        format!("unix:path={}", self.dir.path().join("bus").display())
    }

    fn env(&self, cmd: &mut Command) {
        let home = self.dir.path().join("home");
        let run = self.dir.path().join("run");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        cmd.env("DBUS_SESSION_BUS_ADDRESS", self.address())
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", &run)
            .env_remove("DISPLAY");
    }

    fn up(&mut self) {
        let socket = self.dir.path().join("bus");
        let _ = std::fs::remove_file(&socket);
        let mut bus = Command::new("dbus-daemon");
        bus.args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={}", self.address()))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.env(&mut bus);
        self.bus = Some(Guard(
            bus.spawn()
                .expect("dbus-daemon is missing: run scripts/setup"),
        ));
        wait_until("the session bus", Duration::from_secs(10), || {
            socket.exists()
        });
        let mut daemon = Command::new("gnome-keyring-daemon");
        daemon
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.env(&mut daemon);
        let mut child = daemon
            .spawn()
            .expect("gnome-keyring-daemon is missing: run scripts/setup");
        // The login keyring's password, read from stdin (the first start creates the keyring).
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"mintframe-test").unwrap();
        }
        self.daemon = Some(Guard(child));
        let address = self.address();
        wait_until(
            "the Secret Service on the bus",
            Duration::from_secs(15),
            || {
                Command::new("dbus-send")
                    .env("DBUS_SESSION_BUS_ADDRESS", &address)
                    .args([
                        "--session",
                        "--print-reply",
                        "--dest=org.freedesktop.DBus",
                        "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.NameHasOwner",
                        "string:org.freedesktop.secrets",
                    ])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
            },
        );
    }

    /// Stops the daemon and its bus, then starts both again on the same keyring files.
    pub fn restart(&mut self) {
        drop(self.daemon.take());
        drop(self.bus.take());
        self.up();
    }

    /// Points `cmd` at this Secret Service.
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", self.address());
        cmd
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        drop(self.daemon.take());
        drop(self.bus.take());
    }
}

/// A PNG of `w`×`h` noise pixels (stored, not compressed), so every test image is real, decodes,
/// and has its own hash; about `w * h * 4` bytes.
pub fn noise_png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fastest);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(&noise((w * h * 4) as usize, seed))
            .unwrap();
    }
    out
}

/// A PNG whose header claims `w`×`h` pixels over a 1×1 image: 70-odd bytes that would ask a
/// careless decoder for `w * h * 4` bytes.
pub fn lying_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = noise_png(1, 1, 1);
    // IHDR's data starts after the 8-byte signature and the chunk's length and type.
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A GIF whose logical screen claims `w`×`h` over one 1×1 frame.
pub fn lying_gif(w: u16, h: u16) -> Vec<u8> {
    let mut gif = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut gif, 1, 1, &[0, 0, 0, 255, 255, 255]).unwrap();
        enc.write_frame(&gif::Frame {
            width: 1,
            height: 1,
            buffer: std::borrow::Cow::Borrowed(&[1]),
            ..gif::Frame::default()
        })
        .unwrap();
    }
    gif[6..8].copy_from_slice(&w.to_le_bytes());
    gif[8..10].copy_from_slice(&h.to_le_bytes());
    gif
}

/// A GIF of `frames` 1×1 frames: small on disk, many frames to hold.
pub fn many_frame_gif(frames: usize) -> Vec<u8> {
    let mut gif = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut gif, 1, 1, &[0, 0, 0, 255, 255, 255]).unwrap();
        for i in 0..frames {
            enc.write_frame(&gif::Frame {
                width: 1,
                height: 1,
                delay: 2,
                buffer: std::borrow::Cow::Owned(vec![(i % 2) as u8]),
                ..gif::Frame::default()
            })
            .unwrap();
        }
    }
    gif
}

/// A WebP whose VP8X header claims a `w`×`h` canvas (24-bit sizes, so up to 16M a side).
pub fn lying_webp(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&22u32.to_le_bytes());
    v.extend_from_slice(b"WEBPVP8X");
    v.extend_from_slice(&10u32.to_le_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    v.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    v
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Puts `bytes` into the library as an asset without import's checks, as an older version
/// (or a disk fault) could have.
pub fn smuggle(data: &Path, name: &str, mime: &str, bytes: &[u8]) -> String {
    let lib = mintframe_library::Library::open(data).unwrap();
    let stored = lib
        .store(
            &mut &bytes[..],
            bytes.len() as u64,
            &mintframe_jobs::JobCtx::detached(),
        )
        .unwrap();
    let id = lib
        .add_asset(mintframe_library::NewAsset {
            kind: mintframe_types::AssetKind::Image,
            name: name.to_owned(),
            recipe: None,
            job: None,
            files: vec![mintframe_library::NewFile {
                role: "main".into(),
                file_name: format!("{name}.png"),
                mime: mime.into(),
                stored,
            }],
        })
        .unwrap();
    id.0
}

/// A safetensors file of float32 tensors `(name, shape, values)`, written by hand (the format is
/// an 8-byte header length, a JSON header, then the data), for inputs the tests make up.
pub fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            (*name).to_owned(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}
