//! Offline CIDs against a real node: every CID `mintframe ipfs cid` computes without a node must
//! be the one the node gives for the same bytes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mintframe_tests::{free_port_with, mintframe, noise, run, stderr, stdout};

pub(crate) struct Node {
    pub(crate) data: PathBuf,
    pub(crate) api: String,
}

impl Node {
    pub(crate) fn start(data: &Path) -> Node {
        // Ports are picked free, then bound by the node: another test can take one in between,
        // so a start that fails is tried once more on fresh ports (its log goes in the message).
        let mut failures = Vec::new();
        for _ in 0..2 {
            let port = free_port_with(&[-1000, -999, 1, 4088]);
            let api = format!("http://127.0.0.1:{port}");
            let out = run(mintframe(data)
                .env("MINTFRAME_IPFS_API", &api)
                .args(["ipfs", "start"]));
            if out.status.success() {
                return Node {
                    data: data.to_path_buf(),
                    api,
                };
            }
            let err = stderr(&out);
            let log = err
                .split("Its log: ")
                .nth(1)
                .and_then(|l| l.split_whitespace().next())
                .and_then(|p| fs::read_to_string(p).ok())
                .map(|l| l.lines().rev().take(20).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default();
            failures.push(format!("{err}\nlog (last lines first):\n{log}"));
        }
        panic!("ipfs start: {}", failures.join("\n---\n"));
    }

    /// `ipfs add` over the RPC API, with the files of `path` as multipart parts (folders
    /// recursively, as `ipfs add -r`). Returns the root's CID.
    fn add(&self, path: &Path, cid_version: u8, wrap: bool) -> String {
        let boundary = "mintframe-test-boundary-7c1f";
        let mut body = Vec::new();
        let base = path.parent().unwrap();
        let mut stack = vec![path.to_path_buf()];
        while let Some(p) = stack.pop() {
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('/', "%2F");
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            if p.is_dir() {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"file\"; filename=\"{rel}\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n").as_bytes(),
                );
                let mut children: Vec<PathBuf> = fs::read_dir(&p)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                children.sort();
                children.reverse();
                stack.extend(children);
            } else {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"file\"; filename=\"{rel}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(&fs::read(&p).unwrap());
                body.extend_from_slice(b"\r\n");
            }
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let url = format!(
            "{}/api/v0/add?cid-version={cid_version}&wrap-with-directory={wrap}&pin=false{}",
            self.api,
            // js-ipfs answers CIDv1 in base58 unless asked; it refuses base32 for CIDv0.
            if cid_version == 1 {
                "&cid-base=base32"
            } else {
                ""
            }
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let text = agent
            .post(&url)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..])
            .unwrap()
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        // One JSON line per entry; the root comes last.
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        last["Hash"].as_str().unwrap().to_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = run(mintframe(&self.data)
            .env("MINTFRAME_IPFS_API", &self.api)
            .args(["ipfs", "stop"]));
    }
}

