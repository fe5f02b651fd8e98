use std::fs;
use std::io::{Cursor, Read};

use mintframe_jobs::{CancelToken, JobCtx};
use mintframe_types::{AssetKind, JobSpec, JobState, Recipe};

use super::*;

fn lib() -> (tempfile::TempDir, Library) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::open(dir.path()).expect("open");
    (dir, lib)
}

fn add_bytes(lib: &Library, name: &str, bytes: &[u8]) -> AssetId {
    add_for_job(lib, name, bytes, None).expect("add")
}

/// An image asset of `bytes`, made by `job` when there is one.
fn add_for_job(
    lib: &Library,
    name: &str,
    bytes: &[u8],
    job: Option<JobId>,
) -> Result<AssetId, LibraryError> {
    let stored = lib
        .store(
            &mut Cursor::new(bytes.to_vec()),
            bytes.len() as u64,
            &JobCtx::detached(),
        )
        .expect("store");
    lib.add_asset(NewAsset {
        kind: AssetKind::Image,
        name: name.to_owned(),
        recipe: None,
        job,
        files: vec![NewFile {
            role: "main".into(),
            file_name: format!("{name}.png"),
            mime: "image/png".into(),
            stored,
        }],
    })
}

const HELLO_SHA: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

#[test]
fn stored_files_are_addressed_by_sha256() {
    let (_d, lib) = lib();
    let id = add_bytes(&lib, "hello", b"hello\n");
    let detail = lib.asset(&id).expect("asset");
    assert_eq!(detail.files.len(), 1);
    assert_eq!(detail.files[0].sha256, HELLO_SHA);
    assert_eq!(detail.summary.size_bytes, 6);
    let on_disk = fs::read(lib.file_path(HELLO_SHA)).expect("read");
    assert_eq!(on_disk, b"hello\n");
    assert!(
        lib.file_path(HELLO_SHA)
            .starts_with(lib.data_dir().join("files").join("58"))
    );
}

#[test]
fn import_list_show_export_remove() {
    let (dir, lib) = lib();
    let src = dir.path().join("knight walk.gif");
    fs::write(&src, b"GIF89a not really").expect("write");
    let id = lib
        .import_file(
            &src,
            AssetKind::Animation,
            "image/gif",
            None,
            &JobCtx::detached(),
        )
        .expect("import");
    let list = lib.list_assets().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "knight walk");
    assert_eq!(list[0].kind, AssetKind::Animation);
    assert_eq!(lib.resolve_id(&id.0[..8]).expect("prefix"), id);

    let out = dir.path().join("out");
    let written = lib.export_asset(&id, &out).expect("export");
    assert_eq!(written, vec![out.join("knight walk.gif")]);
    assert_eq!(fs::read(&written[0]).expect("read"), b"GIF89a not really");

    let sha = lib.asset(&id).expect("asset").files[0].sha256.clone();
    lib.remove_asset(&id).expect("remove");
    assert!(lib.list_assets().expect("list").is_empty());
    assert!(
        !lib.file_path(&sha).exists(),
        "file of a removed asset stays"
    );
    assert!(matches!(
        lib.remove_asset(&id),
        Err(LibraryError::AssetNotFound(_))
    ));
}

#[test]
fn a_file_shared_by_two_assets_outlives_one_of_them() {
    let (_d, lib) = lib();
    let a = add_bytes(&lib, "a", b"same bytes");
    let b = add_bytes(&lib, "b", b"same bytes");
    let sha = lib.asset(&a).expect("a").files[0].sha256.clone();
    lib.remove_asset(&a).expect("remove a");
    assert!(lib.file_path(&sha).exists());
    assert_eq!(lib.asset(&b).expect("b").files[0].sha256, sha);
    lib.remove_asset(&b).expect("remove b");
    assert!(!lib.file_path(&sha).exists());
}

