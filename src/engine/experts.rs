//! One model per free-energy minimum (model.md §7): split the training patterns by the minimum
//! their quench reaches, train one expert per group, split again while an expert swallows
//! patterns, and gate queries by their likelihood under each expert.

use super::EngineError;
use super::control::{Interrupt, Observer, Progress};
use super::dataset::Dataset;
use super::exact::{Enumeration, ExactOptions};
use super::interactions::InteractionSet;
use super::model::Model;
use super::quench::quench;
use super::sampler::Kernel;
use super::spins::Pattern;
use super::train::{NoCheckpoints, TrainingConfig, TrainingReport, train};
use std::collections::BTreeMap;
use std::sync::Arc;

/// When to stop splitting.
#[derive(Clone, Debug)]
pub struct SplitOptions {
    /// Patterns with a weight below this need not be held by an expert.
    pub min_weight: f64,
    /// At most this many experts.
    pub max_experts: usize,
}

/// One trained expert.
#[derive(Clone, Debug)]
pub struct Expert {
    pub model: Model,
    /// Indices of the distinct training patterns it was trained on.
    pub patterns: Vec<usize>,
    /// π_m: its share of the training weight.
    pub share: f64,
    /// Which of its patterns are minima of its energy (a quench from them stays put).
    pub held: Vec<usize>,
    pub report: TrainingReport,
}

/// The result of splitting.
#[derive(Clone, Debug)]
pub struct Experts {
    pub experts: Vec<Expert>,
    /// Patterns (above `min_weight`) that no expert holds as a minimum.
    pub unheld: Vec<usize>,
    /// Splitting rounds done.
    pub rounds: usize,
    /// Why splitting stopped.
    pub stop_reason: String,
}

/// Group pattern indices by the end state of a zero-temperature quench under `model`.
pub fn group_by_quench(model: &Model, patterns: &[Pattern], which: &[usize]) -> Vec<Vec<usize>> {
    let kernel = Kernel::new(model);
    let mut groups: BTreeMap<Pattern, Vec<usize>> = BTreeMap::new();
    let mut spins = vec![0i8; model.n()];
    for &i in which {
        patterns[i].write_spins(&mut spins);
        let end = quench(&kernel, &mut spins, None);
        groups.entry(end.pattern).or_default().push(i);
    }
    groups.into_values().collect()
}

/// Which of `which` are local minima of `model` (a quench from them does not move).
pub fn held_patterns(model: &Model, patterns: &[Pattern], which: &[usize]) -> Vec<usize> {
    let kernel = Kernel::new(model);
    let mut spins = vec![0i8; model.n()];
    which
        .iter()
        .copied()
        .filter(|&i| {
            patterns[i].write_spins(&mut spins);
            quench(&kernel, &mut spins, None).pattern == patterns[i]
        })
        .collect()
}

/// Train experts: start from the groups of the parent's quench, train one expert per group on
/// that group's samples (weights renormalised within it); while an expert swallows patterns
/// above `min_weight`, move the swallowed ones (grouped by the state that swallows them) to new
/// groups and retrain, up to `max_experts`.
pub fn train_experts(
    data: &Dataset,
    set: Arc<InteractionSet>,
    cfg: &TrainingConfig,
    parent: &Model,
    opts: &SplitOptions,
    interrupt: &Interrupt,
    observer: &dyn Observer,
) -> Result<Experts, EngineError> {
    let patterns = data.patterns();
    let weights = data.weights();
    let all: Vec<usize> = (0..patterns.len()).collect();
    let mut queue: Vec<Vec<usize>> = group_by_quench(parent, patterns, &all);
    // More minima than experts allowed: the heaviest groups keep their own expert, the rest
    // share the last one.
    let weight = |g: &Vec<usize>| g.iter().map(|&i| weights[i]).sum::<f64>();
    queue.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
    if queue.len() > opts.max_experts.max(1) {
        let rest: Vec<usize> = queue
            .drain(opts.max_experts.max(1) - 1..)
            .flatten()
            .collect();
        queue.push(rest);
    }
    // Popped from the end: the lightest groups are trained first.
    let mut done: Vec<Expert> = Vec::new();
    let mut rounds = 0usize;
    let mut capped = false;
    while let Some(group) = queue.pop() {
        interrupt.check()?;
        rounds += 1;
        let sub = data.subset(&group)?;
        let trained = train(
            &sub,
            set.clone(),
            cfg,
            None,
            interrupt,
            &super::control::NoObserver,
            &NoCheckpoints,
        )?;
        let held = held_patterns(&trained.model, patterns, &group);
        let swallowed: Vec<usize> = group
            .iter()
            .copied()
            .filter(|i| !held.contains(i) && weights[*i] >= opts.min_weight)
            .collect();
        let room = opts
            .max_experts
            .saturating_sub(done.len() + queue.len() + 1);
        if !swallowed.is_empty() && !held.is_empty() && room > 0 {
            // Keep the held patterns (and the light ones) here; the swallowed go to new groups.
            let keep: Vec<usize> = group
                .iter()
                .copied()
                .filter(|i| !swallowed.contains(i))
                .collect();
            let mut new_groups = group_by_quench(&trained.model, patterns, &swallowed);
            new_groups.truncate(room);
            let moved: Vec<usize> = new_groups.iter().flatten().copied().collect();
            let mut keep = keep;
            keep.extend(swallowed.iter().copied().filter(|i| !moved.contains(i)));
            keep.sort_unstable();
            queue.push(keep);
            queue.extend(new_groups);
        } else {
            if !swallowed.is_empty() && room == 0 {
                capped = true;
            }
            let share = group.iter().map(|&i| weights[i]).sum();
            done.push(Expert {
                model: trained.model,
                patterns: group,
                share,
                held,
                report: trained.report,
            });
        }
        observer.progress(&Progress {
            stage: "experts",
            iteration: rounds as u64,
            message: Some(format!(
                "{} experts trained, {} groups waiting",
                done.len(),
                queue.len()
            )),
            ..Default::default()
        });
        if rounds > 4 * opts.max_experts + 16 {
            break;
        }
    }
    let held: std::collections::HashSet<usize> =
        done.iter().flat_map(|e| e.held.iter().copied()).collect();
    let unheld: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !held.contains(i) && weights[*i] >= opts.min_weight)
        .collect();
    let stop_reason = if unheld.is_empty() {
        "every pattern above the weight threshold is a minimum of some expert".to_string()
    } else if capped {
        format!(
            "the cap of {} experts was reached with {} patterns still not held",
            opts.max_experts,
            unheld.len()
        )
    } else {
        format!(
            "{} patterns are not minima of any expert even alone in their group (their expert's description cannot hold them)",
            unheld.len()
        )
    };
    Ok(Experts {
        experts: done,
        unheld,
        rounds,
        stop_reason,
    })
}

