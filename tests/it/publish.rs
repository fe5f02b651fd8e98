//! `mintframe publish collection` against a real node: CIDs computed offline equal the node's,
//! every `ipfs://` link resolves with `cat`, a re-run resends nothing; and the faults a creator
//! meets — no node, a node that lies about CIDs, a node killed mid-upload, bad metadata.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::ipfs::Node;
use mintframe_tests::{Keyring, mintframe, noise, run, stderr, stdout};

pub(crate) fn cat(api: &str, path: &str) -> Vec<u8> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    agent
        .post(format!("{api}/api/v0/cat?arg={path}"))
        .send_empty()
        .unwrap_or_else(|e| panic!("cat {path}: {e}"))
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap()
}

fn strip_ipfs(uri: &str) -> &str {
    uri.strip_prefix("ipfs://").expect("an ipfs:// URI")
}

/// Two generated images and an imported GIF; returns their ids in that order.
pub(crate) fn three_assets(data: &Path, work: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for (prompt, seed) in [("red slime", "1"), ("blue slime", "2")] {
        let o = run(mintframe(data).args(["generate", prompt, "--seed", seed, "--steps", "1"]));
        assert!(o.status.success(), "{}", stderr(&o));
        ids.push(stdout(&o).trim().to_owned());
    }
    // A 2-frame sheet played as a GIF, imported as an animated asset.
    let sheet = work.join("sheet.png");
    let mut px = Vec::new();
    for _ in 0..4 {
        px.extend([255, 0, 0, 255].repeat(4));
        px.extend([0, 0, 255, 255].repeat(4));
    }
    let mut enc = png::Encoder::new(std::fs::File::create(&sheet).unwrap(), 8, 4);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header().unwrap().write_image_data(&px).unwrap();
    let gif = work.join("blink.gif");
    let o = run(mintframe(data)
        .arg("render")
        .arg(&sheet)
        .args(["--frame", "4x4", "--gif", "-o"])
        .arg(&gif));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(mintframe(data).args(["library", "import"]).arg(&gif));
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).split_whitespace().last().unwrap().to_owned();
    ids.push(id);
    ids
}

/// `mintframe publish collection` of the test collection, not yet run.
fn publish_command(data: &Path, api: &str, ids: &[String]) -> std::process::Command {
    let mut c = mintframe(data);
    c.env("MINTFRAME_IPFS_API", api)
        .args(["publish", "collection"])
        .args(ids)
        .args(["--name", "Slimes", "--description", "Bouncy", "--json"])
        .args(["--trait", "Rarity=common"]);
    c
}

fn publish(data: &Path, api: &str, ids: &[String], extra: &[&str]) -> std::process::Output {
    run(publish_command(data, api, ids).args(extra))
}

