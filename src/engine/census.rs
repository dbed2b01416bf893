//! The library: minima of the free energy (model.md §5), their free energies and weights, the
//! continuum as a phase of its own, and the temperature scan on which the library melts.
//!
//! Three methods:
//!
//! * **Exact** (N ≤ `exact_max_spins`): the energy table of all 2^N configurations; every
//!   configuration follows the zero-temperature *steepest* descent (flip the spin that lowers the
//!   energy most, ties to the lowest spin index) to the state where it stops. Minima, basins,
//!   plateaus and the continuum are defined below ([`census`]); the basin free energy is
//!   F_a = −T ln Σ_{σ∈a} e^{−E(σ)/T} and its weight Z_a / Z, exactly.
//! * **Mean field** (any N): m_a = tanh(h_a(m)/T) iterated from every distinct training pattern,
//!   from random configurations and from m = 0; F(m) = E(m) − T Σ_a s(m_a).
//! * **Sampling** (any N): Gibbs chains at T, quenched periodically to name the basin they are in.
//!
//! Energies are E = −J_∅ − Σ_S J_S χ_S, flips cost ΔE_a = 2 σ_a h_a and σ is a local minimum
//! iff σ_a h_a ≥ 0 for every a.

use super::exact::{self, EXACT_HARD_MAX_SPINS, EXACT_MAX_SPINS, ExactOptions};
use super::model::{Model, Pairwise};
use super::spins::Pattern;
use super::{ChainRng, EngineError, Interrupt, Observer, Progress};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

/// How the census finds minima.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CensusMethod {
    Exact,
    MeanField,
    Sampling,
}

/// Whether a minimum is a training pattern (a retrievable memory) or not (a false state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinimumKind {
    Memory,
    FalseState,
}

/// Options of a census.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CensusOptions {
    pub method: CensusMethod,
    /// T > 0.
    pub temperature: f64,
    /// Random starting configurations, in addition to every distinct training pattern
    /// (mean field and sampling; the exact census visits every configuration anyway).
    pub random_starts: usize,
    pub seed: u64,
    /// Relative energy tolerance: two energies E, E' are *equal* when
    /// |E − E'| ≤ energy_tolerance · max(1, max |E|) (exact) or · max(1, |E|) (other methods).
    /// Flat moves (plateaus, weak minima) are defined with it.
    pub energy_tolerance: f64,
    /// Sampling: number of chains (the training patterns and random starts are distributed over
    /// them).
    pub sampling_chains: usize,
    /// Sampling: sweeps per chain after burn-in.
    pub sampling_sweeps: usize,
    /// Largest N the exact census accepts (at most `EXACT_HARD_MAX_SPINS`).
    pub exact_max_spins: usize,
}

impl CensusOptions {
    /// Defaults: 100 random starts, seed 0, tolerance 1e-9, 16 chains × 2000 sweeps,
    /// exact up to N = 24.
    pub fn new(method: CensusMethod, temperature: f64) -> Self {
        Self {
            method,
            temperature,
            random_starts: 100,
            seed: 0,
            energy_tolerance: 1e-9,
            sampling_chains: 16,
            sampling_sweeps: 2000,
            exact_max_spins: EXACT_MAX_SPINS,
        }
    }
}

/// One minimum of the free energy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Minimum {
    /// The minimum configuration as a bit string, first spin first ('1' ⇔ σ = +1). For a weak
    /// minimum (a plateau) the representative: a training pattern if the plateau holds one, else
    /// the lowest energy, then the lowest state index. Mean field: the sign of m.
    pub pattern: String,
    /// E(pattern).
    pub energy: f64,
    /// Exact: −T ln Z_basin. Mean field: F(m). Sampling: E_a + T ln r_a, r_a the share of the
    /// basin's samples sitting exactly on the minimum (an estimate of −T ln Z_basin, see
    /// `sampling_census`).
    pub free_energy: f64,
    /// Share of the Boltzmann weight (exact), e^{−F/T} normalised over phases (mean field) or
    /// share of time (sampling). Minima and continuum sum to 1.
    pub weight: f64,
    /// Mean σ of `pattern`.
    pub magnetisation: f64,
    /// min_a σ_a h_a at `pattern` (half the cheapest flip); ≥ 0 for a minimum.
    pub stability: f64,
    /// Every single flip raises the energy by more than the tolerance (and the plateau is one
    /// state).
    pub strict: bool,
    /// Fraction of configuration space in the basin: exact count / 2^N; otherwise the share of
    /// random starts that end here.
    pub basin_size: f64,
    /// Training patterns (distinct rows of `patterns`) assigned to this minimum.
    pub attracted: usize,
    /// Their total weight (weights normalised to sum 1).
    pub attracted_weight: f64,
    /// Index into `patterns` of the nearest training pattern (lowest index among ties).
    pub nearest_training: usize,
    /// Hamming distance from `pattern` to it.
    pub hamming: usize,
    pub kind: MinimumKind,
}

/// The continuum: the phase that is not a bound state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Continuum {
    pub free_energy: f64,
    pub weight: f64,
    /// Exact: number of configurations in it.
    pub states: Option<f64>,
}

/// Whether chains started in different minima exchange (sampling census).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ergodicity {
    pub chains: usize,
    /// (from, to, count): observed moves of a chain between minima (indices into `minima`)
    /// between consecutive quenches.
    pub exchanges: Vec<(usize, usize, usize)>,
    /// Exchanges per chain per sweep.
    pub exchange_rate: f64,
    /// (a, b, ΔF‡): barrier estimates from the transition rates, ΔF‡ ≈ −T ln(rate a→b per sweep)
    /// (an Arrhenius estimate with attempt frequency one per sweep).
    pub barrier_estimates: Vec<(usize, usize, f64)>,
    pub note: String,
}

/// The result of a census at temperature T.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Census {
    pub method: CensusMethod,
    pub temperature: f64,
    /// ln Z: exact for the exact census; the mean-field estimate ln Σ_phases e^{−F/T}; `None`
    /// for sampling.
    pub log_partition: Option<f64>,
    /// Sorted by free energy ascending.
    pub minima: Vec<Minimum>,
    pub continuum: Option<Continuum>,
    /// Per training pattern: index into `minima`, `None` = the continuum.
    pub assignment: Vec<Option<usize>>,
    pub ergodicity: Option<Ergodicity>,
    pub seconds: f64,
}

/// One temperature of a landscape scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LandscapePoint {
    pub temperature: f64,
    pub library_probability: f64,
    pub n_minima: usize,
    pub continuum_weight: f64,
}

/// P_lib, the number of bound minima and the continuum weight against T, and T_×.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Landscape {
    pub method: CensusMethod,
    pub points: Vec<LandscapePoint>,
    /// The root of P_lib(T) = 1/2, found by bracketing on the grid and refining on the
    /// continuous function (not read off the grid). `None` if P_lib does not cross 1/2 in
    /// [t_min, t_max].
    pub melting_temperature: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// Validation.

struct Prepared {
    n: usize,
    /// Normalised weights.
    weights: Vec<f64>,
}

