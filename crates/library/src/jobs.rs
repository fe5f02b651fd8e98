//! The `jobs` table: what the studio's job registry stores so a restart can resume or fail jobs.

use mintframe_types::{AssetId, JobId, JobRecord, JobSpec, JobState, Progress, Refusal};
use rusqlite::{OptionalExtension, params};

use crate::{Library, LibraryError, now_ms};

const COLUMNS: &str = "id, spec, state, stage, step, total, error, \
     (SELECT json_group_array(asset_id ORDER BY seq) FROM job_outputs WHERE job_id = jobs.id), \
     created_ms, updated_ms, owner, refused";

/// A job row with the owner that runs it, if any.
#[derive(Debug, Clone)]
pub struct StoredJob {
    pub record: JobRecord,
    pub owner: Option<String>,
    pub cancel_requested: bool,
}

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredJob> {
    let to_sql_err = |e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    };
    let spec: String = r.get(1)?;
    let state: String = r.get(2)?;
    let stage: Option<String> = r.get(3)?;
    let outputs: String = r.get(7)?;
    Ok(StoredJob {
        record: JobRecord {
            id: JobId(r.get(0)?),
            spec: serde_json::from_str::<JobSpec>(&spec).map_err(to_sql_err)?,
            state: JobState::parse(&state).unwrap_or(JobState::Failed),
            progress: stage.map(|stage| Progress {
                stage,
                step: r.get::<_, Option<i64>>(4).ok().flatten().unwrap_or(0) as u64,
                total: r.get::<_, Option<i64>>(5).ok().flatten().unwrap_or(0) as u64,
            }),
            error: r.get(6)?,
            outputs: serde_json::from_str::<Vec<AssetId>>(&outputs).map_err(to_sql_err)?,
            refused: serde_json::from_str(&r.get::<_, String>(11)?).map_err(to_sql_err)?,
            created_at_ms: r.get(8)?,
            updated_at_ms: r.get(9)?,
        },
        owner: r.get(10)?,
        cancel_requested: r.get::<_, i64>(12)? != 0,
    })
}

/// Adds `asset` to a job's outputs inside the caller's transaction: one row, so the cost does
/// not grow with the outputs already there.
pub(crate) fn append_output(
    tx: &rusqlite::Transaction<'_>,
    id: &JobId,
    asset: &AssetId,
) -> Result<(), LibraryError> {
    let changed = tx.execute(
        "UPDATE jobs SET updated_ms = ?2 WHERE id = ?1",
        params![id.0, now_ms()],
    )?;
    if changed == 0 {
        return Err(LibraryError::JobNotFound(id.0.clone()));
    }
    tx.execute(
        "INSERT INTO job_outputs(job_id, seq, asset_id) \
         SELECT ?1, COALESCE(MAX(seq), -1) + 1, ?2 FROM job_outputs WHERE job_id = ?1",
        params![id.0, asset.0],
    )?;
    Ok(())
}

impl Library {
    /// Stores a new job as queued.
    pub fn insert_job(&self, spec: &JobSpec) -> Result<JobRecord, LibraryError> {
        let id = JobId(uuid::Uuid::now_v7().to_string());
        let now = now_ms();
        self.conn().execute(
            "INSERT INTO jobs(id, spec, state, created_ms, updated_ms) VALUES (?1, ?2, 'queued', ?3, ?3)",
            params![id.0, serde_json::to_string(spec)?, now],
        )?;
        Ok(self.job(&id)?.record)
    }

    pub fn job(&self, id: &JobId) -> Result<StoredJob, LibraryError> {
        let conn = self.conn();
        conn.query_row(
            &format!("SELECT {COLUMNS}, cancel_requested FROM jobs WHERE id = ?1"),
            [&id.0],
            job_from_row,
        )
        .optional()?
        .ok_or_else(|| LibraryError::JobNotFound(id.0.clone()))
    }

