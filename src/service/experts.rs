//! Mixtures of experts (model.md §7): the job that trains one expert per free-energy minimum of
//! a trained model, and the mixture as the API uses it (gated retrieval, sampling by shares).

use super::generate::Library;
use super::retrieval::{Judge, Outcome, Retriever, retrieve_one};
use super::training::TrainingParams;
use crate::api::generate::Gating;
use crate::engine::experts::{Normaliser, SplitOptions, gate_scores, train_experts};
use crate::engine::sampler::Kernel;
use crate::engine::{EngineError, Interrupt, Pattern};
use crate::jobs::{Compute, JobContext, JobFailure};
use crate::store::{self, Db, models::ModelRow, models::NewModel};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use utoipa::ToSchema;

/// Train one expert per free-energy minimum.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpertsSpec {
    /// Must be true: one expert per minimum of the census (split further while an expert
    /// swallows patterns).
    #[serde(default = "yes")]
    pub per_minimum: bool,
    /// Patterns with a weight below this need not be held by an expert (default 0: all).
    #[serde(default)]
    pub min_weight: f64,
    /// At most this many experts (default 64).
    #[serde(default = "default_max_experts")]
    pub max_experts: usize,
}

fn yes() -> bool {
    true
}

fn default_max_experts() -> usize {
    64
}

impl ExpertsSpec {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.per_minimum {
            return Err((
                "per_minimum",
                "only per-minimum experts exist; set it true or leave `experts` out".into(),
            ));
        }
        if !(self.min_weight.is_finite() && (0.0..1.0).contains(&self.min_weight)) {
            return Err((
                "min_weight",
                format!("must be in [0, 1), got {}", self.min_weight),
            ));
        }
        if !(1..=1024).contains(&self.max_experts) {
            return Err((
                "max_experts",
                format!("must be between 1 and 1024, got {}", self.max_experts),
            ));
        }
        Ok(())
    }
}

/// An experts job: the trained model to split, and how.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExpertsParams {
    pub source_model_id: i64,
    pub spec: ExpertsSpec,
}

impl ExpertsParams {
    pub fn new(source_model_id: i64, spec: ExpertsSpec) -> Self {
        Self {
            source_model_id,
            spec,
        }
    }
}

/// The training parameters a model was trained with (from its training job).
pub async fn training_params(
    db: &Db,
    row: &ModelRow,
) -> Result<Option<TrainingParams>, store::StoreError> {
    let Some(job_id) = row.job_id else {
        return Ok(None);
    };
    Ok(store::jobs::get(db, job_id)
        .await?
        .filter(|j| j.kind == "training")
        .and_then(|j| serde_json::from_str(&j.params).ok()))
}

