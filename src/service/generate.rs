//! Generation: draw patterns from a stored model (Gibbs, Metropolis, parallel tempering or
//! annealing; from random states, inside one minimum, or from a given pattern; with clamps),
//! quench every sample to name the minimum it belongs to, summarise, store.

use super::experts::Mixture;
use crate::engine::quench::quench;
use crate::engine::sampler::{
    self, Chains, Kernel, Plan, Rule, Schedule, SiteOrder, default_betas,
};
use crate::engine::{EngineError, Interrupt, Pattern};
use crate::jobs::{Compute, JobContext, JobFailure};
use crate::store::{self, Db, library::MinimumRow, samples::NewSample};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;

/// How chains move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SampleMethod {
    Gibbs,
    Metropolis,
    ParallelTempering,
    Annealing,
}

/// Where chains start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    Random,
    /// Inside one bound state: every chain starts at this minimum's pattern.
    Minimum {
        id: i64,
        pattern: String,
    },
    Pattern(String),
}

/// A sampling request with every default resolved (stored on the set and the job).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleParams {
    pub model_id: i64,
    pub count: usize,
    pub temperature: f64,
    pub sweeps: usize,
    pub burn_in: usize,
    pub thin: usize,
    pub seed: u64,
    pub method: SampleMethod,
    pub init: Start,
    /// Clamped bits as a string over '0', '1', '?' ('?' = free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamp: Option<String>,
    /// For a mixture: the expert to sample (default: drawn with probability π_m per sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert: Option<usize>,
}

impl SampleParams {
    /// Samples per chain and number of chains.
    pub fn layout(&self) -> (usize, usize) {
        let per_chain = (self.sweeps / self.thin).max(1);
        (per_chain, self.count.div_ceil(per_chain))
    }

    /// Spin-update attempts this request costs (the budget that decides sync or job).
    pub fn work(&self, n: usize) -> u128 {
        let (_, chains) = self.layout();
        let replicas = if self.method == SampleMethod::ParallelTempering {
            REPLICAS as u128
        } else {
            1
        };
        chains as u128 * (self.burn_in + self.sweeps) as u128 * n as u128 * replicas
    }
}

/// Temperatures in a parallel-tempering ladder.
pub const REPLICAS: usize = 8;

/// The minima of a census, by pattern.
#[derive(Default)]
pub struct Library {
    pub census_id: Option<i64>,
    by_pattern: HashMap<Pattern, (i64, String)>,
}

impl Library {
    pub async fn load(db: &Db, model_id: i64, n: usize) -> Result<Self, store::StoreError> {
        let Some(c) = store::library::latest_census(db, model_id, None).await? else {
            return Ok(Self::default());
        };
        let rows = store::library::all_minima(db, c.id).await?;
        Ok(Self::from_rows(Some(c.id), &rows, n))
    }

    pub fn from_rows(census_id: Option<i64>, rows: &[MinimumRow], n: usize) -> Self {
        let by_pattern = rows
            .iter()
            .filter_map(|r| Some((Pattern::from_bytes(&r.pattern, n)?, (r.id, r.kind.clone()))))
            .collect();
        Self {
            census_id,
            by_pattern,
        }
    }

    pub fn has_census(&self) -> bool {
        self.census_id.is_some()
    }

    /// The minimum id and kind of a quench end state, if the census lists it.
    pub fn find(&self, p: &Pattern) -> Option<(i64, &str)> {
        self.by_pattern.get(p).map(|(id, k)| (*id, k.as_str()))
    }
}

/// One generated pattern.
pub struct Drawn {
    pub pattern: Pattern,
    pub energy: f64,
    pub minimum_id: Option<i64>,
    /// For a mixture: the index of the expert that drew it.
    pub expert: Option<usize>,
}

pub struct Generated {
    pub samples: Vec<Drawn>,
    pub summary: Value,
}

fn parse_mask(s: &str) -> Vec<Option<bool>> {
    s.chars()
        .map(|c| match c {
            '1' => Some(true),
            '0' => Some(false),
            _ => None,
        })
        .collect()
}

