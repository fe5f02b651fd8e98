//! The model manager: manifests (bundled in `models/`, or the user's own in
//! `<models>/manifests/`), installs under `<models>/<id>/`, downloads from the Hugging Face hub,
//! imports from local copies, hash verification and removal. The `tiny-sd` smoke model is built
//! in: it is written from a fixed seed on first use, so a clean clone generates with no download.
//!
//! Every installed file's sha256 is recorded in `<models>/<id>/mintframe-install.json`: where a
//! manifest pins a hash it must match; where it does not, the hub's own hash (the `X-Linked-Etag`
//! of an LFS file) is checked at download and the recorded hash is what `verify` checks after.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use mintframe_jobs::JobCtx;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, io};
use crate::model::{Arch, LoadOptions, Model};

/// The smoke model every install offers.
pub const TINY_ID: &str = "tiny-sd";
const INSTALL_RECORD: &str = "mintframe-install.json";
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

const BUNDLED: [&str; 6] = [
    include_str!("../../../models/sd15.json"),
    include_str!("../../../models/sd21.json"),
    include_str!("../../../models/sd-turbo.json"),
    include_str!("../../../models/sdxl.json"),
    include_str!("../../../models/sdxl-turbo.json"),
    include_str!("../../../models/layerdiffuse-sdxl.json"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `model_index.json` plus one folder per component.
    Diffusers,
    /// One A1111/Civitai `.safetensors` checkpoint.
    SingleFile,
    /// A LayerDiffuse add-on for models of its `arch`: the transparent VAE decoder (the file
    /// whose name has `decoder`) and the transparent-attention LoRA (`attn`). Not a model of its
    /// own: generations name it as their `--transparent`.
    Layerdiffuse,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Hugging Face repository, `owner/name`.
    pub repo: String,
    /// A branch, tag or commit; the commit actually served is recorded at download.
    pub revision: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative to the model's folder (and to the repository root).
    pub path: String,
    /// Pinned hash, when the manifest's author has one.
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    pub id: String,
    pub name: String,
    pub url: String,
    /// Whether outputs may be sold (e.g. minted for profit) under this licence alone.
    pub commercial: bool,
    pub summary: String,
}

impl License {
    /// One line for lists and recipes: id plus the commercial status.
    pub fn label(&self) -> String {
        if self.commercial {
            self.id.clone()
        } else {
            format!("{} (non-commercial)", self.id)
        }
    }
}

/// What the model is made for: the settings its authors recommend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defaults {
    pub scheduler: crate::SchedulerKind,
    pub steps: u32,
    pub guidance: f32,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub arch: Arch,
    pub layout: Layout,
    #[serde(default)]
    pub source: Option<Source>,
    pub files: Vec<ManifestFile>,
    pub license: License,
    pub defaults: Defaults,
    /// Written locally instead of downloaded.
    #[serde(default)]
    pub builtin: bool,
}

/// One installed file with the hash it had when installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// `<models>/<id>/mintframe-install.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallRecord {
    pub id: String,
    /// `pull`, `import` or `builtin`.
    pub how: String,
    /// The repository commit served, for pulls; the source path, for imports.
    pub origin: String,
    pub installed_ms: i64,
    pub files: Vec<InstalledFile>,
}

/// A model as `models list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub manifest: Manifest,
    pub installed: Option<InstallRecord>,
    pub folder: PathBuf,
}

/// What `verify` found, per file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheck {
    pub path: String,
    pub ok: bool,
    pub problem: Option<String>,
}

/// A model ready to load: where its weights are and what a recipe should say of them.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id: String,
    pub location: PathBuf,
    pub layout: Layout,
    pub license: Option<License>,
    pub defaults: Option<Defaults>,
    /// (path relative to the model, sha256) of every weight file.
    pub weight_files: Vec<(String, String)>,
}

impl Resolved {
    pub fn load(&self, opts: &LoadOptions) -> Result<Model> {
        match self.layout {
            Layout::Diffusers => Model::load_diffusers(&self.location, opts),
            Layout::SingleFile => Model::load_single_file(&self.location, opts),
            Layout::Layerdiffuse => Err(Error::InvalidRequest(format!(
                "`{}` is a LayerDiffuse add-on (a transparent decoder and attention), not a model \
                 to generate with: choose a model and pass `--transparent {}`",
                self.id, self.id
            ))),
        }
    }
}

/// An installed LayerDiffuse add-on: its files and the models it is for.
#[derive(Debug, Clone)]
pub struct Transparency {
    pub id: String,
    pub arch: Arch,
    pub decoder: PathBuf,
    pub attention: Option<PathBuf>,
    pub license: License,
}

#[derive(Debug, Clone)]
pub struct Manager {
    root: PathBuf,
    endpoint: String,
}

fn tiny_manifest() -> Manifest {
    Manifest {
        id: TINY_ID.into(),
        name: "Tiny SD (smoke test)".into(),
        description: "A tiny random-weight model in the real SD 1.5 diffusers layout, written on first use: it proves the pipeline end to end in seconds; its images are noise-like patterns.".into(),
        arch: Arch::Sd1,
        layout: Layout::Diffusers,
        source: None,
        files: Vec::new(),
        license: License {
            id: "mit".into(),
            name: "MIT".into(),
            url: "https://opensource.org/license/mit".into(),
            commercial: true,
            summary: "Random weights generated by Mintframe; no restrictions.".into(),
        },
        defaults: Defaults {
            scheduler: crate::SchedulerKind::EulerA,
            steps: 4,
            guidance: 7.5,
            width: 64,
            height: 64,
        },
        builtin: true,
    }
}

