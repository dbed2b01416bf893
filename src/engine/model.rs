//! A generative model: couplings J_S over an interaction set, the energy
//! E(σ) = −J_∅ − Σ_{S∈𝒮} J_S χ_S(σ), and local fields h_a(σ) = Σ_{S∋a} J_S Π_{b∈S∖a} σ_b.
//!
//! This module holds the reference (clear, allocation-free but not vectorised) definitions. The
//! samplers build faster kernels from a `Model`; every kernel is tested against these functions.

use super::EngineError;
use super::interactions::{Description, Incidence, InteractionSet};
use std::sync::Arc;

/// Couplings J_S over an interaction set, plus the constant J_∅.
#[derive(Clone, Debug)]
pub struct Model {
    set: Arc<InteractionSet>,
    couplings: Vec<f64>,
    offset: f64,
    incidence: Option<Arc<Incidence>>,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.set == other.set && self.couplings == other.couplings && self.offset == other.offset
    }
}

impl Model {
    /// A model with the given couplings (aligned with the set's members) and J_∅.
    pub fn new(set: InteractionSet, couplings: Vec<f64>, offset: f64) -> Result<Self, EngineError> {
        Self::with_shared_set(Arc::new(set), couplings, offset)
    }

    /// As [`Model::new`], sharing an interaction set between many models (training, experts).
    pub fn with_shared_set(
        set: Arc<InteractionSet>,
        couplings: Vec<f64>,
        offset: f64,
    ) -> Result<Self, EngineError> {
        if couplings.len() != set.len() {
            return Err(EngineError::invalid(
                "couplings",
                format!(
                    "{} couplings given for an interaction set of {} members",
                    couplings.len(),
                    set.len()
                ),
            ));
        }
        if let Some(i) = couplings.iter().position(|j| !j.is_finite()) {
            return Err(EngineError::invalid(
                format!("couplings[{i}]"),
                "coupling is not a finite number",
            ));
        }
        if !offset.is_finite() {
            return Err(EngineError::invalid("offset", "J_∅ is not a finite number"));
        }
        let incidence = if set.is_full() {
            None
        } else {
            Some(Arc::new(set.incidence()))
        };
        Ok(Self {
            set,
            couplings,
            offset,
            incidence,
        })
    }

    /// All couplings zero: the infinite-temperature (uniform) model.
    pub fn zeros(set: InteractionSet) -> Self {
        let m = set.len();
        Self::new(set, vec![0.0; m], 0.0).expect("zeros are valid")
    }

    pub fn n(&self) -> usize {
        self.set.n()
    }

    pub fn set(&self) -> &InteractionSet {
        &self.set
    }

    pub fn shared_set(&self) -> Arc<InteractionSet> {
        self.set.clone()
    }

    pub fn description(&self) -> &Description {
        self.set.description()
    }

    /// J_S, aligned with `set()`'s members.
    pub fn couplings(&self) -> &[f64] {
        &self.couplings
    }

    pub fn couplings_mut(&mut self) -> &mut [f64] {
        &mut self.couplings
    }

    /// J_∅.
    pub fn offset(&self) -> f64 {
        self.offset
    }

    pub fn set_offset(&mut self, offset: f64) {
        self.offset = offset;
    }

    /// Spin → members containing it (not built for the full description).
    pub fn incidence(&self) -> Option<&Incidence> {
        self.incidence.as_deref()
    }

    /// True when every member has |S| ≤ 2 (the dense pairwise fast path applies).
    pub fn is_pairwise(&self) -> bool {
        self.set.max_order() <= 2
    }

    /// E(σ) = −J_∅ − Σ_S J_S χ_S(σ).
    pub fn energy(&self, spins: &[i8]) -> f64 {
        debug_assert_eq!(spins.len(), self.n());
        let mut e = -self.offset;
        for (i, j) in self.couplings.iter().enumerate() {
            if *j != 0.0 {
                e -= j * self.set.subset(i).chi(spins) as f64;
            }
        }
        e
    }

    /// h_a(σ) = Σ_{S∋a} J_S Π_{b∈S∖a} σ_b, so that E depends on σ_a as −σ_a h_a.
    pub fn local_field(&self, spins: &[i8], a: usize) -> f64 {
        let mut h = 0.0;
        match &self.incidence {
            Some(inc) => {
                for &i in inc.of(a) {
                    let s = self.set.subset(i as usize);
                    // χ_S / σ_a = χ_S σ_a for σ_a = ±1.
                    h += self.couplings[i as usize] * (s.chi(spins) * spins[a]) as f64;
                }
            }
            None => {
                // Full description: the members containing a are the masks with bit a set.
                let n = self.n();
                let bit = 1u64 << a;
                for mask in 1u64..(1u64 << n) {
                    if mask & bit != 0 {
                        let s = super::interactions::Subset::Mask(mask);
                        h += self.couplings[(mask - 1) as usize] * (s.chi(spins) * spins[a]) as f64;
                    }
                }
            }
        }
        h
    }

