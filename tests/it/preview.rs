//! `mintframe preview`: the native window under Xvfb, seen the way a user sees it — through a
//! screenshot of the display — and driven through its stdin.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mintframe_tests::{Display, bin};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};

struct Shot {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Shot {
    fn take(display: &str) -> Shot {
        let (conn, n) = x11rb::connect(Some(display)).unwrap();
        let screen = &conn.setup().roots[n];
        let (w, h) = (screen.width_in_pixels, screen.height_in_pixels);
        let img = conn
            .get_image(ImageFormat::Z_PIXMAP, screen.root, 0, 0, w, h, !0)
            .unwrap()
            .reply()
            .unwrap();
        assert_eq!(img.depth, 24);
        // Xvfb at depth 24 stores 32 bits a pixel, little-endian BGRX.
        let rgb = img.data.chunks(4).map(|p| [p[2], p[1], p[0]]).collect();
        Shot {
            width: usize::from(w),
            height: usize::from(h),
            rgb,
        }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }

    /// Top-left corners of solid `w`×`h` blocks of `colour` (±2 per channel).
    fn find_block(&self, colour: [u8; 3], w: usize, h: usize) -> Option<(usize, usize)> {
        let near = |p: [u8; 3]| p.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 2);
        for y in 0..self.height.saturating_sub(h) {
            for x in 0..self.width.saturating_sub(w) {
                if near(self.at(x, y))
                    && (y..y + h).all(|yy| (x..x + w).all(|xx| near(self.at(xx, yy))))
                {
                    return Some((x, y));
                }
            }
        }
        None
    }
}

/// `mintframe preview SOURCE ARGS… MORE…` on `display`, with its stdout lines on a channel.
fn window(
    display: &Display,
    work: &std::path::Path,
    source: &std::path::Path,
    args: &[&str],
    more: &[&str],
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(bin("mintframe"))
        .arg("--data-dir")
        .arg(work.join("d"))
        .arg("preview")
        .arg(source)
        .args(args)
        .args(more)
        .env("DISPLAY", &display.name)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];

/// A 2-frame sheet of 8×8 cells: frame 0 green; frame 1 red on the left half, blue on the right.
fn sheet(path: &std::path::Path) {
    let mut data = Vec::new();
    for _ in 0..8 {
        for x in 0..16 {
            let c = match x {
                0..8 => GREEN,
                8..12 => RED,
                _ => BLUE,
            };
            data.extend([c[0], c[1], c[2], 255]);
        }
    }
    let mut enc = png::Encoder::new(std::fs::File::create(path).unwrap(), 16, 8);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
}

#[test]
fn the_preview_window_shows_the_sheet_frame_follows_commands_and_closes_with_exit_0() {
    let work = tempfile::tempdir().unwrap();
    let png = work.path().join("walk.png");
    sheet(&png);
    let display = Display::start();
    let export = work.path().to_str().unwrap();
    let (mut child, rx) = window(
        &display,
        work.path(),
        &png,
        &["--frame", "8x8", "--zoom", "4", "--paused", "--index", "1"],
        &["--backdrop", "#202020", "--export-dir", export],
    );
    let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        panic!("no ready line: {}", String::from_utf8_lossy(&o.stderr))
    };
    assert!(line.starts_with("ready: frame 1 of 2"), "{line}");

    // Frame 1 at 4×: a 16×32 red block with a 16×32 blue block right beside it.
    let found = wait_for_block(&display.name, RED, 16, 32);
    let (x, y) = found.expect("the red half of frame 1 is not on screen");
    let shot = Shot::take(&display.name);
    assert_eq!(shot.at(x + 16, y), BLUE, "blue half beside the red one");
    assert_eq!(shot.at(x + 31, y + 31), BLUE);
    assert_ne!(shot.at(x + 32, y), BLUE, "the frame is 32 px wide at 4×");
    assert!(
        shot.find_block(GREEN, 32, 32).is_none(),
        "frame 0 is not shown"
    );

    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "frame 0").unwrap();
    assert!(
        wait_for_block(&display.name, GREEN, 32, 32).is_some(),
        "`frame 0` did not show the green frame"
    );
    writeln!(stdin, "export").unwrap();
    let exported = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(exported.starts_with("exported "), "{exported}");
    let saved = work.path().join("walk-frame000.png");
    let mut dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&saved).unwrap(),
    ));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (8, 8));
    assert_eq!(&buf[..4], &[0, 255, 0, 255]);

    writeln!(stdin, "quit").unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the window did not close on `quit`"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0));
}

