//! The library of a model: `POST/GET /v1/models/{id}/census`, `GET /v1/models/{id}/minima`,
//! `GET /v1/models/{id}/minima/{minimum_id}`, `POST/GET /v1/models/{id}/landscape` and
//! `GET /v1/models/{id}/landscape.svg`.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, in_range};
use super::extract::{Id, OptionalJsonBody, QueryParams, parse_id};
use super::jobs::{JobDto, JobKind, Submission, submit};
use super::models::{check_temperature, fetch};
use super::pagination::{Page, PageQuery};
use super::patterns::{PatternFormat, PatternOut};
use crate::engine::Pattern;
use crate::engine::census::CensusMethod;
use crate::service::census::{CensusParams, LandscapeParams};
use crate::store::{self, library::CensusRow, library::MinimumRow, models::ModelRow};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// A census request; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CensusRequest {
    /// Default: the model's T.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// `exact` (N ≤ the exact cap), `mean_field` or `sampling`. Default: exact where N allows,
    /// else mean_field checked by sampling.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "exact")]
    pub method: Option<CensusMethod>,
    /// Random starts besides the training patterns (mean field and sampling).
    #[serde(default)]
    pub random_starts: Option<usize>,
    /// Chains of a sampling census.
    #[serde(default)]
    pub sampling_chains: Option<usize>,
    /// Sweeps per chain of a sampling census.
    #[serde(default)]
    pub sampling_sweeps: Option<usize>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// Find the model's library of minima at a temperature (a job).
#[utoipa::path(
    post, path = "/v1/models/{id}/census", tag = "library",
    params(("id" = i64, Path, description = "Model id")),
    request_body = CensusRequest,
    responses(
        (status = 202, body = JobDto),
        (status = 404, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)
    )
)]
pub async fn create_census(
    State(state): State<AppState>,
    Id(id): Id,
    OptionalJsonBody(r): OptionalJsonBody<CensusRequest>,
) -> ApiResult<(StatusCode, Json<JobDto>)> {
    let row = single_model(&state, id).await?;
    let t = r.temperature.unwrap_or(row.temperature);
    check_temperature(t, "temperature")?;
    let n = row.n_spins as usize;
    let exact_max = state.config.exact_max_spins;
    let seed = r.seed.unwrap_or_else(|| rand::random::<u64>() >> 11);
    let mut p = CensusParams::default_for(id, t, n, exact_max, seed);
    if let Some(m) = r.method {
        if m == CensusMethod::Exact && n > exact_max {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::Unprocessable,
                format!(
                    "method: `exact` enumerates 2^N states; N = {n} is above the cap of {exact_max}; use mean_field or sampling"
                ),
            )
            .with_details(json!({ "field": "method" })));
        }
        p.method = m;
        p.check_by_sampling = false;
    }
    p.random_starts = in_range(
        r.random_starts.unwrap_or(p.random_starts),
        "random_starts",
        0,
        100_000,
    )?;
    p.sampling_chains = in_range(
        r.sampling_chains.unwrap_or(p.sampling_chains),
        "sampling_chains",
        1,
        10_000,
    )?;
    p.sampling_sweeps = in_range(
        r.sampling_sweeps.unwrap_or(p.sampling_sweeps),
        "sampling_sweeps",
        1,
        1_000_000,
    )?;
    let work = (p.sampling_chains as u128) * (p.sampling_sweeps as u128) * (n as u128)
        + (p.random_starts as u128) * (n as u128) * (n as u128);
    if work > state.config.max_work as u128 {
        return Err(ApiError::work_limit(
            "sampling_chains × sampling_sweeps × N + random_starts × N²",
            work,
            state.config.max_work,
            "BOUNDSTATE_MAX_WORK",
            "sampling_sweeps",
        ));
    }
    let params = serde_json::to_value(&p).map_err(ApiError::internal)?;
    submit(
        &state,
        Submission {
            kind: JobKind::Census,
            name: None,
            params: &params,
            dataset_id: row.dataset_id,
            model_id: Some(id),
            callback_url: r.callback_url.as_deref(),
        },
    )
    .await
}

