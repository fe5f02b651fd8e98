//! One-pass collections: every CID is computed offline before anything is uploaded, so the
//! metadata is written once with its final `ipfs://` links, and the node's answers are checked
//! against what was computed.
//!
//! `plan` (offline): media folder → its CID → metadata with final links → metadata folder → its
//! CID → CAR files. `publish` (online): add each folder unless already pinned, refuse any CID
//! that differs from the plan, pin, then read every link back with `cat` and compare bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::client::{self, Progress};
use crate::metadata::{Attribute, Finding, TokenMetadata, erc1155_id};
use crate::unixfs::{self, CidProfile, Profile};
use crate::{ApiAddr, PublishError};

pub use mintframe_types::{Layout, Standard};

/// One token's inputs.
#[derive(Debug, Clone)]
pub struct TokenSource {
    /// The still (for a clip, its poster frame).
    pub image: PathBuf,
    /// Its extension, e.g. `png` (library files are stored by hash, without one).
    pub image_ext: String,
    /// A clip or animation and its extension (`gif`, `mp4`, `webm`).
    pub animation: Option<(PathBuf, String)>,
    pub name: String,
    pub description: String,
    pub attributes: Vec<Attribute>,
    /// Files that go with the token (a character pack's sheet and engine exports), staged in
    /// `media/<i>/` so the media folder's CID covers them; empty for a plain image or clip.
    pub bundle: Vec<BundleFile>,
}

/// One file of a token's bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Where its bytes are.
    pub path: PathBuf,
    /// Its name inside the bundle, folders separated by `/` (`knight.png`,
    /// `frames/walk_e_0.png`): engine exports name the sheet they go with, so it is kept as
    /// given rather than renamed.
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct CollectionSpec {
    pub name: String,
    pub description: String,
    /// Metaplex's symbol (ignored elsewhere).
    pub symbol: String,
    pub external_url: Option<String>,
    pub standard: Standard,
    pub layout: Layout,
    pub profile: CidProfile,
    pub tokens: Vec<TokenSource>,
}

/// A problem found in one file of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFinding {
    pub file: String,
    pub error: bool,
    pub field: String,
    pub message: String,
}

/// Everything computed offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub dir: PathBuf,
    pub media_cid: String,
    pub metadata_cid: String,
    /// `ipfs://<metadata CID>/` (ERC-1155: `ipfs://<CID>/{id}.json`).
    pub base_uri: String,
    pub token_uris: Vec<String>,
    /// ERC-7572 `contractURI` (Sugar: the collection JSON).
    pub contract_uri: String,
    pub media_files: Vec<String>,
    pub metadata_files: Vec<String>,
    pub media_car: PathBuf,
    pub metadata_car: PathBuf,
    pub findings: Vec<FileFinding>,
    /// The import profile every CID follows.
    #[serde(default = "default_profile")]
    pub profile: CidProfile,
    /// Whether each folder (media, metadata) is, or holds, a HAMT-sharded directory.
    #[serde(default)]
    pub sharded: [bool; 2],
}

fn default_profile() -> CidProfile {
    CidProfile::UnixfsV0_2015
}

impl Plan {
    pub fn media_dir(&self) -> PathBuf {
        self.dir.join("media")
    }
    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.join("metadata")
    }
    pub fn errors(&self) -> Vec<&FileFinding> {
        self.findings.iter().filter(|f| f.error).collect()
    }
}

/// Extensions marketplaces accept for `image` / `animation_url`, with their MIME types.
const ACCEPTED: &[(&str, &str)] = &[
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("svg", "image/svg+xml"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("glb", "model/gltf-binary"),
    ("gltf", "model/gltf+json"),
    ("mp3", "audio/mpeg"),
    ("wav", "audio/wav"),
    ("ogg", "audio/ogg"),
];

/// OpenSea's limit for a token's media.
pub const MAX_MEDIA_BYTES: u64 = 100 * 1024 * 1024;

pub(crate) fn mime_of(ext: &str) -> Option<&'static str> {
    ACCEPTED
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map(|(_, m)| *m)
}

/// The MIME type of a bundle file for Metaplex's `properties.files`. Anything a wallet could
/// mistake for something to display (an `.aseprite` is not an image it can draw) is
/// `application/octet-stream`.
pub(crate) fn bundle_mime(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    if let Some(m) = mime_of(ext) {
        return m;
    }
    match ext.to_ascii_lowercase().as_str() {
        "json" => "application/json",
        // Godot's text resources.
        "tres" | "tscn" | "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// `name` as a URI path: every byte outside RFC 3986's unreserved set percent-encoded, `/`
/// kept between folders, so a pack named "Sir Knight" still gives links wallets follow.
pub(crate) fn uri_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a bundle file's name cannot be staged, if it cannot.
fn bundle_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("has no name");
    }
    if name.contains('\\') {
        return Some("has a backslash: separate folders with /");
    }
    if name.starts_with('/') {
        return Some("is absolute: give a name inside the bundle");
    }
    // `:` would name a drive or a stream on Windows; `"` and control characters would break
    // the multipart headers a folder is uploaded with.
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*'))
    {
        return Some(
            "has a character file systems or uploads refuse (<>:\"|?* or a control character)",
        );
    }
    for part in name.split('/') {
        if part.is_empty() {
            return Some("has an empty folder name (// or a trailing /)");
        }
        if part == ".." || part == "." {
            return Some("has a . or .. part: bundle files stay in their token's folder");
        }
        // `ipfs add -r` (and `cid_of_path`) leave hidden entries out: the link would be dead.
        if part.starts_with('.') {
            return Some("has a part starting with '.', which IPFS leaves out of folders");
        }
    }
    None
}

