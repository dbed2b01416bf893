//! Exact enumeration of all 2^N configurations (model.md §2 and §4): the energy table, the
//! partition function Z = Σ_σ e^{−E(σ)/T}, A = −T ln Z, ⟨E⟩, the entropy, the moments ⟨χ_S⟩,
//! library probabilities, log-likelihoods and the thermodynamic potential Φ.
//!
//! The table is built over fixed blocks of 2^14 states (the low bits vary, the high bits are the
//! block number), each walked in Gray-code order so that one step flips one spin and costs
//! O(degree of that spin). Blocks run in parallel; every reduction sums within a block in index
//! order and then over blocks in block order, so results do not depend on the number of threads.

use super::interactions::{Incidence, InteractionSet};
use super::model::{Model, Pairwise};
use super::spins::{Pattern, spins_from_index};
use super::wht;
use super::{EngineError, Interrupt};
use rayon::prelude::*;
use std::collections::HashMap;

/// Default cap on N for exact enumeration (a table of 2^24 f64 is 128 MiB).
pub const EXACT_MAX_SPINS: usize = 24;

/// Largest cap a caller may configure (a table of 2^30 f64 is 8 GiB).
pub const EXACT_HARD_MAX_SPINS: usize = 30;

/// log2 of the number of states per block: the unit of parallel work and of interrupt checks.
const BLOCK_LOG: usize = 14;

/// How the energy table is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnergyMethod {
    /// Full description → transform; |S| ≤ 2 → dense Gray walk; otherwise the Gray walk over the
    /// incidence lists unless the mean spin degree exceeds `GRAY_MAX_MEAN_DEGREE_PER_SPIN · N`,
    /// where the O(N 2^N) transform is cheaper.
    #[default]
    Auto,
    /// Gray walk keeping the local fields h_a = J_a + Σ_b W_ab σ_b of the dense pairwise form up
    /// to date: a step costs O(N). Needs every |S| ≤ 2.
    GrayPairwise,
    /// Gray walk keeping v_S = J_S χ_S(σ): flipping a gives ΔE = 2 Σ_{S∋a} v_S and negates those
    /// v_S, O(deg a) per step. Any non-full set.
    GrayIncidence,
    /// E = −H (s ∘ J) by the fast Walsh–Hadamard transform, O(N 2^N) for any set.
    Transform,
}

/// How moments ⟨χ_S⟩ are computed from the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MomentMethod {
    /// Direct accumulation for sets with at most `DIRECT_MAX_MEMBERS_PER_SPIN · N` members,
    /// otherwise the transform.
    #[default]
    Auto,
    /// ⟨χ_S⟩ = Σ_i p_i χ_S(σ_i), O(|𝒮| 2^N).
    Direct,
    /// All 2^N moments at once, ⟨χ_S⟩ = (−1)^{|S|} (H p)_S, O(N 2^N), then a lookup per member.
    Transform,
}

/// `Auto` uses the incidence Gray walk while Σ_a deg(a) / N ≤ this × N.
pub const GRAY_MAX_MEAN_DEGREE_PER_SPIN: usize = 2;

/// `Auto` accumulates moments directly while |𝒮| ≤ this × N.
pub const DIRECT_MAX_MEMBERS_PER_SPIN: usize = 1;

/// Options of an exact enumeration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactOptions {
    /// Largest N accepted (at most [`EXACT_HARD_MAX_SPINS`]).
    pub max_spins: usize,
    pub energy_method: EnergyMethod,
}

impl Default for ExactOptions {
    fn default() -> Self {
        Self {
            max_spins: EXACT_MAX_SPINS,
            energy_method: EnergyMethod::Auto,
        }
    }
}

fn check_size(n: usize, max_spins: usize) -> Result<(), EngineError> {
    let cap = max_spins.min(EXACT_HARD_MAX_SPINS);
    if n == 0 {
        return Err(EngineError::invalid(
            "n_spins",
            "a model needs at least one spin",
        ));
    }
    if n > cap {
        return Err(EngineError::invalid(
            "n_spins",
            format!(
                "exact enumeration visits all 2^N states and is limited to N ≤ {cap}, got N = {n}; \
                 use sampled averages instead"
            ),
        ));
    }
    Ok(())
}