/// A 1-frame 8×8 sheet of one colour, written beside and renamed into place as a job writes.
fn solid_sheet(path: &std::path::Path, c: [u8; 3]) {
    let part = path.with_extension("part");
    let data: Vec<u8> = (0..64).flat_map(|_| [c[0], c[1], c[2], 255]).collect();
    let mut enc = png::Encoder::new(std::fs::File::create(&part).unwrap(), 8, 8);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    std::fs::rename(&part, path).unwrap();
}

/// `--watch` (a character job's live sheet): the window waits for the file, shows it, and shows
/// what the file holds after each rewrite.
#[test]
fn a_watched_file_is_waited_for_and_reloaded_when_it_changes() {
    let work = tempfile::tempdir().unwrap();
    let png = work.path().join("live.png");
    let display = Display::start();
    let (mut child, rx) = window(
        &display,
        work.path(),
        &png,
        &["--frame", "8x8", "--zoom", "4", "--watch"],
        &["--backdrop", "#202020"],
    );
    // Not there yet: the window waits for it.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "gave up on a file not yet written"
    );
    solid_sheet(&png, GREEN);
    let ready = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no ready line");
    assert!(ready.starts_with("ready: frame 0 of 1"), "{ready}");
    assert!(
        wait_for_block(&display.name, GREEN, 32, 32).is_some(),
        "the first sheet"
    );
    // Modification times can be a second coarse: the rewrite must be seen as newer.
    std::thread::sleep(Duration::from_millis(1100));
    solid_sheet(&png, BLUE);
    let reloaded = rx.recv_timeout(Duration::from_secs(30)).expect("no reload");
    assert_eq!(reloaded, "reloaded: 1 frames");
    assert!(
        wait_for_block(&display.name, BLUE, 32, 32).is_some(),
        "the rewritten sheet"
    );
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "quit").unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(20), "did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_block(display: &str, colour: [u8; 3], w: usize, h: usize) -> Option<(usize, usize)> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(at) = Shot::take(display).find_block(colour, w, h) {
            return Some(at);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    None
}

#[test]
fn preview_refuses_bad_sources_before_opening_a_window() {
    let work = tempfile::tempdir().unwrap();
    let png = work.path().join("walk.png");
    sheet(&png);
    let o = Command::new(bin("mintframe"))
        .arg("--data-dir")
        .arg(work.path().join("d"))
        .args(["preview"])
        .arg(&png)
        .args(["--frame", "8x8", "--index", "5"])
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--index 5 is past the last frame (2 frames)"),
        "{err}"
    );

    let bad = work.path().join("clip.mp4");
    std::fs::write(&bad, b"not a video at all").unwrap();
    let o = Command::new(bin("mintframe"))
        .arg("--data-dir")
        .arg(work.path().join("d"))
        .arg("preview")
        .arg(&bad)
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("clip.mp4"), "{err}");
}

/// A cinematic opens with one tag per shot; `tag 2` plays only the second shot's frames (what
/// the window's shot list does), and an export then saves one of them.
#[test]
fn a_cinematic_plays_shot_by_shot_in_the_preview_window() {
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("smith.toml");
    std::fs::write(
        &list,
        "width = 64\nheight = 64\nfps = 10\nsteps = 1\nseed = 3\n\
         [[shot]]\nprompt = \"a forge\"\nduration = 2.0\n\
         [[shot]]\nprompt = \"the smith's face\"\nduration = 1.5\ntransition = \"dissolve\"\n\
         [[shot]]\nprompt = \"a sword\"\nduration = 1.0\ntransition = \"wipe-left\"\ntransition_duration = 0.3\n",
    )
    .unwrap();
    let o = Command::new(bin("mintframe"))
        .arg("--data-dir")
        .arg(work.path().join("d"))
        .arg("shots")
        .arg(&list)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let done: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = done["assets"][0].as_str().unwrap().to_owned();
    let display = Display::start();
    let export = work.path().to_str().unwrap();
    let (mut child, rx) = window(
        &display,
        work.path(),
        std::path::Path::new(&id),
        &["--paused"],
        &["--export-dir", export],
    );
    let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        panic!("no ready line: {}", String::from_utf8_lossy(&o.stderr))
    };
    // 20 + 15 + 10 frames, 5 and 3 shared.
    assert!(line.starts_with("ready: frame 0 of 37, 3 tags"), "{line}");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "tag 2").unwrap();
    let tag = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(tag, "tag 2: 2 the smith's face, frames 15-29");
    writeln!(stdin, "export").unwrap();
    let exported = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(exported.starts_with("exported "), "{exported}");
    let frame: usize = exported
        .rsplit("-frame")
        .next()
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    assert!((15..=29).contains(&frame), "{exported}");
    writeln!(stdin, "quit").unwrap();
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no close");
        std::thread::sleep(Duration::from_millis(100));
    }
}