/// Refuses, before anything is staged, every bundle name that could leave its token's folder,
/// go missing from the folder's CID, or land on another file.
fn check_bundles(tokens: &[TokenSource]) -> Result<(), PublishError> {
    let mut problems = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        // Lower-cased: on a case-insensitive disk (macOS, Windows) `A.png` and `a.png` are
        // one file, and the folder would hold one where the metadata lists two.
        let mut files = std::collections::HashSet::new();
        let mut folders = std::collections::HashSet::new();
        for f in &t.bundle {
            if let Some(why) = bundle_name_problem(&f.name) {
                problems.push(format!("token {i}: bundle file {:?} {why}", f.name));
                continue;
            }
            let key = f.name.to_lowercase();
            if !files.insert(key.clone()) {
                problems.push(format!(
                    "token {i}: two bundle files are named {:?}; each needs its own name",
                    f.name
                ));
            }
            let mut folder = key.as_str();
            while let Some((parent, _)) = folder.rsplit_once('/') {
                folders.insert(parent.to_owned());
                folder = parent;
            }
        }
        for f in &t.bundle {
            let key = f.name.to_lowercase();
            if files.contains(&key) && folders.contains(&key) {
                problems.push(format!(
                    "token {i}: bundle file {:?} is also the folder of other bundle files",
                    f.name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PublishError::Invalid(problems))
    }
}

pub(crate) fn io_err(action: &'static str, path: &Path, e: std::io::Error) -> PublishError {
    PublishError::Io {
        action,
        path: path.to_path_buf(),
        source: e,
    }
}

/// A plain extension: letters and digits only, so it cannot carry a path.
fn clean_ext(ext: &str) -> Result<String, PublishError> {
    let e = ext.trim_start_matches('.').to_ascii_lowercase();
    if e.is_empty() || e.len() > 8 || !e.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(PublishError::Invalid(vec![format!(
            "{ext:?} is not a file extension"
        )]));
    }
    Ok(e)
}

/// Hashes `dir` (a folder or a file) offline and writes its CARv1 to `car` as blocks are made
/// (bounded memory); returns the root.
pub fn cid_and_car(
    dir: &Path,
    profile: CidProfile,
    car: &Path,
) -> Result<unixfs::Node, PublishError> {
    let body_path = car.with_extension("car.part");
    let mut body = std::io::BufWriter::new(
        std::fs::File::create(&body_path).map_err(|e| io_err("cannot write", &body_path, e))?,
    );
    let mut seen = std::collections::HashSet::new();
    let node = crate::cid_of_path(dir, &Profile::of(profile), false, &mut |b| {
        if seen.insert(b.cid) {
            unixfs::write_car_block(&mut body, &b)?;
        }
        Ok(())
    })?;
    body.flush()
        .map_err(|e| io_err("cannot write", &body_path, e))?;
    drop(body);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(car).map_err(|e| io_err("cannot write", car, e))?,
    );
    unixfs::write_car(&mut out, &[node.cid], &[]).map_err(|e| io_err("cannot write", car, e))?;
    let mut src =
        std::fs::File::open(&body_path).map_err(|e| io_err("cannot read", &body_path, e))?;
    std::io::copy(&mut src, &mut out).map_err(|e| io_err("cannot write", car, e))?;
    out.flush().map_err(|e| io_err("cannot write", car, e))?;
    let _ = std::fs::remove_file(&body_path);
    Ok(node)
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), PublishError> {
    let mut text = serde_json::to_vec_pretty(v)
        .map_err(|e| io_err("cannot write", path, std::io::Error::other(e)))?;
    text.push(b'\n');
    std::fs::write(path, text).map_err(|e| io_err("cannot write", path, e))
}

/// Stages media and metadata in `dir` (replacing what an earlier plan left there) and computes
/// every CID offline. The same spec always gives the same CIDs.
/// A collection's media copied into `dir/media` (replacing an earlier plan's), with each token's
/// file names and what the checks found; the links to them are the target's to write.
pub(crate) struct Staged {
    pub media_files: Vec<String>,
    /// (image file, animation file) per token, inside `media/`.
    pub names: Vec<(String, Option<String>)>,
    pub findings: Vec<FileFinding>,
}