#[test]
fn recipes_survive_the_round_trip_and_are_exported() {
    let (dir, lib) = lib();
    let stored = lib
        .store(&mut Cursor::new(b"png".to_vec()), 3, &JobCtx::detached())
        .expect("store");
    let recipe = Recipe {
        model_id: "tiny-sd".into(),
        prompt: "a knight".into(),
        seed: 42,
        steps: 4,
        width: 64,
        height: 64,
        model_files: Vec::new(),
        license: None,
        negative_prompt: String::new(),
        scheduler: mintframe_types::Scheduler::EulerA,
        guidance: 7.5,
        strength: None,
        tiling: false,
        post_processing: Vec::new(),
        post_steps: Vec::new(),
        app_version: "0.1.0".into(),
        backend: "candle-cpu".into(),
        dtype: mintframe_types::DType::F32,
        loras: Vec::new(),
        init_image_sha256: None,
        mask_sha256: None,
        transparent: None,
        controls: Vec::new(),
        latents_sha256: None,
        tiny_decoder: None,
    };
    let id = lib
        .add_asset(NewAsset {
            kind: AssetKind::Image,
            name: "knight".into(),
            recipe: Some(recipe.clone()),
            job: None,
            files: vec![NewFile {
                role: "main".into(),
                file_name: "knight.png".into(),
                mime: "image/png".into(),
                stored,
            }],
        })
        .expect("add");
    assert_eq!(lib.asset(&id).expect("asset").recipe, Some(recipe.clone()));
    let written = lib.export_asset(&id, dir.path()).expect("export");
    let json = fs::read_to_string(dir.path().join("knight.recipe.json")).expect("recipe json");
    let back: Recipe = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, recipe);
    assert_eq!(written.len(), 2);
}

#[test]
fn file_names_cannot_escape_their_folder() {
    assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
    assert_eq!(sanitize_file_name(".."), "file");
    assert_eq!(sanitize_file_name("a\\..\\b.png"), "b.png");
    assert_eq!(sanitize_file_name("x\u{0}y:z.png"), "x_y_z.png");
    let (_d, lib) = lib();
    let stored = lib
        .store(&mut Cursor::new(b"x".to_vec()), 1, &JobCtx::detached())
        .expect("store");
    let err = lib
        .add_asset(NewAsset {
            kind: AssetKind::Other,
            name: "x".into(),
            recipe: None,
            job: None,
            files: vec![NewFile {
                role: "main".into(),
                file_name: "../x".into(),
                mime: "text/plain".into(),
                stored,
            }],
        })
        .expect_err("must refuse");
    assert!(
        matches!(err, LibraryError::BadFileName(ref n) if n == "../x"),
        "{err}"
    );
    assert!(lib.list_assets().expect("list").is_empty());
}

/// A reader that cancels its job after the first chunk, as a user pressing cancel mid-import.
struct CancelAfterFirstRead {
    token: CancelToken,
    left: usize,
}

impl Read for CancelAfterFirstRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.token.cancel();
        let n = buf.len().min(self.left);
        self.left -= n;
        buf[..n].fill(7);
        Ok(n)
    }
}

#[test]
fn a_cancelled_store_leaves_nothing_behind() {
    let (_d, lib) = lib();
    let token = CancelToken::new();
    let ctx = JobCtx::new(token.clone(), |_| {});
    let mut src = CancelAfterFirstRead {
        token,
        left: 10 << 20,
    };
    let err = lib.store(&mut src, 10 << 20, &ctx).expect_err("cancelled");
    assert!(matches!(err, LibraryError::Cancelled(_)), "{err}");
    assert!(lib.store.temp_files().expect("temp").is_empty());
    assert!(lib.store.list().expect("files").is_empty());
}

#[test]
fn clean_up_leaves_a_writers_temp_file_alone_between_its_creation_and_its_lock() {
    let (dir, lib) = lib();
    let tmp = dir.path().join("tmp");
    // The instant the CI once caught with eight processes: a temp file created, not yet locked,
    // by a process that is still running (here: this one).
    let live = tmp.join(format!("0190-young.{}.new", lib.owner()));
    fs::write(&live, b"").expect("live");
    // The same instant in a process SIGKILLed there (seen in a loaded CI run): its owner lock
    // is gone, so the file is dead however young it is.
    let killed = tmp.join("0190-killed.4242-0190deadbeef.new");
    fs::write(&killed, b"").expect("killed");
    // A name without an owner is spared for a minute, then taken for a crashed writer's.
    let young = tmp.join("0190-young.new");
    fs::write(&young, b"").expect("young");
    let stale = tmp.join("0190-stale.new");
    fs::write(&stale, b"").expect("stale");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(old))
        .expect("age");
    let done = lib.clean_up().expect("clean");
    assert_eq!(done.temp_files_removed, 2);
    assert!(
        live.exists(),
        "a live writer's unlocked temp file was removed"
    );
    assert!(!killed.exists(), "a killed writer's temp file survived");
    assert!(
        young.exists(),
        "a young unlocked temp file may be a writer's"
    );
    assert!(!stale.exists(), "an hour-old one is a crashed writer's");
    // And a store leaves no temp file of either kind behind.
    for f in [&live, &young] {
        fs::remove_file(f).expect("rm");
    }
    lib.store(&mut Cursor::new(b"bytes".to_vec()), 5, &JobCtx::detached())
        .expect("store");
    assert!(lib.store.temp_files().expect("temp").is_empty());
}

