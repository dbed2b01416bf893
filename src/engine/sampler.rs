//! Monte Carlo over many independent chains: heat-bath (Gibbs) and Metropolis single-spin updates,
//! sequential or random site order, fixed temperature or an annealing schedule in β, clamped spins,
//! and parallel tempering (replica exchange). See model.md §2 and §4.
//!
//! A [`Kernel`] is built once from a [`Model`]. For models of order ≤ 2 it holds the dense field
//! vector and the N×N row-major coupling matrix; every chain keeps its local fields h up to date
//! incrementally, so an attempt costs O(1) and an accepted flip of spin a costs one row update
//! (h += −2σ_a W_a·). Higher orders use the incidence lists: a flip of a updates the fields of the
//! other spins of every member containing a — or, for order 3 with most triplets present, adds n
//! rows of the dense triplet slab (`Dense3`).
//!
//! An attempt compares β ΔE with a threshold drawn in advance for the whole sweep (`fill_thresholds`);
//! chains of a block sweep in lock step, deciding for the whole block before updating the takers;
//! the dense loops are compiled for several vector widths and the CPU's best runs
//! ([`super::simd`]).
//!
//! Chains are independent and run in parallel on the current rayon pool; chain c draws from
//! `ChainRng::new(seed, c)`, so results are bitwise the same on any number of threads.

use super::EngineError;
use super::control::{Interrupt, SPIN_FLIP_ATTEMPTS};
use super::model::Model;
use super::rng::ChainRng;
use super::simd::simd_dispatch;
use super::spins::Pattern;
use rayon::prelude::*;

/// ln x for a positive normal x, branch-free so that a loop over a slice vectorises: x = 2^k m
/// with m ∈ [√½, √2), ln m = 2 atanh s = 2 Σ_i s^{2i+1}/(2i+1), s = (m − 1)/(m + 1), |s| ≤ 0.172;
/// the series stops at s^{21} (remainder < 10^{−17} relative).
#[inline(always)]
pub(crate) fn ln_fast(x: f64) -> f64 {
    const SQRT_HALF_BITS: u64 = 0x3FE6_A09E_667F_3BCD;
    const MAGIC: f64 = 6755399441055744.0; // 1.5 · 2^52: k + MAGIC has k in its low bits
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // 33 significant bits: k · HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let bits = x.to_bits();
    let k = (bits.wrapping_sub(SQRT_HALF_BITS) as i64) >> 52;
    let m = f64::from_bits(bits.wrapping_sub((k as u64) << 52));
    // k as f64 without an integer-to-float conversion (which baseline vector units lack).
    let kf = f64::from_bits(MAGIC.to_bits().wrapping_add(k as u64)) - MAGIC;
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let p = 2.0
        + z * (2.0 / 3.0
            + z * (2.0 / 5.0
                + z * (2.0 / 7.0
                    + z * (2.0 / 9.0
                        + z * (2.0 / 11.0
                            + z * (2.0 / 13.0
                                + z * (2.0 / 15.0
                                    + z * (2.0 / 17.0 + z * (2.0 / 19.0 + z * (2.0 / 21.0))))))))));
    kf * LN2_HI + (kf * LN2_LO + s * p)
}

/// Draw the acceptance thresholds of one sweep (one uniform deviate u per attempt, in order): a
/// flip with energy change ΔE is taken iff
/// - Metropolis: β ΔE ≤ −ln u, u ∈ (0, 1] (an exponential variate), so P = min(1, e^{−βΔE});
/// - heat bath: β ΔE < ln((1 − u)/u), u ∈ (0, 1) (a logistic variate), so P = 1/(1 + e^{βΔE}).
///
/// The logarithms do not depend on the state of the chain, so they are computed for the whole
/// sweep in one vectorised pass, and each attempt is one multiply and one comparison instead of
/// an exponential on the critical path.
#[inline(always)]
fn fill_thresholds<const METROPOLIS: bool>(rng: &mut ChainRng, thr: &mut [f64]) {
    const ULP: f64 = 1.0 / (1u64 << 53) as f64;
    for t in thr.iter_mut() {
        let k = (rng.next_u64() >> 11) as f64;
        *t = if METROPOLIS {
            (k + 1.0) * ULP
        } else {
            (k + 0.5) * ULP
        };
    }
    if METROPOLIS {
        for t in thr.iter_mut() {
            *t = -ln_fast(*t);
        }
    } else {
        for t in thr.iter_mut() {
            *t = ln_fast((1.0 - *t) / *t);
        }
    }
}

/// Whether a flip with energy change `de` is taken, given its threshold (see [`fill_thresholds`]).
#[inline(always)]
fn accept<const METROPOLIS: bool>(de: f64, beta: f64, threshold: f64) -> bool {
    if METROPOLIS {
        beta * de <= threshold
    } else {
        beta * de < threshold
    }
}

/// How often (in sweeps) a chain looks at the interrupt flag.
const INTERRUPT_EVERY: usize = 4;

#[derive(Clone, Debug)]
enum Couplings {
    /// E = −offset − Σ_a field_a σ_a − Σ_{a<b} W_ab σ_a σ_b; `coupling` row-major, symmetric,
    /// zero diagonal.
    Dense { field: Vec<f64>, coupling: Vec<f64> },
    /// Members of order ≥ 2 by incidence: for spin a, `terms[start[a]..start[a+1]]`; each term is
    /// (J_S, the other spins of S as a range of `others`). Order-1 members are in `field`.
    General {
        field: Vec<f64>,
        start: Vec<u32>,
        terms: Vec<Term>,
        others: Vec<u32>,
        /// Every member of order ≥ 2 once: (J_S, range of `member_spins`).
        members: Vec<Term>,
        member_spins: Vec<u32>,
        /// For a dense model of order 3, the flip update in dense form (see [`Dense3`]).
        dense3: Option<Box<Dense3>>,
    },
}

/// The couplings of a model of order ≤ 3 with most triplets present, laid out for the flip update
/// Δh_b = −2σ_a^old (W_ab + Σ_c T_abc σ_c): `pair` is W (n × n), `triple` is T (n × n × n,
/// symmetric, zero where indices repeat). A flip costs n² multiply-adds in unit-stride rows instead
/// of a scattered update per triplet.
#[derive(Clone, Debug)]
pub(crate) struct Dense3 {
    pair: Vec<f64>,
    triple: Vec<f64>,
}

/// Largest N for the dense order-3 layout (n³ couplings: 16 MiB at 128).
const DENSE3_MAX_SPINS: usize = 128;

