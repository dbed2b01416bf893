//! Retrieval dynamics (model.md §6): start at a query (unknown bits random), run heat-bath sweeps at
//! T with the known bits clamped for a while, then quench to zero temperature. Matching the end
//! states to the stored minima, and the verdict, are the caller's.

use super::EngineError;
use super::control::{Interrupt, SPIN_FLIP_ATTEMPTS};
use super::quench::{Quenched, quench_with_fields};
use super::rng::ChainRng;
use super::sampler::{ChainState, Kernel, Rule, SiteOrder};
use rayon::prelude::*;

/// How retrieval runs.
#[derive(Clone, Debug)]
pub struct RetrievalOptions {
    /// Sampling temperature T ≥ 0 (0: zero-temperature heat-bath, i.e. flip only downhill).
    pub temperature: f64,
    /// Heat-bath sweeps before the quench.
    pub sweeps: usize,
    /// Independent restarts (restart r uses `ChainRng::new(seed, r)`).
    pub restarts: usize,
    /// For the first this many sweeps the known bits are held at their query values.
    pub clamp_known_sweeps: usize,
    pub seed: u64,
}

/// One quenched end state per restart, in restart order. `query[a]` is `Some(bit)` for a known bit
/// (σ = 2b − 1), `None` for an unknown one.
pub fn retrieve(
    kernel: &Kernel,
    query: &[Option<bool>],
    opts: &RetrievalOptions,
    interrupt: &Interrupt,
) -> Result<Vec<Quenched>, EngineError> {
    let n = kernel.n();
    if query.len() != n {
        return Err(EngineError::invalid(
            "query",
            format!("query has {} bits, the model has {n} spins", query.len()),
        ));
    }
    let t = opts.temperature;
    if !(t.is_finite() && t >= 0.0) {
        return Err(EngineError::invalid(
            "temperature",
            format!("temperature must be a finite number ≥ 0, got {t}"),
        ));
    }
    interrupt.check()?;
    let beta = if t == 0.0 { f64::INFINITY } else { 1.0 / t };
    let known: Vec<bool> = query.iter().map(|q| q.is_some()).collect();
    let all: Vec<u32> = (0..n as u32).collect();
    (0..opts.restarts)
        .into_par_iter()
        .map(|r| {
            let mut rng = ChainRng::new(opts.seed, r as u64);
            let mut spins: Vec<i8> = query
                .iter()
                .map(|q| match q {
                    Some(true) => 1,
                    Some(false) => -1,
                    None => rng.spin(),
                })
                .collect();
            let mut st = ChainState::new(kernel, &mut spins, &known);
            for s in 0..opts.sweeps {
                if s == opts.clamp_known_sweeps {
                    st.free.clone_from(&all);
                }
                if s.is_multiple_of(4) && interrupt.is_raised() {
                    SPIN_FLIP_ATTEMPTS.add(st.attempts);
                    return Err(EngineError::Interrupted);
                }
                st.sweep(
                    kernel,
                    Rule::HeatBath,
                    SiteOrder::Sequential,
                    beta,
                    &mut rng,
                );
            }
            SPIN_FLIP_ATTEMPTS.add(st.attempts);
            let mut h = std::mem::take(&mut st.h);
            drop(st);
            Ok(quench_with_fields(kernel, &mut spins, &mut h, None, true))
        })
        .collect()
}
