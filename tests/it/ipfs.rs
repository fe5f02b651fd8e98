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
