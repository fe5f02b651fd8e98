//! Arweave with a real local gateway: `arlocal` (npm), started here on loopback with its own
//! database, its mint and mine endpoints. Collections go up through the CLI as a user runs it;
//! every path is read back through the gateway and compared with our bytes, and arweave-js and
//! arbundles verify what we signed.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mintframe_tests::{
    Guard, Keyring, free_port_with, mintframe, noise_png, run, stderr, stdout, wait_until,
    workspace_root,
};

/// A local Arweave gateway, killed when dropped.
pub(crate) struct Arlocal {
    _dir: tempfile::TempDir,
    _guard: Guard,
    pub(crate) url: String,
}

impl Arlocal {
    pub(crate) fn start() -> Arlocal {
        let bin =
            workspace_root().join("scripts/arlocal-gateway/node_modules/arlocal/bin/index.js");
        assert!(bin.is_file(), "arlocal is not installed: run scripts/setup");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port_with(&[0]);
        // Its own working folder: arlocal keeps its database and log there.
        let child = Command::new("node")
            .arg(&bin)
            .arg(port.to_string())
            .args(["--dbpath=db", "--hidelogs"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let info = format!("{url}/info");
        wait_until("arlocal", Duration::from_secs(30), || {
            ureq::get(&info).call().is_ok()
        });
        Arlocal {
            _dir: dir,
            _guard: Guard(child),
            url,
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<Vec<u8>> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent.get(format!("{}/{path}", self.url)).call().unwrap();
        if resp.status() != 200 {
            return None;
        }
        Some(
            resp.body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_vec()
                .unwrap(),
        )
    }
}

/// What the stand-in between the CLI and arlocal does with a chunk or a path. Only here because
/// a real gateway cannot be told to refuse one given chunk or to stop answering; everything it
/// does not intercept goes to arlocal and back unchanged.
#[derive(Debug, Default)]
struct ProxyState {
    /// Offsets of the chunks arlocal acknowledged through this proxy, in order.
    acked: Vec<u64>,
    /// Distinct chunk offsets in the order they first arrived.
    seen: Vec<u64>,
    /// Every chunk request's offset, repeats included.
    posts: Vec<u64>,
    posted_tx: usize,
    /// Answer HTTP 500 to every try of the n-th distinct chunk.
    fail_nth: Option<usize>,
    /// Never answer the n-th distinct chunk (the test kills the uploader meanwhile).
    hold_nth: Option<usize>,
    held: bool,
    /// Never answer requests whose path starts with this.
    stall: Option<&'static str>,
    /// Say the gateway is on the real network (arlocal's `/info` names it `arlocal.N.1`), so
    /// the uploader behaves as it would there: header first, no mining, no waiting for a block.
    real_network: bool,
}

struct Proxy {
    url: String,
    state: Arc<Mutex<ProxyState>>,
}

impl Proxy {
    fn start(upstream: &str, state: ProxyState) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let state = Arc::new(Mutex::new(state));
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = Arc::clone(&st);
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, &st);
                });
            }
        });
        Proxy { url, state }
    }

    fn state<T>(&self, f: impl FnOnce(&ProxyState) -> T) -> T {
        f(&self.state.lock().unwrap())
    }
}

