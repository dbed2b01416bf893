//! Experts (model.md §7) on a planted data set, by exact enumeration: splitting holds every
//! pattern, gating by the query's likelihood retrieves rare and common patterns, the Z-free gate
//! agrees with the exact one, and the posterior gate loses the rare cues.

use boundstate::engine::experts::{
    Normaliser, SplitOptions, gate_scores, group_by_quench, held_patterns, planted_common_rare,
    train_experts,
};
use boundstate::engine::quench::quench;
use boundstate::engine::sampler::Kernel;
use boundstate::engine::train::{Method, NoCheckpoints, TrainingConfig, train};
use boundstate::engine::{
    ChainRng, Dataset, InteractionSet, Interrupt, Pattern, control::NoObserver,
};
use std::sync::Arc;

const N: usize = 16;

fn planted(seed: u64) -> Dataset {
    planted_common_rare(N, 4, seed).unwrap()
}

fn config() -> TrainingConfig {
    let mut c = TrainingConfig::new(Method::Exact);
    c.temperature = 1.0;
    c.l2 = 0.01;
    c
}

/// A cue: `flips` random bits of ξ flipped.
fn cue(xi: &Pattern, flips: usize, rng: &mut ChainRng) -> Vec<Option<bool>> {
    let mut q: Vec<Option<bool>> = (0..N).map(|a| Some(xi.bit(a))).collect();
    let mut done = std::collections::BTreeSet::new();
    while done.len() < flips {
        done.insert(rng.below(N as u64) as usize);
    }
    for &a in &done {
        q[a] = q[a].map(|b| !b);
    }
    q
}

/// Retrieval rates of one planted set: single model, likelihood gate (exact ln Z), Z-free gate,
/// posterior gate; 40 two-flip cues per pattern, retrieval by quench in the chosen model.
struct Rates {
    single_held: usize,
    unheld_by_experts: usize,
    single: [f64; 2],
    likelihood: [f64; 2],
    zfree: [f64; 2],
    posterior: [f64; 2],
    agreement: f64,
}

const CUES: usize = 40;