#[derive(Clone, Copy, Debug)]
struct Term {
    j: f64,
    start: u32,
    len: u32,
}

impl Dense3 {
    /// The dense layout, when every member has order ≤ 3, N ≤ [`DENSE3_MAX_SPINS`] and at least an
    /// eighth of all triplets are present (below that the scattered update does less work).
    fn build(n: usize, members: &[Term], member_spins: &[u32]) -> Option<Dense3> {
        if !(3..=DENSE3_MAX_SPINS).contains(&n) || members.iter().any(|m| m.len > 3) {
            return None;
        }
        let triplets = members.iter().filter(|m| m.len == 3).count();
        if 8 * triplets < n * (n - 1) * (n - 2) / 6 {
            return None;
        }
        let mut pair = vec![0.0; n * n];
        let mut triple = vec![0.0; n * n * n];
        for m in members {
            let s = &member_spins[m.start as usize..(m.start + m.len) as usize];
            match *s {
                [a, b] => {
                    let (a, b) = (a as usize, b as usize);
                    pair[a * n + b] += m.j;
                    pair[b * n + a] += m.j;
                }
                [a, b, c] => {
                    let (a, b, c) = (a as usize, b as usize, c as usize);
                    for (x, y, z) in [
                        (a, b, c),
                        (a, c, b),
                        (b, a, c),
                        (b, c, a),
                        (c, a, b),
                        (c, b, a),
                    ] {
                        triple[(x * n + y) * n + z] += m.j;
                    }
                }
                _ => unreachable!("orders 2 and 3 only"),
            }
        }
        Some(Dense3 { pair, triple })
    }
}

simd_dispatch! {
    /// h += factor · (W_a + Σ_c σ_c T_ac), row by row (T symmetric, so T_ac is row c of slab a).
    fn dense3_update / dense3_update_at <>(
        d: &Dense3,
        a: usize,
        factor: f64,
        spins: &[i8],
        h: &mut [f64],
    ) -> () {
        let n = h.len();
        for (hb, &w) in h.iter_mut().zip(&d.pair[a * n..(a + 1) * n]) {
            *hb += factor * w;
        }
        let slab = &d.triple[a * n * n..(a + 1) * n * n];
        for (row, &sc) in slab.chunks_exact(n).zip(spins) {
            let k = factor * sc as f64;
            for (hb, &t) in h.iter_mut().zip(row) {
                *hb += k * t;
            }
        }
    }
}

/// The fast form of a model's energy and local fields, built once and shared by all chains.
#[derive(Clone, Debug)]
pub struct Kernel {
    n: usize,
    offset: f64,
    couplings: Couplings,
    /// max_a Σ_{S∋a} |J_S|: a bound on |h_a|.
    field_bound: f64,
}

impl Kernel {
    pub fn new(model: &Model) -> Kernel {
        let n = model.n();
        let offset = model.offset();
        if let Some(p) = model.pairwise() {
            let mut bound = 0.0f64;
            for a in 0..n {
                let row: f64 = p.coupling[a * n..(a + 1) * n].iter().map(|w| w.abs()).sum();
                bound = bound.max(row + p.field[a].abs());
            }
            return Kernel {
                n,
                offset,
                couplings: Couplings::Dense {
                    field: p.field,
                    coupling: p.coupling,
                },
                field_bound: bound,
            };
        }
        let set = model.set();
        let mut field = vec![0.0; n];
        let mut per_spin: Vec<Vec<(f64, Vec<u32>)>> = vec![Vec::new(); n];
        let mut members = Vec::new();
        let mut member_spins = Vec::new();
        for (i, &j) in model.couplings().iter().enumerate() {
            if j == 0.0 {
                continue;
            }
            let s = set.subset(i).to_vec();
            if s.len() == 1 {
                field[s[0] as usize] += j;
                continue;
            }
            members.push(Term {
                j,
                start: member_spins.len() as u32,
                len: s.len() as u32,
            });
            member_spins.extend_from_slice(&s);
            for &a in &s {
                let rest: Vec<u32> = s.iter().copied().filter(|&b| b != a).collect();
                per_spin[a as usize].push((j, rest));
            }
        }
        let mut start = Vec::with_capacity(n + 1);
        let mut terms = Vec::new();
        let mut others = Vec::new();
        let mut bound = 0.0f64;
        start.push(0u32);
        for (a, list) in per_spin.into_iter().enumerate() {
            let mut b = field[a].abs();
            for (j, rest) in list {
                b += j.abs();
                terms.push(Term {
                    j,
                    start: others.len() as u32,
                    len: rest.len() as u32,
                });
                others.extend_from_slice(&rest);
            }
            bound = bound.max(b);
            start.push(terms.len() as u32);
        }
        let dense3 = Dense3::build(n, &members, &member_spins).map(Box::new);
        Kernel {
            n,
            offset,
            couplings: Couplings::General {
                field,
                start,
                terms,
                others,
                members,
                member_spins,
                dense3,
            },
            field_bound: bound,
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// An upper bound on |h_a| over all spins and configurations.
    pub fn field_bound(&self) -> f64 {
        self.field_bound
    }

    /// True when the dense pairwise path is used.
    pub fn is_dense(&self) -> bool {
        matches!(self.couplings, Couplings::Dense { .. })
    }

    /// E(σ) given its local fields `h` (O(N) on the dense path).
    pub(crate) fn energy_with_fields(&self, spins: &[i8], h: &[f64]) -> f64 {
        match &self.couplings {
            Couplings::Dense { field, .. } => {
                // Σ_a σ_a h_a = Σ_a field_a σ_a + 2 Σ_{a<b} W_ab σ_a σ_b.
                let mut sh = 0.0;
                let mut sf = 0.0;
                for a in 0..self.n {
                    let s = spins[a] as f64;
                    sh += s * h[a];
                    sf += s * field[a];
                }
                -self.offset - 0.5 * (sh + sf)
            }
            Couplings::General { .. } => self.energy(spins),
        }
    }

    /// E(σ) = −J_∅ − Σ_S J_S χ_S(σ).
    pub fn energy(&self, spins: &[i8]) -> f64 {
        let n = self.n;
        debug_assert_eq!(spins.len(), n);
        let mut e = -self.offset;
        match &self.couplings {
            Couplings::Dense { field, coupling } => {
                for a in 0..n {
                    let sa = spins[a] as f64;
                    let row = &coupling[a * n..(a + 1) * n];
                    let mut acc = 0.0;
                    for b in a + 1..n {
                        acc += row[b] * spins[b] as f64;
                    }
                    e -= sa * (field[a] + acc);
                }
            }
            Couplings::General {
                field,
                members,
                member_spins,
                ..
            } => {
                for a in 0..n {
                    e -= field[a] * spins[a] as f64;
                }
                for m in members {
                    let mut chi = 1i8;
                    for &b in &member_spins[m.start as usize..(m.start + m.len) as usize] {
                        chi *= spins[b as usize];
                    }
                    e -= m.j * chi as f64;
                }
            }
        }
        e
    }

    /// h_a(σ) = Σ_{S∋a} J_S Π_{b∈S∖a} σ_b for every a.
    pub fn local_fields(&self, spins: &[i8], out: &mut [f64]) {
        let n = self.n;
        debug_assert_eq!(spins.len(), n);
        debug_assert_eq!(out.len(), n);
        match &self.couplings {
            Couplings::Dense { field, coupling } => {
                out.copy_from_slice(field);
                // h = field + W σ, accumulated row by row (W symmetric): vectorises as axpy.
                for b in 0..n {
                    let sb = spins[b] as f64;
                    let row = &coupling[b * n..(b + 1) * n];
                    for (h, &w) in out.iter_mut().zip(row) {
                        *h += sb * w;
                    }
                }
            }
            Couplings::General {
                field,
                start,
                terms,
                others,
                ..
            } => {
                for a in 0..n {
                    let mut h = field[a];
                    for t in &terms[start[a] as usize..start[a + 1] as usize] {
                        let mut chi = 1i8;
                        for &b in &others[t.start as usize..(t.start + t.len) as usize] {
                            chi *= spins[b as usize];
                        }
                        h += t.j * chi as f64;
                    }
                    out[a] = h;
                }
            }
        }
    }

    /// Flip spin a and bring the local fields up to date.
    #[inline(always)]
    pub(crate) fn flip(&self, spins: &mut [i8], h: &mut [f64], a: usize) {
        let old = spins[a];
        spins[a] = -old;
        match &self.couplings {
            Couplings::Dense { coupling, .. } => {
                let n = self.n;
                let c = -2.0 * old as f64;
                let row = &coupling[a * n..(a + 1) * n];
                for (hb, &w) in h.iter_mut().zip(row) {
                    *hb += c * w;
                }
            }
            Couplings::General {
                dense3: Some(d), ..
            } => dense3_update(d, a, -2.0 * old as f64, spins, h),
            Couplings::General {
                start,
                terms,
                others,
                ..
            } => {
                let c = -2.0 * old as f64;
                for t in &terms[start[a] as usize..start[a + 1] as usize] {
                    let rest = &others[t.start as usize..(t.start + t.len) as usize];
                    let mut chi = 1i8;
                    for &b in rest {
                        chi *= spins[b as usize];
                    }
                    // h_b ∋ J_S σ_a Π_{S∖{a,b}} σ = J_S σ_a χ_{S∖a} σ_b.
                    let base = c * t.j * chi as f64;
                    for &b in rest {
                        h[b as usize] += base * spins[b as usize] as f64;
                    }
                }
            }
        }
    }
}

/// The single-spin update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Accept a flip with probability min(1, e^{−βΔE}).
    Metropolis,
    /// Draw σ_a from its conditional distribution: flip with probability 1 / (1 + e^{βΔE}).
    HeatBath,
}

/// The order in which a sweep visits the free sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteOrder {
    /// 0, 1, …, N − 1 (clamped sites skipped).
    Sequential,
    /// N_free sites drawn uniformly with replacement.
    Random,
}

