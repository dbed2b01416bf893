//! Generation and retrieval: `POST /v1/models/{id}/samples`, `GET /v1/sample-sets/{id}`,
//! `GET /v1/sample-sets/{id}/patterns`, `POST /v1/models/{id}/retrieve`,
//! `POST /v1/models/{id}/evaluate-retrieval`.

use super::AppState;
use super::datasets::Encoding;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Id, JsonBody, OptionalJsonBody, QueryParams};
use super::jobs::{JobDto, JobKind, Submission, submit};
use super::library::find_minimum;
use super::models::{check_temperature, fetch};
use super::pagination::{Page, PageQuery};
use super::patterns::{PatternFormat, PatternOut, parse_pattern, parse_query};
use crate::engine::{Interrupt, Pattern};
use crate::service::evaluation::{EvaluationParams, RetrievalSpec};
use crate::service::generate::{self, Library, SampleMethod, SampleParams, Start};
use crate::service::retrieval::{CueSpec, Verdict};
use crate::store::{self, samples::SampleSetRow};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::error::in_range as range;

/// A generation request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplesRequest {
    /// Patterns to draw (default 100).
    #[serde(default)]
    pub count: Option<usize>,
    /// Default: the model's T.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Sweeps recorded per chain after burn-in (default 100).
    #[serde(default)]
    pub sweeps: Option<usize>,
    /// Sweeps discarded first (default 100).
    #[serde(default)]
    pub burn_in: Option<usize>,
    /// Record every `thin` sweeps (default = sweeps: one sample per independent chain).
    #[serde(default)]
    pub thin: Option<usize>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// `gibbs` (default), `metropolis`, `parallel_tempering` or `annealing`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub method: Option<SampleMethod>,
    /// `"random"` (default), `{"minimum": id}` (sample inside one bound state) or a pattern.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub init: Option<Value>,
    /// Bits held fixed: a string over '0', '1', '?' ('?' free) or an array of 0/1/null.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub clamp: Option<Value>,
    /// For a mixture: sample this expert only (default: draw experts by their shares π_m).
    #[serde(default)]
    pub expert: Option<usize>,
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// A stored set of generated patterns.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleSetDto {
    pub id: i64,
    pub model_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    /// The census whose minima the samples were matched against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub census_id: Option<i64>,
    #[schema(value_type = Object)]
    pub params: Value,
    /// Occupancy per minimum, energy statistics, acceptance rate, effective sample size.
    #[schema(value_type = Object)]
    pub summary: Value,
    pub n_samples: i64,
    pub created_at: String,
}

impl From<SampleSetRow> for SampleSetDto {
    fn from(r: SampleSetRow) -> Self {
        Self {
            id: r.id,
            model_id: r.model_id,
            job_id: r.job_id,
            census_id: r.census_id,
            params: serde_json::from_str(&r.params).unwrap_or(Value::Null),
            summary: serde_json::from_str(&r.summary).unwrap_or(Value::Null),
            n_samples: r.n_samples,
            created_at: r.created_at,
        }
    }
}