/// Draw samples (pure; runs on a compute pool).
pub fn generate(
    kernel: &Kernel,
    p: &SampleParams,
    library: &Library,
    interrupt: &Interrupt,
) -> Result<Generated, EngineError> {
    let n = kernel.n();
    let (per_chain, chains_n) = p.layout();
    let mut chains = match &p.init {
        Start::Random => Chains::random(n, chains_n, p.seed),
        Start::Minimum { pattern, .. } | Start::Pattern(pattern) => {
            let start = Pattern::parse_bits(pattern)
                .map_err(|(i, _)| EngineError::invalid("init", format!("bad bit at {i}")))?;
            Chains::from_patterns(&vec![start; chains_n])
        }
    };
    let clamp = p.clamp.as_deref().map(parse_mask);
    if let Some(mask) = &clamp {
        for (a, v) in mask.iter().enumerate() {
            if let Some(up) = v {
                chains.clamp(a, if *up { 1 } else { -1 });
            }
        }
    }
    let beta = 1.0 / p.temperature;
    let rule = if p.method == SampleMethod::Metropolis {
        Rule::Metropolis
    } else {
        Rule::HeatBath
    };
    let schedule = if p.method == SampleMethod::Annealing {
        Schedule::Geometric {
            beta_start: beta / 20.0,
            beta_end: beta,
        }
    } else {
        Schedule::Fixed { beta }
    };
    let plan = Plan {
        rule,
        order: SiteOrder::Sequential,
        schedule,
        burn_in: if p.method == SampleMethod::Annealing {
            0
        } else {
            p.burn_in
        },
        sweeps: if p.method == SampleMethod::Annealing {
            p.burn_in + p.sweeps
        } else {
            p.sweeps
        },
        thin: if p.method == SampleMethod::Annealing {
            p.burn_in + p.sweeps
        } else {
            p.thin
        },
        record: true,
    };
    let mut swap_acceptance = None;
    let run = if p.method == SampleMethod::ParallelTempering {
        let betas = default_betas(kernel, beta, REPLICAS);
        let mut ladder: Vec<Chains> = (0..betas.len())
            .map(|r| {
                let mut c = if r == 0 {
                    chains.clone()
                } else {
                    Chains::random(n, chains_n, p.seed ^ (r as u64).wrapping_mul(0x9E37_79B9))
                };
                if let Some(mask) = &clamp {
                    for (a, v) in mask.iter().enumerate() {
                        if let Some(up) = v {
                            c.clamp(a, if *up { 1 } else { -1 });
                        }
                    }
                }
                c
            })
            .collect();
        let t = sampler::temper(kernel, &betas, &mut ladder, &plan, 1, p.seed, interrupt)?;
        swap_acceptance = Some(json!({ "betas": betas, "swap_acceptance": t.swap_acceptance }));
        t.run
    } else {
        sampler::sample(kernel, &mut chains, &plan, p.seed, interrupt)?
    };
    interrupt.check()?;
    let mut samples = Vec::with_capacity(p.count);
    let mut energies_by_chain: Vec<Vec<f64>> = vec![Vec::new(); chains_n];
    let mut spins = vec![0i8; n];
    let held: Option<Vec<bool>> = clamp
        .as_ref()
        .map(|m| m.iter().map(|v| v.is_some()).collect());
    for s in run.samples.into_iter() {
        if samples.len() == p.count {
            break;
        }
        s.pattern.write_spins(&mut spins);
        let end = quench(kernel, &mut spins, held.as_deref());
        let minimum_id = library.find(&end.pattern).map(|(id, _)| id);
        if s.chain < chains_n {
            energies_by_chain[s.chain].push(s.energy);
        }
        samples.push(Drawn {
            pattern: s.pattern,
            energy: s.energy,
            minimum_id,
            expert: None,
        });
    }
    let summary = summarise(
        &samples,
        &energies_by_chain,
        per_chain,
        run.attempts,
        run.accepted,
        swap_acceptance,
        library,
    );
    Ok(Generated { samples, summary })
}

