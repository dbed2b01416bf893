//! `/v1/datasets`: upload (JSON or text/plain), list, read, patterns, rows, delete.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Id, QueryParams, body_bytes, media_type, parse_json};
use super::pagination::{Page, PageQuery};
use super::patterns::{PatternFormat, PatternOut};
use crate::engine::{Dataset, Pattern};
use crate::store::{self, datasets::DatasetRow};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// How the values of array patterns are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// 0/1 (strings of '0'/'1' or arrays of 0/1); bit b is the spin 2b − 1.
    #[default]
    Bits,
    /// −1/+1 arrays.
    Spins,
}

/// One row: a string of '0'/'1', or an array of integers. A non-integer element is remembered
/// with its column so the error can name it.
#[derive(Debug)]
pub enum RawPattern {
    Text(String),
    Values(Vec<i64>),
    BadValue {
        column: usize,
        value: String,
        len: usize,
    },
}

impl<'de> Deserialize<'de> for RawPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawPattern;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string of '0'/'1' or an array of integers")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawPattern, E> {
                Ok(RawPattern::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawPattern, E> {
                Ok(RawPattern::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawPattern, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                let mut bad: Option<(usize, String)> = None;
                while let Some(v) = seq.next_element::<Value>()? {
                    match v.as_i64() {
                        Some(x) if bad.is_none() => values.push(x),
                        Some(_) => {}
                        None => {
                            if bad.is_none() {
                                bad = Some((values.len(), v.to_string()));
                            }
                        }
                    }
                }
                Ok(match bad {
                    Some((column, value)) => RawPattern::BadValue {
                        column,
                        value,
                        len: values.len(),
                    },
                    None => RawPattern::Values(values),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A dataset upload in JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDataset {
    /// A name for people; need not be unique.
    pub name: String,
    /// One pattern per row: a string of '0'/'1', an array of 0/1, or (with `encoding: spins`) an
    /// array of −1/+1. All rows have the same length N.
    #[schema(value_type = Vec<Object>, example = json!(["0110", [1, 0, 0, 1]]))]
    pub patterns: Vec<RawPattern>,
    /// Positive integer count of each row (default 1 each).
    #[schema(value_type = Option<Vec<u64>>)]
    pub counts: Option<Vec<Value>>,
    /// A label per row (string or integer), e.g. the digit class.
    #[schema(value_type = Option<Vec<String>>)]
    pub labels: Option<Vec<Value>>,
    #[serde(default)]
    pub encoding: Encoding,
}

/// A stored dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetDto {
    pub id: i64,
    pub name: String,
    /// N, the number of spins of every pattern.
    pub n_spins: i64,
    /// M_tot, the number of rows (sum of counts).
    pub n_samples: i64,
    /// M, the number of distinct patterns.
    pub n_distinct: i64,
    /// Data entropy S_w = −Σ_μ w_μ ln w_μ, in nats.
    pub entropy: f64,
    /// SHA-256 of the canonical content (see the README: distinct patterns sorted, with counts).
    pub sha256: String,
    pub has_labels: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<DatasetRow> for DatasetDto {
    fn from(r: DatasetRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            n_spins: r.n_spins,
            n_samples: r.n_samples,
            n_distinct: r.n_distinct,
            entropy: r.entropy,
            sha256: r.sha256,
            has_labels: r.has_labels,
            created_at: r.created_at,
        }
    }
}

/// A distinct pattern of a dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetPattern {
    /// Index μ of the distinct pattern (order of first appearance).
    pub index: i64,
    pub pattern: PatternOut,
    /// n_μ.
    pub count: i64,
    /// w_μ = n_μ / M_tot.
    pub weight: f64,
    /// Label → number of rows with this pattern and label.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub labels: Option<Value>,
}

/// One original row.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetRowDto {
    pub row: i64,
    pub pattern: PatternOut,
    /// Index of its distinct pattern.
    pub index: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CreateQuery {
    /// Name of a text/plain upload.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PatternsQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `bits` (default) or `spins`.
    #[serde(default)]
    #[param(inline)]
    pub format: PatternFormat,
}

/// Upload a dataset.
///
/// JSON (`application/json`, see `CreateDataset`), or `text/plain` with one pattern per line as a
/// string of '0'/'1' (blank lines and lines starting with `#` are ignored; the name comes from
/// `?name=`). Identical rows are merged into distinct patterns with counts.
#[utoipa::path(
    post, path = "/v1/datasets", tag = "datasets",
    params(CreateQuery),
    request_body(content(
        (CreateDataset = "application/json"),
        (String = "text/plain", example = "0110\n1001\n")
    )),
    responses(
        (status = 201, description = "Created", body = DatasetDto),
        (status = 400, description = "Malformed body or unknown field", body = super::error::ErrorBody),
        (status = 413, description = "Body over the limit", body = super::error::ErrorBody),
        (status = 415, description = "Neither JSON nor text/plain", body = super::error::ErrorBody),
        (status = 422, description = "Invalid patterns, counts, labels or limits", body = super::error::ErrorBody),
    )
)]
pub async fn create_dataset(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<CreateQuery>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    let mt = media_type(req.headers());
    let parsed = match mt.as_deref() {
        Some("application/json") => {
            if q.name.is_some() {
                return Err(ApiError::invalid_query(
                    "name",
                    "give the name inside the JSON body, not in the query string",
                ));
            }
            let bytes = body_bytes(req, &state).await?;
            let body: CreateDataset = parse_json(&bytes)?;
            let max = (state.config.max_spins, state.config.max_rows);
            tokio::task::spawn_blocking(move || parse_json_upload(body, max.0, max.1))
                .await
                .map_err(ApiError::internal)??
        }
        Some("text/plain") => {
            let name = q.name.clone().unwrap_or_else(|| "unnamed".to_string());
            let bytes = body_bytes(req, &state).await?;
            let max = (state.config.max_spins, state.config.max_rows);
            tokio::task::spawn_blocking(move || parse_text_upload(&bytes, name, max.0, max.1))
                .await
                .map_err(ApiError::internal)??
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                match other {
                    Some(t) => format!(
                        "content type '{t}' is not accepted; send application/json or text/plain"
                    ),
                    None => "missing Content-Type; send application/json or text/plain".into(),
                },
            ));
        }
    };
    let sha = canonical_sha256(&parsed.dataset);
    let mut tx = state.db.begin_write().await?;
    let row = store::datasets::insert(
        &mut tx,
        &store::datasets::NewDataset {
            name: &parsed.name,
            dataset: &parsed.dataset,
            row_index: &parsed.row_index,
            row_labels: parsed.row_labels.as_deref(),
            pattern_labels: parsed.pattern_labels.as_deref(),
            sha256: &sha,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        dataset_id = row.id,
        n = row.n_spins,
        rows = row.n_samples,
        "dataset created"
    );
    Ok((StatusCode::CREATED, Json(DatasetDto::from(row))))
}