/// A single model or expert (a mixture's library lives in its experts).
async fn single_model(state: &AppState, id: i64) -> ApiResult<ModelRow> {
    let row = fetch(state, id).await?;
    if row.kind == "mixture" {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unprocessable,
            format!(
                "model {id} is a mixture: each expert has its own library (GET /v1/models/{id} lists them)"
            ),
        ));
    }
    Ok(row)
}

/// A stored census (without its minima: see `/minima`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CensusDto {
    pub id: i64,
    pub model_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    pub method: String,
    pub temperature: f64,
    pub n_minima: i64,
    /// Continuum (free energy, weight), ln Z, the assignment of training patterns to minima,
    /// the ergodicity report and, for mean field, the check by sampling.
    #[schema(value_type = Object)]
    pub summary: Value,
    pub created_at: String,
}

impl From<CensusRow> for CensusDto {
    fn from(r: CensusRow) -> Self {
        Self {
            id: r.id,
            model_id: r.model_id,
            job_id: r.job_id,
            method: r.method,
            temperature: r.temperature,
            n_minima: r.n_minima,
            summary: serde_json::from_str(&r.summary).unwrap_or(Value::Null),
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CensusQuery {
    /// The census at this temperature (default: the newest).
    pub temperature: Option<f64>,
}

pub async fn latest(state: &AppState, id: i64, t: Option<f64>) -> ApiResult<CensusRow> {
    store::library::latest_census(&state.db, id, t)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::CensusNotFound,
                match t {
                    Some(t) => {
                        format!("model {id} has no census at T = {t}; POST /v1/models/{id}/census")
                    }
                    None => format!("model {id} has no census yet; POST /v1/models/{id}/census"),
                },
            )
            .with_details(json!({ "model_id": id }))
        })
}

/// The newest census of a model.
#[utoipa::path(
    get, path = "/v1/models/{id}/census", tag = "library",
    params(("id" = i64, Path, description = "Model id"), CensusQuery),
    responses((status = 200, body = CensusDto), (status = 404, body = super::error::ErrorBody))
)]
pub async fn get_census(
    State(state): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<CensusQuery>,
) -> ApiResult<Json<CensusDto>> {
    fetch(&state, id).await?;
    Ok(Json(latest(&state, id, q.temperature).await?.into()))
}

/// A minimum of the free energy: a bound state of the library.
#[derive(Debug, Serialize, ToSchema)]
pub struct MinimumDto {
    /// Stable id (use it in `init: {"minimum": id}`).
    pub id: i64,
    pub census_id: i64,
    /// 0 = lowest free energy.
    pub rank: i64,
    pub pattern: PatternOut,
    pub energy: f64,
    /// F = −T ln Z_basin (exact), F(m) (mean field), or from time spent (sampling).
    pub free_energy: f64,
    /// Its share of the Boltzmann weight at the census temperature.
    pub weight: f64,
    pub magnetisation: f64,
    /// min_a σ_a h_a (≥ 0 at a minimum; 0 for a weak one).
    pub stability: f64,
    pub strict: bool,
    pub basin_size: f64,
    /// Training patterns whose quench ends here, and their total weight.
    pub attracted: i64,
    pub attracted_weight: f64,
    /// Index of the nearest distinct training pattern, and the Hamming distance to it.
    pub nearest_training: i64,
    pub hamming: i64,
    /// `memory` (it is a training pattern) or `false_state`.
    pub kind: String,
}