fn serve(conn: TcpStream, upstream: &str, st: &Mutex<ProxyState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let len: usize = head
        .iter()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let path = head[0].split(' ').nth(1).unwrap_or_default().to_owned();
    let mut chunk_offset = None;
    {
        let mut s = st.lock().unwrap();
        if s.stall.is_some_and(|p| path.starts_with(p)) {
            drop(s);
            std::thread::sleep(Duration::from_secs(3600));
            return Ok(());
        }
        if head[0].starts_with("POST /tx") {
            s.posted_tx += 1;
        }
        if head[0].starts_with("POST /chunk") {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let offset: u64 = v["offset"].as_str().unwrap().parse().unwrap();
            if !s.seen.contains(&offset) {
                s.seen.push(offset);
            }
            s.posts.push(offset);
            let nth = s.seen.iter().position(|o| *o == offset).unwrap();
            if s.hold_nth == Some(nth) {
                s.held = true;
                drop(s);
                std::thread::sleep(Duration::from_secs(3600));
                return Ok(());
            }
            if s.fail_nth == Some(nth) {
                conn.write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 14\r\nConnection: close\r\n\r\nsimulated fail",
                )?;
                return Ok(());
            }
            chunk_offset = Some(offset);
        }
    }
    let mut up = TcpStream::connect(upstream)?;
    for l in &head {
        if l.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        if l == "\r\n" {
            up.write_all(b"Connection: close\r\n\r\n")?;
        } else {
            up.write_all(l.as_bytes())?;
        }
    }
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if path == "/info" && st.lock().unwrap().real_network {
        // The same length, so the answer's Content-Length still holds.
        let text = String::from_utf8_lossy(&answer).replace("arlocal.N.1", "arweave.N.1");
        answer = text.into_bytes();
    }
    conn.write_all(&answer)?;
    if let Some(o) = chunk_offset
        && answer.starts_with(b"HTTP/1.1 2")
    {
        st.lock().unwrap().acked.push(o);
    }
    Ok(())
}

/// A folder of `n` noise PNGs of `side`² pixels imported into a fresh library; their ids in
/// token order and the files they came from.
pub(crate) fn library_of(root: &Path, n: usize, side: u32) -> (PathBuf, Vec<String>, Vec<PathBuf>) {
    let data = root.join("data");
    let src = root.join("images");
    fs::create_dir_all(&src).unwrap();
    let mut files = Vec::new();
    for i in 0..n {
        let p = src.join(format!("{i:03}.png"));
        fs::write(&p, noise_png(side, side, 7000 + i as u64)).unwrap();
        files.push(p);
    }
    let out = run(mintframe(&data).args(["library", "import"]).args(&files));
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("imported "))
        .map(|s| s.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), n, "{}", stdout(&out));
    (data, ids, files)
}

