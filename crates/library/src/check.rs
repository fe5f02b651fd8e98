//! `library check` and `library check --repair`: find what is wrong, and rebuild without losing a
//! stored file. A damaged database is moved aside (never deleted), every row that still reads is
//! copied into a new one, and every stored file no row names becomes a "recovered" asset.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use mintframe_types::{AssetKind, MediaFormat};
use rusqlite::{Connection, OpenFlags, params, types::Value};

use crate::{DB_FILE, Library, LibraryError, now_ms, store};

/// What `check` found. Empty lists mean a healthy library.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    pub database_problems: Vec<String>,
    /// Rows naming files that are not on disk.
    pub missing_files: Vec<String>,
    /// Files whose size (or, with `deep`, content hash) differs from their row.
    pub damaged_files: Vec<String>,
    /// Stored files no row names.
    pub orphan_files: Vec<String>,
    pub temp_files: usize,
    pub files_checked: usize,
    /// Assets whose file does not decode (with a decoder to check them): unhealthy until a
    /// repair quarantines them.
    pub undecodable: Vec<Undecodable>,
    /// Assets a repair already marked damaged, their files in `quarantine/`.
    pub quarantined_assets: Vec<String>,
}

impl CheckReport {
    pub fn is_healthy(&self) -> bool {
        self.database_problems.is_empty()
            && self.missing_files.is_empty()
            && self.damaged_files.is_empty()
            && self.undecodable.is_empty()
    }
}

/// An asset whose stored file does not decode, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Undecodable {
    pub asset: String,
    pub sha256: String,
    pub reason: String,
}

/// Decodes one stored file given its path and MIME type, `Err(reason)` if it does not decode.
/// The library knows no image formats: the studio passes the media crate's guarded decoder.
pub type Decode<'a> = &'a dyn Fn(&Path, &str) -> Result<(), String>;

/// What `repair` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// Where the damaged database was moved, if it was.
    pub moved_aside: Option<PathBuf>,
    pub rows_copied: usize,
    pub rows_lost: usize,
    /// Stored files with no row that became new assets.
    pub recovered_assets: usize,
    /// Assets dropped because their files were gone or damaged.
    pub assets_dropped: Vec<String>,
    /// Damaged files moved to `quarantine/` (kept, not deleted).
    pub quarantined: Vec<PathBuf>,
    /// Assets marked damaged because their file does not decode (files in `quarantine/`).
    pub marked_damaged: Vec<Undecodable>,
}

// Parents before children, so foreign keys hold as rows are copied.
const TABLES: &[&str] = &[
    "files",
    "recipes",
    "assets",
    "asset_files",
    "jobs",
    "publish_records",
    "publish_items",
];

impl Library {
    /// Checks the database and every stored file; `deep` also re-hashes each file.
    pub fn check(&self, deep: bool) -> Result<CheckReport, LibraryError> {
        self.check_with(deep, None)
    }

