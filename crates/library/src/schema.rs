//! Migrations, applied in order and recorded in `PRAGMA user_version`. A migration is never edited
//! once released: add a new one.

use rusqlite::{Connection, TransactionBehavior};

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE files (
        sha256      TEXT PRIMARY KEY,
        size_bytes  INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE recipes (
        id    INTEGER PRIMARY KEY,
        json  TEXT NOT NULL
    ) STRICT;
    CREATE TABLE assets (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        recipe_id   INTEGER REFERENCES recipes(id)
    ) STRICT;
    CREATE TABLE asset_files (
        asset_id   TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        role       TEXT NOT NULL,
        file_name  TEXT NOT NULL,
        sha256     TEXT NOT NULL REFERENCES files(sha256),
        mime       TEXT NOT NULL,
        PRIMARY KEY (asset_id, role)
    ) STRICT;
    CREATE INDEX asset_files_sha256 ON asset_files(sha256);
    CREATE TABLE jobs (
        id                TEXT PRIMARY KEY,
        spec              TEXT NOT NULL,
        state             TEXT NOT NULL,
        owner             TEXT,
        stage             TEXT,
        step              INTEGER,
        total             INTEGER,
        error             TEXT,
        outputs           TEXT NOT NULL DEFAULT '[]',
        cancel_requested  INTEGER NOT NULL DEFAULT 0,
        created_ms        INTEGER NOT NULL,
        updated_ms        INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX jobs_state ON jobs(state);
    CREATE TABLE publish_records (
        id          INTEGER PRIMARY KEY,
        target      TEXT NOT NULL,
        status      TEXT NOT NULL,
        root_cid    TEXT,
        detail      TEXT NOT NULL DEFAULT '{}',
        created_ms  INTEGER NOT NULL,
        updated_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE publish_items (
        record_id     INTEGER NOT NULL REFERENCES publish_records(id) ON DELETE CASCADE,
        asset_id      TEXT NOT NULL REFERENCES assets(id),
        token_id      INTEGER NOT NULL,
        media_cid     TEXT,
        metadata_cid  TEXT,
        PRIMARY KEY (record_id, token_id)
    ) STRICT;
    "#,
    // 2: publish records are found by their collection key (staging folder) and target, not by
    // scanning every row's JSON. Existing records keep theirs, read from the detail they hold.
    r#"
    ALTER TABLE publish_records ADD COLUMN key TEXT;
    UPDATE publish_records SET key = json_extract(detail, '$.key')
        WHERE json_valid(detail) AND json_type(detail, '$.key') = 'text';
    CREATE INDEX publish_records_key ON publish_records(key, target);
    "#,
    // 3: imports refuse files that do not decode and go on (the job lists them); assets whose
    // file stopped decoding are marked damaged by a repair, their file kept in quarantine.
    r#"
    ALTER TABLE jobs ADD COLUMN refused TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE assets ADD COLUMN damaged TEXT;
    "#,
    // 4: a job's outputs are rows, not one JSON array rewritten whole for each asset (a
    // 10,000-file import wrote 2 GB of that array to the WAL). `jobs.outputs` stays, empty.
    r#"
    CREATE TABLE job_outputs (
        job_id    TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        seq       INTEGER NOT NULL,
        asset_id  TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    ) STRICT;
    INSERT INTO job_outputs(job_id, seq, asset_id)
        SELECT jobs.id, o.key, o.value FROM jobs, json_each(jobs.outputs) AS o
        WHERE json_valid(jobs.outputs) AND o.type = 'text';
    UPDATE jobs SET outputs = '[]';
    "#,
];

/// The schema version this build writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// The database's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the schema up to [`CURRENT`], each migration in its own transaction. Each takes the
/// write lock first (`BEGIN IMMEDIATE`) and reads the version under it, so two processes opening
/// a new library at once apply each migration exactly once.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = version(&tx)?.max(0) as usize;
        let Some(sql) = MIGRATIONS.get(at) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (at + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = at + 1, "library schema migrated");
    }
}
