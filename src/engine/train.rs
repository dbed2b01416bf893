//! Training (model.md §3–§4): couplings J_S that minimise the thermodynamic potential
//! Φ(J) = Σ_μ w_μ E(ξ^μ) + T ln Z (plus the penalty (λ/2) Σ_S J_S²), or closed forms.
//!
//! Methods:
//! - `full`: the full description of §3 (closed form, N ≤ 24).
//! - `projection`: `full`, then re-expressed on the requested set (truncation to order k).
//! - `exact`: moment matching with exact model averages from enumeration, by damped Newton
//!   (Hessian = connected covariance of the χ_S over T, plus λ) or L-BFGS (or Adam / plain
//!   gradient descent when asked). The gradient is ∂Φ/∂J_S = ⟨χ_S⟩_model − ⟨χ_S⟩_data + λ J_S.
//! - `pseudolikelihood`: N regularised logistic regressions of σ_a on the rest (any order),
//!   one per site in parallel, each by Newton (or L-BFGS when a site has many couplings); a
//!   coupling shared by several sites is the mean of their estimates.
//! - `sampled`: persistent Gibbs chains for the model averages, Adam (or gradient) steps,
//!   optionally parallel tempering and a pseudo-likelihood start; chain groups started from
//!   different training patterns are compared to detect broken ergodicity.
//!
//! Every loop checks the interrupt, reports progress each iteration and saves a checkpoint when
//! asked; a run resumed from a checkpoint continues from the saved couplings and optimiser state
//! (bit-for-bit the same path for the deterministic methods).

use super::EngineError;
use super::codec;
use super::control::{Interrupt, Observer, Progress};
use super::dataset::Dataset;
use super::exact::{
    EXACT_HARD_MAX_SPINS, EXACT_MAX_SPINS, Enumeration, ExactOptions, data_moments,
};
use super::full::{self, Ceiling};
use super::interactions::{FULL_MAX_SPINS, InteractionSet};
use super::model::Model;
use super::rng::ChainRng;
use super::sampler::{Chains, Kernel, Plan, default_betas, sample, temper};
use super::simd::simd_dispatch;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How the couplings are obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Full,
    Projection,
    Exact,
    Pseudolikelihood,
    Sampled,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Full => "full",
            Method::Projection => "projection",
            Method::Exact => "exact",
            Method::Pseudolikelihood => "pseudolikelihood",
            Method::Sampled => "sampled",
        }
    }

    fn code(self) -> u8 {
        self as u8
    }
}

/// The optimiser of an iterative method. `Auto` picks per method: Newton for `exact` with at
/// most [`NEWTON_MAX_PARAMETERS`] couplings (L-BFGS above), Newton per site for
/// `pseudolikelihood` (L-BFGS for sites with more than [`PL_NEWTON_MAX_FEATURES`] couplings),
/// Adam for `sampled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    Auto,
    Newton,
    Lbfgs,
    Adam,
    GradientDescent,
}

impl Optimizer {
    pub fn as_str(self) -> &'static str {
        match self {
            Optimizer::Auto => "auto",
            Optimizer::Newton => "newton",
            Optimizer::Lbfgs => "lbfgs",
            Optimizer::Adam => "adam",
            Optimizer::GradientDescent => "gradient_descent",
        }
    }

    fn code(self) -> u8 {
        self as u8
    }
}

/// `Auto` uses Newton for `exact` up to this many couplings (a dense P × P Cholesky per step).
pub const NEWTON_MAX_PARAMETERS: usize = 1500;

/// `Auto` uses Newton for a pseudo-likelihood site with up to this many couplings.
pub const PL_NEWTON_MAX_FEATURES: usize = 300;

/// Everything that controls a training run. [`TrainingConfig::new`] gives defaults that work
/// without tuning.
#[derive(Clone, Debug)]
pub struct TrainingConfig {
    pub method: Method,
    /// T > 0.
    pub temperature: f64,
    /// λ of the penalty (λ/2) Σ_S J_S² (≥ 0). It keeps the couplings of constant spins finite.
    pub l2: f64,
    /// Iterations of the optimiser (`pseudolikelihood`: Newton/L-BFGS steps per site).
    pub max_iterations: usize,
    /// Converged when the largest component of the penalised gradient
    /// ⟨χ_S⟩_model − ⟨χ_S⟩_data + λ J_S is at most this (`pseudolikelihood`: the same for each
    /// site's conditional likelihood; `sampled`: for chain averages smoothed over steps).
    pub tolerance: f64,
    pub optimizer: Optimizer,
    /// Learning rate for Adam / gradient descent (`None`: default — exact: Adam 0.05, gradient
    /// descent T; sampled: Adam min(0.01, 0.05/√P), gradient descent 0.05 T; both decay as
    /// 1/√(1 + t/500) in sampled).
    pub step_size: Option<f64>,
    pub seed: u64,
    /// Persistent chains (`sampled`).
    pub chains: usize,
    /// Sweeps of every chain per gradient step (`sampled`).
    pub sweeps_per_step: usize,
    /// Parallel tempering for the persistent chains (`sampled`).
    pub parallel_tempering: bool,
    /// Start `sampled` from the pseudo-likelihood fit.
    pub init_from_pseudolikelihood: bool,
    /// Stop (with the current model, not an error) after this long.
    pub wall_clock_limit: Option<Duration>,
    /// Gap of the full description (`full`, `projection`).
    pub ceiling: Ceiling,
    /// Largest N for exact enumeration (`exact`; also used to report exact Φ/KL for any method).
    pub exact_max_spins: usize,
}

/// Default λ: small enough not to bias the fit visibly (the moment shift is λ J_S), large enough
/// that a constant spin's field stays finite (|J| ≈ 3–4).
pub const DEFAULT_L2: f64 = 1e-3;

impl TrainingConfig {
    pub fn new(method: Method) -> Self {
        let (max_iterations, tolerance) = match method {
            Method::Full | Method::Projection => (0, 1e-6),
            Method::Exact => (1000, 1e-6),
            Method::Pseudolikelihood => (100, 1e-8),
            Method::Sampled => (2000, 0.01),
        };
        Self {
            method,
            temperature: 1.0,
            l2: DEFAULT_L2,
            max_iterations,
            tolerance,
            optimizer: Optimizer::Auto,
            step_size: None,
            seed: 0,
            chains: 1024,
            sweeps_per_step: 2,
            // On by default: on digits8x8 (order 2, T = 1) plain persistent chains stall at a
            // largest moment error of 0.034 after 6,000 steps; with replica exchange the fit
            // converges (0.012) in the same time.
            parallel_tempering: true,
            init_from_pseudolikelihood: true,
            wall_clock_limit: None,
            ceiling: Ceiling::LibraryProbability(0.99),
            exact_max_spins: EXACT_MAX_SPINS,
        }
    }
}

/// Where a run's checkpoints go. `due` is asked once per iteration; when it says yes the engine
/// encodes its state and calls `save`. On an interrupt a last checkpoint is saved regardless.
pub trait Checkpoints: Sync {
    fn due(&self) -> bool;
    fn save(&self, bytes: Vec<u8>);
}

/// Never checkpoint.
pub struct NoCheckpoints;

impl Checkpoints for NoCheckpoints {
    fn due(&self) -> bool {
        false
    }
    fn save(&self, _: Vec<u8>) {}
}

/// One point of the (thinned) convergence history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub iteration: usize,
    pub max_moment_error: f64,
    pub gradient_norm: f64,
    pub potential: Option<f64>,
    /// The minimised objective Φ + (λ/2) Σ J² (where Φ is known): non-increasing for the
    /// line-search optimisers.
    pub objective: Option<f64>,
}

/// What happened in a training run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainingReport {
    pub method: Method,
    /// The optimiser actually used (`Auto` resolved); `None` for the closed forms.
    pub optimizer: Option<Optimizer>,
    pub iterations: usize,
    /// Why training stopped, in words: "converged", "max_iterations", "wall_clock_limit",
    /// "closed_form", "line_search_stalled" (then `message` says more).
    pub stop_reason: String,
    pub converged: bool,
    /// Φ = Σ w E + T ln Z at T (exact, when N ≤ exact_max_spins), or an estimate.
    pub potential: Option<f64>,
    /// KL(w ‖ p) (exact only).
    pub kl_divergence: Option<f64>,
    /// S_w (nats).
    pub data_entropy: f64,
    /// max_S |⟨χ_S⟩_model − ⟨χ_S⟩_data| (chain averages for `sampled`; for `pseudolikelihood`
    /// above the exact cap, the conditional mismatch max_S |⟨tanh(h_a/T) χ_{S∖a}⟩_data − ⟨χ_S⟩_data|).
    pub max_moment_error: f64,
    /// ‖∇(Φ + λ/2 Σ J²)‖₂.
    pub gradient_norm: f64,
    /// max_S |∇_S (Φ + λ/2 Σ J²)|: the convergence criterion.
    pub max_gradient: f64,
    /// Pearson r of model vs data connected correlations ⟨σ_a σ_b⟩ − ⟨σ_a⟩⟨σ_b⟩ over the pairs in
    /// the set (`None` without pairs or model averages).
    pub correlation_r: Option<f64>,
    /// Wall-clock seconds, including the time before a resume.
    pub seconds: f64,
    pub resumed_from_iteration: Option<usize>,
    /// P_lib = Σ_μ p(ξ^μ) (exact only).
    pub library_probability: Option<f64>,
    /// E_u of the full description (`full`, `projection`).
    pub ceiling_energy: Option<f64>,
    /// Set when chains started from different training patterns disagree about the averages.
    pub ergodicity_broken: bool,
    /// The evidence, in words.
    pub ergodicity_warning: Option<String>,
    /// Acceptance of replica swaps per adjacent pair (`sampled` with parallel tempering).
    pub swap_acceptance: Option<Vec<f64>>,
    /// Total pseudo-likelihood objective Σ_a [T ⟨−ln p(σ_a | rest)⟩_data + λ/2 Σ_{S∋a} θ_S²] at the
    /// per-site optima (`pseudolikelihood`).
    pub pseudolikelihood: Option<f64>,
    pub temperature: f64,
    pub l2: f64,
    pub seed: u64,
    /// Number of couplings J_S.
    pub parameters: usize,
    /// Spins with one value in every sample (their couplings are held finite by λ only).
    pub constant_spins: Vec<usize>,
    pub warnings: Vec<String>,
    /// More detail on the stop reason, if any.
    pub message: Option<String>,
    /// (iteration, largest moment error, gradient norm, Φ, Φ + λ/2 ΣJ²), thinned to at most
    /// [`HISTORY_POINTS`] points (first and last kept).
    pub history: Vec<HistoryPoint>,
}

/// Most points kept in [`TrainingReport::history`].
pub const HISTORY_POINTS: usize = 200;

/// A trained model and its report.
pub struct Trained {
    pub model: Model,
    pub report: TrainingReport,
}

// ---------------------------------------------------------------------------------------------
// Entry point and validation
// ---------------------------------------------------------------------------------------------