impl MinimumDto {
    pub fn new(r: MinimumRow, n: usize, format: PatternFormat) -> ApiResult<Self> {
        let p = Pattern::from_bytes(&r.pattern, n)
            .ok_or_else(|| ApiError::internal(format!("minimum {} pattern is corrupt", r.id)))?;
        Ok(Self {
            id: r.id,
            census_id: r.census_id,
            rank: r.rank,
            pattern: PatternOut::new(&p, format),
            energy: r.energy,
            free_energy: r.free_energy,
            weight: r.weight,
            magnetisation: r.magnetisation,
            stability: r.stability,
            strict: r.strict,
            basin_size: r.basin_size,
            attracted: r.attracted,
            attracted_weight: r.attracted_weight,
            nearest_training: r.nearest_training,
            hamming: r.hamming,
            kind: r.kind,
        })
    }
}

#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindFilter {
    Memory,
    FalseState,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MinimaQuery {
    #[param(inline)]
    pub kind: Option<KindFilter>,
    /// The census at this temperature (default: the newest).
    pub temperature: Option<f64>,
    pub min_weight: Option<f64>,
    #[param(inline)]
    #[serde(default)]
    pub format: PatternFormat,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The minima of the newest census (or the one at `temperature`), by free energy.
#[utoipa::path(
    get, path = "/v1/models/{id}/minima", tag = "library",
    params(("id" = i64, Path, description = "Model id"), MinimaQuery),
    responses((status = 200, body = Page<MinimumDto>), (status = 404, body = super::error::ErrorBody))
)]
pub async fn list_minima(
    State(state): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<MinimaQuery>,
) -> ApiResult<Json<Page<MinimumDto>>> {
    let model = fetch(&state, id).await?;
    let census = latest(&state, id, q.temperature).await?;
    let (limit, offset) = PageQuery::offset_cursor(q.limit, q.cursor.as_deref())?;
    let kind = q.kind.map(|k| match k {
        KindFilter::Memory => "memory",
        KindFilter::FalseState => "false_state",
    });
    let rows = store::library::minima(
        &state.db,
        census.id,
        &store::library::MinimaFilter {
            kind,
            min_weight: q.min_weight,
            offset,
            limit: limit + 1,
        },
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let next = if more {
        rows.get(limit as usize).map(|r| r.rank.to_string())
    } else {
        None
    };
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| MinimumDto::new(r, model.n_spins as usize, q.format))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    #[param(inline)]
    #[serde(default)]
    pub format: PatternFormat,
}

/// One minimum.
#[utoipa::path(
    get, path = "/v1/models/{id}/minima/{minimum_id}", tag = "library",
    params(("id" = i64, Path, description = "Model id"), ("minimum_id" = i64, Path, description = "Minimum id"), FormatQuery),
    responses((status = 200, body = MinimumDto), (status = 404, body = super::error::ErrorBody))
)]
pub async fn get_minimum(
    State(state): State<AppState>,
    Path((id, minimum_id)): Path<(String, String)>,
    QueryParams(q): QueryParams<FormatQuery>,
) -> ApiResult<Json<MinimumDto>> {
    let id = parse_id("id", &id)?;
    let minimum_id = parse_id("minimum_id", &minimum_id)?;
    let model = fetch(&state, id).await?;
    let m = find_minimum(&state, id, minimum_id).await?;
    Ok(Json(MinimumDto::new(m, model.n_spins as usize, q.format)?))
}

/// A minimum that belongs to the model, or 404 naming it.
pub async fn find_minimum(
    state: &AppState,
    model_id: i64,
    minimum_id: i64,
) -> ApiResult<MinimumRow> {
    store::library::minimum(&state.db, minimum_id)
        .await?
        .filter(|m| m.model_id == model_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::MinimumNotFound,
                format!("model {model_id} has no minimum {minimum_id}"),
            )
            .with_details(json!({ "model_id": model_id, "minimum_id": minimum_id }))
        })
}

