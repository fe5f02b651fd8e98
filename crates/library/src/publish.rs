//! Publish records: every publish is a row (target, status, root CID, the whole outcome as JSON)
//! with one item per token, so a collection's history survives restarts and can be resumed.

use rusqlite::{OptionalExtension, params};

use crate::{Library, LibraryError, now_ms};

/// One publish as the library keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishRecord {
    pub id: i64,
    /// Where it went: `local:<api>`, `cluster:<url>`, `pinning:<service>`.
    pub target: String,
    /// `planned`, `uploading`, `published`, `failed`.
    pub status: String,
    /// The metadata folder's CID (the collection's `baseURI` root) once known.
    pub root_cid: Option<String>,
    /// The collection's key (its staging folder's name): the same assets and spec, the same key.
    pub key: Option<String>,
    /// The plan and outcome as JSON (CIDs, URIs, findings, error).
    pub detail: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// One token of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishItem {
    pub asset_id: String,
    pub token_id: i64,
    pub media_cid: Option<String>,
    pub metadata_cid: Option<String>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PublishRecord> {
    Ok(PublishRecord {
        id: r.get(0)?,
        target: r.get(1)?,
        status: r.get(2)?,
        root_cid: r.get(3)?,
        detail: r.get(4)?,
        created_ms: r.get(5)?,
        updated_ms: r.get(6)?,
        key: r.get(7)?,
    })
}

const COLUMNS: &str = "id, target, status, root_cid, detail, created_ms, updated_ms, key";

impl Library {
    /// Starts a record with its items, in one transaction.
    pub fn insert_publish(
        &self,
        key: &str,
        target: &str,
        status: &str,
        root_cid: Option<&str>,
        detail: &str,
        items: &[PublishItem],
    ) -> Result<i64, LibraryError> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO publish_records(target, status, root_cid, detail, created_ms, updated_ms, key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            params![target, status, root_cid, detail, now, key],
        )?;
        let id = tx.last_insert_rowid();
        for it in items {
            tx.execute(
                "INSERT INTO publish_items(record_id, asset_id, token_id, media_cid, metadata_cid)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, it.asset_id, it.token_id, it.media_cid, it.metadata_cid],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Moves a record on (status, root CID, detail).
    pub fn update_publish(
        &self,
        id: i64,
        status: &str,
        root_cid: Option<&str>,
        detail: &str,
    ) -> Result<(), LibraryError> {
        let n = self.conn().execute(
            "UPDATE publish_records SET status = ?2, root_cid = ?3, detail = ?4, updated_ms = ?5
             WHERE id = ?1",
            params![id, status, root_cid, detail, now_ms()],
        )?;
        if n == 0 {
            return Err(LibraryError::NotFound(format!("publish record {id}")));
        }
        Ok(())
    }

    /// Every record, newest first.
    pub fn list_publishes(&self) -> Result<Vec<PublishRecord>, LibraryError> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM publish_records ORDER BY id DESC"
        ))?;
        let rows = st.query_map([], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The record of a collection (by key) on a target, if it was published there before.
    pub fn publish_by_key(
        &self,
        key: &str,
        target: &str,
    ) -> Result<Option<PublishRecord>, LibraryError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM publish_records WHERE key = ?1 AND target = ?2
                     ORDER BY id DESC LIMIT 1"
                ),
                params![key, target],
                row,
            )
            .optional()?)
    }

    pub fn publish(&self, id: i64) -> Result<Option<PublishRecord>, LibraryError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM publish_records WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }
}
