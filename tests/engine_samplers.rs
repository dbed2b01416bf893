//! Samplers, annealing, parallel tempering, quench and retrieval, checked against exact
//! enumeration (model.md §2, §4–§6).
//!
//! Tolerances. Sampled averages are checked by *batch means over independent chains*: with C
//! chains, chain c's time average m_c of an observable is one independent draw, so the estimate
//! m̂ = mean_c m_c has standard error se = sd_c(m_c) / √C whatever the autocorrelation within a
//! chain. A moment passes when |m̂ − m_exact| ≤ K·se + 10^{-3}/√C (K = 5: a false alarm
//! probability below 10^{-6} per moment; the small floor guards against se = 0 for a moment
//! that never moves). Each test also asserts se itself is small, so the check has teeth.
//! Distributions of independent samples are checked by χ² over all 2^N states with states of
//! expected count < 5 pooled: χ² ≤ df + 5√(2 df) (5 standard deviations of the χ²_df law).

use boundstate::engine::exact::{Enumeration, ExactOptions};
use boundstate::engine::quench::{quench, quench_many};
use boundstate::engine::retrieve::{RetrievalOptions, retrieve};
use boundstate::engine::sampler::{
    Chains, Kernel, Plan, Rule, Run, Schedule, SiteOrder, default_betas, sample, temper,
};
use boundstate::engine::spins::spins_from_index;
use boundstate::engine::{ChainRng, EngineError, InteractionSet, Interrupt, Model, Pattern};

const K: f64 = 5.0;

fn random_model(set: InteractionSet, seed: u64, scale: f64) -> Model {
    let mut r = ChainRng::new(seed, 0);
    let j = (0..set.len()).map(|_| r.normal() * scale).collect();
    Model::new(set, j, 0.25).unwrap()
}

fn exact(model: &Model, t: f64) -> Enumeration {
    Enumeration::new(model, t, &ExactOptions::default(), &Interrupt::new()).unwrap()
}

/// Per-chain time averages of χ_S for every member of `set`: `[chain][member]`.
fn chain_means(run: &Run, chains: usize, set: &InteractionSet) -> Vec<Vec<f64>> {
    let mut sums = vec![vec![0.0; set.len()]; chains];
    let mut counts = vec![0usize; chains];
    for s in &run.samples {
        let spins = s.pattern.to_spins();
        counts[s.chain] += 1;
        for (i, sub) in set.iter().enumerate() {
            sums[s.chain][i] += sub.chi(&spins) as f64;
        }
    }
    for (c, row) in sums.iter_mut().enumerate() {
        assert!(counts[c] > 0, "chain {c} recorded nothing");
        row.iter_mut().for_each(|x| *x /= counts[c] as f64);
    }
    sums
}

/// Batch-means comparison (see the module doc). Returns the largest se seen.
fn check_moments(label: &str, means: &[Vec<f64>], exact: &[f64], set: &InteractionSet) -> f64 {
    let c = means.len() as f64;
    let mut worst_se: f64 = 0.0;
    for i in 0..exact.len() {
        let m = means.iter().map(|r| r[i]).sum::<f64>() / c;
        let var = means.iter().map(|r| (r[i] - m).powi(2)).sum::<f64>() / (c - 1.0);
        let se = (var / c).sqrt();
        worst_se = worst_se.max(se);
        let tol = K * se + 1e-3 / c.sqrt();
        assert!(
            (m - exact[i]).abs() <= tol,
            "{label}: ⟨χ_{:?}⟩ sampled {m:.5} exact {:.5} (se {se:.5}, tol {tol:.5})",
            set.subset(i).to_vec(),
            exact[i]
        );
    }
    worst_se
}

fn fixed_plan(rule: Rule, order: SiteOrder, beta: f64, burn_in: usize, sweeps: usize) -> Plan {
    Plan {
        rule,
        order,
        schedule: Schedule::Fixed { beta },
        burn_in,
        sweeps,
        thin: 1,
        record: true,
    }
}

