//! Training jobs: load the dataset, minimise Φ on the compute pool (resuming from a checkpoint
//! when there is one), store the model and finish the job in one transaction, then queue the
//! census of its minima.

use super::census::CensusParams;
use crate::engine::train::{self, Method, Optimizer, TrainingConfig};
use crate::engine::{EngineError, InteractionSet, full::Ceiling};
use crate::jobs::{JobContext, JobFailure};
use crate::store::{self, models::NewModel};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// Which couplings a model has: exactly one of `order`, `full`, `interactions`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DescriptionSpec {
    /// Every S with 1 ≤ |S| ≤ k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<usize>,
    /// Every subset (2^N couplings; N ≤ 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<bool>,
    /// An explicit list of subsets (0-based spins), e.g. `[[0,1],[2]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactions: Option<Vec<Vec<usize>>>,
}

impl DescriptionSpec {
    pub fn is_full(&self) -> bool {
        self.full == Some(true)
    }

    /// Validate against N spins without enumerating an order-k or full set (cheap enough for a
    /// request handler); a custom list is built, its cost bounded by the request body.
    pub fn check(&self, n: usize, max_couplings: u64) -> Result<(), EngineError> {
        match (self.order, self.full, &self.interactions) {
            (Some(k), None, None) if k >= 1 && k <= n => {
                match crate::engine::interactions::count_order(n, k) {
                    Some(c) if c <= max_couplings => Ok(()),
                    c => Err(EngineError::invalid(
                        "description.order",
                        format!(
                            "order {k} over N = {n} has {} couplings, above the limit of {max_couplings}",
                            c.map_or("too many".to_string(), |c| c.to_string())
                        ),
                    )),
                }
            }
            (None, Some(true), None) if n <= crate::engine::interactions::FULL_MAX_SPINS => {
                if (1u64 << n) > max_couplings.saturating_add(1) {
                    Err(EngineError::invalid(
                        "description.full",
                        format!("2^{n} couplings exceed the limit of {max_couplings}"),
                    ))
                } else {
                    Ok(())
                }
            }
            _ => self.build(n, max_couplings).map(drop),
        }
    }

    /// The interaction set over N spins; errors name `description.*`.
    pub fn build(&self, n: usize, max_couplings: u64) -> Result<InteractionSet, EngineError> {
        let field = |f: &str, e: EngineError| match e {
            EngineError::Invalid { message, .. } => {
                EngineError::invalid(format!("description.{f}"), message)
            }
            other => other,
        };
        match (self.order, self.full, &self.interactions) {
            (Some(k), None, None) => {
                if k == 0 || k > n {
                    return Err(EngineError::invalid(
                        "description.order",
                        format!("must be between 1 and N = {n}, got {k}"),
                    ));
                }
                InteractionSet::order(n, k, max_couplings).map_err(|e| field("order", e))
            }
            (None, Some(true), None) => {
                if (1u64 << n.min(63)) > max_couplings.saturating_add(1) {
                    return Err(EngineError::invalid(
                        "description.full",
                        format!("2^{n} couplings exceed the limit of {max_couplings}"),
                    ));
                }
                InteractionSet::full(n).map_err(|e| field("full", e))
            }
            (None, None, Some(list)) => {
                if list.len() as u64 > max_couplings {
                    return Err(EngineError::invalid(
                        "description.interactions",
                        format!("{} subsets exceed the limit of {max_couplings}", list.len()),
                    ));
                }
                InteractionSet::custom(n, list).map_err(|e| field("interactions", e))
            }
            (None, Some(false), None) => Err(EngineError::invalid(
                "description.full",
                "`full: false` describes nothing; give `order` or `interactions` instead",
            )),
            _ => Err(EngineError::invalid(
                "description",
                "give exactly one of {\"order\": k}, {\"full\": true}, {\"interactions\": [[...], ...]}",
            )),
        }
    }
}

/// A training job's parameters with every default resolved (stored on the job).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainingParams {
    pub dataset_id: i64,
    pub description: DescriptionSpec,
    pub temperature: f64,
    pub method: Method,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling_energy: Option<f64>,
    pub l2: f64,
    pub max_iterations: usize,
    pub tolerance: f64,
    pub optimizer: Optimizer,
    #[serde(default)]
    pub step_size: Option<f64>,
    pub chains: usize,
    pub sweeps_per_step: usize,
    pub parallel_tempering: bool,
    pub init_from_pseudolikelihood: bool,
    pub seed: u64,
    #[serde(default)]
    pub wall_clock_limit_seconds: Option<f64>,
    /// Run a census of the trained model's minima afterwards.
    pub census: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<super::experts::ExpertsSpec>,
}