/// How a target names a staged media file in the metadata.
pub(crate) trait Links {
    /// A file of `media/` (`3.png`).
    fn file(&self, name: &str) -> String;
    /// Token `i`'s bundle folder (`media/3/`).
    fn folder(&self, i: usize) -> String;
    /// A file of token `i`'s bundle (`frames/walk_e_0.png`).
    fn bundle_file(&self, i: usize, name: &str) -> String;
}

struct IpfsLinks<'a>(&'a str);

impl Links for IpfsLinks<'_> {
    fn file(&self, name: &str) -> String {
        format!("ipfs://{}/{name}", self.0)
    }
    fn folder(&self, i: usize) -> String {
        format!("ipfs://{}/{i}/", self.0)
    }
    fn bundle_file(&self, i: usize, name: &str) -> String {
        format!("ipfs://{}/{i}/{}", self.0, uri_path(name))
    }
}

pub(crate) fn stage(spec: &CollectionSpec, dir: &Path) -> Result<Staged, PublishError> {
    if spec.tokens.is_empty() {
        return Err(PublishError::Invalid(vec![
            "a collection needs at least one token".into(),
        ]));
    }
    // Before anything is cleared: a refused bundle leaves an earlier plan's folders as they were.
    check_bundles(&spec.tokens)?;
    let media_dir = dir.join("media");
    let meta_dir = dir.join("metadata");
    for d in [&media_dir, &meta_dir] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| io_err("cannot clear", d, e))?;
        }
        std::fs::create_dir_all(d).map_err(|e| io_err("cannot create", d, e))?;
    }
    let mut findings = Vec::new();
    let mut media_files = Vec::new();
    // (image file, animation file) per token.
    let mut names = Vec::new();
    for (i, t) in spec.tokens.iter().enumerate() {
        let mut one = |src: &Path, ext: &str, role: &str| -> Result<String, PublishError> {
            let ext = clean_ext(ext)?;
            let name = format!("{i}.{ext}");
            if mime_of(&ext).is_none() {
                findings.push(FileFinding {
                    file: name.clone(),
                    error: true,
                    field: role.into(),
                    message: format!(".{ext} is not a format marketplaces show"),
                });
            }
            let dst = media_dir.join(&name);
            let n = std::fs::copy(src, &dst).map_err(|e| io_err("cannot copy", src, e))?;
            if n > MAX_MEDIA_BYTES {
                findings.push(FileFinding {
                    file: name.clone(),
                    error: false,
                    field: role.into(),
                    message: format!(
                        "{} MiB is over the {} MiB OpenSea shows",
                        n >> 20,
                        MAX_MEDIA_BYTES >> 20
                    ),
                });
            }
            media_files.push(name.clone());
            Ok(name)
        };
        let image = one(&t.image, &t.image_ext, "image")?;
        let anim = match &t.animation {
            Some((p, ext)) => {
                let ext = clean_ext(ext)?;
                if ext == clean_ext(&t.image_ext)? {
                    return Err(PublishError::Invalid(vec![format!(
                        "token {i}: the animation and the poster are both .{ext}"
                    )]));
                }
                Some(one(p, &ext, "animation_url")?)
            }
            None => None,
        };
        // Token i's own folder (`media/<i>/`, beside `<i>.png`), named in the metadata as one
        // link, so an engine fetches the bundle as the folder it was exported as.
        for f in &t.bundle {
            let rel = format!("{i}/{}", f.name);
            let dst = media_dir.join(&rel);
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_err("cannot create", parent, e))?;
            }
            std::fs::copy(&f.path, &dst).map_err(|e| io_err("cannot copy", &f.path, e))?;
            media_files.push(rel);
        }
        names.push((image, anim));
    }
    Ok(Staged {
        media_files,
        names,
        findings,
    })
}