fn offline(path: &Path, cid_version: u8, wrap: bool) -> String {
    let mut cmd = mintframe(Path::new("/nonexistent-data-dir-not-needed"));
    cmd.args(["ipfs", "cid", "--cid-version", &cid_version.to_string()])
        .arg(path);
    if wrap {
        cmd.arg("--wrap-with-directory");
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

#[test]
fn offline_cids_equal_the_nodes_for_files_folders_and_both_cid_versions() {
    let work = tempfile::tempdir().unwrap();
    let node = Node::start(&work.path().join("data"));
    let inputs = work.path().join("inputs");
    fs::create_dir_all(inputs.join("collection/media")).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("hello.txt", b"hello\n".to_vec()),
        ("empty.bin", Vec::new()),
        ("one-chunk-exactly.bin", noise(256 * 1024, 1)),
        ("three-chunks.bin", noise(600 * 1024, 2)),
        // 176 chunks: more than one node of 174 links, so the tree gets a second level.
        ("deep.bin", noise(256 * 1024 * 175 + 1, 3)),
    ];
    for (name, bytes) in &files {
        fs::write(inputs.join(name), bytes).unwrap();
    }
    fs::write(inputs.join("collection/0.json"), br#"{"name":"Slime #0"}"#).unwrap();
    fs::write(inputs.join("collection/media/0.png"), noise(70_000, 4)).unwrap();
    fs::write(inputs.join("collection/media/1.png"), noise(300_000, 5)).unwrap();

    // Kubo's own vectors, offline.
    assert_eq!(
        offline(&inputs.join("hello.txt"), 0, false),
        "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
    );
    assert_eq!(
        offline(&inputs.join("empty.bin"), 0, false),
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    );
    assert_eq!(
        offline(&inputs.join("empty.bin"), 1, false),
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    );

    for version in [0u8, 1] {
        for (name, _) in &files {
            let p = inputs.join(name);
            assert_eq!(
                offline(&p, version, false),
                node.add(&p, version, false),
                "{name} v{version}"
            );
        }
        let p = inputs.join("hello.txt");
        assert_eq!(
            offline(&p, version, true),
            node.add(&p, version, true),
            "wrapped file v{version}"
        );
        let dir = inputs.join("collection");
        assert_eq!(
            offline(&dir, version, false),
            node.add(&dir, version, false),
            "folder v{version}"
        );
        assert_eq!(
            offline(&dir, version, true),
            node.add(&dir, version, true),
            "wrapped folder v{version}"
        );
    }
}

/// A 2 GiB file is hashed as it streams: the peak memory stays far below its size.
#[test]
fn a_two_gib_file_gets_its_cid_offline_in_bounded_memory() {
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("big.bin");
    // Sparse: no disk needed, and every byte still has to be read and hashed.
    fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "max-rss-kib %M"])
        .arg(mintframe_tests::bin("mintframe"))
        .args(["ipfs", "cid"])
        .arg(&big)
        .output()
        .expect("/usr/bin/time (Debian package `time`, installed by scripts/setup)");
    assert!(out.status.success(), "{}", stderr(&out));
    let cid = stdout(&out).trim().to_owned();
    assert!(cid.starts_with("Qm") && cid.len() == 46, "{cid}");
    let err = stderr(&out);
    let kib: u64 = err
        .lines()
        .filter_map(|l| l.strip_prefix("max-rss-kib "))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {err}"));
    assert!(
        kib < 200 * 1024,
        "hashing 2 GiB peaked at {} MiB",
        kib / 1024
    );
}

/// A CAR written offline imports into the node with the same root and content, and the node's
/// export of that root holds the same blocks.
#[test]
fn offline_car_files_import_and_export_through_the_node() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let node = Node::start(&data);
    let dir = work.path().join("drop");
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("hello.txt"), b"hello\n").unwrap();
    fs::write(dir.join("sub/big.bin"), noise(700_000, 21)).unwrap();
    for v in ["0", "1"] {
        let car = work.path().join(format!("drop-v{v}.car"));
        let o = run(mintframe(&data)
            .args(["ipfs", "car", "make"])
            .arg(&dir)
            .args(["--cid-version", v, "-o"])
            .arg(&car));
        assert!(o.status.success(), "{}", stderr(&o));
        let root = stdout(&o).trim().to_owned();
        assert_eq!(root, offline(&dir, v.parse().unwrap(), false));
        let o = run(mintframe(&data)
            .env("MINTFRAME_IPFS_API", &node.api)
            .args(["ipfs", "car", "import"])
            .arg(&car));
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), root);
        let bytes = crate::publish::cat(&node.api, &format!("{root}/sub/big.bin"));
        assert_eq!(bytes, noise(700_000, 21));
        let back = work.path().join(format!("back-v{v}.car"));
        let o = run(mintframe(&data)
            .env("MINTFRAME_IPFS_API", &node.api)
            .args(["ipfs", "car", "export", &root, "-o"])
            .arg(&back));
        assert!(o.status.success(), "{}", stderr(&o));
        // Same header and blocks; the order of blocks may differ between implementations.
        assert_eq!(
            fs::metadata(&back).unwrap().len(),
            fs::metadata(&car).unwrap().len()
        );
    }
}