/// List datasets, newest first.
#[utoipa::path(
    get, path = "/v1/datasets", tag = "datasets",
    params(PageQuery),
    responses((status = 200, body = Page<DatasetDto>), (status = 400, body = super::error::ErrorBody))
)]
pub async fn list_datasets(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Page<DatasetDto>>> {
    let (limit, before) = q.id_cursor()?;
    let rows = store::datasets::list(&state.db, limit + 1, before).await?;
    Ok(Json(Page::from_id_rows(
        rows,
        limit,
        |r| r.id,
        DatasetDto::from,
    )))
}

/// One dataset.
#[utoipa::path(
    get, path = "/v1/datasets/{id}", tag = "datasets",
    params(("id" = i64, Path, description = "Dataset id")),
    responses((status = 200, body = DatasetDto), (status = 404, body = super::error::ErrorBody))
)]
pub async fn get_dataset(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<DatasetDto>> {
    Ok(Json(fetch(&state, id).await?.into()))
}

pub async fn fetch(state: &AppState, id: i64) -> ApiResult<DatasetRow> {
    store::datasets::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::DatasetNotFound, "dataset", id))
}

/// The distinct patterns with their counts, weights and labels, in order of first appearance.
#[utoipa::path(
    get, path = "/v1/datasets/{id}/patterns", tag = "datasets",
    params(("id" = i64, Path, description = "Dataset id"), PatternsQuery),
    responses((status = 200, body = Page<DatasetPattern>), (status = 404, body = super::error::ErrorBody))
)]
pub async fn list_patterns(
    State(state): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<PatternsQuery>,
) -> ApiResult<Json<Page<DatasetPattern>>> {
    let ds = fetch(&state, id).await?;
    let (limit, offset) = PageQuery::offset_cursor(q.limit, q.cursor.as_deref())?;
    let rows = store::datasets::patterns(&state.db, id, offset, limit + 1).await?;
    let n = ds.n_spins as usize;
    let total = ds.n_samples as f64;
    let mut items = Vec::with_capacity(rows.len());
    for r in rows.into_iter().take(limit as usize) {
        let p = Pattern::from_bytes(&r.pattern, n)
            .ok_or_else(|| ApiError::internal(format!("dataset {id} pattern {} corrupt", r.idx)))?;
        items.push(DatasetPattern {
            index: r.idx,
            pattern: PatternOut::new(&p, q.format),
            count: r.count,
            weight: r.count as f64 / total,
            labels: r
                .labels
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
        });
    }
    let next = (offset + limit < ds.n_distinct).then(|| (offset + limit).to_string());
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// The original rows in upload order (with their labels), bit-exact.
#[utoipa::path(
    get, path = "/v1/datasets/{id}/rows", tag = "datasets",
    params(("id" = i64, Path, description = "Dataset id"), PatternsQuery),
    responses((status = 200, body = Page<DatasetRowDto>), (status = 404, body = super::error::ErrorBody))
)]
pub async fn list_rows(
    State(state): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<PatternsQuery>,
) -> ApiResult<Json<Page<DatasetRowDto>>> {
    let ds = fetch(&state, id).await?;
    let (limit, offset) = PageQuery::offset_cursor(q.limit, q.cursor.as_deref())?;
    let (index, labels) = store::datasets::rows(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::DatasetNotFound, "dataset", id))?;
    let start = (offset as usize).min(index.len());
    let end = (start + limit as usize).min(index.len());
    let needed: Vec<u32> = index[start..end].to_vec();
    let (lo, hi) = (
        needed.iter().min().copied().unwrap_or(0) as i64,
        needed.iter().max().copied().unwrap_or(0) as i64,
    );
    let pats = store::datasets::patterns(&state.db, id, lo, hi - lo + 1).await?;
    let n = ds.n_spins as usize;
    let mut items = Vec::with_capacity(end - start);
    for (k, &pi) in needed.iter().enumerate() {
        let r = &pats[(pi as i64 - lo) as usize];
        let p = Pattern::from_bytes(&r.pattern, n)
            .ok_or_else(|| ApiError::internal(format!("dataset {id} pattern {pi} corrupt")))?;
        items.push(DatasetRowDto {
            row: (start + k) as i64,
            pattern: PatternOut::new(&p, q.format),
            index: pi as i64,
            label: labels.as_ref().map(|l| l[start + k].clone()),
        });
    }
    let next = (end < index.len()).then(|| end.to_string());
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// Delete a dataset (409 while a model trained on it exists).
#[utoipa::path(
    delete, path = "/v1/datasets/{id}", tag = "datasets",
    params(("id" = i64, Path, description = "Dataset id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "A model uses it", body = super::error::ErrorBody)
    )
)]
pub async fn delete_dataset(State(state): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    if store::jobs::active_using(&state.db, Some(id), None).await? {
        return Err(ApiError::conflict(
            ErrorCode::DatasetInUse,
            format!("dataset {id} is used by a queued or running job; cancel it first"),
        )
        .with_details(json!({ "id": id })));
    }
    let mut tx = state.db.begin_write().await?;
    match store::datasets::delete(&mut tx, id).await {
        Ok(true) => {
            tx.commit().await?;
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(ApiError::not_found(
            ErrorCode::DatasetNotFound,
            "dataset",
            id,
        )),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(ApiError::conflict(
            ErrorCode::DatasetInUse,
            format!("dataset {id} is used by a model or job; delete those first"),
        )
        .with_details(json!({ "id": id }))),
        Err(e) => Err(e.into()),
    }
}

/// A validated upload.
pub struct ParsedUpload {
    pub name: String,
    pub dataset: Dataset,
    pub row_index: Vec<u32>,
    pub row_labels: Option<Vec<String>>,
    pub pattern_labels: Option<Vec<String>>,
}

fn invalid_pattern(message: String, details: Value) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidPattern,
        message,
    )
    .with_details(details)
}

