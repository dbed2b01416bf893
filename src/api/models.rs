//! `/v1/models`: trained and imported models, their couplings (JSON or dimod BQM), energies and
//! exact log-probabilities.

use super::AppState;
use super::datasets::Encoding;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Id, JsonBody, QueryParams};
use super::pagination::{Page, PageQuery};
use super::patterns::{PatternFormat, PatternOut, parse_pattern};
use crate::engine::codec::{Bqm, CouplingJson, DescriptionKind, ModelJson};
use crate::engine::{Interrupt, Model, exact};
use crate::store::{self, models::ModelRow};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// A model's description: which couplings it has.
#[derive(Debug, Serialize, ToSchema)]
pub struct DescriptionDto {
    /// `order` (every S with 1 ≤ |S| ≤ k), `full` (every subset), `custom` or `mixture`.
    pub kind: String,
    /// k for `order`; the largest |S| for `custom`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
}

/// A model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelDto {
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `single`, `mixture` (of experts) or `expert` (one component of a mixture).
    pub kind: String,
    /// `full`, `projection`, `exact`, `sampled`, `pseudolikelihood`, `imported` or `experts`.
    pub method: String,
    pub description: DescriptionDto,
    pub n_spins: i64,
    /// Number of couplings J_S (not counting J_∅).
    pub n_couplings: i64,
    /// The temperature T of p(σ) ∝ exp(−E(σ)/T).
    pub temperature: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<i64>,
    /// sha256 of the training dataset's canonical content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_sha256: Option<String>,
    /// The training job that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    /// The mixture an expert belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<i64>,
    /// SHA-256 of the stored couplings (the engine's binary encoding); absent for a mixture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The training report (method-specific; see the README).
    #[schema(value_type = Object)]
    pub report: Value,
    pub created_at: String,
}

impl From<ModelRow> for ModelDto {
    fn from(r: ModelRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            kind: r.kind,
            method: r.method,
            description: DescriptionDto {
                kind: r.description,
                order: r.model_order,
            },
            n_spins: r.n_spins,
            n_couplings: r.n_couplings,
            temperature: r.temperature,
            dataset_id: r.dataset_id,
            dataset_sha256: r.dataset_sha256,
            job_id: r.job_id,
            parent_id: r.parent_id,
            sha256: r.sha256,
            report: serde_json::from_str(&r.report).unwrap_or(Value::Null),
            created_at: r.created_at,
        }
    }
}

/// One coupling J_S.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouplingDto {
    /// The spins of S (0-based).
    pub spins: Vec<u32>,
    pub value: f64,
}

/// Couplings in JSON: E(σ) = −offset − Σ value · Π_{a∈spins} σ_a.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouplingsDto {
    pub n_spins: u32,
    /// `order`, `full` or `custom`. For order and full a coupling left out is zero.
    #[schema(value_type = String, example = "order")]
    pub description: DescriptionKindDto,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// J_∅.
    pub offset: f64,
    pub couplings: Vec<CouplingDto>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DescriptionKindDto {
    Order,
    Full,
    Custom,
}

impl From<ModelJson> for CouplingsDto {
    fn from(m: ModelJson) -> Self {
        Self {
            n_spins: m.n_spins,
            description: match m.description {
                DescriptionKind::Order => DescriptionKindDto::Order,
                DescriptionKind::Full => DescriptionKindDto::Full,
                DescriptionKind::Custom => DescriptionKindDto::Custom,
            },
            order: m.order,
            offset: m.offset,
            couplings: m
                .couplings
                .into_iter()
                .map(|c| CouplingDto {
                    spins: c.spins,
                    value: c.value,
                })
                .collect(),
        }
    }
}

impl From<CouplingsDto> for ModelJson {
    fn from(m: CouplingsDto) -> Self {
        Self {
            n_spins: m.n_spins,
            description: match m.description {
                DescriptionKindDto::Order => DescriptionKind::Order,
                DescriptionKindDto::Full => DescriptionKind::Full,
                DescriptionKindDto::Custom => DescriptionKind::Custom,
            },
            order: m.order,
            offset: m.offset,
            couplings: m
                .couplings
                .into_iter()
                .map(|c| CouplingJson {
                    spins: c.spins,
                    value: c.value,
                })
                .collect(),
        }
    }
}