fn prepare(
    model: &Model,
    patterns: &[Pattern],
    weights: &[f64],
    temperature: f64,
) -> Result<Prepared, EngineError> {
    let n = model.n();
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(EngineError::invalid(
            "temperature",
            format!("temperature must be a finite number > 0, got {temperature}"),
        ));
    }
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
    for (i, p) in patterns.iter().enumerate() {
        if p.len() != n {
            return Err(EngineError::invalid(
                format!("patterns[{i}]"),
                format!("pattern has {} spins, the model has {n}", p.len()),
            ));
        }
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
    let weights = if sum > 0.0 {
        weights.iter().map(|w| w / sum).collect()
    } else {
        vec![0.0; weights.len()]
    };
    Ok(Prepared { n, weights })
}

fn bit_string(p: &Pattern) -> String {
    p.to_string()
}

fn nearest(p: &Pattern, patterns: &[Pattern]) -> (usize, usize) {
    let mut best = (0, usize::MAX);
    for (i, q) in patterns.iter().enumerate() {
        let h = p.hamming(q);
        if h < best.1 {
            best = (i, h);
        }
    }
    if patterns.is_empty() {
        (0, p.len())
    } else {
        best
    }
}

fn mean_spin(p: &Pattern) -> f64 {
    let n = p.len().max(1) as f64;
    (2.0 * p.count_up() as f64 - p.len() as f64) / n
}

fn progress(observer: &dyn Observer, iteration: u64, total: u64, message: String) {
    observer.progress(&Progress {
        stage: "census",
        iteration,
        total: Some(total),
        message: Some(message),
        ..Progress::default()
    });
}

fn log_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + xs.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// Sort minima by free energy (ties: pattern) and remap the assignment.
fn sort_minima(minima: &mut Vec<Minimum>, assignment: &mut [Option<usize>]) {
    let mut order: Vec<usize> = (0..minima.len()).collect();
    order.sort_by(|&a, &b| {
        minima[a]
            .free_energy
            .total_cmp(&minima[b].free_energy)
            .then_with(|| minima[a].pattern.cmp(&minima[b].pattern))
    });
    let mut rank = vec![0; minima.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let old = std::mem::take(minima);
    let mut slots: Vec<Option<Minimum>> = old.into_iter().map(Some).collect();
    *minima = order.iter().map(|&i| slots[i].take().unwrap()).collect();
    for i in assignment.iter_mut().flatten() {
        *i = rank[*i];
    }
}

/// Census of the free-energy minima of `model` at `opts.temperature`.
///
/// `patterns` are the training patterns (distinct or not), `weights` their weights (≥ 0,
/// normalised here by their sum). See the module docs and the per-method docs below.
///
/// # Exact census: minima, plateaus and the continuum
///
/// Energies are *equal* within `tol = energy_tolerance · max(1, max_σ |E(σ)|)`.
/// 1. Every configuration moves to its lowest neighbour if that is lower by more than `tol`
///    (steepest descent); the states where this stops are the *fixed points*
///    (σ_a h_a ≥ −tol/2 for every a: local minima, possibly weak).
/// 2. A *flat region* is a connected set of configurations joined by single flips that change
///    the energy by at most `tol`. A flat region is **extensive** when it holds at least
///    2^{⌈N/2⌉} configurations: its entropy is at least half of N ln 2, so it pins fewer than half
///    the spins' worth of information and is not the memory of anything — it is a flat sea, like
///    the 2^N − M non-represented configurations at the ceiling E_u of the full description
///    (model.md §3).
/// 3. Fixed points in an extensive flat region form the **continuum**: the configurations whose
///    descent ends there are in the basin of no bound state. Its free energy is
///    F_c = −T ln Σ_{σ∈continuum} e^{−E/T} (≈ E_u − T ln(2^N − M − …) in the full description,
///    model.md §5); its weight Z_c / Z.
/// 4. The other fixed points, joined by flat flips between fixed points, form *plateaus*; each
///    plateau is one **minimum** (strict when it is one state with every flip raising the energy
///    by more than `tol`, weak otherwise — e.g. a training pattern of the full description with
///    an equally deep training pattern one flip away). Its basin is every configuration whose
///    descent ends on the plateau.
///
/// Every configuration is thus in exactly one basin or in the continuum, so the weights of the
/// minima and the continuum sum to 1 (to rounding).
pub fn census(
    model: &Model,
    patterns: &[Pattern],
    weights: &[f64],
    opts: &CensusOptions,
    interrupt: &Interrupt,
    observer: &dyn Observer,
) -> Result<Census, EngineError> {
    let start = Instant::now();
    let prep = prepare(model, patterns, weights, opts.temperature)?;
    if !(opts.energy_tolerance.is_finite() && opts.energy_tolerance >= 0.0) {
        return Err(EngineError::invalid(
            "energy_tolerance",
            "the energy tolerance must be a finite number ≥ 0",
        ));
    }
    let mut c = match opts.method {
        CensusMethod::Exact => {
            let s = ExactStructure::new(model, opts, interrupt, observer)?;
            s.census(patterns, &prep.weights, opts.temperature, interrupt)?
        }
        CensusMethod::MeanField => {
            mean_field_census(model, patterns, &prep, opts, interrupt, observer)?.census
        }
        CensusMethod::Sampling => {
            sampling_census(model, patterns, &prep, opts, interrupt, observer)?
        }
    };
    c.seconds = start.elapsed().as_secs_f64();
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Exact census.

const CONTINUUM: u32 = u32::MAX;

/// The zero-temperature structure of the landscape (T-independent): basin label of every
/// configuration, plateaus, the continuum.
struct ExactStructure {
    n: usize,
    energies: Vec<f64>,
    tol: f64,
    /// Per configuration: plateau (minimum) id, or `CONTINUUM`.
    label: Vec<u32>,
    /// Per plateau: representative state index (training pattern preferred, then lowest energy,
    /// then lowest index), number of states, strictness.
    plateaus: Vec<(u64, usize, bool)>,
}

struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(len: usize) -> Self {
        Self {
            parent: (0..len as u32).collect(),
            size: vec![1; len],
        }
    }
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
    }
}

/// States per parallel block (and interrupt check).
const BLOCK: usize = 1 << 14;

impl ExactStructure {
    fn new(
        model: &Model,
        opts: &CensusOptions,
        interrupt: &Interrupt,
        observer: &dyn Observer,
    ) -> Result<Self, EngineError> {
        let cap = opts.exact_max_spins.min(EXACT_HARD_MAX_SPINS);
        let xo = ExactOptions {
            max_spins: cap,
            ..ExactOptions::default()
        };
        let energies = exact::energies_with(model, &xo, interrupt)?;
        progress(observer, 1, 4, "energy table".into());
        Self::from_energies(
            model.n(),
            energies,
            opts.energy_tolerance,
            interrupt,
            observer,
        )
    }