#[test]
fn fixed_temperature_moments_match_enumeration() {
    let t = 1.0;
    let cases = [
        (
            "pairwise N=10",
            random_model(InteractionSet::order(10, 2, u64::MAX).unwrap(), 1, 0.4),
        ),
        (
            "order 3 N=8",
            random_model(InteractionSet::order(8, 3, u64::MAX).unwrap(), 2, 0.3),
        ),
    ];
    for (label, model) in &cases {
        let kernel = Kernel::new(model);
        assert_eq!(kernel.is_dense(), model.is_pairwise());
        let exact_m = exact(model, t)
            .moments(model.set(), &Interrupt::new())
            .unwrap();
        for (k, (rule, order)) in [
            (Rule::HeatBath, SiteOrder::Sequential),
            (Rule::Metropolis, SiteOrder::Sequential),
            (Rule::HeatBath, SiteOrder::Random),
            (Rule::Metropolis, SiteOrder::Random),
        ]
        .into_iter()
        .enumerate()
        {
            let count = 200;
            let mut chains = Chains::random(model.n(), count, 10 + k as u64);
            let plan = fixed_plan(rule, order, 1.0 / t, 100, 2000);
            let run = sample(
                &kernel,
                &mut chains,
                &plan,
                100 + k as u64,
                &Interrupt::new(),
            )
            .unwrap();
            assert_eq!(run.samples.len(), count * 2000);
            assert_eq!(run.attempts, (count * 2100 * model.n()) as u64);
            assert!(run.acceptance() > 0.05 && run.acceptance() < 1.0);
            // Ordered by chain, then sweep; energies are those of the patterns.
            assert_eq!(run.samples[0].chain, 0);
            assert_eq!(run.samples[1].sweep, 2);
            assert_eq!(run.samples.last().unwrap().chain, count - 1);
            for s in run.samples.iter().step_by(997) {
                let e = model.energy(&s.pattern.to_spins());
                assert!(
                    (s.energy - e).abs() < 1e-9,
                    "tracked energy {} vs {e}",
                    s.energy
                );
            }
            let label = format!("{label} {rule:?} {order:?}");
            let se = check_moments(
                &label,
                &chain_means(&run, count, model.set()),
                &exact_m,
                model.set(),
            );
            assert!(
                se < 0.01,
                "{label}: se {se} too large for a meaningful test"
            );
        }
    }
}

/// χ² over all 2^N states of `samples` independent draws against p.
fn chi_square(counts: &[u64], p: &[f64], samples: f64) -> (f64, f64) {
    let mut chi2 = 0.0;
    let mut bins = 0usize;
    let (mut pooled_o, mut pooled_e) = (0.0, 0.0);
    for (i, &pi) in p.iter().enumerate() {
        let e = pi * samples;
        if e < 5.0 {
            pooled_o += counts[i] as f64;
            pooled_e += e;
        } else {
            chi2 += (counts[i] as f64 - e).powi(2) / e;
            bins += 1;
        }
    }
    if pooled_e > 0.0 {
        chi2 += (pooled_o - pooled_e).powi(2) / pooled_e;
        bins += 1;
    }
    (chi2, (bins - 1) as f64)
}