/// Generate patterns. Requests within the synchronous budget (count × (burn_in + sweeps) × N ≤
/// BOUNDSTATE_SYNC_WORK_BUDGET) answer 201 with the sample set; larger ones 202 with a job.
#[utoipa::path(
    post, path = "/v1/models/{id}/samples", tag = "generation",
    params(("id" = i64, Path, description = "Model id")),
    request_body = SamplesRequest,
    responses(
        (status = 201, body = SampleSetDto),
        (status = 202, description = "A sampling job", body = JobDto),
        (status = 404, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)
    )
)]
pub async fn create_samples(
    State(state): State<AppState>,
    Id(id): Id,
    OptionalJsonBody(r): OptionalJsonBody<Option<SamplesRequest>>,
) -> ApiResult<Response> {
    let row = fetch(&state, id).await?;
    let r = match r {
        Some(r) => r,
        None => parse_empty()?,
    };
    let mixture = row.kind == "mixture";
    let n = row.n_spins as usize;
    let t = r.temperature.unwrap_or(row.temperature);
    check_temperature(t, "temperature")?;
    let count = range(r.count.unwrap_or(100), "count", 1, 1_000_000)?;
    let sweeps = range(r.sweeps.unwrap_or(100), "sweeps", 1, 1_000_000)?;
    let burn_in = range(r.burn_in.unwrap_or(100), "burn_in", 0, 1_000_000)?;
    let thin = range(r.thin.unwrap_or(sweeps), "thin", 1, sweeps)?;
    if let Some(e) = r.expert {
        if !mixture {
            return Err(ApiError::invalid_field(
                "expert",
                format!("model {id} is not a mixture"),
            ));
        }
        let k = store::models::experts(&state.db, id).await?.len();
        if e >= k {
            return Err(ApiError::invalid_field(
                "expert",
                format!(
                    "mixture {id} has {k} experts (0 to {}), got {e}",
                    k.saturating_sub(1)
                ),
            ));
        }
    }
    let init = match &r.init {
        None => Start::Random,
        Some(Value::String(s)) if s == "random" => Start::Random,
        Some(Value::Object(o)) => {
            let Some(m) = o
                .get("minimum")
                .and_then(Value::as_i64)
                .filter(|_| o.len() == 1)
            else {
                return Err(ApiError::invalid_field(
                    "init",
                    "give \"random\", {\"minimum\": id} or a pattern",
                ));
            };
            if mixture {
                return Err(ApiError::invalid_field(
                    "init.minimum",
                    "a mixture's minima belong to its experts: sample one expert (`expert`) from a pattern",
                ));
            }
            let min = find_minimum(&state, id, m).await.map_err(|e| {
                ApiError::new(e.status, e.code, format!("init.minimum: {}", e.message))
                    .with_details(json!({ "field": "init.minimum", "minimum_id": m }))
            })?;
            let p = Pattern::from_bytes(&min.pattern, n)
                .ok_or_else(|| ApiError::internal("stored minimum is corrupt"))?;
            Start::Minimum {
                id: m,
                pattern: p.to_string(),
            }
        }
        Some(v) => Start::Pattern(parse_pattern(v, n, "init", Encoding::Bits)?.to_string()),
    };
    let clamp = match &r.clamp {
        None | Some(Value::Null) => None,
        Some(v) => {
            let (p, known) = parse_query(v, n, "clamp", Encoding::Bits)?;
            Some(
                (0..n)
                    .map(|a| match (known[a], p.bit(a)) {
                        (false, _) => '?',
                        (true, true) => '1',
                        (true, false) => '0',
                    })
                    .collect::<String>(),
            )
        }
    };
    let p = SampleParams {
        model_id: id,
        count,
        temperature: t,
        sweeps,
        burn_in,
        thin,
        seed: r.seed.unwrap_or_else(|| rand::random::<u64>() >> 11),
        method: r.method.unwrap_or(SampleMethod::Gibbs),
        init,
        clamp,
        expert: r.expert,
    };
    let work = p.work(n);
    let cfg = &state.config;
    if work > cfg.max_work as u128 {
        return Err(ApiError::work_limit(
            "chains × (burn_in + sweeps) × N",
            work,
            cfg.max_work,
            "BOUNDSTATE_MAX_WORK",
            "count",
        ));
    }
    if work > cfg.sync_work_budget as u128 {
        let params = serde_json::to_value(&p).map_err(ApiError::internal)?;
        return submit(
            &state,
            Submission {
                kind: JobKind::Sampling,
                name: None,
                params: &params,
                dataset_id: row.dataset_id,
                model_id: Some(id),
                callback_url: r.callback_url.as_deref(),
            },
        )
        .await
        .map(IntoResponse::into_response);
    }
    if r.callback_url.is_some() {
        return Err(ApiError::invalid_field(
            "callback_url",
            "this request is small enough to answer at once; callbacks are for jobs",
        ));
    }
    let (g, census_id) = if mixture {
        generate::produce(&state.db, state.jobs.compute(), &p, true, Interrupt::new())
            .await
            .map_err(failure)?
    } else {
        let loaded = loaded(&state, &row).await?;
        let library = Library::load(&state.db, id, n).await?;
        let params = p.clone();
        state
            .jobs
            .compute()
            .run_interactive(move || {
                generate::generate(&loaded.kernel, &params, &library, &Interrupt::new())
                    .map(|g| (g, library.census_id))
            })
            .await
            .map_err(ApiError::internal)??
    };
    let mut tx = state.db.begin_write().await?;
    let set = generate::store_set(&mut tx, &p, None, census_id, &g).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(SampleSetDto::from(set))).into_response())
}