    fn from_energies(
        n: usize,
        energies: Vec<f64>,
        rel_tol: f64,
        interrupt: &Interrupt,
        observer: &dyn Observer,
    ) -> Result<Self, EngineError> {
        let len = energies.len();
        if let Some(i) = energies.iter().position(|e| !e.is_finite()) {
            return Err(EngineError::Numerical(format!(
                "energy of state {i} is not finite"
            )));
        }
        let scale = energies.iter().fold(1.0f64, |m, e| m.max(e.abs()));
        let tol = rel_tol * scale;
        let e = &energies;
        // 1. Steepest descent step and "has a flat flip" flag for every configuration.
        let mut next = vec![0u32; len];
        let mut flat = vec![false; len];
        next.par_chunks_mut(BLOCK)
            .zip(flat.par_chunks_mut(BLOCK))
            .enumerate()
            .try_for_each(|(b, (nx, fl))| {
                interrupt.check()?;
                for k in 0..nx.len() {
                    let i = b * BLOCK + k;
                    let ei = e[i];
                    let mut best = i;
                    let mut be = ei - tol;
                    let mut has_flat = false;
                    for a in 0..n {
                        let j = i ^ (1 << a);
                        let ej = e[j];
                        if ej < be {
                            be = ej;
                            best = j;
                        }
                        if (ej - ei).abs() <= tol {
                            has_flat = true;
                        }
                    }
                    nx[k] = best as u32;
                    fl[k] = has_flat;
                }
                Ok::<(), EngineError>(())
            })?;
        progress(observer, 2, 4, "descent".into());
        let any_flat = flat.iter().any(|&f| f);
        // 2. Flat regions (all configurations) and plateaus (fixed points only).
        let extensive = 1usize << n.div_ceil(2);
        let mut label = vec![u32::MAX - 1; len];
        let mut plateau_of_root: HashMap<u32, u32> = HashMap::new();
        let mut plateaus: Vec<(u64, usize, bool)> = Vec::new();
        if any_flat {
            let mut all = UnionFind::new(len);
            for i in 0..len {
                if i % BLOCK == 0 {
                    interrupt.check()?;
                }
                if !flat[i] {
                    continue;
                }
                for a in 0..n {
                    let j = i ^ (1 << a);
                    if j > i && (e[j] - e[i]).abs() <= tol {
                        all.union(i as u32, j as u32);
                    }
                }
            }
            // Fixed points in small flat regions, joined by flat flips between fixed points.
            let mut fixed_uf: HashMap<u32, u32> = HashMap::new();
            fn find(uf: &mut HashMap<u32, u32>, mut x: u32) -> u32 {
                loop {
                    let p = *uf.get(&x).unwrap_or(&x);
                    if p == x {
                        return x;
                    }
                    let gp = *uf.get(&p).unwrap_or(&p);
                    uf.insert(x, gp);
                    x = p;
                }
            }
            for i in 0..len {
                if next[i] as usize != i {
                    continue;
                }
                let r = all.find(i as u32);
                if all.size[r as usize] as usize >= extensive {
                    label[i] = CONTINUUM;
                    continue;
                }
                fixed_uf.entry(i as u32).or_insert(i as u32);
                if flat[i] {
                    for a in 0..n {
                        let j = i ^ (1 << a);
                        if j > i && next[j] as usize == j && (e[j] - e[i]).abs() <= tol {
                            let (ri, rj) =
                                (find(&mut fixed_uf, i as u32), find(&mut fixed_uf, j as u32));
                            if ri != rj {
                                fixed_uf.insert(ri.max(rj), ri.min(rj));
                            }
                        }
                    }
                }
            }
            for i in 0..len {
                if next[i] as usize == i && label[i] != CONTINUUM {
                    let r = find(&mut fixed_uf, i as u32);
                    let id = *plateau_of_root.entry(r).or_insert_with(|| {
                        plateaus.push((i as u64, 0, true));
                        (plateaus.len() - 1) as u32
                    });
                    label[i] = id;
                    let p = &mut plateaus[id as usize];
                    p.1 += 1;
                    if flat[i] {
                        p.2 = false;
                    }
                    if e[i] < e[p.0 as usize] - tol {
                        p.0 = i as u64;
                    }
                }
            }
        } else {
            for i in 0..len {
                if next[i] as usize == i {
                    label[i] = plateaus.len() as u32;
                    plateaus.push((i as u64, 1, true));
                }
            }
        }
        drop(flat);
        // 3. Every configuration inherits the label of the fixed point its descent reaches.
        interrupt.check()?;
        for i in 0..len {
            if label[i] != u32::MAX - 1 {
                continue;
            }
            let mut r = next[i] as usize;
            while next[r] as usize != r {
                r = next[r] as usize;
            }
            // Compress the path for later states.
            let mut x = i;
            while next[x] as usize != r {
                let nx = next[x] as usize;
                next[x] = r as u32;
                x = nx;
            }
            label[i] = label[r];
        }
        progress(observer, 3, 4, "basins".into());
        Ok(Self {
            n,
            energies,
            tol,
            label,
            plateaus,
        })
    }

    /// Z'_a = Σ_{σ∈a} e^{−(E−E_min)/T} for every plateau, and Z'_c (last entry).
    fn partition(&self, t: f64, interrupt: &Interrupt) -> Result<(f64, Vec<f64>), EngineError> {
        let emin = self.energies.iter().copied().fold(f64::INFINITY, f64::min);
        let k = self.plateaus.len();
        let mut z = vec![0.0; k + 1];
        for (b, (es, ls)) in self
            .energies
            .chunks(BLOCK)
            .zip(self.label.chunks(BLOCK))
            .enumerate()
        {
            if b % 16 == 0 {
                interrupt.check()?;
            }
            for (&e, &l) in es.iter().zip(ls) {
                let q = (-(e - emin) / t).exp();
                let slot = if l == CONTINUUM { k } else { l as usize };
                z[slot] += q;
            }
        }
        Ok((emin, z))
    }

    /// Re-choose plateau representatives preferring training patterns.
    fn representatives(&self, patterns: &[Pattern]) -> Vec<u64> {
        let mut reps: Vec<u64> = self.plateaus.iter().map(|p| p.0).collect();
        let mut has_training = vec![false; reps.len()];
        for p in patterns {
            let i = p.index() as usize;
            let l = self.label[i];
            if l == CONTINUUM {
                continue;
            }
            let l = l as usize;
            // Only members of the plateau itself (fixed points with this label at the
            // plateau's energy), not the rest of the basin.
            let rep_e = self.energies[self.plateaus[l].0 as usize];
            let is_fixed =
                (0..self.n).all(|a| self.energies[i ^ (1 << a)] >= self.energies[i] - self.tol);
            if is_fixed && (self.energies[i] - rep_e).abs() <= self.tol {
                let better = !has_training[l] || (i as u64) < reps[l];
                if better {
                    reps[l] = i as u64;
                    has_training[l] = true;
                }
            }
        }
        reps
    }