/// Inverse temperature per sweep over the burn-in and the recorded sweeps together
/// (t = 0 … burn_in + sweeps − 1; with a single sweep the end value is used).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Fixed { beta: f64 },
    Linear { beta_start: f64, beta_end: f64 },
    Geometric { beta_start: f64, beta_end: f64 },
}

impl Schedule {
    /// β at sweep t of `total`.
    pub fn beta(&self, t: usize, total: usize) -> f64 {
        let frac = if total <= 1 {
            1.0
        } else {
            t as f64 / (total - 1) as f64
        };
        match *self {
            Schedule::Fixed { beta } => beta,
            Schedule::Linear {
                beta_start,
                beta_end,
            } => beta_start + (beta_end - beta_start) * frac,
            Schedule::Geometric {
                beta_start,
                beta_end,
            } => beta_start * (beta_end / beta_start).powf(frac),
        }
    }

    fn validate(&self) -> Result<(), EngineError> {
        let ok = |b: f64| b.is_finite() && b >= 0.0;
        match *self {
            Schedule::Fixed { beta } if ok(beta) => Ok(()),
            Schedule::Linear {
                beta_start,
                beta_end,
            } if ok(beta_start) && ok(beta_end) => Ok(()),
            Schedule::Geometric {
                beta_start,
                beta_end,
            } if ok(beta_start) && ok(beta_end) && beta_start > 0.0 && beta_end > 0.0 => Ok(()),
            _ => Err(EngineError::invalid(
                "schedule",
                format!("β must be finite and ≥ 0 (> 0 for a geometric schedule), got {self:?}"),
            )),
        }
    }
}

/// What a sampling run does.
#[derive(Clone, Debug)]
pub struct Plan {
    pub rule: Rule,
    pub order: SiteOrder,
    pub schedule: Schedule,
    /// Sweeps before recording starts.
    pub burn_in: usize,
    /// Sweeps after the burn-in.
    pub sweeps: usize,
    /// Record every `thin`-th sweep (≥ 1).
    pub thin: usize,
    /// Keep samples (otherwise only the final chains and the counts).
    pub record: bool,
}

impl Plan {
    /// Heat-bath, sequential sites, fixed β, no burn-in, thin 1, nothing recorded.
    pub fn fixed(beta: f64, sweeps: usize) -> Plan {
        Plan {
            rule: Rule::HeatBath,
            order: SiteOrder::Sequential,
            schedule: Schedule::Fixed { beta },
            burn_in: 0,
            sweeps,
            thin: 1,
            record: false,
        }
    }

    fn validate(&self) -> Result<(), EngineError> {
        self.schedule.validate()?;
        if self.thin == 0 {
            return Err(EngineError::invalid("thin", "thin must be at least 1"));
        }
        Ok(())
    }
}

/// `count` chains of `n` spins each, with a clamp mask per chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Chains {
    n: usize,
    count: usize,
    spins: Vec<i8>,
    clamped: Vec<bool>,
}

