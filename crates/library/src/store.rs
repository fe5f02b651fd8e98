//! The content-addressed file store under `<data dir>/files/ab/abcdef…` (sha256, lower-case hex).
//!
//! Write protocol, which is what keeps the library consistent across crashes:
//! 1. bytes go to `tmp/<uuid>.part`, created new and held under an exclusive file lock (taken
//!    under a `<uuid>.<owner>.new` name the clean-up leaves alone while that process lives,
//!    then renamed);
//! 2. the temp file is synced, then renamed to its content address and the folder synced;
//! 3. only then does a database transaction insert rows that name it;
//! 4. the lock is released after that commit.
//!
//! So a row never names a missing or partial file. What a crash can leave is a `.part` file or a
//! stored file no row names; the start-up clean-up removes both, but only those whose lock it can
//! take, so it never races a live writer in another process.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use mintframe_jobs::JobCtx;
use sha2::{Digest, Sha256};

use crate::LibraryError;

const PART_SUFFIX: &str = ".part";
/// A temp file between its creation and its lock; see [`Store::new_part`].
const FRESH_SUFFIX: &str = ".new";
/// How long a fresh file whose name carries no owner is spared.
const FRESH_GRACE: std::time::Duration = std::time::Duration::from_secs(60);
const PROGRESS_EVERY_BYTES: u64 = 4 << 20;

/// A file now in the store. Holding it keeps the clean-up of other processes off the file until
/// the rows naming it are committed.
#[derive(Debug)]
pub struct StoredFile {
    pub sha256: String,
    pub size_bytes: u64,
    _lock: Arc<File>,
}

/// The stored files this process holds locked, by path. A second copy of the same bytes in
/// this process (two identical frames of one asset) shares the first copy's lock: a file lock
/// taken again through another descriptor would wait for our own commit, forever.
fn held() -> &'static Mutex<HashMap<PathBuf, Weak<File>>> {
    static HELD: OnceLock<Mutex<HashMap<PathBuf, Weak<File>>>> = OnceLock::new();
    HELD.get_or_init(|| Mutex::new(HashMap::new()))
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    files: PathBuf,
    tmp: PathBuf,
    /// The library's owner name for this process, written into fresh temp files.
    owner: String,
}

impl Store {
    pub(crate) fn open(data_dir: &Path, owner: &str) -> Result<Store, LibraryError> {
        let store = Store {
            files: data_dir.join("files"),
            tmp: data_dir.join("tmp"),
            owner: owner.to_owned(),
        };
        for dir in [&store.files, &store.tmp] {
            fs::create_dir_all(dir).map_err(|e| LibraryError::data_dir(dir, e))?;
        }
        Ok(store)
    }

    pub(crate) fn path_of(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("__");
        self.files.join(prefix).join(sha256)
    }

    /// Streams `src` into the store, hashing as it goes. `total_hint` sizes progress reports.
    pub(crate) fn put(
        &self,
        src: &mut dyn Read,
        total_hint: u64,
        ctx: &JobCtx,
    ) -> Result<StoredFile, LibraryError> {
        let (tmp_path, mut tmp) = self.new_part()?;
        let result = (|| {
            let (sha256, size_bytes) = copy_hashing(src, &mut tmp, &tmp_path, total_hint, ctx)?;
            tmp.sync_all()
                .map_err(|e| LibraryError::write(&tmp_path, e))?;
            Ok::<_, LibraryError>((sha256, size_bytes))
        })();
        let (sha256, size_bytes) = match result {
            Ok(v) => v,
            Err(e) => {
                drop(tmp);
                remove_quietly(&tmp_path);
                return Err(e);
            }
        };
        let final_path = self.path_of(&sha256);
        match self.settle(&tmp_path, tmp, &final_path) {
            Ok(lock) => Ok(StoredFile {
                sha256,
                size_bytes,
                _lock: lock,
            }),
            Err(e) => {
                remove_quietly(&tmp_path);
                Err(e)
            }
        }
    }