pub async fn run(ctx: JobContext) -> Result<(), JobFailure> {
    let p: ExpertsParams = serde_json::from_str(&ctx.params)
        .map_err(|e| JobFailure::Failed(format!("the stored parameters are unreadable: {e}")))?;
    let gone = || JobFailure::Failed(format!("model {} was deleted", p.source_model_id));
    let row = store::models::get(&ctx.db, p.source_model_id)
        .await?
        .ok_or_else(gone)?;
    let parent = store::models::load(&ctx.db, row.id)
        .await?
        .ok_or_else(gone)?;
    let tp = training_params(&ctx.db, &row).await?.ok_or_else(|| {
        JobFailure::Failed(format!(
            "model {} has no training job to copy the description and method from",
            row.id
        ))
    })?;
    let ds = store::datasets::get(&ctx.db, tp.dataset_id)
        .await?
        .ok_or_else(|| JobFailure::Failed("the training dataset was deleted".into()))?;
    let data = store::datasets::load(&ctx.db, &ds).await?;
    let mut cfg = tp.config(ctx.config.exact_max_spins);
    cfg.wall_clock_limit = None;
    let (exact_max, max_couplings) = (ctx.config.exact_max_spins, ctx.config.max_couplings);
    let (interrupt, reporter) = (ctx.interrupt.clone(), ctx.reporter.clone());
    let opts = SplitOptions {
        min_weight: p.spec.min_weight,
        max_experts: p.spec.max_experts,
    };
    let description = tp.description.clone();
    let t = tp.temperature;
    let (experts, norms) = ctx
        .compute
        .run(move || {
            let set = Arc::new(description.build(data.n(), max_couplings)?);
            let ex = train_experts(&data, set, &cfg, &parent, &opts, &interrupt, &*reporter)?;
            let norms = ex
                .experts
                .iter()
                .map(|e| {
                    let minima: Vec<Pattern> =
                        e.held.iter().map(|&i| data.patterns()[i].clone()).collect();
                    let minima = if minima.is_empty() {
                        e.patterns
                            .iter()
                            .map(|&i| data.patterns()[i].clone())
                            .collect()
                    } else {
                        minima
                    };
                    Normaliser::for_expert(&e.model, &minima, t, exact_max)
                })
                .collect::<Result<Vec<_>, EngineError>>()?;
            Ok::<_, EngineError>((ex, norms))
        })
        .await??;
    let n = row.n_spins as usize;
    let total_couplings: usize = experts.experts.iter().map(|e| e.model.set().len()).sum();
    let mut tx = ctx.db.begin_write().await?;
    let mixture = store::models::insert(
        &mut tx,
        &NewModel {
            name: row.name.as_deref(),
            kind: "mixture",
            dataset_id: Some(ds.id),
            dataset_sha256: Some(&ds.sha256),
            job_id: Some(ctx.id),
            parent_id: None,
            method: "experts",
            temperature: t,
            model: None,
            shape: Some((n, "mixture", total_couplings)),
            report: "{}",
        },
    )
    .await?;
    let mut listed = Vec::with_capacity(experts.experts.len());
    for (e, norm) in experts.experts.iter().zip(&norms) {
        let (kind, log_z) = match norm {
            Normaliser::Exact(l) => ("exact", *l),
            Normaliser::Minimum(l) => ("deepest_minimum", *l),
        };
        let report = json!({
            "share": e.share,
            "patterns": e.patterns,
            "held": e.held,
            "log_partition": log_z,
            "normaliser": kind,
            "training": e.report,
        });
        let r = store::models::insert(
            &mut tx,
            &NewModel {
                name: None,
                kind: "expert",
                dataset_id: Some(ds.id),
                dataset_sha256: Some(&ds.sha256),
                job_id: Some(ctx.id),
                parent_id: Some(mixture.id),
                method: &serde_json::to_value(tp.method)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                temperature: t,
                model: Some(&e.model),
                shape: None,
                report: &report.to_string(),
            },
        )
        .await?;
        listed.push(json!({
            "model_id": r.id,
            "share": e.share,
            "patterns": e.patterns.len(),
            "held": e.held.len(),
            "normaliser": kind,
        }));
    }
    let report = json!({
        "source_model_id": row.id,
        "experts": listed,
        "unheld_patterns": experts.unheld,
        "rounds": experts.rounds,
        "stop_reason": experts.stop_reason,
        "spec": p.spec,
        "gating_default": "likelihood",
    });
    store::models::set_report(&mut tx, mixture.id, &report.to_string()).await?;
    ctx.succeed(
        &mut tx,
        &json!({ "model_id": mixture.id, "experts": listed.len(), "unheld_patterns": experts.unheld.len() }),
        Some(mixture.id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One expert of a stored mixture.
pub struct MixExpert {
    pub id: i64,
    pub kernel: Kernel,
    pub share: f64,
    pub normaliser: Normaliser,
}

/// A stored mixture, loaded for use.
pub struct Mixture {
    pub id: i64,
    pub source_model_id: Option<i64>,
    pub temperature: f64,
    pub experts: Vec<MixExpert>,
}

impl Mixture {
    /// Load a mixture's experts; their kernels are built on the interactive compute pool.
    pub async fn load(db: &Db, compute: &Compute, row: &ModelRow) -> Result<Self, JobFailure> {
        let report: Value = serde_json::from_str(&row.report).unwrap_or(Value::Null);
        let mut loaded = Vec::new();
        for e in store::models::experts(db, row.id).await? {
            let model = store::models::load(db, e.id)
                .await?
                .ok_or_else(|| JobFailure::Failed(format!("expert {} has no couplings", e.id)))?;
            let r: Value = serde_json::from_str(&e.report).unwrap_or(Value::Null);
            let log_z = r["log_partition"].as_f64().unwrap_or(0.0);
            let normaliser = if r["normaliser"] == "exact" {
                Normaliser::Exact(log_z)
            } else {
                Normaliser::Minimum(log_z)
            };
            loaded.push((e.id, model, r["share"].as_f64().unwrap_or(0.0), normaliser));
        }
        let experts: Vec<MixExpert> = compute
            .run_interactive(move || {
                loaded
                    .into_iter()
                    .map(|(id, model, share, normaliser)| MixExpert {
                        id,
                        kernel: Kernel::new(&model),
                        share,
                        normaliser,
                    })
                    .collect()
            })
            .await?;
        if experts.is_empty() {
            return Err(JobFailure::Failed(format!(
                "mixture {} has no experts",
                row.id
            )));
        }
        Ok(Self {
            id: row.id,
            source_model_id: report["source_model_id"].as_i64(),
            temperature: row.temperature,
            experts,
        })
    }

    pub fn parent_id(&self) -> Option<i64> {
        self.source_model_id
    }

    /// Gate scores of a query, sorted best first: (expert index, score).
    pub fn gate(
        &self,
        query: &[Option<bool>],
        temperature: f64,
        gating: Gating,
    ) -> Vec<(usize, f64)> {
        let inputs: Vec<(&Kernel, Normaliser, f64)> = self
            .experts
            .iter()
            .map(|e| (&e.kernel, e.normaliser, e.share))
            .collect();
        let scores = gate_scores(&inputs, query, temperature, gating == Gating::Posterior);
        let mut ranked: Vec<(usize, f64)> = scores.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }

    pub fn retriever<'a>(
        &'a self,
        spec: &super::evaluation::RetrievalSpec,
        gating: Gating,
        training: &'a HashSet<Pattern>,
    ) -> Gated<'a> {
        Gated {
            mixture: self,
            opts: spec.options(0),
            gating,
            library: Library::default(),
            training,
        }
    }
}

/// Retrieval in a mixture: the query chooses the expert, then retrieval runs in it.
pub struct Gated<'a> {
    pub mixture: &'a Mixture,
    pub opts: crate::engine::retrieve::RetrievalOptions,
    pub gating: Gating,
    pub library: Library,
    pub training: &'a HashSet<Pattern>,
}