/// A pairwise model in dimod's BinaryQuadraticModel convention (vartype SPIN: energy =
/// Σ h_i s_i + Σ J_ij s_i s_j + offset; BINARY: x = (1 + s)/2). In Python:
/// `dimod.BinaryQuadraticModel(dict(b["linear"]), {(u, v): j for u, v, j in b["quadratic"]}, b["offset"], b["vartype"])`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BqmDto {
    /// `SPIN` or `BINARY`.
    pub vartype: String,
    /// [variable, h] pairs.
    #[schema(value_type = Vec<Vec<f64>>)]
    pub linear: Vec<(u32, f64)>,
    /// [u, v, J] triples.
    #[schema(value_type = Vec<Vec<f64>>)]
    pub quadratic: Vec<(u32, u32, f64)>,
    pub offset: f64,
}

impl From<Bqm> for BqmDto {
    fn from(b: Bqm) -> Self {
        Self {
            vartype: b.vartype,
            linear: b.linear,
            quadratic: b.quadratic,
            offset: b.offset,
        }
    }
}

impl From<BqmDto> for Bqm {
    fn from(b: BqmDto) -> Self {
        Self {
            vartype: b.vartype,
            linear: b.linear,
            quadratic: b.quadratic,
            offset: b.offset,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ModelsQuery {
    pub dataset_id: Option<i64>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List models (mixtures and single models; experts are listed under their mixture), newest first.
#[utoipa::path(
    get, path = "/v1/models", tag = "models",
    params(ModelsQuery),
    responses((status = 200, body = Page<ModelDto>), (status = 400, body = super::error::ErrorBody))
)]
pub async fn list_models(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ModelsQuery>,
) -> ApiResult<Json<Page<ModelDto>>> {
    let (limit, before) = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .id_cursor()?;
    let rows = store::models::list(&state.db, q.dataset_id, limit + 1, before).await?;
    Ok(Json(Page::from_id_rows(
        rows,
        limit,
        |r| r.id,
        ModelDto::from,
    )))
}

pub async fn fetch(state: &AppState, id: i64) -> ApiResult<ModelRow> {
    store::models::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::ModelNotFound, "model", id))
}

/// The couplings of a single model or expert (a mixture has none of its own).
pub async fn load_model(state: &AppState, row: &ModelRow) -> ApiResult<Model> {
    store::models::load(&state.db, row.id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unprocessable,
            format!(
                "model {} is a mixture; ask one of its experts (GET /v1/models/{}) for couplings",
                row.id, row.id
            ),
        )
    })
}

/// One model, with its training report (and its experts, for a mixture).
#[utoipa::path(
    get, path = "/v1/models/{id}", tag = "models",
    params(("id" = i64, Path, description = "Model id")),
    responses((status = 200, body = ModelDto), (status = 404, body = super::error::ErrorBody))
)]
pub async fn get_model(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<ModelDto>> {
    Ok(Json(fetch(&state, id).await?.into()))
}

#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CouplingsFormat {
    #[default]
    Json,
    Bqm,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CouplingsQuery {
    /// `json` (default) or `bqm` (dimod convention, pairwise models only).
    #[serde(default)]
    #[param(inline)]
    pub format: CouplingsFormat,
}

/// The couplings: JSON, or a dimod BinaryQuadraticModel with `?format=bqm` (pairwise models).
#[utoipa::path(
    get, path = "/v1/models/{id}/couplings", tag = "models",
    params(("id" = i64, Path, description = "Model id"), CouplingsQuery),
    responses(
        (status = 200, description = "CouplingsDto, or BqmDto with format=bqm", body = CouplingsDto),
        (status = 404, body = super::error::ErrorBody),
        (status = 422, description = "bqm of a model with interactions of 3 or more spins, or a mixture", body = super::error::ErrorBody)
    )
)]
pub async fn get_couplings(
    State(state): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<CouplingsQuery>,
) -> ApiResult<Json<Value>> {
    let row = fetch(&state, id).await?;
    let model = load_model(&state, &row).await?;
    let v = match q.format {
        CouplingsFormat::Json => {
            serde_json::to_value(CouplingsDto::from(ModelJson::from_model(&model)))
        }
        CouplingsFormat::Bqm => {
            let bqm = Bqm::from_model(&model).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::Unprocessable,
                    e.to_string(),
                )
            })?;
            serde_json::to_value(BqmDto::from(bqm))
        }
    }
    .map_err(ApiError::internal)?;
    Ok(Json(v))
}