#[test]
fn one_cli_call_publishes_a_three_token_collection_and_a_rerun_sends_nothing() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let node = Node::start(&data);
    let ids = three_assets(&data, work.path());

    let o = publish(&data, &node.api, &ids, &["--check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let planned: Value = serde_json::from_str(&stdout(&o)).unwrap();

    let o = publish(&data, &node.api, &ids, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    for k in ["media_cid", "metadata_cid", "base_uri", "token_uris"] {
        assert_eq!(
            r[k], planned[k],
            "{k}: the node's CIDs are the offline ones"
        );
    }
    let meta_cid = r["metadata_cid"].as_str().unwrap();
    let media_cid = r["media_cid"].as_str().unwrap();
    assert!(meta_cid.starts_with("Qm") && media_cid.starts_with("Qm"));
    assert_eq!(r["base_uri"], format!("ipfs://{meta_cid}/"));
    assert_eq!(r["uploaded_media"], true);
    assert_eq!(r["uploaded_metadata"], true);
    // 3 images + 1 GIF + 3 token files + collection.json, each read back.
    assert_eq!(r["verified_files"], 8);

    // Every link resolves on the node, and each file is what it says.
    let uris = r["token_uris"].as_array().unwrap();
    assert_eq!(uris.len(), 3);
    for (i, uri) in uris.iter().enumerate() {
        let uri = uri.as_str().unwrap();
        assert_eq!(uri, format!("ipfs://{meta_cid}/{i}"));
        let token: Value = serde_json::from_slice(&cat(&node.api, strip_ipfs(uri))).unwrap();
        assert_eq!(token["name"], format!("Slimes #{i}"));
        let image = token["image"].as_str().unwrap();
        assert_eq!(image, format!("ipfs://{media_cid}/{i}.png"));
        assert_eq!(
            &cat(&node.api, strip_ipfs(image))[..8],
            b"\x89PNG\r\n\x1a\n"
        );
        let traits: Vec<&str> = token["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["trait_type"].as_str().unwrap())
            .collect();
        assert!(traits.contains(&"Rarity"), "{token}");
        if i < 2 {
            assert!(
                traits.contains(&"Seed") && traits.contains(&"Model"),
                "{token}"
            );
            assert!(token.get("animation_url").is_none());
        } else {
            // The GIF: its first frame as the poster, the animation itself in animation_url.
            let anim = token["animation_url"].as_str().unwrap();
            assert_eq!(anim, format!("ipfs://{media_cid}/2.gif"));
            let bytes = cat(&node.api, strip_ipfs(anim));
            assert_eq!(&bytes[..6], b"GIF89a");
            assert_eq!(bytes, std::fs::read(work.path().join("blink.gif")).unwrap());
        }
    }
    let collection: Value = serde_json::from_slice(&cat(
        &node.api,
        strip_ipfs(r["contract_uri"].as_str().unwrap()),
    ))
    .unwrap();
    assert_eq!(collection["name"], "Slimes");

    // The CAR files name the same roots: a CARv1 header holds the root CID's bytes.
    for (car, cid) in [("media_car", media_cid), ("metadata_car", meta_cid)] {
        let bytes = std::fs::read(r[car].as_str().unwrap()).unwrap();
        assert!(bytes.len() > 100, "{car}");
        let o = run(mintframe(&data).args(["ipfs", "cid"]).arg(
            Path::new(r[car].as_str().unwrap())
                .parent()
                .unwrap()
                .join(if car == "media_car" {
                    "media"
                } else {
                    "metadata"
                }),
        ));
        assert_eq!(stdout(&o).trim(), cid, "{car}");
    }

    // Again: the same CIDs, nothing re-sent, one library record.
    let o = publish(&data, &node.api, &ids, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again["metadata_cid"], r["metadata_cid"]);
    assert_eq!(again["uploaded_media"], false);
    assert_eq!(again["uploaded_metadata"], false);
    let o = run(mintframe(&data).args(["publish", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["status"], "published");
    assert_eq!(list[0]["root_cid"], meta_cid);

    // CIDv1 and ERC-1155 naming on the same node.
    let o = publish(
        &data,
        &node.api,
        &ids,
        &["--cid-version", "1", "--standard", "erc1155"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v1: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cid = v1["metadata_cid"].as_str().unwrap();
    assert!(cid.starts_with("bafy"), "{cid}");
    assert_eq!(v1["base_uri"], format!("ipfs://{cid}/{{id}}.json"));
    let token: Value =
        serde_json::from_slice(&cat(&node.api, &format!("{cid}/{:064x}.json", 1))).unwrap();
    assert_eq!(token["name"], "Slimes #1");
}

#[test]
fn publish_refuses_bad_collections_before_touching_a_node() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let ids = three_assets(&data, work.path());
    // Nothing listens here.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let api = format!("http://127.0.0.1:{closed}");

    let o = publish(&data, &api, &ids, &["--trait", "Born:date=yesterday"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("\"yesterday\" must be a Unix timestamp"),
        "{}",
        stderr(&o)
    );
    let twice = [ids[0].clone(), ids[1].clone(), ids[0].clone()];
    let o = publish(&data, &api, &twice, &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("listed twice (tokens 0 and 2)"),
        "{}",
        stderr(&o)
    );

    // A name with folder parts stays a name: it reaches the JSON verbatim and no path.
    let o = run(mintframe(&data)
        .env("MINTFRAME_IPFS_API", &api)
        .args(["publish", "collection"])
        .args(&ids)
        .args(["--name", "../../escape/x", "--json", "--check"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let plan: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let car = std::path::PathBuf::from(plan["metadata_car"].as_str().unwrap());
    assert!(car.starts_with(data.join("publish")), "{}", car.display());
    assert!(!work.path().join("escape").exists() && !data.join("escape").exists());
    let staged = car.parent().unwrap().join("metadata/0");
    let token: Value = serde_json::from_slice(&std::fs::read(staged).unwrap()).unwrap();
    assert_eq!(token["name"], "../../escape/x #0");

    // Valid, but no node: says how to start one.
    let o = publish(&data, &api, &ids, &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("mintframe ipfs start"),
        "{}",
        stderr(&o)
    );
    let o = run(mintframe(&data).args(["publish", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the valid attempt is recorded"
    );
    assert_eq!(list[0]["status"], "failed");
}

/// Reads one HTTP/1.1 request (headers and a chunked or sized body) and returns its path.
fn read_request(r: &mut BufReader<std::net::TcpStream>) -> Option<String> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let (mut chunked, mut len) = (false, 0usize);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if h == "transfer-encoding: chunked" {
            chunked = true;
        }
        if let Some(v) = h.strip_prefix("content-length: ") {
            len = v.parse().ok()?;
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut buf = vec![0; n + 2];
            r.read_exact(&mut buf).ok()?;
            if n == 0 {
                break;
            }
        }
    } else {
        let mut buf = vec![0; len];
        r.read_exact(&mut buf).ok()?;
    }
    Some(path)
}

#[test]
fn a_node_that_answers_another_cid_gets_no_metadata() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let ids = three_assets(&data, work.path());
    // Injects what a real node cannot be made to do: answer `add` with a CID that is not the
    // content's. It speaks just enough of Kubo's RPC for a publish to reach that point.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { break };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            while let Some(path) = read_request(&mut r) {
                log.lock().unwrap().push(path.clone());
                let (status, body) = if path.starts_with("/api/v0/pin/ls") {
                    (
                        "500 Internal Server Error",
                        r#"{"Message":"path is not pinned","Code":0,"Type":"error"}"#.to_owned(),
                    )
                } else if path.starts_with("/api/v0/version") {
                    // A Kubo: it builds the same DAG for this folder, so the publish uses `add`.
                    (
                        "200 OK",
                        r#"{"Version":"0.38.0","Commit":"","Repo":"16","System":"amd64/linux","Golang":"go1.24"}"#.to_owned(),
                    )
                } else if path.starts_with("/api/v0/add") {
                    ("200 OK", "{\"Name\":\"media\",\"Hash\":\"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN\",\"Size\":\"6\"}\n".to_owned())
                } else {
                    ("404 Not Found", "{}".to_owned())
                };
                let _ = write!(
                    w,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    });
    let o = publish(&data, &api, &ids, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN")
            && err.contains("computed offline as"),
        "{err}"
    );
    let paths = seen.lock().unwrap().clone();
    let adds = paths
        .iter()
        .filter(|p| p.starts_with("/api/v0/add"))
        .count();
    assert_eq!(adds, 1, "the metadata folder must not be sent: {paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with("/api/v0/pin/add")),
        "{paths:?}"
    );
}

#[test]
fn a_node_killed_mid_upload_resumes_to_the_same_cids() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let node = Node::start(&data);
    let mut ids = three_assets(&data, work.path());
    // A large asset so the upload is still running when the node dies.
    let png = work.path().join("big.png");
    {
        // A valid PNG with 96 MiB of noise in an ancillary chunk, so it is large but readable.
        let mut enc = png::Encoder::new(std::fs::File::create(&png).unwrap(), 1, 1);
        enc.set_color(png::ColorType::Rgba);
        let mut w = enc.write_header().unwrap();
        w.write_chunk(png::chunk::ChunkType(*b"zzZz"), &noise(96 << 20, 12))
            .unwrap();
        w.write_image_data(&[1, 2, 3, 255]).unwrap();
    }
    let o = run(mintframe(&data).args(["library", "import"]).arg(&png));
    assert!(o.status.success(), "{}", stderr(&o));
    ids.push(stdout(&o).split_whitespace().last().unwrap().to_owned());

    let o = publish(&data, &node.api, &ids, &["--check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let planned: Value = serde_json::from_str(&stdout(&o)).unwrap();

    let child = publish_command(&data, &node.api, &ids)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let o = run(mintframe(&data)
        .env("MINTFRAME_IPFS_API", &node.api)
        .args(["ipfs", "stop"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let first = child.wait_with_output().unwrap();
    assert!(
        !first.status.success(),
        "the upload finished before the node was stopped; make the file bigger"
    );

    let o = run(mintframe(&data)
        .env("MINTFRAME_IPFS_API", &node.api)
        .args(["ipfs", "start"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = publish(&data, &node.api, &ids, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["media_cid"], planned["media_cid"]);
    assert_eq!(r["metadata_cid"], planned["metadata_cid"]);
    assert_eq!(r["verified_files"], 10);
    let o = run(mintframe(&data).args(["publish", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["status"], "published");
}

/// The IPFS project's server for the Pinning Service API OpenAPI spec
/// (`mock-ipfs-pinning-service`, installed by scripts/setup): no real provider installs here.
/// It derives a pin's status from its name: `pinned-…` pinned, `failed-…` failed, else queued.
pub(crate) struct PinningService {
    _server: mintframe_tests::Guard,
    pub(crate) url: String,
}

impl PinningService {
    pub(crate) fn start(token: &str) -> PinningService {
        let port = mintframe_tests::free_port_with(&[]);
        let cli = mintframe_tests::workspace_root()
            .join("tests/pinning-service/node_modules/mock-ipfs-pinning-service/cli.js");
        assert!(
            cli.is_file(),
            "run scripts/setup: {} is missing",
            cli.display()
        );
        let child = std::process::Command::new("node")
            .arg(cli)
            .args([
                "--port",
                &port.to_string(),
                "--token",
                token,
                "--loglevel",
                "error",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = mintframe_tests::Guard(child);
        mintframe_tests::wait_until("pinning service", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        PinningService {
            _server: server,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

fn add_service(keyring: &Keyring, data: &Path, name: &str, url: &str, token: &str) {
    let mut child = keyring
        .apply(&mut mintframe(data))
        .args(["publish", "service", "add", name, url, "--token-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

fn mf(keyring: &Keyring, data: &Path) -> std::process::Command {
    let mut c = mintframe(data);
    keyring.apply(&mut c);
    c
}

#[test]
fn a_pinning_service_keeps_both_roots_with_the_token_from_the_keyring() {
    let mut keyring = Keyring::start();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let node = Node::start(&data);
    let ids = three_assets(&data, work.path());
    // A token no other test run shares, so keyring entries never collide.
    let token = format!("tok-{}-{}", std::process::id(), noise(4, 9)[0]);
    let svc = PinningService::start(&token);
    let name = format!("mock{}", std::process::id());
    add_service(&keyring, &data, &name, &svc.url, &token);

    // The token is in the OS keyring, not in any file of ours.
    let mut stack = vec![data.clone()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "the token is written in {}",
                p.display()
            );
        }
    }
    let o = run(mf(&keyring, &data).args(["publish", "service", "list"]));
    assert!(stdout(&o).contains("token found"), "{}", stdout(&o));

    // A reboot, as far as the token can tell: the keyring daemon and its session bus stop and
    // start again on the same keyring files. The token is still there.
    keyring.restart();
    let o = run(mf(&keyring, &data).args(["publish", "service", "list"]));
    assert!(stdout(&o).contains("token found"), "{}", stdout(&o));

    let o = run(mf(&keyring, &data)
        .env("MINTFRAME_IPFS_API", &node.api)
        .args(["publish", "collection"])
        .args(&ids)
        .args(["--name", "pinned-Slimes", "--json", "--pin-to", &name]));
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let pins = r["remote_pins"].as_array().unwrap();
    assert_eq!(pins.len(), 2, "{r}");
    assert_eq!(pins[0]["cid"], r["media_cid"]);
    assert_eq!(pins[1]["cid"], r["metadata_cid"]);
    assert!(pins.iter().all(|p| p["status"] == "pinned"), "{r}");

    // `publish status` asks again by request id.
    let o = run(mf(&keyring, &data).args(["publish", "status", "1", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again[1]["status"], "pinned");

    // A pin the service fails is an error, named.
    let o = run(mf(&keyring, &data)
        .env("MINTFRAME_IPFS_API", &node.api)
        .args(["publish", "collection"])
        .args(&ids)
        .args(["--name", "failed-Slimes", "--pin-to", &name]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("could not pin"), "{}", stderr(&o));

    // A refused token says how to replace it.
    let bad = format!("{name}bad");
    add_service(&keyring, &data, &bad, &svc.url, "wrong-token");
    let o = run(mf(&keyring, &data)
        .env("MINTFRAME_IPFS_API", &node.api)
        .args(["publish", "collection"])
        .args(&ids)
        .args(["--name", "pinned-Others", "--pin-to", &bad]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("token was refused"), "{}", stderr(&o));

    // The service forgets its pins when restarted: asking about one is a clear 404.
    drop(svc);
    let svc2 = PinningService::start(&token);
    add_service(&keyring, &data, &name, &svc2.url, &token);
    let o = run(mf(&keyring, &data).args(["publish", "status", "1"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("does not exist (HTTP 404)"),
        "{}",
        stderr(&o)
    );

    for n in [&name, &bad] {
        let o = run(mf(&keyring, &data).args(["publish", "service", "remove", n]));
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

/// Reads one request: method, path, content type and the (de-chunked) body.
fn read_full_request(
    r: &mut BufReader<std::net::TcpStream>,
) -> Option<(String, String, String, Vec<u8>)> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
    let (mut chunked, mut len, mut ctype) = (false, 0usize, String::new());
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if lower == "transfer-encoding: chunked" {
            chunked = true;
        } else if let Some(v) = lower.strip_prefix("content-length: ") {
            len = v.parse().ok()?;
        } else if lower.starts_with("content-type: ") {
            ctype = h["content-type: ".len()..].to_owned();
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut buf = vec![0; n + 2];
            r.read_exact(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
    } else {
        body.resize(len, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some((method, path, ctype, body))
}

/// No IPFS Cluster installs here (it is a Go program outside Debian, npm and PyPI), so this test
/// server follows Cluster's REST API (v1) for the calls Mintframe makes — `POST /add` and
/// `GET /pins/{cid}` — as a one-peer cluster whose peer is the real node: uploads go to the
/// node's `add` (pinned), and the peer reports `pinned` for what it added.
fn one_peer_cluster(node_api: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        let tracked = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
        for s in listener.incoming() {
            let Ok(s) = s else { break };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            while let Some((method, path, ctype, body)) = read_full_request(&mut r) {
                log.lock().unwrap().push(format!("{method} {path}"));
                let (status, reply) = if method == "POST" && path.starts_with("/add?") {
                    let v1 = path.contains("cid-version=1");
                    let url = format!(
                        "{node_api}/api/v0/add?pin=true&cid-version={}&raw-leaves={v1}{}",
                        u8::from(v1),
                        if v1 { "&cid-base=base32" } else { "" }
                    );
                    let text = ureq::post(&url)
                        .header("Content-Type", &ctype)
                        .send(&body[..])
                        .unwrap()
                        .body_mut()
                        .read_to_string()
                        .unwrap();
                    let mut out = String::new();
                    for l in text.lines().filter(|l| !l.trim().is_empty()) {
                        let v: Value = serde_json::from_str(l).unwrap();
                        let cid = v["Hash"].as_str().unwrap().to_owned();
                        tracked.lock().unwrap().insert(cid.clone());
                        out.push_str(
                            &serde_json::json!({"name": v["Name"], "cid": cid, "size": 0,
                                                "allocations": ["peer0"]})
                            .to_string(),
                        );
                        out.push('\n');
                    }
                    ("200 OK", out)
                } else if method == "GET" && path.starts_with("/pins/") {
                    let cid = &path["/pins/".len()..];
                    if tracked.lock().unwrap().contains(cid) {
                        (
                            "200 OK",
                            serde_json::json!({"cid": cid, "name": "", "peer_map": {
                                "peer0": {"peername": "node", "status": "pinned", "error": ""}}})
                            .to_string(),
                        )
                    } else {
                        (
                            "404 Not Found",
                            r#"{"code":404,"message":"cid is not part of the global state"}"#
                                .to_owned(),
                        )
                    }
                } else {
                    ("404 Not Found", "{}".to_owned())
                };
                let _ = write!(
                    w,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                    reply.len()
                );
            }
        }
    });
    (url, seen)
}

#[test]
fn the_same_publish_goes_through_an_ipfs_cluster() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let node = Node::start(&data);
    let ids = three_assets(&data, work.path());
    let (cluster, seen) = one_peer_cluster(node.api.clone());
    let args = [
        "--cluster",
        cluster.as_str(),
        "--replication-min",
        "1",
        "--replication-max",
        "2",
    ];

    let o = publish(&data, &node.api, &ids, &["--check"]);
    let planned: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let o = publish(&data, &node.api, &ids, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["metadata_cid"], planned["metadata_cid"]);
    assert_eq!(r["uploaded_media"], true);
    let pins = r["remote_pins"].as_array().unwrap();
    assert_eq!(pins.len(), 2);
    assert!(pins.iter().all(|p| p["status"] == "pinned"), "{r}");
    let adds: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with("POST /add"))
        .cloned()
        .collect();
    assert_eq!(adds.len(), 2, "{adds:?}");
    assert!(
        adds.iter()
            .all(|a| a.contains("replication-min=1") && a.contains("replication-max=2")),
        "{adds:?}"
    );
    // Through the cluster's peer, the links resolve.
    let uri = r["token_uris"][2].as_str().unwrap();
    let token: Value = serde_json::from_slice(&cat(&node.api, strip_ipfs(uri))).unwrap();
    assert_eq!(token["name"], "Slimes #2");

    // Again: the cluster holds both roots, nothing is re-sent.
    let o = publish(&data, &node.api, &ids, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again["uploaded_media"], false);
    assert_eq!(again["uploaded_metadata"], false);
    assert_eq!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with("POST /add"))
            .count(),
        2
    );
}

/// A publish is a job: `jobs list` shows it with its progress, `jobs cancel` from another
/// process stops it (and nothing is recorded as published), `jobs resume` finishes it with the
/// planned CIDs and re-sends nothing the node already holds.
#[test]
fn a_publish_is_a_job_that_another_process_cancels_and_resume_finishes() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let node = Node::start(&data);
    // Many tokens, so that reading every link back takes long enough to cancel in.
    let tokens = 300;
    let mut files = Vec::new();
    for i in 0..tokens {
        let f = work.path().join(format!("t{i}.png"));
        let mut enc = png::Encoder::new(std::fs::File::create(&f).unwrap(), 1, 1);
        enc.set_color(png::ColorType::Rgba);
        let px = [(i % 256) as u8, (i / 256) as u8, 7, 255];
        enc.write_header().unwrap().write_image_data(&px).unwrap();
        files.push(f);
    }
    let o = run(mintframe(&data).args(["library", "import"]).args(&files));
    assert!(o.status.success(), "{}", stderr(&o));
    let ids: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().last().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), tokens);
    let o = publish(&data, &node.api, &ids, &["--check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let planned: Value = serde_json::from_str(&stdout(&o)).unwrap();

    let child = publish_command(&data, &node.api, &ids)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let child = mintframe_tests::Guard(child);
    // Wait until both folders are on the node and the job reads them back.
    let mut job = Value::Null;
    mintframe_tests::wait_until(
        "the publish job to read back",
        Duration::from_secs(300),
        || {
            let o = run(mintframe(&data).args(["jobs", "list", "--json"]));
            let jobs: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
            let found = jobs
                .as_array()
                .and_then(|a| a.iter().find(|j| j["spec"]["type"] == "publish").cloned());
            match found {
                Some(j) => {
                    let reading = j["progress"]["stage"] == "read back";
                    job = j;
                    reading
                }
                None => false,
            }
        },
    );
    assert_eq!(job["state"], "running", "{job}");
    let id = job["id"].as_str().unwrap().to_owned();

    let asked_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let o = run(mintframe(&data).args(["jobs", "cancel", &id]));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut ended_ms = 0;
    mintframe_tests::wait_until("the job to stop", Duration::from_secs(10), || {
        let o = run(mintframe(&data).args(["jobs", "list", "--all", "--json"]));
        let jobs: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
        let cancelled = jobs.as_array().and_then(|a| {
            a.iter()
                .find(|j| j["id"] == id.as_str() && j["state"] == "cancelled")
                .cloned()
        });
        if let Some(j) = &cancelled {
            ended_ms = j["updated_at_ms"].as_i64().unwrap();
        }
        cancelled.is_some()
    });
    // When the row says it stopped, not when this test's polling noticed.
    let latency_ms = ended_ms - asked_ms;
    eprintln!("publish job stopped {latency_ms} ms after the cancel was asked");
    assert!(
        latency_ms < 1000,
        "the publish stopped {latency_ms} ms after the cancel"
    );
    let mut child = child;
    let first = child.0.wait().unwrap();
    assert!(!first.success(), "a cancelled publish reported success");
    let o = run(mintframe(&data).args(["publish", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "published"),
        "a cancelled publish was recorded as published: {list}"
    );

    let o = run(mintframe(&data)
        .env("MINTFRAME_IPFS_API", &node.api)
        .args(["jobs", "resume", &id]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("succeeded"), "{}", stdout(&o));
    let o = run(mintframe(&data).args(["publish", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["status"], "published");
    assert!(list[0]["key"].is_string(), "{list}");
    let detail: Value = serde_json::from_str(list[0]["detail"].as_str().unwrap()).unwrap();
    let outcome = &detail["outcome"];
    assert_eq!(outcome["media_cid"], planned["media_cid"]);
    assert_eq!(outcome["metadata_cid"], planned["metadata_cid"]);
    assert_eq!(
        outcome["uploaded_media"], false,
        "the media folder was sent again"
    );
    assert_eq!(
        outcome["uploaded_metadata"], false,
        "the metadata folder was sent again"
    );
    assert_eq!(outcome["verified_files"], 2 * tokens + 1);
}

#[test]
fn without_a_persistent_keyring_service_add_says_so_and_a_token_file_or_variable_works() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    // `mintframe()` points at a session bus nothing listens on: no Secret Service.
    let mut child = mintframe(&data)
        .args([
            "publish",
            "service",
            "add",
            "pin",
            "http://127.0.0.1:9/psa",
            "--token-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "secret-1").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("no persistent keyring") && err.contains("--token-file"),
        "{err}"
    );
    assert!(
        !data.join("pinning-services.json").exists(),
        "a service was saved without its token"
    );

    // A token file others can read is refused; one only its owner can read is used.
    use std::os::unix::fs::PermissionsExt;
    let file = work.path().join("pin.token");
    std::fs::write(&file, "secret-1\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let add = |f: &Path| {
        run(mintframe(&data)
            .args([
                "publish",
                "service",
                "add",
                "pin",
                "http://127.0.0.1:9/psa",
                "--token-file",
            ])
            .arg(f))
    };
    let o = add(&file);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = add(&file);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(mintframe(&data).args(["publish", "service", "list"]));
    assert!(stdout(&o).contains("token found"), "{}", stdout(&o));
    let saved = std::fs::read_to_string(data.join("pinning-services.json")).unwrap();
    assert!(
        !saved.contains("secret-1"),
        "the token itself was saved: {saved}"
    );

    // Gone from its file, the token is missing, and the error says how to store it again.
    std::fs::remove_file(&file).unwrap();
    let o = run(mintframe(&data).args(["publish", "service", "list"]));
    assert!(stdout(&o).contains("NO TOKEN"), "{}", stdout(&o));
    // The environment wins over everything, for CI and servers.
    let o = run(mintframe(&data)
        .env("MINTFRAME_TOKEN_PIN", "secret-2")
        .args(["publish", "service", "list"]));
    assert!(stdout(&o).contains("token found"), "{}", stdout(&o));
}