/// Ids become folder names: plain ASCII words only, so none escapes the models folder.
/// A user's manifest as its text, checked as installs need it: a plain id and file paths that
/// stay inside the model's folder. Public for the fuzz target.
pub fn parse_manifest(text: &str, path: &Path) -> Result<Manifest> {
    let m: Manifest = serde_json::from_str(text).map_err(|e| Error::BadConfig {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    check_id(&m.id)?;
    if m.builtin {
        return Err(Error::BadConfig {
            path: path.to_owned(),
            reason: "`builtin` is for the models compiled into Mintframe; remove it".into(),
        });
    }
    for f in &m.files {
        check_rel(&f.path)?;
    }
    Ok(m)
}

pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "model id {id:?} is not allowed: use letters, digits, `-`, `_` and `.` (not first), at most 64"
        )))
    }
}

/// A manifest's file path must stay inside the model's folder.
fn check_rel(path: &str) -> Result<()> {
    let p = Path::new(path);
    let plain = !path.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !path.contains('\\');
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "manifest file path {path:?} leaves the model folder; only plain relative paths are allowed"
        )))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where [`Manager`] keeps the hashes of weight files given by path.
const HASH_CACHE: &str = "hashes.json";

/// What a cached hash was taken of.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HashStamp {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    #[serde(default)]
    sha256: String,
}

impl HashStamp {
    fn same_file(&self, other: &HashStamp) -> bool {
        (self.size, self.mtime_ns, self.inode) == (other.size, other.mtime_ns, other.inode)
    }
}

fn file_stamp(path: &Path) -> Result<HashStamp> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(-1);
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(HashStamp {
        size: meta.len(),
        mtime_ns,
        inode,
        sha256: String::new(),
    })
}