/// Train a model of `data` over the interaction set `set` (see the module docs).
///
/// Errors: `Invalid` naming the API field (`temperature`, `description`, `method`, `l2`,
/// `max_iterations`, `tolerance`, `optimizer`, `step_size`, `chains`, `sweeps_per_step`,
/// `library_probability`, `ceiling_energy`, `exact_max_spins`, `resume`), `Interrupted`, or
/// `Numerical` when the couplings blow up.
pub fn train(
    data: &Dataset,
    set: Arc<InteractionSet>,
    cfg: &TrainingConfig,
    resume: Option<&[u8]>,
    interrupt: &Interrupt,
    observer: &dyn Observer,
    checkpoints: &dyn Checkpoints,
) -> Result<Trained, EngineError> {
    validate(data, &set, cfg)?;
    let resume = match resume {
        Some(bytes) => Some(Checkpoint::decode(bytes)?),
        None => None,
    };
    if let Some(c) = &resume {
        c.check_matches(cfg, data, &set)?;
    }
    let ctx = Context::new(
        data,
        set,
        cfg,
        interrupt,
        observer,
        checkpoints,
        resume.as_ref(),
    )?;
    let mut trained = match cfg.method {
        Method::Full | Method::Projection => closed_form(&ctx)?,
        Method::Exact => exact_training(&ctx, resume)?,
        Method::Pseudolikelihood => pseudolikelihood_training(&ctx)?,
        Method::Sampled => sampled_training(&ctx, resume)?,
    };
    trained.report.seconds = ctx.seconds();
    Ok(trained)
}

