//! Zero-temperature quench (model.md §5): greedy steepest single-spin descent to a local minimum
//! of the energy, where σ_a h_a ≥ 0 for every free spin a (no single flip lowers the energy).

use super::sampler::Kernel;
use super::spins::Pattern;
use rayon::prelude::*;

/// Where a quench ended.
#[derive(Clone, Debug)]
pub struct Quenched {
    pub pattern: Pattern,
    pub energy: f64,
    /// Spins flipped on the way down.
    pub flips: usize,
}

/// Steepest descent from `spins` (changed in place): repeatedly flip the free spin with the most
/// negative ΔE_a = 2 σ_a h_a (ties go to the lowest index) until none is negative. Deterministic.
/// `clamped[a]` (if given) holds spin a fixed.
///
/// A flip is taken only if ΔE_a < −10^{−12}·max|h|, so rounding in the incrementally kept fields
/// cannot make the descent cycle.
pub fn quench(kernel: &Kernel, spins: &mut [i8], clamped: Option<&[bool]>) -> Quenched {
    let mut h = vec![0.0; kernel.n()];
    quench_with_fields(kernel, spins, &mut h, clamped, false)
}

/// As [`quench`], with a caller-provided field buffer: computed here unless `fields_ready` says it
/// already holds the local fields of `spins`.
pub(crate) fn quench_with_fields(
    kernel: &Kernel,
    spins: &mut [i8],
    h: &mut [f64],
    clamped: Option<&[bool]>,
    fields_ready: bool,
) -> Quenched {
    let n = kernel.n();
    assert_eq!(spins.len(), n, "spins do not match the model");
    if let Some(c) = clamped {
        assert_eq!(c.len(), n, "clamp mask does not match the model");
    }
    if !fields_ready {
        kernel.local_fields(spins, h);
    }
    let tol = -1e-12 * kernel.field_bound();
    let mut flips = 0usize;
    loop {
        let mut best = tol;
        let mut arg = usize::MAX;
        match clamped {
            None => {
                for a in 0..n {
                    let de = 2.0 * spins[a] as f64 * h[a];
                    if de < best {
                        best = de;
                        arg = a;
                    }
                }
            }
            Some(c) => {
                for a in 0..n {
                    let de = 2.0 * spins[a] as f64 * h[a];
                    if de < best && !c[a] {
                        best = de;
                        arg = a;
                    }
                }
            }
        }
        if arg == usize::MAX {
            break;
        }
        kernel.flip(spins, h, arg);
        flips += 1;
    }
    Quenched {
        pattern: Pattern::from_spins(spins),
        energy: kernel.energy_with_fields(spins, h),
        flips,
    }
}

/// [`quench`] from every start, in parallel; results in the order of `starts`.
pub fn quench_many(kernel: &Kernel, starts: &[Pattern]) -> Vec<Quenched> {
    starts
        .par_iter()
        .map_init(
            || (vec![0i8; kernel.n()], vec![0.0; kernel.n()]),
            |(spins, h), p| {
                p.write_spins(spins);
                quench_with_fields(kernel, spins, h, None, false)
            },
        )
        .collect()
}
