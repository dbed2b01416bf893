//! `POST /v1/training-jobs`: validate a training request completely (so the job cannot fail on
//! its input), resolve every default and the seed, queue it.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::JsonBody;
use super::jobs::{JobDto, JobKind, Submission, submit};
use super::models::{check_temperature, too_many_spins};
use crate::engine::EngineError;
use crate::engine::train::{Method, Optimizer, TrainingConfig};
use crate::service::experts::ExpertsSpec;
use crate::service::training::{DescriptionSpec, TrainingParams};
use crate::store;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// A training job. Only `dataset_id` and `description` are required; every hyperparameter has
/// a default that works without tuning (the job's `params` shows the values used).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingRequest {
    pub dataset_id: i64,
    #[serde(default)]
    pub name: Option<String>,
    pub description: DescriptionSpec,
    /// T > 0 of p(σ) ∝ exp(−E(σ)/T) (default 1).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// `full`, `projection`, `exact`, `sampled` or `pseudolikelihood`. Default: `full` for a full
    /// description, `exact` when N ≤ the exact-enumeration cap, otherwise `sampled`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "exact")]
    pub method: Option<Method>,
    /// `full`/`projection`: the library probability 1 − ε that fixes the ceiling energy
    /// (default 0.99).
    #[serde(default)]
    pub library_probability: Option<f64>,
    /// `full`/`projection`: the ceiling energy E_u given directly (instead of the probability).
    #[serde(default)]
    pub ceiling_energy: Option<f64>,
    /// λ of the penalty (λ/2) Σ_S J_S².
    #[serde(default)]
    pub l2: Option<f64>,
    #[serde(default)]
    pub max_iterations: Option<usize>,
    /// Stop when the largest moment error is below this.
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// `auto`, `newton`, `lbfgs`, `adam` or `gradient_descent`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "auto")]
    pub optimizer: Option<Optimizer>,
    /// Step size (default adaptive).
    #[serde(default)]
    pub step_size: Option<f64>,
    /// `sampled`: persistent chains.
    #[serde(default)]
    pub chains: Option<usize>,
    /// `sampled`: Gibbs sweeps per step.
    #[serde(default)]
    pub sweeps_per_step: Option<usize>,
    /// `sampled`: replica exchange (8 replicas) against trapping in one basin (default true).
    #[serde(default)]
    pub parallel_tempering: Option<bool>,
    /// `sampled`: start from the pseudo-likelihood fit.
    #[serde(default)]
    pub init_from_pseudolikelihood: Option<bool>,
    /// Default: drawn at random and stored on the job.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub wall_clock_limit_seconds: Option<f64>,
    /// Run the census of minima when training ends (default true).
    #[serde(default)]
    pub census: Option<bool>,
    /// Train one expert per free-energy minimum after the parent model (a mixture).
    #[serde(default)]
    pub experts: Option<ExpertsSpec>,
    /// POSTed the job JSON when it reaches a terminal state (signed; see the README).
    #[serde(default)]
    pub callback_url: Option<String>,
}

fn positive(v: Option<f64>, field: &str) -> ApiResult<()> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(ApiError::invalid_field(
            field,
            format!("must be a finite number > 0, got {x}"),
        )),
        _ => Ok(()),
    }
}

fn in_range(v: Option<usize>, field: &str, lo: usize, hi: usize) -> ApiResult<()> {
    v.map_or(Ok(()), |x| {
        super::error::in_range(x, field, lo, hi).map(drop)
    })
}

fn unprocessable(field: &str, message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unprocessable,
        format!("{field}: {message}"),
    )
    .with_details(json!({ "field": field }))
}

