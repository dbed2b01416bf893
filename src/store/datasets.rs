//! Datasets and their distinct patterns.

use super::{Db, StoreError, blob};
use crate::engine::{Dataset, Pattern};
use sqlx::{AssertSqlSafe, FromRow, QueryBuilder, Sqlite, SqliteConnection};

#[derive(Debug, Clone, FromRow)]
pub struct DatasetRow {
    pub id: i64,
    pub name: String,
    pub n_spins: i64,
    pub n_samples: i64,
    pub n_distinct: i64,
    pub entropy: f64,
    pub sha256: String,
    pub has_labels: bool,
    pub created_at: String,
}

const COLUMNS: &str =
    "id, name, n_spins, n_samples, n_distinct, entropy, sha256, has_labels, created_at";

#[derive(Debug, Clone, FromRow)]
pub struct PatternRow {
    pub idx: i64,
    pub pattern: Vec<u8>,
    pub count: i64,
    pub labels: Option<String>,
}

/// What a new dataset consists of, already validated.
pub struct NewDataset<'a> {
    pub name: &'a str,
    pub dataset: &'a Dataset,
    pub row_index: &'a [u32],
    pub row_labels: Option<&'a [String]>,
    /// Per distinct pattern, JSON object label → count.
    pub pattern_labels: Option<&'a [String]>,
    pub sha256: &'a str,
}

/// Insert a dataset and its patterns inside the caller's write transaction.
pub async fn insert(
    conn: &mut SqliteConnection,
    new: &NewDataset<'_>,
) -> Result<DatasetRow, StoreError> {
    let ds = new.dataset;
    let row_labels = new
        .row_labels
        .map(|l| serde_json::to_string(l).expect("strings serialise"));
    let row: DatasetRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO datasets (name, n_spins, n_samples, n_distinct, entropy, sha256, has_labels, row_index, row_labels, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
    )))
    .bind(new.name)
    .bind(ds.n() as i64)
    .bind(ds.total() as i64)
    .bind(ds.len() as i64)
    .bind(ds.entropy())
    .bind(new.sha256)
    .bind(new.row_labels.is_some())
    .bind(blob::encode_u32s(new.row_index))
    .bind(row_labels)
    .bind(super::now())
    .fetch_one(&mut *conn)
    .await?;

    const BATCH: usize = 500;
    let patterns = ds.patterns();
    let counts = ds.counts();
    for start in (0..patterns.len()).step_by(BATCH) {
        let end = (start + BATCH).min(patterns.len());
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO dataset_patterns (dataset_id, idx, pattern, count, labels) ",
        );
        qb.push_values(start..end, |mut b, i| {
            b.push_bind(row.id)
                .push_bind(i as i64)
                .push_bind(patterns[i].to_bytes())
                .push_bind(counts[i] as i64)
                .push_bind(new.pattern_labels.map(|l| l[i].clone()));
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(row)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<DatasetRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM datasets WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(db.reader())
    .await
}

/// Newest first; `before` is the cursor (an id).
pub async fn list(db: &Db, limit: i64, before: Option<i64>) -> Result<Vec<DatasetRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM datasets WHERE id < ? ORDER BY id DESC LIMIT ?"
    )))
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.reader())
    .await
}

pub async fn patterns(
    db: &Db,
    id: i64,
    offset: i64,
    limit: i64,
) -> Result<Vec<PatternRow>, StoreError> {
    sqlx::query_as(
        "SELECT idx, pattern, count, labels FROM dataset_patterns
         WHERE dataset_id = ? AND idx >= ? ORDER BY idx LIMIT ?",
    )
    .bind(id)
    .bind(offset)
    .bind(limit)
    .fetch_all(db.reader())
    .await
}

/// The whole dataset as the engine sees it.
pub async fn load(db: &Db, row: &DatasetRow) -> Result<Dataset, StoreError> {
    let rows: Vec<PatternRow> = patterns(db, row.id, 0, i64::MAX).await?;
    let n = row.n_spins as usize;
    let mut pats = Vec::with_capacity(rows.len());
    let mut counts = Vec::with_capacity(rows.len());
    for r in rows {
        let p = Pattern::from_bytes(&r.pattern, n).ok_or_else(|| {
            StoreError::Decode(format!("dataset {} pattern {} is corrupt", row.id, r.idx).into())
        })?;
        pats.push(p);
        counts.push(r.count as u64);
    }
    Dataset::new(n, pats, counts).map_err(|e| StoreError::Decode(e.to_string().into()))
}

/// The original rows: index of each row's distinct pattern, and the row labels if any.
pub async fn rows(db: &Db, id: i64) -> Result<Option<(Vec<u32>, Option<Vec<String>>)>, StoreError> {
    let r: Option<(Vec<u8>, Option<String>)> =
        sqlx::query_as("SELECT row_index, row_labels FROM datasets WHERE id = ?")
            .bind(id)
            .fetch_optional(db.reader())
            .await?;
    let Some((index, labels)) = r else {
        return Ok(None);
    };
    let index = blob::decode_u32s(&index)
        .ok_or_else(|| StoreError::Decode(format!("dataset {id} row index is corrupt").into()))?;
    let labels = match labels {
        Some(s) => Some(
            serde_json::from_str(&s)
                .map_err(|e| StoreError::Decode(format!("dataset {id} labels: {e}").into()))?,
        ),
        None => None,
    };
    Ok(Some((index, labels)))
}

/// Delete; `false` if it did not exist.
pub async fn delete(conn: &mut SqliteConnection, id: i64) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM datasets WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}