fn validate(data: &Dataset, set: &InteractionSet, cfg: &TrainingConfig) -> Result<(), EngineError> {
    let t = cfg.temperature;
    if !(t.is_finite() && t > 0.0) {
        return Err(EngineError::invalid(
            "temperature",
            format!("temperature must be a finite number > 0, got {t}"),
        ));
    }
    let n = data.n();
    if set.n() != n {
        return Err(EngineError::invalid(
            "description",
            format!(
                "the interaction set is over {} spins, the dataset has {n}",
                set.n()
            ),
        ));
    }
    if set.is_empty() {
        return Err(EngineError::invalid(
            "description",
            "the interaction set has no members: nothing to train",
        ));
    }
    if !(cfg.l2.is_finite() && cfg.l2 >= 0.0) {
        return Err(EngineError::invalid(
            "l2",
            format!("l2 must be a finite number ≥ 0, got {}", cfg.l2),
        ));
    }
    if !(cfg.tolerance.is_finite() && cfg.tolerance > 0.0) {
        return Err(EngineError::invalid(
            "tolerance",
            format!(
                "tolerance must be a finite number > 0, got {}",
                cfg.tolerance
            ),
        ));
    }
    if let Some(s) = cfg.step_size
        && !(s.is_finite() && s > 0.0)
    {
        return Err(EngineError::invalid(
            "step_size",
            format!("step_size must be a finite number > 0, got {s}"),
        ));
    }
    if cfg.exact_max_spins > EXACT_HARD_MAX_SPINS {
        return Err(EngineError::invalid(
            "exact_max_spins",
            format!(
                "exact enumeration is capped at N ≤ {EXACT_HARD_MAX_SPINS}, got {}",
                cfg.exact_max_spins
            ),
        ));
    }
    let iterative = matches!(
        cfg.method,
        Method::Exact | Method::Pseudolikelihood | Method::Sampled
    );
    if iterative && cfg.max_iterations == 0 {
        return Err(EngineError::invalid(
            "max_iterations",
            "max_iterations must be at least 1",
        ));
    }
    match cfg.method {
        Method::Full | Method::Projection => {
            if n > FULL_MAX_SPINS.min(24) {
                return Err(EngineError::invalid(
                    "method",
                    format!(
                        "the full description has 2^N couplings and is limited to N ≤ {}, got \
                         N = {n}; use sampled or pseudolikelihood",
                        FULL_MAX_SPINS.min(24)
                    ),
                ));
            }
            if cfg.method == Method::Full && !set.is_full() {
                return Err(EngineError::invalid(
                    "description",
                    "method full needs the full description ({\"full\": true}); use projection \
                     to reduce it to an order k or a custom set",
                ));
            }
            match cfg.ceiling {
                Ceiling::LibraryProbability(p) if !(p > 0.0 && p < 1.0) => {
                    return Err(EngineError::invalid(
                        "library_probability",
                        format!("library_probability must lie strictly between 0 and 1, got {p}"),
                    ));
                }
                Ceiling::Energy(e) if !e.is_finite() => {
                    return Err(EngineError::invalid(
                        "ceiling_energy",
                        format!("ceiling_energy must be a finite number, got {e}"),
                    ));
                }
                _ => {}
            }
        }
        Method::Exact => {
            if n > cfg.exact_max_spins {
                return Err(EngineError::invalid(
                    "method",
                    format!(
                        "exact training enumerates all 2^N states and is limited to N ≤ {}, got \
                         N = {n}; use sampled (or pseudolikelihood)",
                        cfg.exact_max_spins
                    ),
                ));
            }
        }
        Method::Pseudolikelihood => {
            if matches!(cfg.optimizer, Optimizer::Adam | Optimizer::GradientDescent) {
                return Err(EngineError::invalid(
                    "optimizer",
                    "pseudolikelihood is fitted by newton or lbfgs (or auto)",
                ));
            }
        }
        Method::Sampled => {
            if matches!(cfg.optimizer, Optimizer::Newton | Optimizer::Lbfgs) {
                return Err(EngineError::invalid(
                    "optimizer",
                    "sampled averages are noisy: use adam or gradient_descent (or auto)",
                ));
            }
            if cfg.chains < 2 {
                return Err(EngineError::invalid(
                    "chains",
                    format!(
                        "sampled training needs at least 2 chains, got {}",
                        cfg.chains
                    ),
                ));
            }
            if cfg.sweeps_per_step == 0 {
                return Err(EngineError::invalid(
                    "sweeps_per_step",
                    "sweeps_per_step must be at least 1",
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shared context: data moments, correlations, progress, history, stopping
// ---------------------------------------------------------------------------------------------

struct Context<'a> {
    data: &'a Dataset,
    weights: Vec<f64>,
    set: Arc<InteractionSet>,
    cfg: &'a TrainingConfig,
    interrupt: &'a Interrupt,
    observer: &'a dyn Observer,
    checkpoints: &'a dyn Checkpoints,
    data_moments: Vec<f64>,
    correlations: Correlations,
    start: Instant,
    prior_seconds: f64,
    resumed_from: Option<usize>,
    constant_spins: Vec<usize>,
    warnings: Vec<String>,
}

impl<'a> Context<'a> {
    fn new(
        data: &'a Dataset,
        set: Arc<InteractionSet>,
        cfg: &'a TrainingConfig,
        interrupt: &'a Interrupt,
        observer: &'a dyn Observer,
        checkpoints: &'a dyn Checkpoints,
        resume: Option<&Checkpoint>,
    ) -> Result<Self, EngineError> {
        let weights = data.weights();
        let data_moments = data_moments(&set, data.patterns(), &weights)?;
        let correlations = Correlations::new(&set, &data_moments);
        let constant: Vec<(usize, i8)> = data.constant_spins();
        let mut warnings = Vec::new();
        if !constant.is_empty()
            && matches!(
                cfg.method,
                Method::Exact | Method::Pseudolikelihood | Method::Sampled
            )
        {
            let list: Vec<String> = constant
                .iter()
                .map(|(a, s)| format!("bit {a} (always {})", if *s > 0 { 1 } else { 0 }))
                .collect();
            if cfg.l2 > 0.0 {
                warnings.push(format!(
                    "constant in the data: {}; without a penalty their fields (and couplings \
                     involving them) have no finite optimum, so they are held finite by the l2 \
                     penalty λ = {} (the fit leaves a moment error of about λ|J| on them)",
                    list.join(", "),
                    cfg.l2
                ));
            } else {
                warnings.push(format!(
                    "constant in the data: {}; with l2 = 0 their fields have no finite optimum and \
                     training cannot converge: set l2 > 0 (e.g. {DEFAULT_L2})",
                    list.join(", ")
                ));
            }
        }
        Ok(Self {
            data,
            weights,
            set,
            cfg,
            interrupt,
            observer,
            checkpoints,
            data_moments,
            correlations,
            start: Instant::now(),
            prior_seconds: resume.map_or(0.0, |c| c.seconds),
            resumed_from: resume.map(|c| c.iteration),
            constant_spins: constant.iter().map(|(a, _)| *a).collect(),
            warnings,
        })
    }

    fn seconds(&self) -> f64 {
        self.prior_seconds + self.start.elapsed().as_secs_f64()
    }

    fn out_of_time(&self) -> bool {
        self.cfg
            .wall_clock_limit
            .is_some_and(|limit| self.seconds() >= limit.as_secs_f64())
    }

    fn exact_options(&self) -> ExactOptions {
        ExactOptions {
            max_spins: self.cfg.exact_max_spins,
            ..ExactOptions::default()
        }
    }

    fn can_enumerate(&self) -> bool {
        self.data.n() <= self.cfg.exact_max_spins
    }

    fn report(&self, method: Method, optimizer: Option<Optimizer>) -> TrainingReport {
        TrainingReport {
            method,
            optimizer,
            iterations: 0,
            stop_reason: String::new(),
            converged: false,
            potential: None,
            kl_divergence: None,
            data_entropy: self.data.entropy(),
            max_moment_error: f64::NAN,
            gradient_norm: f64::NAN,
            max_gradient: f64::NAN,
            correlation_r: None,
            seconds: 0.0,
            resumed_from_iteration: self.resumed_from,
            library_probability: None,
            ceiling_energy: None,
            ergodicity_broken: false,
            ergodicity_warning: None,
            swap_acceptance: None,
            pseudolikelihood: None,
            temperature: self.cfg.temperature,
            l2: self.cfg.l2,
            seed: self.cfg.seed,
            parameters: self.set.len(),
            constant_spins: self.constant_spins.clone(),
            warnings: self.warnings.clone(),
            message: None,
            history: Vec::new(),
        }
    }

    /// Save a checkpoint when due; always on an interrupt (then return `Interrupted`).
    fn checkpoint_and_check(&self, state: impl Fn() -> Checkpoint) -> Result<(), EngineError> {
        if self.interrupt.is_raised() {
            self.checkpoints.save(state().encode());
            return Err(EngineError::Interrupted);
        }
        if self.checkpoints.due() {
            self.checkpoints.save(state().encode());
        }
        Ok(())
    }

    fn progress(&self, iteration: usize, stats: &Stats, message: Option<String>) {
        self.observer.progress(&Progress {
            stage: "training",
            iteration: iteration as u64,
            total: Some(self.cfg.max_iterations as u64),
            potential: stats.potential,
            gradient_norm: Some(stats.gradient_norm),
            max_moment_error: Some(stats.max_moment_error),
            correlation_r: stats.correlation_r,
            message,
        });
    }

    fn fingerprint(&self) -> Vec<f64> {
        vec![
            self.data.n() as f64,
            self.set.len() as f64,
            self.cfg.temperature,
            self.cfg.l2,
            self.data.total() as f64,
            self.data.len() as f64,
        ]
    }
}

/// Moment statistics at one point.
#[derive(Clone, Debug, Default)]
struct Stats {
    potential: Option<f64>,
    objective: Option<f64>,
    max_moment_error: f64,
    gradient_norm: f64,
    max_gradient: f64,
    correlation_r: Option<f64>,
}

impl Stats {
    fn from_moments(
        ctx: &Context,
        model_moments: &[f64],
        j: &[f64],
        potential: Option<f64>,
    ) -> (Self, Vec<f64>) {
        let l2 = ctx.cfg.l2;
        let mut max_err = 0.0f64;
        let grad: Vec<f64> = model_moments
            .iter()
            .zip(&ctx.data_moments)
            .zip(j)
            .map(|((m, d), j)| {
                max_err = max_err.max((m - d).abs());
                m - d + l2 * j
            })
            .collect();
        let stats = Stats {
            potential,
            objective: potential.map(|p| p + 0.5 * l2 * dot(j, j)),
            max_moment_error: max_err,
            gradient_norm: norm(&grad),
            max_gradient: max_abs(&grad),
            correlation_r: ctx.correlations.r(model_moments),
        };
        (stats, grad)
    }
}

/// Thinned history: keeps every point until full, then every other one, doubling the stride.
struct History {
    points: Vec<HistoryPoint>,
    stride: usize,
    last: Option<HistoryPoint>,
}

impl History {
    fn new() -> Self {
        Self {
            points: Vec::new(),
            stride: 1,
            last: None,
        }
    }

    fn push(&mut self, iteration: usize, s: &Stats) {
        let p = HistoryPoint {
            iteration,
            max_moment_error: s.max_moment_error,
            gradient_norm: s.gradient_norm,
            potential: s.potential,
            objective: s.objective,
        };
        if iteration.is_multiple_of(self.stride) {
            self.points.push(p.clone());
            if self.points.len() >= HISTORY_POINTS {
                self.stride *= 2;
                let stride = self.stride;
                self.points.retain(|q| q.iteration.is_multiple_of(stride));
            }
        }
        self.last = Some(p);
    }

    fn finish(mut self) -> Vec<HistoryPoint> {
        if let Some(last) = self.last
            && self.points.last().map(|p| p.iteration) != Some(last.iteration)
        {
            self.points.push(last);
        }
        self.points
    }
}

/// Pearson r of connected correlations C_ab = ⟨σ_a σ_b⟩ − ⟨σ_a⟩⟨σ_b⟩ over the pairs of the set
/// whose two fields are also members.
struct Correlations {
    /// (pair member, member of a, member of b).
    pairs: Vec<(usize, usize, usize)>,
    data: Vec<f64>,
}

impl Correlations {
    fn new(set: &InteractionSet, data_moments: &[f64]) -> Self {
        let mut pairs = Vec::new();
        if !set.is_full() && set.max_order() >= 2 {
            let lookup = set.lookup();
            for (i, s) in set.iter().enumerate() {
                if s.len() == 2 {
                    let v = s.to_vec();
                    if let (Some(&a), Some(&b)) = (lookup.get(&vec![v[0]]), lookup.get(&vec![v[1]]))
                    {
                        pairs.push((i, a, b));
                    }
                }
            }
        } else if set.is_full() && set.n() >= 2 {
            let n = set.n();
            for a in 0..n {
                for b in a + 1..n {
                    let mask = (1u64 << a) | (1u64 << b);
                    pairs.push((
                        (mask - 1) as usize,
                        (1u64 << a) as usize - 1,
                        (1u64 << b) as usize - 1,
                    ));
                }
            }
        }
        let data = pairs
            .iter()
            .map(|&(ab, a, b)| data_moments[ab] - data_moments[a] * data_moments[b])
            .collect();
        Self { pairs, data }
    }

    fn r(&self, model_moments: &[f64]) -> Option<f64> {
        if self.pairs.len() < 2 {
            return None;
        }
        let model: Vec<f64> = self
            .pairs
            .iter()
            .map(|&(ab, a, b)| model_moments[ab] - model_moments[a] * model_moments[b])
            .collect();
        pearson(&model, &self.data)
    }
}

/// Pearson correlation coefficient (`None` when either side has no variance).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    if x.len() < 2 || x.len() != y.len() {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (da, db) = (a - mx, b - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some(sxy / (sxx * syy).sqrt())
}

fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

#[inline(always)]
fn max_abs(x: &[f64]) -> f64 {
    x.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// Σ a_i b_i in eight interleaved partial sums (a fixed order, so the same answer at every
/// vector width, and one the compiler can vectorise — a single running sum it may not reorder).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f64; 8];
    let body = len - len % 8;
    for (x, y) in a[..body].chunks_exact(8).zip(b[..body].chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in a[body..].iter().zip(&b[body..]) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

// ---------------------------------------------------------------------------------------------
// Exact summary of a finished model (any method, N ≤ cap)
// ---------------------------------------------------------------------------------------------

struct ExactSummary {
    potential: f64,
    kl: f64,
    library_probability: f64,
    moments: Vec<f64>,
    log_partition: f64,
}

fn exact_summary(ctx: &Context, model: &Model) -> Result<ExactSummary, EngineError> {
    let en = Enumeration::new(
        model,
        ctx.cfg.temperature,
        &ctx.exact_options(),
        ctx.interrupt,
    )?;
    let pot = en.potential(ctx.data.patterns(), &ctx.weights)?;
    let moments = en.moments(&ctx.set, ctx.interrupt)?;
    Ok(ExactSummary {
        potential: pot.potential,
        kl: pot.kl_divergence,
        library_probability: en.library_probability(ctx.data.patterns())?,
        moments,
        log_partition: en.log_partition(),
    })
}

/// Fill the report from an exact enumeration of the final model, and normalise J_∅ so that
/// p(σ) = e^{−E(σ)/T} exactly (J_∅ = −T ln Z of the model with J_∅ = 0).
fn finish_exact(
    ctx: &Context,
    model: &mut Model,
    report: &mut TrainingReport,
) -> Result<(), EngineError> {
    if !ctx.can_enumerate() {
        return Ok(());
    }
    model.set_offset(0.0);
    let s = exact_summary(ctx, model)?;
    model.set_offset(-ctx.cfg.temperature * s.log_partition);
    let (stats, _) = Stats::from_moments(ctx, &s.moments, model.couplings(), Some(s.potential));
    report.potential = Some(s.potential);
    report.kl_divergence = Some(s.kl);
    report.library_probability = Some(s.library_probability);
    report.max_moment_error = stats.max_moment_error;
    report.gradient_norm = stats.gradient_norm;
    report.max_gradient = stats.max_gradient;
    report.correlation_r = stats.correlation_r;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// full / projection
// ---------------------------------------------------------------------------------------------

fn closed_form(ctx: &Context) -> Result<Trained, EngineError> {
    ctx.interrupt.check()?;
    let cfg = ctx.cfg;
    let n = ctx.data.n();
    let fd = full::full_description(
        n,
        ctx.data.patterns(),
        &ctx.weights,
        cfg.temperature,
        cfg.ceiling,
    )
    .map_err(|e| match e {
        EngineError::Invalid { field, message }
            if field == "weights" || field.starts_with("weights[") =>
        {
            EngineError::invalid("dataset", message)
        }
        other => other,
    })?;
    ctx.interrupt.check()?;
    let mut model = if cfg.method == Method::Full {
        Model::with_shared_set(
            ctx.set.clone(),
            fd.model.couplings().to_vec(),
            fd.model.offset(),
        )?
    } else {
        full::project(&fd.model, ctx.set.clone())?
    };
    let mut report = ctx.report(cfg.method, None);
    report.stop_reason = "closed_form".into();
    report.converged = true;
    report.ceiling_energy = Some(fd.ceiling_energy);
    report.message = Some(if cfg.method == Method::Full {
        format!(
            "full description: every training pattern sits at E = −T ln w, every other \
             configuration at E_u = {:.6}; P_lib = {:.6}",
            fd.ceiling_energy, fd.library_probability
        )
    } else {
        format!(
            "full description (E_u = {:.6}, P_lib = {:.6}) projected onto {} couplings",
            fd.ceiling_energy,
            fd.library_probability,
            ctx.set.len()
        )
    });
    if ctx.can_enumerate() {
        let offset = model.offset();
        model.set_offset(0.0);
        let s = exact_summary(ctx, &model)?;
        // Full: keep the energies equal to the targets (J_∅ from the transform).
        if cfg.method == Method::Full {
            model.set_offset(offset);
        } else {
            model.set_offset(-cfg.temperature * s.log_partition);
        }
        let (stats, _) = Stats::from_moments(ctx, &s.moments, model.couplings(), Some(s.potential));
        report.potential = Some(s.potential);
        report.kl_divergence = Some(s.kl);
        report.library_probability = Some(s.library_probability);
        report.max_moment_error = stats.max_moment_error;
        report.gradient_norm = stats.gradient_norm;
        report.max_gradient = stats.max_gradient;
        report.correlation_r = stats.correlation_r;
        ctx.progress(0, &stats, report.message.clone());
    } else {
        report.library_probability = (cfg.method == Method::Full).then_some(fd.library_probability);
    }
    Ok(Trained { model, report })
}

// ---------------------------------------------------------------------------------------------
// exact: Newton / L-BFGS / Adam / gradient descent on Φ + λ/2 Σ J²
// ---------------------------------------------------------------------------------------------

struct ExactEval {
    /// Φ + λ/2 Σ J².
    objective: f64,
    grad: Vec<f64>,
    stats: Stats,
    /// All 2^N moments by mask (Newton only).
    spectrum: Option<Vec<f64>>,
}

fn exact_eval(ctx: &Context, j: &[f64], with_spectrum: bool) -> Result<ExactEval, EngineError> {
    let model = Model::with_shared_set(ctx.set.clone(), j.to_vec(), 0.0).map_err(|_| {
        EngineError::Numerical("a coupling became non-finite during training".into())
    })?;
    let en = Enumeration::new(
        &model,
        ctx.cfg.temperature,
        &ctx.exact_options(),
        ctx.interrupt,
    )?;
    let pot = en.potential(ctx.data.patterns(), &ctx.weights)?;
    let (moments, spectrum) = if with_spectrum {
        let spec = en.spectrum(ctx.interrupt)?;
        let m: Vec<f64> = (0..ctx.set.len())
            .map(|i| spec[ctx.set.mask(i) as usize])
            .collect();
        (m, Some(spec))
    } else {
        (en.moments(&ctx.set, ctx.interrupt)?, None)
    };
    let (stats, grad) = Stats::from_moments(ctx, &moments, j, Some(pot.potential));
    let objective = pot.potential + 0.5 * ctx.cfg.l2 * dot(j, j);
    if !objective.is_finite() {
        return Err(EngineError::Numerical(
            "the potential became non-finite".into(),
        ));
    }
    Ok(ExactEval {
        objective,
        grad,
        stats,
        spectrum,
    })
}

/// Newton system H = Cov(χ_S, χ_T)/T + λ I from the spectrum.
fn exact_hessian(ctx: &Context, spec: &[f64]) -> Vec<f64> {
    let p = ctx.set.len();
    let masks: Vec<u64> = (0..p).map(|i| ctx.set.mask(i)).collect();
    let t = ctx.cfg.temperature;
    let l2 = ctx.cfg.l2;
    let mut h = vec![0.0; p * p];
    h.par_chunks_mut(p).enumerate().for_each(|(s, row)| {
        let ms = masks[s];
        let es = spec[ms as usize];
        for (u, v) in row.iter_mut().enumerate() {
            let mu = masks[u];
            *v = (spec[(ms ^ mu) as usize] - es * spec[mu as usize]) / t;
        }
        row[s] += l2;
    });
    h
}

/// Solve H x = b for symmetric positive (semi)definite H by Cholesky, adding a ridge if needed.
fn solve_spd(h: &[f64], b: &[f64]) -> Vec<f64> {
    cholesky_solve(&factor_spd(h, b.len()), b.len(), b)
}

/// The Cholesky factor of H (p × p), with the smallest ridge 1e-12·10^k·max diag that works.
fn factor_spd(h: &[f64], p: usize) -> Vec<f64> {
    let scale = (0..p)
        .map(|i| h[i * p + i])
        .fold(0.0f64, f64::max)
        .max(1e-300);
    let mut ridge = 0.0;
    loop {
        let mut l = h.to_vec();
        for i in 0..p {
            l[i * p + i] += ridge;
        }
        if cholesky_in_place(&mut l, p) {
            return l;
        }
        ridge = if ridge == 0.0 {
            1e-12 * scale
        } else {
            ridge * 10.0
        };
    }
}

/// Lower-triangular Cholesky factor in place (row-major); false if not positive definite.
fn cholesky_in_place(a: &mut [f64], p: usize) -> bool {
    for j in 0..p {
        let rj: Vec<f64> = a[j * p..j * p + j].to_vec();
        let d = a[j * p + j] - dot(&rj, &rj);
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        let d = d.sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let s = a[i * p + j] - dot(&a[i * p..i * p + j], &rj);
            a[i * p + j] = s / d;
        }
    }
    true
}

fn cholesky_solve(l: &[f64], p: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; p];
    for i in 0..p {
        let s = b[i] - dot(&l[i * p..i * p + i], &y[..i]);
        y[i] = s / l[i * p + i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let mut s = y[i];
        for k in i + 1..p {
            s -= l[k * p + i] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
    x
}

/// L-BFGS memory of (s, y) pairs, oldest first.
#[derive(Clone, Debug, Default)]
struct Lbfgs {
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
}

const LBFGS_MEMORY: usize = 10;

impl Lbfgs {
    fn direction(&self, g: &[f64]) -> Vec<f64> {
        let k = self.s.len();
        let mut q = g.to_vec();
        let mut alpha = vec![0.0; k];
        let rho: Vec<f64> = (0..k).map(|i| 1.0 / dot(&self.y[i], &self.s[i])).collect();
        for i in (0..k).rev() {
            alpha[i] = rho[i] * dot(&self.s[i], &q);
            for (qv, yv) in q.iter_mut().zip(&self.y[i]) {
                *qv -= alpha[i] * yv;
            }
        }
        if k > 0 {
            let gamma = dot(&self.s[k - 1], &self.y[k - 1]) / dot(&self.y[k - 1], &self.y[k - 1]);
            for v in &mut q {
                *v *= gamma;
            }
        }
        for i in 0..k {
            let beta = rho[i] * dot(&self.y[i], &q);
            for (qv, sv) in q.iter_mut().zip(&self.s[i]) {
                *qv += (alpha[i] - beta) * sv;
            }
        }
        for v in &mut q {
            *v = -*v;
        }
        q
    }

    fn push(&mut self, s: Vec<f64>, y: Vec<f64>) {
        let sy = dot(&s, &y);
        if !(sy > 1e-300 && sy.is_finite()) {
            return;
        }
        if self.s.len() == LBFGS_MEMORY {
            self.s.remove(0);
            self.y.remove(0);
        }
        self.s.push(s);
        self.y.push(y);
    }

    fn to_state(&self) -> Vec<f64> {
        let mut v = vec![self.s.len() as f64];
        for (s, y) in self.s.iter().zip(&self.y) {
            v.extend_from_slice(s);
            v.extend_from_slice(y);
        }
        v
    }

    fn from_state(state: &[f64], p: usize) -> Result<Self, EngineError> {
        let bad =
            || EngineError::invalid("resume", "the checkpoint's L-BFGS memory is inconsistent");
        let k = *state.first().ok_or_else(bad)? as usize;
        if state.len() != 1 + 2 * k * p || k > LBFGS_MEMORY {
            return Err(bad());
        }
        let mut out = Self::default();
        for i in 0..k {
            let base = 1 + 2 * i * p;
            out.s.push(state[base..base + p].to_vec());
            out.y.push(state[base + p..base + 2 * p].to_vec());
        }
        Ok(out)
    }
}

/// Adam moments.
#[derive(Clone, Debug)]
struct Adam {
    t: u64,
    m: Vec<f64>,
    v: Vec<f64>,
}

const ADAM_BETA1: f64 = 0.9;
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

impl Adam {
    fn new(p: usize) -> Self {
        Self {
            t: 0,
            m: vec![0.0; p],
            v: vec![0.0; p],
        }
    }

    /// J −= lr m̂ / (√v̂ + ε).
    fn step(&mut self, j: &mut [f64], g: &[f64], lr: f64) {
        self.t += 1;
        let b1 = 1.0 - ADAM_BETA1.powi(self.t as i32);
        let b2 = 1.0 - ADAM_BETA2.powi(self.t as i32);
        for i in 0..j.len() {
            self.m[i] = ADAM_BETA1 * self.m[i] + (1.0 - ADAM_BETA1) * g[i];
            self.v[i] = ADAM_BETA2 * self.v[i] + (1.0 - ADAM_BETA2) * g[i] * g[i];
            j[i] -= lr * (self.m[i] / b1) / ((self.v[i] / b2).sqrt() + ADAM_EPS);
        }
    }

    fn to_state(&self) -> Vec<f64> {
        let mut v = vec![self.t as f64];
        v.extend_from_slice(&self.m);
        v.extend_from_slice(&self.v);
        v
    }

    fn from_state(state: &[f64], p: usize) -> Result<Self, EngineError> {
        if state.len() != 1 + 2 * p {
            return Err(EngineError::invalid(
                "resume",
                "the checkpoint's Adam state is inconsistent",
            ));
        }
        Ok(Self {
            t: state[0] as u64,
            m: state[1..1 + p].to_vec(),
            v: state[1 + p..].to_vec(),
        })
    }
}

fn resolve_exact_optimizer(cfg: &TrainingConfig, p: usize) -> Optimizer {
    match cfg.optimizer {
        Optimizer::Auto if p <= NEWTON_MAX_PARAMETERS => Optimizer::Newton,
        Optimizer::Auto => Optimizer::Lbfgs,
        o => o,
    }
}

fn exact_training(ctx: &Context, resume: Option<Checkpoint>) -> Result<Trained, EngineError> {
    let cfg = ctx.cfg;
    let p = ctx.set.len();
    let optimizer = resolve_exact_optimizer(cfg, p);
    let mut j = vec![0.0; p];
    let mut iteration = 0usize;
    let mut lbfgs = Lbfgs::default();
    let mut adam = Adam::new(p);
    if let Some(c) = resume {
        if c.optimizer != optimizer.code() {
            return Err(EngineError::invalid(
                "resume",
                "the checkpoint was written by another optimiser",
            ));
        }
        j = c.couplings;
        iteration = c.iteration;
        match optimizer {
            Optimizer::Lbfgs => lbfgs = Lbfgs::from_state(&c.state, p)?,
            Optimizer::Adam => adam = Adam::from_state(&c.state, p)?,
            _ => {}
        }
    }
    let newton = optimizer == Optimizer::Newton;
    let lr = cfg.step_size.unwrap_or(match optimizer {
        Optimizer::Adam => 0.05,
        _ => cfg.temperature,
    });
    let mut history = History::new();
    let mut ev = exact_eval(ctx, &j, newton)?;
    let stop: String;
    let mut message = None;
    loop {
        ctx.progress(iteration, &ev.stats, None);
        history.push(iteration, &ev.stats);
        if ev.stats.max_gradient <= cfg.tolerance {
            stop = "converged".into();
            break;
        }
        if iteration >= cfg.max_iterations {
            stop = "max_iterations".into();
            break;
        }
        if ctx.out_of_time() {
            stop = "wall_clock_limit".into();
            break;
        }
        ctx.checkpoint_and_check(|| Checkpoint {
            method: Method::Exact.code(),
            optimizer: optimizer.code(),
            iteration,
            seconds: ctx.seconds(),
            couplings: j.clone(),
            state: match optimizer {
                Optimizer::Lbfgs => lbfgs.to_state(),
                Optimizer::Adam => adam.to_state(),
                _ => Vec::new(),
            },
            chains: None,
            fingerprint: ctx.fingerprint(),
        })?;
        match optimizer {
            Optimizer::Newton | Optimizer::Lbfgs => {
                let d = if newton {
                    let h = exact_hessian(ctx, ev.spectrum.as_ref().expect("spectrum"));
                    let neg: Vec<f64> = ev.grad.iter().map(|g| -g).collect();
                    solve_spd(&h, &neg)
                } else {
                    let mut d = lbfgs.direction(&ev.grad);
                    if lbfgs.s.is_empty() {
                        // First step: at most a unit change in any coupling.
                        let s = 1.0 / max_abs(&d).max(1.0);
                        d.iter_mut().for_each(|v| *v *= s);
                    }
                    if dot(&d, &ev.grad) >= 0.0 {
                        lbfgs = Lbfgs::default();
                        d = ev.grad.iter().map(|g| -g).collect();
                    }
                    d
                };
                match line_search(ctx, &j, &ev, &d, newton)? {
                    Some((j_new, ev_new)) => {
                        if !newton {
                            let s: Vec<f64> = j_new.iter().zip(&j).map(|(a, b)| a - b).collect();
                            let y: Vec<f64> = ev_new
                                .grad
                                .iter()
                                .zip(&ev.grad)
                                .map(|(a, b)| a - b)
                                .collect();
                            lbfgs.push(s, y);
                        }
                        j = j_new;
                        ev = ev_new;
                    }
                    None => {
                        stop = "line_search_stalled".into();
                        message = Some(format!(
                            "no step along the {} direction lowers the objective any more: the \
                             gradient ({:.3e}) is at the rounding floor",
                            optimizer.as_str(),
                            ev.stats.max_gradient
                        ));
                        break;
                    }
                }
            }
            Optimizer::Adam | Optimizer::GradientDescent => {
                if optimizer == Optimizer::Adam {
                    adam.step(&mut j, &ev.grad, lr);
                } else {
                    for (jv, g) in j.iter_mut().zip(&ev.grad) {
                        *jv -= lr * g;
                    }
                }
                ev = exact_eval(ctx, &j, false)?;
            }
            Optimizer::Auto => unreachable!("resolved"),
        }
        iteration += 1;
    }
    let mut report = ctx.report(Method::Exact, Some(optimizer));
    report.iterations = iteration;
    report.converged = stop == "converged";
    report.stop_reason = stop;
    report.message = message;
    report.history = history.finish();
    report.potential = ev.stats.potential;
    report.max_moment_error = ev.stats.max_moment_error;
    report.gradient_norm = ev.stats.gradient_norm;
    report.max_gradient = ev.stats.max_gradient;
    report.correlation_r = ev.stats.correlation_r;
    let mut model = Model::with_shared_set(ctx.set.clone(), j, 0.0)?;
    finish_exact(ctx, &mut model, &mut report)?;
    Ok(Trained { model, report })
}

/// Backtracking Armijo line search from step 1 along `d`; `None` when 40 halvings fail.
fn line_search(
    ctx: &Context,
    j: &[f64],
    ev: &ExactEval,
    d: &[f64],
    with_spectrum: bool,
) -> Result<Option<(Vec<f64>, ExactEval)>, EngineError> {
    let slope = dot(&ev.grad, d);
    let slack = 1e-13 * (1.0 + ev.objective.abs());
    let mut t = 1.0;
    for _ in 0..40 {
        let cand: Vec<f64> = j.iter().zip(d).map(|(a, b)| a + t * b).collect();
        match exact_eval(ctx, &cand, with_spectrum) {
            Ok(e) if e.objective <= ev.objective + 1e-4 * t * slope + slack => {
                return Ok(Some((cand, e)));
            }
            Ok(_) | Err(EngineError::Numerical(_)) => {}
            Err(e) => return Err(e),
        }
        t *= 0.5;
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// pseudolikelihood
// ---------------------------------------------------------------------------------------------

/// One site's regression: σ_a on the products χ_{S∖a} of the members S ∋ a.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SiteFit {
    pub site: usize,
    /// Indices (into the set) of the members containing the site.
    pub members: Vec<usize>,
    /// θ_S for those members (J units).
    pub coefficients: Vec<f64>,
    /// T ⟨−ln p(σ_a | rest)⟩_data + λ/2 Σ θ² at the optimum.
    pub objective: f64,
    /// max |gradient| at the optimum.
    pub max_gradient: f64,
    pub iterations: usize,
}

/// Settings of [`pseudolikelihood_sites`].
#[derive(Clone, Debug)]
pub struct PlOptions {
    pub temperature: f64,
    pub l2: f64,
    /// `Newton`, `Lbfgs`, or `Auto` (Newton up to [`PL_NEWTON_MAX_FEATURES`] couplings per site).
    pub optimizer: Optimizer,
    pub max_iterations: usize,
    /// On the largest gradient component of each site's objective.
    pub tolerance: f64,
}

/// Fit the conditional likelihood of every site (in parallel); `on_site` is called as each site
/// finishes (for progress).
pub fn pseudolikelihood_sites(
    data: &Dataset,
    set: &InteractionSet,
    options: &PlOptions,
    interrupt: &Interrupt,
    on_site: &(dyn Fn(&SiteFit) + Sync),
) -> Result<Vec<SiteFit>, EngineError> {
    let PlOptions {
        temperature,
        l2,
        optimizer,
        max_iterations,
        tolerance,
    } = *options;
    let n = data.n();
    let m = data.len();
    let weights = data.weights();
    let mut spins = vec![0i8; m * n];
    for (row, p) in spins.chunks_exact_mut(n).zip(data.patterns()) {
        p.write_spins(row);
    }
    let members_of: Vec<Vec<usize>> = if set.is_full() {
        (0..n)
            .map(|a| {
                (0..set.len())
                    .filter(|&i| (i as u64 + 1) >> a & 1 == 1)
                    .collect()
            })
            .collect()
    } else {
        let inc = set.incidence();
        (0..n)
            .map(|a| inc.of(a).iter().map(|&i| i as usize).collect())
            .collect()
    };
    // A spin constant in the data makes the features containing it duplicates of others (or
    // constants): its couplings are not identifiable from conditionals. Such members are left
    // out (J = 0, their effect absorbed by the fields) and a constant spin gets only its field.
    let constant: Vec<bool> = {
        let mut c = vec![false; n];
        for (a, _) in data.constant_spins() {
            c[a] = true;
        }
        c
    };
    let members_of: Vec<Vec<usize>> = members_of
        .into_iter()
        .enumerate()
        .map(|(a, list)| {
            list.into_iter()
                .filter(|&i| {
                    let s = set.subset(i);
                    if constant[a] {
                        s.len() == 1
                    } else {
                        s.iter().all(|b| !constant[b as usize])
                    }
                })
                .collect()
        })
        .collect();
    (0..n)
        .into_par_iter()
        .map(|a| {
            interrupt.check()?;
            let members = &members_of[a];
            let d = members.len();
            let use_newton = match optimizer {
                Optimizer::Newton => true,
                Optimizer::Lbfgs => false,
                _ => d <= PL_NEWTON_MAX_FEATURES,
            };
            // The other spins of each member: its feature is their product (σ_a² = 1).
            let others: Vec<Vec<u32>> = members
                .iter()
                .map(|&i| set.subset(i).iter().filter(|&b| b as usize != a).collect())
                .collect();
            let (theta, objective, max_gradient, iterations) = fit_site(
                SiteInput {
                    a,
                    n,
                    spins: &spins,
                    others: &others,
                    weights: &weights,
                    temperature,
                    l2,
                },
                use_newton,
                max_iterations,
                tolerance,
                interrupt,
            )?;
            let fit = SiteFit {
                site: a,
                members: members.clone(),
                coefficients: theta,
                objective,
                max_gradient,
                iterations,
            };
            on_site(&fit);
            Ok(fit)
        })
        .collect()
}

/// One site's conditional-likelihood problem, before its features are built.
struct SiteInput<'a> {
    a: usize,
    n: usize,
    /// The data, M × n spins.
    spins: &'a [i8],
    others: &'a [Vec<u32>],
    weights: &'a [f64],
    temperature: f64,
    l2: f64,
}

type SiteSolution = Result<(Vec<f64>, f64, f64, usize), EngineError>;

simd_dispatch! {
    /// Build the features x_{μk} = χ_{S_k}(ξ^μ) σ_a(ξ^μ) and labels y_μ = σ_a(ξ^μ) and solve; the
    /// objective, gradient and Hessian loops are inlined into each vector-width variant.
    fn fit_site / fit_site_at <>(
        input: SiteInput<'_>,
        newton: bool,
        max_iterations: usize,
        tolerance: f64,
        interrupt: &Interrupt,
    ) -> SiteSolution {
        let SiteInput {
            a,
            n,
            spins,
            others,
            weights,
            temperature,
            l2,
        } = input;
        let m = weights.len();
        let d = others.len();
        let mut x = vec![0.0f64; m * d];
        let mut y = vec![0.0f64; m];
        for mu in 0..m {
            let s = &spins[mu * n..(mu + 1) * n];
            y[mu] = s[a] as f64;
            for (xk, list) in x[mu * d..(mu + 1) * d].iter_mut().zip(others) {
                let mut chi = 1i8;
                for &b in list {
                    chi *= s[b as usize];
                }
                *xk = chi as f64;
            }
        }
        let mut xt = vec![0.0f64; m * d];
        for (mu, row) in x.chunks_exact(d.max(1)).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                xt[k * m + mu] = v;
            }
        }
        let site = SiteProblem {
            x: &x,
            xt: &xt,
            y: &y,
            w: weights,
            d,
            t: temperature,
            l2,
        };
        site.solve(newton, max_iterations, tolerance, interrupt)
    }
}

struct SiteProblem<'a> {
    /// Features, M × d (pattern-major).
    x: &'a [f64],
    /// The same, d × M (feature-major).
    xt: &'a [f64],
    y: &'a [f64],
    w: &'a [f64],
    d: usize,
    t: f64,
    l2: f64,
}

/// T ln(2 cosh(z/T)) computed without overflow.
#[inline(always)]
fn t_log_2cosh(z: f64, t: f64) -> f64 {
    let u = (z / t).abs();
    t * (u + (-2.0 * u).exp().ln_1p())
}

impl SiteProblem<'_> {
    /// Objective and gradient at θ; also fills `z` with tanh(h_μ/T) per pattern (for the Hessian).
    #[inline(always)]
    fn eval(&self, theta: &[f64], z: &mut [f64], grad: &mut [f64]) -> f64 {
        let d = self.d;
        let mut f = 0.5 * self.l2 * dot(theta, theta);
        for (g, th) in grad.iter_mut().zip(theta) {
            *g = self.l2 * th;
        }
        for (mu, zm) in z.iter_mut().enumerate() {
            let row = &self.x[mu * d..(mu + 1) * d];
            let h = dot(row, theta);
            let w = self.w[mu];
            // T ln 2cosh(h/T) and tanh(h/T) from one expm1: with a = |h|/T and q = e^{−2a} − 1,
            // ln 2cosh = a + ln(2 + q) and tanh a = −q/(2 + q).
            let a = (h / self.t).abs();
            let q = (-2.0 * a).exp_m1();
            let th = (-q / (2.0 + q)).copysign(h);
            *zm = th;
            f += w * (-self.y[mu] * h + self.t * (a + (1.0 + q).ln_1p()));
            let r = w * (th - self.y[mu]);
            for (g, xv) in grad.iter_mut().zip(row) {
                *g += r * xv;
            }
        }
        f
    }

    #[inline(always)]
    fn objective(&self, theta: &[f64]) -> f64 {
        let d = self.d;
        let mut f = 0.5 * self.l2 * dot(theta, theta);
        for mu in 0..self.y.len() {
            let h = dot(&self.x[mu * d..(mu + 1) * d], theta);
            f += self.w[mu] * (-self.y[mu] * h + t_log_2cosh(h, self.t));
        }
        f
    }

    /// Σ_μ w_μ (1 − z_μ²)/T x_μ x_μᵀ + λ I (z_μ = tanh(h_μ/T) from `eval`), each entry a dot product of two feature
    /// columns (`xt` holds them contiguously), so the work is long vectorised dot products rather
    /// than M rank-one updates of a triangle.
    #[inline(always)]
    fn hessian(&self, z: &[f64]) -> Vec<f64> {
        let d = self.d;
        let m = self.y.len();
        let curvature: Vec<f64> = z
            .iter()
            .zip(self.w)
            .map(|(&th, &w)| w * (1.0 - th * th) / self.t)
            .collect();
        let mut weighted = vec![0.0; d * m];
        for (wc, col) in weighted
            .chunks_exact_mut(m.max(1))
            .zip(self.xt.chunks_exact(m.max(1)))
        {
            for ((v, &x), &c) in wc.iter_mut().zip(col).zip(&curvature) {
                *v = c * x;
            }
        }
        let mut h = vec![0.0; d * d];
        for b in 0..d {
            let wb = &weighted[b * m..(b + 1) * m];
            for c in b..d {
                let v = dot(wb, &self.xt[c * m..(c + 1) * m]);
                h[b * d + c] = v;
                h[c * d + b] = v;
            }
            h[b * d + b] += self.l2;
        }
        h
    }

    /// (θ, objective, max |gradient|, iterations).
    #[inline(always)]
    fn solve(
        &self,
        newton: bool,
        max_iterations: usize,
        tolerance: f64,
        interrupt: &Interrupt,
    ) -> Result<(Vec<f64>, f64, f64, usize), EngineError> {
        let d = self.d;
        let m = self.y.len();
        let mut theta = vec![0.0; d];
        let mut z = vec![0.0; m];
        let mut grad = vec![0.0; d];
        let mut f = self.eval(&theta, &mut z, &mut grad);
        let mut lbfgs = Lbfgs::default();
        let mut it = 0;
        let mut new_grad = vec![0.0; d];
        let mut new_z = vec![0.0; m];
        let mut factor: Option<Vec<f64>> = None;
        let mut refresh = true;
        while it < max_iterations && max_abs(&grad) > tolerance {
            let before = max_abs(&grad);
            interrupt.check()?;
            let mut dir = if newton {
                // Newton, reusing the last factor while it keeps cutting the gradient ≥ 4×
                // (the Hessian is the dominant cost: M d² against M d for a gradient).
                if refresh || factor.is_none() {
                    factor = Some(factor_spd(&self.hessian(&z), d));
                }
                let neg: Vec<f64> = grad.iter().map(|g| -g).collect();
                cholesky_solve(factor.as_ref().expect("factor"), d, &neg)
            } else {
                let mut dir = lbfgs.direction(&grad);
                if lbfgs.s.is_empty() {
                    let s = 1.0 / max_abs(&dir).max(1.0);
                    dir.iter_mut().for_each(|v| *v *= s);
                }
                dir
            };
            if dot(&dir, &grad) >= 0.0 {
                lbfgs = Lbfgs::default();
                dir = grad.iter().map(|g| -g).collect();
            }
            let slope = dot(&dir, &grad);
            let slack = 1e-14 * (1.0 + f.abs());
            let mut step = 1.0;
            let mut accepted = false;
            for _ in 0..50 {
                let cand: Vec<f64> = theta.iter().zip(&dir).map(|(a, b)| a + step * b).collect();
                let fc = self.eval(&cand, &mut new_z, &mut new_grad);
                if fc.is_finite() && fc <= f + 1e-4 * step * slope + slack {
                    if !newton {
                        let s: Vec<f64> = cand.iter().zip(&theta).map(|(a, b)| a - b).collect();
                        let yv: Vec<f64> = new_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
                        lbfgs.push(s, yv);
                    }
                    theta = cand;
                    f = fc;
                    std::mem::swap(&mut z, &mut new_z);
                    std::mem::swap(&mut grad, &mut new_grad);
                    accepted = true;
                    break;
                }
                step *= 0.5;
            }
            it += 1;
            if !accepted {
                if newton && !refresh {
                    // A stale factor failed: retry with a fresh Hessian.
                    refresh = true;
                    continue;
                }
                break;
            }
            refresh = max_abs(&grad) > 0.25 * before;
        }
        let _ = self.objective(&theta);
        Ok((theta, f, max_abs(&grad), it))
    }
}

fn pseudolikelihood_fit(
    ctx: &Context,
    stage_progress: bool,
) -> Result<(Vec<f64>, f64, f64, usize), EngineError> {
    let cfg = ctx.cfg;
    let n = ctx.data.n();
    let done = AtomicU64::new(0);
    let (max_iterations, tolerance) = if cfg.method == Method::Pseudolikelihood {
        (cfg.max_iterations, cfg.tolerance)
    } else {
        (100, 1e-8)
    };
    let optimizer = if cfg.method == Method::Pseudolikelihood {
        cfg.optimizer
    } else {
        Optimizer::Auto
    };
    let on_site = |fit: &SiteFit| {
        let k = done.fetch_add(1, Ordering::Relaxed) + 1;
        if stage_progress {
            ctx.observer.progress(&Progress {
                stage: if cfg.method == Method::Pseudolikelihood {
                    "training"
                } else {
                    "pseudolikelihood start"
                },
                iteration: k,
                total: Some(n as u64),
                potential: None,
                gradient_norm: None,
                max_moment_error: None,
                correlation_r: None,
                message: Some(format!(
                    "site {} fitted in {} iterations (max gradient {:.2e})",
                    fit.site, fit.iterations, fit.max_gradient
                )),
            });
        }
    };
    let fits = pseudolikelihood_sites(
        ctx.data,
        &ctx.set,
        &PlOptions {
            temperature: cfg.temperature,
            l2: cfg.l2,
            optimizer,
            max_iterations,
            tolerance,
        },
        ctx.interrupt,
        &on_site,
    )?;
    // Symmetrise: J_S = mean of the estimates of the sites in S.
    let p = ctx.set.len();
    let mut sum = vec![0.0; p];
    let mut count = vec![0u32; p];
    let mut objective = 0.0;
    let mut worst = 0.0f64;
    let mut iterations = 0;
    for f in &fits {
        for (&i, &c) in f.members.iter().zip(&f.coefficients) {
            sum[i] += c;
            count[i] += 1;
        }
        objective += f.objective;
        worst = worst.max(f.max_gradient);
        iterations = iterations.max(f.iterations);
    }
    let j = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect();
    Ok((j, objective, worst, iterations))
}

fn pseudolikelihood_training(ctx: &Context) -> Result<Trained, EngineError> {
    let cfg = ctx.cfg;
    let (j, objective, worst, iterations) = pseudolikelihood_fit(ctx, true)?;
    let optimizer = match cfg.optimizer {
        Optimizer::Auto => Optimizer::Newton,
        o => o,
    };
    let mut report = ctx.report(Method::Pseudolikelihood, Some(optimizer));
    report.iterations = iterations;
    report.pseudolikelihood = Some(objective);
    report.converged = worst <= cfg.tolerance;
    report.stop_reason = if report.converged {
        "converged".into()
    } else {
        "max_iterations".into()
    };
    report.message = Some(format!(
        "{} conditional likelihoods fitted; largest per-site gradient {:.3e}",
        ctx.data.n(),
        worst
    ));
    let mut model = Model::with_shared_set(ctx.set.clone(), j, 0.0).map_err(|_| {
        EngineError::Numerical("the pseudo-likelihood fit produced a non-finite coupling".into())
    })?;
    if ctx.can_enumerate() {
        finish_exact(ctx, &mut model, &mut report)?;
    } else {
        // Conditional mismatch of the symmetrised model: ⟨tanh(h_a/T) χ_{S∖a}⟩ − ⟨χ_S⟩ per site.
        let (err, grad) = conditional_mismatch(ctx, &model);
        report.max_moment_error = err;
        report.gradient_norm = norm(&grad);
        report.max_gradient = max_abs(&grad);
        report.warnings.push(
            "N is above the exact cap: max_moment_error is the pseudo-likelihood's conditional \
             mismatch, not a comparison with model averages"
                .into(),
        );
    }
    let stats = Stats {
        potential: report.potential,
        objective: report
            .potential
            .map(|p| p + 0.5 * cfg.l2 * dot(model.couplings(), model.couplings())),
        max_moment_error: report.max_moment_error,
        gradient_norm: report.gradient_norm,
        max_gradient: report.max_gradient,
        correlation_r: report.correlation_r,
    };
    let mut history = History::new();
    history.push(iterations, &stats);
    report.history = history.finish();
    Ok(Trained { model, report })
}

/// max_S |⟨tanh(h_a/T) χ_{S∖a}⟩_data − ⟨χ_S⟩_data| over sites a ∈ S, and the averaged vector
/// (+ λJ).
fn conditional_mismatch(ctx: &Context, model: &Model) -> (f64, Vec<f64>) {
    let n = ctx.data.n();
    let t = ctx.cfg.temperature;
    let set = &ctx.set;
    let p = set.len();
    let mut acc = vec![0.0; p];
    let mut cnt = vec![0u32; p];
    let mut spins = vec![0i8; n];
    let inc = if set.is_full() {
        None
    } else {
        Some(set.incidence())
    };
    for (pat, &w) in ctx.data.patterns().iter().zip(&ctx.weights) {
        pat.write_spins(&mut spins);
        for a in 0..n {
            let th = (model.local_field(&spins, a) / t).tanh();
            let members: Vec<usize> = match &inc {
                Some(inc) => inc.of(a).iter().map(|&i| i as usize).collect(),
                None => (0..p).filter(|&i| (i as u64 + 1) >> a & 1 == 1).collect(),
            };
            for i in members {
                let x = (set.subset(i).chi(&spins) * spins[a]) as f64;
                acc[i] += w * th * x;
            }
        }
    }
    for a in 0..n {
        let members: Vec<usize> = match &inc {
            Some(inc) => inc.of(a).iter().map(|&i| i as usize).collect(),
            None => (0..p).filter(|&i| (i as u64 + 1) >> a & 1 == 1).collect(),
        };
        for i in members {
            cnt[i] += 1;
        }
    }
    let mut worst = 0.0f64;
    let grad: Vec<f64> = (0..p)
        .map(|i| {
            let m = acc[i] / cnt[i].max(1) as f64;
            let e = m - ctx.data_moments[i];
            worst = worst.max(e.abs());
            e + ctx.cfg.l2 * model.couplings()[i]
        })
        .collect();
    (worst, grad)
}

// ---------------------------------------------------------------------------------------------
// sampled
// ---------------------------------------------------------------------------------------------

/// Replicas per chain with parallel tempering (target β first, then a geometric ladder).
pub const TEMPERING_REPLICAS: usize = 8;

/// Smoothing of the gradient for the convergence test of `sampled`: an exponential moving
/// average over about 1 / (1 − this) steps.
const SAMPLED_EMA: f64 = 0.95;

/// Weight of the past in the running average of the coupling iterates (`sampled`).
const SAMPLED_AVERAGE: f64 = 0.98;

/// `sampled` does not declare convergence before this many steps.
const SAMPLED_MIN_ITERATIONS: usize = 50;

/// Chain groups of the ergodicity check, and sweeps of the final evaluation.
const ERGODICITY_GROUPS: usize = 4;
const EVALUATION_SWEEPS: usize = 500;

fn step_seed(seed: u64, iteration: usize, salt: u64) -> u64 {
    let mut s = seed ^ (iteration as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    super::rng::splitmix64(&mut s)
}

/// ⟨χ_S⟩ over chain states with equal weights.
/// Rao–Blackwellised chain averages of every member of `set` over the configurations in `spins`
/// (count × n): each ⟨χ_S⟩ is estimated by the mean over a ∈ S of χ_{S∖a} tanh(β h_a), the
/// expectation of χ_S given every spin but a (h_a the local field, so P(σ_a = +1 | rest) =
/// 1/(1 + e^{−2βh_a})). It has the plain estimator's mean and never more variance (each term is a
/// conditional expectation of it), and much less when the fields are strong — so the gradient of
/// `sampled` is less noisy and its reported moment error measures the fit, not the dice.
pub fn rao_blackwell_moments(
    kernel: &Kernel,
    set: &InteractionSet,
    spins: &[i8],
    beta: f64,
) -> Vec<f64> {
    let n = set.n();
    let count = spins.len().checked_div(n).unwrap_or(0);
    if count == 0 {
        return vec![0.0; set.len()];
    }
    // Member spin lists once (the full description is enumerated only for small N).
    let lists: Vec<Vec<u32>> = set.iter().map(|s| s.iter().collect()).collect();
    let pairwise = lists.iter().all(|l| l.len() <= 2);
    let threads = rayon::current_num_threads().max(1);
    let chunk = count.div_ceil(threads);
    let width = if pairwise { n + n * n } else { set.len() };
    let sum = spins
        .par_chunks(chunk * n)
        .map(|block| {
            let mut acc = vec![0.0; width];
            let mut h = vec![0.0; n];
            let mut t = vec![0.0; n];
            for s in block.chunks_exact(n) {
                kernel.local_fields(s, &mut h);
                for (ta, &ha) in t.iter_mut().zip(&h) {
                    *ta = (beta * ha).tanh();
                }
                if pairwise {
                    // acc[..n] += t; acc[n + a n + b] += σ_a t_b (⟨σ_a σ_b⟩ ≈ (σ_a t_b + t_a σ_b)/2).
                    let (first, outer) = acc.split_at_mut(n);
                    for (f, &ta) in first.iter_mut().zip(&t) {
                        *f += ta;
                    }
                    for (row, &sa) in outer.chunks_exact_mut(n).zip(s) {
                        let sa = sa as f64;
                        for (x, &tb) in row.iter_mut().zip(&t) {
                            *x += sa * tb;
                        }
                    }
                } else {
                    for (x, list) in acc.iter_mut().zip(&lists) {
                        // χ_{S∖a} tanh(βh_a) = χ_S σ_a t_a.
                        let mut chi = 1i8;
                        let mut u = 0.0;
                        for &a in list {
                            let a = a as usize;
                            chi *= s[a];
                            u += s[a] as f64 * t[a];
                        }
                        *x += chi as f64 * u / list.len() as f64;
                    }
                }
            }
            acc
        })
        .reduce(
            || vec![0.0; width],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let scale = 1.0 / count as f64;
    if !pairwise {
        return sum.into_iter().map(|x| x * scale).collect();
    }
    lists
        .iter()
        .map(|l| match *l.as_slice() {
            [a] => sum[a as usize] * scale,
            [a, b] => {
                let (a, b) = (a as usize, b as usize);
                0.5 * (sum[n + a * n + b] + sum[n + b * n + a]) * scale
            }
            _ => unreachable!("members are non-empty and pairwise"),
        })
        .collect()
}

fn chain_moments(set: &InteractionSet, patterns: &[super::spins::Pattern]) -> Vec<f64> {
    let w = vec![1.0 / patterns.len() as f64; patterns.len()];
    data_moments(set, patterns, &w).expect("chain patterns fit the set")
}

/// Initial chain states: training patterns drawn by weight (chain c from stream c).
fn chains_from_data(ctx: &Context, count: usize, seed: u64) -> Chains {
    let mut cdf = Vec::with_capacity(ctx.weights.len());
    let mut acc = 0.0;
    for w in &ctx.weights {
        acc += w;
        cdf.push(acc);
    }
    let patterns: Vec<_> = (0..count)
        .map(|c| {
            let u = ChainRng::new(seed ^ 0xDA7A_5EED, c as u64).next_f64() * acc;
            let i = cdf.partition_point(|&x| x < u).min(cdf.len() - 1);
            ctx.data.patterns()[i].clone()
        })
        .collect();
    Chains::from_patterns(&patterns)
}

fn sampled_training(ctx: &Context, resume: Option<Checkpoint>) -> Result<Trained, EngineError> {
    let cfg = ctx.cfg;
    let n = ctx.data.n();
    let p = ctx.set.len();
    let beta = 1.0 / cfg.temperature;
    let optimizer = match cfg.optimizer {
        Optimizer::Auto => Optimizer::Adam,
        o => o,
    };
    // Adam moves every coupling by about lr per step whatever the gradient's size, so a local
    // field (a sum over its couplings) moves by about lr √P: the default keeps that ≈ 0.05.
    let lr0 = cfg.step_size.unwrap_or(match optimizer {
        Optimizer::Adam => (0.05 / (p as f64).sqrt()).min(0.01),
        _ => 0.05 * cfg.temperature,
    });
    let replicas = if cfg.parallel_tempering {
        TEMPERING_REPLICAS
    } else {
        1
    };
    let mut adam = Adam::new(p);
    let mut ema = vec![0.0; p];
    let mut j_avg = vec![0.0; p];
    let mut iteration = 0usize;
    let mut j;
    let mut chains: Vec<Chains>;
    let mut warnings = Vec::new();
    if let Some(c) = resume {
        if c.optimizer != optimizer.code() {
            return Err(resume_error(
                "the checkpoint was written by another optimiser",
            ));
        }
        let (cn, spins) = c
            .chains
            .ok_or_else(|| resume_error("the checkpoint has no chains"))?;
        if spins.len() != cn * cfg.chains * replicas || c.state.len() != 1 + 4 * p {
            return Err(resume_error(
                "the checkpoint's chains or optimiser state do not fit chains / parallel_tempering",
            ));
        }
        adam = Adam::from_state(&c.state[..1 + 2 * p], p)?;
        ema = c.state[1 + 2 * p..1 + 3 * p].to_vec();
        j_avg = c.state[1 + 3 * p..].to_vec();
        iteration = c.iteration;
        j = c.couplings;
        let per = cfg.chains * n;
        chains = spins
            .chunks(per)
            .map(|s| Chains::from_spins(n, s.to_vec()))
            .collect();
    } else {
        j = vec![0.0; p];
        if cfg.init_from_pseudolikelihood {
            let (pl, _, _, _) = pseudolikelihood_fit(ctx, true)?;
            if pl.iter().all(|v| v.is_finite()) {
                j = pl;
            } else {
                warnings
                    .push("the pseudo-likelihood start was not finite; started from zero".into());
            }
        }
        let c0 = chains_from_data(ctx, cfg.chains, cfg.seed);
        chains = vec![c0; replicas];
    }
    let mut history = History::new();
    let stop: String;
    let mut swap_acceptance = None;
    let mut stats;
    let mut start_evidence = None;
    loop {
        // The state at the top of an iteration is what a resume starts from.
        ctx.checkpoint_and_check(|| {
            let mut state = adam.to_state();
            state.extend_from_slice(&ema);
            state.extend_from_slice(&j_avg);
            let spins: Vec<i8> = chains.iter().flat_map(|c| c.all_spins().to_vec()).collect();
            Checkpoint {
                method: Method::Sampled.code(),
                optimizer: optimizer.code(),
                iteration,
                seconds: ctx.seconds(),
                couplings: j.clone(),
                state,
                chains: Some((n, spins)),
                fingerprint: ctx.fingerprint(),
            }
        })?;
        let model = Model::with_shared_set(ctx.set.clone(), j.clone(), 0.0).map_err(|_| {
            EngineError::Numerical(
                "a coupling became non-finite: lower step_size or raise l2".into(),
            )
        })?;
        let kernel = Kernel::new(&model);
        if iteration == 0 {
            start_evidence = ergodicity_check(ctx, &kernel, beta)?;
        }
        let plan = Plan::fixed(beta, cfg.sweeps_per_step);
        let seed = step_seed(cfg.seed, iteration, 0x5A3B);
        if cfg.parallel_tempering {
            let betas = default_betas(&kernel, beta, replicas);
            let t = temper(&kernel, &betas, &mut chains, &plan, 1, seed, ctx.interrupt)?;
            swap_acceptance = Some(t.swap_acceptance);
        } else {
            sample(&kernel, &mut chains[0], &plan, seed, ctx.interrupt)?;
        }
        let moments = rao_blackwell_moments(&kernel, &ctx.set, chains[0].all_spins(), beta);
        let (s, grad) = Stats::from_moments(ctx, &moments, &j, None);
        stats = s;
        for (e, g) in ema.iter_mut().zip(&grad) {
            *e = SAMPLED_EMA * *e + (1.0 - SAMPLED_EMA) * g;
        }
        // Bias-corrected smoothed gradient (as Adam's first moment).
        let corr = 1.0 - SAMPLED_EMA.powi((iteration + 1).min(10_000) as i32);
        let smoothed = max_abs(&ema) / corr;
        ctx.progress(
            iteration,
            &stats,
            Some(format!("smoothed largest gradient {smoothed:.4}")),
        );
        history.push(iteration, &stats);
        if iteration >= SAMPLED_MIN_ITERATIONS && smoothed <= cfg.tolerance {
            stop = "converged".into();
            break;
        }
        if iteration >= cfg.max_iterations {
            stop = "max_iterations".into();
            break;
        }
        if ctx.out_of_time() {
            stop = "wall_clock_limit".into();
            break;
        }
        // The step size decays as 1/√(1 + t/τ) so that the noise of the averages settles.
        let lr = lr0 / (1.0 + iteration as f64 / 500.0).sqrt();
        if optimizer == Optimizer::Adam {
            adam.step(&mut j, &grad, lr);
        } else {
            for (jv, g) in j.iter_mut().zip(&grad) {
                *jv -= lr * g;
            }
        }
        // Iterate averaging: the returned couplings are an exponential average of the iterates,
        // which cancels most of the step-to-step noise of the chain averages.
        let keep = if iteration == 0 { 0.0 } else { SAMPLED_AVERAGE };
        for (a, v) in j_avg.iter_mut().zip(&j) {
            *a = keep * *a + (1.0 - keep) * v;
        }
        iteration += 1;
    }
    let converged = stop == "converged";
    if iteration == 0 {
        j_avg = j;
    }
    let mut model = Model::with_shared_set(ctx.set.clone(), j_avg, 0.0)?;
    let kernel = Kernel::new(&model);

    // Final averages: the persistent chains run EVALUATION_SWEEPS more sweeps, every sweep kept —
    // with replica exchange when training used it, so that the chains' shares between basins keep
    // equilibrating during the evaluation instead of being frozen at their last values.
    let mut plan = Plan::fixed(beta, EVALUATION_SWEEPS);
    plan.record = true;
    let eval_seed = step_seed(cfg.seed, iteration, 0xE7A1);
    let run = if cfg.parallel_tempering {
        let mut eval_chains = chains.clone();
        let betas = default_betas(&kernel, beta, replicas);
        temper(
            &kernel,
            &betas,
            &mut eval_chains,
            &plan,
            1,
            eval_seed,
            ctx.interrupt,
        )?
        .run
    } else {
        let mut eval_chains = chains[0].clone();
        sample(&kernel, &mut eval_chains, &plan, eval_seed, ctx.interrupt)?
    };
    // In batches, so that the spins of every recorded sample are never held at once.
    let mut moments = vec![0.0; p];
    let mut batch = Vec::new();
    for part in run.samples.chunks(4096) {
        batch.resize(part.len() * n, 0);
        for (s, row) in part.iter().zip(batch.chunks_exact_mut(n.max(1))) {
            s.pattern.write_spins(row);
        }
        let m = rao_blackwell_moments(&kernel, &ctx.set, &batch, beta);
        let w = part.len() as f64 / run.samples.len() as f64;
        moments.iter_mut().zip(&m).for_each(|(x, y)| *x += w * y);
    }
    let (final_stats, _) = Stats::from_moments(ctx, &moments, model.couplings(), None);

    let mut report = ctx.report(Method::Sampled, Some(optimizer));
    report.warnings.extend(warnings);
    report.iterations = iteration;
    report.converged = converged;
    report.stop_reason = stop;
    report.history = history.finish();
    report.max_moment_error = final_stats.max_moment_error;
    report.gradient_norm = final_stats.gradient_norm;
    report.max_gradient = final_stats.max_gradient;
    report.correlation_r = final_stats.correlation_r;
    report.swap_acceptance = swap_acceptance;
    report.message = Some(format!(
        "chain averages over {} chains × {EVALUATION_SWEEPS} sweeps: largest moment error {:.4}, \
         r = {}",
        cfg.chains,
        final_stats.max_moment_error,
        final_stats
            .correlation_r
            .map_or("n/a".into(), |r| format!("{r:.4}"))
    ));
    let end_evidence = ergodicity_check(ctx, &kernel, beta)?;
    let evidence: Vec<String> = [
        start_evidence.map(|e| format!("with the starting couplings: {e}")),
        end_evidence.map(|e| format!("with the trained couplings: {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !evidence.is_empty() {
        report.ergodicity_broken = true;
        report.ergodicity_warning = Some(evidence.join(" "));
    }
    if ctx.can_enumerate() {
        finish_exact(ctx, &mut model, &mut report)?;
    }
    Ok(Trained { model, report })
}

/// Run chain groups, each started from one training pattern (the heaviest, then those farthest
/// from the ones already chosen), and compare their averages. Returns the evidence when two
/// groups disagree by more than max(0.1, 4 × the spread between halves of one group).
fn ergodicity_check(
    ctx: &Context,
    kernel: &Kernel,
    beta: f64,
) -> Result<Option<String>, EngineError> {
    let cfg = ctx.cfg;
    let pats = ctx.data.patterns();
    let groups = ERGODICITY_GROUPS.min(pats.len());
    if groups < 2 {
        return Ok(None);
    }
    let mut order: Vec<usize> = (0..pats.len()).collect();
    order.sort_by(|&a, &b| ctx.weights[b].total_cmp(&ctx.weights[a]).then(a.cmp(&b)));
    let candidates = &order[..order.len().min(200)];
    let mut chosen = vec![order[0]];
    while chosen.len() < groups {
        let next = candidates
            .iter()
            .copied()
            .filter(|c| !chosen.contains(c))
            .max_by_key(|&c| {
                let d = chosen
                    .iter()
                    .map(|&k| pats[k].hamming(&pats[c]))
                    .min()
                    .unwrap_or(0);
                (d, std::cmp::Reverse(c))
            });
        match next {
            Some(c) => chosen.push(c),
            None => break,
        }
    }
    let per = (cfg.chains / chosen.len()).max(8) & !1;
    let starts: Vec<_> = chosen
        .iter()
        .flat_map(|&k| std::iter::repeat_n(pats[k].clone(), per))
        .collect();
    let mut chains = Chains::from_patterns(&starts);
    let mut plan = Plan::fixed(beta, EVALUATION_SWEEPS);
    plan.burn_in = EVALUATION_SWEEPS / 2;
    plan.record = true;
    plan.thin = 2;
    let run = sample(
        kernel,
        &mut chains,
        &plan,
        step_seed(cfg.seed, 0, 0xE6C0),
        ctx.interrupt,
    )?;
    // Group g owns chains [g·per, (g+1)·per); halves by chain parity.
    let mut split: Vec<[Vec<super::spins::Pattern>; 2]> = (0..chosen.len())
        .map(|_| [Vec::new(), Vec::new()])
        .collect();
    for s in run.samples {
        split[s.chain / per][s.chain % 2].push(s.pattern);
    }
    let mut means = Vec::new();
    let mut noise = 0.0f64;
    for halves in &split {
        let a = chain_moments(&ctx.set, &halves[0]);
        let b = chain_moments(&ctx.set, &halves[1]);
        for (x, y) in a.iter().zip(&b) {
            noise = noise.max((x - y).abs());
        }
        means.push(
            a.iter()
                .zip(&b)
                .map(|(x, y)| 0.5 * (x + y))
                .collect::<Vec<f64>>(),
        );
    }
    let threshold = (4.0 * noise).max(0.1);
    let mut worst: Option<(f64, usize, usize, usize)> = None;
    for g in 0..means.len() {
        for h in g + 1..means.len() {
            for (s, (x, y)) in means[g].iter().zip(&means[h]).enumerate() {
                let d = (x - y).abs();
                if d > threshold && worst.is_none_or(|w| d > w.0) {
                    worst = Some((d, g, h, s));
                }
            }
        }
    }
    Ok(worst.map(|(d, g, h, s)| {
        let members: Vec<u32> = ctx.set.subset(s).to_vec();
        format!(
            "ergodicity broken: {per} chains started at training pattern {} and {per} started at \
             pattern {} disagree about ⟨χ_S⟩ for S = {members:?}: {:.3} vs {:.3} (difference \
             {d:.3}; the two halves of one group differ by at most {noise:.3}). The model has \
             several free-energy minima the chains do not cross: its sampled averages are biased; \
             try parallel_tempering or one model per minimum.",
            pats[chosen[g]], pats[chosen[h]], means[g][s], means[h][s]
        )
    }))
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

const CHECKPOINT_MAGIC: [u8; 4] = *b"BSTK";
const CHECKPOINT_VERSION: u16 = 1;

/// The state a run can be resumed from. Layout: magic `BSTK`, version u16, method u8,
/// optimizer u8, iteration u64, seconds f64, then four length-prefixed (u64) sections, each a
/// [`codec`] blob with its own checksum: fingerprint (f64s), couplings (f64s), optimiser state
/// (f64s), chains (spin rows, or empty); then a CRC-32 of everything before it.
#[derive(Clone, Debug, PartialEq)]
struct Checkpoint {
    method: u8,
    optimizer: u8,
    iteration: usize,
    seconds: f64,
    couplings: Vec<f64>,
    state: Vec<f64>,
    chains: Option<(usize, Vec<i8>)>,
    fingerprint: Vec<f64>,
}

fn resume_error(message: impl Into<String>) -> EngineError {
    EngineError::invalid("resume", message)
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&CHECKPOINT_MAGIC);
        out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        out.push(self.method);
        out.push(self.optimizer);
        out.extend_from_slice(&(self.iteration as u64).to_le_bytes());
        out.extend_from_slice(&self.seconds.to_le_bytes());
        let chains = match &self.chains {
            Some((n, spins)) => codec::encode_spin_rows(*n, spins).unwrap_or_default(),
            None => Vec::new(),
        };
        for section in [
            codec::encode_f64s(&self.fingerprint),
            codec::encode_f64s(&self.couplings),
            codec::encode_f64s(&self.state),
            chains,
        ] {
            out.extend_from_slice(&(section.len() as u64).to_le_bytes());
            out.extend_from_slice(&section);
        }
        let crc = codec::crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, EngineError> {
        if bytes.len() < 4 + 2 + 2 + 8 + 8 + 4 {
            return Err(resume_error("the checkpoint is truncated"));
        }
        if bytes[..4] != CHECKPOINT_MAGIC {
            return Err(resume_error(
                "not a training checkpoint (wrong magic bytes)",
            ));
        }
        let body = bytes.len() - 4;
        let stored = u32::from_le_bytes(bytes[body..].try_into().expect("4 bytes"));
        if stored != codec::crc32(&bytes[..body]) {
            return Err(resume_error(
                "checksum mismatch: the checkpoint is truncated or corrupted",
            ));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != CHECKPOINT_VERSION {
            return Err(resume_error(format!(
                "unsupported checkpoint version {version} (this build reads {CHECKPOINT_VERSION})"
            )));
        }
        let method = bytes[6];
        let optimizer = bytes[7];
        let iteration = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        let seconds = f64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        let mut pos = 24;
        let mut sections = Vec::new();
        for _ in 0..4 {
            if pos + 8 > body {
                return Err(resume_error("the checkpoint is truncated"));
            }
            let len = u64::from_le_bytes(bytes[pos..pos + 8].try_into().expect("8 bytes"));
            pos += 8;
            if len > (body - pos) as u64 {
                return Err(resume_error("the checkpoint is truncated"));
            }
            sections.push(&bytes[pos..pos + len as usize]);
            pos += len as usize;
        }
        if pos != body {
            return Err(resume_error(
                "unexpected bytes at the end of the checkpoint",
            ));
        }
        let wrap = |e: EngineError| resume_error(format!("checkpoint section: {e}"));
        let fingerprint = codec::decode_f64s(sections[0]).map_err(wrap)?;
        let couplings = codec::decode_f64s(sections[1]).map_err(wrap)?;
        let state = codec::decode_f64s(sections[2]).map_err(wrap)?;
        let chains = if sections[3].is_empty() {
            None
        } else {
            Some(codec::decode_spin_rows(sections[3]).map_err(wrap)?)
        };
        Ok(Self {
            method,
            optimizer,
            iteration,
            seconds: if seconds.is_finite() && seconds >= 0.0 {
                seconds
            } else {
                0.0
            },
            couplings,
            state,
            chains,
            fingerprint,
        })
    }

    fn check_matches(
        &self,
        cfg: &TrainingConfig,
        data: &Dataset,
        set: &InteractionSet,
    ) -> Result<(), EngineError> {
        if self.method != cfg.method.code() {
            return Err(resume_error(format!(
                "the checkpoint is from another method (this run is {})",
                cfg.method.as_str()
            )));
        }
        let want = [
            data.n() as f64,
            set.len() as f64,
            cfg.temperature,
            cfg.l2,
            data.total() as f64,
            data.len() as f64,
        ];
        if self.fingerprint != want {
            return Err(resume_error(
                "the checkpoint belongs to another dataset, description, temperature or l2",
            ));
        }
        if self.couplings.len() != set.len() || self.couplings.iter().any(|v| !v.is_finite()) {
            return Err(resume_error(
                "the checkpoint's couplings do not fit the description",
            ));
        }
        if let Some((n, spins)) = &self.chains
            && (*n != data.n() || spins.len() % n != 0)
        {
            return Err(resume_error(
                "the checkpoint's chains do not fit the dataset",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::simd::{Simd, available};

    /// A pseudo-likelihood site fit (features, Newton with its Hessian, line search) gives the
    /// same bits at every vector level the CPU has. Sizes are not multiples of any vector width,
    /// so the tails of every loop run too.
    #[test]
    fn site_fits_are_identical_at_every_simd_level() {
        let (n, m) = (11, 301);
        let mut r = ChainRng::new(5, 0);
        // Spin 0 copies spin 1 in 80 % of the rows, so the fit has something to find.
        let mut spins: Vec<i8> = (0..m * n).map(|_| r.spin()).collect();
        for row in spins.chunks_exact_mut(n) {
            if r.next_f64() < 0.8 {
                row[0] = row[1];
            }
        }
        let weights = vec![1.0 / m as f64; m];
        let others: Vec<Vec<u32>> = std::iter::once(Vec::new())
            .chain((1..n as u32).map(|b| vec![b]))
            .collect();
        let solve = |level: Simd| {
            let input = SiteInput {
                a: 0,
                n,
                spins: &spins,
                others: &others,
                weights: &weights,
                temperature: 1.0,
                l2: 0.01,
            };
            fit_site_at(level, input, true, 100, 1e-10, &Interrupt::new()).unwrap()
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let base = solve(Simd::Base);
        assert!(
            base.2 <= 1e-10 && base.3 >= 2,
            "converged in Newton steps: {base:?}"
        );
        assert!(
            base.0[1].abs() > 0.1,
            "the coupling to spin 1 was found: {:?}",
            base.0
        );
        for level in available() {
            let x = solve(level);
            assert_eq!(bits(&x.0), bits(&base.0), "{level:?}: coefficients");
            assert_eq!(x.1.to_bits(), base.1.to_bits(), "{level:?}: objective");
            assert_eq!(x.3, base.3, "{level:?}: iterations");
        }
    }
}