impl TrainingParams {
    pub fn config(&self, exact_max_spins: usize) -> TrainingConfig {
        let mut c = TrainingConfig::new(self.method);
        c.temperature = self.temperature;
        c.l2 = self.l2;
        c.max_iterations = self.max_iterations;
        c.tolerance = self.tolerance;
        c.optimizer = self.optimizer;
        c.step_size = self.step_size;
        c.seed = self.seed;
        c.chains = self.chains;
        c.sweeps_per_step = self.sweeps_per_step;
        c.parallel_tempering = self.parallel_tempering;
        c.init_from_pseudolikelihood = self.init_from_pseudolikelihood;
        c.wall_clock_limit = self.wall_clock_limit_seconds.map(Duration::from_secs_f64);
        c.ceiling = match (self.ceiling_energy, self.library_probability) {
            (Some(e), _) => Ceiling::Energy(e),
            (None, Some(p)) => Ceiling::LibraryProbability(p),
            (None, None) => c.ceiling,
        };
        c.exact_max_spins = exact_max_spins;
        c
    }
}

/// Run a training job.
pub async fn run(ctx: JobContext) -> Result<(), JobFailure> {
    let p: TrainingParams = serde_json::from_str(&ctx.params)
        .map_err(|e| JobFailure::Failed(format!("the stored parameters are unreadable: {e}")))?;
    let ds = store::datasets::get(&ctx.db, p.dataset_id)
        .await?
        .ok_or_else(|| {
            JobFailure::Failed(format!(
                "dataset {} was deleted before the job ran",
                p.dataset_id
            ))
        })?;
    let data = store::datasets::load(&ctx.db, &ds).await?;
    let cfg = p.config(ctx.config.exact_max_spins);
    let (description, max_couplings) = (p.description.clone(), ctx.config.max_couplings);
    let (interrupt, reporter, resume) = (
        ctx.interrupt.clone(),
        ctx.reporter.clone(),
        ctx.checkpoint.clone(),
    );
    let trained = ctx
        .compute
        .run(move || {
            let set = Arc::new(description.build(data.n(), max_couplings)?);
            train::train(
                &data,
                set,
                &cfg,
                resume.as_deref(),
                &interrupt,
                &*reporter,
                &*reporter,
            )
        })
        .await??;
    let mut report = serde_json::to_value(&trained.report)
        .map_err(|e| JobFailure::Failed(format!("the training report does not serialise: {e}")))?;
    report["seed"] = json!(p.seed);
    report["dataset_sha256"] = json!(ds.sha256);
    let report_s = report.to_string();
    let method = serde_json::to_value(p.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let name = store::jobs::get(&ctx.db, ctx.id)
        .await?
        .and_then(|j| j.name);
    let mut tx = ctx.db.begin_write().await?;
    let model = store::models::insert(
        &mut tx,
        &NewModel {
            name: name.as_deref(),
            kind: "single",
            dataset_id: Some(ds.id),
            dataset_sha256: Some(&ds.sha256),
            job_id: Some(ctx.id),
            parent_id: None,
            method: &method,
            temperature: p.temperature,
            model: Some(&trained.model),
            shape: None,
            report: &report_s,
        },
    )
    .await?;
    let follow_up = if let Some(spec) = &p.experts {
        let params = json!(super::experts::ExpertsParams::new(model.id, spec.clone()));
        Some(("experts", params))
    } else if p.census {
        let params = json!(CensusParams::default_for(
            model.id,
            p.temperature,
            trained.model.n(),
            ctx.config.exact_max_spins,
            p.seed
        ));
        Some(("census", params))
    } else {
        None
    };
    let follow_id = match &follow_up {
        Some((kind, params)) => Some(
            store::jobs::insert(
                &mut tx,
                &store::jobs::NewJob {
                    kind,
                    name: None,
                    params: &params.to_string(),
                    dataset_id: Some(ds.id),
                    model_id: Some(model.id),
                    callback_url: None,
                },
            )
            .await?
            .id,
        ),
        None => None,
    };
    let result = json!({
        "model_id": model.id,
        "follow_up_job_id": follow_id,
        "stop_reason": report.get("stop_reason"),
    });
    ctx.succeed(&mut tx, &result, Some(model.id)).await?;
    tx.commit().await?;
    if let Some(id) = follow_id {
        ctx.jobs.start(id);
    }
    Ok(())
}