    fn census(
        &self,
        patterns: &[Pattern],
        weights: &[f64],
        t: f64,
        interrupt: &Interrupt,
    ) -> Result<Census, EngineError> {
        let n = self.n;
        let (emin, z) = self.partition(t, interrupt)?;
        let ztot: f64 = z.iter().sum();
        let log_z = ztot.ln() - emin / t;
        let k = self.plateaus.len();
        let mut basin = vec![0usize; k];
        for &l in &self.label {
            if l != CONTINUUM {
                basin[l as usize] += 1;
            }
        }
        let continuum_states = self.label.len() - basin.iter().sum::<usize>();
        let mut attracted = vec![0usize; k];
        let mut attracted_weight = vec![0.0; k];
        let mut assignment = Vec::with_capacity(patterns.len());
        for (p, w) in patterns.iter().zip(weights) {
            let l = self.label[p.index() as usize];
            if l == CONTINUUM {
                assignment.push(None);
            } else {
                attracted[l as usize] += 1;
                attracted_weight[l as usize] += w;
                assignment.push(Some(l as usize));
            }
        }
        let training: HashMap<u64, usize> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| (p.index(), i))
            .collect();
        let reps = self.representatives(patterns);
        let size = self.label.len() as f64;
        let mut minima = Vec::with_capacity(k);
        for (a, &(_, _, strict)) in self.plateaus.iter().enumerate() {
            let rep = reps[a] as usize;
            let pattern = Pattern::from_index(rep as u64, n);
            let er = self.energies[rep];
            let cheapest = (0..n)
                .map(|b| self.energies[rep ^ (1 << b)] - er)
                .fold(f64::INFINITY, f64::min);
            let (nearest_training, hamming) = nearest(&pattern, patterns);
            minima.push(Minimum {
                pattern: bit_string(&pattern),
                energy: er,
                free_energy: emin - t * z[a].ln(),
                weight: z[a] / ztot,
                magnetisation: mean_spin(&pattern),
                stability: cheapest / 2.0,
                strict: strict && cheapest > self.tol,
                basin_size: basin[a] as f64 / size,
                attracted: attracted[a],
                attracted_weight: attracted_weight[a],
                nearest_training,
                hamming,
                kind: if training.contains_key(&(rep as u64)) {
                    MinimumKind::Memory
                } else {
                    MinimumKind::FalseState
                },
            });
        }
        let continuum = (continuum_states > 0).then(|| Continuum {
            free_energy: emin - t * z[k].ln(),
            weight: z[k] / ztot,
            states: Some(continuum_states as f64),
        });
        sort_minima(&mut minima, &mut assignment);
        Ok(Census {
            method: CensusMethod::Exact,
            temperature: t,
            log_partition: Some(log_z),
            minima,
            continuum,
            assignment,
            ergodicity: None,
            seconds: 0.0,
        })
    }

    /// P_lib(T) = Σ_μ e^{−E_μ/T} / Σ_σ e^{−E_σ/T} over the distinct patterns.
    fn library_probability(&self, distinct: &[u64], t: f64) -> f64 {
        let emin = self.energies.iter().copied().fold(f64::INFINITY, f64::min);
        let z: f64 = self
            .energies
            .par_chunks(BLOCK)
            .map(|c| c.iter().map(|e| (-(e - emin) / t).exp()).sum::<f64>())
            .collect::<Vec<_>>()
            .iter()
            .sum();
        let zl: f64 = distinct
            .iter()
            .map(|&i| (-(self.energies[i as usize] - emin) / t).exp())
            .sum();
        zl / z
    }
}

// ---------------------------------------------------------------------------------------------
// Mean field.

/// Local fields and energies with spins replaced by magnetisations m ∈ [−1, 1]^N. Both are exact
/// continuations of the spin formulas because the energy is multilinear in σ.
enum MfModel<'a> {
    Pairwise(Pairwise),
    General(&'a Model),
}

impl<'a> MfModel<'a> {
    fn new(model: &'a Model) -> Self {
        match model.pairwise() {
            Some(p) => MfModel::Pairwise(p),
            None => MfModel::General(model),
        }
    }

    fn n(&self) -> usize {
        match self {
            MfModel::Pairwise(p) => p.n,
            MfModel::General(m) => m.n(),
        }
    }

    /// E(m) = −J_∅ − Σ_S J_S Π_{a∈S} m_a.
    fn energy(&self, m: &[f64]) -> f64 {
        match self {
            MfModel::Pairwise(p) => {
                let n = p.n;
                let mut e = -p.offset;
                for a in 0..n {
                    let row = &p.coupling[a * n..(a + 1) * n];
                    let mut acc = 0.0;
                    for b in a + 1..n {
                        acc += row[b] * m[b];
                    }
                    e -= m[a] * (p.field[a] + acc);
                }
                e
            }
            MfModel::General(model) => {
                let mut e = -model.offset();
                for (i, &j) in model.couplings().iter().enumerate() {
                    if j != 0.0 {
                        let prod: f64 = model
                            .set()
                            .subset(i)
                            .iter()
                            .map(|a| m[a as usize])
                            .product();
                        e -= j * prod;
                    }
                }
                e
            }
        }
    }

    /// h_a(m) = Σ_{S∋a} J_S Π_{b∈S∖a} m_b (general models only; pairwise keeps h incrementally).
    fn general_field(model: &Model, m: &[f64], a: usize) -> f64 {
        let mut h = 0.0;
        let term = |i: usize| -> f64 {
            let j = model.couplings()[i];
            if j == 0.0 {
                return 0.0;
            }
            let mut prod = j;
            for b in model.set().subset(i).iter() {
                if b as usize != a {
                    prod *= m[b as usize];
                }
            }
            prod
        };
        match model.incidence() {
            Some(inc) => {
                for &i in inc.of(a) {
                    h += term(i as usize);
                }
            }
            None => {
                let n = model.n();
                let bit = 1u64 << a;
                for mask in 1u64..(1u64 << n) {
                    if mask & bit != 0 {
                        h += term((mask - 1) as usize);
                    }
                }
            }
        }
        h
    }

    /// Sequential (Gauss–Seidel) iteration of m_a = tanh(h_a(m)/T) until max |Δm| < tol.
    ///
    /// Each coordinate update is the exact minimiser of F(m) = E(m) − T Σ s(m_a) along m_a
    /// (E is linear in m_a, −T s is strictly convex), so F never increases and the iteration
    /// converges to a stationary point without the oscillations of the parallel update; no damping
    /// is needed. Returns the number of sweeps.
    fn relax(&self, m: &mut [f64], t: f64, tol: f64, max_sweeps: usize) -> usize {
        let n = self.n();
        match self {
            MfModel::Pairwise(p) => {
                let mut h = p.field.clone();
                for a in 0..n {
                    let row = &p.coupling[a * n..(a + 1) * n];
                    h[a] += row.iter().zip(m.iter()).map(|(w, x)| w * x).sum::<f64>();
                }
                for sweep in 1..=max_sweeps {
                    let mut delta: f64 = 0.0;
                    for a in 0..n {
                        let new = (h[a] / t).tanh();
                        let d = new - m[a];
                        if d != 0.0 {
                            m[a] = new;
                            delta = delta.max(d.abs());
                            let row = &p.coupling[a * n..(a + 1) * n];
                            for (hb, w) in h.iter_mut().zip(row) {
                                *hb += w * d;
                            }
                        }
                    }
                    if delta < tol {
                        return sweep;
                    }
                }
                max_sweeps
            }
            MfModel::General(model) => {
                for sweep in 1..=max_sweeps {
                    let mut delta: f64 = 0.0;
                    for a in 0..n {
                        let new = (Self::general_field(model, m, a) / t).tanh();
                        delta = delta.max((new - m[a]).abs());
                        m[a] = new;
                    }
                    if delta < tol {
                        return sweep;
                    }
                }
                max_sweeps
            }
        }
    }

