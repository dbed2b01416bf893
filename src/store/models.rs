//! Models: the couplings BLOB (engine codec) beside typed columns.

use super::{Db, StoreError};
use crate::engine::{Model, codec};
use sqlx::{AssertSqlSafe, FromRow, SqliteConnection};

#[derive(Debug, Clone, FromRow)]
pub struct ModelRow {
    pub id: i64,
    pub name: Option<String>,
    pub kind: String,
    pub dataset_id: Option<i64>,
    pub dataset_sha256: Option<String>,
    pub job_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub method: String,
    pub description: String,
    pub model_order: Option<i64>,
    pub n_spins: i64,
    pub n_couplings: i64,
    pub temperature: f64,
    pub sha256: Option<String>,
    pub report: String,
    pub created_at: String,
}

const COLUMNS: &str = "id, name, kind, dataset_id, dataset_sha256, job_id, parent_id, method, description, \
     model_order, n_spins, n_couplings, temperature, sha256, report, created_at";

pub struct NewModel<'a> {
    pub name: Option<&'a str>,
    pub kind: &'a str,
    pub dataset_id: Option<i64>,
    pub dataset_sha256: Option<&'a str>,
    pub job_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub method: &'a str,
    pub temperature: f64,
    /// `None` for a mixture (its experts carry couplings).
    pub model: Option<&'a Model>,
    /// For a mixture: N, description label and number of couplings summed over experts.
    pub shape: Option<(usize, &'a str, usize)>,
    pub report: &'a str,
}

/// Description label and order of a model.
pub fn describe(model: &Model) -> (&'static str, Option<i64>) {
    use crate::engine::Description;
    match model.description() {
        Description::Order(k) => ("order", Some(*k as i64)),
        Description::Full => ("full", None),
        Description::Custom => ("custom", Some(model.set().max_order() as i64)),
    }
}

pub async fn insert(
    conn: &mut SqliteConnection,
    new: &NewModel<'_>,
) -> Result<ModelRow, StoreError> {
    let (description, order, n, n_couplings, blob): (_, _, _, _, Option<Vec<u8>>) =
        match (new.model, new.shape) {
            (Some(m), _) => {
                let (d, k) = describe(m);
                (d, k, m.n(), m.set().len(), Some(codec::encode(m)))
            }
            (None, Some((n, d, c))) => (d, None, n, c, None),
            (None, None) => {
                return Err(StoreError::Protocol(
                    "a model needs couplings or a shape".into(),
                ));
            }
        };
    sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO models (name, kind, dataset_id, dataset_sha256, job_id, parent_id, method, description,
         model_order, n_spins, n_couplings, temperature, couplings, sha256, report, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
    )))
    .bind(new.name)
    .bind(new.kind)
    .bind(new.dataset_id)
    .bind(new.dataset_sha256)
    .bind(new.job_id)
    .bind(new.parent_id)
    .bind(new.method)
    .bind(description)
    .bind(order)
    .bind(n as i64)
    .bind(n_couplings as i64)
    .bind(new.temperature)
    .bind(blob.as_deref())
    .bind(blob.as_deref().map(|b| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))))
    .bind(new.report)
    .bind(super::now())
    .fetch_one(conn)
    .await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<ModelRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM models WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(db.reader())
    .await
}

/// Top-level models (not experts), newest first.
pub async fn list(
    db: &Db,
    dataset_id: Option<i64>,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<ModelRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM models WHERE id < ? AND kind != 'expert' AND (? IS NULL OR dataset_id = ?)
         ORDER BY id DESC LIMIT ?"
    )))
    .bind(before.unwrap_or(i64::MAX))
    .bind(dataset_id)
    .bind(dataset_id)
    .bind(limit)
    .fetch_all(db.reader())
    .await
}

/// The experts of a mixture, in order.
pub async fn experts(db: &Db, parent_id: i64) -> Result<Vec<ModelRow>, StoreError> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM models WHERE parent_id = ? AND kind = 'expert' ORDER BY id"
    )))
    .bind(parent_id)
    .fetch_all(db.reader())
    .await
}

/// The couplings of a single model or expert.
pub async fn load(db: &Db, id: i64) -> Result<Option<Model>, StoreError> {
    let r: Option<(Option<Vec<u8>>,)> = sqlx::query_as("SELECT couplings FROM models WHERE id = ?")
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    match r {
        Some((Some(bytes),)) => codec::decode(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Decode(format!("model {id}: {e}").into())),
        _ => Ok(None),
    }
}

pub async fn delete(conn: &mut SqliteConnection, id: i64) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM models WHERE id = ? AND kind != 'expert'")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Replace a model's report (a mixture's, once its experts have ids).
pub async fn set_report(
    conn: &mut SqliteConnection,
    id: i64,
    report: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE models SET report = ? WHERE id = ?")
        .bind(report)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
