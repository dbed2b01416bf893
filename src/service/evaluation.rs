//! The standard retrieval test: cues from training patterns, retrieval in the model (and, for a
//! mixture, in its parent too, side by side), rates by pattern count.

use super::experts::Mixture;
use super::generate::Library;
use super::retrieval::{self, CueSpec, Evaluation, Judge, Single};
use crate::api::generate::Gating;
use crate::engine::retrieve::RetrievalOptions;
use crate::engine::rng::ChainRng;
use crate::engine::sampler::Kernel;
use crate::engine::{Interrupt, Pattern};
use crate::jobs::{Compute, JobContext, JobFailure};
use crate::store::{self, Db};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// Retrieval settings shared by every cue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RetrievalSpec {
    pub temperature: f64,
    pub sweeps: usize,
    pub restarts: usize,
    pub clamp_known_sweeps: usize,
}

impl RetrievalSpec {
    pub fn options(&self, seed: u64) -> RetrievalOptions {
        RetrievalOptions {
            temperature: self.temperature,
            sweeps: self.sweeps,
            restarts: self.restarts,
            clamp_known_sweeps: self.clamp_known_sweeps,
            seed,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvaluationParams {
    pub model_id: i64,
    pub cues: CueSpec,
    /// Indices of the distinct training patterns evaluated.
    pub patterns: Vec<usize>,
    pub retrieval: RetrievalSpec,
    #[serde(default)]
    pub gating: Gating,
}

/// All `m` patterns, or a seeded random sample of `max` of them (sorted).
pub fn choose_patterns(m: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..m).collect();
    if max >= m {
        return all;
    }
    let mut rng = ChainRng::new(seed, u64::MAX);
    for i in 0..max {
        let j = i + rng.below((m - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(max);
    all.sort_unstable();
    all
}

type ProgressFn = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Run the evaluation (on the interactive pool when `interactive`, else the jobs pool).
pub async fn evaluate(
    db: &Db,
    compute: &Compute,
    p: &EvaluationParams,
    interactive: bool,
    interrupt: Interrupt,
    progress: ProgressFn,
) -> Result<Value, JobFailure> {
    let row = store::models::get(db, p.model_id)
        .await?
        .ok_or_else(|| JobFailure::Failed(format!("model {} was deleted", p.model_id)))?;
    let n = row.n_spins as usize;
    let ds = match row.dataset_id {
        Some(id) => store::datasets::get(db, id).await?,
        None => None,
    }
    .ok_or_else(|| JobFailure::Failed("the model's training dataset was deleted".into()))?;
    let data = store::datasets::load(db, &ds).await?;
    let training: Vec<Pattern> = data.patterns().to_vec();
    let counts: Vec<u64> = data.counts().to_vec();
    if let Some(&bad) = p.patterns.iter().find(|&&i| i >= training.len()) {
        return Err(JobFailure::Failed(format!(
            "pattern index {bad} is out of range"
        )));
    }
    let training_set: HashSet<Pattern> = training.iter().cloned().collect();
    let params = p.clone();
    if row.kind == "mixture" {
        let mixture = Mixture::load(db, compute, &row).await?;
        let parent_id = row.parent_id.or_else(|| mixture.parent_id());
        let parent = match parent_id {
            Some(pid) => Some((
                store::models::load(db, pid).await?,
                Library::load(db, pid, n).await?,
            )),
            None => None,
        };
        let task = move || {
            let gated = mixture.retriever(&params.retrieval, params.gating, &training_set);
            let ours = retrieval::evaluate(
                &gated,
                &training,
                &counts,
                &params.patterns,
                &params.cues,
                &interrupt,
                &|k, t| progress(k, t),
            )?;
            let single = match parent {
                Some((Some(model), library)) => {
                    let kernel = Kernel::new(&model);
                    let s = Single {
                        kernel: &kernel,
                        opts: params.retrieval.options(0),
                        judge: Judge {
                            library: &library,
                            training: &training_set,
                        },
                    };
                    Some(retrieval::evaluate(
                        &s,
                        &training,
                        &counts,
                        &params.patterns,
                        &params.cues,
                        &interrupt,
                        &|_, _| {},
                    )?)
                }
                _ => None,
            };
            Ok::<_, crate::engine::EngineError>(report(&params, &ours, single.as_ref()))
        };
        return run_on(compute, interactive, task).await;
    }
    let model = store::models::load(db, p.model_id)
        .await?
        .ok_or_else(|| JobFailure::Failed(format!("model {} was deleted", p.model_id)))?;
    let library = Library::load(db, p.model_id, n).await?;
    let task = move || {
        let kernel = Kernel::new(&model);
        let s = Single {
            kernel: &kernel,
            opts: params.retrieval.options(0),
            judge: Judge {
                library: &library,
                training: &training_set,
            },
        };
        let e = retrieval::evaluate(
            &s,
            &training,
            &counts,
            &params.patterns,
            &params.cues,
            &interrupt,
            &|k, t| progress(k, t),
        )?;
        let mut r = report(&params, &e, None);
        if !library.has_census() {
            r["note"] = json!(
                "no census yet: false states are judged against the training set and `escaped` cannot occur"
            );
        }
        Ok::<_, crate::engine::EngineError>(r)
    };
    run_on(compute, interactive, task).await
}

async fn run_on<F>(compute: &Compute, interactive: bool, task: F) -> Result<Value, JobFailure>
where
    F: FnOnce() -> Result<Value, crate::engine::EngineError> + Send + 'static,
{
    let out = if interactive {
        compute.run_interactive(task).await
    } else {
        compute.run(task).await
    };
    Ok(out??)
}

fn report(p: &EvaluationParams, e: &Evaluation, single: Option<&Evaluation>) -> Value {
    let mut v = json!({
        "model_id": p.model_id,
        "cues": p.cues,
        "retrieval": p.retrieval,
        "patterns_evaluated": p.patterns.len(),
        "overall": e.overall,
        "by_weight": e.by_weight,
        "per_pattern": e.per_pattern.iter().map(|(i, c, r)| json!({"pattern": i, "count": c, "rate": r})).collect::<Vec<_>>(),
    });
    if let Some(s) = single {
        v["gating"] = json!(p.gating);
        v["parent"] = json!({
            "overall": s.overall,
            "by_weight": s.by_weight,
            "per_pattern": s.per_pattern.iter().map(|(i, c, r)| json!({"pattern": i, "count": c, "rate": r})).collect::<Vec<_>>(),
        });
        v["comparison"] = json!(
            e.by_weight
                .iter()
                .map(|c| {
                    let parent = s.by_weight.iter().find(|x| x.class == c.class);
                    json!({
                        "class": c.class,
                        "mixture_rate": c.retrieval_rate,
                        "parent_rate": parent.map(|x| x.retrieval_rate),
                        "mixture_patterns_held": c.patterns_held,
                        "parent_patterns_held": parent.map(|x| x.patterns_held),
                        "patterns": c.patterns,
                    })
                })
                .collect::<Vec<_>>()
        );
    }
    v
}

pub async fn run(ctx: JobContext) -> Result<(), JobFailure> {
    let p: EvaluationParams = serde_json::from_str(&ctx.params)
        .map_err(|e| JobFailure::Failed(format!("the stored parameters are unreadable: {e}")))?;
    let reporter = ctx.reporter.clone();
    let progress: ProgressFn = Arc::new(move |k, total| {
        use crate::engine::Observer;
        reporter.progress(&crate::engine::Progress {
            stage: "evaluation",
            iteration: k as u64,
            total: Some(total as u64),
            ..Default::default()
        });
    });
    let report = evaluate(
        &ctx.db,
        &ctx.compute,
        &p,
        false,
        ctx.interrupt.clone(),
        progress,
    )
    .await?;
    let mut tx = ctx.db.begin_write().await?;
    ctx.succeed(&mut tx, &report, Some(p.model_id)).await?;
    tx.commit().await?;
    Ok(())
}
