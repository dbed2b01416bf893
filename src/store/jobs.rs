//! Jobs: state, progress, checkpoints, webhook deliveries.

use super::{Db, StoreError};
use sqlx::{AssertSqlSafe, FromRow, SqliteConnection};

#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub name: Option<String>,
    pub params: String,
    pub dataset_id: Option<i64>,
    pub model_id: Option<i64>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub progress: Option<String>,
    pub checkpoint_at: Option<String>,
    pub attempts: i64,
    pub cancel_requested: bool,
    pub callback_url: Option<String>,
    pub deliveries: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub updated_at: String,
}

const COLUMNS: &str = "id, kind, status, name, params, dataset_id, model_id, result, error, progress, \
     checkpoint_at, attempts, cancel_requested, callback_url, deliveries, created_at, started_at, finished_at, updated_at";

pub struct NewJob<'a> {
    pub kind: &'a str,
    pub name: Option<&'a str>,
    pub params: &'a str,
    pub dataset_id: Option<i64>,
    pub model_id: Option<i64>,
    pub callback_url: Option<&'a str>,
}

pub async fn insert(conn: &mut SqliteConnection, new: &NewJob<'_>) -> Result<JobRow, StoreError> {
    let now = super::now();
    sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO jobs (kind, status, name, params, dataset_id, model_id, callback_url, created_at, updated_at)
         VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
    )))
    .bind(new.kind)
    .bind(new.name)
    .bind(new.params)
    .bind(new.dataset_id)
    .bind(new.model_id)
    .bind(new.callback_url)
    .bind(&now)
    .bind(&now)
    .fetch_one(conn)
    .await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<JobRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(db.reader())
    .await
}

pub async fn get_in(conn: &mut SqliteConnection, id: i64) -> Result<Option<JobRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn list(
    db: &Db,
    status: Option<&str>,
    kind: Option<&str>,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<JobRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE id < ? AND (? IS NULL OR status = ?) AND (? IS NULL OR kind = ?)
         ORDER BY id DESC LIMIT ?"
    )))
    .bind(before.unwrap_or(i64::MAX))
    .bind(status)
    .bind(status)
    .bind(kind)
    .bind(kind)
    .bind(limit)
    .fetch_all(db.reader())
    .await
}

/// Jobs in the given states, oldest first.
pub async fn with_status(db: &Db, statuses: &[&str]) -> Result<Vec<JobRow>, StoreError> {
    let mut out = Vec::new();
    for s in statuses {
        let rows: Vec<JobRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = ? ORDER BY id"
        )))
        .bind(s)
        .fetch_all(db.reader())
        .await?;
        out.extend(rows);
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub async fn count_status(db: &Db, status: &str) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE status = ?")
        .bind(status)
        .fetch_one(db.reader())
        .await?;
    Ok(n)
}

/// Counts by (kind, status) for metrics.
pub async fn counts(db: &Db) -> Result<Vec<(String, String, i64)>, StoreError> {
    sqlx::query_as("SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status")
        .fetch_all(db.reader())
        .await
}

/// queued → running; `false` if the job was not queued (e.g. cancelled meanwhile).
pub async fn mark_running(db: &Db, id: i64) -> Result<bool, StoreError> {
    let now = super::now();
    let r = sqlx::query(
        "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), attempts = attempts + 1,
         updated_at = ? WHERE id = ? AND status = 'queued' AND cancel_requested = 0",
    )
    .bind(&now)
    .bind(&now)
    .bind(id)
    .execute(db.writer())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Move a non-terminal job to a terminal state inside the caller's transaction (so outputs and
/// the state change commit together). Returns `false` if it was already terminal.
pub async fn finish(
    conn: &mut SqliteConnection,
    id: i64,
    status: &str,
    result: Option<&str>,
    error: Option<&str>,
    model_id: Option<i64>,
) -> Result<bool, StoreError> {
    let now = super::now();
    let r = sqlx::query(
        "UPDATE jobs SET status = ?, result = ?, error = ?, model_id = COALESCE(?, model_id),
         finished_at = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')",
    )
    .bind(status)
    .bind(result)
    .bind(error)
    .bind(model_id)
    .bind(&now)
    .bind(&now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// running → queued (to resume from the checkpoint at the next start), with a note.
pub async fn requeue(db: &Db, id: i64, note: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', error = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')",
    )
    .bind(note)
    .bind(super::now())
    .bind(id)
    .execute(db.writer())
    .await
    .map(|_| ())
}

pub async fn request_cancel(db: &Db, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?")
        .bind(super::now())
        .bind(id)
        .execute(db.writer())
        .await
        .map(|_| ())
}

pub async fn set_progress(db: &Db, id: i64, progress: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ? AND status = 'running'")
        .bind(progress)
        .bind(super::now())
        .bind(id)
        .execute(db.writer())
        .await
        .map(|_| ())
}

pub async fn set_checkpoint(db: &Db, id: i64, checkpoint: &[u8]) -> Result<(), StoreError> {
    let now = super::now();
    sqlx::query(
        "UPDATE jobs SET checkpoint = ?, checkpoint_at = ?, updated_at = ? WHERE id = ? AND status = 'running'",
    )
    .bind(checkpoint)
    .bind(&now)
    .bind(&now)
    .bind(id)
    .execute(db.writer())
    .await
    .map(|_| ())
}

pub async fn checkpoint(db: &Db, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let r: Option<(Option<Vec<u8>>,)> = sqlx::query_as("SELECT checkpoint FROM jobs WHERE id = ?")
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    Ok(r.and_then(|r| r.0))
}

pub async fn set_deliveries(db: &Db, id: i64, deliveries: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE jobs SET deliveries = ? WHERE id = ?")
        .bind(deliveries)
        .bind(id)
        .execute(db.writer())
        .await
        .map(|_| ())
}

/// Is some queued or running job using this dataset or model?
pub async fn active_using(
    db: &Db,
    dataset_id: Option<i64>,
    model_id: Option<i64>,
) -> Result<bool, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')
         AND ((? IS NOT NULL AND dataset_id = ?) OR (? IS NOT NULL AND model_id = ?))",
    )
    .bind(dataset_id)
    .bind(dataset_id)
    .bind(model_id)
    .bind(model_id)
    .fetch_one(db.reader())
    .await?;
    Ok(n > 0)
}