    /// A new `.part` file, locked from the moment it has that name. Created straight under it,
    /// another process's clean-up could open it between our create and our lock, take it for a
    /// crashed writer's and remove it; our rename to its address would then find nothing.
    fn new_part(&self) -> Result<(PathBuf, File), LibraryError> {
        let id = uuid::Uuid::now_v7();
        // The owner in the name lets a clean-up tell a writer killed between the create and
        // the lock (its owner lock gone) from one about to take it.
        let fresh = self.tmp.join(format!("{id}.{}{FRESH_SUFFIX}", self.owner));
        let part = self.tmp.join(format!("{id}{PART_SUFFIX}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&fresh)
            .map_err(|e| LibraryError::write(&fresh, e))?;
        let named = file
            .lock()
            .and_then(|()| fs::rename(&fresh, &part))
            .map_err(|e| LibraryError::write(&part, e));
        if let Err(e) = named {
            drop(file);
            remove_quietly(&fresh);
            return Err(e);
        }
        Ok((part, file))
    }

    /// Moves a finished temp file to its address, or reuses the copy already there.
    fn settle(
        &self,
        tmp_path: &Path,
        tmp: File,
        final_path: &Path,
    ) -> Result<Arc<File>, LibraryError> {
        {
            let mut held = held().lock().unwrap_or_else(|p| p.into_inner());
            held.retain(|_, w| w.strong_count() > 0);
            if let Some(lock) = held.get(final_path).and_then(Weak::upgrade) {
                // Ours already, locked until the rows naming it are committed.
                drop(tmp);
                remove_quietly(tmp_path);
                return Ok(lock);
            }
        }
        // Not under the map's mutex: this may wait for another process's commit.
        let lock = Arc::new(self.settle_unshared(tmp_path, tmp, final_path)?);
        held()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(final_path.to_owned(), Arc::downgrade(&lock));
        Ok(lock)
    }

    fn settle_unshared(
        &self,
        tmp_path: &Path,
        tmp: File,
        final_path: &Path,
    ) -> Result<File, LibraryError> {
        let dir = final_path.parent().unwrap_or(&self.files);
        fs::create_dir_all(dir).map_err(|e| LibraryError::write(dir, e))?;
        if let Ok(existing) = File::open(final_path) {
            // Another clean-up may be deleting this very file as an orphan: take its lock, then
            // look again. If it is still there it is ours to share until our commit.
            existing
                .lock()
                .map_err(|e| LibraryError::write(final_path, e))?;
            if final_path.exists() {
                drop(tmp);
                remove_quietly(tmp_path);
                return Ok(existing);
            }
        }
        fs::rename(tmp_path, final_path).map_err(|e| LibraryError::write(final_path, e))?;
        sync_dir(dir).map_err(|e| LibraryError::write(dir, e))?;
        Ok(tmp)
    }

    /// Removes `.part` files and stored files no row names, when no live writer holds them.
    /// `is_referenced` is asked under the file's lock, so a writer that committed meanwhile wins.
    pub(crate) fn clean_up(
        &self,
        is_referenced: &dyn Fn(&str) -> Result<bool, LibraryError>,
        owner_alive: &dyn Fn(&str) -> bool,
    ) -> Result<CleanUp, LibraryError> {
        let mut done = CleanUp::default();
        for entry in read_dir_or_empty(&self.tmp)? {
            let path = entry.path();
            // A fresh file is unlocked until it is renamed to `.part`: it is dead when the
            // process that made it is gone, or (a name without an owner) when it is old.
            let name = entry.file_name();
            if let Some(stem) = name.to_string_lossy().strip_suffix(FRESH_SUFFIX) {
                let owner = stem.split_once('.').map(|(_, owner)| owner);
                let dead = match owner {
                    Some(owner) => !owner_alive(owner),
                    None => false,
                };
                if !dead && !older_than(&entry, FRESH_GRACE) {
                    continue;
                }
            }
            if try_lock_existing(&path).is_some() {
                remove_quietly(&path);
                done.temp_files_removed += 1;
            }
        }
        for (name, path, _) in self.entries()? {
            if is_referenced(&name)? {
                continue;
            }
            if let Some(_lock) = try_lock_existing(&path)
                && !is_referenced(&name)?
            {
                remove_quietly(&path);
                done.orphan_files_removed += 1;
            }
        }
        Ok(done)
    }

    /// Every stored file name (sha256) with its size on disk.
    pub(crate) fn list(&self) -> Result<Vec<(String, u64)>, LibraryError> {
        let mut out: Vec<(String, u64)> = self
            .entries()?
            .into_iter()
            .map(|(name, _, size)| (name, size))
            .collect();
        out.sort();
        Ok(out)
    }

    /// `(name, path, size)` of every file under `files/<shard>/`.
    fn entries(&self) -> Result<Vec<(String, PathBuf, u64)>, LibraryError> {
        let mut out = Vec::new();
        for shard in read_dir_or_empty(&self.files)? {
            let shard = shard.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in read_dir_or_empty(&shard)? {
                let path = entry.path();
                if let (Some(name), Ok(meta)) =
                    (path.file_name().and_then(|n| n.to_str()), entry.metadata())
                {
                    out.push((name.to_owned(), path.clone(), meta.len()));
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn temp_files(&self) -> Result<Vec<PathBuf>, LibraryError> {
        Ok(read_dir_or_empty(&self.tmp)?
            .into_iter()
            .map(|e| e.path())
            .collect())
    }
}

/// What a clean-up removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanUp {
    pub temp_files_removed: usize,
    pub orphan_files_removed: usize,
}

fn copy_hashing(
    src: &mut dyn Read,
    dst: &mut File,
    dst_path: &Path,
    total_hint: u64,
    ctx: &JobCtx,
) -> Result<(String, u64), LibraryError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut written: u64 = 0;
    let mut next_report = 0;
    loop {
        ctx.check()?;
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LibraryError::ReadSource { source: e }),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        dst.write_all(chunk)
            .map_err(|e| LibraryError::write(dst_path, e))?;
        written += n as u64;
        if written >= next_report {
            ctx.progress("store", written, total_hint.max(written));
            next_report = written + PROGRESS_EVERY_BYTES;
        }
    }
    ctx.progress("store", written, written);
    Ok((hex::encode(hasher.finalize()), written))
}

/// sha256 of a file, for `check --deep`.
pub(crate) fn hash_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut f, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

fn older_than(entry: &fs::DirEntry, age: std::time::Duration) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a > age)
}

fn try_lock_existing(path: &Path) -> Option<File> {
    let f = OpenOptions::new().read(true).open(path).ok()?;
    match f.try_lock() {
        Ok(()) => Some(f),
        Err(_) => None,
    }
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<fs::DirEntry>, LibraryError> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd.filter_map(Result::ok).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(LibraryError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

pub(crate) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove file");
    }
}

#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