fn offline_with(path: &Path, profile: &str) -> String {
    let out = run(mintframe(Path::new("/nonexistent-data-dir-not-needed"))
        .args(["ipfs", "cid", "--profile", profile])
        .arg(path));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// Kubo's `test/cli/cid_profiles_test.go` (Kubo at boxo v0.42): its deterministic files and
/// folders, and the CIDs it asserts for each profile.
#[test]
fn kubo_cid_profile_vectors_are_reproduced_offline_and_the_bundled_node_ends_holding_them() {
    use mintframe_tests::kubo;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // (profile, folder, files, name length, last name length, Kubo's CID, sharded)
    let folders = [
        (
            "unixfs-v0-2015",
            "v0-at",
            4096,
            30,
            30,
            "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN",
        ),
        (
            "unixfs-v0-2015",
            "v0-over",
            4033,
            31,
            31,
            "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP",
        ),
        (
            "unixfs-v1-2025",
            "v1-at",
            4766,
            11,
            21,
            "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4",
        ),
        (
            "unixfs-v1-2025",
            "v1-over",
            4766,
            11,
            22,
            "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu",
        ),
    ];
    for (profile, name, files, len, last, _) in &folders {
        let seed = format!("hamt-{profile}");
        kubo::write_folder(&tmp.path().join(name), *files, *len, *last, &seed);
    }
    // Files at and one byte over each profile's chunk size and (v0) link limit.
    let file_vectors = [
        (
            "unixfs-v0-2015",
            262_144,
            "chunk-v0-seed",
            "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE",
        ),
        (
            "unixfs-v0-2015",
            262_145,
            "chunk-v0-seed",
            "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ",
        ),
        (
            "unixfs-v0-2015",
            174 * 262_144,
            "v0-seed",
            "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2",
        ),
        (
            "unixfs-v0-2015",
            174 * 262_144 + 1,
            "v0-seed",
            "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW",
        ),
        (
            "unixfs-v1-2025",
            1_048_576,
            "chunk-v1-seed",
            "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta",
        ),
        (
            "unixfs-v1-2025",
            1_048_577,
            "chunk-v1-seed",
            "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64",
        ),
    ];
    // Kubo's two 1024-link vectors for unixfs-v1-2025 hash 1 GiB each; the link limit is the
    // same code as the 174-link one, with the profile's limit.
    for (i, (profile, size, seed, want)) in file_vectors.iter().enumerate() {
        let path = tmp.path().join(format!("file-{i}"));
        let mut out = fs::File::create(&path).unwrap();
        std::io::copy(&mut kubo::bytes(*size, seed), &mut out).unwrap();
        drop(out);
        assert_eq!(
            &offline_with(&path, profile),
            want,
            "{profile} {size} bytes"
        );
        fs::remove_file(&path).unwrap();
    }
    for (profile, name, _, _, _, want) in &folders {
        assert_eq!(
            &offline_with(&tmp.path().join(name), profile),
            want,
            "{profile} {name}"
        );
    }

    let node = Node::start(&data);
    for (profile, name, _, _, _, want) in &folders {
        let out = run(mintframe(&data)
            .env("MINTFRAME_IPFS_API", &node.api)
            .args(["ipfs", "add", "--profile", profile])
            .arg(tmp.path().join(name)));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), *want, "{profile} {name}");
        // js-ipfs's HTTP add never shards and has no unixfs-v1-2025: only the folder at the
        // v0 threshold goes through its add; the others go in as our CAR, and it says why.
        let how = if *name == "v0-at" {
            "through the node's add"
        } else {
            "imported as a CAR"
        };
        assert!(stderr(&out).contains(how), "{name}: {}", stderr(&out));
    }
    // The node holds them: a file read through each root (through the shards where sharded).
    for (profile, name, _, _, _, want) in &folders {
        let first = fs::read_dir(tmp.path().join(name))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .min()
            .unwrap();
        let body = ureq::post(&format!("{}/api/v0/cat?arg={want}/{first}", node.api))
            .send_empty()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert_eq!(body, "x", "{profile} {name}/{first}");
    }
    // A folder the node builds the same way goes through its own add.
    let small = tmp.path().join("small");
    fs::create_dir_all(&small).unwrap();
    fs::write(small.join("a.txt"), noise(3000, 1)).unwrap();
    let out = run(mintframe(&data)
        .env("MINTFRAME_IPFS_API", &node.api)
        .args(["ipfs", "add"])
        .arg(&small));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("through the node's add"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).trim(), offline(&small, 0, false));
}