#[test]
fn clean_up_removes_leftovers_but_not_a_live_writers_file() {
    let (dir, lib) = lib();
    // What a killed writer leaves: an unlocked part file and an unreferenced stored file.
    fs::write(dir.path().join("tmp").join("dead.part"), b"half").expect("part");
    let orphan = lib
        .store(&mut Cursor::new(b"orphan".to_vec()), 6, &JobCtx::detached())
        .expect("store");
    let orphan_sha = orphan.sha256.clone();
    drop(orphan);
    // A live writer between rename and commit.
    let live = lib
        .store(&mut Cursor::new(b"live".to_vec()), 4, &JobCtx::detached())
        .expect("store");
    let done = lib.clean_up().expect("clean");
    assert_eq!(
        done,
        CleanUp {
            temp_files_removed: 1,
            orphan_files_removed: 1
        }
    );
    assert!(!lib.file_path(&orphan_sha).exists());
    assert!(lib.file_path(&live.sha256).exists());
    // Storing the same bytes again reuses the live file and keeps it alive.
    drop(live);
}

#[test]
fn a_garbage_database_is_reported_and_repair_keeps_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shas: Vec<String> = {
        let lib = Library::open(dir.path()).expect("open");
        let a = add_bytes(&lib, "a", b"\x89PNG\r\n\x1a\nfirst");
        let b = add_bytes(&lib, "b", b"GIF89a second");
        vec![
            lib.asset(&a).expect("a").files[0].sha256.clone(),
            lib.asset(&b).expect("b").files[0].sha256.clone(),
        ]
    };
    let db = dir.path().join(DB_FILE);
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
    fs::write(&db, vec![0x5au8; 8192]).expect("clobber");

    let err = Library::open(dir.path()).expect_err("must refuse");
    match &err {
        LibraryError::Corrupt { path, .. } => assert_eq!(path, &db),
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(err.to_string().contains("library check --repair"), "{err}");
    // Refusing must not have touched the files.
    for sha in &shas {
        assert!(dir.path().join("files").join(&sha[..2]).join(sha).exists());
    }

    let (lib, report) = Library::repair(dir.path()).expect("repair");
    let aside = report.moved_aside.clone().expect("moved aside");
    assert_eq!(fs::read(&aside).expect("aside kept"), vec![0x5au8; 8192]);
    assert_eq!(report.recovered_assets, 2);
    let mut kinds: Vec<AssetKind> = lib
        .list_assets()
        .expect("list")
        .iter()
        .map(|a| a.kind)
        .collect();
    kinds.sort_by_key(|k| k.as_str());
    assert_eq!(kinds, vec![AssetKind::Animation, AssetKind::Image]);
    assert!(lib.check(true).expect("check").is_healthy());
}

#[test]
fn repair_copies_the_rows_that_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let lib = Library::open(dir.path()).expect("open");
        for i in 0..40 {
            add_bytes(
                &lib,
                &format!("sprite-{i:02}"),
                format!("bytes {i}").as_bytes(),
            );
        }
        // Checkpoint so every row is in the main file, then close.
        lib.conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
    }
    let db = dir.path().join(DB_FILE);
    let mut bytes = fs::read(&db).expect("read db");
    // Damage the last page (part of some table or index), keep the header intact.
    let len = bytes.len();
    bytes[len - 4096..].fill(0xff);
    fs::write(&db, &bytes).expect("write db");
    let _ = fs::remove_file(format!("{}-wal", db.display()));

    let (lib, report) = Library::repair(dir.path()).expect("repair");
    let assets = lib.list_assets().expect("list");
    // Every file comes back: as its original asset where its rows read, recovered otherwise.
    assert_eq!(assets.len(), 40, "{report:?}");
    assert!(lib.check(true).expect("check").is_healthy());
    let named = assets
        .iter()
        .filter(|a| a.name.starts_with("sprite-"))
        .count();
    assert_eq!(named + report.recovered_assets, 40);
}