/// The committed test wallet (it holds nothing on any network), as a file only we can read.
pub(crate) fn wallet(root: &Path) -> PathBuf {
    let p = root.join("wallet.json");
    fs::copy(
        workspace_root().join("crates/arweave/testdata/test-wallet.json"),
        &p,
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn ar_cmd(data: &Path, wallet: &Path) -> Command {
    let mut c = mintframe(data);
    c.env("MINTFRAME_ARWEAVE_WALLET", wallet);
    c
}

fn publish(data: &Path, wallet: &Path, gateway: &str, ids: &[String]) -> Command {
    let mut c = ar_cmd(data, wallet);
    c.args(["publish", "collection"]).args(ids).args([
        "--name",
        "Slimes",
        "--layout",
        "numbered-json",
        "--to",
        "arweave",
        "--gateway",
        gateway,
        "--json",
    ]);
    c
}

fn mint(data: &Path, wallet: &Path, gateway: &str, ar: &str) {
    let out = run(ar_cmd(data, wallet).args(["arweave", "mint", ar, "--gateway", gateway]));
    assert!(out.status.success(), "{}", stderr(&out));
}

fn balance(data: &Path, wallet: &Path, gateway: &str) -> u128 {
    let out = run(ar_cmd(data, wallet).args([
        "arweave",
        "wallet",
        "balance",
        "--gateway",
        gateway,
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["winston"].as_str().unwrap().parse().unwrap()
}

/// The staging folder of the (only) Arweave publish in `data`.
fn plan_dir(data: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = fs::read_dir(data.join("publish"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("arweave/plan.json").is_file())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn plan_json(data: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(plan_dir(data).join("arweave/plan.json")).unwrap()).unwrap()
}

/// The header the (only) gateway was sent.
fn tx_json(data: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = fs::read_dir(plan_dir(data).join("arweave"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("tx.json"))
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

fn report(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}\n{}", stdout(out), stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

#[test]
fn a_hundred_token_collection_publishes_to_arweave_in_one_pass_and_every_path_reads_back_through_the_gateway()
 {
    let root = tempfile::tempdir().unwrap();
    let gw = Arlocal::start();
    let (data, ids, files) = library_of(root.path(), 100, 24);
    let w = wallet(root.path());

    // Offline first: every id and link, with no gateway at all.
    let checked = report(&run(
        publish(&data, &w, "http://127.0.0.1:1", &ids).arg("--check")
    ));
    let base = checked["base_uri"].as_str().unwrap().to_owned();
    assert!(base.starts_with("ar://") && base.ends_with('/'), "{base}");

    mint(&data, &w, &gw.url, "100");
    let before = balance(&data, &w, &gw.url);
    let r = report(&run(&mut publish(&data, &w, &gw.url, &ids)));
    // The ids computed offline are the ones published.
    assert_eq!(r["base_uri"], checked["base_uri"]);
    assert_eq!(r["token_uris"], checked["token_uris"]);
    let ar = &r["arweave"];
    assert_eq!(ar["confirmed"], true);
    let plan = plan_json(&data);
    let distinct: BTreeSet<&str> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    // 100 images, 100 metadata files, collection.json, two manifests.
    assert_eq!(distinct.len(), 203);
    assert_eq!(ar["ids_checked"], 203);
    assert_eq!(ar["chunks_skipped"], 0);
    assert!(r["verified_files"].as_u64().unwrap() >= 203);
    // The wallet paid what /price said, no more.
    let paid: u128 = ar["price_winston"].as_str().unwrap().parse().unwrap();
    assert_eq!(before - balance(&data, &w, &gw.url), paid);

    // Read back here, independently: every ar://MANIFEST/N.json path through the gateway is
    // our metadata, and the image it names is the very file imported.
    let manifest = ar["metadata_manifest"].as_str().unwrap();
    let meta_dir = plan_dir(&data).join("metadata");
    for (i, src) in files.iter().enumerate() {
        let uri = r["token_uris"][i].as_str().unwrap();
        assert_eq!(uri, format!("ar://{manifest}/{i}.json"));
        let got = gw
            .get(&format!("{manifest}/{i}.json"))
            .expect("metadata path resolves");
        assert_eq!(
            got,
            fs::read(meta_dir.join(format!("{i}.json"))).unwrap(),
            "token {i}"
        );
        let meta: serde_json::Value = serde_json::from_slice(&got).unwrap();
        let image = meta["image"]
            .as_str()
            .unwrap()
            .strip_prefix("ar://")
            .unwrap();
        assert_eq!(
            gw.get(image).expect("image id resolves"),
            fs::read(src).unwrap(),
            "token {i}"
        );
    }
    let coll = gw.get(&format!("{manifest}/collection.json")).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&coll).unwrap()["name"],
        "Slimes"
    );

    // Parsers we did not write verify the transaction and every data item we signed.
    let out = Command::new("node")
        .arg(workspace_root().join("tests/js/verify-arweave.cjs"))
        .arg(plan_dir(&data).join("arweave"))
        .arg(tx_json(&data))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["items"], 203);
    assert_eq!(v["items_valid"], 203);

    // Again: nothing is sent twice, and everything still reads back.
    let again = report(&run(&mut publish(&data, &w, &gw.url, &ids)));
    assert_eq!(again["arweave"]["chunks_sent"], 0);
    assert_eq!(again["arweave"]["chunks_skipped"], ar["chunks_total"]);
    assert_eq!(again["base_uri"], r["base_uri"]);
}

#[test]
fn an_upload_killed_mid_way_resumes_without_resending_a_chunk_the_gateway_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let gw = Arlocal::start();
    // 12 images of 256² noise: a bundle of about 3 MiB, a dozen chunks.
    let (data, ids, _) = library_of(root.path(), 12, 256);
    let w = wallet(root.path());
    mint(&data, &w, &gw.url, "100");

    let first = Proxy::start(
        &gw.url,
        ProxyState {
            hold_nth: Some(5),
            ..Default::default()
        },
    );
    let mut child = Guard(
        publish(&data, &w, &first.url, &ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the sixth chunk", Duration::from_secs(120), || {
        first.state(|s| s.held)
    });
    // Killed as a crash would kill it: no chance to write anything more.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let acked = first.state(|s| s.acked.clone());
    assert_eq!(acked.len(), 5, "{acked:?}");
    assert_eq!(first.state(|s| s.posted_tx), 0);

    // The same gateway, answering everything now (what one gateway acknowledged says nothing
    // about another, so the journal is kept per gateway).
    first.state.lock().unwrap().hold_nth = None;
    let posts_before = first.state(|s| s.posts.len());
    let r = report(&run(&mut publish(&data, &w, &first.url, &ids)));
    let ar = &r["arweave"];
    let total = ar["chunks_total"].as_u64().unwrap();
    assert!(total >= 10, "{total} chunks");
    let resent = first.state(|s| s.posts[posts_before..].to_vec());
    assert_eq!(resent.len() as u64, total - 5, "{resent:?}");
    for o in &acked {
        assert!(
            !resent.contains(o),
            "chunk at {o} was acknowledged and sent again"
        );
    }
    assert_eq!(ar["chunks_skipped"], 5);
    assert_eq!(ar["chunks_sent"].as_u64().unwrap(), total - 5);
    // On a local gateway the header goes after the chunks (arlocal unpacks a bundle once all
    // its chunks are there): sent once, by the run that finished.
    assert_eq!(first.state(|s| s.posted_tx), 1);
    assert_eq!(ar["confirmed"], true);
    assert_eq!(ar["ids_checked"], 12 * 2 + 3);
}

/// On a real network the header goes first and a transaction waits in the mempool for minutes:
/// a run killed mid-upload and run again must find its header pending there, pay nothing twice
/// and send only the chunks not yet acknowledged; a publish not yet in a block is `pending`,
/// and a later run, once it is mined, checks every file.
#[test]
fn on_a_real_network_a_resumed_upload_finds_its_pending_header_and_pays_once() {
    let root = tempfile::tempdir().unwrap();
    let gw = Arlocal::start();
    let (data, ids, _) = library_of(root.path(), 8, 256);
    let w = wallet(root.path());
    mint(&data, &w, &gw.url, "100");
    let before = balance(&data, &w, &gw.url);
    let net = Proxy::start(
        &gw.url,
        ProxyState {
            real_network: true,
            hold_nth: Some(3),
            ..Default::default()
        },
    );
    let run_once = || {
        let mut c = publish(&data, &w, &net.url, &ids);
        c.args(["--max-price", "100"])
            .env("MINTFRAME_ARWEAVE_CONFIRM_SECS", "2");
        c
    };
    // Without a price accepted, nothing starts on a real network.
    let out = run(&mut publish(&data, &w, &net.url, &ids));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--max-price"), "{}", stderr(&out));
    assert_eq!(net.state(|s| s.posted_tx), 0);

    let mut child = Guard(
        run_once()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the fourth chunk", Duration::from_secs(120), || {
        net.state(|s| s.held)
    });
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // The header went first.
    assert_eq!(net.state(|s| s.posted_tx), 1);
    let acked = net.state(|s| s.acked.clone());
    assert_eq!(acked.len(), 3);
    net.state.lock().unwrap().hold_nth = None;
    let seen_before = net.state(|s| s.seen.len());

    let r = report(&run(&mut run_once()));
    let ar = &r["arweave"];
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(ar["confirmed"], false);
    assert_eq!(ar["chunks_skipped"], 3);
    // Sent again: only the chunk that was held and those after it.
    let total = ar["chunks_total"].as_u64().unwrap();
    assert_eq!(ar["chunks_sent"].as_u64().unwrap(), total - 3);
    assert_eq!(
        net.state(|s| s.seen.len()),
        seen_before + (total - 4) as usize
    );
    for o in &acked {
        assert_eq!(net.state(|s| s.acked.iter().filter(|a| *a == o).count()), 1);
    }
    // One header, one fee.
    assert_eq!(net.state(|s| s.posted_tx), 1);
    let paid: u128 = ar["price_winston"].as_str().unwrap().parse().unwrap();
    assert_eq!(before - balance(&data, &w, &gw.url), paid);

    // The network mines; the next run sends nothing and checks every file.
    assert!(gw.get("mine").is_some());
    let r = report(&run(&mut run_once()));
    assert_eq!(r["status"], "published", "{r}");
    assert_eq!(r["arweave"]["chunks_sent"], 0);
    assert_eq!(r["arweave"]["ids_checked"], 8 * 2 + 3);
    assert_eq!(net.state(|s| s.posted_tx), 1);
}

#[test]
fn a_chunk_the_gateway_refuses_mid_upload_stops_the_publish_and_the_next_run_goes_on_from_it() {
    let root = tempfile::tempdir().unwrap();
    let gw = Arlocal::start();
    let (data, ids, _) = library_of(root.path(), 6, 256);
    let w = wallet(root.path());
    mint(&data, &w, &gw.url, "100");
    let failing = Proxy::start(
        &gw.url,
        ProxyState {
            fail_nth: Some(2),
            ..Default::default()
        },
    );
    let out = run(&mut publish(&data, &w, &failing.url, &ids));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("chunk 3 of") && err.contains("run the publish again"),
        "{err}"
    );
    assert_eq!(failing.state(|s| s.acked.len()), 2);
    // No token's metadata points at anything the gateway holds: metadata and media travel in
    // one bundle, and its header (sent last to a local gateway) never went, so none of it is
    // served.
    let plan = plan_json(&data);
    let manifest = plan["metadata_manifest"].as_str().unwrap();
    let _ = run(Command::new("curl").args(["-s", &format!("{}/mine", gw.url)]));
    assert!(gw.get(&format!("{manifest}/0.json")).is_none());

    failing.state.lock().unwrap().fail_nth = None;
    let posts_before = failing.state(|s| s.posts.len());
    let r = report(&run(&mut publish(&data, &w, &failing.url, &ids)));
    assert_eq!(r["arweave"]["chunks_skipped"], 2);
    let total = r["arweave"]["chunks_total"].as_u64().unwrap() as usize;
    assert_eq!(failing.state(|s| s.posts.len()) - posts_before, total - 2);
    assert_eq!(r["arweave"]["confirmed"], true);
    assert!(gw.get(&format!("{manifest}/0.json")).is_some());
}

#[test]
fn bad_wallets_poor_wallets_and_misbehaving_gateways_each_get_a_clear_error_and_spend_nothing() {
    let root = tempfile::tempdir().unwrap();
    let gw = Arlocal::start();
    let (data, ids, _) = library_of(root.path(), 3, 32);
    let w = wallet(root.path());

    // Malformed key files.
    let key = |name: &str, text: &str| {
        let p = root.path().join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let jwk: serde_json::Value = serde_json::from_slice(&fs::read(&w).unwrap()).unwrap();
    let mut no_d = jwk.clone();
    no_d.as_object_mut().unwrap().remove("d");
    let mut small = jwk.clone();
    small["n"] = serde_json::json!("AQAB");
    for (file, text, says) in [
        ("cut.json", &jwk.to_string()[..200], "not a JSON key file"),
        ("pub.json", &no_d.to_string()[..], "has no \"d\""),
        (
            "ec.json",
            r#"{"kty":"EC","crv":"P-256"}"#,
            "Arweave wallets are RSA keys",
        ),
        ("small.json", &small.to_string()[..], "4096-bit"),
    ] {
        let out = run(mintframe(&data)
            .args(["arweave", "wallet", "import"])
            .arg(key(file, text))
            .arg("--keep-file"));
        assert!(!out.status.success(), "{file}");
        assert!(stderr(&out).contains(says), "{file}: {}", stderr(&out));
    }

    // A wallet with nothing in it: refused before anything is sent.
    let watch = Proxy::start(&gw.url, ProxyState::default());
    let out = run(&mut publish(&data, &w, &watch.url, &ids));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("holds 0 AR") && err.contains("costs"), "{err}");
    assert!(err.contains("mintframe arweave mint"), "{err}");
    assert_eq!(watch.state(|s| (s.posted_tx, s.seen.len())), (0, 0));

    // A gateway that is down.
    let dead = format!("http://127.0.0.1:{}", free_port_with(&[0]));
    let out = run(&mut publish(&data, &w, &dead, &ids));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot be reached"),
        "{}",
        stderr(&out)
    );

    // A gateway that stops answering.
    let stalled = Proxy::start(
        &gw.url,
        ProxyState {
            stall: Some("/price"),
            ..Default::default()
        },
    );
    let out =
        run(publish(&data, &w, &stalled.url, &ids).env("MINTFRAME_ARWEAVE_TIMEOUT_SECS", "2"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("gave no answer to /price") && stderr(&out).contains("within 2 s"),
        "{}",
        stderr(&out)
    );

    // A file over the gateway's limit: refused while planning, nothing sent.
    mint(&data, &w, &gw.url, "100");
    let big = root.path().join("big.png");
    fs::write(&big, noise_png(600, 600, 1)).unwrap();
    let out = run(mintframe(&data).args(["library", "import"]).arg(&big));
    let big_id = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("imported "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let watch = Proxy::start(&gw.url, ProxyState::default());
    let out =
        run(publish(&data, &w, &watch.url, &[big_id]).env("MINTFRAME_ARWEAVE_MAX_FILE_MIB", "1"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("over the 1048576-byte limit"),
        "{}",
        stderr(&out)
    );
    assert_eq!(watch.state(|s| (s.posted_tx, s.seen.len())), (0, 0));
}

#[test]
fn the_wallet_is_kept_in_the_os_keyring_and_never_in_the_library_or_its_logs() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let w = wallet(root.path());
    let jwk: serde_json::Value = serde_json::from_slice(&fs::read(&w).unwrap()).unwrap();
    let secret = jwk["d"].as_str().unwrap()[..40].to_owned();

    // No keyring in this session: the error says how else to keep it.
    let out = run(mintframe(&data)
        .args(["arweave", "wallet", "import"])
        .arg(&w));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--keep-file"), "{}", stderr(&out));
    // A key file others can read is refused.
    fs::set_permissions(&w, fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(mintframe(&data)
        .args(["arweave", "wallet", "import"])
        .arg(&w)
        .arg("--keep-file"));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    fs::set_permissions(&w, fs::Permissions::from_mode(0o600)).unwrap();

    let keyring = Keyring::start();
    let out = run(keyring
        .apply(&mut mintframe(&data))
        .args(["-v", "arweave", "wallet", "import"])
        .arg(&w));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("kept in   keyring"),
        "{}",
        stdout(&out)
    );
    assert!(!stderr(&out).contains(&secret));
    let address = stdout(&out)
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    // The file can go: the keyring has it.
    fs::remove_file(&w).unwrap();
    let out = run(keyring
        .apply(&mut mintframe(&data))
        .args(["arweave", "wallet", "show"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&address));
    for entry in walk(&data) {
        let bytes = fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "{} holds the private key",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
