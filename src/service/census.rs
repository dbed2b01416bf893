//! Census and landscape jobs: find the library of minima of a stored model at a temperature (or
//! scan temperatures), store it, finish the job in the same transaction.

use crate::engine::census::{self, Census, CensusMethod, CensusOptions};
use crate::engine::{Dataset, Model, Pattern, plot};
use crate::jobs::{JobContext, JobFailure};
use crate::store::{self, Db, models::ModelRow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A census job's parameters, every default resolved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CensusParams {
    pub model_id: i64,
    pub temperature: f64,
    pub method: CensusMethod,
    pub random_starts: usize,
    pub seed: u64,
    /// Mean field above the exact cap is checked by a sampling census; the agreement is stored.
    pub check_by_sampling: bool,
    pub sampling_chains: usize,
    pub sampling_sweeps: usize,
}

impl CensusParams {
    /// The default census: exact where N allows, else mean field checked by sampling.
    pub fn default_for(
        model_id: i64,
        temperature: f64,
        n: usize,
        exact_max: usize,
        seed: u64,
    ) -> Self {
        let method = if n <= exact_max {
            CensusMethod::Exact
        } else {
            CensusMethod::MeanField
        };
        let d = CensusOptions::new(method, temperature);
        Self {
            model_id,
            temperature,
            method,
            random_starts: d.random_starts,
            seed,
            check_by_sampling: method == CensusMethod::MeanField,
            sampling_chains: d.sampling_chains,
            sampling_sweeps: d.sampling_sweeps,
        }
    }

    fn options(&self, method: CensusMethod, exact_max: usize) -> CensusOptions {
        let mut o = CensusOptions::new(method, self.temperature);
        o.random_starts = self.random_starts;
        o.seed = self.seed;
        o.sampling_chains = self.sampling_chains;
        o.sampling_sweeps = self.sampling_sweeps;
        o.exact_max_spins = exact_max;
        o
    }
}

/// The model row, its couplings and its training patterns with weights (none for an imported
/// model: every minimum is then a false state by definition).
pub async fn load_inputs(
    db: &Db,
    model_id: i64,
) -> Result<(ModelRow, Model, Vec<Pattern>, Vec<f64>), JobFailure> {
    let gone = || JobFailure::Failed(format!("model {model_id} was deleted before the job ran"));
    let row = store::models::get(db, model_id).await?.ok_or_else(gone)?;
    let model = store::models::load(db, model_id).await?.ok_or_else(gone)?;
    let (patterns, weights) = match row.dataset_id {
        Some(ds) => match store::datasets::get(db, ds).await? {
            Some(d) => {
                let data: Dataset = store::datasets::load(db, &d).await?;
                (data.patterns().to_vec(), data.weights())
            }
            None => (Vec::new(), Vec::new()),
        },
        None => (Vec::new(), Vec::new()),
    };
    Ok((row, model, patterns, weights))
}

/// Which minima holding more than 1 % of the weight in `reference` the `check` census also found.
fn agreement(reference: &Census, check: &Census) -> Value {
    let found: std::collections::HashSet<&str> =
        check.minima.iter().map(|m| m.pattern.as_str()).collect();
    let heavy: Vec<&census::Minimum> = reference
        .minima
        .iter()
        .filter(|m| m.weight > 0.01)
        .collect();
    let missing: Vec<&str> = heavy
        .iter()
        .filter(|m| !found.contains(m.pattern.as_str()))
        .map(|m| m.pattern.as_str())
        .collect();
    json!({
        "method": check.method,
        "minima_found": check.minima.len(),
        "heavy_minima": heavy.len(),
        "heavy_minima_confirmed": heavy.len() - missing.len(),
        "unconfirmed_patterns": missing,
        "ergodicity": check.ergodicity,
    })
}