fn rates(seed: u64) -> Rates {
    let data = planted(seed);
    let set = Arc::new(InteractionSet::order(N, 2, u64::MAX).unwrap());
    let single = train(
        &data,
        set.clone(),
        &config(),
        None,
        &Interrupt::new(),
        &NoObserver,
        &NoCheckpoints,
    )
    .unwrap()
    .model;
    let all: Vec<usize> = (0..6).collect();
    let single_held = held_patterns(&single, data.patterns(), &all).len();
    let ex = train_experts(
        &data,
        set,
        &config(),
        &single,
        &SplitOptions {
            min_weight: 0.0,
            max_experts: 16,
        },
        &Interrupt::new(),
        &NoObserver,
    )
    .unwrap();
    let shares: f64 = ex.experts.iter().map(|e| e.share).sum();
    assert!((shares - 1.0).abs() < 1e-12);
    let kernels: Vec<Kernel> = ex.experts.iter().map(|e| Kernel::new(&e.model)).collect();
    let exact: Vec<(&Kernel, Normaliser, f64)> = ex
        .experts
        .iter()
        .zip(&kernels)
        .map(|(e, k)| {
            (
                k,
                Normaliser::for_expert(&e.model, &[], 1.0, 20).unwrap(),
                e.share,
            )
        })
        .collect();
    let zfree: Vec<(&Kernel, Normaliser, f64)> = ex
        .experts
        .iter()
        .zip(&kernels)
        .map(|(e, k)| {
            let minima: Vec<Pattern> = e.held.iter().map(|&i| data.patterns()[i].clone()).collect();
            (
                k,
                Normaliser::Minimum(Normaliser::deepest(&e.model, &minima, 1.0)),
                e.share,
            )
        })
        .collect();
    let mut rng = ChainRng::new(seed, 99);
    let (mut agree, mut total) = (0usize, 0usize);
    let mut hits = [[0usize; 2]; 4]; // [single, likelihood, Z-free, posterior][rare?]
    let single_kernel = Kernel::new(&single);
    let argmax = |s: Vec<f64>| {
        s.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    for (mu, xi) in data.patterns().iter().enumerate() {
        let rare = (mu >= 3) as usize;
        for _ in 0..CUES {
            let q = cue(xi, 2, &mut rng);
            let g_exact = argmax(gate_scores(&exact, &q, 1.0, false));
            let g_free = argmax(gate_scores(&zfree, &q, 1.0, false));
            let g_post = argmax(gate_scores(&exact, &q, 1.0, true));
            agree += (g_exact == g_free) as usize;
            total += 1;
            for (g, k) in [
                (0, &single_kernel),
                (1, &kernels[g_exact]),
                (2, &kernels[g_free]),
                (3, &kernels[g_post]),
            ] {
                let mut s: Vec<i8> = q
                    .iter()
                    .map(|b| if *b == Some(true) { 1 } else { -1 })
                    .collect();
                hits[g][rare] += (quench(k, &mut s, None).pattern == *xi) as usize;
            }
        }
    }
    let r = |h: [usize; 2]| {
        [
            h[0] as f64 / (3 * CUES) as f64,
            h[1] as f64 / (3 * CUES) as f64,
        ]
    };
    Rates {
        single_held,
        unheld_by_experts: ex.unheld.len(),
        single: r(hits[0]),
        likelihood: r(hits[1]),
        zfree: r(hits[2]),
        posterior: r(hits[3]),
        agreement: agree as f64 / total as f64,
    }
}

/// A 2-flip cue of a common pattern lands as close to its rare neighbour (4 flips away) when both
/// flips hit the 4 differing bits: C(4,2)/C(16,2) = 6/120 of cues, which a gate with every
/// minimum counted equally may give to the rare expert. Rates are over n = 120 cues per class;
/// the tolerance is 3 binomial standard deviations at the expected rate.
fn bound(expected: f64, n: usize) -> f64 {
    expected - 3.0 * (expected * (1.0 - expected) / n as f64).sqrt()
}

#[test]
fn experts_get_back_the_rare_patterns_a_single_model_loses() {
    // Seed 4: a planted set where the single order-2 model (T = 1, λ = 0.01) loses two of the
    // six patterns. (Over seeds 1–16 this happens only here: most planted sets are held by
    // the single model — see the survey test below.)
    let r = rates(4);
    eprintln!(
        "seed 4: single holds {}/6, rare {:.2} common {:.2}; likelihood gate rare {:.2} common {:.2}; \
         Z-free rare {:.2} common {:.2}; posterior rare {:.2} common {:.2}; exact/Z-free agree {:.3}",
        r.single_held,
        r.single[1],
        r.single[0],
        r.likelihood[1],
        r.likelihood[0],
        r.zfree[1],
        r.zfree[0],
        r.posterior[1],
        r.posterior[0],
        r.agreement
    );
    assert!(r.single_held < 6);
    assert!(r.single[1] <= 0.5, "the single model loses the rare cues");
    assert_eq!(
        r.unheld_by_experts, 0,
        "every pattern is a minimum of some expert"
    );
    let ok = bound(1.0 - 6.0 / 120.0, 3 * CUES);
    assert!(
        r.likelihood[1] >= ok,
        "rare via the likelihood gate: {}",
        r.likelihood[1]
    );
    assert!(
        r.likelihood[0] >= ok,
        "common via the likelihood gate: {}",
        r.likelihood[0]
    );
    assert!(r.zfree[1] >= ok && r.zfree[0] >= ok);
    assert!(
        r.agreement >= 0.95,
        "Z-free gate agrees with the exact one: {}",
        r.agreement
    );
    assert!(
        r.posterior[1] <= r.likelihood[1],
        "the posterior gate is no better on rare cues"
    );
}

#[test]
fn survey_of_planted_sets_single_model_against_experts() {
    let mut single_rare = 0.0;
    let mut gated_rare = 0.0;
    let mut lost = 0;
    for seed in 1u64..=16 {
        let r = rates(seed);
        eprintln!(
            "seed {seed}: single holds {}/6 rare {:.2} common {:.2} | likelihood gate rare {:.2} common {:.2} | agree {:.3}",
            r.single_held, r.single[1], r.single[0], r.likelihood[1], r.likelihood[0], r.agreement
        );
        assert_eq!(r.unheld_by_experts, 0, "seed {seed}");
        lost += (r.single_held < 6) as usize;
        single_rare += r.single[1];
        gated_rare += r.likelihood[1];
    }
    eprintln!(
        "sets where the single model loses patterns: {lost}/16; mean rare rate single {:.3}, experts {:.3}",
        single_rare / 16.0,
        gated_rare / 16.0
    );
    assert!(
        gated_rare >= single_rare,
        "experts retrieve rare patterns at least as well on average"
    );
}

#[test]
fn grouping_by_quench_partitions_the_patterns() {
    let data = planted(5);
    let set = Arc::new(InteractionSet::order(N, 2, u64::MAX).unwrap());
    let m = train(
        &data,
        set,
        &config(),
        None,
        &Interrupt::new(),
        &NoObserver,
        &NoCheckpoints,
    )
    .unwrap()
    .model;
    let all: Vec<usize> = (0..6).collect();
    let groups = group_by_quench(&m, data.patterns(), &all);
    let mut flat: Vec<usize> = groups.concat();
    flat.sort_unstable();
    assert_eq!(flat, all);
    // A held pattern is alone with whatever falls into it: its group's end state is itself.
    for i in held_patterns(&m, data.patterns(), &all) {
        assert!(groups.iter().any(|g| g.contains(&i)));
    }
}

#[test]
fn the_expert_cap_holds_from_the_first_split() {
    let data = planted(4);
    let set = Arc::new(InteractionSet::order(N, 2, u64::MAX).unwrap());
    // A parent with no couplings: every pattern is its own minimum (6 groups), cap 2.
    let flat = boundstate::engine::Model::zeros((*set).clone());
    let ex = train_experts(
        &data,
        set,
        &config(),
        &flat,
        &SplitOptions {
            min_weight: 0.0,
            max_experts: 2,
        },
        &Interrupt::new(),
        &NoObserver,
    )
    .unwrap();
    assert!(ex.experts.len() <= 2, "{} experts", ex.experts.len());
    let covered: usize = ex.experts.iter().map(|e| e.patterns.len()).sum();
    assert_eq!(covered, 6, "every pattern belongs to an expert");
}
