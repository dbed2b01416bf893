//! Sample sets: generated patterns with their energies and the minimum each quench reaches.

use super::{Db, StoreError};
use crate::engine::Pattern;
use sqlx::{AssertSqlSafe, FromRow, SqliteConnection};

#[derive(Debug, Clone, FromRow)]
pub struct SampleSetRow {
    pub id: i64,
    pub model_id: i64,
    pub job_id: Option<i64>,
    pub census_id: Option<i64>,
    pub params: String,
    pub summary: String,
    pub n_samples: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct SampleRow {
    pub idx: i64,
    pub pattern: Vec<u8>,
    pub energy: f64,
    pub minimum_id: Option<i64>,
    pub expert: Option<i64>,
}

/// One generated pattern.
pub struct NewSample<'a> {
    pub pattern: &'a Pattern,
    pub energy: f64,
    pub minimum_id: Option<i64>,
    pub expert: Option<i64>,
}

const SET: &str = "id, model_id, job_id, census_id, params, summary, n_samples, created_at";

pub struct NewSampleSet<'a> {
    pub model_id: i64,
    pub job_id: Option<i64>,
    pub census_id: Option<i64>,
    pub params: &'a str,
    pub summary: &'a str,
}

pub async fn insert(
    conn: &mut SqliteConnection,
    set: &NewSampleSet<'_>,
    samples: &[NewSample<'_>],
) -> Result<SampleSetRow, StoreError> {
    let row: SampleSetRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO sample_sets (model_id, job_id, census_id, params, summary, n_samples, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {SET}"
    )))
    .bind(set.model_id)
    .bind(set.job_id)
    .bind(set.census_id)
    .bind(set.params)
    .bind(set.summary)
    .bind(samples.len() as i64)
    .bind(super::now())
    .fetch_one(&mut *conn)
    .await?;
    // Multi-row inserts (5 parameters a row, well under SQLite's 32766-variable limit).
    for (c, chunk) in samples.chunks(1000).enumerate() {
        let mut q = String::from(
            "INSERT INTO samples (set_id, idx, pattern, energy, minimum_id, expert) VALUES ",
        );
        for i in 0..chunk.len() {
            q.push_str(if i == 0 {
                "(?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?)"
            });
        }
        let mut query = sqlx::query(AssertSqlSafe(q));
        for (i, s) in chunk.iter().enumerate() {
            query = query
                .bind(row.id)
                .bind((c * 1000 + i) as i64)
                .bind(s.pattern.to_bytes())
                .bind(s.energy)
                .bind(s.minimum_id)
                .bind(s.expert);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(row)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<SampleSetRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {SET} FROM sample_sets WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(db.reader())
    .await
}

pub struct SampleFilter {
    /// `Some(None)`: samples in the continuum (no listed minimum).
    pub minimum: Option<Option<i64>>,
    pub max_energy: Option<f64>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn samples(db: &Db, set_id: i64, f: &SampleFilter) -> Result<Vec<SampleRow>, StoreError> {
    let (by_min, min_id, continuum) = match f.minimum {
        None => (false, None, false),
        Some(Some(id)) => (true, Some(id), false),
        Some(None) => (true, None, true),
    };
    sqlx::query_as(
        "SELECT idx, pattern, energy, minimum_id, expert FROM samples
         WHERE set_id = ? AND idx >= ?
         AND (NOT ? OR (? AND minimum_id IS NULL) OR minimum_id = ?)
         AND (? IS NULL OR energy <= ?)
         ORDER BY idx LIMIT ?",
    )
    .bind(set_id)
    .bind(f.offset)
    .bind(by_min)
    .bind(continuum)
    .bind(min_id)
    .bind(f.max_energy)
    .bind(f.max_energy)
    .bind(f.limit)
    .fetch_all(db.reader())
    .await
}