fn ragged(row: usize, len: usize, n: usize, where_: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RaggedRows,
        format!("{where_} has {len} values but the first row has {n}"),
    )
    .with_details(json!({ "row": row, "length": len, "expected": n }))
}

fn check_limits(n: usize, rows: usize, max_spins: usize, max_rows: usize) -> ApiResult<()> {
    if n > max_spins {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooManySpins,
            format!(
                "patterns have N = {n} spins, above the limit of {max_spins} (BOUNDSTATE_MAX_SPINS)"
            ),
        )
        .with_details(json!({ "n_spins": n, "max_spins": max_spins })));
    }
    if rows > max_rows {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooManyRows,
            format!("{rows} rows, above the limit of {max_rows} (BOUNDSTATE_MAX_ROWS)"),
        )
        .with_details(json!({ "rows": rows, "max_rows": max_rows })));
    }
    Ok(())
}

fn empty() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::EmptyDataset,
        "the dataset has no patterns",
    )
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::invalid_field(
            "name",
            "must be 1 to 200 characters",
        ));
    }
    Ok(())
}

/// Validate a JSON upload: rows, counts, labels, limits.
pub fn parse_json_upload(
    body: CreateDataset,
    max_spins: usize,
    max_rows: usize,
) -> ApiResult<ParsedUpload> {
    check_name(&body.name)?;
    if body.patterns.is_empty() {
        return Err(empty());
    }
    let rows = body.patterns.len();
    let n = match &body.patterns[0] {
        RawPattern::Text(s) => s.chars().count(),
        RawPattern::Values(v) => v.len(),
        RawPattern::BadValue { len, .. } => *len,
    };
    if n == 0 {
        return Err(invalid_pattern(
            "row 0 is empty".into(),
            json!({ "row": 0 }),
        ));
    }
    check_limits(n, rows, max_spins, max_rows)?;
    let counts: Vec<u64> = match &body.counts {
        None => vec![1; rows],
        Some(c) => {
            if c.len() != rows {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidCounts,
                    format!("{} counts for {rows} rows; give one count per row", c.len()),
                )
                .with_details(json!({ "counts": c.len(), "rows": rows })));
            }
            c.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_u64().filter(|&x| x >= 1).ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            ErrorCode::InvalidCounts,
                            format!("counts[{i}] is {v}; a count must be a positive integer"),
                        )
                        .with_details(json!({ "row": i }))
                    })
                })
                .collect::<ApiResult<_>>()?
        }
    };
    let labels: Option<Vec<String>> = match &body.labels {
        None => None,
        Some(l) => {
            if l.len() != rows {
                return Err(ApiError::invalid_field(
                    "labels",
                    format!("{} labels for {rows} rows; give one label per row", l.len()),
                ));
            }
            Some(
                l.iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) => Ok(s.clone()),
                        Value::Number(x) if x.is_i64() || x.is_u64() => Ok(x.to_string()),
                        _ => Err(ApiError::invalid_field(
                            format!("labels[{i}]"),
                            "a label must be a string or an integer",
                        )),
                    })
                    .collect::<ApiResult<_>>()?,
            )
        }
    };
    let mut parsed = Vec::with_capacity(rows);
    let mut bits = vec![0u8; n];
    for (row, raw) in body.patterns.iter().enumerate() {
        match raw {
            RawPattern::Text(s) => {
                if body.encoding == Encoding::Spins {
                    return Err(invalid_pattern(
                        format!(
                            "row {row} is a string, but encoding 'spins' needs an array of -1/+1"
                        ),
                        json!({ "row": row }),
                    ));
                }
                let len = s.chars().count();
                if len != n {
                    return Err(ragged(row, len, n, &format!("row {row}")));
                }
                let p = Pattern::parse_bits(s).map_err(|(col, c)| {
                    invalid_pattern(
                        format!("row {row}: character '{c}' at column {col} is not 0 or 1"),
                        json!({ "row": row, "column": col }),
                    )
                })?;
                parsed.push((p, counts[row]));
            }
            RawPattern::BadValue { column, value, .. } => {
                return Err(invalid_pattern(
                    format!("row {row}: value {value} at column {column} is not an integer"),
                    json!({ "row": row, "column": column }),
                ));
            }
            RawPattern::Values(v) => {
                if v.len() != n {
                    return Err(ragged(row, v.len(), n, &format!("row {row}")));
                }
                for (col, &x) in v.iter().enumerate() {
                    bits[col] = match (body.encoding, x) {
                        (Encoding::Bits, 0) | (Encoding::Spins, -1) => 0,
                        (Encoding::Bits, 1) | (Encoding::Spins, 1) => 1,
                        (enc, _) => {
                            let allowed = if enc == Encoding::Bits {
                                "0 or 1"
                            } else {
                                "-1 or +1"
                            };
                            return Err(invalid_pattern(
                                format!(
                                    "row {row}: value {x} at column {col} is not {allowed} (encoding '{}')",
                                    if enc == Encoding::Bits {
                                        "bits"
                                    } else {
                                        "spins"
                                    }
                                ),
                                json!({ "row": row, "column": col }),
                            ));
                        }
                    };
                }
                parsed.push((Pattern::from_bits(&bits), counts[row]));
            }
        }
    }
    finish(body.name, n, parsed, labels, &counts)
}