#[test]
fn check_finds_missing_and_damaged_files_and_repair_quarantines() {
    let (_d, lib) = lib();
    let a = add_bytes(&lib, "a", b"aaaa");
    let b = add_bytes(&lib, "b", b"bbbb");
    let c = add_bytes(&lib, "c", b"cccc");
    let sha_a = lib.asset(&a).expect("a").files[0].sha256.clone();
    let sha_b = lib.asset(&b).expect("b").files[0].sha256.clone();
    fs::remove_file(lib.file_path(&sha_a)).expect("rm");
    fs::write(lib.file_path(&sha_b), b"bbbbb").expect("grow");
    let report = lib.check(false).expect("check");
    assert_eq!(report.missing_files, vec![sha_a.clone()]);
    assert_eq!(report.damaged_files, vec![sha_b.clone()]);
    assert!(!report.is_healthy());
    let dir = lib.data_dir().to_path_buf();
    drop(lib);
    let (lib, repair) = Library::repair(&dir).expect("repair");
    assert_eq!(
        repair.quarantined,
        vec![dir.join("quarantine").join(&sha_b)]
    );
    let mut dropped = repair.assets_dropped.clone();
    dropped.sort();
    let mut expected = vec![a.0.clone(), b.0.clone()];
    expected.sort();
    assert_eq!(dropped, expected);
    let left: Vec<AssetId> = lib
        .list_assets()
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, vec![c]);
    assert!(lib.check(true).expect("check").is_healthy());
}

#[test]
fn deep_check_notices_changed_content_of_the_same_size() {
    let (_d, lib) = lib();
    let a = add_bytes(&lib, "a", b"aaaa");
    let sha = lib.asset(&a).expect("a").files[0].sha256.clone();
    fs::write(lib.file_path(&sha), b"aaab").expect("flip");
    assert!(lib.check(false).expect("shallow").is_healthy());
    assert_eq!(lib.check(true).expect("deep").damaged_files, vec![sha]);
}

#[test]
fn jobs_are_queued_claimed_and_cancelled() {
    let (_d, lib) = lib();
    let spec = JobSpec::Import {
        paths: vec!["/x.png".into()],
        kind: None,
    };
    let queued = lib.insert_job(&spec).expect("insert");
    assert_eq!(queued.state, JobState::Queued);
    assert_eq!(
        lib.request_cancel(&queued.id).expect("cancel"),
        JobState::Cancelled
    );
    assert!(
        !lib.claim_job(&queued.id).expect("claim"),
        "a cancelled job ran"
    );

    let job = lib.insert_job(&spec).expect("insert");
    assert!(lib.claim_job(&job.id).expect("claim"));
    assert!(!lib.claim_job(&job.id).expect("claim twice"));
    let stored = lib.job(&job.id).expect("job");
    assert_eq!(stored.owner.as_deref(), Some(lib.owner()));
    assert!(lib.owner_alive(lib.owner()));
    lib.set_job_progress(
        &job.id,
        &mintframe_types::Progress {
            stage: "store".into(),
            step: 3,
            total: 10,
        },
    )
    .expect("progress");
    assert_eq!(
        lib.request_cancel(&job.id).expect("cancel"),
        JobState::Running
    );
    let stored = lib.job(&job.id).expect("job");
    assert!(stored.cancel_requested);
    assert_eq!(stored.record.progress.expect("progress").step, 3);
    lib.finish_job(&job.id, JobState::Cancelled, Some("cancelled by user"))
        .expect("finish");
    assert_eq!(lib.jobs(true).expect("unfinished").len(), 0);
    assert_eq!(lib.jobs(false).expect("all").len(), 2);
}

#[test]
fn an_owner_lock_outlives_nothing_but_its_library() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Library::open(dir.path()).expect("a");
    let b = Library::open(dir.path()).expect("b");
    let a_owner = a.owner().to_owned();
    assert!(b.owner_alive(&a_owner));
    drop(a);
    assert!(!b.owner_alive(&a_owner));
    assert!(!b.owner_alive("../../etc/passwd"));
}

/// A CI run once saw a running publish re-queued: another process's sweep removed the new
/// owner's lock file between its creation and its lock. Many owners opening at once must all
/// stay visible as alive to each other.
#[test]
fn owners_opening_at_once_never_sweep_each_other_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    Library::open(dir.path()).expect("schema");
    for _round in 0..20 {
        let libs: Vec<Library> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| Library::open(dir.path()).expect("open")))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for a in &libs {
            for b in &libs {
                assert!(
                    b.owner_alive(a.owner()),
                    "{} lost its lock to a sweep",
                    a.owner()
                );
            }
        }
    }
}

