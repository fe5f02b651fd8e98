//! Faults a user's machine really has: the process killed mid-write, a full disk, a read-only
//! disk, a damaged database. Real processes, real filesystems (tmpfs mounts), no mocks.

use std::fs;
use std::path::Path;
use std::time::Duration;

use mintframe_library::Library;
use mintframe_tests::{Mount, mintframe, noise, noise_png, run, stderr, stdout};

fn write_inputs(dir: &Path, count: usize, size: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let p = dir.join(format!("frame-{i:02}.png"));
            // Real PNGs (import decodes each one) of about `size` bytes.
            let h = (size / (256 * 4)).max(1) as u32;
            fs::write(&p, noise_png(256, h, i as u64 + 1)).unwrap();
            p.to_string_lossy().into_owned()
        })
        .collect()
}

fn assert_consistent(data: &Path) -> usize {
    let lib = Library::open(data).unwrap();
    let temp_left = fs::read_dir(data.join("tmp")).unwrap().count();
    assert_eq!(temp_left, 0, "temp files survived the start-up clean-up");
    let report = lib.check(true).unwrap();
    assert!(report.is_healthy(), "{report:?}");
    assert!(report.orphan_files.is_empty(), "{report:?}");
    lib.list_assets().unwrap().len()
}

#[test]
fn killed_mid_import_the_library_stays_consistent_and_the_job_resumes() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let inputs = write_inputs(work.path(), 16, 3 << 20);
    // Kill at different moments: before the first file lands, mid-file, between files.
    for delay_ms in [30u64, 150, 400, 700, 1100] {
        let mut child = mintframe(&data)
            .args(["library", "import"])
            .args(&inputs)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no destructor, no clean-up of its own
        child.wait().unwrap();
        assert_consistent(&data);
    }

    // Every killed job is re-queued on the next start; resuming finishes each exactly once.
    let out = run(mintframe(&data).args(["jobs", "resume"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(mintframe(&data).args(["jobs", "list", "--all", "--json"]));
    let jobs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    // A kill before the job's row was written leaves no job at all, which is fine: nothing ran.
    assert!((3..=5).contains(&jobs.len()), "{jobs:?}");
    for job in &jobs {
        assert_eq!(job["state"], "succeeded", "{job}");
        let outputs = job["outputs"].as_array().unwrap();
        let unique: std::collections::HashSet<_> = outputs.iter().collect();
        assert_eq!(
            outputs.len(),
            inputs.len(),
            "a resumed job imported a file twice or skipped one: {job}"
        );
        assert_eq!(unique.len(), inputs.len());
    }
    assert_eq!(assert_consistent(&data), jobs.len() * inputs.len());
    // Content is stored once however often it was imported.
    let stored = fs::read_dir(data.join("files"))
        .unwrap()
        .map(|d| fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum::<usize>();
    assert_eq!(stored, inputs.len());
}

#[test]
fn a_full_disk_stores_nothing_and_says_so() {
    let disk = Mount::tmpfs(1024);
    let data = disk.path().join("data");
    let src = tempfile::tempdir().unwrap();
    let big = write_inputs(src.path(), 1, 3 << 20);
    let out = run(mintframe(&data).args(["library", "import"]).args(&big));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is full"), "{err}");
    assert!(
        err.contains(&data.display().to_string()),
        "the error does not name the folder: {err}"
    );
    assert_eq!(assert_consistent(&data), 0);
    let files = fs::read_dir(data.join("files")).unwrap().count();
    assert_eq!(files, 0, "a partial file was left in the store");
    // The job records why it failed, and the library still takes what fits.
    let out = run(mintframe(&data).args(["jobs", "list", "--all", "--json"]));
    let jobs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(jobs[0]["state"], "failed");
    assert!(jobs[0]["error"].as_str().unwrap().contains("is full"));
    let small = src.path().join("small.png");
    fs::write(&small, noise_png(2, 2, 7)).unwrap();
    let out = run(mintframe(&data).args(["library", "import"]).arg(&small));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(assert_consistent(&data), 1);
}

#[test]
fn a_read_only_data_dir_is_named_in_the_error_and_left_intact() {
    let disk = Mount::tmpfs(8192);
    let data = disk.path().join("data");
    let src = tempfile::tempdir().unwrap();
    let input = write_inputs(src.path(), 1, 1000);
    assert!(
        run(mintframe(&data).args(["library", "import"]).args(&input))
            .status
            .success()
    );
    disk.remount_read_only();
    for args in [
        &["library", "list"][..],
        &["library", "import", &input[0]][..],
    ] {
        let out = run(mintframe(&data).args(args));
        assert!(
            !out.status.success(),
            "{args:?} succeeded on a read-only disk"
        );
        let err = stderr(&out);
        assert!(err.contains(&data.display().to_string()), "{err}");
        assert!(err.contains("Read-only file system"), "{err}");
    }
}

#[test]
fn a_data_dir_that_cannot_exist_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("plain-file");
    fs::write(&file, b"x").unwrap();
    let out = run(mintframe(&file.join("data")).args(["library", "list"]));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot use the data folder"), "{err}");
    assert!(err.contains("plain-file/data"), "{err}");
    assert!(err.contains("--data-dir"), "{err}");
}

#[test]
fn a_damaged_database_is_refused_then_repaired_keeping_every_file() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let inputs = write_inputs(work.path(), 3, 5000);
    assert!(
        run(mintframe(&data).args(["library", "import"]).args(&inputs))
            .status
            .success()
    );
    let db = data.join("library.sqlite3");
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
    fs::write(&db, noise(16384, 99)).unwrap();

    let out = run(mintframe(&data).args(["library", "list"]));
    assert!(
        !out.status.success(),
        "a damaged database was opened silently"
    );
    let err = stderr(&out);
    assert!(
        err.contains("is damaged") && err.contains("library check --repair"),
        "{err}"
    );
    assert_eq!(
        fs::read(&db).unwrap(),
        noise(16384, 99),
        "refusing must not touch the database"
    );

    let out = run(mintframe(&data).args(["library", "check"]));
    assert!(!out.status.success());

    let out = run(mintframe(&data).args(["library", "check", "--repair"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("files recovered as assets 3"), "{said}");
    assert!(said.contains("library healthy"), "{said}");
    let aside: Vec<_> = fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".damaged-"))
        .collect();
    assert!(!aside.is_empty(), "the damaged database was not kept");

    let out = run(mintframe(&data).args(["library", "list", "--json"]));
    let assets: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(assets.len(), 3);
    // Every original byte is still there, exported back out.
    let export = work.path().join("export");
    for a in &assets {
        let out = run(mintframe(&data)
            .args(["library", "export", a["id"].as_str().unwrap()])
            .arg(&export));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut got: Vec<Vec<u8>> = fs::read_dir(&export)
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    let mut want: Vec<Vec<u8>> = inputs.iter().map(|p| fs::read(p).unwrap()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}