/// How an expert's normaliser enters the gate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Normaliser {
    /// ln Z_m exact (N ≤ the enumeration cap).
    Exact(f64),
    /// Z-free: ln Z_m ≈ −E_m(ξ*_m)/T, the Boltzmann factor of the expert's deepest held minimum
    /// (the score is then how far the query sits above that minimum).
    Minimum(f64),
}

impl Normaliser {
    pub fn log_z(self) -> f64 {
        match self {
            Normaliser::Exact(l) | Normaliser::Minimum(l) => l,
        }
    }

    /// Exact ln Z when N ≤ `exact_max`, else the energy of the deepest of `minima`.
    pub fn for_expert(
        model: &Model,
        minima: &[Pattern],
        temperature: f64,
        exact_max: usize,
    ) -> Result<Self, EngineError> {
        if model.n() <= exact_max {
            let opts = ExactOptions {
                max_spins: exact_max,
                ..Default::default()
            };
            let e = Enumeration::new(model, temperature, &opts, &Interrupt::new())?;
            return Ok(Normaliser::Exact(e.log_partition()));
        }
        Ok(Normaliser::Minimum(Self::deepest(
            model,
            minima,
            temperature,
        )))
    }

    /// −min_ξ E_m(ξ)/T over the given minima.
    pub fn deepest(model: &Model, minima: &[Pattern], temperature: f64) -> f64 {
        let mut spins = vec![0i8; model.n()];
        minima
            .iter()
            .map(|p| {
                p.write_spins(&mut spins);
                -model.energy(&spins) / temperature
            })
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// Gate scores of a query under each expert: ln p_m(q) (+ ln π_m when `posterior`). Unknown
/// bits are completed by each expert (its zero-temperature quench with the known bits held),
/// so a partial query is scored at its best completion in every expert.
pub fn gate_scores(
    experts: &[(&Kernel, Normaliser, f64)],
    query: &[Option<bool>],
    temperature: f64,
    posterior: bool,
) -> Vec<f64> {
    let held: Vec<bool> = query.iter().map(Option::is_some).collect();
    let any_unknown = held.iter().any(|h| !h);
    experts
        .iter()
        .map(|(kernel, norm, share)| {
            let mut spins: Vec<i8> = query
                .iter()
                .map(|b| if *b == Some(true) { 1 } else { -1 })
                .collect();
            if any_unknown {
                quench(kernel, &mut spins, Some(&held));
            }
            let ll = -kernel.energy(&spins) / temperature - norm.log_z();
            if posterior { ll + share.ln() } else { ll }
        })
        .collect()
}

/// The planted data set of the experts evidence (issue 7): three random common patterns (count
/// 100 each) and three rare ones (count 5), each rare one `flips` random flips from its common
/// one; seeded.
pub fn planted_common_rare(n: usize, flips: usize, seed: u64) -> Result<Dataset, EngineError> {
    if flips > n {
        return Err(EngineError::invalid("flips", "more flips than spins"));
    }
    let mut rng = super::rng::ChainRng::new(seed, 0);
    let commons: Vec<Vec<i8>> = (0..3)
        .map(|_| (0..n).map(|_| rng.spin()).collect())
        .collect();
    let mut patterns: Vec<Pattern> = commons.iter().map(|c| Pattern::from_spins(c)).collect();
    for c in &commons {
        let mut r = c.clone();
        let mut flipped = std::collections::BTreeSet::new();
        while flipped.len() < flips {
            flipped.insert(rng.below(n as u64) as usize);
        }
        for &a in &flipped {
            r[a] = -r[a];
        }
        patterns.push(Pattern::from_spins(&r));
    }
    Dataset::new(n, patterns, vec![100, 100, 100, 5, 5, 5])
}