/// Past ~7,000 numbered tokens Kubo shards a folder: a drop of 10,000 imported images goes in
/// one pass, every CID computed offline, in bounded memory.
#[test]
fn a_ten_thousand_token_collection_publishes_in_one_pass_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let images = tmp.path().join("build").join("images");
    fs::create_dir_all(&images).unwrap();
    for i in 0..10_000u64 {
        fs::write(
            images.join(format!("{i}.png")),
            mintframe_tests::noise_png(8, 8, i),
        )
        .unwrap();
    }
    let out = run(mintframe(&data).args(["library", "import"]).arg(&images));
    assert!(out.status.success(), "{}", stderr(&out));
    let job = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("job ").and_then(|r| r.split(':').next()))
        .unwrap()
        .to_owned();
    let node = Node::start(&data);
    let peak = tmp.path().join("peak-kib");
    let out = run(std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&peak)
        .arg(mintframe_tests::bin("mintframe"))
        .env("MINTFRAME_DATA_DIR", &data)
        .env("MINTFRAME_IPFS_API", &node.api)
        .env("DBUS_SESSION_BUS_ADDRESS", mintframe_tests::NO_SESSION_BUS)
        .args([
            "publish",
            "collection",
            "--from-job",
            &job,
            "--name",
            "Big Drop",
            "--json",
        ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["token_uris"].as_array().unwrap().len(), 10_000);
    assert_eq!(
        report["verified_files"], 20_001,
        "every file read back from the node"
    );
    // Both folders are sharded; js-ipfs cannot add them, so they went as our CARs.
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    staged_folders_have_the_published_cids(&report);
    let kib: u64 = fs::read_to_string(&peak)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Measured 122 MiB; the whole drop's files are 40 MiB on disk.
    assert!(kib < 400 * 1024, "peak {kib} KiB");

    // ERC-1155 names its metadata by 64 hex digits: the folder shards from ~2,500 tokens.
    // Planned offline only: a sharded folder goes to js-ipfs as our own CAR, so a second
    // upload would store the same kind of blocks again and prove nothing the first did not
    // (the shards themselves are checked against Kubo's vectors in the unit tests).
    let out = run(mintframe(&data).args([
        "publish",
        "collection",
        "--from-job",
        &job,
        "--name",
        "Big Drop",
        "--standard",
        "erc1155",
        "--check",
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let uri = report["token_uris"][9_999].as_str().unwrap();
    assert!(uri.ends_with(&format!("/{:064x}.json", 9_999)), "{uri}");
    staged_folders_have_the_published_cids(&report);
}

/// The CIDs a publish reports are the ones `ipfs cid` computes for the folders it staged.
fn staged_folders_have_the_published_cids(report: &serde_json::Value) {
    let staged = Path::new(report["media_car"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    for folder in ["media", "metadata"] {
        assert_eq!(
            offline(&staged.join(folder), 0, false),
            report[format!("{folder}_cid")].as_str().unwrap()
        );
    }
}