/// Writes each token's metadata and `collection.json` into `meta_dir`, linking media as `links`
/// says; returns the token files in token order.
pub(crate) fn write_metadata(
    spec: &CollectionSpec,
    names: &[(String, Option<String>)],
    links: &dyn Links,
    meta_dir: &Path,
    findings: &mut Vec<FileFinding>,
) -> Result<Vec<String>, PublishError> {
    let link = |name: &str| links.file(name);
    let mut metadata_files = Vec::new();
    for (i, (t, (image, anim))) in spec.tokens.iter().zip(names).enumerate() {
        let token = TokenMetadata {
            name: t.name.clone(),
            description: t.description.clone(),
            image: link(image),
            animation_url: anim.as_deref().map(link),
            external_url: spec.external_url.clone(),
            background_color: None,
            attributes: t.attributes.clone(),
        };
        let file = match (spec.standard, spec.layout) {
            (Standard::Erc1155, _) => format!("{}.json", erc1155_id(i as u64)),
            (_, Layout::Numbered) => i.to_string(),
            (_, Layout::NumberedJson | Layout::Sugar) => format!("{i}.json"),
        };
        for f in token.validate() {
            findings.push(FileFinding {
                file: file.clone(),
                error: f.error,
                field: f.field,
                message: f.message,
            });
        }
        let mut json = serde_json::to_value(&token).map_err(|e| {
            PublishError::Invalid(vec![format!("token {i} cannot be written: {e}")])
        })?;
        // Added only for a bundle, so a token without one is written exactly as before.
        if !t.bundle.is_empty() {
            json["bundle"] = serde_json::json!(links.folder(i));
            let listed: Vec<&str> = t.bundle.iter().map(|f| f.name.as_str()).collect();
            json["bundle_files"] = serde_json::json!(listed);
        }
        if spec.standard == Standard::Metaplex {
            let mut files = vec![serde_json::json!({
                "uri": token.image,
                "type": mime_of(image.rsplit('.').next().unwrap_or("")).unwrap_or("application/octet-stream"),
            })];
            if let (Some(a), Some(uri)) = (anim, &token.animation_url) {
                files.push(serde_json::json!({
                    "uri": uri,
                    "type": mime_of(a.rsplit('.').next().unwrap_or("")).unwrap_or("application/octet-stream"),
                }));
            }
            for f in &t.bundle {
                files.push(serde_json::json!({
                    "uri": links.bundle_file(i, &f.name),
                    "type": bundle_mime(&f.name),
                }));
            }
            json["symbol"] = serde_json::json!(spec.symbol);
            json["properties"] = serde_json::json!({
                "files": files,
                "category": if anim.is_some() { "video" } else { "image" },
            });
        }
        write_json(&meta_dir.join(&file), &json)?;
        metadata_files.push(file);
    }
    let first_image = names.first().map(|(img, _)| link(img)).unwrap_or_default();
    let mut collection = serde_json::json!({
        "name": spec.name,
        "description": spec.description,
        "image": first_image,
    });
    // A field with no value is left out: marketplaces read `null` and `""` as set.
    if let Some(url) = spec.external_url.as_ref().filter(|u| !u.trim().is_empty()) {
        collection["external_link"] = serde_json::json!(url);
    }
    if !spec.symbol.trim().is_empty() {
        collection["symbol"] = serde_json::json!(spec.symbol);
    }
    write_json(&meta_dir.join("collection.json"), &collection)?;
    if spec.name.trim().is_empty() {
        findings.push(FileFinding {
            file: "collection.json".into(),
            error: true,
            field: "name".into(),
            message: "the collection needs a name".into(),
        });
    }

    Ok(metadata_files)
}

/// Stages media and metadata in `dir` (replacing what an earlier plan left there) and computes
/// every CID offline. The same spec always gives the same CIDs.
pub fn plan(spec: &CollectionSpec, dir: &Path) -> Result<Plan, PublishError> {
    let Staged {
        media_files,
        names,
        mut findings,
    } = stage(spec, dir)?;
    let media_dir = dir.join("media");
    let meta_dir = dir.join("metadata");
    let media_car = dir.join("media.car");
    let media_root = cid_and_car(&media_dir, spec.profile, &media_car)?;
    let media_cid = media_root.cid.to_string();

    let metadata_files = write_metadata(
        spec,
        &names,
        &IpfsLinks(&media_cid),
        &meta_dir,
        &mut findings,
    )?;
    let metadata_car = dir.join("metadata.car");
    let metadata_root = cid_and_car(&meta_dir, spec.profile, &metadata_car)?;
    let metadata_cid = metadata_root.cid.to_string();
    let base = format!("ipfs://{metadata_cid}/");
    let (base_uri, token_uris) = match spec.standard {
        Standard::Erc1155 => (
            format!("{base}{{id}}.json"),
            metadata_files
                .iter()
                .map(|f| format!("{base}{f}"))
                .collect(),
        ),
        _ => (
            base.clone(),
            metadata_files
                .iter()
                .map(|f| format!("{base}{f}"))
                .collect(),
        ),
    };
    Ok(Plan {
        dir: dir.to_path_buf(),
        media_cid,
        metadata_cid,
        base_uri,
        token_uris,
        contract_uri: format!("{base}collection.json"),
        media_files,
        metadata_files,
        media_car,
        metadata_car,
        findings,
        profile: spec.profile,
        sharded: [media_root.sharded, metadata_root.sharded],
    })
}

/// Refuses a plan with errors in it, listing every one.
pub fn refuse_errors(plan: &Plan) -> Result<(), PublishError> {
    refuse_errors_in(&plan.findings)
}

pub(crate) fn refuse_errors_in(findings: &[FileFinding]) -> Result<(), PublishError> {
    let errors: Vec<&FileFinding> = findings.iter().filter(|f| f.error).collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(PublishError::Invalid(
        errors
            .iter()
            .map(|f| format!("{} {}: {}", f.file, f.field, f.message))
            .collect(),
    ))
}