/// A single model's couplings and kernel, from the cache.
async fn loaded(
    state: &AppState,
    row: &store::models::ModelRow,
) -> ApiResult<std::sync::Arc<crate::service::cache::Loaded>> {
    state
        .models
        .get(&state.db, state.jobs.compute(), row.id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::ModelNotFound, "model", row.id))
}

/// A failure of synchronous work as an API error.
pub fn failure(e: crate::jobs::JobFailure) -> ApiError {
    match e {
        crate::jobs::JobFailure::Failed(m) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unprocessable,
            m,
        ),
        crate::jobs::JobFailure::Store(e) => e.into(),
        crate::jobs::JobFailure::Interrupted => ApiError::internal("interrupted"),
    }
}

/// An empty body means every default.
fn parse_empty() -> ApiResult<SamplesRequest> {
    super::extract::parse_json(b"{}")
}

pub async fn fetch_set(state: &AppState, id: i64) -> ApiResult<SampleSetRow> {
    store::samples::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::SampleSetNotFound, "sample set", id))
}

/// A sample set: parameters and summary.
#[utoipa::path(
    get, path = "/v1/sample-sets/{id}", tag = "generation",
    params(("id" = i64, Path, description = "Sample set id")),
    responses((status = 200, body = SampleSetDto), (status = 404, body = super::error::ErrorBody))
)]
pub async fn get_sample_set(
    State(state): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<SampleSetDto>> {
    Ok(Json(fetch_set(&state, id).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SamplePatternsQuery {
    /// A minimum id, or `continuum` for samples in no listed minimum.
    pub minimum: Option<String>,
    pub max_energy: Option<f64>,
    /// Distinct patterns with `num_occurrences` (as dimod's SampleSet.aggregate()).
    #[serde(default)]
    pub aggregate: bool,
    #[param(inline)]
    #[serde(default)]
    pub format: PatternFormat,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One generated pattern.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleDto {
    /// Position in the set (the first occurrence, when aggregated).
    pub index: i64,
    pub pattern: PatternOut,
    pub energy: f64,
    /// The census minimum its quench reaches; null = continuum (no listed minimum).
    pub minimum_id: Option<i64>,
    /// For a mixture: the expert that drew it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expert: Option<i64>,
    /// With `aggregate=true`: how many times this pattern was drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_occurrences: Option<u64>,
}

/// The patterns of a sample set, filtered, optionally aggregated, paginated.
#[utoipa::path(
    get, path = "/v1/sample-sets/{id}/patterns", tag = "generation",
    params(("id" = i64, Path, description = "Sample set id"), SamplePatternsQuery),
    responses((status = 200, body = Page<SampleDto>), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody))
)]
pub async fn list_sample_patterns(
    State(state): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<SamplePatternsQuery>,
) -> ApiResult<Json<Page<SampleDto>>> {
    let set = fetch_set(&state, id).await?;
    let n = store::models::get(&state.db, set.model_id)
        .await?
        .map(|m| m.n_spins as usize)
        .ok_or_else(|| ApiError::not_found(ErrorCode::ModelNotFound, "model", set.model_id))?;
    let minimum = match q.minimum.as_deref() {
        None => None,
        Some("continuum") => Some(None),
        Some(s) => Some(Some(s.parse::<i64>().map_err(|_| {
            ApiError::invalid_query(
                "minimum",
                format!("'{s}' is not a minimum id or `continuum`"),
            )
        })?)),
    };
    let decode = |bytes: &[u8]| {
        Pattern::from_bytes(bytes, n).ok_or_else(|| ApiError::internal("stored sample is corrupt"))
    };
    if q.aggregate {
        let (limit, offset) = PageQuery::offset_cursor(q.limit, q.cursor.as_deref())?;
        let all = store::samples::samples(
            &state.db,
            id,
            &store::samples::SampleFilter {
                minimum,
                max_energy: q.max_energy,
                offset: 0,
                limit: i64::MAX,
            },
        )
        .await?;
        let mut seen: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut distinct: Vec<(store::samples::SampleRow, u64)> = Vec::new();
        for s in all {
            match seen.get(&s.pattern) {
                Some(&i) => distinct[i].1 += 1,
                None => {
                    seen.insert(s.pattern.clone(), distinct.len());
                    distinct.push((s, 1));
                }
            }
        }
        distinct.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.idx.cmp(&b.0.idx)));
        let total = distinct.len() as i64;
        let items = distinct
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|(s, k)| {
                Ok(SampleDto {
                    index: s.idx,
                    pattern: PatternOut::new(&decode(&s.pattern)?, q.format),
                    energy: s.energy,
                    minimum_id: s.minimum_id,
                    expert: s.expert,
                    num_occurrences: Some(k),
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let next = (offset + limit < total).then(|| (offset + limit).to_string());
        return Ok(Json(Page {
            items,
            next_cursor: next,
        }));
    }
    let (limit, offset) = PageQuery::offset_cursor(q.limit, q.cursor.as_deref())?;
    let rows = store::samples::samples(
        &state.db,
        id,
        &store::samples::SampleFilter {
            minimum,
            max_energy: q.max_energy,
            offset,
            limit: limit + 1,
        },
    )
    .await?;
    let next = rows.get(limit as usize).map(|r| r.idx.to_string());
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|s| {
            Ok(SampleDto {
                index: s.idx,
                pattern: PatternOut::new(&decode(&s.pattern)?, q.format),
                energy: s.energy,
                minimum_id: s.minimum_id,
                expert: s.expert,
                num_occurrences: None,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `clamp_known`: a number of sweeps, or true (half the sweeps) / false (none).
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ClampKnown {
    Flag(bool),
    Sweeps(usize),
}

/// How a mixture chooses its expert for a query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gating {
    /// ln p_m(q) = −E_m(q)/T − ln Z_m, every expert counted equally (default).
    #[default]
    Likelihood,
    /// ln π_m + ln p_m(q): the Bayesian posterior (common experts win more cues).
    Posterior,
}

/// A retrieval request: one `query` or a batch `queries`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrieveRequest {
    /// A pattern over '0', '1', '?' (unknown), or an array of 0/1/null.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub query: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub queries: Option<Vec<Value>>,
    /// Default: the model's T.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Gibbs sweeps at T before the quench (default 20).
    #[serde(default)]
    pub sweeps: Option<usize>,
    /// Independent restarts per query (default 8).
    #[serde(default)]
    pub restarts: Option<usize>,
    /// Hold the known bits for the first sweeps: a number of sweeps, or true (half of them,
    /// the default) / false.
    #[serde(default)]
    pub clamp_known: Option<ClampKnown>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// `bits` (default) or `spins` for array queries.
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub format: PatternFormat,
    /// Mixtures: how the expert is chosen from the query (default `likelihood`).
    #[serde(default)]
    pub gating: Option<Gating>,
    /// Mixtures: skip gating and ask this expert.
    #[serde(default)]
    pub expert: Option<usize>,
}

/// The minimum a query landed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct MinimumRef {
    pub id: i64,
    pub pattern: PatternOut,
    pub kind: String,
    pub free_energy: f64,
}

/// One restart of one query.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestartDto {
    pub pattern: PatternOut,
    pub energy: f64,
    #[schema(value_type = String)]
    pub verdict: Verdict,
    pub minimum_id: Option<i64>,
}

/// The answer for one query.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetrievalResult {
    /// `retrieved`, `false_state`, `escaped` or `ambiguous`.
    #[schema(value_type = String)]
    pub verdict: Verdict,
    pub minimum: Option<MinimumRef>,
    /// The majority end state of the restarts.
    pub completed: PatternOut,
    pub energy: f64,
    /// Hamming distance between the completed pattern and the query's known bits.
    pub hamming: usize,
    /// Known bits of the query.
    pub known: usize,
    /// Share of restarts that reached the completed pattern.
    pub confidence: f64,
    pub restarts: Vec<RestartDto>,
    /// Mixtures: the chosen expert, the runner-up and the margin in log-likelihood.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub gate: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetrieveResponse {
    pub results: Vec<RetrievalResult>,
    /// The census whose minima judged the end states (none: judged against the training set).
    pub census_id: Option<i64>,
    pub seed: u64,
    pub temperature: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Validated retrieval inputs.
pub struct RetrievalInputs {
    pub queries: Vec<Vec<Option<bool>>>,
    pub opts: crate::engine::retrieve::RetrievalOptions,
}

/// Temperature, sweeps (default 20), restarts (default 8) and clamp_known (default: half the
/// sweeps) of a retrieval, checked.
fn retrieval_spec(
    temperature: f64,
    sweeps: Option<usize>,
    restarts: Option<usize>,
    clamp_known: Option<ClampKnown>,
) -> ApiResult<RetrievalSpec> {
    check_temperature(temperature, "temperature")?;
    let sweeps = range(sweeps.unwrap_or(20), "sweeps", 0, 100_000)?;
    let restarts = range(restarts.unwrap_or(8), "restarts", 1, 1024)?;
    let clamp_known_sweeps = match clamp_known.unwrap_or(ClampKnown::Flag(true)) {
        ClampKnown::Flag(true) => sweeps / 2,
        ClampKnown::Flag(false) => 0,
        ClampKnown::Sweeps(k) => range(k, "clamp_known", 0, sweeps)?,
    };
    Ok(RetrievalSpec {
        temperature,
        sweeps,
        restarts,
        clamp_known_sweeps,
    })
}

/// Parse and check a retrieve request against a model of N spins.
pub fn retrieval_inputs(
    state: &AppState,
    r: &RetrieveRequest,
    n: usize,
    model_t: f64,
) -> ApiResult<RetrievalInputs> {
    let raw: Vec<(String, &Value)> = match (&r.query, &r.queries) {
        (Some(q), None) => vec![("query".into(), q)],
        (None, Some(qs)) if !qs.is_empty() && qs.len() <= 10_000 => qs
            .iter()
            .enumerate()
            .map(|(i, q)| (format!("queries[{i}]"), q))
            .collect(),
        (None, Some(_)) => {
            return Err(ApiError::invalid_field(
                "queries",
                "give between 1 and 10000 queries",
            ));
        }
        _ => {
            return Err(ApiError::invalid_field(
                "query",
                "give exactly one of `query` and `queries`",
            ));
        }
    };
    let spec = retrieval_spec(
        r.temperature.unwrap_or(model_t),
        r.sweeps,
        r.restarts,
        r.clamp_known,
    )?;
    let (sweeps, restarts) = (spec.sweeps, spec.restarts);
    let mut queries = Vec::with_capacity(raw.len());
    for (field, v) in raw {
        let (p, known) = parse_query(v, n, &field, r.encoding)?;
        if !known.iter().any(|&k| k) {
            return Err(ApiError::invalid_field(
                field,
                "every bit is unknown: that is sampling, not retrieval (POST /v1/models/{id}/samples)",
            ));
        }
        queries.push(
            known
                .iter()
                .enumerate()
                .map(|(a, &k)| k.then(|| p.bit(a)))
                .collect(),
        );
    }
    let work = queries.len() as u128 * restarts as u128 * (sweeps as u128 + 1) * n as u128;
    if work > state.config.sync_work_budget as u128 {
        return Err(ApiError::work_limit(
            "queries × restarts × (sweeps + 1) × N (send fewer queries per request)",
            work,
            state.config.sync_work_budget,
            "BOUNDSTATE_SYNC_WORK_BUDGET",
            "queries",
        ));
    }
    Ok(RetrievalInputs {
        queries,
        opts: spec.options(r.seed.unwrap_or_else(|| rand::random::<u64>() >> 11)),
    })
}

/// Which stored minimum does a partial or corrupted pattern belong to?
#[utoipa::path(
    post, path = "/v1/models/{id}/retrieve", tag = "generation",
    params(("id" = i64, Path, description = "Model id")),
    request_body = RetrieveRequest,
    responses(
        (status = 200, body = RetrieveResponse),
        (status = 404, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)
    )
)]
pub async fn retrieve(
    State(state): State<AppState>,
    Id(id): Id,
    JsonBody(r): JsonBody<RetrieveRequest>,
) -> ApiResult<Json<RetrieveResponse>> {
    let row = fetch(&state, id).await?;
    if row.kind == "mixture" {
        return retrieve_mixture(&state, row, r).await.map(Json);
    }
    if r.gating.is_some() || r.expert.is_some() {
        return Err(ApiError::invalid_field(
            if r.gating.is_some() {
                "gating"
            } else {
                "expert"
            },
            format!("model {id} is not a mixture"),
        ));
    }
    let n = row.n_spins as usize;
    let inputs = retrieval_inputs(&state, &r, n, row.temperature)?;
    let loaded = loaded(&state, &row).await?;
    let ctx = RetrievalContext::load(&state, &row, n).await?;
    let format = r.format;
    let (seed, t) = (inputs.opts.seed, inputs.opts.temperature);
    let (results, ctx) = state
        .jobs
        .compute()
        .run_interactive(move || {
            let single = crate::service::retrieval::Single {
                kernel: &loaded.kernel,
                opts: inputs.opts.clone(),
                judge: ctx.judge(),
            };
            let interrupt = Interrupt::new();
            let out = inputs
                .queries
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    use crate::service::retrieval::Retriever;
                    let seed = inputs.opts.seed.wrapping_add(i as u64);
                    single.run(q, seed, &interrupt).map(|o| (q.clone(), o))
                })
                .collect::<Result<Vec<_>, _>>();
            out.map(|o| (o, ctx))
        })
        .await
        .map_err(ApiError::internal)??;
    let mut dtos = Vec::with_capacity(results.len());
    for (q, o) in results {
        dtos.push(ctx.result(&q, o, format, None));
    }
    Ok(Json(RetrieveResponse {
        results: dtos,
        census_id: ctx.library.census_id,
        seed,
        temperature: t,
        note: ctx.note(),
    }))
}