#[test]
fn full_distribution_by_chi_square() {
    // Independent draws: 40 000 chains, each recorded once after 60 sweeps (N = 10, mixing
    // time a few sweeps), so the χ² law applies without autocorrelation corrections.
    let model = random_model(InteractionSet::order(10, 2, u64::MAX).unwrap(), 3, 0.3);
    let en = exact(&model, 1.0);
    let p = en.probabilities();
    let kernel = Kernel::new(&model);
    for (k, rule) in [Rule::HeatBath, Rule::Metropolis].into_iter().enumerate() {
        let count = 40_000;
        let mut chains = Chains::random(10, count, 7 + k as u64);
        let plan = fixed_plan(rule, SiteOrder::Sequential, 1.0, 59, 1);
        let run = sample(&kernel, &mut chains, &plan, 8 + k as u64, &Interrupt::new()).unwrap();
        assert_eq!(run.samples.len(), count);
        let mut counts = vec![0u64; 1 << 10];
        for s in &run.samples {
            counts[s.pattern.index() as usize] += 1;
        }
        let (chi2, df) = chi_square(&counts, &p, count as f64);
        let bound = df + 5.0 * (2.0 * df).sqrt();
        assert!(
            chi2 <= bound,
            "{rule:?}: χ² {chi2:.1} > {bound:.1} (df {df})"
        );
        // Total variation distance: E[TV] ≲ ½ Σ √(p_i / M) for M draws; allow 2× that.
        let tv: f64 = counts
            .iter()
            .zip(&p)
            .map(|(&c, &pi)| (c as f64 / count as f64 - pi).abs())
            .sum::<f64>()
            / 2.0;
        let tv_bound = p.iter().map(|pi| (pi / count as f64).sqrt()).sum::<f64>();
        assert!(tv <= tv_bound, "{rule:?}: TV {tv:.4} > {tv_bound:.4}");
    }
}

#[test]
fn clamped_sampling_matches_the_exact_conditional() {
    let n = 10;
    let model = random_model(InteractionSet::order(n, 2, u64::MAX).unwrap(), 4, 0.4);
    let p = exact(&model, 1.0).probabilities();
    let set = model.set();
    // Clamp σ_2 = +1, σ_7 = −1: the conditional distribution over the other eight spins.
    let (up, down) = (2usize, 7usize);
    let mut cond = vec![0.0; set.len()];
    let mut z = 0.0;
    let mut s = vec![0i8; n];
    for (i, &pi) in p.iter().enumerate() {
        spins_from_index(i as u64, &mut s);
        if s[up] == 1 && s[down] == -1 {
            z += pi;
            for (m, sub) in set.iter().enumerate() {
                cond[m] += pi * sub.chi(&s) as f64;
            }
        }
    }
    cond.iter_mut().for_each(|x| *x /= z);
    let kernel = Kernel::new(&model);
    for (k, rule) in [Rule::HeatBath, Rule::Metropolis].into_iter().enumerate() {
        let count = 200;
        let mut chains = Chains::random(n, count, 20 + k as u64);
        chains.clamp(up, 1);
        chains.clamp(down, -1);
        let plan = fixed_plan(rule, SiteOrder::Random, 1.0, 50, 500);
        let run = sample(
            &kernel,
            &mut chains,
            &plan,
            30 + k as u64,
            &Interrupt::new(),
        )
        .unwrap();
        assert_eq!(run.attempts, (count * 550 * (n - 2)) as u64);
        assert!(
            run.samples
                .iter()
                .all(|s| s.pattern.spin(up) == 1 && s.pattern.spin(down) == -1)
        );
        let se = check_moments(
            &format!("clamped {rule:?}"),
            &chain_means(&run, count, set),
            &cond,
            set,
        );
        assert!(se < 0.01);
        chains.unclamp_all();
        assert!(!chains.is_clamped(0, up));
    }
    // A per-chain clamp holds only that chain.
    let mut chains = Chains::random(n, 2, 1);
    chains.clamp_chain(1, 0, 1);
    let run = sample(
        &kernel,
        &mut chains,
        &Plan {
            record: true,
            ..Plan::fixed(0.1, 200)
        },
        2,
        &Interrupt::new(),
    )
    .unwrap();
    assert!(
        run.samples
            .iter()
            .filter(|s| s.chain == 1)
            .all(|s| s.pattern.spin(0) == 1)
    );
    assert!(
        run.samples
            .iter()
            .filter(|s| s.chain == 0)
            .any(|s| s.pattern.spin(0) == -1)
    );
}