fn check_temperature(t: f64) -> Result<(), EngineError> {
    if !(t.is_finite() && t > 0.0) {
        return Err(EngineError::invalid(
            "temperature",
            format!("temperature must be a finite number > 0, got {t}"),
        ));
    }
    Ok(())
}

fn block_len(n: usize) -> usize {
    1 << n.min(BLOCK_LOG)
}

/// The energy table E_i, indexed by state index i (bit a set ⇔ σ_a = +1), default options.
pub fn energies(model: &Model) -> Result<Vec<f64>, EngineError> {
    energies_with(model, &ExactOptions::default(), &Interrupt::new())
}

/// The energy table E_i = −J_∅ − Σ_S J_S χ_S(σ_i), by the chosen method; the interrupt is
/// checked between blocks.
pub fn energies_with(
    model: &Model,
    options: &ExactOptions,
    interrupt: &Interrupt,
) -> Result<Vec<f64>, EngineError> {
    let n = model.n();
    check_size(n, options.max_spins)?;
    interrupt.check()?;
    let table = match resolve_energy_method(model, options.energy_method)? {
        EnergyMethod::GrayPairwise => {
            let pw = model.pairwise().ok_or_else(not_pairwise)?;
            gray_table(n, interrupt, |base, out| {
                gray_block_pairwise(&pw, base, out)
            })?
        }
        EnergyMethod::GrayIncidence => {
            let inc = model.incidence().ok_or_else(|| {
                EngineError::invalid(
                    "energy_method",
                    "the incidence Gray walk does not apply to the full description",
                )
            })?;
            let masks = member_masks(model.set());
            gray_table(n, interrupt, |base, out| {
                gray_block_incidence(model, &masks, inc, base, out)
            })?
        }
        EnergyMethod::Transform | EnergyMethod::Auto => {
            let mut x = dense_couplings(model);
            wht::energies_from_couplings(&mut x);
            interrupt.check()?;
            x
        }
    };
    Ok(table)
}

fn not_pairwise() -> EngineError {
    EngineError::invalid(
        "energy_method",
        "the pairwise Gray walk needs every interaction to have at most 2 spins",
    )
}

fn resolve_energy_method(model: &Model, method: EnergyMethod) -> Result<EnergyMethod, EngineError> {
    Ok(match method {
        EnergyMethod::Auto => {
            let set = model.set();
            if set.is_full() {
                EnergyMethod::Transform
            } else if model.is_pairwise() {
                EnergyMethod::GrayPairwise
            } else {
                let n = set.n();
                let total: usize = set.iter().map(|s| s.len()).sum();
                if total <= GRAY_MAX_MEAN_DEGREE_PER_SPIN * n * n {
                    EnergyMethod::GrayIncidence
                } else {
                    EnergyMethod::Transform
                }
            }
        }
        EnergyMethod::GrayPairwise if !model.is_pairwise() => return Err(not_pairwise()),
        m => m,
    })
}

/// Bit masks of the members of a set (N ≤ 64).
fn member_masks(set: &InteractionSet) -> Vec<u64> {
    (0..set.len()).map(|i| set.mask(i)).collect()
}

/// Couplings by mask, J_∅ at 0: the input of [`wht::energies_from_couplings`].
fn dense_couplings(model: &Model) -> Vec<f64> {
    let n = model.n();
    let mut x = vec![0.0; 1usize << n];
    x[0] = model.offset();
    if model.set().is_full() {
        x[1..].copy_from_slice(model.couplings());
    } else {
        let set = model.set();
        for (i, &j) in model.couplings().iter().enumerate() {
            x[set.mask(i) as usize] += j;
        }
    }
    x
}

/// Fill the table block by block; `fill(base, out)` writes the energies of states base + g.
fn gray_table(
    n: usize,
    interrupt: &Interrupt,
    fill: impl Fn(u64, &mut [f64]) + Sync,
) -> Result<Vec<f64>, EngineError> {
    let block = block_len(n);
    let mut table = vec![0.0; 1usize << n];
    table
        .par_chunks_mut(block)
        .enumerate()
        .try_for_each(|(b, out)| {
            interrupt.check()?;
            fill((b * block) as u64, out);
            Ok(())
        })?;
    Ok(table)
}