#[test]
fn libraries_opened_at_once_by_many_processes_migrate_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || Library::open(&p).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("open");
    }
    let lib = Library::open(&path).expect("open");
    let v = schema::version(&lib.conn()).expect("version");
    assert_eq!(v, schema::CURRENT);
}

/// Two files of one asset with the same bytes (two identical frames): the second store shares
/// the first one's lock instead of waiting for a commit that cannot come before it.
#[test]
fn one_asset_can_hold_the_same_bytes_twice() {
    let (_dir, lib) = lib();
    let lib = std::sync::Arc::new(lib);
    let (tx, rx) = std::sync::mpsc::channel();
    let l = std::sync::Arc::clone(&lib);
    std::thread::spawn(move || {
        let put = |b: &[u8]| {
            l.store(
                &mut Cursor::new(b.to_vec()),
                b.len() as u64,
                &JobCtx::detached(),
            )
            .expect("store")
        };
        let files = ["a", "b"]
            .iter()
            .map(|n| NewFile {
                role: format!("frame-{n}"),
                file_name: format!("{n}.png"),
                mime: "image/png".into(),
                stored: put(b"same frame"),
            })
            .collect();
        let id = l.add_asset(NewAsset {
            kind: AssetKind::Image,
            name: "twins".into(),
            recipe: None,
            job: None,
            files,
        });
        let _ = tx.send(id.map(|_| ()).map_err(|e| e.to_string()));
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the second store of the same bytes did not wait forever");
    r.expect("added");
    let all = lib.list_assets().expect("list");
    assert_eq!(all.len(), 1);
    // The lock is gone after the commit: a third copy stores at once.
    let stored = lib
        .store(
            &mut Cursor::new(b"same frame".to_vec()),
            10,
            &JobCtx::detached(),
        )
        .expect("third");
    assert_eq!(stored.sha256.len(), 64);
}

#[test]
fn a_jobs_outputs_keep_their_order_and_an_asset_for_a_missing_job_is_not_added() {
    let (_d, lib) = lib();
    let job = lib
        .insert_job(&JobSpec::Import {
            paths: vec!["/a.png".into(), "/b.png".into(), "/c.png".into()],
            kind: None,
        })
        .expect("insert");
    let add = |name: &str, job: JobId| add_for_job(&lib, name, name.as_bytes(), Some(job));
    let made: Vec<AssetId> = ["a", "b", "c"]
        .iter()
        .map(|n| add(n, job.id.clone()).expect("add"))
        .collect();
    assert_eq!(lib.job(&job.id).expect("job").record.outputs, made);
    let e = add("d", JobId("no-such-job".into())).expect_err("missing job");
    assert!(matches!(e, LibraryError::JobNotFound(_)), "{e}");
    assert_eq!(
        lib.list_assets().expect("list").len(),
        3,
        "the asset of a missing job was kept"
    );
}

#[test]
fn a_library_from_before_output_rows_keeps_each_jobs_outputs_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // A library as schema 3 left it: the outputs one JSON array in the job's row.
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("db");
        for sql in &schema::MIGRATIONS[..3] {
            conn.execute_batch(sql).expect("migrate");
        }
        conn.pragma_update(None, "user_version", 3)
            .expect("version");
        let spec = serde_json::to_string(&JobSpec::Import {
            paths: vec!["/b.png".into(), "/a.png".into(), "/c.png".into()],
            kind: None,
        })
        .expect("spec");
        for (id, outputs) in [("j1", r#"["b","a","c"]"#), ("j2", "[]")] {
            conn.execute(
                "INSERT INTO jobs(id, spec, state, outputs, created_ms, updated_ms) \
                 VALUES (?1, ?2, 'succeeded', ?3, 1, 1)",
                params![id, spec, outputs],
            )
            .expect("job");
        }
    }
    let lib = Library::open(dir.path()).expect("open");
    let ids = |v: &[&str]| v.iter().map(|s| AssetId((*s).into())).collect::<Vec<_>>();
    let j1 = JobId("j1".into());
    assert_eq!(
        lib.job(&j1).expect("j1").record.outputs,
        ids(&["b", "a", "c"])
    );
    assert!(
        lib.job(&JobId("j2".into()))
            .expect("j2")
            .record
            .outputs
            .is_empty()
    );
    // The next output goes after the migrated ones.
    let d = add_for_job(&lib, "d", b"d", Some(j1.clone())).expect("add");
    let mut want = ids(&["b", "a", "c"]);
    want.push(d);
    assert_eq!(lib.job(&j1).expect("j1").record.outputs, want);
}