impl Chains {
    /// Uniformly random initial states; chain c from `ChainRng::new(seed ^ K, c)`, a stream
    /// different from the one `sample` uses with the same seed.
    pub fn random(n: usize, count: usize, seed: u64) -> Chains {
        let mut spins = Vec::with_capacity(n * count);
        for c in 0..count {
            let mut r = ChainRng::new(seed ^ 0x5EED_1417_C4A1_05ED, c as u64);
            spins.extend((0..n).map(|_| r.spin()));
        }
        Chains {
            n,
            count,
            spins,
            clamped: vec![false; n * count],
        }
    }

    /// One chain per pattern.
    ///
    /// # Panics
    /// If the patterns have different lengths.
    pub fn from_patterns(p: &[Pattern]) -> Chains {
        let n = p.first().map_or(0, |x| x.len());
        let mut spins = vec![0i8; n * p.len()];
        for (x, out) in p.iter().zip(spins.chunks_mut(n.max(1))) {
            assert_eq!(x.len(), n, "patterns of different lengths");
            x.write_spins(out);
        }
        Chains {
            n,
            count: p.len(),
            clamped: vec![false; spins.len()],
            spins,
        }
    }

    /// From `count × n` spins, chain after chain; any value > 0 is +1, others −1.
    ///
    /// # Panics
    /// If the length is not a multiple of n.
    pub fn from_spins(n: usize, spins: Vec<i8>) -> Chains {
        let count = if n == 0 {
            assert!(spins.is_empty(), "spins given for n = 0");
            0
        } else {
            assert_eq!(spins.len() % n, 0, "spins are not a whole number of chains");
            spins.len() / n
        };
        let spins: Vec<i8> = spins
            .into_iter()
            .map(|s| if s > 0 { 1 } else { -1 })
            .collect();
        Chains {
            n,
            count,
            clamped: vec![false; spins.len()],
            spins,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn spins(&self, chain: usize) -> &[i8] {
        &self.spins[chain * self.n..(chain + 1) * self.n]
    }

    /// All spins, chain after chain.
    pub fn all_spins(&self) -> &[i8] {
        &self.spins
    }

    pub fn pattern(&self, chain: usize) -> Pattern {
        Pattern::from_spins(self.spins(chain))
    }

    pub fn is_clamped(&self, chain: usize, site: usize) -> bool {
        self.clamped[chain * self.n + site]
    }

    /// Set spin `site` to `value` (> 0 is +1) in every chain and hold it there.
    pub fn clamp(&mut self, site: usize, value: i8) {
        for c in 0..self.count {
            self.clamp_chain(c, site, value);
        }
    }

    /// Set spin `site` of one chain to `value` (> 0 is +1) and hold it there.
    pub fn clamp_chain(&mut self, chain: usize, site: usize, value: i8) {
        assert!(
            site < self.n && chain < self.count,
            "site or chain out of range"
        );
        let i = chain * self.n + site;
        self.spins[i] = if value > 0 { 1 } else { -1 };
        self.clamped[i] = true;
    }

    pub fn unclamp_all(&mut self) {
        self.clamped.iter_mut().for_each(|c| *c = false);
    }
}

/// One recorded configuration.
#[derive(Clone, Debug)]
pub struct Sample {
    pub chain: usize,
    /// Sweeps after the burn-in (1-based: the sample taken after the s-th sweep).
    pub sweep: usize,
    pub pattern: Pattern,
    pub energy: f64,
}

/// What a run produced: samples ordered by chain, then sweep; attempted and accepted flips.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub samples: Vec<Sample>,
    pub attempts: u64,
    pub accepted: u64,
}

impl Run {
    /// accepted / attempts (0 when nothing was attempted).
    pub fn acceptance(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.accepted as f64 / self.attempts as f64
        }
    }
}

/// The state of one chain while it runs.
pub(crate) struct ChainState<'a> {
    pub(crate) spins: &'a mut [i8],
    pub(crate) h: Vec<f64>,
    pub(crate) energy: f64,
    /// The sites a sweep visits (the unclamped ones).
    pub(crate) free: Vec<u32>,
    /// Clamped sites (used by the lock-step sweep of a block of chains).
    mask: Vec<bool>,
    /// The acceptance thresholds of the current sweep (scratch, n entries).
    thr: Vec<f64>,
    pub(crate) attempts: u64,
    pub(crate) accepted: u64,
}

impl<'a> ChainState<'a> {
    pub(crate) fn new(kernel: &Kernel, spins: &'a mut [i8], clamped: &[bool]) -> Self {
        let mut h = vec![0.0; kernel.n];
        kernel.local_fields(spins, &mut h);
        Self::with_fields(kernel, spins, clamped, h)
    }

    fn with_fields(kernel: &Kernel, spins: &'a mut [i8], clamped: &[bool], h: Vec<f64>) -> Self {
        let energy = kernel.energy_with_fields(spins, &h);
        let free = (0..kernel.n as u32)
            .filter(|&a| !clamped[a as usize])
            .collect();
        ChainState {
            spins,
            h,
            energy,
            free,
            mask: clamped.to_vec(),
            thr: vec![0.0; kernel.n],
            attempts: 0,
            accepted: 0,
        }
    }

    /// The states of a block of chains (`spins` and `clamped` hold k × n entries). On the dense
    /// path the fields of all k chains are computed in one pass over the coupling matrix.
    pub(crate) fn new_block(kernel: &Kernel, spins: &'a mut [i8], clamped: &[bool]) -> Vec<Self> {
        let n = kernel.n;
        let Couplings::Dense { field, coupling } = &kernel.couplings else {
            return spins
                .chunks_mut(n)
                .zip(clamped.chunks(n))
                .map(|(s, c)| Self::new(kernel, s, c))
                .collect();
        };
        let k = spins.len() / n;
        let mut hs: Vec<Vec<f64>> = (0..k).map(|_| field.clone()).collect();
        for b in 0..n {
            let row = &coupling[b * n..(b + 1) * n];
            for (c, h) in hs.iter_mut().enumerate() {
                let sb = spins[c * n + b] as f64;
                for (x, &w) in h.iter_mut().zip(row) {
                    *x += sb * w;
                }
            }
        }
        spins
            .chunks_mut(n)
            .zip(clamped.chunks(n))
            .zip(hs)
            .map(|((s, c), h)| Self::with_fields(kernel, s, c, h))
            .collect()
    }

    /// Free every site (a clamp lifted part-way through a run).
    pub(crate) fn unclamp(&mut self) {
        self.mask.iter_mut().for_each(|m| *m = false);
        self.free = (0..self.mask.len() as u32).collect();
    }

