//! Retrieval (model.md §6): which stored minimum a partial or corrupted pattern belongs to, with
//! a verdict per query, and the standard evaluation (cues from every training pattern).

use super::generate::Library;
use crate::engine::quench::Quenched;
use crate::engine::retrieve::{RetrievalOptions, retrieve};
use crate::engine::rng::ChainRng;
use crate::engine::sampler::Kernel;
use crate::engine::{EngineError, Interrupt, Pattern};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

/// What became of a query (or of one restart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Landed in a minimum that is a training pattern.
    Retrieved,
    /// Landed in a minimum that is not a training pattern.
    FalseState,
    /// Landed in no minimum of the library: the chain melted into the continuum.
    Escaped,
    /// Restarts disagree: no end state holds a majority.
    Ambiguous,
}

/// How end states are judged: by the census when there is one, else by the training set.
pub struct Judge<'a> {
    pub library: &'a Library,
    pub training: &'a HashSet<Pattern>,
}

impl Judge<'_> {
    pub fn verdict(&self, end: &Pattern) -> (Verdict, Option<i64>) {
        if self.library.has_census() {
            match self.library.find(end) {
                Some((id, "memory")) => (Verdict::Retrieved, Some(id)),
                Some((id, _)) => (Verdict::FalseState, Some(id)),
                None => (Verdict::Escaped, None),
            }
        } else if self.training.contains(end) {
            (Verdict::Retrieved, None)
        } else {
            (Verdict::FalseState, None)
        }
    }
}

/// The outcome of one query.
pub struct Outcome {
    pub verdict: Verdict,
    /// The majority end state.
    pub end: Pattern,
    pub energy: f64,
    pub minimum_id: Option<i64>,
    /// Share of restarts that reached the majority end state.
    pub confidence: f64,
    /// Per restart: end state, energy, verdict, minimum.
    pub restarts: Vec<(Quenched, Verdict, Option<i64>)>,
}

/// Run retrieval for one query and judge it.
pub fn retrieve_one(
    kernel: &Kernel,
    query: &[Option<bool>],
    opts: &RetrievalOptions,
    judge: &Judge,
    interrupt: &Interrupt,
) -> Result<Outcome, EngineError> {
    let ends = retrieve(kernel, query, opts, interrupt)?;
    let mut tally: HashMap<&Pattern, usize> = HashMap::new();
    for q in &ends {
        *tally.entry(&q.pattern).or_default() += 1;
    }
    // Majority end state; ties go to the lower energy, then to the first seen.
    let best = ends
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| {
            tally[&a.pattern]
                .cmp(&tally[&b.pattern])
                .then(b.energy.total_cmp(&a.energy))
                .then(j.cmp(i))
        })
        .map(|(i, _)| i)
        .ok_or_else(|| EngineError::invalid("restarts", "must be at least 1"))?;
    let top = ends[best].clone();
    let confidence = tally[&top.pattern] as f64 / ends.len() as f64;
    let (v, minimum_id) = judge.verdict(&top.pattern);
    let verdict = if ends.len() > 1 && confidence <= 0.5 {
        Verdict::Ambiguous
    } else {
        v
    };
    let restarts = ends
        .into_iter()
        .map(|q| {
            let (v, m) = judge.verdict(&q.pattern);
            (q, v, m)
        })
        .collect();
    Ok(Outcome {
        verdict,
        energy: top.energy,
        end: top.pattern,
        minimum_id,
        confidence,
        restarts,
    })
}

/// How cues are made from training patterns.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CueSpec {
    /// Fraction of bits flipped at random.
    pub flip_fraction: f64,
    /// Fraction of bits hidden (unknown).
    pub hide_fraction: f64,
    pub cues_per_pattern: usize,
    pub seed: u64,
}

/// A cue from pattern ξ: a random `flip` fraction of bits flipped, a random `hide` fraction
/// unknown (disjoint sets; at least one bit stays known).
pub fn make_cue(xi: &Pattern, spec: &CueSpec, rng: &mut ChainRng) -> Vec<Option<bool>> {
    let n = xi.len();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let n_flip = ((spec.flip_fraction * n as f64).round() as usize).min(n);
    let n_hide = ((spec.hide_fraction * n as f64).round() as usize).min(n - n_flip.min(n));
    let n_hide = n_hide.min(n.saturating_sub(1));
    let mut cue: Vec<Option<bool>> = (0..n).map(|a| Some(xi.bit(a))).collect();
    for &a in &order[..n_flip] {
        cue[a] = Some(!xi.bit(a));
    }
    for &a in &order[n_flip..(n_flip + n_hide).min(n)] {
        cue[a] = None;
    }
    cue
}