/// Train a model on a dataset (a job).
#[utoipa::path(
    post, path = "/v1/training-jobs", tag = "jobs",
    request_body = TrainingRequest,
    responses(
        (status = 202, description = "Queued; follow it at /v1/jobs/{id} or /v1/jobs/{id}/events", body = JobDto),
        (status = 404, description = "The dataset does not exist", body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody),
        (status = 429, description = "Queue full (Retry-After)", body = super::error::ErrorBody)
    )
)]
pub async fn create_training_job(
    State(state): State<AppState>,
    JsonBody(r): JsonBody<TrainingRequest>,
) -> ApiResult<(StatusCode, Json<JobDto>)> {
    let ds = store::datasets::get(&state.db, r.dataset_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(ErrorCode::DatasetNotFound, "dataset", r.dataset_id)
                .with_details(json!({ "field": "dataset_id", "id": r.dataset_id }))
        })?;
    let n = ds.n_spins as usize;
    let cfg = &state.config;
    if n > cfg.max_spins {
        return Err(too_many_spins(n, cfg.max_spins));
    }
    let temperature = r.temperature.unwrap_or(1.0);
    check_temperature(temperature, "temperature")?;
    if let Some(l2) = r.l2
        && !(l2.is_finite() && l2 >= 0.0)
    {
        return Err(ApiError::invalid_field(
            "l2",
            format!("must be a finite number ≥ 0, got {l2}"),
        ));
    }
    if let Some(e) = r.ceiling_energy
        && !e.is_finite()
    {
        return Err(ApiError::invalid_field("ceiling_energy", "must be finite"));
    }
    positive(r.tolerance, "tolerance")?;
    positive(r.step_size, "step_size")?;
    positive(r.wall_clock_limit_seconds, "wall_clock_limit_seconds")?;
    in_range(r.max_iterations, "max_iterations", 1, 1_000_000)?;
    in_range(r.chains, "chains", 1, 100_000)?;
    in_range(r.sweeps_per_step, "sweeps_per_step", 1, 100_000)?;
    if let Some(p) = r.library_probability
        && !(p > 0.0 && p < 1.0)
    {
        return Err(ApiError::invalid_field(
            "library_probability",
            format!("must be strictly between 0 and 1, got {p}"),
        ));
    }
    if r.library_probability.is_some() && r.ceiling_energy.is_some() {
        return Err(ApiError::invalid_field(
            "ceiling_energy",
            "give either library_probability or ceiling_energy, not both",
        ));
    }
    let full = r.description.is_full();
    let method = r.method.unwrap_or(if full {
        Method::Full
    } else if n <= cfg.exact_max_spins {
        Method::Exact
    } else {
        Method::Sampled
    });
    // Validate the description (errors name the field).
    r.description
        .check(n, cfg.max_couplings)
        .map_err(|e| match e {
            EngineError::Invalid { field, message } => ApiError::invalid_field(field, message),
            other => other.into(),
        })?;
    match method {
        Method::Full if !full => {
            return Err(ApiError::invalid_field(
                "method",
                "`full` trains the full description: use description {\"full\": true}, or method `projection` for a reduced one",
            ));
        }
        Method::Projection if full => {
            return Err(ApiError::invalid_field(
                "method",
                "`projection` truncates the full description to a reduced one: give description {\"order\": k} or interactions",
            ));
        }
        Method::Full | Method::Projection
            if n > crate::engine::interactions::FULL_MAX_SPINS.min(cfg.exact_max_spins) =>
        {
            return Err(unprocessable(
                "method",
                format!(
                    "the full description (2^N couplings) needs N ≤ {} (BOUNDSTATE_EXACT_MAX_SPINS), the dataset has N = {n}; use `exact`, `pseudolikelihood` or `sampled`",
                    crate::engine::interactions::FULL_MAX_SPINS.min(cfg.exact_max_spins)
                ),
            ));
        }
        Method::Exact if n > cfg.exact_max_spins => {
            return Err(unprocessable(
                "method",
                format!(
                    "`exact` enumerates 2^N states: N = {n} is above the cap of {} (BOUNDSTATE_EXACT_MAX_SPINS); use `sampled` or `pseudolikelihood`",
                    cfg.exact_max_spins
                ),
            ));
        }
        _ => {}
    }
    if r.experts.is_some() && !r.census.unwrap_or(true) {
        return Err(ApiError::invalid_field(
            "census",
            "experts are trained per minimum of the census: leave census on",
        ));
    }
    if let Some(e) = &r.experts {
        e.validate()
            .map_err(|(f, m)| ApiError::invalid_field(format!("experts.{f}"), m))?;
    }
    let d = TrainingConfig::new(method);
    let params = TrainingParams {
        dataset_id: ds.id,
        description: r.description,
        temperature,
        method,
        library_probability: match method {
            Method::Full | Method::Projection if r.ceiling_energy.is_none() => {
                Some(r.library_probability.unwrap_or(0.99))
            }
            _ => None,
        },
        ceiling_energy: r.ceiling_energy,
        l2: r.l2.unwrap_or(d.l2),
        max_iterations: r.max_iterations.unwrap_or(d.max_iterations),
        tolerance: r.tolerance.unwrap_or(d.tolerance),
        optimizer: r.optimizer.unwrap_or(d.optimizer),
        step_size: r.step_size.or(d.step_size),
        chains: r.chains.unwrap_or(d.chains),
        sweeps_per_step: r.sweeps_per_step.unwrap_or(d.sweeps_per_step),
        parallel_tempering: r.parallel_tempering.unwrap_or(d.parallel_tempering),
        init_from_pseudolikelihood: r
            .init_from_pseudolikelihood
            .unwrap_or(d.init_from_pseudolikelihood),
        seed: r.seed.unwrap_or_else(|| rand::random::<u64>() >> 11),
        wall_clock_limit_seconds: r.wall_clock_limit_seconds,
        census: r.census.unwrap_or(true),
        experts: r.experts,
    };
    if method == Method::Sampled {
        let work = (params.max_iterations as u128)
            * (params.chains as u128)
            * (params.sweeps_per_step as u128)
            * (n as u128);
        if work > cfg.max_work as u128 {
            return Err(ApiError::work_limit(
                "max_iterations × chains × sweeps_per_step × N",
                work,
                cfg.max_work,
                "BOUNDSTATE_MAX_WORK",
                "max_iterations",
            ));
        }
    }
    let value = serde_json::to_value(&params).map_err(ApiError::internal)?;
    submit(
        &state,
        Submission {
            kind: JobKind::Training,
            name: r.name.as_deref(),
            params: &value,
            dataset_id: Some(ds.id),
            model_id: None,
            callback_url: r.callback_url.as_deref(),
        },
    )
    .await
}