/// What judging needs: the census library, its minima's details, the training patterns.
pub struct RetrievalContext {
    pub library: Library,
    pub minima: std::collections::HashMap<i64, (Pattern, String, f64)>,
    pub training: std::collections::HashSet<Pattern>,
}

impl RetrievalContext {
    pub async fn load(
        state: &AppState,
        row: &store::models::ModelRow,
        n: usize,
    ) -> ApiResult<Self> {
        let census = store::library::latest_census(&state.db, row.id, None).await?;
        let rows = match &census {
            Some(c) => store::library::all_minima(&state.db, c.id).await?,
            None => Vec::new(),
        };
        let library = Library::from_rows(census.as_ref().map(|c| c.id), &rows, n);
        let minima = rows
            .iter()
            .filter_map(|m| {
                Some((
                    m.id,
                    (
                        Pattern::from_bytes(&m.pattern, n)?,
                        m.kind.clone(),
                        m.free_energy,
                    ),
                ))
            })
            .collect();
        let training = match (census.is_some(), row.dataset_id) {
            (false, Some(ds)) => match store::datasets::get(&state.db, ds).await? {
                Some(d) => store::datasets::load(&state.db, &d)
                    .await?
                    .patterns()
                    .iter()
                    .cloned()
                    .collect(),
                None => Default::default(),
            },
            _ => Default::default(),
        };
        Ok(Self {
            library,
            minima,
            training,
        })
    }