/// Writes `value` as JSON to a temporary name beside `path` and renames it over `path`.
fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension(format!("{}.part", std::process::id()));
    let text = serde_json::to_vec_pretty(value).map_err(|e| Error::BadConfig {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    fs::write(&tmp, text).map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Streams `path` through sha256, reporting progress in bytes under `stage`.
pub fn sha256_file(path: &Path, ctx: &JobCtx, stage: &str) -> Result<(String, u64)> {
    let mut f = File::open(path).map_err(io(path))?;
    let total = f.metadata().map_err(io(path))?.len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        ctx.check()?;
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        ctx.progress(stage, done, total);
    }
    Ok((hex::encode(h.finalize()), done))
}

fn is_weight(path: &str) -> bool {
    path.ends_with(".safetensors")
}

fn refuse_pickle_name(path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if matches!(ext.as_str(), "ckpt" | "bin" | "pt" | "pth" | "pkl") {
        return Err(Error::PickleRefused {
            path: path.to_owned(),
            ext: format!(".{ext}"),
        });
    }
    Ok(())
}

impl Manager {
    /// Models live in `root` (the data dir's `models/`). Downloads go to `HF_ENDPOINT` when set
    /// (a mirror), else to huggingface.co.
    pub fn new(root: impl Into<PathBuf>) -> Manager {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        Manager::with_endpoint(root, endpoint)
    }

    pub fn with_endpoint(root: impl Into<PathBuf>, endpoint: impl Into<String>) -> Manager {
        Manager {
            root: root.into(),
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn folder(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        Ok(self.root.join(id))
    }

    fn user_manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// Every known manifest: the built-in `mintframe-sprites` and `tiny-sd`, the bundled ones,
    /// then the user's (which may override a bundled id, never a built-in one).
    pub fn manifests(&self) -> Result<Vec<Manifest>> {
        // The offline model first: the studio preselects the first model it lists.
        let mut out = vec![crate::offline::manifest(), tiny_manifest()];
        for text in BUNDLED {
            let m: Manifest = serde_json::from_str(text).map_err(|e| Error::BadConfig {
                path: PathBuf::from("models/ (bundled manifest)"),
                reason: e.to_string(),
            })?;
            out.push(m);
        }
        let dir = self.user_manifests_dir();
        if dir.is_dir() {
            let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
                .map_err(io(&dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            paths.sort();
            for p in paths {
                let text = fs::read_to_string(&p).map_err(io(&p))?;
                let m = parse_manifest(&text, &p)?;
                out.retain(|o| o.id != m.id || o.builtin);
                if !out.iter().any(|o| o.id == m.id) {
                    out.push(m);
                }
            }
        }
        for m in &out {
            for f in &m.files {
                check_rel(&f.path)?;
            }
        }
        Ok(out)
    }

    pub fn manifest(&self, id: &str) -> Result<Manifest> {
        self.manifests()?
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| Error::UnknownModel(id.to_owned()))
    }

    pub fn record(&self, id: &str) -> Result<Option<InstallRecord>> {
        let p = self.folder(id)?.join(INSTALL_RECORD);
        if !p.is_file() {
            return Ok(None);
        }
        Ok(Some(crate::config::read_json(&p)?))
    }

    fn write_record(&self, rec: &InstallRecord) -> Result<()> {
        let p = self.folder(&rec.id)?.join(INSTALL_RECORD);
        let tmp = p.with_extension("json.part");
        let text = serde_json::to_string_pretty(rec).map_err(|e| Error::BadConfig {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        fs::write(&tmp, text).map_err(io(&tmp))?;
        fs::rename(&tmp, &p).map_err(io(&p))
    }

    /// The sha256 of a weight file given by path, from `hashes.json` when the file's size,
    /// modification time and inode are those it was hashed at (as A1111's hash cache keys by
    /// modification time): a 4 GB checkpoint costs seconds to hash on every generation
    /// otherwise. A file rewritten in place to the same size within the same nanosecond would
    /// be missed; downloads and copies change the time. A cache that cannot be read is rebuilt.
    fn hash_cached(&self, path: &Path, ctx: &JobCtx) -> Result<String> {
        let key = fs::canonicalize(path)
            .map_err(io(path))?
            .to_string_lossy()
            .into_owned();
        let stamp = file_stamp(path)?;
        let cache_path = self.root.join(HASH_CACHE);
        let mut cache: BTreeMap<String, HashStamp> = fs::read(&cache_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if let Some(hit) = cache.get(&key)
            && hit.same_file(&stamp)
        {
            return Ok(hit.sha256.clone());
        }
        let (sha256, _) = sha256_file(path, ctx, "hash weights")?;
        // Hashed what is there now: a file replaced while it was read is not cached.
        if file_stamp(path)?.same_file(&stamp) {
            cache.insert(
                key,
                HashStamp {
                    sha256: sha256.clone(),
                    ..stamp
                },
            );
            // A cache is only a cache: a failed write costs the next run a hash, nothing else.
            if let Err(e) = write_json_atomic(&cache_path, &cache) {
                tracing::warn!(path = %cache_path.display(), "hash cache not written: {e}");
            }
        }
        Ok(sha256)
    }

    /// The tiny autoencoder for `model` (`--decoder tiny`): the model's own `taesd/` folder,
    /// else `<models>/taesd` (SD 1.x and 2.x latents) or `<models>/taesdxl` (SDXL), each a
    /// diffusers `AutoencoderTiny` folder as `madebyollin/taesd` and `madebyollin/taesdxl` ship.
    pub fn tiny_decoder(&self, model: &Resolved, arch: Arch) -> Result<PathBuf> {
        let own = model.location.join(crate::taesd::FOLDER);
        if model.location.is_dir() && own.is_dir() {
            return Ok(own);
        }
        let name = if arch == Arch::Sdxl {
            "taesdxl"
        } else {
            "taesd"
        };
        let shared = self.root.join(name);
        if shared.is_dir() {
            return Ok(shared);
        }
        Err(Error::InvalidRequest(format!(
            "the tiny decoder needs TAESD for {} latents and none is here: put madebyollin/{name} \
             (a diffusers AutoencoderTiny folder: config.json and \
             diffusion_pytorch_model.safetensors) at {}, or name one with --tiny-decoder PATH",
            arch.as_str(),
            shared.display()
        )))
    }

    pub fn list(&self) -> Result<Vec<ModelEntry>> {
        self.manifests()?
            .into_iter()
            .map(|m| {
                let installed = self.record(&m.id)?;
                let folder = self.folder(&m.id)?;
                Ok(ModelEntry {
                    manifest: m,
                    installed,
                    folder,
                })
            })
            .collect()
    }

    /// Holds `<models>/.<id>.lock` while a model is installed: processes that start together
    /// (four `generate` runs on a fresh data folder) wait for the one installing, then use its
    /// result, instead of building into the same `.part` folder. Released when dropped; the
    /// kernel releases it if the process dies.
    fn install_lock(&self, id: &str) -> Result<fs::File> {
        check_id(id)?;
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let p = self.root.join(format!(".{id}.lock"));
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io(&p))?;
        f.lock().map_err(io(&p))?;
        Ok(f)
    }

    /// Writes the built-in model `id` (`tiny-sd`, from its seed; `mintframe-sprites`, from the
    /// files compiled into the binary) unless it is installed as this binary would write it.
    /// An install from older weights, or one a user imported under the id before it was built
    /// in, is replaced; `fresh` replaces it in any case (a `pull`, to repair damaged files).
    pub fn ensure_builtin(&self, id: &str, ctx: &JobCtx, fresh: bool) -> Result<InstallRecord> {
        // The tiny model is an AnimateDiff pipeline folder too (`motion_adapter/`, as
        // diffusers' `AnimateDiffPipeline` saves one); installs from before it had one are
        // written again.
        let current = |r: &InstallRecord| {
            r.how == "builtin"
                && (id != TINY_ID
                    || r.files
                        .iter()
                        .any(|f| f.path == "motion_adapter/config.json"))
                && (id != crate::offline::SPRITES_ID
                    || crate::offline::pinned().iter().all(|f| {
                        r.files.iter().any(|g| {
                            g.path == f.path && Some(g.sha256.as_str()) == f.sha256.as_deref()
                        })
                    }))
        };
        if !fresh && let Some(r) = self.record(id)?.filter(current) {
            return Ok(r);
        }
        let _lock = self.install_lock(id)?;
        // Another process may have installed it while this one waited for the lock.
        if !fresh && let Some(r) = self.record(id)?.filter(current) {
            return Ok(r);
        }
        let (origin, write): (String, fn(&Path) -> Result<()>) = match id {
            TINY_ID => (
                format!("mintframe tiny model, seed {}", crate::tiny::TINY_SEED),
                |dir| {
                    crate::tiny::write_diffusers(dir, crate::tiny::TINY_SEED, false)?;
                    crate::tiny::write_motion_adapter(
                        &dir.join(crate::animate::MOTION_FOLDER),
                        &crate::tiny::tiny_config(false).unet,
                        crate::tiny::TINY_SEED,
                    )?;
                    crate::tiny::write_tiny_decoder(
                        &dir.join(crate::taesd::FOLDER),
                        8,
                        crate::tiny::TINY_SEED,
                    )
                },
            ),
            crate::offline::SPRITES_ID => (
                "mintframe offline sprite model, built in".to_owned(),
                crate::offline::write,
            ),
            other => {
                return Err(Error::InvalidRequest(format!(
                    "{other} is not a built-in model"
                )));
            }
        };
        let dir = self.folder(id)?;
        // Built beside the final folder and renamed, so a crash never leaves half a model.
        let tmp = self.root.join(format!(".{id}.part"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        let stage = format!("write {id}");
        ctx.progress(&stage, 0, 1);
        write(&tmp)?;
        let files = hash_tree(&tmp, ctx)?;
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        fs::rename(&tmp, &dir).map_err(io(&dir))?;
        let rec = InstallRecord {
            id: id.into(),
            how: "builtin".into(),
            origin,
            installed_ms: now_ms(),
            files,
        };
        self.write_record(&rec)?;
        ctx.progress(&stage, 1, 1);
        Ok(rec)
    }

    /// Downloads `id` from the hub into its folder, resuming partial files and checking every
    /// hash. Files already installed with the right hash are kept.
    pub fn pull(&self, id: &str, ctx: &JobCtx) -> Result<InstallRecord> {
        let m = self.manifest(id)?;
        if m.builtin {
            // Nothing to download: written again from the binary, which repairs damaged files.
            return self.ensure_builtin(&m.id, ctx, true);
        }
        let source = m.source.clone().ok_or_else(|| {
            Error::InvalidRequest(format!(
                "model `{id}` has no download source; install it with `mintframe models import {id} <path>`"
            ))
        })?;
        let _lock = self.install_lock(id)?;
        let dir = self.folder(id)?;
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .user_agent(format!("mintframe/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let previous = self.record(id)?;
        let mut files = Vec::new();
        let mut commit = source.revision.clone();
        let total = m.files.len() as u64;
        for (i, f) in m.files.iter().enumerate() {
            ctx.check()?;
            ctx.progress("download", i as u64, total);
            let dest = dir.join(&f.path);
            if let Some(prev) = previous
                .as_ref()
                .and_then(|r| r.files.iter().find(|x| x.path == f.path))
                && dest.is_file()
                && f.sha256.as_deref().is_none_or(|s| s == prev.sha256)
                && fs::metadata(&dest).map(|md| md.len()).ok() == Some(prev.size)
            {
                files.push(prev.clone());
                continue;
            }
            let url = format!(
                "{}/{}/resolve/{}/{}",
                self.endpoint, source.repo, source.revision, f.path
            );
            let got = download(&agent, &url, &dest, f.sha256.as_deref(), ctx)?;
            if let Some(c) = got.commit {
                commit = c;
            }
            files.push(InstalledFile {
                path: f.path.clone(),
                sha256: got.sha256,
                size: got.size,
            });
        }
        ctx.progress("download", total, total);
        let rec = InstallRecord {
            id: id.to_owned(),
            how: "pull".into(),
            origin: format!("{}@{commit}", source.repo),
            installed_ms: now_ms(),
            files,
        };
        self.write_record(&rec)?;
        Ok(rec)
    }

    /// Installs `id` from a local folder (diffusers layout) or `.safetensors` file, checking
    /// pinned hashes. An id no manifest names becomes the user's own model: its manifest is
    /// written from what the weights are (`arch`), with the licence unknown until they set it.
    pub fn import(&self, id: &str, src: &Path, ctx: &JobCtx) -> Result<InstallRecord> {
        check_id(id)?;
        if self.manifest(id).is_ok_and(|m| m.builtin) {
            return Err(Error::InvalidRequest(format!(
                "{id} is built in; choose another id for your model"
            )));
        }
        if !src.exists() {
            return Err(Error::Io {
                path: src.to_owned(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        let known = match self.manifest(id) {
            Ok(m) => Some(m),
            Err(Error::UnknownModel(_)) => None,
            Err(e) => return Err(e),
        };
        let _lock = self.install_lock(id)?;
        let dir = self.folder(id)?;
        let tmp = self.root.join(format!(".{id}.part"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let layout = match &known {
            Some(m) if m.layout == Layout::Layerdiffuse && src.is_dir() => Layout::Layerdiffuse,
            _ if src.is_dir() => Layout::Diffusers,
            _ => Layout::SingleFile,
        };
        let rels: Vec<String> = match (&known, layout) {
            (Some(m), _) if m.layout != layout => {
                return Err(Error::InvalidRequest(format!(
                    "model `{id}` is a {:?} model but {} is a {}",
                    m.layout,
                    src.display(),
                    if src.is_dir() { "folder" } else { "file" }
                )));
            }
            (Some(m), _) => m.files.iter().map(|f| f.path.clone()).collect(),
            (None, Layout::Diffusers) => walk_rel(src)?
                .into_iter()
                .filter(|p| p.ends_with(".json") || p.ends_with(".safetensors"))
                .collect(),
            (None, Layout::SingleFile) => {
                refuse_pickle_name(src)?;
                vec!["model.safetensors".to_owned()]
            }
            (None, Layout::Layerdiffuse) => {
                return Err(Error::InvalidRequest(
                    "a LayerDiffuse add-on is imported under its manifest's id".into(),
                ));
            }
        };
        for rel in &rels {
            check_rel(rel)?;
            let from = if layout == Layout::SingleFile {
                src.to_owned()
            } else {
                src.join(rel)
            };
            if !from.is_file() {
                let _ = fs::remove_dir_all(&tmp);
                return Err(Error::MissingComponent {
                    folder: src.to_owned(),
                    component: rel.clone(),
                });
            }
            let to = tmp.join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            copy_with_progress(&from, &to, ctx)?;
        }
        let files = hash_tree(&tmp, ctx)?;
        if let Some(m) = &known {
            for f in &m.files {
                if let (Some(want), Some(got)) =
                    (&f.sha256, files.iter().find(|x| x.path == f.path))
                    && !want.eq_ignore_ascii_case(&got.sha256)
                {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(Error::HashMismatch {
                        path: src.join(&f.path),
                        found: got.sha256.clone(),
                        expected: want.clone(),
                    });
                }
            }
        }
        // Load once before installing: a broken copy is refused with the loader's reason.
        let probe = Resolved {
            id: id.to_owned(),
            location: match layout {
                Layout::Diffusers | Layout::Layerdiffuse => tmp.clone(),
                Layout::SingleFile => tmp.join("model.safetensors"),
            },
            layout,
            license: None,
            defaults: None,
            weight_files: Vec::new(),
        };
        let checked = match (&known, layout) {
            (Some(m), Layout::Layerdiffuse) => check_addon(&tmp, m).map(|()| m.arch),
            _ => check_loadable(&probe),
        };
        let arch = match checked {
            Ok(a) => a,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        fs::rename(&tmp, &dir).map_err(io(&dir))?;
        if known.is_none() {
            let manifest = Manifest {
                id: id.to_owned(),
                name: id.to_owned(),
                description: format!("Imported from {}", src.display()),
                arch,
                layout,
                source: None,
                files: files
                    .iter()
                    .map(|f| ManifestFile {
                        path: f.path.clone(),
                        sha256: Some(f.sha256.clone()),
                    })
                    .collect(),
                license: License {
                    id: "unknown".into(),
                    name: "Unknown".into(),
                    url: String::new(),
                    commercial: false,
                    summary: format!(
                        "Imported weights: check their model card and set the licence in {}",
                        self.user_manifests_dir()
                            .join(format!("{id}.json"))
                            .display()
                    ),
                },
                defaults: default_for(arch),
                builtin: false,
            };
            let mdir = self.user_manifests_dir();
            fs::create_dir_all(&mdir).map_err(io(&mdir))?;
            let p = mdir.join(format!("{id}.json"));
            let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::BadConfig {
                path: p.clone(),
                reason: e.to_string(),
            })?;
            fs::write(&p, text).map_err(io(&p))?;
        }
        let rec = InstallRecord {
            id: id.to_owned(),
            how: "import".into(),
            origin: src.display().to_string(),
            installed_ms: now_ms(),
            files,
        };
        self.write_record(&rec)?;
        Ok(rec)
    }

    /// Re-hashes every installed file against the manifest's pinned hash, else the recorded one.
    pub fn verify(&self, id: &str, ctx: &JobCtx) -> Result<Vec<FileCheck>> {
        let m = self.manifest(id)?;
        let rec = self
            .record(id)?
            .ok_or_else(|| Error::NotInstalled { id: id.to_owned() })?;
        let dir = self.folder(id)?;
        let mut out = Vec::new();
        for f in &rec.files {
            let p = dir.join(&f.path);
            let want = m
                .files
                .iter()
                .find(|x| x.path == f.path)
                .and_then(|x| x.sha256.clone())
                .unwrap_or_else(|| f.sha256.clone());
            let problem = if !p.is_file() {
                Some("missing".to_owned())
            } else {
                let (got, _) = sha256_file(&p, ctx, &format!("verify {}", f.path))?;
                (!got.eq_ignore_ascii_case(&want))
                    .then(|| format!("sha256 is {got}, expected {want}"))
            };
            out.push(FileCheck {
                path: f.path.clone(),
                ok: problem.is_none(),
                problem,
            });
        }
        Ok(out)
    }

    /// Deletes an installed model's folder. Returns the bytes freed.
    pub fn remove(&self, id: &str) -> Result<u64> {
        let dir = self.folder(id)?;
        if !dir.is_dir() {
            return Err(Error::NotInstalled { id: id.to_owned() });
        }
        let freed = walk_rel(&dir)?
            .iter()
            .filter_map(|r| fs::metadata(dir.join(r)).ok())
            .map(|m| m.len())
            .sum();
        fs::remove_dir_all(&dir).map_err(io(&dir))?;
        Ok(freed)
    }

    /// An id from the manifests (installing a built-in model on first use), or a path to a
    /// diffusers folder or a `.safetensors` file.
    pub fn resolve(&self, id_or_path: &str, ctx: &JobCtx) -> Result<Resolved> {
        let as_path = Path::new(id_or_path);
        let looks_like_path = id_or_path.contains('/')
            || id_or_path.contains('\\')
            || id_or_path.ends_with(".safetensors")
            || id_or_path.ends_with(".ckpt");
        if looks_like_path || (as_path.exists() && check_id(id_or_path).is_err()) {
            refuse_pickle_name(as_path)?;
            let layout = if as_path.is_dir() {
                Layout::Diffusers
            } else {
                Layout::SingleFile
            };
            let weights: Vec<String> = if as_path.is_dir() {
                walk_rel(as_path)?
                    .into_iter()
                    .filter(|p| is_weight(p))
                    .collect()
            } else {
                vec![
                    as_path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ]
            };
            let mut weight_files = Vec::new();
            for w in weights {
                let p = if as_path.is_dir() {
                    as_path.join(&w)
                } else {
                    as_path.to_owned()
                };
                if !p.exists() {
                    return Err(Error::Io {
                        path: p,
                        source: io::Error::new(io::ErrorKind::NotFound, "no such file or folder"),
                    });
                }
                let sha = self.hash_cached(&p, ctx)?;
                weight_files.push((w, sha));
            }
            return Ok(Resolved {
                id: as_path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| id_or_path.to_owned()),
                location: as_path.to_owned(),
                layout,
                license: None,
                defaults: None,
                weight_files,
            });
        }
        let m = self.manifest(id_or_path)?;
        let rec = if m.builtin {
            self.ensure_builtin(&m.id, ctx, false)?
        } else {
            self.record(&m.id)?
                .ok_or_else(|| Error::NotInstalled { id: m.id.clone() })?
        };
        let dir = self.folder(&m.id)?;
        let location = match m.layout {
            Layout::Diffusers | Layout::Layerdiffuse => dir,
            Layout::SingleFile => dir.join(
                rec.files
                    .iter()
                    .find(|f| is_weight(&f.path))
                    .map(|f| f.path.clone())
                    .unwrap_or_else(|| "model.safetensors".into()),
            ),
        };
        Ok(Resolved {
            id: m.id.clone(),
            location,
            layout: m.layout,
            license: Some(m.license.clone()),
            defaults: Some(m.defaults.clone()),
            weight_files: rec
                .files
                .iter()
                .filter(|f| is_weight(&f.path))
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect(),
        })
    }
}

/// What a model of `arch` is made for, when no manifest says otherwise: the one table of
/// defaults besides the manifests themselves.
pub fn default_for(arch: Arch) -> Defaults {
    let (w, steps, g) = match arch {
        Arch::Sd1 => (512, 25, 7.5),
        Arch::Sd2 => (768, 25, 7.0),
        Arch::Sdxl => (1024, 30, 6.0),
    };
    Defaults {
        scheduler: crate::SchedulerKind::DpmPp2mKarras,
        steps,
        guidance: g,
        width: w,
        height: w,
    }
}

/// Loads the configs and opens every weight file without computing: the cheapest full check that
/// an import is usable (random models are not involved: this reads the real files).
/// The decoder and attention files of a LayerDiffuse add-on, by their names in the manifest.
fn addon_files(dir: &Path, m: &Manifest) -> (Option<PathBuf>, Option<PathBuf>) {
    let find = |word: &str| {
        m.files
            .iter()
            .find(|f| f.path.contains(word) && is_weight(&f.path))
            .map(|f| dir.join(&f.path))
    };
    (find("decoder"), find("attn"))
}

/// Loads an add-on's files once: a decoder that is not one, or attention for another base,
/// is refused before it is installed.
fn check_addon(dir: &Path, m: &Manifest) -> Result<()> {
    let (decoder, attention) = addon_files(dir, m);
    let decoder = decoder.ok_or_else(|| {
        Error::InvalidRequest(format!("the manifest of `{}` names no decoder file", m.id))
    })?;
    crate::layerdiffuse::TransparentDecoder::load(
        &decoder,
        "",
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )?;
    if let Some(a) = attention {
        let lora = crate::weights::Lora::load(&a, 1.0)?;
        let want = match m.arch {
            Arch::Sd1 => 768,
            Arch::Sd2 => 1024,
            Arch::Sdxl => 2048,
        };
        if let Some(c) = lora.context_dim()
            && c != want
        {
            return Err(Error::Lora {
                path: a,
                reason: format!(
                    "its text context is {c} wide but `{}` is for {} ({want}): this file is for another base model",
                    m.id,
                    m.arch.as_str()
                ),
            });
        }
    }
    Ok(())
}

impl Manager {
    /// The installed LayerDiffuse add-on `id`, with its decoder and attention files.
    pub fn transparency(&self, id: &str) -> Result<Transparency> {
        let m = self.manifest(id)?;
        if m.layout != Layout::Layerdiffuse {
            return Err(Error::InvalidRequest(format!(
                "`{id}` is a model, not a LayerDiffuse add-on: `mintframe models list` shows the add-ons"
            )));
        }
        if self.record(id)?.is_none() {
            return Err(Error::NotInstalled { id: id.to_owned() });
        }
        let dir = self.folder(id)?;
        let (decoder, attention) = addon_files(&dir, &m);
        Ok(Transparency {
            id: m.id.clone(),
            arch: m.arch,
            decoder: decoder.ok_or_else(|| {
                Error::InvalidRequest(format!("the manifest of `{id}` names no decoder file"))
            })?,
            attention,
            license: m.license,
        })
    }
}

fn check_loadable(r: &Resolved) -> Result<Arch> {
    let opts = LoadOptions::default();
    let model = r.load(&opts)?;
    Ok(model.config.arch)
}

/// Every file under `root`, as sorted relative paths with `/` separators.
fn walk_rel(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let p = e.path();
            let ft = e.file_type().map_err(io(&p))?;
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file()
                && let Ok(rel) = p.strip_prefix(root)
            {
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(rel.join("/"));
            }
        }
    }
    out.retain(|p| p != INSTALL_RECORD && !p.ends_with(".part"));
    out.sort();
    Ok(out)
}

fn hash_tree(root: &Path, ctx: &JobCtx) -> Result<Vec<InstalledFile>> {
    walk_rel(root)?
        .into_iter()
        .map(|rel| {
            let (sha256, size) = sha256_file(&root.join(&rel), ctx, &format!("hash {rel}"))?;
            Ok(InstalledFile {
                path: rel,
                sha256,
                size,
            })
        })
        .collect()
}

fn copy_with_progress(from: &Path, to: &Path, ctx: &JobCtx) -> Result<()> {
    let mut src = File::open(from).map_err(io(from))?;
    let total = src.metadata().map_err(io(from))?.len();
    let mut dst = File::create(to).map_err(io(to))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let stage = format!("copy {}", from.display());
    loop {
        ctx.check()?;
        let n = src.read(&mut buf).map_err(io(from))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n]).map_err(io(to))?;
        done += n as u64;
        ctx.progress(&stage, done, total);
    }
    dst.sync_all().map_err(io(to))
}

struct Downloaded {
    sha256: String,
    size: u64,
    commit: Option<String>,
}

/// GETs `url` into `dest` through `dest.part`, resuming a partial download with a Range request,
/// then checks the pinned hash or else the hub's (`X-Linked-Etag` / `ETag` of LFS files).
fn download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    pinned: Option<&str>,
    ctx: &JobCtx,
) -> Result<Downloaded> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    if let Ok(token) = std::env::var("HF_TOKEN")
        && !token.is_empty()
    {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let offline = |reason: String| Error::Offline {
        url: url.to_owned(),
        reason,
    };
    let resp = req.call().map_err(|e| offline(e.to_string()))?;
    let status = resp.status().as_u16();
    match status {
        200 | 206 => {}
        401 | 403 => {
            return Err(Error::InvalidRequest(format!(
                "{url}: HTTP {status}; this repository is gated: accept its licence on huggingface.co and set HF_TOKEN"
            )));
        }
        404 => {
            return Err(Error::InvalidRequest(format!(
                "{url}: HTTP 404; the manifest names a file or revision the repository does not have"
            )));
        }
        s => return Err(offline(format!("the server answered HTTP {s}"))),
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| {
                s.trim_matches('"')
                    .trim_start_matches("W/")
                    .trim_matches('"')
            })
            .map(str::to_owned)
    };
    let commit = header("x-repo-commit");
    let hub_sha = header("x-linked-etag")
        .or_else(|| header("etag"))
        .filter(|e| e.len() == 64 && e.chars().all(|c| c.is_ascii_hexdigit()));
    let resumed = status == 206 && have > 0;
    let mut out = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .read(true)
        .truncate(!resumed)
        .open(&part)
        .map_err(io(&part))?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    if resumed {
        // The part already on disk joins the hash before the rest streams in.
        out.seek(io::SeekFrom::Start(0)).map_err(io(&part))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = out.read(&mut buf).map_err(io(&part))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            done += n as u64;
        }
    }
    let total = resp.body().content_length().map(|n| n + done).unwrap_or(0);
    let stage = format!(
        "download {}",
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        ctx.check()?;
        let n = body.read(&mut buf).map_err(|e| {
            offline(format!(
                "the download stopped after {done} bytes: {e}; run the same command again to resume"
            ))
        })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io(&part))?;
        hasher.update(&buf[..n]);
        done += n as u64;
        ctx.progress(&stage, done, total);
    }
    out.sync_all().map_err(io(&part))?;
    drop(out);
    let sha = hex::encode(hasher.finalize());
    if let Some(want) = pinned.map(str::to_owned).or(hub_sha)
        && !want.eq_ignore_ascii_case(&sha)
    {
        // A bad part must not be resumed from.
        let _ = fs::remove_file(&part);
        return Err(Error::HashMismatch {
            path: dest.to_owned(),
            found: sha,
            expected: want,
        });
    }
    fs::rename(&part, dest).map_err(io(dest))?;
    Ok(Downloaded {
        sha256: sha,
        size: done,
        commit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weight_file_given_by_path_is_hashed_once_until_it_changes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let m = Manager::with_endpoint(tmp.path().join("models"), "http://127.0.0.1:9");
        let file = tmp.path().join("a.safetensors");
        fs::write(&file, b"first weights").expect("write");
        let sha = |m: &Manager| {
            m.resolve(file.to_str().expect("utf-8"), &JobCtx::detached())
                .expect("resolve")
                .weight_files[0]
                .1
                .clone()
        };
        let first = sha(&m);
        assert_eq!(first, hex::encode(Sha256::digest(b"first weights")));
        // The second run reads the cache: shown by a cached value no hash could give.
        let cache_path = tmp.path().join("models").join(HASH_CACHE);
        let text = fs::read_to_string(&cache_path).expect("cache written");
        fs::write(&cache_path, text.replace(&first, &"f".repeat(64))).expect("tamper");
        assert_eq!(sha(&m), "f".repeat(64));
        // Rewritten (same size, new time): hashed again.
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&file, b"other weights").expect("rewrite");
        assert_eq!(sha(&m), hex::encode(Sha256::digest(b"other weights")));
        // An unreadable cache is rebuilt, not an error.
        fs::write(&cache_path, b"{not json").expect("corrupt");
        assert_eq!(sha(&m), hex::encode(Sha256::digest(b"other weights")));
        let rebuilt: BTreeMap<String, HashStamp> =
            serde_json::from_slice(&fs::read(&cache_path).expect("cache")).expect("json");
        assert_eq!(
            rebuilt
                .values()
                .map(|h| h.sha256.clone())
                .collect::<Vec<_>>(),
            vec![hex::encode(Sha256::digest(b"other weights"))]
        );
    }

    #[test]
    fn bundled_manifests_parse_and_turbo_models_say_non_commercial() {
        let m = Manager::with_endpoint("/nonexistent", "http://127.0.0.1:9");
        let all = m.manifests().expect("manifests");
        let ids: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
        for id in [
            crate::offline::SPRITES_ID,
            TINY_ID,
            "sd15",
            "sd21",
            "sd-turbo",
            "sdxl",
            "sdxl-turbo",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        for m in &all {
            let turbo = m.id.contains("turbo");
            assert_eq!(!m.license.commercial, turbo, "{}", m.id);
            if turbo {
                assert!(m.license.label().contains("non-commercial"));
                assert_eq!(m.defaults.guidance, 0.0);
            }
            for f in &m.files {
                check_rel(&f.path).expect("plain path");
            }
            match m.layout {
                // An add-on: a decoder and an attention file, no pipeline.
                Layout::Layerdiffuse => {
                    let (dec, att) = addon_files(Path::new("."), m);
                    assert!(dec.is_some() && att.is_some(), "{}", m.id);
                }
                _ if !m.builtin => assert!(
                    m.files.iter().any(|f| f.path == "model_index.json"),
                    "{}",
                    m.id
                ),
                _ => {}
            }
        }
        assert!(ids.contains(&"layerdiffuse-sdxl"), "{ids:?}");
    }

    #[test]
    fn the_built_in_sprite_model_is_written_again_when_damaged_or_from_older_weights() {
        use crate::offline::SPRITES_ID;
        let tmp = tempfile::tempdir().expect("tmp");
        let m = Manager::with_endpoint(tmp.path(), "http://127.0.0.1:9");
        let ctx = JobCtx::detached();
        let first = m.ensure_builtin(SPRITES_ID, &ctx, false).expect("install");
        let unet = m
            .folder(SPRITES_ID)
            .expect("folder")
            .join("unet/diffusion_pytorch_model.safetensors");
        let good = fs::read(&unet).expect("unet");

        // Damaged on disk: verify says so, pull writes it again from the binary.
        fs::write(&unet, b"damaged").expect("write");
        let bad: Vec<FileCheck> = m
            .verify(SPRITES_ID, &ctx)
            .expect("verify")
            .into_iter()
            .filter(|c| !c.ok)
            .collect();
        assert_eq!(bad.len(), 1, "{bad:?}");
        m.pull(SPRITES_ID, &ctx).expect("pull");
        assert_eq!(fs::read(&unet).expect("unet"), good);
        assert!(
            m.verify(SPRITES_ID, &ctx)
                .expect("verify")
                .iter()
                .all(|c| c.ok)
        );

        // Installed by an older Mintframe, whose weights hashed otherwise: replaced on use.
        let mut old = first.clone();
        for f in &mut old.files {
            f.sha256 = "0".repeat(64);
        }
        m.write_record(&old).expect("record");
        fs::write(&unet, b"older weights").expect("write");
        m.resolve(SPRITES_ID, &ctx).expect("resolve");
        assert_eq!(fs::read(&unet).expect("unet"), good);

        // Its id cannot be imported over, nor claimed by a user's manifest.
        let e = m
            .import(SPRITES_ID, tmp.path(), &ctx)
            .expect_err("built in");
        assert!(e.to_string().contains("built in"), "{e}");
        let e = parse_manifest(
            r#"{"id": "mine", "name": "Mine", "arch": "sd1", "layout": "diffusers", "files": [],
                "license": {"id": "mit", "name": "MIT", "url": "", "commercial": true, "summary": ""},
                "defaults": {"scheduler": "euler", "steps": 20, "guidance": 5.0, "width": 64, "height": 64},
                "builtin": true}"#,
            Path::new("mine.json"),
        )
        .expect_err("builtin is not for users");
        assert!(e.to_string().contains("builtin"), "{e}");
    }

    #[test]
    fn ids_and_paths_cannot_escape_the_models_folder() {
        for bad in [
            "../x",
            "a/b",
            "",
            ".hidden",
            "a\\b",
            "x".repeat(65).as_str(),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        check_id("sd15-my_model.v2").expect("ok");
        for bad in [
            "../unet.safetensors",
            "/etc/passwd",
            "unet/../../x",
            "a\\..\\b",
        ] {
            assert!(check_rel(bad).is_err(), "{bad:?}");
        }
        check_rel("unet/diffusion_pytorch_model.safetensors").expect("ok");
    }
}