/// Gray walk over the low bits of one block with the dense pairwise form.
fn gray_block_pairwise(pw: &Pairwise, base: u64, out: &mut [f64]) {
    let n = pw.n;
    let low = out.len().trailing_zeros() as usize;
    let mut s8 = vec![0i8; n];
    spins_from_index(base, &mut s8);
    let mut sigma: Vec<f64> = s8[..low].iter().map(|&s| s as f64).collect();
    let mut h: Vec<f64> = (0..low)
        .map(|a| {
            let row = &pw.coupling[a * n..(a + 1) * n];
            pw.field[a] + row.iter().zip(&s8).map(|(w, &s)| w * s as f64).sum::<f64>()
        })
        .collect();
    let mut e = pw.energy(&s8);
    out[0] = e;
    let mut g = 0usize;
    for t in 1..out.len() {
        let a = t.trailing_zeros() as usize;
        let s = sigma[a];
        e += 2.0 * s * h[a];
        sigma[a] = -s;
        let d = -2.0 * s;
        let row = &pw.coupling[a * n..a * n + low];
        for (hb, w) in h.iter_mut().zip(row) {
            *hb += d * w;
        }
        g ^= 1 << a;
        out[g] = e;
    }
}

/// Gray walk over the low bits of one block keeping v_S = J_S χ_S(σ).
fn gray_block_incidence(model: &Model, masks: &[u64], inc: &Incidence, base: u64, out: &mut [f64]) {
    let mut v: Vec<f64> = model
        .couplings()
        .iter()
        .zip(masks)
        .map(|(&j, &m)| j * wht::chi(m, base))
        .collect();
    let mut e = -model.offset() - v.iter().sum::<f64>();
    out[0] = e;
    let mut g = 0usize;
    for t in 1..out.len() {
        let a = t.trailing_zeros() as usize;
        let mut d = 0.0;
        for &i in inc.of(a) {
            let vi = &mut v[i as usize];
            d += *vi;
            *vi = -*vi;
        }
        e += 2.0 * d;
        g ^= 1 << a;
        out[g] = e;
    }
}

/// Everything exact about a model at temperature T, kept as the energy table plus
/// Z' = Σ_i e^{−(E_i − E_min)/T} (≥ 1, so ln Z = ln Z' − E_min/T never overflows).
#[derive(Clone, Debug)]
pub struct Enumeration {
    n: usize,
    temperature: f64,
    energies: Vec<f64>,
    min_energy: f64,
    z_shifted: f64,
    mean_energy: f64,
    entropy: f64,
}

/// Φ(J) = Σ_μ w_μ E(ξ^μ) + T ln Z = T [S_w + KL(w ‖ p)] and its parts (model.md §4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Potential {
    /// Φ.
    pub potential: f64,
    /// Σ_μ w_μ E(ξ^μ).
    pub data_energy: f64,
    /// S_w = −Σ_μ w_μ ln w_μ.
    pub data_entropy: f64,
    /// KL(w ‖ p) = Σ_μ w_μ ln(w_μ / p(ξ^μ)) ≥ 0.
    pub kl_divergence: f64,
}

impl Enumeration {
    /// Enumerate `model` at temperature T; the interrupt is checked between blocks.
    pub fn new(
        model: &Model,
        temperature: f64,
        options: &ExactOptions,
        interrupt: &Interrupt,
    ) -> Result<Self, EngineError> {
        check_temperature(temperature)?;
        let table = energies_with(model, options, interrupt)?;
        Self::from_energies(model.n(), table, temperature, interrupt)
    }

