//! The full description (model.md §3): the training set as a library of bound states, and its
//! reduction to fewer couplings.
//!
//! Every represented pattern ξ^μ gets the target energy E_μ = −T ln w_μ, every other configuration
//! the ceiling E_u. The couplings are the Walsh–Hadamard transform of that table:
//! J_S = 2^{−N} Σ_μ Δ_μ χ_S(ξ^μ) for S ≠ ∅ with gaps Δ_μ = E_u − E_μ, and
//! J_∅ = −E_u + 2^{−N} Σ_μ Δ_μ.

use super::exact::{WEIGHT_SUM_TOLERANCE, check_distinct};
use super::interactions::{FULL_MAX_SPINS, InteractionSet};
use super::model::Model;
use super::spins::Pattern;
use super::{EngineError, wht};
use std::sync::Arc;

/// How the ceiling energy E_u of the non-represented configurations is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ceiling {
    /// Requested P_lib = 1 − ε ∈ (0, 1): E_u = T ln((2^N − M)(1 − ε)/ε).
    LibraryProbability(f64),
    /// E_u given directly.
    Energy(f64),
}

/// A full-description model and what it implies.
#[derive(Clone, Debug)]
pub struct FullDescription {
    /// J_S for every non-empty S (member i ↔ mask i + 1), J_∅ as the offset.
    pub model: Model,
    /// The temperature T the targets were set at.
    pub temperature: f64,
    /// E_u.
    pub ceiling_energy: f64,
    /// E_μ = −T ln w_μ, aligned with the input patterns (weights normalised to Σ w = 1).
    pub target_energies: Vec<f64>,
    /// Δ_μ = E_u − E_μ.
    pub gaps: Vec<f64>,
    /// 2^N − M.
    pub non_represented: u64,
    /// P_lib = Σ_μ p(ξ^μ) = 1 / (1 + (2^N − M) e^{−E_u/T}) at T.
    pub library_probability: f64,
    /// T_× where P_lib(T_×) = 1/2 with the couplings held fixed: the root of
    /// Σ_μ e^{Δ_μ/T} = 2^N − M (T_× = Δ / ln((2^N − M)/M) for uniform depth Δ). `None` when some
    /// Δ_μ ≤ 0 or 2^N − M ≤ M (the library never outweighs the continuum, or never melts).
    pub melting_temperature: Option<f64>,
}

impl FullDescription {
    /// P_lib(T') = Σ_μ e^{Δ_μ/T'} / (Σ_μ e^{Δ_μ/T'} + 2^N − M) for this model at another
    /// temperature T'.
    pub fn library_probability_at(&self, temperature: f64) -> f64 {
        library_probability_at(&self.gaps, self.non_represented, temperature)
    }
}

fn library_probability_at(gaps: &[f64], non_represented: u64, t: f64) -> f64 {
    let lse = log_sum_exp(gaps.iter().map(|d| d / t));
    1.0 / (1.0 + ((non_represented as f64).ln() - lse).exp())
}

fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    max + xs.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// The full description of distinct `patterns` with weights w_μ (> 0, Σ w = 1) at temperature T.
/// Couplings: J = −2^{−N} H^T E in the model's sign convention, computed from the deviations
/// E_i − E_u (non-zero only at the M patterns) so that rounding scales with the gaps, not with
/// 2^N E_u.
pub fn full_description(
    n: usize,
    patterns: &[Pattern],
    weights: &[f64],
    temperature: f64,
    ceiling: Ceiling,
) -> Result<FullDescription, EngineError> {
    if n == 0 || n > FULL_MAX_SPINS {
        return Err(EngineError::invalid(
            "n_spins",
            format!("the full description needs 1 ≤ N ≤ {FULL_MAX_SPINS}, got N = {n}"),
        ));
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(EngineError::invalid(
            "temperature",
            format!("temperature must be a finite number > 0, got {temperature}"),
        ));
    }
    if patterns.is_empty() {
        return Err(EngineError::invalid(
            "patterns",
            "the full description needs at least one pattern",
        ));
    }
    check_distinct(patterns, n)?;
    if weights.len() != patterns.len() {
        return Err(EngineError::invalid(
            "weights",
            format!(
                "{} weights given for {} patterns",
                weights.len(),
                patterns.len()
            ),
        ));
    }
    for (i, &w) in weights.iter().enumerate() {
        if !(w.is_finite() && w > 0.0) {
            return Err(EngineError::invalid(
                format!("weights[{i}]"),
                format!(
                    "a weight must be a finite number > 0, got {w} (a pattern of weight 0 is \
                     not represented: leave it out)"
                ),
            ));
        }
    }
    let sum: f64 = weights.iter().sum();
    if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
        return Err(EngineError::invalid(
            "weights",
            format!("weights must sum to 1, they sum to {sum}"),
        ));
    }
    let states = 1u64 << n;
    let m = patterns.len() as u64;
    if m >= states {
        return Err(EngineError::invalid(
            "patterns",
            format!(
                "all 2^N = {states} configurations are training patterns, so there is no \
                 non-represented state to put at the ceiling energy and the library probability \
                 is 1 whatever E_u is; the model is just E_μ = −T ln w_μ"
            ),
        ));
    }
    let non_represented = states - m;
    let t = temperature;
    let ceiling_energy = match ceiling {
        Ceiling::LibraryProbability(q) => {
            if !(q.is_finite() && q > 0.0 && q < 1.0) {
                return Err(EngineError::invalid(
                    "library_probability",
                    format!(
                        "the library probability 1 − ε must lie strictly between 0 and 1, got {q}"
                    ),
                ));
            }
            t * ((non_represented as f64).ln() + q.ln() - (-q).ln_1p())
        }
        Ceiling::Energy(e) => {
            if !e.is_finite() {
                return Err(EngineError::invalid(
                    "ceiling_energy",
                    format!("the ceiling energy must be a finite number, got {e}"),
                ));
            }
            e
        }
    };
    let target_energies: Vec<f64> = weights.iter().map(|&w| -t * (w / sum).ln()).collect();
    let gaps: Vec<f64> = target_energies.iter().map(|e| ceiling_energy - e).collect();

    let mut x = vec![0.0; states as usize];
    for (p, d) in patterns.iter().zip(&gaps) {
        x[p.index() as usize] = -d;
    }
    wht::couplings_from_energies(&mut x);
    let offset = x[0] - ceiling_energy;
    x.remove(0);
    let model = Model::new(InteractionSet::full(n)?, x, offset).map_err(|e| match e {
        EngineError::Invalid { .. } => EngineError::Numerical(format!(
            "the couplings of the full description are not finite ({e}); the ceiling energy or \
             the weights are too extreme"
        )),
        other => other,
    })?;

    let library_probability =
        1.0 / (1.0 + ((non_represented as f64).ln() - ceiling_energy / t).exp());
    let melting_temperature = melting_temperature(&gaps, non_represented);
    Ok(FullDescription {
        model,
        temperature,
        ceiling_energy,
        target_energies,
        gaps,
        non_represented,
        library_probability,
        melting_temperature,
    })
}