/// Files read back from the node at once after a publish.
const VERIFY_IN_FLIGHT: usize = 6;

/// What the node did with a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether each folder (media, metadata) had to be uploaded; `false`: already pinned.
    pub uploaded_media: bool,
    pub uploaded_metadata: bool,
    /// Every file read back with `cat` and found byte-identical.
    pub verified_files: usize,
    /// How the node was given what it could not build itself (a CAR import), and why.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Which step a publish is at, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Uploading {
        folder: &'static str,
        sent: u64,
        total: u64,
    },
    Pinning(&'static str),
    Verifying {
        done: usize,
        total: usize,
    },
}

/// Why `add` on a node (`implementation` as [`crate::node_version`] names it) would not build
/// the plan's DAG; `None` where it builds the same one.
pub fn add_differs(
    implementation: &str,
    profile: CidProfile,
    sharded: bool,
) -> Option<&'static str> {
    let js = implementation == "js-ipfs";
    match (js, profile) {
        (true, _) if sharded => {
            Some("js-ipfs's HTTP add never shards a folder, where Kubo shards one past 256 KiB")
        }
        (true, CidProfile::UnixfsV1_2025) => {
            Some("js-ipfs's add has no unixfs-v1-2025 profile (1 MiB chunks, 1024 links per node)")
        }
        (false, CidProfile::UnixfsV1_2025) => Some(
            "Kubo's add follows the node's own Import settings, not a profile chosen per publish",
        ),
        _ => None,
    }
}

/// Uploads and pins the plan's folders and checks every link resolves to the planned bytes.
/// A folder the node would build differently (a sharded folder on js-ipfs, a profile the node
/// does not use) goes as the plan's CAR instead of through `add`, and the outcome says so.
/// Safe to run again after an interruption: pinned folders are not re-sent, and the CIDs are
/// the plan's.
pub async fn publish(
    plan: &Plan,
    api: &ApiAddr,
    on_step: Arc<dyn Fn(Step) + Send + Sync>,
) -> Result<Outcome, PublishError> {
    refuse_errors(plan)?;
    let node = crate::node_version(api, Duration::from_secs(30)).await?;
    let mut uploaded = [false, false];
    let mut notes = Vec::new();
    for (k, (folder, dir, car, expected)) in [
        ("media", plan.media_dir(), &plan.media_car, &plan.media_cid),
        (
            "metadata",
            plan.metadata_dir(),
            &plan.metadata_car,
            &plan.metadata_cid,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        if client::is_pinned(api, expected).await? {
            tracing::info!(folder, cid = %expected, "already pinned; not re-sent");
            continue;
        }
        if let Some(why) = add_differs(&node.implementation, plan.profile, plan.sharded[k]) {
            let note = format!(
                "{folder}: imported as a CAR ({} {}): {why}",
                node.implementation, node.version
            );
            tracing::info!("{note}");
            notes.push(note);
            let total = std::fs::metadata(car)
                .map_err(|e| io_err("cannot read", car, e))?
                .len();
            on_step(Step::Uploading {
                folder,
                sent: 0,
                total,
            });
            let roots = client::dag_import(api, car).await?;
            if !roots.iter().any(|r| r == expected) {
                return Err(PublishError::CidMismatch {
                    folder,
                    expected: expected.clone(),
                    got: roots.join(", "),
                });
            }
            on_step(Step::Uploading {
                folder,
                sent: total,
                total,
            });
            uploaded[k] = true;
            continue;
        }
        let step = Arc::clone(&on_step);
        let progress: Progress = Arc::new(move |sent, total| {
            step(Step::Uploading {
                folder,
                sent,
                total,
            })
        });
        let version = Profile::of(plan.profile).version;
        let added = client::add_dir(api, &dir, version, false, progress).await?;
        let root = added.last().map(|a| a.cid.clone()).unwrap_or_default();
        if &root != expected {
            // Nothing that links to it is uploaded: the metadata would point at content the
            // node does not hold under that CID.
            return Err(PublishError::CidMismatch {
                folder,
                expected: expected.clone(),
                got: root,
            });
        }
        on_step(Step::Pinning(folder));
        client::pin_add(api, expected).await?;
        uploaded[k] = true;
    }
    let mut checks: Vec<(String, PathBuf)> = plan
        .media_files
        .iter()
        .map(|f| (format!("{}/{f}", plan.media_cid), plan.media_dir().join(f)))
        .collect();
    checks.extend(
        plan.metadata_files
            .iter()
            .chain(std::iter::once(&"collection.json".to_owned()))
            .map(|f| {
                (
                    format!("{}/{f}", plan.metadata_cid),
                    plan.metadata_dir().join(f),
                )
            }),
    );
    let total = checks.len();
    // A few reads in flight: a node answers the next while this side hashes the last, which
    // halves the read-back of a 10,000-token drop.
    let mut reads = futures::stream::iter(checks.iter().map(|(ipfs_path, local)| async move {
        let (digest, _) = client::cat_digest(api, ipfs_path, Duration::from_secs(60)).await?;
        let want = file_sha256(local)?;
        if digest != want {
            return Err(PublishError::NodeError {
                api: api.to_string(),
                endpoint: "cat",
                reason: format!(
                    "ipfs://{ipfs_path} does not hold the bytes of {}",
                    local.display()
                ),
            });
        }
        Ok(())
    }))
    .buffer_unordered(VERIFY_IN_FLIGHT);
    let mut done = 0;
    on_step(Step::Verifying { done, total });
    while let Some(read) = futures::StreamExt::next(&mut reads).await {
        read?;
        done += 1;
        if done % 50 == 0 {
            on_step(Step::Verifying { done, total });
        }
    }
    on_step(Step::Verifying { done: total, total });
    Ok(Outcome {
        uploaded_media: uploaded[0],
        uploaded_metadata: uploaded[1],
        verified_files: total,
        notes,
    })
}

/// How [`put_path`] gave the node a file or folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Put {
    pub cid: String,
    /// `None`: through `add`, the node building the same DAG; otherwise why our CAR was
    /// imported instead.
    pub imported_car: Option<String>,
}