    /// [`Library::check`], and with `decode` every asset's file is decoded too.
    pub fn check_with(
        &self,
        deep: bool,
        decode: Option<Decode<'_>>,
    ) -> Result<CheckReport, LibraryError> {
        let mut report = CheckReport::default();
        let quarantined = self.quarantined_shas()?;
        report.quarantined_assets = {
            let conn = self.conn();
            let mut stmt =
                conn.prepare("SELECT id FROM assets WHERE damaged IS NOT NULL ORDER BY id")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let rows: Vec<(String, i64)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let problems: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            report
                .database_problems
                .extend(problems.into_iter().filter(|p| p != "ok"));
            let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
            let fk: Vec<String> = stmt
                .query_map([], |r| {
                    Ok(format!(
                        "row {} of {} names a missing {}",
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(2)?
                    ))
                })?
                .collect::<Result<_, _>>()?;
            report.database_problems.extend(fk);
            let mut stmt = conn.prepare("SELECT sha256, size_bytes FROM files ORDER BY sha256")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (sha, size) in &rows {
            if quarantined.contains(sha) {
                continue;
            }
            report.files_checked += 1;
            let path = self.store.path_of(sha);
            match fs::metadata(&path) {
                Err(_) => report.missing_files.push(sha.clone()),
                Ok(m) if m.len() != *size as u64 => report.damaged_files.push(sha.clone()),
                Ok(_) if deep => match store::hash_file(&path) {
                    Ok(actual) if actual == *sha => {}
                    _ => report.damaged_files.push(sha.clone()),
                },
                Ok(_) => {}
            }
        }
        let known: std::collections::HashSet<&str> = rows.iter().map(|(s, _)| s.as_str()).collect();
        report.orphan_files = self
            .store
            .list()?
            .into_iter()
            .filter(|(name, _)| !known.contains(name.as_str()))
            .map(|(name, _)| name)
            .collect();
        report.temp_files = self.store.temp_files()?.len();
        if let Some(decode) = decode {
            report.undecodable = self.undecodable(decode)?;
        }
        Ok(report)
    }

    /// Files that only damaged assets name and that sit in `quarantine/`: kept on purpose.
    fn quarantined_shas(&self) -> Result<std::collections::HashSet<String>, LibraryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT DISTINCT af.sha256 FROM asset_files af JOIN assets a ON a.id = af.asset_id
             WHERE a.damaged IS NOT NULL AND af.sha256 NOT IN (
                 SELECT af2.sha256 FROM asset_files af2 JOIN assets a2 ON a2.id = af2.asset_id
                 WHERE a2.damaged IS NULL)",
        )?;
        let shas: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let q = self.data_dir.join("quarantine");
        Ok(shas.into_iter().filter(|s| q.join(s).is_file()).collect())
    }

    /// Decodes the media file of every asset not already marked damaged.
    fn undecodable(&self, decode: Decode<'_>) -> Result<Vec<Undecodable>, LibraryError> {
        let rows: Vec<(String, String, String)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT af.asset_id, af.sha256, af.mime FROM asset_files af
                 JOIN assets a ON a.id = af.asset_id
                 WHERE a.damaged IS NULL AND (af.mime LIKE 'image/%' OR af.mime LIKE 'video/%')
                 ORDER BY af.asset_id, af.role",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for (asset, sha, mime) in rows {
            let path = self.store.path_of(&sha);
            if !path.is_file() {
                continue; // reported as missing
            }
            if let Err(reason) = decode(&path, &mime) {
                out.push(Undecodable {
                    asset,
                    sha256: sha,
                    reason,
                });
            }
        }
        Ok(out)
    }

    /// Moves the files of assets that do not decode to `quarantine/` and marks the assets
    /// damaged with the reason; nothing is deleted.
    fn quarantine_undecodable(
        &self,
        decode: Decode<'_>,
        report: &mut RepairReport,
    ) -> Result<(), LibraryError> {
        let bad = self.undecodable(decode)?;
        let quarantine = self.data_dir.join("quarantine");
        for u in bad {
            let from = self.store.path_of(&u.sha256);
            let to = quarantine.join(&u.sha256);
            if from.is_file() {
                fs::create_dir_all(&quarantine).map_err(|e| LibraryError::write(&quarantine, e))?;
                fs::rename(&from, &to).map_err(|e| LibraryError::write(&to, e))?;
                report.quarantined.push(to);
            }
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE assets SET damaged = ?2 WHERE id IN
                     (SELECT asset_id FROM asset_files WHERE sha256 = ?1)",
                params![u.sha256, u.reason],
            )?;
            tx.commit()?;
            report.marked_damaged.push(u);
        }
        Ok(())
    }

    /// Repairs the library in `data_dir`, whatever state its database is in. Every stored file is
    /// kept: files of dropped rows are quarantined, files without rows become assets.
    pub fn repair(data_dir: &Path) -> Result<(Library, RepairReport), LibraryError> {
        Library::repair_with(data_dir, None)
    }

    /// [`Library::repair`], and with `decode` assets whose file does not decode are marked
    /// damaged and their files quarantined.
    pub fn repair_with(
        data_dir: &Path,
        decode: Option<Decode<'_>>,
    ) -> Result<(Library, RepairReport), LibraryError> {
        let (lib, mut report) = Library::repair_rows(data_dir)?;
        if let Some(decode) = decode {
            lib.quarantine_undecodable(decode, &mut report)?;
        }
        Ok((lib, report))
    }

    fn repair_rows(data_dir: &Path) -> Result<(Library, RepairReport), LibraryError> {
        let mut report = RepairReport::default();
        let db_path = data_dir.join(DB_FILE);
        match Library::open_inner(data_dir, false) {
            Ok(lib) => {
                lib.drop_broken_rows(&mut report, true)?;
                lib.adopt_orphans(&mut report)?;
                Ok((lib, report))
            }
            Err(LibraryError::Corrupt { .. }) => {
                let aside = data_dir.join(format!("{DB_FILE}.damaged-{}", now_ms()));
                for suffix in ["", "-wal", "-shm"] {
                    let from = PathBuf::from(format!("{}{suffix}", db_path.display()));
                    if from.exists() {
                        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                        fs::rename(&from, &to).map_err(|e| LibraryError::write(&to, e))?;
                    }
                }
                report.moved_aside = Some(aside.clone());
                let lib = Library::open_inner(data_dir, false)?;
                lib.salvage_rows(&aside, &mut report)?;
                lib.drop_broken_rows(&mut report, false)?;
                lib.adopt_orphans(&mut report)?;
                tracing::info!(?report, "library database rebuilt");
                Ok((lib, report))
            }
            Err(e) => Err(e),
        }
    }

    /// Copies every row that still reads from a damaged database, table by table.
    fn salvage_rows(&self, damaged: &Path, report: &mut RepairReport) -> Result<(), LibraryError> {
        let Ok(old) = Connection::open_with_flags(
            damaged,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) else {
            return Ok(());
        };
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for table in TABLES {
            let Ok(mut stmt) = old.prepare(&format!("SELECT * FROM {table}")) else {
                continue;
            };
            let width = stmt.column_count();
            let insert = format!(
                "INSERT OR IGNORE INTO {table} VALUES ({})",
                vec!["?"; width].join(", ")
            );
            let Ok(mut rows) = stmt.query([]) else {
                continue;
            };
            loop {
                match rows.next() {
                    Ok(Some(row)) => {
                        let values: Result<Vec<Value>, _> =
                            (0..width).map(|i| row.get::<_, Value>(i)).collect();
                        match values.map(|v| tx.execute(&insert, rusqlite::params_from_iter(v))) {
                            Ok(Ok(n)) if n > 0 => report.rows_copied += 1,
                            _ => report.rows_lost += 1,
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // The rest of this table is unreadable; files it named are adopted later.
                        report.rows_lost += 1;
                        break;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops rows naming missing files, and (if `check_size`) files whose size is wrong, moving
    /// those files to `quarantine/`. Assets left with no file are dropped too.
    fn drop_broken_rows(
        &self,
        report: &mut RepairReport,
        check_size: bool,
    ) -> Result<(), LibraryError> {
        let rows: Vec<(String, i64)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT sha256, size_bytes FROM files")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let quarantine = self.data_dir.join("quarantine");
        let kept = self.quarantined_shas()?;
        let mut broken = Vec::new();
        for (sha, size) in rows {
            if kept.contains(&sha) {
                continue;
            }
            let path = self.store.path_of(&sha);
            match fs::metadata(&path) {
                Err(_) => broken.push(sha),
                Ok(m) if check_size && m.len() != size as u64 => {
                    fs::create_dir_all(&quarantine)
                        .map_err(|e| LibraryError::write(&quarantine, e))?;
                    let to = quarantine.join(&sha);
                    fs::rename(&path, &to).map_err(|e| LibraryError::write(&to, e))?;
                    report.quarantined.push(to);
                    broken.push(sha);
                }
                Ok(_) => {}
            }
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for sha in &broken {
            tx.execute("DELETE FROM asset_files WHERE sha256 = ?1", [sha])?;
            tx.execute("DELETE FROM files WHERE sha256 = ?1", [sha])?;
        }
        // Rows copied from a damaged database may name parents that did not survive.
        tx.execute(
            "DELETE FROM asset_files WHERE sha256 NOT IN (SELECT sha256 FROM files)
             OR asset_id NOT IN (SELECT id FROM assets)",
            [],
        )?;
        let orphaned_assets: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM assets WHERE id NOT IN (SELECT asset_id FROM asset_files)",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        for id in &orphaned_assets {
            tx.execute("DELETE FROM publish_items WHERE asset_id = ?1", [id])?;
            tx.execute("DELETE FROM assets WHERE id = ?1", [id])?;
        }
        tx.execute(
            "UPDATE assets SET recipe_id = NULL WHERE recipe_id NOT IN (SELECT id FROM recipes)",
            [],
        )?;
        tx.commit()?;
        report.assets_dropped.extend(orphaned_assets);
        Ok(())
    }

    /// Turns every stored file no asset names into an asset of its own (rows of a damaged
    /// database may keep a file's `files` row but lose the row linking it to its asset).
    fn adopt_orphans(&self, report: &mut RepairReport) -> Result<(), LibraryError> {
        let known: std::collections::HashSet<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT DISTINCT sha256 FROM asset_files")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let now = now_ms();
        for (sha, size) in self.store.list()? {
            if known.contains(&sha) {
                continue;
            }
            let path = self.store.path_of(&sha);
            let (kind, ext, mime) = sniff(&path);
            let short = sha.get(..12).unwrap_or(&sha);
            let name = format!("recovered-{short}");
            let file_name = if ext.is_empty() {
                name.clone()
            } else {
                format!("{name}.{ext}")
            };
            let id = uuid::Uuid::now_v7().to_string();
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT OR IGNORE INTO files(sha256, size_bytes, created_ms) VALUES (?1, ?2, ?3)",
                params![sha, size as i64, now],
            )?;
            tx.execute(
                "INSERT INTO assets(id, kind, name, created_ms, recipe_id) VALUES (?1, ?2, ?3, ?4, NULL)",
                params![id, kind.as_str(), name, now],
            )?;
            tx.execute(
                "INSERT INTO asset_files(asset_id, role, file_name, sha256, mime) VALUES (?1, 'main', ?2, ?3, ?4)",
                params![id, file_name, sha, mime],
            )?;
            tx.commit()?;
            report.recovered_assets += 1;
        }
        Ok(())
    }
}

/// Kind, extension and MIME type from a file's first bytes.
fn sniff(path: &Path) -> (AssetKind, &'static str, &'static str) {
    let mut head = [0u8; 16];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    match MediaFormat::sniff(head.get(..n).unwrap_or_default()) {
        Some(f) => (f.asset_kind(), f.extension(), f.mime()),
        None => (AssetKind::Other, "", "application/octet-stream"),
    }
}