/// A ferromagnet with a weak field: two deep minima (all up, all down) separated by a barrier of
/// ~22 at T = 1, weights ≈ 0.62 / 0.38.
fn bimodal() -> Model {
    let n = 12;
    let set = InteractionSet::order(n, 2, u64::MAX).unwrap();
    let j = set
        .iter()
        .map(|s| if s.len() == 1 { 0.02 } else { 0.3 })
        .collect();
    Model::new(set, j, 0.0).unwrap()
}

#[test]
fn parallel_tempering_crosses_barriers_that_trap_gibbs() {
    let model = bimodal();
    let n = model.n();
    let kernel = Kernel::new(&model);
    let singles = InteractionSet::order(n, 1, u64::MAX).unwrap();
    let exact_m = exact(&model, 1.0)
        .moments(&singles, &Interrupt::new())
        .unwrap();
    assert!(
        exact_m.iter().all(|m| (0.15..0.4).contains(m)),
        "{exact_m:?}"
    );

    // Plain Gibbs from all-up stays in the up state: magnetisation ≈ 1, far from exact.
    let count = 64;
    let mut up = Chains::from_patterns(&vec![Pattern::from_spins(&vec![1; n]); count]);
    let run = sample(
        &kernel,
        &mut up,
        &fixed_plan(Rule::HeatBath, SiteOrder::Sequential, 1.0, 0, 2000),
        5,
        &Interrupt::new(),
    )
    .unwrap();
    let m_gibbs: f64 = run
        .samples
        .iter()
        .map(|s| s.pattern.count_up() as f64)
        .sum::<f64>()
        / (run.samples.len() * n) as f64
        * 2.0
        - 1.0;
    assert!(m_gibbs > 0.9, "Gibbs escaped: m = {m_gibbs}");

    // Tempering, every replica also starting all up.
    let betas = default_betas(&kernel, 1.0, 16);
    let mut chains: Vec<Chains> = betas.iter().map(|_| up.clone()).collect();
    for c in chains.iter_mut() {
        *c = Chains::from_patterns(&vec![Pattern::from_spins(&vec![1; n]); count]);
    }
    let plan = fixed_plan(Rule::HeatBath, SiteOrder::Sequential, 1.0, 200, 3000);
    let tr = temper(&kernel, &betas, &mut chains, &plan, 1, 6, &Interrupt::new()).unwrap();
    assert_eq!(tr.swap_acceptance.len(), betas.len() - 1);
    for (k, &a) in tr.swap_acceptance.iter().enumerate() {
        assert!(a > 0.0 && a < 1.0, "pair {k}: swap acceptance {a}");
    }
    assert_eq!(tr.run.samples.len(), count * 3000);
    assert_eq!(tr.final_chains, chains[0]);
    // Both minima are visited at β = 1.
    let down = tr
        .run
        .samples
        .iter()
        .filter(|s| s.pattern.count_up() <= 2)
        .count();
    let upc = tr
        .run
        .samples
        .iter()
        .filter(|s| s.pattern.count_up() >= n - 2)
        .count();
    assert!(down > 1000 && upc > 1000, "down {down} up {upc}");
    let se = check_moments(
        "tempering",
        &chain_means(&tr.run, count, &singles),
        &exact_m,
        &singles,
    );
    assert!(se < 0.05, "se {se}");
    // Energies of recorded samples are those of their patterns (the swaps carry energies).
    for s in tr.run.samples.iter().step_by(1009) {
        assert!((s.energy - model.energy(&s.pattern.to_spins())).abs() < 1e-9);
    }
}

