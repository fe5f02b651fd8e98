//! The local asset library: one data folder holding `library.sqlite3` (WAL mode) and a
//! content-addressed file store. Every asset keeps its files and its recipe; jobs and publish
//! records live beside them.
//!
//! Invariant: no row ever names a missing or partial file (see [`store`] for how).

mod check;
mod jobs;
mod publish;
mod schema;
mod store;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use mintframe_jobs::{Cancelled, JobCtx};
use mintframe_types::{AssetDetail, AssetFile, AssetId, AssetKind, AssetSummary, JobId, Recipe};
use rusqlite::{Connection, OptionalExtension, params};

pub use check::{CheckReport, Decode, RepairReport, Undecodable};
pub use jobs::StoredJob;
pub use publish::{PublishItem, PublishRecord};
pub use store::{CleanUp, StoredFile};

pub const DB_FILE: &str = "library.sqlite3";

/// Everything that can go wrong in the library, each naming the path or id and the way out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LibraryError {
    #[error(
        "cannot use the data folder {path}: {source}. Choose a writable folder with --data-dir or MINTFRAME_DATA_DIR"
    )]
    DataDir { path: PathBuf, source: io::Error },
    #[error(
        "the disk holding {path} is full: {source}. Nothing was stored; free some space and try again"
    )]
    DiskFull { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot read the file being imported: {source}")]
    ReadSource { source: io::Error },
    #[error(
        "the library database {path} is damaged ({reason}). Run `mintframe library check --repair`: it keeps every stored file and rebuilds the database"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "the library database {path} has schema version {found}, newer than this Mintframe knows ({known}); update Mintframe"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("library database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("no asset {0} in the library; `mintframe library list` shows the ids")]
    AssetNotFound(AssetId),
    #[error(
        "{prefix:?} is the start of several ids: {}{}; give more of the id",
        matches.iter().take(10).cloned().collect::<Vec<_>>().join(", "),
        if matches.len() > 10 { ", …" } else { "" }
    )]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("no job {0}; `mintframe jobs list` shows the ids")]
    JobNotFound(String),
    #[error("no {0}; `mintframe publish list` shows them")]
    NotFound(String),
    #[error("file name {0:?} is not allowed: it must be a plain name with no folder part")]
    BadFileName(String),
    #[error("stored data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl LibraryError {
    pub(crate) fn data_dir(path: &Path, source: io::Error) -> LibraryError {
        LibraryError::DataDir {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn write(path: &Path, source: io::Error) -> LibraryError {
        if source.kind() == io::ErrorKind::StorageFull {
            LibraryError::DiskFull {
                path: path.to_path_buf(),
                source,
            }
        } else {
            LibraryError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// A file to attach to a new asset.
#[derive(Debug)]
pub struct NewFile {
    pub role: String,
    pub file_name: String,
    pub mime: String,
    pub stored: StoredFile,
}

/// An asset about to be added.
#[derive(Debug)]
pub struct NewAsset {
    pub kind: AssetKind,
    pub name: String,
    pub recipe: Option<Recipe>,
    pub files: Vec<NewFile>,
    /// The job making it: the asset joins the job's outputs in the same transaction, so a job
    /// resumed after a crash never makes it twice.
    pub job: Option<JobId>,
}

/// An open library. Cheap to share behind an `Arc`; calls serialise on one connection.
#[derive(Debug)]
pub struct Library {
    data_dir: PathBuf,
    db_path: PathBuf,
    conn: Mutex<Connection>,
    store: store::Store,
    owner: OwnerLock,
}

impl Library {
    /// Opens (creating if needed) the library in `data_dir`, migrates it and cleans up what an
    /// earlier crash left behind.
    pub fn open(data_dir: &Path) -> Result<Library, LibraryError> {
        Library::open_inner(data_dir, true)
    }

    /// `clean` false skips the clean-up: repair must see orphans to adopt them, not delete them.
    fn open_inner(data_dir: &Path, clean: bool) -> Result<Library, LibraryError> {
        fs::create_dir_all(data_dir).map_err(|e| LibraryError::data_dir(data_dir, e))?;
        let owner = OwnerLock::acquire(data_dir)?;
        let store = store::Store::open(data_dir, &owner.name)?;
        let db_path = data_dir.join(DB_FILE);
        let conn = open_db(&db_path)?;
        let lib = Library {
            data_dir: data_dir.to_path_buf(),
            db_path,
            conn: Mutex::new(conn),
            store,
            owner,
        };
        if !clean {
            return Ok(lib);
        }
        let cleaned = lib.clean_up()?;
        if cleaned != CleanUp::default() {
            tracing::info!(?cleaned, "removed what an interrupted write left behind");
        }
        Ok(lib)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The name under which this process owns the jobs it runs.
    pub fn owner(&self) -> &str {
        &self.owner.name
    }

    /// Whether the process that took `owner` still runs (it holds its lock until it exits).
    pub fn owner_alive(&self, owner: &str) -> bool {
        owner == self.owner.name || OwnerLock::is_held(&self.data_dir, owner)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes temp files and unreferenced stored files that no live writer holds.
    pub fn clean_up(&self) -> Result<CleanUp, LibraryError> {
        self.store.clean_up(
            &|sha| {
                let conn = self.conn();
                let n: i64 =
                    conn.query_row("SELECT count(*) FROM files WHERE sha256 = ?1", [sha], |r| {
                        r.get(0)
                    })?;
                Ok(n > 0)
            },
            &|owner| self.owner_alive(owner),
        )
    }

    /// Streams `src` into the file store. The result must be attached to an asset with
    /// [`Library::add_asset`]; dropped unattached, the next clean-up removes the file.
    pub fn store(
        &self,
        src: &mut dyn io::Read,
        total_hint: u64,
        ctx: &JobCtx,
    ) -> Result<StoredFile, LibraryError> {
        self.store.put(src, total_hint, ctx)
    }

    /// Where a stored file lives on disk.
    pub fn file_path(&self, sha256: &str) -> PathBuf {
        self.store.path_of(sha256)
    }

    /// Adds an asset whose files are already stored, in one transaction.
    pub fn add_asset(&self, asset: NewAsset) -> Result<AssetId, LibraryError> {
        for f in &asset.files {
            check_file_name(&f.file_name)?;
        }
        let id = AssetId(uuid::Uuid::now_v7().to_string());
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let recipe_id = match &asset.recipe {
            Some(r) => {
                tx.execute(
                    "INSERT INTO recipes(json) VALUES (?1)",
                    [serde_json::to_string(r)?],
                )?;
                Some(tx.last_insert_rowid())
            }
            None => None,
        };
        tx.execute(
            "INSERT INTO assets(id, kind, name, created_ms, recipe_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.0, asset.kind.as_str(), asset.name, now, recipe_id],
        )?;
        for f in &asset.files {
            tx.execute(
                "INSERT OR IGNORE INTO files(sha256, size_bytes, created_ms) VALUES (?1, ?2, ?3)",
                params![f.stored.sha256, f.stored.size_bytes as i64, now],
            )?;
            tx.execute(
                "INSERT INTO asset_files(asset_id, role, file_name, sha256, mime) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.0, f.role, f.file_name, f.stored.sha256, f.mime],
            )?;
        }
        if let Some(job) = &asset.job {
            jobs::append_output(&tx, job, &id)?;
        }
        tx.commit()?;
        // The files' locks are released only now, when rows name them.
        drop(asset);
        Ok(id)
    }

    /// Imports one file from disk as a new asset of `kind`, served as `mime`. The caller has
    /// checked what the file is (the studio decodes it first); a file that is not a regular
    /// file is refused here too, before it is opened, so a FIFO cannot block the import.
    pub fn import_file(
        &self,
        path: &Path,
        kind: AssetKind,
        mime: &str,
        job: Option<&JobId>,
        ctx: &JobCtx,
    ) -> Result<AssetId, LibraryError> {
        let io_err = |e| LibraryError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let meta = fs::metadata(path).map_err(io_err)?;
        if !meta.is_file() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mut src = File::open(path).map_err(io_err)?;
        let size = src.metadata().map_err(io_err)?.len();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(sanitize_file_name)
            .unwrap_or_else(|| "file".to_owned());
        let stored = self.store(&mut src, size, ctx).map_err(|e| match e {
            LibraryError::ReadSource { source } => io_err(source),
            other => other,
        })?;
        let name = Path::new(&file_name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&file_name)
            .to_owned();
        self.add_asset(NewAsset {
            kind,
            name,
            recipe: None,
            job: job.cloned(),
            files: vec![NewFile {
                role: "main".to_owned(),
                mime: mime.to_owned(),
                file_name,
                stored,
            }],
        })
    }

    pub fn list_assets(&self) -> Result<Vec<AssetSummary>, LibraryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "{SUMMARY_SELECT} ORDER BY a.created_ms DESC, a.id DESC"
        ))?;
        let rows = stmt.query_map([], summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn asset(&self, id: &AssetId) -> Result<AssetDetail, LibraryError> {
        let conn = self.conn();
        let summary = conn
            .query_row(
                &format!("{SUMMARY_SELECT} WHERE a.id = ?1"),
                [&id.0],
                summary_from_row,
            )
            .optional()?
            .ok_or_else(|| LibraryError::AssetNotFound(id.clone()))?;
        let recipe_json: Option<String> = conn
            .query_row(
                "SELECT r.json FROM assets a JOIN recipes r ON r.id = a.recipe_id WHERE a.id = ?1",
                [&id.0],
                |r| r.get(0),
            )
            .optional()?;
        let recipe = recipe_json.map(|j| serde_json::from_str(&j)).transpose()?;
        let mut stmt = conn.prepare(
            "SELECT af.role, af.file_name, af.sha256, f.size_bytes, af.mime
             FROM asset_files af JOIN files f ON f.sha256 = af.sha256
             WHERE af.asset_id = ?1 ORDER BY af.role",
        )?;
        let files = stmt
            .query_map([&id.0], |r| {
                Ok(AssetFile {
                    role: r.get(0)?,
                    file_name: r.get(1)?,
                    sha256: r.get(2)?,
                    size_bytes: r.get::<_, i64>(3)? as u64,
                    mime: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(AssetDetail {
            summary,
            files,
            recipe,
        })
    }

    /// Finds an asset by its full id or a unique prefix of at least 4 characters.
    pub fn resolve_id(&self, prefix: &str) -> Result<AssetId, LibraryError> {
        self.unique_id_with_prefix("assets", prefix)?
            .map(AssetId)
            .ok_or_else(|| LibraryError::AssetNotFound(AssetId(prefix.to_owned())))
    }

    /// The one id in `table` starting with `prefix` (4+ characters), if exactly one does; a
    /// prefix several ids share is an error that lists them.
    pub(crate) fn unique_id_with_prefix(
        &self,
        table: &'static str,
        prefix: &str,
    ) -> Result<Option<String>, LibraryError> {
        if prefix.len() < 4 {
            return Ok(None);
        }
        let conn = self.conn();
        // `instr` = 1, not LIKE: ids are compared as they are written, `_` and `%` included.
        let mut stmt = conn.prepare(&format!(
            "SELECT id FROM {table} WHERE instr(id, ?1) = 1 ORDER BY id LIMIT 11"
        ))?;
        let ids: Vec<String> = stmt
            .query_map([prefix], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if ids.len() > 1 {
            return Err(LibraryError::Ambiguous {
                prefix: prefix.to_owned(),
                matches: ids,
            });
        }
        Ok(ids.into_iter().next())
    }

    /// Removes an asset. Its files go too unless another asset shares them.
    pub fn remove_asset(&self, id: &AssetId) -> Result<(), LibraryError> {
        let unreferenced: Vec<String> = {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let shas: Vec<String> = {
                let mut stmt = tx.prepare("SELECT sha256 FROM asset_files WHERE asset_id = ?1")?;
                stmt.query_map([&id.0], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let removed = tx.execute("DELETE FROM assets WHERE id = ?1", [&id.0])?;
            if removed == 0 {
                return Err(LibraryError::AssetNotFound(id.clone()));
            }
            let mut gone = Vec::new();
            for sha in shas {
                let n = tx.execute(
                    "DELETE FROM files WHERE sha256 = ?1
                     AND NOT EXISTS (SELECT 1 FROM asset_files WHERE sha256 = ?1)",
                    [&sha],
                )?;
                if n > 0 {
                    gone.push(sha);
                }
            }
            tx.execute(
                "DELETE FROM recipes WHERE id NOT IN (SELECT recipe_id FROM assets WHERE recipe_id IS NOT NULL)",
                [],
            )?;
            tx.commit()?;
            gone
        };
        // Unlinked after the commit: a crash in between leaves an orphan that clean-up removes,
        // never a row without its file.
        for sha in unreferenced {
            store::remove_quietly(&self.store.path_of(&sha));
        }
        Ok(())
    }

    /// Copies an asset's files (and its recipe as JSON) into `dest`, which is created if needed.
    /// Returns the paths written.
    pub fn export_asset(&self, id: &AssetId, dest: &Path) -> Result<Vec<PathBuf>, LibraryError> {
        let detail = self.asset(id)?;
        fs::create_dir_all(dest).map_err(|e| LibraryError::write(dest, e))?;
        let mut written = Vec::new();
        for f in &detail.files {
            let target = dest.join(sanitize_file_name(&f.file_name));
            let src = self.store.path_of(&f.sha256);
            write_atomically(&target, |tmp| {
                fs::copy(&src, tmp).map(|_| ()).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => LibraryError::Io {
                        path: src.clone(),
                        source: e,
                    },
                    _ => LibraryError::write(tmp, e),
                })
            })?;
            written.push(target);
        }
        if let Some(recipe) = &detail.recipe {
            let target = dest.join(format!(
                "{}.recipe.json",
                sanitize_file_name(&detail.summary.name)
            ));
            let json = serde_json::to_vec_pretty(recipe)?;
            write_atomically(&target, |tmp| {
                fs::write(tmp, &json).map_err(|e| LibraryError::write(tmp, e))
            })?;
            written.push(target);
        }
        Ok(written)
    }
}

/// The columns `summary_from_row` reads, with each asset's total file size.
const SUMMARY_SELECT: &str = "SELECT a.id, a.kind, a.name, a.created_ms,
    COALESCE((SELECT sum(f.size_bytes) FROM asset_files af JOIN files f ON f.sha256 = af.sha256
              WHERE af.asset_id = a.id), 0),
    (SELECT json_extract(r.json, '$.prompt') FROM recipes r
       WHERE r.id = a.recipe_id AND json_valid(r.json)),
    (SELECT json_extract(r.json, '$.model_id') FROM recipes r
       WHERE r.id = a.recipe_id AND json_valid(r.json)),
    a.damaged
    FROM assets a";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AssetSummary> {
    let kind: String = r.get(1)?;
    Ok(AssetSummary {
        id: AssetId(r.get(0)?),
        kind: AssetKind::parse(&kind).unwrap_or(AssetKind::Other),
        name: r.get(2)?,
        created_at_ms: r.get(3)?,
        size_bytes: r.get::<_, i64>(4)? as u64,
        prompt: r.get(5)?,
        model: r.get(6)?,
        damaged: r.get(7)?,
    })
}

/// Opens the database, telling a damaged file apart from other failures.
fn open_db(path: &Path) -> Result<Connection, LibraryError> {
    let corrupt = |reason: String| LibraryError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let classify = |e: rusqlite::Error| -> LibraryError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase)
            | Some(rusqlite::ErrorCode::DatabaseCorrupt) => corrupt(e.to_string()),
            Some(rusqlite::ErrorCode::CannotOpen)
            | Some(rusqlite::ErrorCode::ReadOnly)
            | Some(rusqlite::ErrorCode::PermissionDenied)
            | Some(rusqlite::ErrorCode::DiskFull) => LibraryError::DataDir {
                path: path.to_path_buf(),
                source: io::Error::other(e.to_string()),
            },
            _ => LibraryError::Db(e),
        }
    };
    let mut conn = Connection::open(path).map_err(classify)?;
    // Writers queue behind each other (every write transaction is BEGIN IMMEDIATE); a long
    // import batch in another process is waited for, not reported as "database is locked".
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .map_err(classify)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(classify)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "database did not switch to WAL mode");
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(classify)?;
    let quick: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(classify)?;
    if quick != "ok" {
        return Err(corrupt(quick));
    }
    let found = schema::version(&conn).map_err(classify)?;
    if found > schema::CURRENT {
        return Err(LibraryError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: schema::CURRENT,
        });
    }
    schema::migrate(&mut conn).map_err(classify)?;
    Ok(conn)
}

/// Holds `<data>/locks/<name>.lock` for the life of the process, so others can tell whether the
/// jobs it owns are still running.
#[derive(Debug)]
struct OwnerLock {
    name: String,
    path: PathBuf,
    _file: File,
}

impl OwnerLock {
    fn acquire(data_dir: &Path) -> Result<OwnerLock, LibraryError> {
        let dir = data_dir.join("locks");
        fs::create_dir_all(&dir).map_err(|e| LibraryError::data_dir(&dir, e))?;
        // Locks of processes that are gone are removed as we pass. A `.lock` file is locked
        // from the moment it has its name (see below), so an unlocked one is a dead owner's.
        // A `.tmp` file is unlocked between its creation and its lock: only old ones are dead.
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.filter_map(Result::ok) {
                let p = e.path();
                let removable = match p.extension().and_then(|x| x.to_str()) {
                    Some("lock") => true,
                    Some("tmp") => e
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > std::time::Duration::from_secs(60)),
                    _ => false,
                };
                if removable
                    && let Ok(f) = File::open(&p)
                    && f.try_lock().is_ok()
                {
                    store::remove_quietly(&p);
                }
            }
        }
        let name = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        let path = dir.join(format!("{name}.lock"));
        // Created and locked under a name the sweep leaves alone, then renamed: created under
        // its final name, another process sweeping between the create and the lock would take
        // it for a dead owner's and remove it, and this process's jobs would look orphaned.
        let tmp = dir.join(format!("{name}.tmp"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| LibraryError::data_dir(&tmp, e))?;
        file.lock().map_err(|e| LibraryError::data_dir(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| {
            store::remove_quietly(&tmp);
            LibraryError::data_dir(&path, e)
        })?;
        Ok(OwnerLock {
            name,
            path,
            _file: file,
        })
    }

    fn is_held(data_dir: &Path, name: &str) -> bool {
        if !is_plain_name(name) {
            return false;
        }
        let path = data_dir.join("locks").join(format!("{name}.lock"));
        match File::open(&path) {
            Ok(f) => f.try_lock().is_err(),
            Err(_) => false,
        }
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        store::remove_quietly(&self.path);
    }
}

/// Writes through `<target>.<uuid>.tmp` and renames, so `target` is whole or absent.
fn write_atomically(
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), LibraryError>,
) -> Result<(), LibraryError> {
    let tmp = target.with_extension(format!("{}.tmp", uuid::Uuid::now_v7().simple()));
    let result = write(&tmp).and_then(|()| {
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| LibraryError::write(&tmp, e))?;
        fs::rename(&tmp, target).map_err(|e| LibraryError::write(target, e))
    });
    if result.is_err() {
        store::remove_quietly(&tmp);
    }
    result
}

fn is_plain_name(name: &str) -> bool {
    let mut comps = Path::new(name).components();
    matches!(
        (comps.next(), comps.next()),
        (Some(Component::Normal(_)), None)
    ) && !name.contains(['/', '\\', '\0'])
}

fn check_file_name(name: &str) -> Result<(), LibraryError> {
    if is_plain_name(name) && sanitize_file_name(name) == name {
        Ok(())
    } else {
        Err(LibraryError::BadFileName(name.to_owned()))
    }
}

/// A name that stays inside whatever folder it is joined to: folder parts, `..`, control
/// characters and characters Windows refuses are replaced, and an empty result becomes "file".
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.chars().take(200).collect()
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