pub async fn run(ctx: JobContext) -> Result<(), JobFailure> {
    let p: CensusParams = serde_json::from_str(&ctx.params)
        .map_err(|e| JobFailure::Failed(format!("the stored parameters are unreadable: {e}")))?;
    let (_, model, patterns, weights) = load_inputs(&ctx.db, p.model_id).await?;
    let exact_max = ctx.config.exact_max_spins;
    let (interrupt, reporter) = (ctx.interrupt.clone(), ctx.reporter.clone());
    let params = p.clone();
    let (main, check) = ctx
        .compute
        .run(move || {
            let main = census::census(
                &model,
                &patterns,
                &weights,
                &params.options(params.method, exact_max),
                &interrupt,
                &*reporter,
            )?;
            let check = if params.check_by_sampling && params.method != CensusMethod::Sampling {
                Some(census::census(
                    &model,
                    &patterns,
                    &weights,
                    &params.options(CensusMethod::Sampling, exact_max),
                    &interrupt,
                    &*reporter,
                )?)
            } else {
                None
            };
            Ok::<_, crate::engine::EngineError>((main, check))
        })
        .await??;
    let mut summary = serde_json::to_value(&main)
        .map_err(|e| JobFailure::Failed(format!("the census does not serialise: {e}")))?;
    if let Some(o) = summary.as_object_mut() {
        o.remove("minima");
        if let Some(c) = &check {
            o.insert("check".into(), agreement(&main, c));
        }
    }
    let mut tx = ctx.db.begin_write().await?;
    let census_id = store::library::insert_census(
        &mut tx,
        p.model_id,
        Some(ctx.id),
        &main,
        &summary.to_string(),
    )
    .await?;
    let memories = main
        .minima
        .iter()
        .filter(|m| m.kind == census::MinimumKind::Memory)
        .count();
    let result = json!({
        "census_id": census_id,
        "method": main.method,
        "temperature": main.temperature,
        "n_minima": main.minima.len(),
        "memories": memories,
        "false_states": main.minima.len() - memories,
        "continuum_weight": main.continuum.as_ref().map(|c| c.weight),
    });
    ctx.succeed(&mut tx, &result, Some(p.model_id)).await?;
    tx.commit().await?;
    Ok(())
}

/// A landscape job's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LandscapeParams {
    pub model_id: i64,
    pub t_min: f64,
    pub t_max: f64,
    pub steps: usize,
    pub method: CensusMethod,
}

pub async fn run_landscape(ctx: JobContext) -> Result<(), JobFailure> {
    let p: LandscapeParams = serde_json::from_str(&ctx.params)
        .map_err(|e| JobFailure::Failed(format!("the stored parameters are unreadable: {e}")))?;
    let (_, model, patterns, weights) = load_inputs(&ctx.db, p.model_id).await?;
    let (interrupt, reporter) = (ctx.interrupt.clone(), ctx.reporter.clone());
    let params = p.clone();
    let scan = ctx
        .compute
        .run(move || {
            census::landscape(
                &model,
                &patterns,
                &weights,
                params.t_min,
                params.t_max,
                params.steps,
                params.method,
                &interrupt,
                &*reporter,
            )
        })
        .await??;
    let value = serde_json::to_value(&scan)
        .map_err(|e| JobFailure::Failed(format!("the landscape does not serialise: {e}")))?;
    let mut tx = ctx.db.begin_write().await?;
    let id =
        store::library::insert_landscape(&mut tx, p.model_id, Some(ctx.id), &value.to_string())
            .await?;
    let result = json!({
        "landscape_id": id,
        "melting_temperature": scan.melting_temperature,
        "points": scan.points.len(),
    });
    ctx.succeed(&mut tx, &result, Some(p.model_id)).await?;
    tx.commit().await?;
    Ok(())
}

/// The SVG of a stored landscape.
pub fn landscape_svg(result: &str, model: &ModelRow) -> Result<String, serde_json::Error> {
    let l: census::Landscape = serde_json::from_str(result)?;
    let description = match model.model_order {
        Some(k) if model.description == "order" => format!("order {k}"),
        _ => model.description.clone(),
    };
    let how = if description == model.method {
        description
    } else {
        format!("{}, {description}", model.method)
    };
    let title = format!(
        "model {}{} — {how}, N = {}",
        model.id,
        model
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        model.n_spins
    );
    Ok(plot::landscape_svg(&l, &title))
}