    pub fn judge(&self) -> crate::service::retrieval::Judge<'_> {
        crate::service::retrieval::Judge {
            library: &self.library,
            training: &self.training,
        }
    }

    pub fn note(&self) -> Option<String> {
        (!self.library.has_census()).then(|| {
            "the model has no census yet: end states were reached by quench and judged against the training set (retrieved = a training pattern); `escaped` needs a census (POST /v1/models/{id}/census)".to_string()
        })
    }

    pub fn result(
        &self,
        query: &[Option<bool>],
        o: crate::service::retrieval::Outcome,
        format: PatternFormat,
        gate: Option<Value>,
    ) -> RetrievalResult {
        let known = query.iter().filter(|b| b.is_some()).count();
        let hamming = query
            .iter()
            .enumerate()
            .filter(|(a, b)| b.is_some_and(|bit| o.end.bit(*a) != bit))
            .count();
        let minimum = o.minimum_id.and_then(|id| {
            self.minima.get(&id).map(|(p, kind, f)| MinimumRef {
                id,
                pattern: PatternOut::new(p, format),
                kind: kind.clone(),
                free_energy: *f,
            })
        });
        RetrievalResult {
            verdict: o.verdict,
            minimum,
            completed: PatternOut::new(&o.end, format),
            energy: o.energy,
            hamming,
            known,
            confidence: o.confidence,
            restarts: o
                .restarts
                .into_iter()
                .map(|(q, v, m)| RestartDto {
                    pattern: PatternOut::new(&q.pattern, format),
                    energy: q.energy,
                    verdict: v,
                    minimum_id: m,
                })
                .collect(),
            gate,
        }
    }
}