/// `ipfs add -r` that cannot end on another CID: the DAG is built offline (and its CAR written
/// to `car`), then sent through `add` where the node builds the same one, or as the CAR where it
/// cannot; the node's root must be ours, and it is pinned.
pub async fn put_path(
    api: &ApiAddr,
    path: &Path,
    profile: CidProfile,
    car: &Path,
) -> Result<Put, PublishError> {
    let root = cid_and_car(path, profile, car)?;
    let expected = root.cid.to_string();
    let node = crate::node_version(api, Duration::from_secs(30)).await?;
    let folder = "added";
    if let Some(why) = add_differs(&node.implementation, profile, root.sharded) {
        let roots = client::dag_import(api, car).await?;
        if !roots.contains(&expected) {
            return Err(PublishError::CidMismatch {
                folder,
                expected,
                got: roots.join(", "),
            });
        }
        return Ok(Put {
            cid: expected,
            imported_car: Some(format!("{} {}: {why}", node.implementation, node.version)),
        });
    }
    let quiet: Progress = Arc::new(|_, _| {});
    let added = client::add_dir(api, path, Profile::of(profile).version, true, quiet).await?;
    let got = added.last().map(|a| a.cid.clone()).unwrap_or_default();
    if got != expected {
        return Err(PublishError::CidMismatch {
            folder,
            expected,
            got,
        });
    }
    Ok(Put {
        cid: expected,
        imported_car: None,
    })
}

/// What a cluster did with a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterOutcome {
    pub uploaded_media: bool,
    pub uploaded_metadata: bool,
    pub pins: Vec<crate::cluster::ClusterPin>,
}

/// The same one-pass publish with an IPFS Cluster as the target: each folder is added through
/// the cluster unless it already tracks it, the root must be the plan's, then each root is
/// awaited until `replication_min` peers hold it (or `wait` passes).
pub fn publish_to_cluster(
    plan: &Plan,
    cluster: &crate::cluster::Cluster,
    name: &str,
    wait: Duration,
    on_step: Arc<dyn Fn(Step) + Send + Sync>,
) -> Result<ClusterOutcome, PublishError> {
    use crate::cluster;
    refuse_errors(plan)?;
    if plan.profile == CidProfile::UnixfsV1_2025 {
        // The cluster's adder builds Kubo's older DAGs (256 KiB chunks, 174 links, sharding
        // by names and CIDs): it would answer with other CIDs than the plan's.
        return Err(PublishError::Invalid(vec![
            "an IPFS Cluster adds with the unixfs-v0-2015 or cid-v1 profile; publish with one of those".into(),
        ]));
    }
    let version = Profile::of(plan.profile).version;
    let mut uploaded = [false, false];
    for (k, (folder, dir, expected)) in [
        ("media", plan.media_dir(), &plan.media_cid),
        ("metadata", plan.metadata_dir(), &plan.metadata_cid),
    ]
    .into_iter()
    .enumerate()
    {
        if cluster::pin_status(cluster, expected)?.is_some_and(|p| p.pinned > 0) {
            tracing::info!(folder, cid = %expected, "the cluster already holds it; not re-sent");
            continue;
        }
        on_step(Step::Uploading {
            folder,
            sent: 0,
            total: 0,
        });
        let root = cluster::add_dir(cluster, &dir, version, &format!("{name} {folder}"))?;
        if &root != expected {
            return Err(PublishError::CidMismatch {
                folder,
                expected: expected.clone(),
                got: root,
            });
        }
        uploaded[k] = true;
    }
    let mut pins = Vec::new();
    for cid in [&plan.media_cid, &plan.metadata_cid] {
        on_step(Step::Pinning("cluster"));
        pins.push(cluster::wait_pinned(cluster, cid, wait)?);
    }
    Ok(ClusterOutcome {
        uploaded_media: uploaded[0],
        uploaded_metadata: uploaded[1],
        pins,
    })
}

