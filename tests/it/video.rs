//! `mintframe encode` and `mintframe probe`: a sprite sheet to MP4, WebM with alpha, APNG and
//! GIF through the real FFmpeg libraries, each probed back; bad input refused with no file left.

use std::fs;
use std::path::Path;

use mintframe_tests::{mintframe, run, stderr, stdout};
use serde_json::Value;

/// A 4-frame sheet of 16×16 cells: a red square moving right on a transparent background.
fn sheet(path: &Path) {
    let (w, h) = (64u32, 16u32);
    let mut data = vec![0u8; (w * h * 4) as usize];
    for k in 0..4u32 {
        for y in 4..12u32 {
            for x in 2 + k..10 + k {
                let i = ((y * w + k * 16 + x) * 4) as usize;
                data[i..i + 4].copy_from_slice(&[220, 30, 30, 255]);
            }
        }
    }
    let mut enc = png::Encoder::new(fs::File::create(path).unwrap(), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
}

#[test]
fn a_sheet_encodes_to_mp4_webm_apng_and_gif_and_probe_reports_each() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let src = work.path().join("walk.png");
    sheet(&src);
    for (ext, codec, alpha) in [
        ("mp4", "h264", false),
        ("webm", "vp9", true),
        ("png", "apng", true),
        ("gif", "gif", true),
    ] {
        let out = work.path().join(format!("walk-clip.{ext}"));
        let o = run(mintframe(&data)
            .arg("encode")
            .arg(&src)
            // 10 fps: whole hundredths, so every GIF frame is 10 (8 fps alternates 12 and 13).
            .args(["--frame", "16x16", "--fps", "10", "--json", "-o"])
            .arg(&out));
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        let done: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(done["frames"], 4, "{done}");
        let o = run(mintframe(&data).arg("probe").arg(&out).arg("--json"));
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(p["codec"], codec, "{ext}: {p}");
        assert_eq!(
            (p["width"].as_u64(), p["height"].as_u64()),
            (Some(16), Some(16)),
            "{p}"
        );
        assert_eq!(p["frames"], 4, "{ext}: {p}");
        assert!(
            (p["fps"].as_f64().unwrap() - 10.0).abs() < 0.01,
            "{ext}: {p}"
        );
        assert!(
            (p["duration_s"].as_f64().unwrap() - 0.4).abs() < 0.01,
            "{ext}: {p}"
        );
        assert_eq!(p["alpha"], alpha, "{ext}: {p}");
        assert_eq!(p["audio"], Value::Null);
    }
    // No stray partial files.
    let names: Vec<String> = fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_bad_extension_a_truncated_video_and_a_missing_source_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let src = work.path().join("walk.png");
    sheet(&src);
    let fail = |args: &[&str], says: &str| {
        let o = run(mintframe(&data).args(args));
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    };
    let avi = work.path().join("x.avi");
    fail(
        &[
            "encode",
            src.to_str().unwrap(),
            "--frame",
            "16x16",
            "-o",
            avi.to_str().unwrap(),
        ],
        ".avi is not a format Mintframe writes",
    );
    assert!(!avi.exists());
    // A soundtrack only where the format carries one.
    let wav = work.path().join("t.wav");
    tone(&wav, 1.0);
    let gif = work.path().join("x.gif");
    fail(
        &[
            "encode",
            src.to_str().unwrap(),
            "--frame",
            "16x16",
            "--audio",
            wav.to_str().unwrap(),
            "-o",
            gif.to_str().unwrap(),
        ],
        "only .mp4 and .webm carry a soundtrack",
    );
    assert!(!gif.exists());
    let mp4 = work.path().join("whole.mp4");
    let o = run(mintframe(&data)
        .arg("encode")
        .arg(&src)
        .args(["--frame", "16x16", "-o"])
        .arg(&mp4));
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = fs::read(&mp4).unwrap();
    let cut = work.path().join("cut.mp4");
    fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    fail(&["probe", cut.to_str().unwrap()], "cut.mp4");
    // A codec this FFmpeg does not know: the WebM's CodecID renamed in place.
    let webm = work.path().join("whole.webm");
    let o = run(mintframe(&data)
        .arg("encode")
        .arg(&src)
        .args(["--frame", "16x16", "-o"])
        .arg(&webm));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut bytes = fs::read(&webm).unwrap();
    let at = bytes
        .windows(5)
        .position(|w| w == b"V_VP9")
        .expect("the CodecID");
    bytes[at..at + 5].copy_from_slice(b"V_QQ9");
    let odd = work.path().join("odd-codec.webm");
    fs::write(&odd, &bytes).unwrap();
    let o = run(mintframe(&data).arg("probe").arg(&odd));
    assert!(!o.status.success(), "an unknown codec was probed");
    assert!(stderr(&o).contains("odd-codec.webm"), "{}", stderr(&o));
    let o = run(mintframe(&data)
        .arg("encode")
        .arg(&odd)
        .arg("-o")
        .arg(work.path().join("again.mp4")));
    assert!(!o.status.success(), "an unknown codec was decoded");
    assert!(
        stderr(&o).contains("has a video codec this FFmpeg cannot decode"),
        "{}",
        stderr(&o)
    );
    assert!(!work.path().join("again.mp4").exists());
    fail(
        &[
            "encode",
            "no-such-thing",
            "-o",
            work.path().join("y.mp4").to_str().unwrap(),
        ],
        "no-such-thing",
    );
}

