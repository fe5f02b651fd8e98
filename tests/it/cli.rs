//! The `mintframe` command line as a user types it.

use std::fs;
use std::time::Duration;

use mintframe_tests::{Guard, mintframe, run, stderr, stdout, wait_until};

#[test]
fn import_list_show_export_remove_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let src = work.path().join("hero idle.png");
    fs::write(&src, mintframe_tests::noise_png(4, 4, 1)).unwrap();

    let out = run(mintframe(&data).args(["library", "list"]));
    assert!(
        stdout(&out).contains("The library is empty"),
        "{}",
        stdout(&out)
    );

    let out = run(mintframe(&data).args(["library", "import"]).arg(&src));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out)
        .trim()
        .strip_prefix("imported ")
        .unwrap()
        .to_owned();

    let out = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["name"], "hero idle");
    assert_eq!(list[0]["kind"], "image");

    let out = run(mintframe(&data).args(["library", "show", &id[..8]]));
    assert!(stdout(&out).contains("hero idle.png"), "{}", stdout(&out));
    assert!(stdout(&out).contains("recipe   none (imported)"));

    let dest = work.path().join("out");
    let out = run(mintframe(&data).args(["library", "export", &id]).arg(&dest));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(dest.join("hero idle.png")).unwrap(),
        fs::read(&src).unwrap()
    );

    let out = run(mintframe(&data).args(["library", "remove", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(mintframe(&data).args(["library", "show", &id]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no asset"), "{}", stderr(&out));
}

#[test]
fn a_missing_input_file_is_named() {
    let work = tempfile::tempdir().unwrap();
    let out =
        run(mintframe(&work.path().join("d")).args(["library", "import", "/no/such/sprite.png"]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/no/such/sprite.png"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn doctor_reports_every_component_and_what_is_missing() {
    let work = tempfile::tempdir().unwrap();
    let out = run(mintframe(&work.path().join("d")).args(["doctor", "--json"]));
    // The test's IPFS address points at a closed port, so the doctor must say so (exit 2).
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let status = |c: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["component"] == c)
            .unwrap_or_else(|| panic!("no {c} check"))
            .clone()
    };
    assert_eq!(status("cpu")["status"], "ok");
    // Mesa's lavapipe is installed by the set-up, so wgpu finds an adapter even with no GPU.
    assert_eq!(status("gpu")["status"], "ok", "{}", status("gpu"));
    let ffmpeg = status("ffmpeg");
    assert_eq!(ffmpeg["status"], "ok", "{ffmpeg}");
    // The encoders the code calls (`mintframe encode`'s formats), and nothing nothing uses.
    assert!(!ffmpeg.to_string().contains("encoder libx265"), "{ffmpeg}");
    for enc in ["libx264", "libvpx-vp9", "apng", "libwebp_anim"] {
        assert!(
            ffmpeg
                .to_string()
                .contains(&format!("encoder {enc}\",\"value\":\"found")),
            "{enc}: {ffmpeg}"
        );
    }
    let ipfs = status("ipfs");
    assert_eq!(ipfs["status"], "missing");
    assert!(
        ipfs["summary"]
            .as_str()
            .unwrap()
            .contains("mintframe ipfs start")
    );
    assert_eq!(status("data")["status"], "ok");

    let out = run(mintframe(&work.path().join("d")).arg("doctor"));
    let text = stdout(&out);
    assert!(text.contains("[MISS] ipfs"), "{text}");
    assert!(text.contains("[ok  ] ffmpeg"), "{text}");
}

#[test]
fn render_finds_a_headless_adapter() {
    let found = mintframe_render::adapters();
    let adapter = found
        .preferred
        .expect("no wgpu adapter: is mesa-vulkan-drivers installed?");
    assert!(!adapter.name.is_empty());
    assert!(!found.all.is_empty());
}

#[test]
fn a_job_is_cancelled_from_another_process() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // Enough real PNGs that the import is still going when the cancel lands: each is decoded,
    // hashed, copied and synced. (120 were once not enough: on a loaded CI machine the import
    // ended between the poll that saw it running and the cancel.)
    let inputs: Vec<_> = (0..360u64)
        .map(|i| {
            let p = work.path().join(format!("f{i:03}.png"));
            fs::write(&p, mintframe_tests::noise_png(512, 256, i + 1)).unwrap();
            p
        })
        .collect();
    let importer = Guard(
        mintframe(&data)
            .args(["library", "import"])
            .args(&inputs)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut job_id = String::new();
    wait_until("the import job to run", Duration::from_secs(30), || {
        let out = run(mintframe(&data).args(["jobs", "list", "--json"]));
        let jobs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        match jobs.first() {
            Some(j)
                if j["state"] == "running" && j["progress"]["step"].as_u64().unwrap_or(0) > 0 =>
            {
                job_id = j["id"].as_str().unwrap().to_owned();
                true
            }
            _ => false,
        }
    });
    let out = run(mintframe(&data).args(["jobs", "cancel", &job_id]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("cancel requested"),
        "{}",
        stdout(&out)
    );

    let mut importer = importer;
    let status = importer.0.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(importer.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("was cancelled"), "{err}");

    let out = run(mintframe(&data).args(["jobs", "list", "--all", "--json"]));
    let jobs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(jobs[0]["state"], "cancelled");
    // What was imported before the cancel stays, each file once; nothing after it.
    let outputs = jobs[0]["outputs"].as_array().unwrap().len();
    assert!((1..inputs.len()).contains(&outputs), "{}", jobs[0]);
    let out = run(mintframe(&data).args(["library", "list", "--json"]));
    let assets: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        assets.len(),
        outputs,
        "a cancelled import left an asset it does not list"
    );
    assert_eq!(
        fs::read_dir(data.join("tmp")).unwrap().count(),
        0,
        "a cancelled import left a temp file"
    );
}