    /// One sweep: `free.len()` attempts.
    #[inline]
    pub(crate) fn sweep(
        &mut self,
        kernel: &Kernel,
        rule: Rule,
        order: SiteOrder,
        beta: f64,
        rng: &mut ChainRng,
    ) {
        match (rule, order) {
            (Rule::Metropolis, SiteOrder::Sequential) => {
                self.sweep_with::<true, false>(kernel, beta, rng)
            }
            (Rule::Metropolis, SiteOrder::Random) => {
                self.sweep_with::<true, true>(kernel, beta, rng)
            }
            (Rule::HeatBath, SiteOrder::Sequential) => {
                self.sweep_with::<false, false>(kernel, beta, rng)
            }
            (Rule::HeatBath, SiteOrder::Random) => {
                self.sweep_with::<false, true>(kernel, beta, rng)
            }
        }
    }

    #[inline(always)]
    fn sweep_with<const METROPOLIS: bool, const RANDOM: bool>(
        &mut self,
        kernel: &Kernel,
        beta: f64,
        rng: &mut ChainRng,
    ) {
        match &kernel.couplings {
            Couplings::Dense { coupling, .. } => {
                let n = kernel.n;
                let m = self.free.len();
                let mut energy = self.energy;
                let accepted = dense_sweep::<METROPOLIS, RANDOM>(
                    coupling,
                    &self.free,
                    self.spins,
                    &mut self.h[..n],
                    &mut energy,
                    &mut self.thr,
                    beta,
                    rng,
                );
                self.energy = energy;
                self.accepted += accepted;
                self.attempts += m as u64;
            }
            Couplings::General { .. } => {
                let m = self.free.len();
                let count = if RANDOM { m } else { kernel.n };
                fill_thresholds::<METROPOLIS>(rng, &mut self.thr[..count]);
                for k in 0..m {
                    let (a, t) = if RANDOM {
                        (
                            self.free[rng.below(m as u64) as usize] as usize,
                            self.thr[k],
                        )
                    } else {
                        let a = self.free[k] as usize;
                        (a, self.thr[a])
                    };
                    let de = 2.0 * self.spins[a] as f64 * self.h[a];
                    if accept::<METROPOLIS>(de, beta, t) {
                        kernel.flip(self.spins, &mut self.h, a);
                        self.energy += de;
                        self.accepted += 1;
                    }
                }
                self.attempts += m as u64;
            }
        }
    }

    fn record(&self, chain: usize, sweep: usize) -> Sample {
        Sample {
            chain,
            sweep,
            pattern: Pattern::from_spins(self.spins),
            energy: self.energy,
        }
    }
}

simd_dispatch! {
    /// One sweep of one chain on the dense kernel: `free.len()` attempts; returns the number taken.
    /// `thr` (n entries) is scratch for the thresholds: a sequential sweep draws one per site (clamped
    /// ones too, so the stream does not depend on the clamps' positions), a random one per attempt.
    fn dense_sweep / dense_sweep_at <const METROPOLIS: bool, const RANDOM: bool>(
        coupling: &[f64],
        free: &[u32],
        spins: &mut [i8],
        h: &mut [f64],
        energy: &mut f64,
        thr: &mut [f64],
        beta: f64,
        rng: &mut ChainRng,
    ) -> u64 {
        let n = h.len();
        let m = free.len();
        let mut accepted = 0u64;
        let mut e = *energy;
        fill_thresholds::<METROPOLIS>(rng, &mut thr[..if RANDOM { m } else { n }]);
        for k in 0..m {
            let (a, t) = if RANDOM {
                (free[rng.below(m as u64) as usize] as usize, thr[k])
            } else {
                let a = free[k] as usize;
                (a, thr[a])
            };
            let s = spins[a];
            let de = 2.0 * s as f64 * h[a];
            if accept::<METROPOLIS>(de, beta, t) {
                spins[a] = -s;
                e += de;
                accepted += 1;
                let c = -2.0 * s as f64;
                let row = &coupling[a * n..(a + 1) * n];
                for (hb, &w) in h.iter_mut().zip(row) {
                    *hb += c * w;
                }
            }
        }
        *energy = e;
        accepted
    }
}

fn check_chains(kernel: &Kernel, chains: &Chains, field: &str) -> Result<(), EngineError> {
    if chains.n != kernel.n {
        return Err(EngineError::invalid(
            field,
            format!("chains have {} spins, the model has {}", chains.n, kernel.n),
        ));
    }
    Ok(())
}

/// Run `plan` on every chain in parallel (chain c uses `ChainRng::new(seed, c)`).
pub fn sample(
    kernel: &Kernel,
    chains: &mut Chains,
    plan: &Plan,
    seed: u64,
    interrupt: &Interrupt,
) -> Result<Run, EngineError> {
    plan.validate()?;
    check_chains(kernel, chains, "chains")?;
    interrupt.check()?;
    let n = kernel.n;
    if n == 0 || chains.count == 0 {
        return Ok(Run::default());
    }
    let total = plan.burn_in + plan.sweeps;
    // Chains run in blocks; within a block, a sequential sweep visits site a in every chain before
    // site a + 1, so the coupling row W_a is fetched from memory once for all chains of the block
    // that flip a. Each chain's trajectory is the same whatever the blocking (its own RNG, same
    // order of its own updates), so the block size may follow the pool size.
    let threads = rayon::current_num_threads().max(1);
    let block = (chains.count / (4 * threads)).clamp(1, MAX_BLOCK);
    let results: Vec<Result<Run, EngineError>> = chains
        .spins
        .par_chunks_mut(n * block)
        .zip(chains.clamped.par_chunks(n * block))
        .enumerate()
        .map(|(b, (spins, clamped))| {
            let first = b * block;
            let mut states = ChainState::new_block(kernel, spins, clamped);
            let mut rngs: Vec<ChainRng> = (0..states.len())
                .map(|i| ChainRng::new(seed, (first + i) as u64))
                .collect();
            let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); states.len()];
            if plan.record {
                samples
                    .iter_mut()
                    .for_each(|v| v.reserve(plan.sweeps / plan.thin));
            }
            let lockstep =
                states.len() > 1 && plan.order == SiteOrder::Sequential && kernel.is_dense();
            let mut outcome = Ok(());
            for t in 0..total {
                if t.is_multiple_of(INTERRUPT_EVERY) && interrupt.is_raised() {
                    outcome = Err(EngineError::Interrupted);
                    break;
                }
                let beta = plan.schedule.beta(t, total);
                if lockstep {
                    sweep_lockstep(kernel, &mut states, &mut rngs, plan.rule, beta);
                } else {
                    for (st, rng) in states.iter_mut().zip(rngs.iter_mut()) {
                        st.sweep(kernel, plan.rule, plan.order, beta, rng);
                    }
                }
                if plan.record && t >= plan.burn_in {
                    let s = t + 1 - plan.burn_in;
                    if s.is_multiple_of(plan.thin) {
                        for (i, st) in states.iter().enumerate() {
                            samples[i].push(st.record(first + i, s));
                        }
                    }
                }
            }
            let attempts: u64 = states.iter().map(|s| s.attempts).sum();
            let accepted: u64 = states.iter().map(|s| s.accepted).sum();
            SPIN_FLIP_ATTEMPTS.add(attempts);
            outcome.map(|()| Run {
                samples: samples.into_iter().flatten().collect(),
                attempts,
                accepted,
            })
        })
        .collect();
    let mut run = Run::default();
    for r in results {
        let r = r?;
        run.attempts += r.attempts;
        run.accepted += r.accepted;
        run.samples.extend(r.samples);
    }
    Ok(run)
}

