//! The render farm with the real `nats-server` on loopback (TLS, nkeys) and real worker
//! processes drawing with the tiny model.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mintframe_tests::{Guard, free_port_with, mintframe, run, stderr, stdout, wait_until};

pub(crate) struct Farm {
    root: PathBuf,
    pub(crate) coord: PathBuf,
    pub(crate) url: String,
}

impl Farm {
    /// `farm init` (three workers, TLS) and `farm start` in the coordinator's data folder.
    pub(crate) fn start(root: &Path) -> Farm {
        let coord = root.join("coord");
        let port = free_port_with(&[0]);
        let out = run(mintframe(&coord).args([
            "farm",
            "init",
            "--workers",
            "3",
            "--port",
            &port.to_string(),
        ]));
        assert!(out.status.success(), "{}", stderr(&out));
        let out = run(mintframe(&coord).args(["farm", "start"]));
        assert!(out.status.success(), "{}", stderr(&out));
        Farm {
            root: root.to_path_buf(),
            coord,
            url: format!("tls://127.0.0.1:{port}"),
        }
    }

    fn creds(&self, i: usize) -> PathBuf {
        self.coord.join("farm").join(format!("worker-{i}.creds"))
    }

    fn log(&self, i: usize) -> PathBuf {
        self.root.join(format!("worker-{i}.log"))
    }