    /// All local fields.
    pub fn local_fields(&self, spins: &[i8]) -> Vec<f64> {
        (0..self.n()).map(|a| self.local_field(spins, a)).collect()
    }

    /// ΔE_a = E(σ with σ_a flipped) − E(σ) = 2 σ_a h_a.
    pub fn flip_energy(&self, spins: &[i8], a: usize) -> f64 {
        2.0 * spins[a] as f64 * self.local_field(spins, a)
    }

    /// Field and coupling matrix of a pairwise model: E = −J_∅ − Σ_a h_a σ_a − Σ_{a<b} W_ab σ_a σ_b.
    /// `None` if some member has |S| > 2.
    pub fn pairwise(&self) -> Option<Pairwise> {
        if !self.is_pairwise() {
            return None;
        }
        let n = self.n();
        let mut p = Pairwise {
            n,
            field: vec![0.0; n],
            coupling: vec![0.0; n * n],
            offset: self.offset,
        };
        for (i, &j) in self.couplings.iter().enumerate() {
            let s = self.set.subset(i);
            let mut it = s.iter();
            match (it.next(), it.next()) {
                (Some(a), None) => p.field[a as usize] += j,
                (Some(a), Some(b)) => {
                    p.coupling[a as usize * n + b as usize] += j;
                    p.coupling[b as usize * n + a as usize] += j;
                }
                _ => unreachable!("members are non-empty"),
            }
        }
        Some(p)
    }
}

/// A pairwise model in dense form: E = −offset − Σ_a field_a σ_a − Σ_{a<b} coupling_ab σ_a σ_b,
/// `coupling` row-major, symmetric, zero diagonal.
#[derive(Clone, Debug, PartialEq)]
pub struct Pairwise {
    pub n: usize,
    pub field: Vec<f64>,
    pub coupling: Vec<f64>,
    pub offset: f64,
}

impl Pairwise {
    pub fn energy(&self, spins: &[i8]) -> f64 {
        let n = self.n;
        let mut e = -self.offset;
        for a in 0..n {
            let sa = spins[a] as f64;
            e -= self.field[a] * sa;
            let row = &self.coupling[a * n..(a + 1) * n];
            let mut acc = 0.0;
            for b in a + 1..n {
                acc += row[b] * spins[b] as f64;
            }
            e -= sa * acc;
        }
        e
    }

    /// Back to a `Model` of order 2 over all pairs (couplings with |W_ab| = 0 kept as zeros).
    pub fn to_model(&self) -> Model {
        let set = InteractionSet::order(self.n, 2.min(self.n), u64::MAX).expect("order 2 is valid");
        let mut j = Vec::with_capacity(set.len());
        for s in set.iter() {
            let v: Vec<u32> = s.to_vec();
            j.push(match v.as_slice() {
                [a] => self.field[*a as usize],
                [a, b] => self.coupling[*a as usize * self.n + *b as usize],
                _ => unreachable!(),
            });
        }
        Model::new(set, j, self.offset).expect("finite couplings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::ChainRng;

    pub(crate) fn random_model(set: InteractionSet, seed: u64) -> Model {
        let mut r = ChainRng::new(seed, 0);
        let j = (0..set.len()).map(|_| r.normal() * 0.5).collect();
        Model::new(set, j, 0.3).unwrap()
    }

    #[test]
    fn flip_energy_equals_energy_difference() {
        let sets = [
            InteractionSet::order(7, 3, u64::MAX).unwrap(),
            InteractionSet::full(5).unwrap(),
            InteractionSet::custom(6, &[vec![0, 1, 2, 3], vec![5], vec![2, 4]]).unwrap(),
        ];
        for (k, set) in sets.into_iter().enumerate() {
            let m = random_model(set, k as u64);
            let mut r = ChainRng::new(99, k as u64);
            let mut s: Vec<i8> = (0..m.n()).map(|_| r.spin()).collect();
            for a in 0..m.n() {
                let e0 = m.energy(&s);
                let de = m.flip_energy(&s, a);
                s[a] = -s[a];
                let e1 = m.energy(&s);
                assert!((e1 - e0 - de).abs() < 1e-12, "set {k} spin {a}");
            }
        }
    }

    #[test]
    fn pairwise_dense_form_agrees() {
        let m = random_model(InteractionSet::order(9, 2, u64::MAX).unwrap(), 3);
        let p = m.pairwise().unwrap();
        let mut r = ChainRng::new(5, 0);
        for _ in 0..20 {
            let s: Vec<i8> = (0..9).map(|_| r.spin()).collect();
            assert!((p.energy(&s) - m.energy(&s)).abs() < 1e-12);
        }
        assert_eq!(p.to_model(), m);
        assert!(
            random_model(InteractionSet::order(4, 3, u64::MAX).unwrap(), 1)
                .pairwise()
                .is_none()
        );
    }
}