pub(crate) fn file_sha256(path: &Path) -> Result<[u8; 32], PublishError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err("cannot read", path, e))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| io_err("cannot read", path, e))?;
    Ok(h.finalize().into())
}

/// Findings as `Finding`s (for callers that already show those).
pub fn as_findings(plan: &Plan) -> Vec<Finding> {
    plan.findings
        .iter()
        .map(|f| Finding {
            error: f.error,
            field: format!("{} {}", f.file, f.field),
            message: f.message.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, standard: Standard, layout: Layout) -> CollectionSpec {
        let mut tokens = Vec::new();
        for i in 0..2u8 {
            let p = dir.join(format!("src{i}"));
            std::fs::write(&p, [i; 100]).expect("write");
            tokens.push(TokenSource {
                image: p,
                image_ext: "png".into(),
                animation: None,
                name: format!("Slime #{i}"),
                description: "A slime".into(),
                attributes: vec![],
                bundle: Vec::new(),
            });
        }
        CollectionSpec {
            name: "Slimes".into(),
            description: "Bouncy".into(),
            symbol: "SLM".into(),
            external_url: None,
            standard,
            layout,
            profile: CidProfile::UnixfsV0_2015,
            tokens,
        }
    }

    #[test]
    fn metadata_links_to_the_offline_media_cid_and_plans_repeat_exactly() {
        let t = tempfile::tempdir().expect("tmp");
        let s = spec(t.path(), Standard::Erc721, Layout::Numbered);
        let a = plan(&s, &t.path().join("a")).expect("plan");
        assert!(a.findings.is_empty(), "{:?}", a.findings);
        assert_eq!(a.metadata_files, ["0", "1"]);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(a.metadata_dir().join("1")).expect("read"))
                .expect("json");
        assert_eq!(json["image"], format!("ipfs://{}/1.png", a.media_cid));
        assert_eq!(a.token_uris[1], format!("ipfs://{}/1", a.metadata_cid));
        assert_eq!(a.base_uri, format!("ipfs://{}/", a.metadata_cid));
        // The CAR names the folder's root.
        let car = std::fs::read(&a.metadata_car).expect("car");
        let node = crate::cid_of_path(
            &a.metadata_dir(),
            &Profile::UNIXFS_V0_2015,
            false,
            &mut |_| Ok(()),
        )
        .expect("cid");
        assert_eq!(node.cid.to_string(), a.metadata_cid);
        let root = node.cid.to_bytes();
        assert!(car.windows(root.len()).any(|w| w == root.as_slice()));
        let b = plan(&s, &t.path().join("b")).expect("again");
        assert_eq!((a.media_cid, a.metadata_cid), (b.media_cid, b.metadata_cid));
    }

    #[test]
    fn erc1155_and_metaplex_follow_their_standards() {
        let t = tempfile::tempdir().expect("tmp");
        let p = plan(
            &spec(t.path(), Standard::Erc1155, Layout::Numbered),
            &t.path().join("x"),
        )
        .expect("plan");
        assert_eq!(p.metadata_files[1], format!("{:064x}.json", 1));
        assert!(p.base_uri.ends_with("/{id}.json"), "{}", p.base_uri);

        let mut s = spec(t.path(), Standard::Metaplex, Layout::Sugar);
        let clip = t.path().join("clip");
        std::fs::write(&clip, b"mp4").expect("write");
        s.tokens[0].animation = Some((clip, "mp4".into()));
        let p = plan(&s, &t.path().join("y")).expect("plan");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.metadata_dir().join("0.json")).expect("read"))
                .expect("json");
        assert_eq!(json["properties"]["category"], "video");
        assert_eq!(json["properties"]["files"][1]["type"], "video/mp4");
        assert_eq!(json["symbol"], "SLM");
    }

    #[test]
    fn the_collection_json_leaves_out_fields_that_have_no_value() {
        let t = tempfile::tempdir().expect("tmp");
        let mut s = spec(t.path(), Standard::Erc721, Layout::Numbered);
        s.external_url = None;
        s.symbol = String::new();
        let p = plan(&s, &t.path().join("x")).expect("plan");
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(p.metadata_dir().join("collection.json")).expect("read"),
        )
        .expect("json");
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["description", "image", "name"], "{json}");
        s.external_url = Some("https://example.com".into());
        s.symbol = "SLM".into();
        let p = plan(&s, &t.path().join("y")).expect("plan");
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(p.metadata_dir().join("collection.json")).expect("read"),
        )
        .expect("json");
        assert_eq!(json["external_link"], "https://example.com");
        assert_eq!(json["symbol"], "SLM");
    }

    #[test]
    fn unknown_formats_and_path_like_extensions_are_refused() {
        let t = tempfile::tempdir().expect("tmp");
        let mut s = spec(t.path(), Standard::Erc721, Layout::Numbered);
        s.tokens[0].image_ext = "exe".into();
        let p = plan(&s, &t.path().join("x")).expect("plan");
        assert!(
            p.errors().iter().any(|f| f.message.contains(".exe")),
            "{:?}",
            p.findings
        );
        s.tokens[0].image_ext = "../png".into();
        let e = plan(&s, &t.path().join("y")).expect_err("path");
        assert!(e.to_string().contains("not a file extension"), "{e}");
    }

    #[test]
    fn a_bundle_goes_into_its_tokens_media_folder_and_names_that_could_escape_are_refused() {
        let t = tempfile::tempdir().expect("tmp");
        let mut s = spec(t.path(), Standard::Erc721, Layout::Numbered);
        let sheet = t.path().join("sheet");
        let export = t.path().join("export");
        std::fs::write(&sheet, b"sheet bytes").expect("write");
        std::fs::write(&export, b"{}").expect("write");
        let file = |path: &Path, name: &str| BundleFile {
            path: path.to_path_buf(),
            name: name.into(),
        };
        s.tokens[0].bundle = vec![file(&sheet, "knight.png"), file(&export, "knight.json")];
        let p = plan(&s, &t.path().join("x")).expect("plan");
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        let media = p.media_dir().join("0");
        assert_eq!(
            std::fs::read(media.join("knight.png")).expect("read"),
            b"sheet bytes"
        );
        assert_eq!(
            std::fs::read(media.join("knight.json")).expect("read"),
            b"{}"
        );
        assert!(
            p.media_files.iter().any(|f| f == "0/knight.json"),
            "{:?}",
            p.media_files
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.metadata_dir().join("0")).expect("read"))
                .expect("json");
        assert_eq!(json["bundle"], format!("ipfs://{}/0/", p.media_cid));
        assert_eq!(
            json["bundle_files"],
            serde_json::json!(["knight.png", "knight.json"])
        );
        // The media CID covers the bundle: the sheet's block is in the media CAR.
        let leaf = unixfs::file(
            &mut &b"sheet bytes"[..],
            &Profile::UNIXFS_V0_2015,
            &mut |_| Ok(()),
        )
        .expect("cid");
        let car = std::fs::read(&p.media_car).expect("car");
        let cid = leaf.cid.to_bytes();
        assert!(car.windows(cid.len()).any(|w| w == cid.as_slice()));
        // A token without a bundle is written as before.
        let plain: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.metadata_dir().join("1")).expect("read"))
                .expect("json");
        assert!(plain.get("bundle").is_none(), "{plain}");
        assert!(plain.get("bundle_files").is_none(), "{plain}");

        // Metaplex lists each bundle file with its type.
        let mut m = s.clone();
        m.standard = Standard::Metaplex;
        m.layout = Layout::Sugar;
        let mp = plan(&m, &t.path().join("m")).expect("plan");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(mp.metadata_dir().join("0.json")).expect("read"))
                .expect("json");
        let files = &json["properties"]["files"];
        assert_eq!(
            files[1]["uri"],
            format!("ipfs://{}/0/knight.png", mp.media_cid)
        );
        assert_eq!(files[1]["type"], "image/png");
        assert_eq!(files[2]["type"], "application/json");

        // Refused before anything is cleared: the earlier plan's folder is left whole, and a
        // fresh folder gets no half-staged media.
        s.tokens[0].bundle = vec![file(&sheet, "knight.png"), file(&export, "../x")];
        let e = plan(&s, &t.path().join("x")).expect_err("escapes");
        assert!(
            e.to_string().contains(r#"token 0: bundle file "../x""#),
            "{e}"
        );
        assert!(media.join("knight.png").is_file());
        let e = plan(&s, &t.path().join("y")).expect_err("escapes");
        assert!(e.to_string().contains("../x"), "{e}");
        assert!(!t.path().join("y").join("media").exists());
        s.tokens[0].bundle = vec![file(&sheet, "knight.png"), file(&export, "knight.png")];
        let e = plan(&s, &t.path().join("y")).expect_err("twice");
        let twice = r#"token 0: two bundle files are named "knight.png""#;
        assert!(e.to_string().contains(twice), "{e}");
        for bad in ["", "/etc/x", "a\\b", ".hidden", "a/.git/x", "a//b", "C:x"] {
            s.tokens[0].bundle = vec![file(&sheet, bad)];
            let e = plan(&s, &t.path().join("y")).expect_err(bad);
            assert!(
                e.to_string().contains("token 0: bundle file"),
                "{bad:?}: {e}"
            );
        }
    }
}
