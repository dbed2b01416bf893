//! The library of a model: censuses with their minima, and landscape scans.

use super::{Db, StoreError};
use crate::engine::Pattern;
use crate::engine::census::{Census, Minimum, MinimumKind};
use sqlx::{AssertSqlSafe, FromRow, SqliteConnection};

#[derive(Debug, Clone, FromRow)]
pub struct CensusRow {
    pub id: i64,
    pub model_id: i64,
    pub job_id: Option<i64>,
    pub method: String,
    pub temperature: f64,
    pub n_minima: i64,
    pub summary: String,
    pub created_at: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct MinimumRow {
    pub id: i64,
    pub census_id: i64,
    pub model_id: i64,
    pub rank: i64,
    pub pattern: Vec<u8>,
    pub energy: f64,
    pub free_energy: f64,
    pub weight: f64,
    pub magnetisation: f64,
    pub stability: f64,
    pub strict: bool,
    pub basin_size: f64,
    pub attracted: i64,
    pub attracted_weight: f64,
    pub nearest_training: i64,
    pub hamming: i64,
    pub kind: String,
}

const CENSUS: &str = "id, model_id, job_id, method, temperature, n_minima, summary, created_at";
const MINIMUM: &str = "id, census_id, model_id, rank, pattern, energy, free_energy, weight, magnetisation, \
     stability, strict, basin_size, attracted, attracted_weight, nearest_training, hamming, kind";

fn kind_str(k: MinimumKind) -> &'static str {
    match k {
        MinimumKind::Memory => "memory",
        MinimumKind::FalseState => "false_state",
    }
}

/// Store a census and its minima; `summary` is everything but the minima (JSON).
pub async fn insert_census(
    conn: &mut SqliteConnection,
    model_id: i64,
    job_id: Option<i64>,
    census: &Census,
    summary: &str,
) -> Result<i64, StoreError> {
    let method = serde_json::to_value(census.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO censuses (model_id, job_id, method, temperature, n_minima, summary, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(model_id)
    .bind(job_id)
    .bind(&method)
    .bind(census.temperature)
    .bind(census.minima.len() as i64)
    .bind(summary)
    .bind(super::now())
    .fetch_one(&mut *conn)
    .await?;
    for (rank, m) in census.minima.iter().enumerate() {
        insert_minimum(conn, id, model_id, rank, m).await?;
    }
    Ok(id)
}

async fn insert_minimum(
    conn: &mut SqliteConnection,
    census_id: i64,
    model_id: i64,
    rank: usize,
    m: &Minimum,
) -> Result<(), StoreError> {
    let p = Pattern::parse_bits(&m.pattern)
        .map_err(|(i, c)| StoreError::Protocol(format!("minimum pattern: '{c}' at {i}")))?;
    sqlx::query(
        "INSERT INTO minima (census_id, model_id, rank, pattern, energy, free_energy, weight, magnetisation,
         stability, strict, basin_size, attracted, attracted_weight, nearest_training, hamming, kind)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(census_id)
    .bind(model_id)
    .bind(rank as i64)
    .bind(p.to_bytes())
    .bind(m.energy)
    .bind(m.free_energy)
    .bind(m.weight)
    .bind(m.magnetisation)
    .bind(m.stability)
    .bind(m.strict)
    .bind(m.basin_size)
    .bind(m.attracted as i64)
    .bind(m.attracted_weight)
    .bind(m.nearest_training as i64)
    .bind(m.hamming as i64)
    .bind(kind_str(m.kind))
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest census of a model (at a temperature, when given: within 1e-9 relative).
pub async fn latest_census(
    db: &Db,
    model_id: i64,
    temperature: Option<f64>,
) -> Result<Option<CensusRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {CENSUS} FROM censuses WHERE model_id = ?
         AND (? IS NULL OR abs(temperature - ?) <= 1e-9 * abs(temperature))
         ORDER BY id DESC LIMIT 1"
    )))
    .bind(model_id)
    .bind(temperature)
    .bind(temperature)
    .fetch_optional(db.reader())
    .await
}

pub struct MinimaFilter<'a> {
    pub kind: Option<&'a str>,
    pub min_weight: Option<f64>,
    pub offset: i64,
    pub limit: i64,
}

/// Minima of a census by rank (free energy ascending).
pub async fn minima(
    db: &Db,
    census_id: i64,
    f: &MinimaFilter<'_>,
) -> Result<Vec<MinimumRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {MINIMUM} FROM minima WHERE census_id = ? AND rank >= ?
         AND (? IS NULL OR kind = ?) AND (? IS NULL OR weight >= ?)
         ORDER BY rank LIMIT ?"
    )))
    .bind(census_id)
    .bind(f.offset)
    .bind(f.kind)
    .bind(f.kind)
    .bind(f.min_weight)
    .bind(f.min_weight)
    .bind(f.limit)
    .fetch_all(db.reader())
    .await
}

pub async fn minimum(db: &Db, id: i64) -> Result<Option<MinimumRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {MINIMUM} FROM minima WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(db.reader())
    .await
}

/// Every minimum of a census (for matching end states).
pub async fn all_minima(db: &Db, census_id: i64) -> Result<Vec<MinimumRow>, StoreError> {
    minima(
        db,
        census_id,
        &MinimaFilter {
            kind: None,
            min_weight: None,
            offset: 0,
            limit: i64::MAX,
        },
    )
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct LandscapeRow {
    pub id: i64,
    pub model_id: i64,
    pub job_id: Option<i64>,
    pub result: String,
    pub created_at: String,
}

pub async fn insert_landscape(
    conn: &mut SqliteConnection,
    model_id: i64,
    job_id: Option<i64>,
    result: &str,
) -> Result<i64, StoreError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO landscapes (model_id, job_id, result, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(model_id)
    .bind(job_id)
    .bind(result)
    .bind(super::now())
    .fetch_one(conn)
    .await?;
    Ok(id)
}

pub async fn latest_landscape(db: &Db, model_id: i64) -> Result<Option<LandscapeRow>, StoreError> {
    sqlx::query_as(
        "SELECT id, model_id, job_id, result, created_at FROM landscapes WHERE model_id = ?
         ORDER BY id DESC LIMIT 1",
    )
    .bind(model_id)
    .fetch_optional(db.reader())
    .await
}