/// Validate a text/plain upload: one '0'/'1' string per line.
pub fn parse_text_upload(
    bytes: &[u8],
    name: String,
    max_spins: usize,
    max_rows: usize,
) -> ApiResult<ParsedUpload> {
    check_name(&name)?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPattern,
            format!("the body is not UTF-8 text (byte {})", e.valid_up_to()),
        )
    })?;
    let mut parsed = Vec::new();
    let mut n = 0usize;
    let mut first_line = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let row = parsed.len();
        let len = t.chars().count();
        if row == 0 {
            n = len;
            first_line = line_no;
            check_limits(n, 0, max_spins, max_rows)?;
        } else if len != n {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::RaggedRows,
                format!("line {line_no} (row {row}) has {len} characters but line {first_line} (row 0) has {n}"),
            )
            .with_details(json!({ "row": row, "line": line_no, "length": len, "expected": n })));
        }
        if row >= max_rows {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::TooManyRows,
                format!("more than {max_rows} rows (BOUNDSTATE_MAX_ROWS)"),
            )
            .with_details(json!({ "max_rows": max_rows })));
        }
        let p = Pattern::parse_bits(t).map_err(|(col, c)| {
            invalid_pattern(
                format!(
                    "line {line_no} (row {row}): character '{c}' at column {col} is not 0 or 1"
                ),
                json!({ "row": row, "line": line_no, "column": col }),
            )
        })?;
        parsed.push((p, 1u64));
    }
    if parsed.is_empty() {
        return Err(empty());
    }
    let counts = vec![1u64; parsed.len()];
    finish(name, n, parsed, None, &counts)
}