/// Occupancy per minimum, energy statistics, acceptance and the effective sample size.
fn summarise(
    samples: &[Drawn],
    by_chain: &[Vec<f64>],
    per_chain: usize,
    attempts: u64,
    accepted: u64,
    tempering: Option<Value>,
    library: &Library,
) -> Value {
    let count = samples.len().max(1) as f64;
    let mut occupancy: HashMap<Option<i64>, usize> = HashMap::new();
    for s in samples {
        *occupancy.entry(s.minimum_id).or_default() += 1;
    }
    let mut occ: Vec<Value> = occupancy
        .iter()
        .map(|(k, v)| {
            json!({
                "minimum_id": k,
                "kind": k.map_or("continuum", |_| "minimum"),
                "count": v,
                "fraction": *v as f64 / count,
            })
        })
        .collect();
    occ.sort_by(|a, b| b["count"].as_u64().cmp(&a["count"].as_u64()));
    let e: Vec<f64> = samples.iter().map(|s| s.energy).collect();
    let mean = e.iter().sum::<f64>() / count;
    let var = e.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
    let min = e.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tau = if per_chain > 1 {
        integrated_autocorrelation(by_chain)
    } else {
        1.0
    };
    json!({
        "n_samples": samples.len(),
        "census_id": library.census_id,
        "occupancy": occ,
        "energy": { "mean": mean, "std": var.sqrt(), "min": min, "max": max },
        "acceptance_rate": if attempts > 0 { accepted as f64 / attempts as f64 } else { 0.0 },
        "attempts": attempts,
        "autocorrelation_time": tau,
        "effective_sample_size": samples.len() as f64 / tau,
        "tempering": tempering,
        "note": if library.has_census() { Value::Null } else {
            json!("the model has no census yet: every sample is listed without a minimum (POST /v1/models/{id}/census)")
        },
    })
}

/// τ_int of the energy series, pooled over chains (Geyer's initial positive sequence, in units
/// of recorded samples); 1 for independent samples.
pub fn integrated_autocorrelation(series: &[Vec<f64>]) -> f64 {
    let len = series.iter().map(Vec::len).min().unwrap_or(0);
    if len < 4 {
        return 1.0;
    }
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s[..len].iter().cloned())
        .collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / all.len() as f64;
    if var <= 0.0 {
        return 1.0;
    }
    let rho = |lag: usize| -> f64 {
        let mut acc = 0.0;
        let mut k = 0usize;
        for s in series {
            for t in 0..len - lag {
                acc += (s[t] - mean) * (s[t + lag] - mean);
                k += 1;
            }
        }
        acc / k as f64 / var
    };
    let mut tau = 1.0;
    let mut lag = 1;
    while lag + 1 < len {
        let pair = rho(lag) + rho(lag + 1);
        if pair <= 0.0 {
            break;
        }
        tau += 2.0 * pair;
        lag += 2;
    }
    tau.max(1.0)
}

/// Store a generated set; the caller finishes its transaction.
pub async fn store_set(
    conn: &mut sqlx::SqliteConnection,
    p: &SampleParams,
    job_id: Option<i64>,
    census_id: Option<i64>,
    g: &Generated,
) -> Result<store::samples::SampleSetRow, store::StoreError> {
    let params = serde_json::to_string(p).expect("params serialise");
    let rows: Vec<NewSample> = g
        .samples
        .iter()
        .map(|s| NewSample {
            pattern: &s.pattern,
            energy: s.energy,
            minimum_id: s.minimum_id,
            expert: s.expert.map(|e| e as i64),
        })
        .collect();
    store::samples::insert(
        conn,
        &store::samples::NewSampleSet {
            model_id: p.model_id,
            job_id,
            census_id,
            params: &params,
            summary: &g.summary.to_string(),
        },
        &rows,
    )
    .await
}