/// Retrieval statistics of one class of patterns.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ClassStats {
    /// The class: `all`, or a count range of the training pattern, e.g. `count 1`, `count 2-3`.
    pub class: String,
    pub patterns: usize,
    pub cues: usize,
    /// The cue ended in its own training pattern.
    pub retrieved: usize,
    /// Ended in another training pattern.
    pub wrong_memory: usize,
    pub false_state: usize,
    pub escaped: usize,
    pub ambiguous: usize,
    /// retrieved / cues.
    pub retrieval_rate: f64,
    /// Patterns retrieved from at least half of their cues.
    pub patterns_held: usize,
}

impl ClassStats {
    fn add(&mut self, own: bool, v: Verdict) {
        self.cues += 1;
        match (own, v) {
            (true, _) => self.retrieved += 1,
            (false, Verdict::Retrieved) => self.wrong_memory += 1,
            (false, Verdict::FalseState) => self.false_state += 1,
            (false, Verdict::Escaped) => self.escaped += 1,
            (false, Verdict::Ambiguous) => self.ambiguous += 1,
        }
    }

    fn finish(&mut self) {
        self.retrieval_rate = if self.cues > 0 {
            self.retrieved as f64 / self.cues as f64
        } else {
            0.0
        };
    }
}

/// Class label of a pattern by its count: powers of two (1, 2–3, 4–7, ...).
pub fn count_class(count: u64) -> (u32, String) {
    let k = 63 - count.max(1).leading_zeros();
    let lo = 1u64 << k;
    let hi = (lo << 1) - 1;
    (
        k,
        if lo == hi {
            format!("count {lo}")
        } else {
            format!("count {lo}-{hi}")
        },
    )
}

/// The evaluation report.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Evaluation {
    pub overall: ClassStats,
    /// By count of the training pattern (rare patterns are visible).
    pub by_weight: Vec<ClassStats>,
    /// Per evaluated pattern: index among the distinct patterns, count, share of its cues that
    /// came back to it.
    pub per_pattern: Vec<(usize, u64, f64)>,
}

/// A retrieval strategy: maps a cue to an outcome (single model, or a gated mixture).
pub trait Retriever: Sync {
    fn run(
        &self,
        cue: &[Option<bool>],
        seed: u64,
        interrupt: &Interrupt,
    ) -> Result<Outcome, EngineError>;
}

/// Evaluate retrieval over `patterns` (indices into the training set with their counts).
pub fn evaluate(
    retriever: &dyn Retriever,
    training: &[Pattern],
    counts: &[u64],
    which: &[usize],
    spec: &CueSpec,
    interrupt: &Interrupt,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Evaluation, EngineError> {
    use rayon::prelude::*;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<(usize, Vec<(bool, Verdict)>)> = which
        .par_iter()
        .map(|&mu| {
            let mut rng = ChainRng::new(spec.seed, mu as u64);
            let mut out = Vec::with_capacity(spec.cues_per_pattern);
            for c in 0..spec.cues_per_pattern {
                interrupt.check()?;
                let cue = make_cue(&training[mu], spec, &mut rng);
                let seed =
                    spec.seed ^ ((mu as u64) << 20 | c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let o = retriever.run(&cue, seed, interrupt)?;
                out.push((o.end == training[mu], o.verdict));
            }
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(k, which.len());
            Ok((mu, out))
        })
        .collect::<Result<_, EngineError>>()?;
    let mut overall = ClassStats {
        class: "all".into(),
        ..Default::default()
    };
    let mut classes: std::collections::BTreeMap<u32, ClassStats> = Default::default();
    let mut per_pattern = Vec::with_capacity(results.len());
    for (mu, outs) in &results {
        let (k, label) = count_class(counts[*mu]);
        let cls = classes.entry(k).or_insert_with(|| ClassStats {
            class: label,
            ..Default::default()
        });
        cls.patterns += 1;
        overall.patterns += 1;
        let mut own = 0;
        for &(hit, v) in outs {
            overall.add(hit, v);
            cls.add(hit, v);
            own += hit as usize;
        }
        let held = 2 * own >= outs.len().max(1);
        overall.patterns_held += held as usize;
        cls.patterns_held += held as usize;
        per_pattern.push((*mu, counts[*mu], own as f64 / outs.len().max(1) as f64));
    }
    overall.finish();
    let by_weight = classes
        .into_values()
        .map(|mut c| {
            c.finish();
            c
        })
        .collect();
    Ok(Evaluation {
        overall,
        by_weight,
        per_pattern,
    })
}

/// Retrieval in one model.
pub struct Single<'a> {
    pub kernel: &'a Kernel,
    pub opts: RetrievalOptions,
    pub judge: Judge<'a>,
}

impl Retriever for Single<'_> {
    fn run(
        &self,
        cue: &[Option<bool>],
        seed: u64,
        interrupt: &Interrupt,
    ) -> Result<Outcome, EngineError> {
        let opts = RetrievalOptions {
            seed,
            ..self.opts.clone()
        };
        retrieve_one(self.kernel, cue, &opts, &self.judge, interrupt)
    }
}
