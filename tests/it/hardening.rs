//! Bad files and busy libraries, as a user meets them: headers that lie about their size, files
//! that are not what their name says, pipes and devices, several processes on one library,
//! numbers that are not numbers. Each case is a row of `docs/reliability.md` (a test keeps the
//! two equal).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mintframe_tests::{
    lying_gif, lying_png, lying_webp, many_frame_gif, mintframe, noise_png, run, smuggle, stderr,
    stdout, workspace_root,
};

/// A file import refuses, and the words its refusal must contain.
struct Case {
    file: &'static str,
    what: &'static str,
    bytes: fn() -> Vec<u8>,
    says: &'static str,
}

fn truncated_png() -> Vec<u8> {
    let mut p = noise_png(64, 64, 3);
    p.truncate(p.len() / 2);
    p
}

fn corrupt_gif() -> Vec<u8> {
    let mut g = many_frame_gif(2);
    let n = g.len();
    // The image data of the frames, scrambled; the header still reads.
    for b in &mut g[40..n - 1] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    g
}

const CASES: &[Case] = &[
    Case {
        file: "huge.png",
        what: "a 75-byte PNG whose header claims 200000×200000 pixels",
        bytes: || lying_png(200_000, 200_000),
        says: "over the limit of 16384 pixels a side",
    },
    Case {
        file: "wide.png",
        what: "a PNG claiming 16000×16000 (under the side limit, over the pixel limit)",
        bytes: || lying_png(16_000, 16_000),
        says: "over the limit of 64 megapixels a frame",
    },
    Case {
        file: "huge.gif",
        what: "a GIF whose screen claims 65535×65535",
        bytes: || lying_gif(65_535, 65_535),
        says: "over the limit of 16384 pixels a side",
    },
    Case {
        file: "frames.gif",
        what: "a GIF of 5000 tiny frames (about 100 KB)",
        bytes: || many_frame_gif(5000),
        says: "over the limit of 4096 frames",
    },
    Case {
        file: "huge.webp",
        what: "a WebP whose VP8X header claims 100000×100000",
        bytes: || lying_webp(100_000, 100_000),
        says: "over the limit of 16384 pixels a side",
    },
    Case {
        file: "empty.png",
        what: "a zero-byte .png",
        bytes: Vec::new,
        says: "is empty (0 bytes)",
    },
    Case {
        file: "half.png",
        what: "a PNG cut off half-way",
        bytes: truncated_png,
        says: "PNG",
    },
    Case {
        file: "notes.png",
        what: "a text file named .png",
        bytes: || b"just some notes, not an image\n".to_vec(),
        says: "whatever its name",
    },
    Case {
        file: "broken.gif",
        what: "a GIF whose frame data is scrambled",
        bytes: corrupt_gif,
        says: "GIF",
    },
    Case {
        file: "really-a-png.gif",
        what: "a PNG named .gif",
        bytes: || noise_png(4, 4, 5),
        says: "its bytes are PNG; rename it to .png",
    },
];