    /// Jobs, newest first; `unfinished_only` keeps queued and running ones.
    pub fn jobs(&self, unfinished_only: bool) -> Result<Vec<StoredJob>, LibraryError> {
        let conn = self.conn();
        let filter = if unfinished_only {
            "WHERE state IN ('queued', 'running')"
        } else {
            ""
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS}, cancel_requested FROM jobs {filter} ORDER BY created_ms DESC, id DESC"
        ))?;
        let rows = stmt.query_map([], job_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Finds a job by full id or a unique prefix of at least 4 characters.
    pub fn resolve_job_id(&self, prefix: &str) -> Result<JobId, LibraryError> {
        self.unique_id_with_prefix("jobs", prefix)?
            .map(JobId)
            .ok_or_else(|| LibraryError::JobNotFound(prefix.to_owned()))
    }

    /// Claims a queued job for this process. False if another process claimed it first.
    pub fn claim_job(&self, id: &JobId) -> Result<bool, LibraryError> {
        let n = self.conn().execute(
            "UPDATE jobs SET state = 'running', owner = ?2, updated_ms = ?3
             WHERE id = ?1 AND state = 'queued'",
            params![id.0, self.owner(), now_ms()],
        )?;
        Ok(n == 1)
    }

    /// Records that the job refused one of its inputs and went on; a resumed job skips it.
    pub fn add_job_refusal(&self, id: &JobId, refusal: &Refusal) -> Result<(), LibraryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let refused: String = tx
            .query_row("SELECT refused FROM jobs WHERE id = ?1", [&id.0], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| LibraryError::JobNotFound(id.0.clone()))?;
        let mut list: Vec<Refusal> = serde_json::from_str(&refused)?;
        list.push(refusal.clone());
        tx.execute(
            "UPDATE jobs SET refused = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id.0, serde_json::to_string(&list)?, now_ms()],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn set_job_progress(&self, id: &JobId, p: &Progress) -> Result<(), LibraryError> {
        self.conn().execute(
            "UPDATE jobs SET stage = ?2, step = ?3, total = ?4, updated_ms = ?5 WHERE id = ?1",
            params![id.0, p.stage, p.step as i64, p.total as i64, now_ms()],
        )?;
        Ok(())
    }

    /// Moves a job to `state` (with an error message for failures) and releases its owner.
    pub fn finish_job(
        &self,
        id: &JobId,
        state: JobState,
        error: Option<&str>,
    ) -> Result<(), LibraryError> {
        let owner = if state.is_finished() || state == JobState::Queued {
            None
        } else {
            Some(self.owner())
        };
        self.conn().execute(
            "UPDATE jobs SET state = ?2, error = ?3, owner = ?4, updated_ms = ?5 WHERE id = ?1",
            params![id.0, state.as_str(), error, owner, now_ms()],
        )?;
        Ok(())
    }

    /// Puts a finished (cancelled or failed) job back in the queue, its outputs kept so it
    /// resumes where it stopped.
    pub fn requeue_job(&self, id: &JobId) -> Result<(), LibraryError> {
        let n = self.conn().execute(
            "UPDATE jobs SET state = 'queued', error = NULL, cancel_requested = 0, owner = NULL,
                 updated_ms = ?2
             WHERE id = ?1 AND state IN ('cancelled', 'failed')",
            params![id.0, now_ms()],
        )?;
        if n == 0 {
            return Err(LibraryError::JobNotFound(id.0.clone()));
        }
        Ok(())
    }

    /// Asks for a job to stop. A queued job is cancelled at once; a running one is flagged and its
    /// owner stops it at its next step. Returns the job's state after the call.
    pub fn request_cancel(&self, id: &JobId) -> Result<JobState, LibraryError> {
        let now = now_ms();
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE jobs SET state = 'cancelled', error = 'cancelled before it started', updated_ms = ?2
             WHERE id = ?1 AND state = 'queued'",
            params![id.0, now],
        )?;
        if n == 0 {
            conn.execute(
                "UPDATE jobs SET cancel_requested = 1, updated_ms = ?2 WHERE id = ?1 AND state = 'running'",
                params![id.0, now],
            )?;
        }
        let state: Option<String> = conn
            .query_row("SELECT state FROM jobs WHERE id = ?1", [&id.0], |r| {
                r.get(0)
            })
            .optional()?;
        state
            .and_then(|s| JobState::parse(&s))
            .ok_or_else(|| LibraryError::JobNotFound(id.0.clone()))
    }
}