/// The standard retrieval test.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// Fraction of bits flipped in each cue (default 0.1).
    #[serde(default)]
    pub flip_fraction: Option<f64>,
    /// Fraction of bits hidden in each cue (default 0).
    #[serde(default)]
    pub hide_fraction: Option<f64>,
    /// Cues per training pattern (default 5).
    #[serde(default)]
    pub cues_per_pattern: Option<usize>,
    /// Evaluate at most this many distinct training patterns (a random sample; default all).
    #[serde(default)]
    pub max_patterns: Option<usize>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub sweeps: Option<usize>,
    #[serde(default)]
    pub restarts: Option<usize>,
    #[serde(default)]
    pub clamp_known: Option<ClampKnown>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Mixtures: gating (default `likelihood`).
    #[serde(default)]
    pub gating: Option<Gating>,
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// Retrieval from corrupted cues of every training pattern: the rate overall and by pattern
/// count, false-state and escape rates. Within the synchronous budget the answer is immediate
/// (200); above it, a job (202) whose result is the report. On a mixture the same cues also run
/// through the parent model, side by side.
#[utoipa::path(
    post, path = "/v1/models/{id}/evaluate-retrieval", tag = "generation",
    params(("id" = i64, Path, description = "Model id")),
    request_body = EvaluateRequest,
    responses(
        (status = 200, description = "The report", body = Object),
        (status = 202, description = "An evaluation job", body = JobDto),
        (status = 404, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)
    )
)]
pub async fn evaluate_retrieval(
    State(state): State<AppState>,
    Id(id): Id,
    OptionalJsonBody(r): OptionalJsonBody<EvaluateRequest>,
) -> ApiResult<Response> {
    let row = fetch(&state, id).await?;
    let n = row.n_spins as usize;
    let Some(ds_id) = row.dataset_id else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unprocessable,
            format!("model {id} has no training dataset (imported): there are no patterns to cue"),
        ));
    };
    let ds = store::datasets::get(&state.db, ds_id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::DatasetNotFound, "dataset", ds_id))?;
    let frac = |v: Option<f64>, d: f64, field: &str| -> ApiResult<f64> {
        let x = v.unwrap_or(d);
        if !(0.0..=1.0).contains(&x) {
            return Err(ApiError::invalid_field(
                field,
                format!("must be between 0 and 1, got {x}"),
            ));
        }
        Ok(x)
    };
    let flip = frac(r.flip_fraction, 0.1, "flip_fraction")?;
    let hide = frac(r.hide_fraction, 0.0, "hide_fraction")?;
    if flip + hide >= 1.0 {
        return Err(ApiError::invalid_field(
            "hide_fraction",
            "flip_fraction + hide_fraction must leave some bits known",
        ));
    }
    let cues = range(r.cues_per_pattern.unwrap_or(5), "cues_per_pattern", 1, 1000)?;
    let m = ds.n_distinct as usize;
    let max_patterns = range(r.max_patterns.unwrap_or(m), "max_patterns", 1, usize::MAX)?;
    let retrieval = retrieval_spec(
        r.temperature.unwrap_or(row.temperature),
        r.sweeps,
        r.restarts,
        r.clamp_known,
    )?;
    let (sweeps, restarts) = (retrieval.sweeps, retrieval.restarts);
    let seed = r.seed.unwrap_or_else(|| rand::random::<u64>() >> 11);
    let patterns = crate::service::evaluation::choose_patterns(m, max_patterns, seed);
    let mixture = row.kind == "mixture";
    let work = patterns.len() as u128
        * cues as u128
        * restarts as u128
        * (sweeps as u128 + 1)
        * n as u128
        * if mixture { 2 } else { 1 };
    if work > state.config.max_work as u128 {
        return Err(ApiError::work_limit(
            "patterns × cues × restarts × (sweeps + 1) × N",
            work,
            state.config.max_work,
            "BOUNDSTATE_MAX_WORK",
            "max_patterns",
        ));
    }
    if !mixture && r.gating.is_some() {
        return Err(ApiError::invalid_field(
            "gating",
            format!("model {id} is not a mixture"),
        ));
    }
    let params = EvaluationParams {
        model_id: id,
        cues: CueSpec {
            flip_fraction: flip,
            hide_fraction: hide,
            cues_per_pattern: cues,
            seed,
        },
        patterns,
        retrieval,
        gating: r.gating.unwrap_or_default(),
    };
    if work > state.config.sync_work_budget as u128 {
        let value = serde_json::to_value(&params).map_err(ApiError::internal)?;
        return submit(
            &state,
            Submission {
                kind: JobKind::Evaluation,
                name: None,
                params: &value,
                dataset_id: Some(ds_id),
                model_id: Some(id),
                callback_url: r.callback_url.as_deref(),
            },
        )
        .await
        .map(IntoResponse::into_response);
    }
    let report = crate::service::evaluation::evaluate(
        &state.db,
        state.jobs.compute(),
        &params,
        true,
        Interrupt::new(),
        std::sync::Arc::new(|_, _| {}),
    )
    .await
    .map_err(failure)?;
    Ok((StatusCode::OK, Json(report)).into_response())
}