/// Runs `cmd`, failing the test (not hanging it) if it takes longer than `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child: Child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("{cmd:?} ran past {limit:?}: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn assets(data: &Path) -> Vec<serde_json::Value> {
    let o = run(mintframe(data).args(["library", "list", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn stored_files(data: &Path) -> usize {
    fs::read_dir(data.join("files"))
        .map(|rd| {
            rd.map(|d| fs::read_dir(d.unwrap().path()).unwrap().count())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn every_bad_file_is_refused_at_import_by_name_and_the_good_ones_in_the_batch_go_in() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let mut paths: Vec<PathBuf> = CASES
        .iter()
        .map(|c| {
            let p = work.path().join(c.file);
            fs::write(&p, (c.bytes)()).unwrap();
            p
        })
        .collect();
    // Not regular files: they must be refused without being read (a FIFO would block).
    let fifo = work.path().join("pipe.png");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    paths.push(fifo.clone());
    paths.push(PathBuf::from("/dev/zero"));
    let good_png = work.path().join("good.png");
    fs::write(&good_png, noise_png(8, 8, 11)).unwrap();
    let good_gif = work.path().join("good.gif");
    fs::write(&good_gif, many_frame_gif(3)).unwrap();
    paths.push(good_png);
    paths.push(good_gif);

    let o = run_within(
        mintframe(&data).args(["library", "import"]).args(&paths),
        Duration::from_secs(120),
    );
    let err = stderr(&o);
    assert!(!o.status.success(), "a batch with refusals exited 0: {err}");
    for c in CASES {
        let line = err
            .lines()
            .find(|l| l.starts_with("refused ") && l.contains(c.file))
            .unwrap_or_else(|| panic!("{} ({}) was not refused: {err}", c.file, c.what));
        assert!(line.contains(c.says), "{}: {line}", c.what);
    }
    assert!(err.contains("pipe.png: is a named pipe (FIFO)"), "{err}");
    assert!(err.contains("/dev/zero: is a device"), "{err}");
    assert!(
        err.contains(&format!(
            "{} of {} files refused",
            CASES.len() + 2,
            paths.len()
        )),
        "{err}"
    );
    // Only the two good files are in, and nothing of the refused ones was stored.
    let list = assets(&data);
    let mut names: Vec<&str> = list.iter().map(|a| a["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["good", "good"], "{list:?}");
    assert_eq!(stored_files(&data), 2);
    let o = run(mintframe(&data).args(["library", "check", "--deep"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    // One refused file alone: exit 1, the library unchanged.
    let o = run(mintframe(&data)
        .args(["library", "import"])
        .arg(work.path().join("huge.png")));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("was not imported") && stderr(&o).contains("16384 pixels a side"),
        "{}",
        stderr(&o)
    );
    assert_eq!(assets(&data).len(), 2);
    assert_eq!(stored_files(&data), 2);
}

#[test]
fn a_lying_file_already_in_the_library_fails_cleanly_then_is_found_and_quarantined() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let good = work.path().join("ok.png");
    fs::write(&good, noise_png(8, 8, 2)).unwrap();
    assert!(
        run(mintframe(&data).args(["library", "import"]).arg(&good))
            .status
            .success()
    );
    let bomb = smuggle(&data, "bomb", "image/png", &lying_png(200_000, 200_000));
    let text = smuggle(&data, "notes", "image/png", b"not an image at all");
    let out = work.path().join("o.png");

    // Every command that decodes it says why and exits 1; none aborts (exit 134).
    for args in [
        vec!["render", bomb.as_str(), "-o"],
        vec!["render", bomb.as_str(), "--thumbnail", "64", "-o"],
    ] {
        let o = run(mintframe(&data).args(&args).arg(&out));
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("16384 pixels a side"), "{}", stderr(&o));
    }
    let o = run(mintframe(&data).args(["publish", "collection", &bomb, "--name", "x", "--check"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    // `check --deep` finds both; a shallow check does not decode.
    let o = run(mintframe(&data).args(["library", "check"]));
    assert!(o.status.success(), "{}", stdout(&o));
    let o = run(mintframe(&data).args(["library", "check", "--deep"]));
    assert!(!o.status.success());
    let report = stdout(&o);
    assert!(
        report.contains(&format!("asset {bomb} does not decode")),
        "{report}"
    );
    assert!(
        report.contains(&format!("asset {text} does not decode")),
        "{report}"
    );

    // `--repair` moves their files to quarantine (never deletes) and marks them.
    let o = run(mintframe(&data).args(["library", "check", "--repair"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("asset {bomb} marked damaged")),
        "{}",
        stdout(&o)
    );
    assert_eq!(fs::read_dir(data.join("quarantine")).unwrap().count(), 2);
    let o = run(mintframe(&data).args(["library", "check", "--deep"]));
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains(&format!("asset {bomb} is marked damaged")));
    let list = assets(&data);
    let b = list.iter().find(|a| a["id"] == bomb.as_str()).unwrap();
    assert!(b["damaged"].as_str().unwrap().contains("16384"), "{b}");
    let o = run(mintframe(&data).args(["render", &bomb, "-o"]).arg(&out));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is damaged"), "{}", stderr(&o));
    // The healthy asset still renders.
    let ok = list.iter().find(|a| a["name"] == "ok").unwrap();
    let o = run(mintframe(&data)
        .args(["render", ok["id"].as_str().unwrap(), "-o"])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn eight_processes_share_one_fresh_library_and_every_asset_lands_once() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let mut children = Vec::new();
    // A fresh data folder: all four generations want the built-in model installed at once.
    for i in 0..4u64 {
        children.push((
            format!("generate {i}"),
            mintframe(&data)
                .args(["generate", "a slime", "--steps", "2", "--size", "64x64"])
                .args(["--seed", &i.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ));
    }
    let mut imported = 0;
    for i in 0..4u64 {
        let files: Vec<PathBuf> = (0..5u64)
            .map(|j| {
                let p = work.path().join(format!("batch{i}-{j}.png"));
                fs::write(&p, noise_png(32, 32, 100 + i * 10 + j)).unwrap();
                p
            })
            .collect();
        imported += files.len();
        children.push((
            format!("import {i}"),
            mintframe(&data)
                .args(["library", "import"])
                .args(&files)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ));
    }
    for (what, child) in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{what} failed: {}", stderr(&o));
    }
    let list = assets(&data);
    assert_eq!(list.len(), 4 + imported, "{list:?}");
    let ids: std::collections::HashSet<_> = list.iter().map(|a| a["id"].clone()).collect();
    assert_eq!(ids.len(), list.len());
    let names: std::collections::HashSet<_> = list
        .iter()
        .filter(|a| a["name"].as_str().unwrap().starts_with("batch"))
        .map(|a| a["name"].clone())
        .collect();
    assert_eq!(
        names.len(),
        imported,
        "an imported file is missing or there twice"
    );
    let o = run(mintframe(&data).args(["library", "check", "--deep"]));
    assert!(o.status.success(), "{}", stdout(&o));
    let o = run(mintframe(&data).args(["jobs", "list", "--all", "--json"]));
    let jobs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(jobs.len(), 8);
    assert!(jobs.iter().all(|j| j["state"] == "succeeded"), "{jobs:?}");
}

#[test]
fn numbers_that_are_not_finite_or_in_range_fail_before_any_work_and_say_the_range() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    for (flag, value, says) in [
        ("--guidance", "NaN", "0 ≤ guidance ≤ 30"),
        ("--guidance", "inf", "0 ≤ guidance ≤ 30"),
        ("--guidance", "-1", "0 ≤ guidance ≤ 30"),
        ("--strength", "0", "0 < strength ≤ 1"),
        ("--seed", "-2", "-1 for a random seed"),
    ] {
        let o = run(mintframe(&data).args(["generate", "x", flag, value]));
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{flag} {value}: {}", stderr(&o));
    }
    assert!(
        !data.join("library.sqlite3").exists(),
        "a refused run touched the library"
    );
    // `--seed -1` is A1111's "random": accepted, and a seed is fixed at submit.
    let o = run(mintframe(&data).args(["generate", "x", "--seed", "-1", "--detach"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(mintframe(&data).args(["jobs", "list", "--json"]));
    let jobs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(jobs[0]["spec"]["seed"].is_u64(), "{}", jobs[0]);
    // `--detach` only queues: nothing in that process runs the job.
    assert_eq!(jobs[0]["state"], "queued", "{}", jobs[0]);
}

#[test]
fn an_ambiguous_id_prefix_lists_the_ids_it_matches() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let files: Vec<PathBuf> = (0..2)
        .map(|i| {
            let p = work.path().join(format!("a{i}.png"));
            fs::write(&p, noise_png(4, 4, 40 + i)).unwrap();
            p
        })
        .collect();
    assert!(
        run(mintframe(&data).args(["library", "import"]).args(&files))
            .status
            .success()
    );
    let list = assets(&data);
    let (a, b) = (
        list[0]["id"].as_str().unwrap(),
        list[1]["id"].as_str().unwrap(),
    );
    // Ids are time-ordered: two made in one run share their first digits.
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    assert!(common >= 4, "{a} {b}");
    let o = run(mintframe(&data).args(["library", "show", &a[..common]]));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("several ids") && err.contains(a) && err.contains(b),
        "{err}"
    );
}

#[test]
fn each_cause_is_printed_once() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let p = work.path().join("a.png");
    fs::write(&p, noise_png(4, 4, 9)).unwrap();
    let o = run(mintframe(&data).args(["library", "import"]).arg(&p));
    let id = stdout(&o)
        .trim()
        .strip_prefix("imported ")
        .unwrap()
        .to_owned();
    // The stored file vanishes behind the library's back; export must say so, once.
    for d in fs::read_dir(data.join("files")).unwrap() {
        fs::remove_dir_all(d.unwrap().path()).unwrap();
    }
    let o = run(mintframe(&data)
        .args(["library", "export", &id])
        .arg(work.path().join("out")));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// The rows `docs/reliability.md` lists for import, from [`CASES`].
fn import_rows() -> String {
    let mut out = String::from("| File | What it is | Import says |\n|---|---|---|\n");
    for c in CASES {
        out.push_str(&format!("| `{}` | {} | …{}… |\n", c.file, c.what, c.says));
    }
    out
}

#[test]
fn the_reliability_record_lists_every_case_the_tests_try() {
    let doc_path = workspace_root().join("docs/reliability.md");
    let doc = fs::read_to_string(&doc_path).unwrap();
    let (start, end) = ("<!-- import-cases:start -->\n", "<!-- import-cases:end -->");
    let (Some(a), Some(b)) = (doc.find(start), doc.find(end)) else {
        panic!("docs/reliability.md lost its import-cases markers");
    };
    let rows = import_rows();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let new = format!("{}{start}{rows}{}", &doc[..a], &doc[b..]);
        fs::write(&doc_path, new).unwrap();
        return;
    }
    assert_eq!(
        &doc[a + start.len()..b],
        rows,
        "docs/reliability.md is stale: UPDATE_DOCS=1 cargo test -p mintframe-tests reliability"
    );
    // Every other fault the document lists names the test that tries it; that test exists.
    let tests: String = fs::read_dir(workspace_root().join("tests/it"))
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    for cited in doc.split('`').filter(|s| s.starts_with("it::")) {
        let name = cited.rsplit("::").next().unwrap();
        assert!(
            tests.contains(&format!("fn {name}(")),
            "docs/reliability.md cites {cited}, which is not a test"
        );
    }
}