impl Gated<'_> {
    /// The outcome and the gate: chosen expert, runner-up, margin.
    pub fn run_gated(
        &self,
        cue: &[Option<bool>],
        seed: u64,
        interrupt: &Interrupt,
    ) -> Result<(Outcome, Value), EngineError> {
        let ranked = self.mixture.gate(cue, self.opts.temperature, self.gating);
        let (best, score) = ranked[0];
        let runner = ranked.get(1).copied();
        let expert = &self.mixture.experts[best];
        let opts = crate::engine::retrieve::RetrievalOptions {
            seed,
            ..self.opts.clone()
        };
        let judge = Judge {
            library: &self.library,
            training: self.training,
        };
        let o = retrieve_one(&expert.kernel, cue, &opts, &judge, interrupt)?;
        let gate = json!({
            "gating": self.gating,
            "expert": best,
            "expert_model_id": expert.id,
            "score": score,
            "runner_up": runner.map(|(i, _)| i),
            "runner_up_model_id": runner.map(|(i, _)| self.mixture.experts[i].id),
            "margin": runner.map(|(_, s)| score - s),
        });
        Ok((o, gate))
    }
}

impl Retriever for Gated<'_> {
    fn run(
        &self,
        cue: &[Option<bool>],
        seed: u64,
        interrupt: &Interrupt,
    ) -> Result<Outcome, EngineError> {
        self.run_gated(cue, seed, interrupt).map(|(o, _)| o)
    }
}