    /// A worker process with its own, empty data folder.
    pub(crate) fn worker(&self, i: usize) -> Guard {
        let log = fs::File::create(self.log(i)).unwrap();
        Guard(
            mintframe(&self.root.join(format!("w{i}")))
                .args(["-v", "worker", "--creds"])
                .arg(self.creds(i))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        let _ = run(mintframe(&self.coord).args(["farm", "stop"]));
    }
}

fn spec(tokens: u32, model: &str, size: u32, steps: u32) -> String {
    format!(
        r#"name = "Slimes"
description = "Bouncy slimes"
tokens = {tokens}
seed = 11
prompt = "pixel art slime, {{color}} body, {{hat}}, {{eyes}} eyes"
model = "{model}"
steps = {steps}
width = {size}
height = {size}

[[traits]]
name = "Color"
values = [
  {{ value = "green", weight = 30 }}, {{ value = "blue", weight = 25 }}, {{ value = "red", weight = 20 }},
  {{ value = "purple", weight = 15 }}, {{ value = "gold", weight = 7 }}, {{ value = "rainbow", weight = 3 }},
]

[[traits]]
name = "Hat"
values = [
  {{ value = "no hat", weight = 40 }}, {{ value = "a cap", weight = 25 }}, {{ value = "a wizard hat", weight = 20 }},
  {{ value = "a helmet", weight = 10 }}, {{ value = "a crown", weight = 5 }},
]

[[traits]]
name = "Eyes"
values = [
  {{ value = "happy", weight = 30 }}, {{ value = "sleepy", weight = 25 }}, {{ value = "angry", weight = 20 }},
  {{ value = "sparkly", weight = 15 }}, {{ value = "one big", weight = 10 }},
]

[[exclude]]
traits = {{ Color = "rainbow", Hat = "no hat" }}

[[force]]
when = {{ Hat = "a crown" }}
then = {{ Eyes = "sparkly" }}

[[one_of_ones]]
name = "The Slime King"
traits = {{ Color = "gold", Hat = "a crown", Eyes = "one big" }}
prompt = "the slime king on a throne, pixel art"
"#
    )
}

fn make(data: &Path, spec: &Path, extra: &[&str]) -> serde_json::Value {
    let out = run(mintframe(data)
        .args(["collection", "make"])
        .arg(spec)
        .args(extra)
        .arg("--json"));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn images(report: &serde_json::Value) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(report["dir"].as_str().unwrap()).join("images");
    (0..report["tokens"].as_u64().unwrap())
        .map(|n| fs::read(dir.join(format!("{n}.png"))).unwrap())
        .collect()
}

#[test]
fn a_hundred_token_collection_drawn_by_three_workers_publishes_in_one_pass_as_one_machine_draws_it()
{
    let tmp = tempfile::tempdir().unwrap();
    let farm = Farm::start(tmp.path());
    let _workers: Vec<Guard> = (1..=3).map(|i| farm.worker(i)).collect();
    let spec_path = tmp.path().join("slimes.toml");
    fs::write(&spec_path, spec(100, "tiny-sd", 64, 2)).unwrap();
    let node = crate::ipfs::Node::start(&farm.coord);

    // One command: drawn on the farm, rarity and provenance written, published.
    let out = run(mintframe(&farm.coord)
        .env("MINTFRAME_IPFS_API", &node.api)
        .args(["collection", "make"])
        .arg(&spec_path)
        .args(["--farm", &farm.url, "--publish", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let farmed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(farmed["made"], 100);
    let by: Vec<(String, u64)> = farmed["made_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_u64().unwrap()))
        .collect();
    assert_eq!(by.len(), 3, "every worker drew some: {by:?}");
    assert_eq!(by.iter().map(|(_, n)| n).sum::<u64>(), 100);
    let published = &farmed["publish"];
    assert_eq!(published["status"], "published");
    assert_eq!(
        published["verified_files"], 201,
        "100 images, 100 metadata, collection.json"
    );
    // Each token's own traits are in its metadata.
    let dir = PathBuf::from(farmed["dir"].as_str().unwrap());
    let tokens: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("tokens.json")).unwrap()).unwrap();
    let rarity: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("rarity.json")).unwrap()).unwrap();
    assert_eq!(rarity["tokens"], 100);
    assert_eq!(rarity["ranking"].as_array().unwrap().len(), 100);
    let page = fs::read_to_string(dir.join("rarity.html")).unwrap();
    assert!(page.contains("Tokens by rarity") && page.contains("images/99.png"));
    let cat = |path: &str| -> serde_json::Value {
        let body = ureq::post(&format!("{}/api/v0/cat?arg={path}", node.api))
            .send_empty()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    };
    let meta = cat(&format!(
        "{}/7",
        published["metadata_cid"].as_str().unwrap()
    ));
    let attrs = meta["attributes"].as_array().unwrap();
    for (k, v) in tokens[7]["traits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (&p[0], &p[1]))
    {
        assert!(
            attrs
                .iter()
                .any(|a| &a["trait_type"] == k && &a["value"] == v),
            "token 7's metadata lacks {k} = {v}: {attrs:?}"
        );
    }

    // The reveal plan: the provenance, and the placeholder every token shows until the reveal
    // (on the node).
    let reveal: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("reveal.json")).unwrap()).unwrap();
    assert_eq!(reveal["provenance"], farmed["provenance"]);
    assert_eq!(reveal["base_uri"], published["base_uri"]);
    let placeholder = cat(reveal["placeholder_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches("ipfs://"));
    assert_eq!(placeholder["name"], "Slimes (unrevealed)");

    // The same spec on one machine: the same images, byte for byte, the same provenance.
    let solo = make(&tmp.path().join("solo"), &spec_path, &[]);
    assert_eq!(solo["provenance"], farmed["provenance"]);
    assert_eq!(images(&solo), images(&farmed));
}

#[test]
fn a_worker_killed_mid_task_and_a_coordinator_restarted_mid_run_still_give_every_token_once() {
    let tmp = tempfile::tempdir().unwrap();
    let farm = Farm::start(tmp.path());
    // The model is the coordinator's own (imported): no worker has it.
    let out = run(mintframe(&farm.coord).args([
        "generate", "warm up", "--model", "tiny-sd", "--steps", "1", "--width", "64", "--height",
        "64",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let tiny = farm.coord.join("models").join("tiny-sd");
    for data in [&farm.coord, &tmp.path().join("solo")] {
        let out = run(mintframe(data)
            .args(["models", "import", "my-tiny"])
            .arg(&tiny));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let spec_path = tmp.path().join("slimes.toml");
    // Long enough per token (seconds) that a kill lands mid-task.
    fs::write(&spec_path, spec(8, "my-tiny", 256, 30)).unwrap();
    let mut workers: Vec<Guard> = (1..=3).map(|i| farm.worker(i)).collect();

    let coordinator = Guard(
        mintframe(&farm.coord)
            .args(["collection", "make"])
            .arg(&spec_path)
            .args(["--farm", &farm.url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Worker 1 is killed while it draws.
    let drawing = |i: usize| {
        fs::read_to_string(farm.log(i))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("drawing"))
            .filter_map(|l| l.rsplit('/').next().map(|n| n.trim().to_owned()))
            .collect::<Vec<_>>()
    };
    // Each worker, without the model, fetches it and checks its hashes before it draws.
    let fetched = |i: usize| {
        fs::read_to_string(farm.log(i))
            .unwrap_or_default()
            .contains("model fetched and checked")
    };
    wait_until(
        "worker 1 to fetch my-tiny and draw",
        Duration::from_secs(120),
        || fetched(1) && !drawing(1).is_empty(),
    );
    let held = drawing(1).last().cloned().unwrap();
    workers[0].0.kill().unwrap();
    workers[0].0.wait().unwrap();

    // The coordinator is killed once some tokens are in, then started again.
    let coll = farm.coord.join("collections");
    let made = || -> serde_json::Value {
        fs::read_dir(&coll)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| fs::read(e.unwrap().path().join("made.json")).ok())
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or(serde_json::json!({}))
    };
    wait_until("two tokens", Duration::from_secs(240), || {
        made().as_object().unwrap().len() >= 2
    });
    drop(coordinator);
    let again = make(&farm.coord, &spec_path, &["--farm", &farm.url]);
    assert_eq!(again["made"], 8);
    let made = made();
    let made = made.as_object().unwrap();
    assert_eq!(made.len(), 8);
    let assets: std::collections::HashSet<&str> = made
        .values()
        .map(|m| m["asset"].as_str().unwrap())
        .collect();
    assert_eq!(assets.len(), 8, "one asset per token");
    // The task worker 1 held when it died was drawn again by another.
    assert_ne!(made[&held]["by"], "worker-1", "token {held}");

    let solo = make(&tmp.path().join("solo"), &spec_path, &[]);
    assert_eq!(solo["provenance"], again["provenance"]);
    assert_eq!(images(&solo), images(&again));
}

#[test]
fn a_worker_with_a_wrong_credential_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let farm = Farm::start(tmp.path());
    // This farm's worker-1 credential with another farm's nkey: a real key, unknown here.
    let other = tmp.path().join("other");
    let out = run(mintframe(&other).args(["farm", "init", "--workers", "1", "--no-tls"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
    };
    let mut wrong = read(farm.creds(1));
    wrong["seed"] = read(other.join("farm").join("worker-1.creds"))["seed"].clone();
    // Written elsewhere, so its CA (relative: beside the credential) is named in full.
    wrong["ca"] = farm
        .coord
        .join("farm")
        .join("ca.pem")
        .display()
        .to_string()
        .into();
    let wrong_path = tmp.path().join("wrong.creds");
    fs::write(&wrong_path, serde_json::to_vec(&wrong).unwrap()).unwrap();
    let out = run(mintframe(&tmp.path().join("w"))
        .args(["worker", "--creds"])
        .arg(&wrong_path));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("refused the credential"), "{err}");
    // No CA for a tls:// farm, and a file that is no credential: each said.
    let out = run(mintframe(&tmp.path().join("w"))
        .args(["worker", "--creds"])
        .arg(farm.root.join("missing.creds")));
    assert!(!out.status.success());
    fs::write(tmp.path().join("bad.creds"), "{\"name\": \"x\"}").unwrap();
    let out = run(mintframe(&tmp.path().join("w"))
        .args(["worker", "--creds"])
        .arg(tmp.path().join("bad.creds")));
    assert!(
        stderr(&out).contains("not a farm credential"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_cancelled_collection_stops_the_workers_drawing_its_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let farm = Farm::start(tmp.path());
    let _workers: Vec<Guard> = (1..=2).map(|i| farm.worker(i)).collect();
    let spec_path = tmp.path().join("slimes.toml");
    // Slow tokens, so both workers are mid-task when the cancel comes.
    fs::write(&spec_path, spec(12, "tiny-sd", 256, 60)).unwrap();
    let coordinator = mintframe(&farm.coord)
        .args(["collection", "make"])
        .arg(&spec_path)
        .args(["--farm", &farm.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = |i: usize| fs::read_to_string(farm.log(i)).unwrap_or_default();
    wait_until("both workers to draw", Duration::from_secs(120), || {
        logs(1).contains("drawing") && logs(2).contains("drawing")
    });
    // Cancelled from another process, as `jobs cancel` does.
    let out = run(mintframe(&farm.coord).args(["jobs", "list", "--json"]));
    let jobs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["spec"]["type"] == "collection")
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .unwrap();
    let out = run(mintframe(&farm.coord).args(["jobs", "cancel", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
    let done = coordinator.wait_with_output().unwrap();
    assert!(!done.status.success());
    assert!(stderr(&done).contains("cancelled"), "{}", stderr(&done));
    wait_until(
        "the workers to drop their tasks",
        Duration::from_secs(30),
        || {
            logs(1).contains("cancelled by the coordinator")
                && logs(2).contains("cancelled by the coordinator")
        },
    );
    // Nothing of the run is left queued.
    let out = run(mintframe(&farm.coord).args(["farm", "status", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["queued"], 0, "{status}");
    assert_eq!(status["workers"].as_array().unwrap().len(), 2, "{status}");
}