/// Import a model trained elsewhere: couplings as JSON or a dimod BQM, and a temperature.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportModel {
    #[serde(default)]
    pub name: Option<String>,
    /// T of p(σ) ∝ exp(−E(σ)/T) (default 1).
    #[serde(default = "one")]
    pub temperature: f64,
    /// Couplings in this service's JSON form (as `GET /v1/models/{id}/couplings` returns).
    #[serde(default)]
    pub couplings: Option<CouplingsDto>,
    /// Or a dimod BinaryQuadraticModel (as `?format=bqm` returns).
    #[serde(default)]
    pub bqm: Option<BqmDto>,
    /// N for a BQM (default: the largest variable + 1).
    #[serde(default)]
    pub n_spins: Option<usize>,
}

fn one() -> f64 {
    1.0
}

pub fn check_temperature(t: f64, field: &str) -> ApiResult<()> {
    if !(t.is_finite() && t > 0.0) {
        return Err(ApiError::invalid_field(
            field,
            format!("must be a finite number > 0, got {t}"),
        ));
    }
    Ok(())
}

/// Import couplings (JSON or dimod BQM) as a model.
#[utoipa::path(
    post, path = "/v1/models", tag = "models",
    request_body = ImportModel,
    responses(
        (status = 201, body = ModelDto),
        (status = 400, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)
    )
)]
pub async fn import_model(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ImportModel>,
) -> ApiResult<(StatusCode, Json<ModelDto>)> {
    check_temperature(body.temperature, "temperature")?;
    let max = state.config.max_couplings;
    let model = match (body.couplings, body.bqm) {
        (Some(c), None) => {
            if c.n_spins as usize > state.config.max_spins {
                return Err(too_many_spins(c.n_spins as usize, state.config.max_spins));
            }
            ModelJson::from(c)
                .to_model(max)
                .map_err(|e| prefix(e, "couplings"))?
        }
        (None, Some(b)) => {
            if let Some(n) = body.n_spins
                && n > state.config.max_spins
            {
                return Err(too_many_spins(n, state.config.max_spins));
            }
            let m = Bqm::from(b)
                .to_model(body.n_spins)
                .map_err(|e| prefix(e, "bqm"))?;
            if m.n() > state.config.max_spins {
                return Err(too_many_spins(m.n(), state.config.max_spins));
            }
            m
        }
        _ => {
            return Err(ApiError::invalid_field(
                "couplings",
                "give exactly one of `couplings` and `bqm`",
            ));
        }
    };
    let report = json!({ "imported": true }).to_string();
    let mut tx = state.db.begin_write().await?;
    let row = store::models::insert(
        &mut tx,
        &store::models::NewModel {
            name: body.name.as_deref(),
            kind: "single",
            dataset_id: None,
            dataset_sha256: None,
            job_id: None,
            parent_id: None,
            method: "imported",
            temperature: body.temperature,
            model: Some(&model),
            shape: None,
            report: &report,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

fn prefix(e: crate::engine::EngineError, root: &str) -> ApiError {
    match e {
        crate::engine::EngineError::Invalid { field, message } => {
            ApiError::invalid_field(format!("{root}.{field}"), message)
        }
        other => other.into(),
    }
}

pub fn too_many_spins(n: usize, max: usize) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::TooManySpins,
        format!("N = {n} spins is above the limit of {max} (BOUNDSTATE_MAX_SPINS)"),
    )
    .with_details(json!({ "n_spins": n, "max_spins": max }))
}

/// Delete a model (and, for a mixture, its experts). 409 while a job uses it.
#[utoipa::path(
    delete, path = "/v1/models/{id}", tag = "models",
    params(("id" = i64, Path, description = "Model id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)
    )
)]
pub async fn delete_model(State(state): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    let row = fetch(&state, id).await?;
    if row.kind == "expert" {
        return Err(ApiError::conflict(
            ErrorCode::ModelInUse,
            format!(
                "model {id} is an expert of mixture {}; delete the mixture",
                row.parent_id.unwrap_or(0)
            ),
        ));
    }
    if store::jobs::active_using(&state.db, None, Some(id)).await? {
        return Err(ApiError::conflict(
            ErrorCode::ModelInUse,
            format!("model {id} is used by a queued or running job; cancel it first"),
        )
        .with_details(json!({ "id": id })));
    }
    let experts = store::models::experts(&state.db, id).await?;
    let mut tx = state.db.begin_write().await?;
    if !store::models::delete(&mut tx, id).await? {
        return Err(ApiError::not_found(ErrorCode::ModelNotFound, "model", id));
    }
    tx.commit().await?;
    state.models.forget(id);
    for e in experts {
        state.models.forget(e.id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Patterns whose energies to compute.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnergiesRequest {
    /// Patterns: '0'/'1' strings or arrays (0/1, or −1/+1 with `encoding: spins`).
    #[schema(value_type = Vec<Object>)]
    pub patterns: Vec<Value>,
    #[serde(default)]
    pub encoding: Encoding,
    /// Temperature for the log-probabilities (default: the model's).
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub format: PatternFormat,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PatternEnergy {
    pub pattern: PatternOut,
    /// E(σ).
    pub energy: f64,
    /// ln p(σ) = −E(σ)/T − ln Z, exact (N ≤ the exact-enumeration cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_probability: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnergiesResponse {
    pub temperature: f64,
    /// ln Z at that temperature, when N allows exact enumeration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_partition: Option<f64>,
    pub results: Vec<PatternEnergy>,
}

/// Energies of given patterns, and exact log-probabilities when N ≤ the exact cap.
#[utoipa::path(
    post, path = "/v1/models/{id}/energies", tag = "models",
    params(("id" = i64, Path, description = "Model id")),
    request_body = EnergiesRequest,
    responses(
        (status = 200, body = EnergiesResponse),
        (status = 404, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)
    )
)]
pub async fn energies(
    State(state): State<AppState>,
    Id(id): Id,
    JsonBody(body): JsonBody<EnergiesRequest>,
) -> ApiResult<Json<EnergiesResponse>> {
    let row = fetch(&state, id).await?;
    let model = load_model(&state, &row).await?;
    let t = body.temperature.unwrap_or(row.temperature);
    check_temperature(t, "temperature")?;
    if body.patterns.is_empty() || body.patterns.len() > 100_000 {
        return Err(ApiError::invalid_field(
            "patterns",
            "give between 1 and 100000 patterns",
        ));
    }
    let n = model.n();
    let patterns = body
        .patterns
        .iter()
        .enumerate()
        .map(|(i, v)| parse_pattern(v, n, &format!("patterns[{i}]"), body.encoding))
        .collect::<ApiResult<Vec<_>>>()?;
    let exact_cap = state.config.exact_max_spins;
    let format = body.format;
    let out = state
        .jobs
        .compute()
        .run_interactive(move || {
            let log_z = if n <= exact_cap {
                let opts = exact::ExactOptions {
                    max_spins: exact_cap,
                    ..Default::default()
                };
                Some(
                    exact::Enumeration::new(&model, t, &opts, &Interrupt::new())
                        .map(|e| e.log_partition()),
                )
            } else {
                None
            }
            .transpose()?;
            let mut spins = vec![0i8; n];
            let results = patterns
                .iter()
                .map(|p| {
                    p.write_spins(&mut spins);
                    let e = model.energy(&spins);
                    PatternEnergy {
                        pattern: PatternOut::new(p, format),
                        energy: e,
                        log_probability: log_z.map(|lz| -e / t - lz),
                    }
                })
                .collect();
            Ok::<_, crate::engine::EngineError>(EnergiesResponse {
                temperature: t,
                log_partition: log_z,
                results,
            })
        })
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(out))
}