/// Split a trained model into experts.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpertsRequest {
    /// Patterns with a weight below this need not be held by an expert (default 0).
    #[serde(default)]
    pub min_weight: Option<f64>,
    /// At most this many experts (default 64).
    #[serde(default)]
    pub max_experts: Option<usize>,
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// Train one expert per free-energy minimum of a trained model (same description and method),
/// stored as a mixture (a job).
#[utoipa::path(
    post, path = "/v1/models/{id}/experts", tag = "jobs",
    params(("id" = i64, Path, description = "Model id")),
    request_body = ExpertsRequest,
    responses(
        (status = 202, body = JobDto),
        (status = 404, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)
    )
)]
pub async fn create_experts(
    State(state): State<AppState>,
    super::extract::Id(id): super::extract::Id,
    super::extract::OptionalJsonBody(r): super::extract::OptionalJsonBody<ExpertsRequest>,
) -> ApiResult<(StatusCode, Json<JobDto>)> {
    let row = super::models::fetch(&state, id).await?;
    if row.kind != "single" {
        return Err(unprocessable(
            "id",
            format!(
                "model {id} is a {}; experts split a single trained model",
                row.kind
            ),
        ));
    }
    if crate::service::experts::training_params(&state.db, &row)
        .await?
        .is_none()
    {
        return Err(unprocessable(
            "id",
            format!(
                "model {id} was not trained here (imported): experts copy the training job's description and method"
            ),
        ));
    }
    let spec = ExpertsSpec {
        per_minimum: true,
        min_weight: r.min_weight.unwrap_or(0.0),
        max_experts: r.max_experts.unwrap_or(64),
    };
    spec.validate()
        .map_err(|(f, m)| ApiError::invalid_field(f, m))?;
    let params = serde_json::to_value(crate::service::experts::ExpertsParams::new(id, spec))
        .map_err(ApiError::internal)?;
    submit(
        &state,
        Submission {
            kind: JobKind::Experts,
            name: None,
            params: &params,
            dataset_id: row.dataset_id,
            model_id: Some(id),
            callback_url: r.callback_url.as_deref(),
        },
    )
    .await
}