/// A 16-bit mono WAV of a 440 Hz tone.
fn tone(path: &Path, seconds: f64) {
    let rate = 22_050u32;
    let n = (seconds * f64::from(rate)) as u32;
    let mut b = Vec::new();
    b.extend(b"RIFF");
    b.extend((36 + n * 2).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend(16u32.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(rate.to_le_bytes());
    b.extend((rate * 2).to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend(16u16.to_le_bytes());
    b.extend(b"data");
    b.extend((n * 2).to_le_bytes());
    for i in 0..n {
        let v = (f64::from(i) / f64::from(rate) * 440.0 * std::f64::consts::TAU).sin();
        b.extend(((v * 8000.0) as i16).to_le_bytes());
    }
    fs::write(path, b).unwrap();
}

/// The issue's first "done when" for clips: one call, a 24-frame looping clip with the tiny
/// model (its own motion adapter), in the library as MP4, WebM with alpha and GIF, each probed.
#[test]
fn one_call_renders_a_looping_24_frame_clip_to_mp4_webm_and_gif_in_the_library() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let out = work.path().join("out");
    let wav = work.path().join("crackle.wav");
    tone(&wav, 4.0);
    let o = run(mintframe(&data)
        .args(["clip", "a campfire flickering at night", "--frames", "24"])
        .args([
            "--loop", "--fps", "8", "--seed", "3", "--width", "64", "--height", "64",
        ])
        .args(["--name", "campfire", "--json", "--audio"])
        .arg(&wav)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let done: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let score = done["loop_score"]["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score), "{done}");
    let id = done["assets"][0].as_str().unwrap().to_owned();
    let o = run(mintframe(&data).args(["library", "show", &id, "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let asset: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(asset["summary"]["kind"], "clip", "{asset}");
    let roles: Vec<&str> = asset["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["role"].as_str().unwrap())
        .collect();
    for r in ["main", "webm", "gif", "poster", "recipe"] {
        assert!(roles.contains(&r), "{r} missing from {roles:?}");
    }
    for (ext, codec, alpha, audio) in [
        ("mp4", "h264", false, Value::from("aac")),
        ("webm", "vp9", true, Value::from("opus")),
        ("gif", "gif", true, Value::Null),
    ] {
        let file = out.join(format!("campfire.{ext}"));
        let o = run(mintframe(&data).arg("probe").arg(&file).arg("--json"));
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(p["codec"], codec, "{p}");
        assert_eq!(p["frames"], 24, "{p}");
        assert_eq!(
            (p["width"].as_u64(), p["height"].as_u64()),
            (Some(64), Some(64))
        );
        assert!(
            (p["fps"].as_f64().unwrap() - 8.0).abs() < 0.01,
            "{ext}: {p}"
        );
        assert!(
            (p["duration_s"].as_f64().unwrap() - 3.0).abs() < 0.01,
            "{ext}: {p}"
        );
        assert_eq!(p["alpha"], alpha, "{ext}: {p}");
        // The 4 s soundtrack is cut to the clip's 3 s.
        assert_eq!(p["audio"], audio, "{ext}: {p}");
    }
    // The recipe makes the same frames: the poster is the first, drawn again.
    let recipe: Value =
        serde_json::from_str(&fs::read_to_string(out.join("campfire.clip.json")).unwrap()).unwrap();
    assert_eq!(recipe["spec"]["seed"], 3);
    assert_eq!(recipe["spec"]["looped"], true);
    assert_eq!(recipe["motion"]["sha256"].as_str().map(str::len), Some(64));
    // vid2vid: the MP4 restyled frame by frame keeps its frames, rate and sound.
    let restyled = work.path().join("restyled");
    let o = run(mintframe(&data)
        .args(["clip", "the same fire, in watercolour", "--from"])
        .arg(out.join("campfire.mp4"))
        .args([
            "--strength",
            "0.6",
            "--steps",
            "2",
            "--seed",
            "5",
            "--name",
            "water",
        ])
        .args(["--format", "mp4,gif", "--json", "-o"])
        .arg(&restyled));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(mintframe(&data)
        .arg("probe")
        .arg(restyled.join("water.mp4"))
        .arg("--json"));
    let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(p["frames"], 24, "{p}");
    assert!((p["fps"].as_f64().unwrap() - 8.0).abs() < 0.01, "{p}");
    assert_eq!(p["audio"], "aac", "the video's sound came along: {p}");
    let o = run(mintframe(&data)
        .args(["clip", "x", "--walk", "--from"])
        .arg(out.join("campfire.mp4")));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("takes its motion from the video"),
        "{}",
        stderr(&o)
    );
    // No scratch left behind.
    let scratch = data.join("scratch");
    assert!(
        !scratch.exists() || fs::read_dir(&scratch).unwrap().next().is_none(),
        "scratch left"
    );
}

#[test]
fn clips_refuse_bad_settings_and_a_motion_module_for_another_base_before_any_file() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let fail = |args: &[&str], says: &str| {
        let o = run(mintframe(&data).arg("clip").args(args));
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    };
    fail(&["x", "--frames", "0"], "--frames 0 is out of range");
    fail(
        &["x", "--context", "8", "--overlap", "8"],
        "--overlap 8 must be shorter",
    );
    fail(&["x", "--fps", "0"], "--fps 0 is out of range");
    fail(
        &["x", "--width", "60"],
        "--width 60 must be a multiple of 8",
    );
    fail(&["x", "--format", "mp4,mp4"], "a format is listed twice");
    fail(&["x", "--name", "../up"], "clip name");
    fail(
        &["x", "--motion", "/nonexistent/motion"],
        "motion adapter /nonexistent/motion",
    );
    fail(
        &["x", "--model", "mintframe-sprites"],
        "has no motion adapter of its own",
    );
    let wav = work.path().join("t.wav");
    tone(&wav, 1.0);
    fail(
        &["x", "--format", "gif", "--audio", wav.to_str().unwrap()],
        "a soundtrack needs mp4 or webm",
    );
    fail(&["x", "--audio", "/nonexistent.wav"], "/nonexistent.wav");
    // The tiny model's motion adapter (written by the run above) is for the tiny UNet's
    // blocks, not the sprite model's.
    let o = run(mintframe(&data).args([
        "clip", "x", "--frames", "2", "--steps", "1", "--format", "gif",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let motion = data.join("models/tiny-sd/motion_adapter");
    assert!(motion.is_dir());
    fail(
        &[
            "x",
            "--model",
            "mintframe-sprites",
            "--motion",
            motion.to_str().unwrap(),
        ],
        "is for a UNet with blocks [32, 64]",
    );
    fail(&["x", "--key", "0:a dragon"], "a keyframe at frame 0");
    let rife = mintframe_tests::workspace_root().join("tests/fixtures/rife/tiny.safetensors");
    fail(
        &["x", "--motion-lora", rife.to_str().unwrap()],
        "is not kohya LoRA format",
    );
    // A MotionLoRA (AnimateDiff's layout; the parity fixture's fits the tiny adapter) steers
    // the motion modules: the clip changes, its recipe names it.
    let motion_lora = mintframe_tests::workspace_root()
        .join("tests/fixtures/motion_lora/motion_lora.safetensors");
    let clip_with = |extra: &[&str]| {
        let o = run(mintframe(&data)
            .args([
                "clip",
                "a lantern",
                "--frames",
                "4",
                "--steps",
                "1",
                "--seed",
                "2",
            ])
            .args(["--format", "gif", "--json"])
            .args(extra));
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        v["assets"][0].as_str().unwrap().to_owned()
    };
    let plain = clip_with(&[]);
    let steered = clip_with(&["--motion-lora", &format!("{}:0.8", motion_lora.display())]);
    let main_sha = |id: &str| {
        let o = run(mintframe(&data).args(["library", "show", id, "--json"]));
        let a: Value = serde_json::from_str(&stdout(&o)).unwrap();
        a["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["role"] == "main")
            .map(|f| f["sha256"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_ne!(
        main_sha(&plain),
        main_sha(&steered),
        "the MotionLoRA changed nothing"
    );
    for id in [plain, steered] {
        let o = run(mintframe(&data).args(["library", "remove", &id]));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    fail(
        &["x", "--frames", "8", "--key", "8:a dragon"],
        "inside the clip's 8 frames",
    );
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let all: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(all.len(), 1, "only the good clip was stored: {all:?}");
    // A keyframe walk needs no motion adapter: the offline sprite model walks from one potion
    // to another.
    let o = run(mintframe(&data)
        .args([
            "clip",
            "a red potion",
            "--model",
            "mintframe-sprites",
            "--walk",
        ])
        .args(["--frames", "6", "--key", "3:a blue potion@11", "--loop"])
        .args(["--format", "gif", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let done: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = done["assets"][0].as_str().unwrap().to_owned();
    let out = work.path().join("walk");
    let o = run(mintframe(&data).args(["library", "export", &id]).arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let recipe: Value =
        serde_json::from_str(&fs::read_to_string(out.join("a-red-potion.clip.json")).unwrap())
            .unwrap();
    assert_eq!(recipe["motion"], Value::Null, "{recipe}");
    assert_eq!(recipe["spec"]["keyframes"][0]["seed"], 11);
}

/// Every frame of a video as RGB, decoded by the `ffmpeg` command line (not our decoder).
fn rgb_frames(path: &Path, w: usize, h: usize) -> Vec<Vec<u8>> {
    let o = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
        .chunks_exact(w * h * 3)
        .map(<[u8]>::to_vec)
        .collect()
}

fn mean(f: &[u8]) -> f64 {
    f.iter().map(|v| f64::from(*v)).sum::<f64>() / f.len() as f64
}

/// Mean absolute difference over the rows `rows` of two 64-wide RGB frames.
fn diff_rows(a: &[u8], b: &[u8], rows: std::ops::Range<usize>) -> f64 {
    let (s, e) = (rows.start * 64 * 3, rows.end * 64 * 3);
    a[s..e]
        .iter()
        .zip(&b[s..e])
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / (e - s) as f64
}

const THREE_SHOTS: &str = r#"
name = "smith"
width = 64
height = 64
fps = 10
seed = 5
steps = 2
subtitles = "SUBS"
audio = "music.wav"

[[shot]]
prompt = "a forge at night"
duration = 2.0
transition = "fade"
transition_duration = 0.5
camera = { zoom = 1.5, easing = "ease-in-out" }

[[shot]]
prompt = "the smith's face"
duration = 1.5
transition = "dissolve"
transition_duration = 0.5
motion = true
speaker = "Smith"
line = "Need a blade?"
audio = "line.wav"

[[shot]]
prompt = "a sword on the anvil"
duration = 1.0
transition = "wipe-left"
transition_duration = 0.3
camera = { pan = [0.2, 0.0], strength = 0.4 }
"#;

/// The issue's "done when" for cinematics: three shots (a camera move; AnimateDiff; a
/// repainted pan) joined by a fade in, a dissolve and a wipe, a line burned in and as WebVTT,
/// music and a spoken line mixed, one MP4 that probe reads back as asked.
#[test]
fn a_three_shot_list_renders_to_one_mp4_with_transitions_subtitles_and_sound() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    tone(&work.path().join("music.wav"), 6.0);
    tone(&work.path().join("line.wav"), 1.0);
    let render = |subs: &str, out: &str| {
        let list = work.path().join(format!("{out}.toml"));
        fs::write(&list, THREE_SHOTS.replace("SUBS", subs)).unwrap();
        let o = run(mintframe(&data)
            .arg("shots")
            .arg(&list)
            .arg("--json")
            .arg("-o")
            .arg(work.path().join(out)));
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()
    };
    let done = render("both", "both");
    assert_eq!(done["assets"].as_array().unwrap().len(), 1, "{done}");
    let mp4 = work.path().join("both/smith.mp4");
    let o = run(mintframe(&data).arg("probe").arg(&mp4).arg("--json"));
    assert!(o.status.success(), "{}", stderr(&o));
    let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // 20 + 15 + 10 frames, 5 shared by the dissolve and 3 by the wipe.
    assert_eq!(p["frames"], 37, "{p}");
    assert_eq!(p["codec"], "h264");
    assert!((p["fps"].as_f64().unwrap() - 10.0).abs() < 0.01, "{p}");
    assert_eq!(
        (p["width"].as_u64(), p["height"].as_u64()),
        (Some(64), Some(64))
    );
    assert_eq!(p["audio"], "aac", "{p}");
    let vtt = fs::read_to_string(work.path().join("both/smith.vtt")).unwrap();
    assert_eq!(
        vtt,
        "WEBVTT\n\n1\n00:00:02.000 --> 00:00:02.700\nSmith: Need a blade?\n"
    );
    let plan: Value = serde_json::from_str(
        &fs::read_to_string(work.path().join("both/smith.shots.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(plan["timeline"]["shots"][1]["start"], 15, "{plan}");

    let burned = rgb_frames(&mp4, 64, 64);
    assert_eq!(burned.len(), 37);
    // Faded in from black: the first frame is darker than the shot once in.
    assert!(
        mean(&burned[0]) + 10.0 < mean(&burned[8]),
        "{} vs {}",
        mean(&burned[0]),
        mean(&burned[8])
    );
    // The same list without subtitles draws the same frames; only the cue's frames differ,
    // and only at the bottom, where the line is.
    render("off", "plain");
    assert!(!work.path().join("plain/smith.vtt").exists());
    let plain = rgb_frames(&work.path().join("plain/smith.mp4"), 64, 64);
    assert_eq!(plain.len(), 37);
    // (The encoder's rate control spreads a little of the change to nearby frames.)
    for k in (0..20).chain(27..37) {
        let d = diff_rows(&burned[k], &plain[k], 0..64);
        assert!(d < 5.0, "frame {k} differs by {d}");
    }
    assert_eq!(diff_rows(&burned[0], &plain[0], 0..64), 0.0);
    for k in 20..27 {
        let (bottom, top) = (
            diff_rows(&burned[k], &plain[k], 48..64),
            diff_rows(&burned[k], &plain[k], 0..32),
        );
        assert!(
            bottom > 30.0 && top < 8.0,
            "frame {k}: the line should change the bottom ({bottom}) not the top ({top})"
        );
    }
    // The dissolve's frames lie between the shots it joins.
    let between = |k: usize| {
        let d = |a: &[u8], b: &[u8]| diff_rows(a, b, 0..64);
        d(&plain[k], &plain[14]) > 1.0 && d(&plain[k], &plain[20]) > 1.0
    };
    assert!((15..20).all(between), "the dissolve is a cut");
}

#[test]
fn bad_shot_lists_are_refused_by_shot_and_field_and_nothing_is_stored() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let fail = |text: &str, says: &str| {
        let list = work.path().join("bad.toml");
        fs::write(&list, text).unwrap();
        let o = run(mintframe(&data).arg("shots").arg(&list));
        assert!(!o.status.success(), "{text} succeeded");
        assert!(stderr(&o).contains(says), "{text}: {}", stderr(&o));
    };
    fail(
        "[[shot]]\nprompt = \"a\"\nduration = -2.0\n",
        "shot 1: duration -2 must be above 0 seconds",
    );
    fail(
        "[[shot]]\nprompt = \"a\"\nduration = 1.0\n[[shot]]\nprompt = \"b\"\nduration = 1.0\ntransition = \"spiral\"\n",
        "unknown variant `spiral`",
    );
    fail(
        "[[shot]]\nprompt = \"a\"\nduration = 1.0\naudio = \"missing.wav\"\n",
        "missing.wav",
    );
    fail(
        "model = \"mintframe-sprites\"\n[[shot]]\nprompt = \"a\"\nduration = 1.0\nmotion = true\n",
        "has no motion adapter",
    );
    fail("fps = 12\n", "missing field `shot`");
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let all: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    assert!(all.is_empty(), "{all:?}");
}

/// RIFE in-betweens on a pixel-art walk: twice the frames (the loop closed), every new pixel in
/// the sprite's own colours and alpha still on or off. (The weights are the parity fixture's
/// tiny random IFNet, so what moves where is arbitrary; the palette and counts are not.)
#[test]
fn interpolate_doubles_a_pixel_art_loop_in_its_own_palette_and_refuses_what_it_cannot() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let src = work.path().join("walk.png");
    sheet(&src);
    let rife = mintframe_tests::workspace_root().join("tests/fixtures/rife/tiny.safetensors");
    let out = work.path().join("smooth.gif");
    let o = run(mintframe(&data)
        .arg("interpolate")
        .arg(&src)
        .args([
            "--frame", "16x16", "--factor", "2", "--loop", "--fps", "10", "--json",
        ])
        .arg("--rife")
        .arg(&rife)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let done: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(done["frames"], 8, "{done}");
    assert_eq!(
        done["palette"], 1,
        "one colour besides transparency: {done}"
    );
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut d = opts.read_info(fs::File::open(&out).unwrap()).unwrap();
    let mut frames = 0;
    while let Some(f) = d.read_next_frame().unwrap() {
        frames += 1;
        for p in f.buffer.chunks_exact(4) {
            assert!(
                p[3] == 0 || p == [220, 30, 30, 255],
                "frame {frames}: {p:?} is not the sprite's red or transparent"
            );
        }
    }
    assert_eq!(frames, 8);

    let fail = |args: &[&str], says: &str| {
        let o = run(mintframe(&data)
            .arg("interpolate")
            .arg(&src)
            .args(args)
            .arg("--rife")
            .arg(&rife)
            .arg("-o")
            .arg(work.path().join("bad.gif")));
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    };
    fail(
        &["--frame", "16x16", "--factor", "1"],
        "--factor 1 is out of range",
    );
    fail(
        &["--frame", "64x16"],
        "one frame has nothing to interpolate",
    );
    assert!(!work.path().join("bad.gif").exists());
    let not_rife = work.path().join("not-rife.safetensors");
    mintframe_tests::write_safetensors(&not_rife, &[("conv.weight", vec![2, 2], vec![0.0; 4])]);
    let o = run(mintframe(&data)
        .arg("interpolate")
        .arg(&src)
        .args(["--frame", "16x16", "--rife"])
        .arg(&not_rife)
        .arg("-o")
        .arg(work.path().join("bad.gif")));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("RIFE 4.x IFNet"), "{}", stderr(&o));
}