    /// F(m) = E(m) − T Σ_a s(m_a), s(m) = −p ln p − (1−p) ln(1−p) with p = (1+m)/2.
    fn free_energy(&self, m: &[f64], t: f64) -> f64 {
        let s: f64 = m.iter().map(|&x| binary_entropy(x)).sum();
        self.energy(m) - t * s
    }
}

fn binary_entropy(m: f64) -> f64 {
    let p = (0.5 * (1.0 + m)).clamp(0.0, 1.0);
    let q = 1.0 - p;
    let f = |x: f64| if x > 0.0 { -x * x.ln() } else { 0.0 };
    f(p) + f(q)
}

/// Convergence: max |Δm| per sweep.
const MF_TOLERANCE: f64 = 1e-10;
/// Cap on sweeps per start.
const MF_MAX_SWEEPS: usize = 5000;
/// Two solutions are the same minimum when (1/N) Σ (m_a − m'_a)² = q_aa + q_bb − 2 q_ab ≤ this.
const MF_SAME: f64 = 1e-4;
/// The paramagnetic solution counts as the continuum while q_EA = (1/N) Σ m_a² < this.
const MF_PARAMAGNET_Q: f64 = 0.5;

pub(crate) struct MeanFieldResult {
    pub census: Census,
    /// m of every minimum (aligned with `census.minima`), and of the continuum.
    pub magnetisations: Vec<Vec<f64>>,
    pub continuum_m: Option<Vec<f64>>,
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len().max(1) as f64
}

/// The mean-field census (model.md §5): starts are every distinct training pattern (m = ξ),
/// `random_starts` random configurations and m = 0. Solutions are deduplicated by overlap
/// ((1/N)|m − m'|² ≤ 1e-4). The solution reached from m = 0 is the paramagnetic one: it is the
/// **continuum** if it is weakly magnetised (q_EA < 1/2) and not also reached from a training or
/// random start; otherwise the paramagnetic branch has merged into a bound state at this T and
/// there is no separate continuum. Weights ∝ e^{−F/T} over the minima and the continuum.
fn mean_field_census(
    model: &Model,
    patterns: &[Pattern],
    prep: &Prepared,
    opts: &CensusOptions,
    interrupt: &Interrupt,
    observer: &dyn Observer,
) -> Result<MeanFieldResult, EngineError> {
    let n = prep.n;
    let t = opts.temperature;
    let mf = MfModel::new(model);
    // Distinct training patterns → first index.
    let mut distinct: Vec<usize> = Vec::new();
    let mut seen: HashMap<&Pattern, usize> = HashMap::new();
    let mut pattern_start = vec![0usize; patterns.len()];
    for (i, p) in patterns.iter().enumerate() {
        let k = *seen.entry(p).or_insert_with(|| {
            distinct.push(i);
            distinct.len() - 1
        });
        pattern_start[i] = k;
    }
    let n_train = distinct.len();
    let total = n_train + opts.random_starts + 1;
    let starts: Vec<usize> = (0..total).collect();
    let done = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Vec<f64>> = starts
        .par_iter()
        .map(|&s| {
            interrupt.check()?;
            let mut m: Vec<f64> = if s < n_train {
                patterns[distinct[s]]
                    .to_spins()
                    .iter()
                    .map(|&x| x as f64)
                    .collect()
            } else if s < n_train + opts.random_starts {
                let mut r = ChainRng::new(opts.seed, s as u64);
                (0..n).map(|_| r.spin() as f64).collect()
            } else {
                vec![0.0; n]
            };
            mf.relax(&mut m, t, MF_TOLERANCE, MF_MAX_SWEEPS);
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if d.is_multiple_of(64) {
                progress(observer, d, total as u64, "mean-field starts".into());
            }
            Ok(m)
        })
        .collect::<Result<_, EngineError>>()?;
    interrupt.check()?;
    let para = results[total - 1].clone();
    // Deduplicate (in start order, so results are deterministic).
    let mut sols: Vec<Vec<f64>> = Vec::new();
    let mut from_random = Vec::new();
    let mut landing = vec![0usize; total - 1];
    for (s, m) in results[..total - 1].iter().enumerate() {
        let k = match sols.iter().position(|x| distance2(x, m) <= MF_SAME) {
            Some(k) => k,
            None => {
                sols.push(m.clone());
                from_random.push(0usize);
                sols.len() - 1
            }
        };
        if s >= n_train {
            from_random[k] += 1;
        }
        landing[s] = k;
    }
    let q_para = para.iter().map(|x| x * x).sum::<f64>() / n.max(1) as f64;
    let para_match = sols.iter().position(|x| distance2(x, &para) <= MF_SAME);
    let mut continuum_idx = None;
    match para_match {
        Some(k) if q_para < MF_PARAMAGNET_Q => continuum_idx = Some(k),
        Some(_) => {}
        None => {
            sols.push(para.clone());
            from_random.push(0);
            if q_para < MF_PARAMAGNET_Q {
                continuum_idx = Some(sols.len() - 1);
            }
        }
    }
    let fs: Vec<f64> = sols.iter().map(|m| mf.free_energy(m, t)).collect();
    let log_z = log_sum_exp(&fs.iter().map(|f| -f / t).collect::<Vec<_>>());
    let training: HashMap<&Pattern, usize> =
        patterns.iter().enumerate().map(|(i, p)| (p, i)).collect();
    // Minimum ids (excluding the continuum).
    let mut id = vec![None; sols.len()];
    let mut minima = Vec::new();
    let mut mags = Vec::new();
    for (k, m) in sols.iter().enumerate() {
        if Some(k) == continuum_idx {
            continue;
        }
        id[k] = Some(minima.len());
        let bits: Vec<u8> = m.iter().map(|&x| (x > 0.0) as u8).collect();
        let pattern = Pattern::from_bits(&bits);
        let spins = pattern.to_spins();
        let energy = model.energy(&spins);
        let stability = (0..n)
            .map(|a| spins[a] as f64 * model.local_field(&spins, a))
            .fold(f64::INFINITY, f64::min);
        let (nearest_training, hamming) = nearest(&pattern, patterns);
        let tol = opts.energy_tolerance * energy.abs().max(1.0);
        minima.push(Minimum {
            pattern: bit_string(&pattern),
            energy,
            free_energy: fs[k],
            weight: (-fs[k] / t - log_z).exp(),
            magnetisation: mean_spin(&pattern),
            stability,
            strict: 2.0 * stability > tol,
            basin_size: if opts.random_starts > 0 {
                from_random[k] as f64 / opts.random_starts as f64
            } else {
                0.0
            },
            attracted: 0,
            attracted_weight: 0.0,
            nearest_training,
            hamming,
            kind: if training.contains_key(&pattern) {
                MinimumKind::Memory
            } else {
                MinimumKind::FalseState
            },
        });
        mags.push(m.clone());
    }
    let mut assignment = Vec::with_capacity(patterns.len());
    for (i, w) in prep.weights.iter().enumerate() {
        let a = id[landing[pattern_start[i]]];
        if let Some(a) = a {
            minima[a].attracted += 1;
            minima[a].attracted_weight += w;
        }
        assignment.push(a);
    }
    let continuum = continuum_idx.map(|k| Continuum {
        free_energy: fs[k],
        weight: (-fs[k] / t - log_z).exp(),
        states: None,
    });
    let continuum_m = continuum_idx.map(|k| sols[k].clone());
    // Sort, carrying magnetisations along.
    let mut order: Vec<usize> = (0..minima.len()).collect();
    order.sort_by(|&a, &b| {
        minima[a]
            .free_energy
            .total_cmp(&minima[b].free_energy)
            .then_with(|| minima[a].pattern.cmp(&minima[b].pattern))
    });
    let magnetisations = order.iter().map(|&i| mags[i].clone()).collect();
    sort_minima(&mut minima, &mut assignment);
    Ok(MeanFieldResult {
        census: Census {
            method: CensusMethod::MeanField,
            temperature: t,
            log_partition: Some(log_z),
            minima,
            continuum,
            assignment,
            ergodicity: None,
            seconds: 0.0,
        },
        magnetisations,
        continuum_m,
    })
}