/// Most chains swept in lock step by one task.
const MAX_BLOCK: usize = 16;

/// One sequential sweep of every chain of a block, site by site (dense kernel): the same updates,
/// in the same order per chain, as [`ChainState::sweep`], with each coupling row reused across
/// the chains while it is in cache.
pub(crate) fn sweep_lockstep(
    kernel: &Kernel,
    states: &mut [ChainState],
    rngs: &mut [ChainRng],
    rule: Rule,
    beta: f64,
) {
    match rule {
        Rule::Metropolis => lockstep_with::<true>(kernel, states, rngs, beta),
        Rule::HeatBath => lockstep_with::<false>(kernel, states, rngs, beta),
    }
}

simd_dispatch! {
    fn lockstep_with / lockstep_at <const METROPOLIS: bool>(
        kernel: &Kernel,
        states: &mut [ChainState<'_>],
        rngs: &mut [ChainRng],
        beta: f64,
    ) -> () {
        let Couplings::Dense { coupling, .. } = &kernel.couplings else {
            unreachable!("lock-step sweeps are for the dense kernel")
        };
        let n = kernel.n;
        for (st, rng) in states.iter_mut().zip(rngs.iter_mut()) {
            st.attempts += st.free.len() as u64;
            fill_thresholds::<METROPOLIS>(rng, &mut st.thr[..n]);
        }
        for a in 0..n {
            let row = &coupling[a * n..(a + 1) * n];
            // Decide for every chain of the block first (branch-free), then update the takers: the
            // outcomes are random, so deciding and updating chain by chain mispredicts a branch on
            // a large share of attempts; a loop over the set bits mispredicts about once per site.
            for group in states.chunks_mut(64) {
                let mut takers = 0u64;
                for (c, st) in group.iter().enumerate() {
                    let de = 2.0 * st.spins[a] as f64 * st.h[a];
                    let take = !st.mask[a] & accept::<METROPOLIS>(de, beta, st.thr[a]);
                    takers |= (take as u64) << c;
                }
                while takers != 0 {
                    let st = &mut group[takers.trailing_zeros() as usize];
                    takers &= takers - 1;
                    let s = st.spins[a];
                    let de = 2.0 * s as f64 * st.h[a];
                    st.spins[a] = -s;
                    st.energy += de;
                    st.accepted += 1;
                    let c = -2.0 * s as f64;
                    for (hb, &w) in st.h[..n].iter_mut().zip(row) {
                        *hb += c * w;
                    }
                }
            }
        }
    }
}

/// The result of parallel tempering.
#[derive(Clone, Debug)]
pub struct Tempering {
    /// Samples (and counts over all replicas) at `betas[0]`.
    pub run: Run,
    /// Accepted / attempted swaps for each adjacent pair (`betas[k]`, `betas[k+1]`).
    pub swap_acceptance: Vec<f64>,
    /// The replicas at `betas[0]` after the run.
    pub final_chains: Chains,
}

/// Parallel tempering: `chains[k]` runs at `betas[k]` (all with the same count and clamps); every
/// `swap_every` sweeps, replicas at adjacent β of the same chain index exchange configurations with
/// probability min(1, e^{(β_k − β_{k+1})(E_k − E_{k+1})}), pairs k = 0, 1, … in turn. The plan's
/// schedule is ignored. Chain index c (all its replicas) uses `ChainRng::new(seed, c)`. On return
/// `chains[k]` holds the configurations at `betas[k]`.
#[allow(clippy::ptr_arg)] // the published signature takes the Vec
pub fn temper(
    kernel: &Kernel,
    betas: &[f64],
    chains: &mut Vec<Chains>,
    plan: &Plan,
    swap_every: usize,
    seed: u64,
    interrupt: &Interrupt,
) -> Result<Tempering, EngineError> {
    if plan.thin == 0 {
        return Err(EngineError::invalid("thin", "thin must be at least 1"));
    }
    if betas.is_empty() {
        return Err(EngineError::invalid("betas", "at least one β is needed"));
    }
    if let Some(b) = betas.iter().find(|b| !(b.is_finite() && **b >= 0.0)) {
        return Err(EngineError::invalid(
            "betas",
            format!("every β must be finite and ≥ 0, got {b}"),
        ));
    }
    if swap_every == 0 {
        return Err(EngineError::invalid("swap_every", "must be at least 1"));
    }
    if chains.len() != betas.len() {
        return Err(EngineError::invalid(
            "chains",
            format!("{} sets of chains for {} β", chains.len(), betas.len()),
        ));
    }
    for c in chains.iter() {
        check_chains(kernel, c, "chains")?;
        if c.count != chains[0].count {
            return Err(EngineError::invalid(
                "chains",
                "every β needs the same number of chains",
            ));
        }
        for (i, &cl) in c.clamped.iter().enumerate() {
            if cl != chains[0].clamped[i] || (cl && c.spins[i] != chains[0].spins[i]) {
                return Err(EngineError::invalid(
                    "chains",
                    "clamps must be the same at every β",
                ));
            }
        }
    }
    interrupt.check()?;
    let n = kernel.n;
    let k = betas.len();
    let count = chains[0].count;
    if n == 0 || count == 0 {
        return Ok(Tempering {
            run: Run::default(),
            swap_acceptance: vec![0.0; k - 1],
            final_chains: chains[0].clone(),
        });
    }
    let total = plan.burn_in + plan.sweeps;
    // Gather each chain index's replicas into one buffer: group c holds k × n spins.
    let mut groups: Vec<(Vec<i8>, Vec<bool>)> = (0..count)
        .map(|c| {
            let mut s = Vec::with_capacity(k * n);
            for ch in chains.iter() {
                s.extend_from_slice(ch.spins(c));
            }
            (s, chains[0].clamped[c * n..(c + 1) * n].to_vec())
        })
        .collect();
    type GroupOut = (Run, Vec<u64>, Vec<u64>, Vec<usize>);
    let results: Vec<Result<GroupOut, EngineError>> = groups
        .par_iter_mut()
        .enumerate()
        .map(|(c, (spins, clamped))| {
            let mut rng = ChainRng::new(seed, c as u64);
            let mut states: Vec<ChainState> = spins
                .chunks_mut(n)
                .map(|s| ChainState::new(kernel, s, clamped))
                .collect();
            // slot[b] = which state is at betas[b].
            let mut slot: Vec<usize> = (0..k).collect();
            let mut tried = vec![0u64; k.saturating_sub(1)];
            let mut swapped = vec![0u64; k.saturating_sub(1)];
            let mut samples = Vec::new();
            let mut outcome = Ok(());
            for t in 0..total {
                if t.is_multiple_of(INTERRUPT_EVERY) && interrupt.is_raised() {
                    outcome = Err(EngineError::Interrupted);
                    break;
                }
                for (b, &beta) in betas.iter().enumerate() {
                    states[slot[b]].sweep(kernel, plan.rule, plan.order, beta, &mut rng);
                }
                if (t + 1).is_multiple_of(swap_every) {
                    for b in 0..k - 1 {
                        let (i, j) = (slot[b], slot[b + 1]);
                        let x = (betas[b] - betas[b + 1]) * (states[i].energy - states[j].energy);
                        tried[b] += 1;
                        let u = rng.next_f64();
                        if x >= 0.0 || u < x.exp() {
                            slot.swap(b, b + 1);
                            swapped[b] += 1;
                        }
                    }
                }
                if plan.record && t >= plan.burn_in {
                    let s = t + 1 - plan.burn_in;
                    if s.is_multiple_of(plan.thin) {
                        samples.push(states[slot[0]].record(c, s));
                    }
                }
            }
            let attempts: u64 = states.iter().map(|s| s.attempts).sum();
            let accepted: u64 = states.iter().map(|s| s.accepted).sum();
            SPIN_FLIP_ATTEMPTS.add(attempts);
            outcome.map(|()| {
                (
                    Run {
                        samples,
                        attempts,
                        accepted,
                    },
                    tried,
                    swapped,
                    slot,
                )
            })
        })
        .collect();
    let mut run = Run::default();
    let mut tried = vec![0u64; k - 1];
    let mut swapped = vec![0u64; k - 1];
    let mut slots = Vec::with_capacity(count);
    for r in results {
        let (r, t, s, slot) = r?;
        run.attempts += r.attempts;
        run.accepted += r.accepted;
        run.samples.extend(r.samples);
        for b in 0..k - 1 {
            tried[b] += t[b];
            swapped[b] += s[b];
        }
        slots.push(slot);
    }
    for (c, ((spins, _), slot)) in groups.iter().zip(&slots).enumerate() {
        for (b, ch) in chains.iter_mut().enumerate() {
            let src = &spins[slot[b] * n..(slot[b] + 1) * n];
            ch.spins[c * n..(c + 1) * n].copy_from_slice(src);
        }
    }
    let swap_acceptance = tried
        .iter()
        .zip(&swapped)
        .map(|(&t, &s)| if t == 0 { 0.0 } else { s as f64 / t as f64 })
        .collect();
    Ok(Tempering {
        run,
        swap_acceptance,
        final_chains: chains[0].clone(),
    })
}

/// A geometric ladder of `replicas` inverse temperatures from `beta_target` (first) down to a hot
/// end where β · max|h| = 1/2, i.e. every flip is taken with probability ≥ e^{−1}/(1+e^{-1})
/// (and at least a factor 10 below the target).
pub fn default_betas(kernel: &Kernel, beta_target: f64, replicas: usize) -> Vec<f64> {
    if replicas == 0 {
        return Vec::new();
    }
    if replicas == 1 || beta_target <= 0.0 {
        return vec![beta_target; replicas];
    }
    let bound = kernel.field_bound.max(f64::MIN_POSITIVE);
    let hot = (0.5 / bound).min(beta_target / 10.0);
    let ratio = (hot / beta_target).powf(1.0 / (replicas - 1) as f64);
    (0..replicas)
        .map(|r| beta_target * ratio.powi(r as i32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::interactions::InteractionSet;

    fn random_model(set: InteractionSet, seed: u64) -> Model {
        let mut r = ChainRng::new(seed, 0);
        let j = (0..set.len()).map(|_| r.normal() * 0.5).collect();
        Model::new(set, j, 0.3).unwrap()
    }

    /// Every vector level the CPU has takes the same path, bit for bit (same flips, same fields,
    /// same energy), single-chain and lock-step, Metropolis and heat bath.
    #[test]
    fn every_simd_level_gives_identical_sweeps() {
        use crate::engine::simd::{Simd, available};
        let n = 37; // not a multiple of any vector width: the tails are exercised too
        let model = random_model(InteractionSet::order(n, 2, u64::MAX).unwrap(), 11);
        let kernel = Kernel::new(&model);
        let Couplings::Dense { coupling, .. } = &kernel.couplings else {
            panic!("order 2 is dense")
        };
        let run = |level: Simd, metropolis: bool| {
            let mut chains = Chains::random(n, 3, 5);
            let free: Vec<u32> = (0..n as u32).collect();
            let mut out = Vec::new();
            for c in 0..3 {
                let spins = &mut chains.spins[c * n..(c + 1) * n];
                let mut h = vec![0.0; n];
                kernel.local_fields(spins, &mut h);
                let mut e = kernel.energy(spins);
                let mut rng = ChainRng::new(9, c as u64);
                let mut thr = vec![0.0; n];
                let mut taken = 0;
                for _ in 0..50 {
                    taken += if metropolis {
                        dense_sweep_at::<true, true>(
                            level, coupling, &free, spins, &mut h, &mut e, &mut thr, 0.7, &mut rng,
                        )
                    } else {
                        dense_sweep_at::<false, false>(
                            level, coupling, &free, spins, &mut h, &mut e, &mut thr, 0.7, &mut rng,
                        )
                    };
                }
                out.push((
                    spins.to_vec(),
                    h.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    e.to_bits(),
                    taken,
                ));
            }
            let mut states = ChainState::new_block(&kernel, &mut chains.spins, &vec![false; 3 * n]);
            let mut rngs: Vec<ChainRng> = (0..3).map(|c| ChainRng::new(9, c)).collect();
            for _ in 0..50 {
                if metropolis {
                    lockstep_at::<true>(level, &kernel, &mut states, &mut rngs, 0.7);
                } else {
                    lockstep_at::<false>(level, &kernel, &mut states, &mut rngs, 0.7);
                }
            }
            let block: Vec<_> = states
                .iter()
                .map(|st| {
                    (
                        st.spins.to_vec(),
                        st.h.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        st.energy.to_bits(),
                        st.accepted,
                    )
                })
                .collect();
            (out, block)
        };
        for metropolis in [true, false] {
            let base = run(Simd::Base, metropolis);
            assert!(base.0.iter().all(|c| c.3 > 0), "the chains moved");
            for level in available() {
                assert_eq!(
                    run(level, metropolis),
                    base,
                    "{level:?} differs from the baseline"
                );
            }
        }
    }

    #[test]
    fn kernel_agrees_with_model_and_tracks_fields() {
        let sets = [
            InteractionSet::order(9, 2, u64::MAX).unwrap(),
            InteractionSet::order(7, 3, u64::MAX).unwrap(),
            InteractionSet::full(5).unwrap(),
            InteractionSet::custom(6, &[vec![0, 1, 2, 3], vec![5], vec![2, 4]]).unwrap(),
            InteractionSet::custom(10, &[vec![0, 1, 2], vec![3, 4, 5], vec![1, 7], vec![9]])
                .unwrap(),
        ];
        // Which flip update each set gets: the dense order-3 form only for (nearly) all triplets.
        let dense3 = [false, true, false, false, false];
        for (k, set) in sets.into_iter().enumerate() {
            let m = random_model(set, k as u64 + 10);
            let kern = Kernel::new(&m);
            assert_eq!(
                matches!(
                    &kern.couplings,
                    Couplings::General {
                        dense3: Some(_),
                        ..
                    }
                ),
                dense3[k],
                "set {k}"
            );
            let n = m.n();
            let mut r = ChainRng::new(3, k as u64);
            let mut s: Vec<i8> = (0..n).map(|_| r.spin()).collect();
            let mut h = vec![0.0; n];
            kern.local_fields(&s, &mut h);
            for _ in 0..50 {
                let a = r.below(n as u64) as usize;
                kern.flip(&mut s, &mut h, a);
                let exact = m.local_fields(&s);
                for b in 0..n {
                    assert!((h[b] - exact[b]).abs() < 1e-12, "set {k} spin {b}");
                }
                assert!((kern.energy(&s) - m.energy(&s)).abs() < 1e-12, "set {k}");
            }
        }
    }

    #[test]
    fn fast_logarithm_is_accurate() {
        let mut r = ChainRng::new(1, 1);
        let mut worst: f64 = 0.0;
        // Every binade the thresholds use (2^{-53} … 2^{53}), the reduction's edges, and 1.
        let mut xs: Vec<f64> = (-53..=53).map(|e| 2f64.powi(e)).collect();
        xs.extend([
            0.5f64.sqrt(),
            2f64.sqrt(),
            1.0 - f64::EPSILON,
            1.0 + f64::EPSILON,
        ]);
        xs.extend((0..200_000).map(|_| 2f64.powf((r.next_f64() - 0.5) * 106.0)));
        for x in xs {
            let (a, b) = (ln_fast(x), x.ln());
            let err = (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
            // Away from x = 1 the error is relative; near it, absolute against |ln x| ≥ |x − 1|/2.
            worst = worst.max(if b.abs() < 1e-300 { (a - b).abs() } else { err });
        }
        assert!(worst < 4.0 * f64::EPSILON, "relative error {worst:e}");
        assert_eq!(ln_fast(1.0), 0.0);
    }

    /// The thresholds make P(accept) what the rules say: for a grid of β ΔE, the fraction of
    /// 400,000 thresholds passed is within 5 standard errors √(p(1 − p)/n) of the exact value.
    #[test]
    fn thresholds_give_the_acceptance_probabilities() {
        let count = 400_000;
        let mut rng = ChainRng::new(3, 0);
        let mut metro = vec![0.0; count];
        let mut heat = vec![0.0; count];
        fill_thresholds::<true>(&mut rng, &mut metro);
        fill_thresholds::<false>(&mut rng, &mut heat);
        for x in [-3.0f64, -0.5, 0.0, 0.1, 0.7, 2.0, 5.0] {
            let want_m = f64::min(1.0, (-x).exp());
            let want_h = 1.0 / (1.0 + x.exp());
            for (thr, want, metropolis) in [(&metro, want_m, true), (&heat, want_h, false)] {
                let got = thr
                    .iter()
                    .filter(|&&t| {
                        if metropolis {
                            accept::<true>(x, 1.0, t)
                        } else {
                            accept::<false>(x, 1.0, t)
                        }
                    })
                    .count() as f64
                    / count as f64;
                let se = (want * (1.0 - want) / count as f64).sqrt();
                assert!(
                    (got - want).abs() <= 5.0 * se + 1e-12,
                    "β ΔE = {x}, metropolis {metropolis}: {got} against {want} (se {se:e})"
                );
            }
        }
    }

    #[test]
    fn schedules_hit_their_ends() {
        let l = Schedule::Linear {
            beta_start: 0.1,
            beta_end: 3.0,
        };
        assert_eq!(l.beta(0, 11), 0.1);
        assert!((l.beta(10, 11) - 3.0).abs() < 1e-15);
        let g = Schedule::Geometric {
            beta_start: 0.1,
            beta_end: 10.0,
        };
        assert!((g.beta(5, 11) - 1.0).abs() < 1e-12);
        assert!(
            Schedule::Geometric {
                beta_start: 0.0,
                beta_end: 1.0
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn default_ladder_is_geometric_and_starts_at_target() {
        let m = random_model(InteractionSet::order(8, 2, u64::MAX).unwrap(), 1);
        let k = Kernel::new(&m);
        let b = default_betas(&k, 2.0, 6);
        assert_eq!(b.len(), 6);
        assert_eq!(b[0], 2.0);
        assert!(b.windows(2).all(|w| w[1] < w[0]));
        assert!(b[5] * k.field_bound() <= 0.5 + 1e-12);
        assert_eq!(default_betas(&k, 2.0, 1), vec![2.0]);
    }
}