/// Root of Σ_μ e^{Δ_μ/T} = K by bisection. The left side decreases in T when every Δ_μ > 0 and is
/// bracketed by M e^{Δ_min/T} and M e^{Δ_max/T}, so the root lies in
/// [Δ_min, Δ_max] / ln(K/M).
fn melting_temperature(gaps: &[f64], non_represented: u64) -> Option<f64> {
    let m = gaps.len() as f64;
    let k = non_represented as f64;
    if gaps.iter().any(|&d| d <= 0.0) || k <= m {
        return None;
    }
    let log_ratio = (k / m).ln();
    let dmin = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let dmax = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut lo, mut hi) = (dmin / log_ratio, dmax / log_ratio);
    let log_k = k.ln();
    for _ in 0..200 {
        if hi - lo <= 4.0 * f64::EPSILON * hi {
            break;
        }
        let mid = 0.5 * (lo + hi);
        if log_sum_exp(gaps.iter().map(|d| d / mid)) > log_k {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Keep only the couplings with |S| ≤ k (the reduction of model.md §3), as a model over
/// `InteractionSet::order(n, k)` (members by size, then lexicographically); J_∅ is kept.
pub fn truncate(model: &Model, k: usize) -> Result<Model, EngineError> {
    let set = InteractionSet::order(model.n(), k, 1 << FULL_MAX_SPINS)?;
    project(model, Arc::new(set))
}

/// Re-express a model on another interaction set over the same spins: J'_S = J_S for every
/// member S of `target` that the model has, 0 for the others; couplings outside `target` are
/// dropped and J_∅ is kept.
pub fn project(model: &Model, target: Arc<InteractionSet>) -> Result<Model, EngineError> {
    if target.n() != model.n() {
        return Err(EngineError::invalid(
            "interactions",
            format!(
                "the target set is over {} spins, the model over {}",
                target.n(),
                model.n()
            ),
        ));
    }
    let source = model.couplings();
    let couplings: Vec<f64> = if model.set().is_full() {
        (0..target.len())
            .map(|i| source[(target.mask(i) - 1) as usize])
            .collect()
    } else {
        let lookup = model.set().lookup();
        target
            .iter()
            .map(|s| lookup.get(&s.to_vec()).map_or(0.0, |&i| source[i]))
            .collect()
    };
    Model::with_shared_set(target, couplings, model.offset())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::spins::spins_from_index;

    fn pats(bits: &[&str]) -> Vec<Pattern> {
        bits.iter()
            .map(|b| Pattern::parse_bits(b).unwrap())
            .collect()
    }

    #[test]
    fn energies_are_the_targets() {
        let p = pats(&["1100", "0110", "1111"]);
        let w = [0.5, 0.3, 0.2];
        let fd = full_description(4, &p, &w, 0.7, Ceiling::LibraryProbability(0.9)).unwrap();
        let mut s = [0i8; 4];
        for i in 0..16u64 {
            spins_from_index(i, &mut s);
            let e = fd.model.energy(&s);
            let want = p
                .iter()
                .position(|q| q.index() == i)
                .map_or(fd.ceiling_energy, |mu| fd.target_energies[mu]);
            // 15 couplings of size ≤ max Δ: rounding ≪ 1e-13.
            assert!((e - want).abs() < 1e-13, "state {i}: {e} vs {want}");
        }
        assert!((fd.library_probability - 0.9).abs() < 1e-15);
        // Uniform gaps would give Δ/ln(K/M); here the gaps differ, so check the defining equation.
        let tx = fd.melting_temperature.unwrap();
        assert!((fd.library_probability_at(tx) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn uniform_depth_melting_closed_form() {
        let p = pats(&["101", "010"]);
        let fd = full_description(3, &p, &[0.5, 0.5], 1.0, Ceiling::Energy(4.0)).unwrap();
        let delta = 4.0 - 2f64.ln();
        let want = delta / (6.0f64 / 2.0).ln();
        assert!((fd.melting_temperature.unwrap() - want).abs() < 1e-14 * want);
    }

    #[test]
    fn validation_names_fields() {
        let p = pats(&["10", "01"]);
        let field = |r: Result<FullDescription, EngineError>| match r {
            Err(EngineError::Invalid { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        };
        let lp = Ceiling::LibraryProbability(0.9);
        assert_eq!(
            field(full_description(
                2,
                &p,
                &[0.5, 0.5],
                1.0,
                Ceiling::LibraryProbability(1.0)
            )),
            "library_probability"
        );
        assert_eq!(
            field(full_description(
                2,
                &p,
                &[0.5, 0.5],
                1.0,
                Ceiling::Energy(f64::NAN)
            )),
            "ceiling_energy"
        );
        assert_eq!(
            field(full_description(2, &p, &[0.5, 0.6], 1.0, lp)),
            "weights"
        );
        assert_eq!(
            field(full_description(2, &p, &[1.0, 0.0], 1.0, lp)),
            "weights[1]"
        );
        assert_eq!(field(full_description(2, &p, &[1.0], 1.0, lp)), "weights");
        assert_eq!(
            field(full_description(2, &p, &[0.5, 0.5], 0.0, lp)),
            "temperature"
        );
        let dup = pats(&["10", "10"]);
        assert_eq!(
            field(full_description(2, &dup, &[0.5, 0.5], 1.0, lp)),
            "patterns[1]"
        );
        let all = pats(&["00", "01", "10", "11"]);
        assert_eq!(
            field(full_description(2, &all, &[0.25; 4], 1.0, lp)),
            "patterns"
        );
        assert_eq!(
            field(full_description(25, &p, &[0.5, 0.5], 1.0, lp)),
            "n_spins"
        );
    }

    #[test]
    fn projection_keeps_matching_couplings() {
        let p = pats(&["1100", "0110", "1011"]);
        let fd = full_description(4, &p, &[0.2, 0.3, 0.5], 1.0, Ceiling::Energy(5.0)).unwrap();
        let t2 = truncate(&fd.model, 2).unwrap();
        assert_eq!(t2.set().len(), 4 + 6);
        for (i, s) in t2.set().iter().enumerate() {
            let mask = s.iter().fold(0u64, |m, a| m | 1 << a);
            assert_eq!(t2.couplings()[i], fd.model.couplings()[mask as usize - 1]);
        }
        assert_eq!(t2.offset(), fd.model.offset());
        let custom = Arc::new(InteractionSet::custom(4, &[vec![3, 1, 0], vec![2]]).unwrap());
        let c = project(&t2, custom.clone()).unwrap();
        assert_eq!(
            c.couplings()[0],
            0.0,
            "triplet absent from the order-2 model"
        );
        assert_eq!(c.couplings()[1], t2.couplings()[2]);
        let back = project(&fd.model, custom).unwrap();
        assert_eq!(back.couplings()[0], fd.model.couplings()[0b1011 - 1]);
        let full_again = project(&fd.model, Arc::new(InteractionSet::full(4).unwrap())).unwrap();
        assert_eq!(full_again, fd.model);
    }
}