#[test]
fn annealing_finds_the_exact_ground_state() {
    let n = 16;
    let model = random_model(InteractionSet::order(n, 2, u64::MAX).unwrap(), 9, 1.0);
    let e0 = exact(&model, 1.0).min_energy();
    let kernel = Kernel::new(&model);
    for (k, schedule) in [
        Schedule::Geometric {
            beta_start: 0.05,
            beta_end: 10.0,
        },
        Schedule::Linear {
            beta_start: 0.0,
            beta_end: 10.0,
        },
    ]
    .into_iter()
    .enumerate()
    {
        let mut chains = Chains::random(n, 16, k as u64);
        let plan = Plan {
            rule: Rule::Metropolis,
            schedule,
            record: true,
            ..Plan::fixed(1.0, 500)
        };
        let run = sample(
            &kernel,
            &mut chains,
            &plan,
            40 + k as u64,
            &Interrupt::new(),
        )
        .unwrap();
        let best = (0..16)
            .map(|c| model.energy(chains.spins(c)))
            .fold(f64::INFINITY, f64::min);
        assert!(
            (best - e0).abs() < 1e-9,
            "{schedule:?}: best {best} vs ground {e0}"
        );
        let last = run.samples.iter().filter(|s| s.sweep == 500).count();
        assert_eq!(last, 16);
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let pair = random_model(InteractionSet::order(20, 2, u64::MAX).unwrap(), 11, 0.5);
    let tri = random_model(InteractionSet::order(9, 3, u64::MAX).unwrap(), 12, 0.3);
    for model in [&pair, &tri] {
        let kernel = Kernel::new(model);
        let n = model.n();
        let go = |threads: usize| {
            pool(threads).install(|| {
                let mut chains = Chains::random(n, 13, 3);
                chains.clamp_chain(4, 1, -1);
                let plan = Plan {
                    rule: Rule::Metropolis,
                    order: SiteOrder::Random,
                    burn_in: 5,
                    thin: 3,
                    record: true,
                    ..Plan::fixed(0.7, 40)
                };
                let run = sample(&kernel, &mut chains, &plan, 77, &Interrupt::new()).unwrap();
                let betas = default_betas(&kernel, 1.5, 4);
                let mut reps: Vec<Chains> = (0..4).map(|b| Chains::random(n, 7, b)).collect();
                let tr = temper(
                    &kernel,
                    &betas,
                    &mut reps,
                    &Plan::fixed(1.0, 30),
                    2,
                    5,
                    &Interrupt::new(),
                )
                .unwrap();
                let starts: Vec<Pattern> = (0..9).map(|c| chains.pattern(c % 13)).collect();
                let q = quench_many(&kernel, &starts);
                let query: Vec<Option<bool>> = (0..n)
                    .map(|a| if a % 3 == 0 { None } else { Some(a % 2 == 0) })
                    .collect();
                let opts = RetrievalOptions {
                    temperature: 0.5,
                    sweeps: 10,
                    restarts: 6,
                    clamp_known_sweeps: 3,
                    seed: 9,
                };
                let r = retrieve(&kernel, &query, &opts, &Interrupt::new()).unwrap();
                let key = |s: &boundstate::engine::sampler::Sample| {
                    (s.chain, s.sweep, s.pattern.clone(), s.energy.to_bits())
                };
                (
                    run.samples.iter().map(key).collect::<Vec<_>>(),
                    run.attempts,
                    run.accepted,
                    chains,
                    tr.run.samples.iter().map(key).collect::<Vec<_>>(),
                    tr.swap_acceptance
                        .iter()
                        .map(|x| x.to_bits())
                        .collect::<Vec<_>>(),
                    reps,
                    q.iter()
                        .map(|x| (x.pattern.clone(), x.energy.to_bits(), x.flips))
                        .collect::<Vec<_>>(),
                    r.iter()
                        .map(|x| (x.pattern.clone(), x.energy.to_bits(), x.flips))
                        .collect::<Vec<_>>(),
                )
            })
        };
        let (a, b) = (go(1), go(2));
        assert_eq!(a.0, b.0);
        assert_eq!((a.1, a.2), (b.1, b.2));
        assert_eq!(a.3, b.3);
        assert_eq!(a.4, b.4);
        assert_eq!(a.5, b.5);
        assert_eq!(a.6, b.6);
        assert_eq!(a.7, b.7);
        assert_eq!(a.8, b.8);
    }
}

/// Reference steepest descent straight from `Model::flip_energy`.
fn naive_quench(model: &Model, spins: &mut [i8], clamped: &[bool]) -> usize {
    let mut flips = 0;
    loop {
        let mut best = 0.0;
        let mut arg = None;
        for a in 0..model.n() {
            let de = model.flip_energy(spins, a);
            if !clamped[a] && de < best - 1e-9 {
                best = de;
                arg = Some(a);
            }
        }
        match arg {
            Some(a) => {
                spins[a] = -spins[a];
                flips += 1;
            }
            None => return flips,
        }
    }
}

#[test]
fn quench_reaches_a_local_minimum_deterministically() {
    for (k, model) in [
        random_model(InteractionSet::order(40, 2, u64::MAX).unwrap(), 13, 0.5),
        random_model(InteractionSet::order(10, 3, u64::MAX).unwrap(), 14, 0.5),
    ]
    .iter()
    .enumerate()
    {
        let n = model.n();
        let kernel = Kernel::new(model);
        let mut r = ChainRng::new(15, k as u64);
        let starts: Vec<Pattern> = (0..20)
            .map(|_| Pattern::from_spins(&(0..n).map(|_| r.spin()).collect::<Vec<_>>()))
            .collect();
        let many = quench_many(&kernel, &starts);
        for (start, q) in starts.iter().zip(&many) {
            let mut s = start.to_spins();
            let q1 = quench(&kernel, &mut s, None);
            assert_eq!(q1.pattern, q.pattern);
            assert_eq!(q1.flips, q.flips);
            assert_eq!(Pattern::from_spins(&s), q.pattern);
            assert!((q.energy - model.energy(&s)).abs() < 1e-9);
            for a in 0..n {
                assert!(model.flip_energy(&s, a) >= -1e-9, "spin {a} still lowers E");
            }
            assert!(q.energy <= model.energy(&start.to_spins()) + 1e-12);
            // Same path as the reference steepest descent (distinct ΔE: ties have measure 0).
            let mut naive = start.to_spins();
            let flips = naive_quench(model, &mut naive, &vec![false; n]);
            assert_eq!(Pattern::from_spins(&naive), q.pattern);
            assert_eq!(flips, q.flips);
        }
        // Clamps are respected; the free spins are at a constrained minimum.
        let mut clamped = vec![false; n];
        for a in (0..n).step_by(3) {
            clamped[a] = true;
        }
        let mut s = starts[0].to_spins();
        let before = s.clone();
        let q = quench(&kernel, &mut s, Some(&clamped));
        for a in 0..n {
            if clamped[a] {
                assert_eq!(s[a], before[a]);
            } else {
                assert!(model.flip_energy(&s, a) >= -1e-9);
            }
        }
        let mut naive = before.clone();
        let flips = naive_quench(model, &mut naive, &clamped);
        assert_eq!((naive, flips), (s, q.flips));
    }
    // Ties go to the lowest index: from all up in a zero-coupling model with equal negative
    // fields every spin has the same ΔE; the descent flips 0, 1, 2, … and ends all down.
    let set = InteractionSet::order(5, 1, u64::MAX).unwrap();
    let model = Model::new(set, vec![-1.0; 5], 0.0).unwrap();
    let mut s = vec![1i8; 5];
    let q = quench(&Kernel::new(&model), &mut s, None);
    assert_eq!((q.flips, s), (5, vec![-1i8; 5]));
}

/// Hopfield model: J_ab = (1/N) Σ_μ ξ^μ_a ξ^μ_b, no fields.
fn hopfield(patterns: &[Vec<i8>]) -> Model {
    let n = patterns[0].len();
    let set = InteractionSet::order(n, 2, u64::MAX).unwrap();
    let j = set
        .iter()
        .map(|s| {
            let v = s.to_vec();
            if v.len() == 1 {
                0.0
            } else {
                let (a, b) = (v[0] as usize, v[1] as usize);
                patterns.iter().map(|p| (p[a] * p[b]) as f64).sum::<f64>() / n as f64
            }
        })
        .collect();
    Model::new(set, j, 0.0).unwrap()
}

#[test]
fn retrieval_recovers_a_stored_pattern() {
    let n = 100;
    let mut r = ChainRng::new(21, 0);
    let stored: Vec<Vec<i8>> = (0..3).map(|_| (0..n).map(|_| r.spin()).collect()).collect();
    let model = hopfield(&stored);
    let kernel = Kernel::new(&model);
    for (mu, xi) in stored.iter().enumerate() {
        // Corrupt 10 bits, and leave 10 others unknown.
        let mut query: Vec<Option<bool>> = xi.iter().map(|&s| Some(s > 0)).collect();
        for a in 0..10 {
            let i = (a * 7 + mu) % n;
            query[i] = query[i].map(|b| !b);
        }
        for a in 0..10 {
            query[(a * 7 + mu + 3) % n] = None;
        }
        let opts = RetrievalOptions {
            temperature: 0.2,
            sweeps: 20,
            restarts: 8,
            clamp_known_sweeps: 2,
            seed: 5,
        };
        let out = retrieve(&kernel, &query, &opts, &Interrupt::new()).unwrap();
        assert_eq!(out.len(), 8);
        let target = Pattern::from_spins(xi);
        for q in &out {
            assert_eq!(q.pattern, target, "pattern {mu} not retrieved");
            assert!((q.energy - model.energy(xi)).abs() < 1e-9);
        }
    }
    let bad = retrieve(
        &kernel,
        &[None; 3],
        &RetrievalOptions {
            temperature: 1.0,
            sweeps: 1,
            restarts: 1,
            clamp_known_sweeps: 0,
            seed: 0,
        },
        &Interrupt::new(),
    );
    assert!(matches!(bad, Err(EngineError::Invalid { .. })));
}

#[test]
fn interrupts_and_invalid_arguments() {
    let model = random_model(InteractionSet::order(6, 2, u64::MAX).unwrap(), 1, 0.5);
    let kernel = Kernel::new(&model);
    let stop = Interrupt::new();
    stop.raise();
    let mut chains = Chains::random(6, 3, 1);
    assert_eq!(
        sample(&kernel, &mut chains, &Plan::fixed(1.0, 10), 1, &stop).unwrap_err(),
        EngineError::Interrupted
    );
    let mut wrong = Chains::random(5, 3, 1);
    assert!(matches!(
        sample(
            &kernel,
            &mut wrong,
            &Plan::fixed(1.0, 10),
            1,
            &Interrupt::new()
        ),
        Err(EngineError::Invalid { .. })
    ));
    let thin0 = Plan {
        thin: 0,
        record: true,
        ..Plan::fixed(1.0, 10)
    };
    assert!(sample(&kernel, &mut chains, &thin0, 1, &Interrupt::new()).is_err());
    let mut reps = vec![Chains::random(6, 3, 1), Chains::random(6, 2, 1)];
    assert!(
        temper(
            &kernel,
            &[1.0, 0.5],
            &mut reps,
            &Plan::fixed(1.0, 1),
            1,
            1,
            &Interrupt::new()
        )
        .is_err()
    );
    // Chains constructors.
    let c = Chains::from_spins(3, vec![1, -1, 1, -1, -1, 5]);
    assert_eq!((c.count(), c.n()), (2, 3));
    assert_eq!(c.spins(1), &[-1, -1, 1]);
    assert_eq!(c.pattern(0), Pattern::from_spins(&[1, -1, 1]));
}

#[test]
fn blocked_lockstep_sweeps_match_chain_by_chain() {
    // With 40 chains a 1-thread pool sweeps blocks of 8 chains in lock step, a 2-thread pool blocks
    // of 5, and 3 chains run one by one: every chain's trajectory must be the same bit for bit.
    let model = random_model(InteractionSet::order(30, 2, u64::MAX).unwrap(), 17, 0.4);
    let kernel = Kernel::new(&model);
    for rule in [Rule::HeatBath, Rule::Metropolis] {
        let go = |threads: usize, count: usize| {
            pool(threads).install(|| {
                let mut chains = Chains::random(30, count, 4);
                chains.clamp(3, 1);
                chains.clamp_chain(1, 7, -1);
                let plan = Plan {
                    rule,
                    record: true,
                    thin: 2,
                    burn_in: 3,
                    ..Plan::fixed(0.8, 20)
                };
                let run = sample(&kernel, &mut chains, &plan, 12, &Interrupt::new()).unwrap();
                let samples: Vec<_> = run
                    .samples
                    .iter()
                    .map(|s| (s.chain, s.sweep, s.pattern.clone(), s.energy.to_bits()))
                    .collect();
                (samples, run.attempts, run.accepted, chains)
            })
        };
        let (a, b) = (go(1, 40), go(2, 40));
        assert_eq!(a, b);
        let c = go(1, 3);
        assert_eq!(c.0[..], a.0[..c.0.len()]);
        assert_eq!(c.3.spins(2), a.3.spins(2));
    }
}

/// The Rao–Blackwellised averages `sampled` training uses (χ_S estimated by the mean over a ∈ S
/// of χ_{S∖a} tanh(βh_a)) are unbiased and less noisy. C independent chains (the last state of
/// each after a long burn-in is one independent draw) on a pairwise and an order-3 model: every
/// member's estimate is within K·√((1 − m²)/C) + 10^{-3} of the exact ⟨χ_S⟩ (the plain
/// estimator's standard error, which bounds the Rao–Blackwell one), and over 20 batches of chains
/// the Rao–Blackwell estimates scatter less than the plain ones, summed over members.
#[test]
fn rao_blackwell_moments_are_unbiased_and_less_noisy() {
    use boundstate::engine::train::rao_blackwell_moments;
    for (set, seed) in [
        (InteractionSet::order(9, 2, u64::MAX).unwrap(), 21),
        (InteractionSet::order(7, 3, u64::MAX).unwrap(), 22),
    ] {
        let n = set.n();
        let model = random_model(set.clone(), seed, 0.4);
        let kernel = Kernel::new(&model);
        let beta = 1.0;
        let want = exact(&model, 1.0).moments(&set, &Interrupt::new()).unwrap();
        let c = 20_000;
        let mut chains = Chains::random(n, c, seed);
        let plan = fixed_plan(Rule::HeatBath, SiteOrder::Sequential, beta, 0, 200);
        sample(&kernel, &mut chains, &plan, seed, &Interrupt::new()).unwrap();
        let spins = chains.all_spins();
        let rb = rao_blackwell_moments(&kernel, &set, spins, beta);
        let plain = |block: &[i8]| -> Vec<f64> {
            let k = block.len() / n;
            set.iter()
                .map(|s| block.chunks(n).map(|x| s.chi(x) as f64).sum::<f64>() / k as f64)
                .collect()
        };
        for (i, (&r, &m)) in rb.iter().zip(&want).enumerate() {
            let se = ((1.0 - m * m) / c as f64).sqrt();
            assert!(
                (r - m).abs() <= K * se + 1e-3,
                "N = {n}, member {i}: Rao–Blackwell {r} against exact {m} (se {se:e})"
            );
        }
        // Scatter between batches of 1,000 chains, summed over members.
        let batches = 20;
        let per = c / batches * n;
        let scatter = |f: &dyn Fn(&[i8]) -> Vec<f64>| -> f64 {
            let est: Vec<Vec<f64>> = spins.chunks(per).map(f).collect();
            (0..set.len())
                .map(|i| {
                    let mean = est.iter().map(|e| e[i]).sum::<f64>() / batches as f64;
                    est.iter().map(|e| (e[i] - mean).powi(2)).sum::<f64>()
                })
                .sum()
        };
        let s_rb = scatter(&|b| rao_blackwell_moments(&kernel, &set, b, beta));
        let s_plain = scatter(&plain);
        assert!(
            s_rb < s_plain,
            "N = {n}: Rao–Blackwell scatter {s_rb:e} is not below the plain {s_plain:e}"
        );
    }
}
