//! Retrieval dynamics (model.md §6): start at a query (unknown bits random), run heat-bath sweeps at
//! T with the known bits clamped for a while, then quench to zero temperature. Matching the end
//! states to the stored minima, and the verdict, are the caller's.

use super::EngineError;
use super::control::{Interrupt, SPIN_FLIP_ATTEMPTS};
use super::quench::{Quenched, quench_with_fields};
use super::rng::ChainRng;
use super::sampler::{ChainState, Kernel, Rule, SiteOrder, sweep_lockstep};
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
    let restarts = opts.restarts;
    if restarts == 0 || n == 0 {
        return Ok(Vec::new());
    }
    // Restarts run in blocks (one per thread): a block's chains sweep in lock step on the dense
    // path, reusing each coupling row; every restart's trajectory is the same whatever the
    // blocking.
    let threads = rayon::current_num_threads().max(1);
    let block = restarts.div_ceil(threads);
    let mut spins = vec![0i8; restarts * n];
    let mut rngs: Vec<ChainRng> = (0..restarts)
        .map(|r| ChainRng::new(opts.seed, r as u64))
        .collect();
    for (s, rng) in spins.chunks_mut(n).zip(rngs.iter_mut()) {
        for (x, q) in s.iter_mut().zip(query) {
            *x = match q {
                Some(true) => 1,
                Some(false) => -1,
                None => rng.spin(),
            };
        }
    }
    let clamped: Vec<bool> = (0..restarts)
        .flat_map(|_| {
            query
                .iter()
                .map(|q| q.is_some() && opts.clamp_known_sweeps > 0)
        })
        .collect();
    let results: Vec<Result<Vec<Quenched>, EngineError>> = spins
        .par_chunks_mut(n * block)
        .zip(clamped.par_chunks(n * block))
        .zip(rngs.par_chunks_mut(block))
        .map(|((spins, clamped), rngs)| {
            let mut states = ChainState::new_block(kernel, spins, clamped);
            let lockstep = states.len() > 1 && kernel.is_dense();
            let mut outcome = Ok(());
            for s in 0..opts.sweeps {
                if s == opts.clamp_known_sweeps && s > 0 {
                    states.iter_mut().for_each(|st| st.unclamp());
                }
                if s.is_multiple_of(4) && interrupt.is_raised() {
                    outcome = Err(EngineError::Interrupted);
                    break;
                }
                if lockstep {
                    sweep_lockstep(kernel, &mut states, rngs, Rule::HeatBath, beta);
                } else {
                    for (st, rng) in states.iter_mut().zip(rngs.iter_mut()) {
                        st.sweep(kernel, Rule::HeatBath, SiteOrder::Sequential, beta, rng);
                    }
                }
            }
            SPIN_FLIP_ATTEMPTS.add(states.iter().map(|s| s.attempts).sum());
            outcome?;
            Ok(states
                .into_iter()
                .map(|st| {
                    let mut h = st.h;
                    quench_with_fields(kernel, st.spins, &mut h, None, true)
                })
                .collect())
        })
        .collect();
    let mut out = Vec::with_capacity(restarts);
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}