/// A temperature scan.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LandscapeRequest {
    /// Default: T/4 of the model.
    #[serde(default)]
    pub t_min: Option<f64>,
    /// Default: 4 T of the model.
    #[serde(default)]
    pub t_max: Option<f64>,
    /// Temperatures on the grid (default 25, at most 200).
    #[serde(default)]
    pub steps: Option<usize>,
    /// Census method at each T (default: exact where N allows, else mean_field).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub method: Option<CensusMethod>,
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// Scan temperatures: library probability, number of minima, continuum weight, and the melting
/// temperature T_× where the library probability crosses 1/2 (a job).
#[utoipa::path(
    post, path = "/v1/models/{id}/landscape", tag = "library",
    params(("id" = i64, Path, description = "Model id")),
    request_body = LandscapeRequest,
    responses(
        (status = 202, body = JobDto),
        (status = 404, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)
    )
)]
pub async fn create_landscape(
    State(state): State<AppState>,
    Id(id): Id,
    OptionalJsonBody(r): OptionalJsonBody<LandscapeRequest>,
) -> ApiResult<(StatusCode, Json<JobDto>)> {
    let row = single_model(&state, id).await?;
    let t_min = r.t_min.unwrap_or(row.temperature / 4.0);
    let t_max = r.t_max.unwrap_or(row.temperature * 4.0);
    check_temperature(t_min, "t_min")?;
    check_temperature(t_max, "t_max")?;
    if t_max <= t_min {
        return Err(ApiError::invalid_field(
            "t_max",
            format!("must be above t_min = {t_min}, got {t_max}"),
        ));
    }
    let steps = in_range(r.steps.unwrap_or(25), "steps", 2, 200)?;
    let n = row.n_spins as usize;
    let exact_max = state.config.exact_max_spins;
    let method = r.method.unwrap_or(if n <= exact_max {
        CensusMethod::Exact
    } else {
        CensusMethod::MeanField
    });
    if method == CensusMethod::Exact && n > exact_max {
        return Err(ApiError::invalid_field(
            "method",
            format!("`exact` needs N ≤ {exact_max}, the model has N = {n}"),
        ));
    }
    let params = serde_json::to_value(LandscapeParams {
        model_id: id,
        t_min,
        t_max,
        steps,
        method,
    })
    .map_err(ApiError::internal)?;
    submit(
        &state,
        Submission {
            kind: JobKind::Landscape,
            name: None,
            params: &params,
            dataset_id: row.dataset_id,
            model_id: Some(id),
            callback_url: r.callback_url.as_deref(),
        },
    )
    .await
}

async fn latest_landscape(state: &AppState, id: i64) -> ApiResult<store::library::LandscapeRow> {
    fetch(state, id).await?;
    store::library::latest_landscape(&state.db, id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::LandscapeNotFound,
                format!("model {id} has no landscape scan yet; POST /v1/models/{id}/landscape"),
            )
        })
}

/// The newest temperature scan as JSON.
#[utoipa::path(
    get, path = "/v1/models/{id}/landscape", tag = "library",
    params(("id" = i64, Path, description = "Model id")),
    responses(
        (status = 200, description = "`points` (temperature, library_probability, n_minima, continuum_weight) and `melting_temperature`", body = Object),
        (status = 404, body = super::error::ErrorBody)
    )
)]
pub async fn get_landscape(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<Value>> {
    let row = latest_landscape(&state, id).await?;
    let mut v: Value = serde_json::from_str(&row.result).map_err(ApiError::internal)?;
    v["id"] = json!(row.id);
    v["model_id"] = json!(id);
    v["job_id"] = json!(row.job_id);
    v["created_at"] = json!(row.created_at);
    Ok(Json(v))
}

/// The newest temperature scan as an SVG plot.
#[utoipa::path(
    get, path = "/v1/models/{id}/landscape.svg", tag = "library",
    params(("id" = i64, Path, description = "Model id")),
    responses(
        (status = 200, description = "SVG", content_type = "image/svg+xml", body = String),
        (status = 404, body = super::error::ErrorBody)
    )
)]
pub async fn get_landscape_svg(
    State(state): State<AppState>,
    Id(id): Id,
) -> ApiResult<impl IntoResponse> {
    let row = latest_landscape(&state, id).await?;
    let model = fetch(&state, id).await?;
    let svg =
        crate::service::census::landscape_svg(&row.result, &model).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg))
}