/// Generate for a single model or a mixture (experts drawn with probability π_m, or the chosen
/// one), on the interactive pool or the jobs pool.
pub async fn produce(
    db: &Db,
    compute: &Compute,
    p: &SampleParams,
    interactive: bool,
    interrupt: Interrupt,
) -> Result<(Generated, Option<i64>), JobFailure> {
    let row = store::models::get(db, p.model_id)
        .await?
        .ok_or_else(|| JobFailure::Failed(format!("model {} was deleted", p.model_id)))?;
    let params = p.clone();
    if row.kind == "mixture" {
        let mixture = Mixture::load(db, compute, &row).await?;
        let task = move || generate_mixture(&mixture, &params, &interrupt).map(|g| (g, None));
        let out = if interactive {
            compute.run_interactive(task).await
        } else {
            compute.run(task).await
        };
        return Ok(out??);
    }
    let model = store::models::load(db, p.model_id)
        .await?
        .ok_or_else(|| JobFailure::Failed(format!("model {} was deleted", p.model_id)))?;
    let library = Library::load(db, p.model_id, model.n()).await?;
    let task = move || {
        generate(&Kernel::new(&model), &params, &library, &interrupt)
            .map(|g| (g, library.census_id))
    };
    let out = if interactive {
        compute.run_interactive(task).await
    } else {
        compute.run(task).await
    };
    Ok(out??)
}

/// Draw from a mixture: each sample's expert is drawn with probability π_m (or fixed).
pub fn generate_mixture(
    mixture: &Mixture,
    p: &SampleParams,
    interrupt: &Interrupt,
) -> Result<Generated, EngineError> {
    let k = mixture.experts.len();
    let mut counts = vec![0usize; k];
    match p.expert {
        Some(e) if e < k => counts[e] = p.count,
        Some(e) => {
            return Err(EngineError::invalid(
                "expert",
                format!("the mixture has {k} experts (0..{k}), got {e}"),
            ));
        }
        None => {
            let total: f64 = mixture.experts.iter().map(|e| e.share).sum();
            let mut rng = crate::engine::ChainRng::new(p.seed, u64::MAX - 1);
            for _ in 0..p.count {
                let mut u = rng.next_f64() * total;
                let mut m = k - 1;
                for (i, e) in mixture.experts.iter().enumerate() {
                    if u < e.share {
                        m = i;
                        break;
                    }
                    u -= e.share;
                }
                counts[m] += 1;
            }
        }
    }
    let mut samples = Vec::with_capacity(p.count);
    let mut parts = Vec::new();
    for (m, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let pm = SampleParams {
            count: c,
            seed: p.seed ^ (m as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            expert: None,
            ..p.clone()
        };
        let g = generate(
            &mixture.experts[m].kernel,
            &pm,
            &Library::default(),
            interrupt,
        )?;
        parts.push(json!({
            "expert": m,
            "model_id": mixture.experts[m].id,
            "share": mixture.experts[m].share,
            "count": c,
            "summary": g.summary,
        }));
        samples.extend(g.samples.into_iter().map(|mut d| {
            d.expert = Some(m);
            d
        }));
    }
    let e: Vec<f64> = samples.iter().map(|s| s.energy).collect();
    let mean = e.iter().sum::<f64>() / e.len().max(1) as f64;
    let summary = json!({
        "n_samples": samples.len(),
        "experts": parts,
        "energy": { "mean": mean },
        "note": "energies are each expert's own; minima are per expert (see each expert's census)",
    });
    Ok(Generated { samples, summary })
}

/// A sampling job (requests above the synchronous budget).
pub async fn run(ctx: JobContext) -> Result<(), JobFailure> {
    let p: SampleParams = serde_json::from_str(&ctx.params)
        .map_err(|e| JobFailure::Failed(format!("the stored parameters are unreadable: {e}")))?;
    let (g, census_id) = produce(&ctx.db, &ctx.compute, &p, false, ctx.interrupt.clone()).await?;
    let mut tx = ctx.db.begin_write().await?;
    let set = store_set(&mut tx, &p, Some(ctx.id), census_id, &g).await?;
    ctx.succeed(
        &mut tx,
        &json!({ "sample_set_id": set.id, "n_samples": set.n_samples }),
        Some(p.model_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