fn finish(
    name: String,
    n: usize,
    rows: Vec<(Pattern, u64)>,
    labels: Option<Vec<String>>,
    counts: &[u64],
) -> ApiResult<ParsedUpload> {
    let (dataset, row_index) = Dataset::from_rows(n, rows).map_err(ApiError::from)?;
    let pattern_labels = labels.as_ref().map(|l| {
        let mut per: Vec<BTreeMap<&str, u64>> = vec![BTreeMap::new(); dataset.len()];
        for (r, &k) in row_index.iter().enumerate() {
            *per[k as usize].entry(l[r].as_str()).or_default() += counts[r];
        }
        per.iter()
            .map(|m| serde_json::to_string(m).expect("map serialises"))
            .collect()
    });
    Ok(ParsedUpload {
        name,
        dataset,
        row_index,
        row_labels: labels,
        pattern_labels,
    })
}

/// SHA-256 of the canonical content: the line `boundstate-dataset-v1 N`, then one line
/// `<bits> <count>` per distinct pattern in ascending order of its bit string. Row order and
/// labels do not enter.
pub fn canonical_sha256(ds: &Dataset) -> String {
    let mut order: Vec<(String, u64)> = ds
        .patterns()
        .iter()
        .zip(ds.counts())
        .map(|(p, &c)| (p.to_string(), c))
        .collect();
    order.sort_unstable();
    let mut h = Sha256::new();
    h.update(format!("boundstate-dataset-v1 {}\n", ds.n()).as_bytes());
    for (bits, c) in order {
        h.update(bits.as_bytes());
        h.update(format!(" {c}\n").as_bytes());
    }
    hex::encode(h.finalize())
}