/// P_lib under the mean-field mixture: Σ_μ Σ_phases w_φ Π_a (1 + ξ^μ_a m_{φ,a}) / 2.
fn mean_field_library_probability(r: &MeanFieldResult, distinct: &[&Pattern]) -> f64 {
    let mut phases: Vec<(f64, &[f64])> = r
        .census
        .minima
        .iter()
        .zip(&r.magnetisations)
        .map(|(m, x)| (m.weight, x.as_slice()))
        .collect();
    if let (Some(c), Some(m)) = (&r.census.continuum, &r.continuum_m) {
        phases.push((c.weight, m.as_slice()));
    }
    let mut total = 0.0;
    for p in distinct {
        let s = p.to_spins();
        for (w, m) in &phases {
            let lp: f64 = s
                .iter()
                .zip(m.iter())
                .map(|(&x, &y)| (0.5 * (1.0 + x as f64 * y)).max(0.0).ln())
                .sum();
            total += w * lp.exp();
        }
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Sampling (needs engine::sampler and engine::quench).

/// Sweeps between two quenches of a chain (the time resolution of basin membership) is
/// max(1, sampling_sweeps / SAMPLING_QUENCHES).
const SAMPLING_QUENCHES: usize = 1000;

/// Zero-temperature facts about a configuration that a quench ended at.
struct Endpoint {
    energy: f64,
    /// min_a σ_a h_a.
    stability: f64,
    /// Every flip raises the energy by more than the tolerance.
    strict: bool,
}

fn endpoint(model: &Model, p: &Pattern, rel_tol: f64) -> Endpoint {
    let s = p.to_spins();
    let energy = model.energy(&s);
    let h = model.local_fields(&s);
    let stability = (0..s.len())
        .map(|a| s[a] as f64 * h[a])
        .fold(f64::INFINITY, f64::min);
    let tol = rel_tol * energy.abs().max(1.0);
    Endpoint {
        energy,
        stability,
        strict: 2.0 * stability > tol,
    }
}

/// The sampling census (model.md §5): heat-bath chains at T, started from the distinct training
/// patterns (evenly spaced through them when there are more patterns than chains) and, once every
/// pattern has a chain, from random configurations; every `max(1, sweeps/1000)` sweeps each chain is quenched (steepest descent,
/// `engine::quench`) to name the basin it is in.
///
/// * Minima: the quench end points of the chains, of every training pattern and of
///   `random_starts` random configurations (`basin_size` = share of the latter).
/// * Continuum: end points that are not strict minima and not training patterns (a quench that
///   stops on a flat region: the sea of the full description).
/// * weight: share of recorded time (minima and continuum sum to 1); minima found only by the
///   quench starts get weight 0.
/// * free_energy: within a basin, p(σ*_a | basin a) = e^{−E_a/T} / Z_a, so
///   F_a = −T ln Z_a = E_a + T ln r_a with r_a the share of the basin's recorded samples sitting
///   exactly on the minimum σ*_a — an estimate that does not need the chains to equilibrate
///   *between* basins. If the minimum was never sampled exactly (r_a = 0), the low-temperature
///   estimate F_a ≈ E_a − T Σ_b ln(1 + e^{−ΔE_b/T}) from its flip energies is used.
///   The continuum's F is E_c + T ln(share) relative to the deepest sampled minimum:
///   F_c = F_0 − T ln(w_c / w_0).
/// * assignment: the minimum the quench of each training pattern reaches.
/// * ergodicity: moves of chains between basins at consecutive quenches, exchange rate per chain
///   and sweep, and Arrhenius barrier estimates ΔF‡_{ab} ≈ −T ln k_{ab} with k_{ab} the rate of
///   a → b per sweep spent in a.
fn sampling_census(
    model: &Model,
    patterns: &[Pattern],
    prep: &Prepared,
    opts: &CensusOptions,
    interrupt: &Interrupt,
    observer: &dyn Observer,
) -> Result<Census, EngineError> {
    use super::quench::quench_many;
    use super::sampler::{Chains, Kernel, Plan, sample};
    let n = prep.n;
    let t = opts.temperature;
    if opts.sampling_chains == 0 || opts.sampling_sweeps == 0 {
        return Err(EngineError::invalid(
            "sampling_chains",
            "the sampling census needs at least one chain and one sweep",
        ));
    }
    let kernel = Kernel::new(model);
    let mut distinct: Vec<&Pattern> = Vec::new();
    {
        let mut seen = std::collections::HashSet::new();
        for p in patterns {
            if seen.insert(p) {
                distinct.push(p);
            }
        }
    }
    // Chains.
    let chains_n = opts.sampling_chains;
    let mut spins = Vec::with_capacity(chains_n * n);
    let mut start_kind = Vec::with_capacity(chains_n);
    for c in 0..chains_n {
        if c < distinct.len() {
            let i = if distinct.len() > chains_n {
                c * distinct.len() / chains_n
            } else {
                c
            };
            spins.extend(distinct[i].to_spins());
            start_kind.push(true);
        } else {
            let mut r = ChainRng::new(opts.seed ^ 0xC3A5_C85C_97CB_3127, c as u64);
            spins.extend((0..n).map(|_| r.spin()));
            start_kind.push(false);
        }
    }
    let mut chains = Chains::from_spins(n, spins);
    let thin = (opts.sampling_sweeps / SAMPLING_QUENCHES).max(1);
    let mut plan = Plan::fixed(1.0 / t, opts.sampling_sweeps);
    plan.burn_in = opts.sampling_sweeps / 10;
    plan.thin = thin;
    plan.record = true;
    progress(observer, 0, 3, "sampling".into());
    let run = sample(&kernel, &mut chains, &plan, opts.seed, interrupt)?;
    interrupt.check()?;
    progress(observer, 1, 3, "quenching samples".into());
    let sample_patterns: Vec<Pattern> = run.samples.iter().map(|s| s.pattern.clone()).collect();
    let quenched = quench_many(&kernel, &sample_patterns);
    interrupt.check()?;
    let train_q = quench_many(
        &kernel,
        &distinct.iter().map(|p| (*p).clone()).collect::<Vec<_>>(),
    );
    let random: Vec<Pattern> = (0..opts.random_starts)
        .map(|k| {
            let mut r = ChainRng::new(opts.seed, k as u64);
            let s: Vec<i8> = (0..n).map(|_| r.spin()).collect();
            Pattern::from_spins(&s)
        })
        .collect();
    let random_q = quench_many(&kernel, &random);
    interrupt.check()?;
    progress(observer, 2, 3, "basins".into());
    let training: HashMap<&Pattern, usize> =
        patterns.iter().enumerate().map(|(i, p)| (p, i)).collect();
    // Label end points: minimum id, or None for the continuum.
    let mut ids: HashMap<Pattern, Option<usize>> = HashMap::new();
    let mut ends: Vec<(Pattern, Endpoint)> = Vec::new();
    let mut label = |p: &Pattern| -> Option<usize> {
        if let Some(&l) = ids.get(p) {
            return l;
        }
        let e = endpoint(model, p, opts.energy_tolerance);
        let l = if e.strict || training.contains_key(p) {
            ends.push((p.clone(), e));
            Some(ends.len() - 1)
        } else {
            None
        };
        ids.insert(p.clone(), l);
        l
    };
    let sample_labels: Vec<Option<usize>> = quenched.iter().map(|q| label(&q.pattern)).collect();
    let train_labels: Vec<Option<usize>> = train_q.iter().map(|q| label(&q.pattern)).collect();
    let random_labels: Vec<Option<usize>> = random_q.iter().map(|q| label(&q.pattern)).collect();
    let k = ends.len();
    // Time shares and exact visits of the minimum.
    let mut time = vec![0usize; k + 1];
    let mut at_min = vec![0usize; k];
    for ((smp, l), _q) in run.samples.iter().zip(&sample_labels).zip(&quenched) {
        match l {
            Some(a) => {
                time[*a] += 1;
                if smp.pattern == ends[*a].0 {
                    at_min[*a] += 1;
                }
            }
            None => time[k] += 1,
        }
    }
    let total_time = run.samples.len().max(1) as f64;
    let mut free = vec![0.0; k];
    for a in 0..k {
        let (p, e) = &ends[a];
        free[a] = if at_min[a] > 0 {
            e.energy + t * (at_min[a] as f64 / time[a] as f64).ln()
        } else {
            let s = p.to_spins();
            let h = model.local_fields(&s);
            e.energy
                - t * (0..n)
                    .map(|b| (-2.0 * s[b] as f64 * h[b] / t).exp().ln_1p())
                    .sum::<f64>()
        };
    }
    let mut basin_from_random = vec![0usize; k];
    for l in random_labels.iter().flatten() {
        basin_from_random[*l] += 1;
    }
    let mut minima: Vec<Minimum> = ends
        .iter()
        .enumerate()
        .map(|(a, (p, e))| {
            let (nearest_training, hamming) = nearest(p, patterns);
            Minimum {
                pattern: bit_string(p),
                energy: e.energy,
                free_energy: free[a],
                weight: time[a] as f64 / total_time,
                magnetisation: mean_spin(p),
                stability: e.stability,
                strict: e.strict,
                basin_size: if opts.random_starts > 0 {
                    basin_from_random[a] as f64 / opts.random_starts as f64
                } else {
                    0.0
                },
                attracted: 0,
                attracted_weight: 0.0,
                nearest_training,
                hamming,
                kind: if training.contains_key(p) {
                    MinimumKind::Memory
                } else {
                    MinimumKind::FalseState
                },
            }
        })
        .collect();
    let distinct_index: HashMap<&Pattern, usize> =
        distinct.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut assignment = Vec::with_capacity(patterns.len());
    for (p, w) in patterns.iter().zip(&prep.weights) {
        let l = train_labels[distinct_index[p]];
        if let Some(a) = l {
            minima[a].attracted += 1;
            minima[a].attracted_weight += w;
        }
        assignment.push(l);
    }
    let continuum = (time[k] > 0).then(|| {
        let wc = time[k] as f64 / total_time;
        let anchor = (0..k)
            .filter(|&a| at_min[a] > 0)
            .min_by(|&a, &b| free[a].total_cmp(&free[b]));
        let fc = match anchor {
            Some(a) => free[a] - t * (wc / (time[a] as f64 / total_time)).ln(),
            None => -t * wc.ln(),
        };
        Continuum {
            free_energy: fc,
            weight: wc,
            states: None,
        }
    });
    // Ergodicity: basin sequence per chain.
    let mut seq: Vec<Vec<(usize, Option<usize>)>> = vec![Vec::new(); chains_n];
    for (smp, l) in run.samples.iter().zip(&sample_labels) {
        seq[smp.chain].push((smp.sweep, *l));
    }
    let slot = |l: Option<usize>| l.unwrap_or(k);
    let mut moves: HashMap<(usize, usize), usize> = HashMap::new();
    let mut chains_moved = 0;
    for s in &mut seq {
        s.sort_by_key(|x| x.0);
        let mut moved = false;
        for w in s.windows(2) {
            if w[0].1 != w[1].1 {
                *moves.entry((slot(w[0].1), slot(w[1].1))).or_default() += 1;
                moved = true;
            }
        }
        chains_moved += moved as usize;
    }
    let n_moves: usize = moves.values().sum();
    // Renumber after sorting minima (continuum moves are kept with index = number of minima).
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| {
        minima[a]
            .free_energy
            .total_cmp(&minima[b].free_energy)
            .then_with(|| minima[a].pattern.cmp(&minima[b].pattern))
    });
    let mut rank = vec![0usize; k + 1];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    rank[k] = k;
    let mut exchanges: Vec<(usize, usize, usize)> = moves
        .iter()
        .filter(|((a, b), _)| *a < k && *b < k)
        .map(|(&(a, b), &c)| (rank[a], rank[b], c))
        .collect();
    exchanges.sort();
    let barrier_estimates: Vec<(usize, usize, f64)> = exchanges
        .iter()
        .map(|&(a, b, c)| {
            let orig = order[a];
            let sweeps_in_a = time[orig] as f64 * thin as f64;
            (a, b, -t * (c as f64 / sweeps_in_a).ln())
        })
        .collect();
    let recorded_sweeps = (run.samples.len() * thin) as f64;
    let exchange_rate = n_moves as f64 / recorded_sweeps.max(1.0);
    let from_training = start_kind.iter().filter(|&&x| x).count();
    let note = if n_moves == 0 {
        format!(
            "no chain left the basin it was first seen in over {} sweeps: ergodicity is broken at \
             T = {t} on this time scale; time shares reflect the starts ({from_training} of \
             {chains_n} chains from training patterns), free energies come from within-basin \
             statistics",
            opts.sampling_sweeps
        )
    } else {
        format!(
            "{chains_moved} of {chains_n} chains moved between basins ({n_moves} moves, \
             {:.3e} per chain-sweep); time shares are meaningful only for basins that exchange",
            exchange_rate
        )
    };
    let ergodicity = Ergodicity {
        chains: chains_n,
        exchanges,
        exchange_rate,
        barrier_estimates,
        note,
    };
    sort_minima(&mut minima, &mut assignment);
    Ok(Census {
        method: CensusMethod::Sampling,
        temperature: t,
        log_partition: None,
        minima,
        continuum,
        assignment,
        ergodicity: Some(ergodicity),
        seconds: 0.0,
    })
}

/// Share of recorded samples that are training patterns (the sampling P_lib).
fn sampled_library_probability(
    model: &Model,
    distinct: &[&Pattern],
    opts: &CensusOptions,
    interrupt: &Interrupt,
) -> Result<f64, EngineError> {
    use super::sampler::{Chains, Kernel, Plan, sample};
    let kernel = Kernel::new(model);
    let set: std::collections::HashSet<&Pattern> = distinct.iter().copied().collect();
    let mut chains = Chains::random(model.n(), opts.sampling_chains, opts.seed);
    let mut plan = Plan::fixed(1.0 / opts.temperature, opts.sampling_sweeps);
    plan.burn_in = opts.sampling_sweeps / 10;
    plan.record = true;
    let run = sample(&kernel, &mut chains, &plan, opts.seed, interrupt)?;
    let hits = run
        .samples
        .iter()
        .filter(|s| set.contains(&s.pattern))
        .count();
    Ok(hits as f64 / run.samples.len().max(1) as f64)
}

// ---------------------------------------------------------------------------------------------
// Landscape.

/// Scan T over `steps` evenly spaced temperatures in [t_min, t_max] (steps ≥ 2, or 1 with
/// t_min = t_max).
///
/// * P_lib: exact — Σ_μ p(ξ^μ) over the distinct training patterns (model.md §3), computed from
///   the energy table; mean field — Σ_μ p_MF(ξ^μ) under the mixture of product measures of the
///   census phases (each weighted by its weight); sampling — the share of samples that are
///   training patterns.
/// * n_minima: exact — minima whose basin free energy is below the continuum's (all minima when
///   there is no continuum): the bound states that are more stable than the sea at T; mean field
///   and sampling — the minima the census finds.
/// * continuum_weight: the census continuum weight (0 when there is none).
/// * melting_temperature: the first grid interval where P_lib − 1/2 changes sign is refined by
///   bisection on the continuous function (exact: to relative 1e-13, mean field and sampling:
///   40 and 20 census evaluations).
#[allow(clippy::too_many_arguments)]
pub fn landscape(
    model: &Model,
    patterns: &[Pattern],
    weights: &[f64],
    t_min: f64,
    t_max: f64,
    steps: usize,
    method: CensusMethod,
    interrupt: &Interrupt,
    observer: &dyn Observer,
) -> Result<Landscape, EngineError> {
    if !(t_min.is_finite() && t_min > 0.0 && t_max.is_finite() && t_max >= t_min) {
        return Err(EngineError::invalid(
            "t_min",
            format!("need 0 < t_min ≤ t_max, got t_min = {t_min}, t_max = {t_max}"),
        ));
    }
    if steps == 0 || (steps == 1 && t_max > t_min) {
        return Err(EngineError::invalid(
            "steps",
            "steps must be ≥ 2 (or 1 with t_min = t_max)",
        ));
    }
    let prep0 = prepare(model, patterns, weights, t_min)?;
    let grid: Vec<f64> = (0..steps)
        .map(|k| {
            if steps == 1 {
                t_min
            } else {
                t_min + (t_max - t_min) * k as f64 / (steps - 1) as f64
            }
        })
        .collect();
    let mut distinct: Vec<&Pattern> = Vec::new();
    {
        let mut seen = std::collections::HashSet::new();
        for p in patterns {
            if seen.insert(p) {
                distinct.push(p);
            }
        }
    }
    let mut points = Vec::with_capacity(steps);
    let melting = match method {
        CensusMethod::Exact => {
            let opts = CensusOptions::new(CensusMethod::Exact, t_min);
            let s = ExactStructure::new(model, &opts, interrupt, observer)?;
            let idx: Vec<u64> = distinct.iter().map(|p| p.index()).collect();
            for (k, &t) in grid.iter().enumerate() {
                let c = s.census(patterns, &prep0.weights, t, interrupt)?;
                let plib = s.library_probability(&idx, t);
                points.push(point(&c, t, plib));
                progress(
                    observer,
                    k as u64 + 1,
                    steps as u64,
                    format!("landscape T = {t}"),
                );
            }
            let f = |t: f64| Ok(s.library_probability(&idx, t) - 0.5);
            melt(&grid, &points, f, 200, 1e-13)?
        }
        CensusMethod::MeanField | CensusMethod::Sampling => {
            let eval = |t: f64| -> Result<(Census, f64), EngineError> {
                let opts = CensusOptions::new(method, t);
                let prep = prepare(model, patterns, weights, t)?;
                let none = super::control::NoObserver;
                if method == CensusMethod::MeanField {
                    let r = mean_field_census(model, patterns, &prep, &opts, interrupt, &none)?;
                    let plib = mean_field_library_probability(&r, &distinct);
                    Ok((r.census, plib))
                } else {
                    let c = sampling_census(model, patterns, &prep, &opts, interrupt, &none)?;
                    let plib = sampled_library_probability(model, &distinct, &opts, interrupt)?;
                    Ok((c, plib))
                }
            };
            for (k, &t) in grid.iter().enumerate() {
                let (c, plib) = eval(t)?;
                points.push(point(&c, t, plib));
                progress(
                    observer,
                    k as u64 + 1,
                    steps as u64,
                    format!("landscape T = {t}"),
                );
            }
            let iters = if method == CensusMethod::MeanField {
                40
            } else {
                20
            };
            melt(&grid, &points, |t| Ok(eval(t)?.1 - 0.5), iters, 1e-10)?
        }
    };
    Ok(Landscape {
        method,
        points,
        melting_temperature: melting,
    })
}

fn point(c: &Census, t: f64, plib: f64) -> LandscapePoint {
    let cw = c.continuum.as_ref().map_or(0.0, |c| c.weight);
    let n_minima = match (c.method, &c.continuum) {
        (CensusMethod::Exact, Some(cont)) => c
            .minima
            .iter()
            .filter(|m| m.free_energy < cont.free_energy)
            .count(),
        _ => c.minima.len(),
    };
    LandscapePoint {
        temperature: t,
        library_probability: plib,
        n_minima,
        continuum_weight: cw,
    }
}

/// First sign change of P_lib − 1/2 on the grid, refined by bisection.
fn melt(
    grid: &[f64],
    points: &[LandscapePoint],
    f: impl Fn(f64) -> Result<f64, EngineError>,
    max_iter: usize,
    rel_tol: f64,
) -> Result<Option<f64>, EngineError> {
    for k in 1..grid.len() {
        let (a, b) = (
            points[k - 1].library_probability - 0.5,
            points[k].library_probability - 0.5,
        );
        if a == 0.0 {
            return Ok(Some(grid[k - 1]));
        }
        if a.is_nan() || b.is_nan() || a.signum() == b.signum() && b != 0.0 {
            continue;
        }
        let (mut lo, mut hi) = (grid[k - 1], grid[k]);
        let mut flo = a;
        for _ in 0..max_iter {
            if hi - lo <= rel_tol * hi {
                break;
            }
            let mid = 0.5 * (lo + hi);
            let fm = f(mid)?;
            if fm == 0.0 {
                return Ok(Some(mid));
            }
            if fm.signum() == flo.signum() {
                lo = mid;
                flo = fm;
            } else {
                hi = mid;
            }
        }
        return Ok(Some(0.5 * (lo + hi)));
    }
    Ok(None)
}