    /// From an energy table of length 2^N (indexed by state index).
    pub fn from_energies(
        n: usize,
        energies: Vec<f64>,
        temperature: f64,
        interrupt: &Interrupt,
    ) -> Result<Self, EngineError> {
        check_temperature(temperature)?;
        check_size(n, EXACT_HARD_MAX_SPINS)?;
        if energies.len() != 1usize << n {
            return Err(EngineError::invalid(
                "energies",
                format!(
                    "an energy table for N = {n} has 2^N = {} entries, got {}",
                    1usize << n,
                    energies.len()
                ),
            ));
        }
        let block = block_len(n);
        let mins = energies
            .par_chunks(block)
            .map(|c| {
                interrupt.check()?;
                let mut m = f64::INFINITY;
                let mut finite = true;
                for &e in c {
                    finite &= e.is_finite();
                    m = m.min(e);
                }
                Ok((m, finite))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        if mins.iter().any(|&(_, finite)| !finite) {
            return Err(EngineError::Numerical(
                "the energy table has a non-finite entry (couplings too large?)".into(),
            ));
        }
        let min_energy = mins.iter().fold(f64::INFINITY, |a, &(m, _)| a.min(m));
        let t = temperature;
        let sums = energies
            .par_chunks(block)
            .map(|c| {
                interrupt.check()?;
                let mut z = 0.0;
                let mut ze = 0.0;
                for &e in c {
                    let x = e - min_energy;
                    let q = (-x / t).exp();
                    z += q;
                    ze += q * x;
                }
                Ok((z, ze))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let (z_shifted, ze) = sums
            .iter()
            .fold((0.0, 0.0), |(a, b), &(z, ze)| (a + z, b + ze));
        let excess = ze / z_shifted;
        Ok(Self {
            n,
            temperature,
            energies,
            min_energy,
            z_shifted,
            mean_energy: min_energy + excess,
            entropy: z_shifted.ln() + excess / t,
        })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// E_i by state index.
    pub fn energies(&self) -> &[f64] {
        &self.energies
    }

    pub fn into_energies(self) -> Vec<f64> {
        self.energies
    }

    /// min_i E_i.
    pub fn min_energy(&self) -> f64 {
        self.min_energy
    }

    /// ln Z = ln Σ_i e^{−E_i/T}, computed as ln Z' − E_min/T.
    pub fn log_partition(&self) -> f64 {
        self.z_shifted.ln() - self.min_energy / self.temperature
    }

    /// A = −T ln Z.
    pub fn free_energy(&self) -> f64 {
        -self.temperature * self.log_partition()
    }

    /// ⟨E⟩ = Σ_i p_i E_i.
    pub fn mean_energy(&self) -> f64 {
        self.mean_energy
    }

    /// S = −Σ_i p_i ln p_i = ln Z + ⟨E⟩/T (k_B = 1).
    pub fn entropy(&self) -> f64 {
        self.entropy
    }

    /// p_i = e^{−E_i/T} / Z for the state with index i.
    ///
    /// # Panics
    /// If `index` ≥ 2^N.
    pub fn probability_of_index(&self, index: u64) -> f64 {
        (-(self.energies[index as usize] - self.min_energy) / self.temperature).exp()
            / self.z_shifted
    }

    /// The whole distribution p_i, by state index (2^N entries).
    pub fn probabilities(&self) -> Vec<f64> {
        let (t, m, z) = (self.temperature, self.min_energy, self.z_shifted);
        let mut p = vec![0.0; self.energies.len()];
        p.par_chunks_mut(block_len(self.n))
            .zip(self.energies.par_chunks(block_len(self.n)))
            .for_each(|(p, e)| {
                for (pi, &ei) in p.iter_mut().zip(e) {
                    *pi = (-(ei - m) / t).exp() / z;
                }
            });
        p
    }

    fn index_of(&self, pattern: &Pattern, field: &str) -> Result<u64, EngineError> {
        if pattern.len() != self.n {
            return Err(EngineError::invalid(
                field,
                format!(
                    "pattern has {} spins, the model has {}",
                    pattern.len(),
                    self.n
                ),
            ));
        }
        Ok(pattern.index())
    }

    /// ln p(σ) = −E(σ)/T − ln Z (finite even where p underflows).
    pub fn log_probability(&self, pattern: &Pattern) -> Result<f64, EngineError> {
        let i = self.index_of(pattern, "pattern")?;
        Ok(-(self.energies[i as usize] - self.min_energy) / self.temperature - self.z_shifted.ln())
    }

    /// P_lib = Σ_μ p(ξ^μ) over distinct patterns.
    pub fn library_probability(&self, patterns: &[Pattern]) -> Result<f64, EngineError> {
        check_distinct(patterns, self.n)?;
        Ok(patterns
            .iter()
            .map(|p| self.probability_of_index(p.index()))
            .sum())
    }

    /// Every moment at once, indexed by mask: ⟨χ_S⟩ = Σ_i p_i χ_S(σ_i) (entry 0 is Σ p = 1).
    pub fn spectrum(&self, interrupt: &Interrupt) -> Result<Vec<f64>, EngineError> {
        interrupt.check()?;
        let mut x = self.probabilities();
        interrupt.check()?;
        wht::spectrum_from_probabilities(&mut x);
        interrupt.check()?;
        Ok(x)
    }

    /// ⟨χ_S⟩ for every member of `set` (any set over the same N), method chosen automatically.
    pub fn moments(
        &self,
        set: &InteractionSet,
        interrupt: &Interrupt,
    ) -> Result<Vec<f64>, EngineError> {
        self.moments_with(set, MomentMethod::Auto, interrupt)
    }

    /// ⟨χ_S⟩ = Σ_i p_i χ_S(σ_i) for every member of `set`.
    pub fn moments_with(
        &self,
        set: &InteractionSet,
        method: MomentMethod,
        interrupt: &Interrupt,
    ) -> Result<Vec<f64>, EngineError> {
        if set.n() != self.n {
            return Err(EngineError::invalid(
                "interactions",
                format!(
                    "the interaction set is over {} spins, the enumeration over {}",
                    set.n(),
                    self.n
                ),
            ));
        }
        let direct = match method {
            MomentMethod::Direct => true,
            MomentMethod::Transform => false,
            MomentMethod::Auto => set.len() <= DIRECT_MAX_MEMBERS_PER_SPIN * self.n,
        };
        if direct {
            return self.moments_direct(&member_masks(set), interrupt);
        }
        let spectrum = self.spectrum(interrupt)?;
        Ok(if set.is_full() {
            spectrum[1..].to_vec()
        } else {
            (0..set.len())
                .map(|i| spectrum[set.mask(i) as usize])
                .collect()
        })
    }

    fn moments_direct(
        &self,
        masks: &[u64],
        interrupt: &Interrupt,
    ) -> Result<Vec<f64>, EngineError> {
        let block = block_len(self.n);
        let (t, m) = (self.temperature, self.min_energy);
        let partials = self
            .energies
            .par_chunks(block)
            .enumerate()
            .map(|(b, c)| {
                interrupt.check()?;
                let mut acc = vec![0.0; masks.len()];
                let base = (b * block) as u64;
                for (j, &e) in c.iter().enumerate() {
                    let q = (-(e - m) / t).exp();
                    let not_i = !(base + j as u64);
                    for (a, &mask) in acc.iter_mut().zip(masks) {
                        // q χ_S(σ_i): flip the sign bit when popcount(S & !i) is odd.
                        let odd = ((mask & not_i).count_ones() & 1) as u64;
                        *a += f64::from_bits(q.to_bits() ^ (odd << 63));
                    }
                }
                Ok(acc)
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let mut total = vec![0.0; masks.len()];
        for part in &partials {
            for (t, p) in total.iter_mut().zip(part) {
                *t += p;
            }
        }
        for v in &mut total {
            *v /= self.z_shifted;
        }
        Ok(total)
    }

    /// Φ = Σ_μ w_μ E(ξ^μ) + T ln Z, S_w and KL(w ‖ p) for distinct patterns with weights
    /// summing to 1.
    pub fn potential(
        &self,
        patterns: &[Pattern],
        weights: &[f64],
    ) -> Result<Potential, EngineError> {
        check_distinct(patterns, self.n)?;
        check_weights(weights, patterns.len(), true)?;
        let log_z_shifted = self.z_shifted.ln();
        let mut data_energy = 0.0;
        let mut kl = 0.0;
        for (p, &w) in patterns.iter().zip(weights) {
            let e = self.energies[p.index() as usize];
            data_energy += w * e;
            if w > 0.0 {
                let log_p = -(e - self.min_energy) / self.temperature - log_z_shifted;
                kl += w * (w.ln() - log_p);
            }
        }
        Ok(Potential {
            potential: data_energy + self.temperature * self.log_partition(),
            data_energy,
            data_entropy: data_entropy(weights),
            kl_divergence: kl,
        })
    }
}

/// S_w = −Σ_μ w_μ ln w_μ (terms with w_μ = 0 contribute 0).
pub fn data_entropy(weights: &[f64]) -> f64 {
    -weights
        .iter()
        .filter(|&&w| w > 0.0)
        .map(|&w| w * w.ln())
        .sum::<f64>()
}

/// Data moments Σ_μ w_μ χ_S(ξ^μ) for every member of `set` (any N). Weights must be finite and
/// ≥ 0; with Σ w = 1 these are the data averages ⟨χ_S⟩_data.
pub fn data_moments(
    set: &InteractionSet,
    patterns: &[Pattern],
    weights: &[f64],
) -> Result<Vec<f64>, EngineError> {
    let n = set.n();
    check_weights(weights, patterns.len(), false)?;
    for (i, p) in patterns.iter().enumerate() {
        if p.len() != n {
            return Err(EngineError::invalid(
                format!("patterns[{i}]"),
                format!("pattern has {} spins, the model has {n}", p.len()),
            ));
        }
    }
    let mut acc = vec![0.0; set.len()];
    if n <= 64 {
        let masks = member_masks(set);
        for (p, &w) in patterns.iter().zip(weights) {
            let not_i = !p.index();
            for (a, &mask) in acc.iter_mut().zip(&masks) {
                let odd = ((mask & not_i).count_ones() & 1) as u64;
                *a += f64::from_bits(w.to_bits() ^ (odd << 63));
            }
        }
    } else {
        let mut spins = vec![0i8; n];
        for (p, &w) in patterns.iter().zip(weights) {
            p.write_spins(&mut spins);
            for (a, s) in acc.iter_mut().zip(set.iter()) {
                *a += w * s.chi(&spins) as f64;
            }
        }
    }
    Ok(acc)
}

/// Patterns must have n spins and be pairwise distinct; errors name `patterns[i]`.
pub(crate) fn check_distinct(patterns: &[Pattern], n: usize) -> Result<(), EngineError> {
    let mut seen: HashMap<&Pattern, usize> = HashMap::with_capacity(patterns.len());
    for (i, p) in patterns.iter().enumerate() {
        if p.len() != n {
            return Err(EngineError::invalid(
                format!("patterns[{i}]"),
                format!("pattern has {} spins, the model has {n}", p.len()),
            ));
        }
        if let Some(j) = seen.insert(p, i) {
            return Err(EngineError::invalid(
                format!("patterns[{i}]"),
                format!("the same pattern already appears as patterns[{j}]"),
            ));
        }
    }
    Ok(())
}

/// Tolerance on Σ w = 1: weights computed as n_μ / M_tot sum to 1 within M ε ≪ 1e-9.
pub(crate) const WEIGHT_SUM_TOLERANCE: f64 = 1e-9;

/// One weight per pattern, finite and ≥ 0; with `normalised`, Σ w = 1 within
/// [`WEIGHT_SUM_TOLERANCE`]. Returns Σ w.
pub(crate) fn check_weights(
    weights: &[f64],
    count: usize,
    normalised: bool,
) -> Result<f64, EngineError> {
    if weights.len() != count {
        return Err(EngineError::invalid(
            "weights",
            format!("{} weights given for {count} patterns", weights.len()),
        ));
    }
    for (i, &w) in weights.iter().enumerate() {
        if !(w.is_finite() && w >= 0.0) {
            return Err(EngineError::invalid(
                format!("weights[{i}]"),
                format!("a weight must be a finite number ≥ 0, got {w}"),
            ));
        }
    }
    let sum: f64 = weights.iter().sum();
    if normalised && (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
        return Err(EngineError::invalid(
            "weights",
            format!("weights must sum to 1, they sum to {sum}"),
        ));
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::ChainRng;

    fn random_model(set: InteractionSet, seed: u64, scale: f64) -> Model {
        let mut r = ChainRng::new(seed, 0);
        let j = (0..set.len()).map(|_| r.normal() * scale).collect();
        Model::new(set, j, 0.25).unwrap()
    }

    fn brute_energies(model: &Model) -> Vec<f64> {
        let mut s = vec![0i8; model.n()];
        (0..1u64 << model.n())
            .map(|i| {
                spins_from_index(i, &mut s);
                model.energy(&s)
            })
            .collect()
    }

    fn coupling_scale(model: &Model) -> f64 {
        model.offset().abs() + model.couplings().iter().map(|j| j.abs()).sum::<f64>()
    }

    #[test]
    fn every_energy_method_matches_reference() {
        let models = [
            random_model(InteractionSet::order(9, 2, u64::MAX).unwrap(), 1, 0.5),
            random_model(InteractionSet::order(8, 3, u64::MAX).unwrap(), 2, 0.5),
            random_model(
                InteractionSet::custom(7, &[vec![0, 3, 6], vec![1], vec![2, 5], vec![4, 5, 6, 0]])
                    .unwrap(),
                3,
                0.5,
            ),
        ];
        for (k, m) in models.iter().enumerate() {
            let reference = brute_energies(m);
            let scale = coupling_scale(m);
            let mut methods = vec![EnergyMethod::GrayIncidence, EnergyMethod::Transform];
            if m.is_pairwise() {
                methods.push(EnergyMethod::GrayPairwise);
            }
            for method in methods {
                let opts = ExactOptions {
                    energy_method: method,
                    ..Default::default()
                };
                let table = energies_with(m, &opts, &Interrupt::new()).unwrap();
                // ≤ 2^9 steps of accumulation: error ≪ 1e-12 of Σ|J|.
                for (i, (a, b)) in table.iter().zip(&reference).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-12 * scale,
                        "model {k} {method:?} state {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn forcing_a_wrong_method_is_an_error() {
        let m = random_model(InteractionSet::order(5, 3, u64::MAX).unwrap(), 4, 1.0);
        let opts = ExactOptions {
            energy_method: EnergyMethod::GrayPairwise,
            ..Default::default()
        };
        assert!(matches!(
            energies_with(&m, &opts, &Interrupt::new()),
            Err(EngineError::Invalid { field, .. }) if field == "energy_method"
        ));
        let full = random_model(InteractionSet::full(4).unwrap(), 4, 1.0);
        let opts = ExactOptions {
            energy_method: EnergyMethod::GrayIncidence,
            ..Default::default()
        };
        assert!(energies_with(&full, &opts, &Interrupt::new()).is_err());
    }

    #[test]
    fn caps_temperature_and_interrupt() {
        let m = random_model(InteractionSet::order(6, 2, u64::MAX).unwrap(), 5, 1.0);
        let opts = ExactOptions {
            max_spins: 5,
            ..Default::default()
        };
        assert!(matches!(
            Enumeration::new(&m, 1.0, &opts, &Interrupt::new()),
            Err(EngineError::Invalid { field, .. }) if field == "n_spins"
        ));
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Enumeration::new(&m, t, &ExactOptions::default(), &Interrupt::new()),
                Err(EngineError::Invalid { field, .. }) if field == "temperature"
            ));
        }
        let stop = Interrupt::new();
        stop.raise();
        assert_eq!(
            Enumeration::new(&m, 1.0, &ExactOptions::default(), &stop).unwrap_err(),
            EngineError::Interrupted
        );
    }

    #[test]
    fn thermodynamics_of_independent_spins() {
        // Fields only: Z = e^{J_∅/T} Π_a 2 cosh(J_a/T), ⟨σ_a⟩ = tanh(J_a/T).
        let fields = [0.3, -1.2, 0.7, 2.0, -0.1];
        let set = InteractionSet::order(5, 1, u64::MAX).unwrap();
        let m = Model::new(set, fields.to_vec(), 0.4).unwrap();
        let t = 0.8;
        let en = Enumeration::new(&m, t, &ExactOptions::default(), &Interrupt::new()).unwrap();
        let log_z = 0.4 / t
            + fields
                .iter()
                .map(|h| (2.0 * (h / t).cosh()).ln())
                .sum::<f64>();
        assert!((en.log_partition() - log_z).abs() < 1e-13 * log_z.abs());
        let mean_e = -0.4 - fields.iter().map(|h| h * (h / t).tanh()).sum::<f64>();
        assert!((en.mean_energy() - mean_e).abs() < 1e-13);
        assert!((en.entropy() - (log_z + mean_e / t)).abs() < 1e-13);
        for method in [MomentMethod::Direct, MomentMethod::Transform] {
            let mo = en.moments_with(m.set(), method, &Interrupt::new()).unwrap();
            for (a, h) in fields.iter().enumerate() {
                assert!((mo[a] - (h / t).tanh()).abs() < 1e-14, "{method:?}");
            }
        }
    }
}