async fn retrieve_mixture(
    state: &AppState,
    row: store::models::ModelRow,
    r: RetrieveRequest,
) -> ApiResult<RetrieveResponse> {
    let n = row.n_spins as usize;
    let inputs = retrieval_inputs(state, &r, n, row.temperature)?;
    let mixture = crate::service::experts::Mixture::load(&state.db, state.jobs.compute(), &row)
        .await
        .map_err(failure)?;
    if let Some(e) = r.expert
        && e >= mixture.experts.len()
    {
        return Err(ApiError::invalid_field(
            "expert",
            format!("the mixture has {} experts, got {e}", mixture.experts.len()),
        ));
    }
    let mut ctx = RetrievalContext::load(state, &row, n).await?;
    if ctx.training.is_empty()
        && let Some(ds) = row.dataset_id
        && let Some(d) = store::datasets::get(&state.db, ds).await?
    {
        ctx.training = store::datasets::load(&state.db, &d)
            .await?
            .patterns()
            .iter()
            .cloned()
            .collect();
    }
    let gating = r.gating.unwrap_or_default();
    let (format, fixed) = (r.format, r.expert);
    let (seed, t) = (inputs.opts.seed, inputs.opts.temperature);
    let (results, ctx) = state
        .jobs
        .compute()
        .run_interactive(move || {
            let spec = crate::service::evaluation::RetrievalSpec {
                temperature: inputs.opts.temperature,
                sweeps: inputs.opts.sweeps,
                restarts: inputs.opts.restarts,
                clamp_known_sweeps: inputs.opts.clamp_known_sweeps,
            };
            let interrupt = Interrupt::new();
            let out = {
                let gated = mixture.retriever(&spec, gating, &ctx.training);
                inputs
                    .queries
                    .iter()
                    .enumerate()
                    .map(|(i, q)| {
                        let seed = inputs.opts.seed.wrapping_add(i as u64);
                        match fixed {
                            Some(e) => {
                                let opts = crate::engine::retrieve::RetrievalOptions {
                                    seed,
                                    ..inputs.opts.clone()
                                };
                                crate::service::retrieval::retrieve_one(
                                    &mixture.experts[e].kernel,
                                    q,
                                    &opts,
                                    &gated_judge(&gated),
                                    &interrupt,
                                )
                                .map(|o| {
                                    (q.clone(), o, json!({ "expert": e, "chosen_by": "request" }))
                                })
                            }
                            None => gated
                                .run_gated(q, seed, &interrupt)
                                .map(|(o, g)| (q.clone(), o, g)),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            out.map(|o| (o, ctx))
        })
        .await
        .map_err(ApiError::internal)??;
    let results = results
        .into_iter()
        .map(|(q, o, g)| ctx.result(&q, o, format, Some(g)))
        .collect();
    Ok(RetrieveResponse {
        results,
        census_id: None,
        seed,
        temperature: t,
        note: Some(
            "a mixture: the query chose the expert (see `gate`); end states are judged against the training set"
                .into(),
        ),
    })
}

fn gated_judge<'a>(
    g: &'a crate::service::experts::Gated<'a>,
) -> crate::service::retrieval::Judge<'a> {
    crate::service::retrieval::Judge {
        library: &g.library,
        training: g.training,
    }
}
