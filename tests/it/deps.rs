//! The architecture's rules, checked from `cargo metadata` and the manifests (ARCHITECTURE.md).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use mintframe_tests::workspace_root;

struct Crate {
    deps: BTreeSet<String>,
    manifest: String,
}

fn workspace() -> BTreeMap<String, Crate> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                // Dev-dependencies (tests) may reach anywhere; build and normal ones may not.
                .filter(|d| d["kind"].is_null() || d["kind"] == "build")
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (
                p["name"].as_str().unwrap().to_owned(),
                Crate {
                    deps,
                    manifest: p["manifest_path"].as_str().unwrap().to_owned(),
                },
            )
        })
        .collect()
}

/// Which workspace crates each may depend on: `src-tauri, cli -> studio -> {diffusion, media,
/// render, publish, library} -> jobs -> types`, `diffusion -> kernels`, `cli -> preview -> render`.
fn allowed(name: &str) -> &'static [&'static str] {
    match name {
        "mintframe-types" | "mintframe-kernels" | "mintframe-arweave" => &[],
        "mintframe-jobs" => &["mintframe-types"],
        "mintframe-diffusion" => &["mintframe-jobs", "mintframe-kernels", "mintframe-types"],
        "mintframe-library" | "mintframe-media" | "mintframe-render" => {
            &["mintframe-jobs", "mintframe-types"]
        }
        "mintframe-publish" => &["mintframe-arweave", "mintframe-jobs", "mintframe-types"],
        "mintframe-collection" => &["mintframe-types"],
        "mintframe-farm" => &["mintframe-jobs", "mintframe-types"],
        "mintframe-preview" => &[
            "mintframe-render",
            "mintframe-media",
            "mintframe-library",
            "mintframe-types",
        ],
        "mintframe-studio" => &[
            "mintframe-arweave",
            "mintframe-diffusion",
            "mintframe-media",
            "mintframe-render",
            "mintframe-publish",
            "mintframe-collection",
            "mintframe-farm",
            "mintframe-library",
            "mintframe-jobs",
            "mintframe-types",
        ],
        "mintframe-cli" => &["mintframe-studio", "mintframe-preview", "mintframe-types"],
        "mintframe-app" => &["mintframe-studio", "mintframe-types"],
        // The test crate drives everything from outside.
        "mintframe-tests" => &[
            "mintframe-library",
            "mintframe-jobs",
            "mintframe-render",
            "mintframe-types",
        ],
        other => panic!("{other} is a new crate: give it a place in ARCHITECTURE.md and here"),
    }
}

#[test]
fn workspace_dependencies_point_one_way() {
    for (name, krate) in workspace() {
        for dep in krate.deps.iter().filter(|d| d.starts_with("mintframe-")) {
            assert!(
                allowed(&name).contains(&dep.as_str()),
                "{name} depends on {dep}, against the direction in ARCHITECTURE.md"
            );
        }
    }
}

#[test]
fn each_heavy_dependency_lives_in_one_crate() {
    let owners: &[(&str, &[&str])] = &[
        ("tauri", &["mintframe-app"]),
        ("async-nats", &["mintframe-farm"]),
        ("eframe", &["mintframe-preview"]),
        ("egui", &["mintframe-preview"]),
        ("wgpu", &["mintframe-render", "mintframe-preview"]),
        ("candle-core", &["mintframe-diffusion"]),
        ("candle-nn", &["mintframe-diffusion"]),
        ("ffmpeg-next", &["mintframe-media"]),
        ("rusqlite", &["mintframe-library"]),
        ("ipfs-api-backend-hyper", &["mintframe-publish"]),
        ("ipfs-api-prelude", &["mintframe-publish"]),
        ("keyring", &["mintframe-studio"]),
        ("rsa", &["mintframe-arweave"]),
        ("anyhow", &["mintframe-cli", "mintframe-app"]),
    ];
    let ws = workspace();
    for (dep, allowed) in owners {
        for (name, krate) in &ws {
            if krate.deps.contains(*dep) {
                assert!(
                    allowed.contains(&name.as_str()),
                    "{name} uses {dep}; only {allowed:?} may"
                );
            }
        }
    }
    // And the rule has teeth: the owners really do use them.
    assert!(ws["mintframe-library"].deps.contains("rusqlite"));
    assert!(ws["mintframe-app"].deps.contains("tauri"));
}

#[test]
fn every_crate_uses_the_workspace_lints_and_has_a_readme() {
    for (name, krate) in workspace() {
        let manifest = std::fs::read_to_string(&krate.manifest).unwrap();
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{name} does not take the workspace lints"
        );
        let readme = std::path::Path::new(&krate.manifest).with_file_name("README.md");
        assert!(readme.is_file(), "{name} has no README.md");
    }
}
