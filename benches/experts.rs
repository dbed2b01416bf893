//! Evidence for "one model per free-energy minimum" (model.md §7, issue 7):
//! `cargo bench --bench experts`. Prints markdown tables on stdout (for the README).
//!
//! 1. planted sets (3 common patterns × 100, 3 rare × 5, each rare N/4 flips from its common one)
//!    at N = 64 and 128, order 2, `sampled`: retrieval from 12.5 %-noisy cues by the single model
//!    and by the mixture of experts (likelihood gate, Z-free normaliser), per class;
//! 2. digits8x8, order 2, `pseudolikelihood`: retrieval from 10 %-noisy cues per digit class;
//! 3. sampling occupancy at N = 64: which planted pattern a quenched sample lands in, for the
//!    mixture (expert drawn by π_m) and for one long chain of the single model.

use boundstate::engine::control::NoObserver;
use boundstate::engine::experts::{
    Experts, Normaliser, SplitOptions, gate_scores, held_patterns, planted_common_rare,
    train_experts,
};
use boundstate::engine::quench::quench_many;
use boundstate::engine::retrieve::{RetrievalOptions, retrieve};
use boundstate::engine::sampler::{Chains, Kernel, Plan, Rule, Schedule, SiteOrder, sample};
use boundstate::engine::train::{Method, NoCheckpoints, Trained, TrainingConfig, train};
use boundstate::engine::{ChainRng, Dataset, InteractionSet, Interrupt, Pattern};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const T: f64 = 1.0;

fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn retrieval_opts(seed: u64) -> RetrievalOptions {
    RetrievalOptions {
        temperature: T,
        sweeps: 20,
        restarts: 4,
        clamp_known_sweeps: 10,
        seed,
    }
}

/// `count` distinct random bits of `p` flipped.
fn noisy(p: &Pattern, count: usize, rng: &mut ChainRng) -> Pattern {
    let n = p.len();
    let mut q = p.clone();
    let mut flipped = vec![false; n];
    let mut done = 0;
    while done < count {
        let a = rng.below(n as u64) as usize;
        if !flipped[a] {
            flipped[a] = true;
            q.flip(a);
            done += 1;
        }
    }
    q
}

fn as_query(p: &Pattern) -> Vec<Option<bool>> {
    (0..p.len()).map(|a| Some(p.bit(a))).collect()
}

/// The majority end state of the restarts (ties: the first to reach the top count).
fn retrieve_majority(kernel: &Kernel, cue: &[Option<bool>], seed: u64) -> Pattern {
    let ends = retrieve(kernel, cue, &retrieval_opts(seed), &Interrupt::new()).unwrap();
    let mut counts: Vec<(Pattern, usize)> = Vec::new();
    for e in ends {
        match counts.iter_mut().find(|(p, _)| *p == e.pattern) {
            Some((_, c)) => *c += 1,
            None => counts.push((e.pattern, 1)),
        }
    }
    let best = counts.iter().map(|(_, c)| *c).max().unwrap();
    counts.into_iter().find(|(_, c)| *c == best).unwrap().0
}

/// A mixture ready for gating: kernel, Z-free normaliser and share of every expert.
struct Mixture {
    kernels: Vec<Kernel>,
    norms: Vec<Normaliser>,
    shares: Vec<f64>,
    /// Experts with no held pattern (normaliser from their training patterns instead).
    no_held: usize,
}

impl Mixture {
    fn new(ex: &Experts, data: &Dataset) -> Mixture {
        let mut no_held = 0;
        let norms = ex
            .experts
            .iter()
            .map(|e| {
                let which = if e.held.is_empty() {
                    no_held += 1;
                    &e.patterns
                } else {
                    &e.held
                };
                let minima: Vec<Pattern> =
                    which.iter().map(|&i| data.patterns()[i].clone()).collect();
                Normaliser::Minimum(Normaliser::deepest(&e.model, &minima, T))
            })
            .collect();
        Mixture {
            kernels: ex.experts.iter().map(|e| Kernel::new(&e.model)).collect(),
            norms,
            shares: ex.experts.iter().map(|e| e.share).collect(),
            no_held,
        }
    }

    /// The expert the likelihood gate picks for a cue.
    fn gate(&self, cue: &[Option<bool>]) -> usize {
        let inputs: Vec<(&Kernel, Normaliser, f64)> = self
            .kernels
            .iter()
            .zip(&self.norms)
            .zip(&self.shares)
            .map(|((k, n), s)| (k, *n, *s))
            .collect();
        let scores = gate_scores(&inputs, cue, T, false);
        let mut best = 0;
        for (i, s) in scores.iter().enumerate() {
            if *s > scores[best] {
                best = i;
            }
        }
        best
    }
}

fn train_single(data: &Dataset, set: &Arc<InteractionSet>, cfg: &TrainingConfig) -> Trained {
    train(
        data,
        set.clone(),
        cfg,
        None,
        &Interrupt::new(),
        &NoObserver,
        &NoCheckpoints,
    )
    .unwrap()
}

fn pct(hits: usize, total: usize) -> String {
    if total == 0 {
        "–".into()
    } else {
        format!(
            "{:.1} % ({hits}/{total})",
            100.0 * hits as f64 / total as f64
        )
    }
}

fn settings(cfg: &TrainingConfig) -> String {
    format!(
        "method {}, T = {}, l2 = {}, max_iterations {}, tolerance {}, chains {}, \
         sweeps_per_step {}, init_from_pseudolikelihood {}, seed {}",
        cfg.method.as_str(),
        cfg.temperature,
        cfg.l2,
        cfg.max_iterations,
        cfg.tolerance,
        cfg.chains,
        cfg.sweeps_per_step,
        cfg.init_from_pseudolikelihood,
        cfg.seed
    )
}

struct Planted {
    data: Dataset,
    single: Trained,
    experts: Experts,
    mixture: Mixture,
}

fn sampled_config() -> TrainingConfig {
    let mut cfg = TrainingConfig::new(Method::Sampled);
    cfg.temperature = T;
    // Defaults (2000 iterations, tolerance 0.01) except half the persistent chains (time budget).
    cfg.chains = 512;
    cfg
}

fn planted(n: usize, seed: u64) -> Planted {
    let flips = n / 4;
    let data = planted_common_rare(n, flips, seed).unwrap();
    let set = Arc::new(InteractionSet::order(n, 2, u64::MAX).unwrap());
    let cfg = sampled_config();
    println!(
        "\n### Planted set, N = {n} (3 common × 100, 3 rare × 5, rare = common + {flips} flips), order 2\n"
    );
    println!("Training: {}", settings(&cfg));
    let t0 = Instant::now();
    let single = train_single(&data, &set, &cfg);
    let t_single = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let opts = SplitOptions {
        min_weight: 0.0,
        max_experts: 16,
    };
    let experts = train_experts(
        &data,
        set.clone(),
        &cfg,
        &single.model,
        &opts,
        &Interrupt::new(),
        &NoObserver,
    )
    .unwrap();
    let t_experts = t1.elapsed().as_secs_f64();
    println!(
        "\nSingle model: {} iterations, converged {}, max moment error {:.3} ({:.1} s). \
         Experts (max_experts 16): {} experts in {} rounds ({:.1} s); stop: {}",
        single.report.iterations,
        single.report.converged,
        single.report.max_moment_error,
        t_single,
        experts.experts.len(),
        experts.rounds,
        t_experts,
        experts.stop_reason
    );
    let mixture = Mixture::new(&experts, &data);
    if mixture.no_held > 0 {
        println!(
            "({} experts hold none of their patterns; their normaliser uses their training patterns)",
            mixture.no_held
        );
    }

    // Retrieval.
    let t2 = Instant::now();
    let single_kernel = Kernel::new(&single.model);
    let all: Vec<usize> = (0..data.len()).collect();
    let held_single = held_patterns(&single.model, data.patterns(), &all);
    let cues_per = 40;
    let noise = n / 8;
    let mut rng = ChainRng::new(seed, 7);
    // [class][single/mixture] hits
    let mut hits = [[0usize; 2]; 2];
    let mut totals = [0usize; 2];
    for (i, p) in data.patterns().iter().enumerate() {
        let class = usize::from(i >= 3);
        for c in 0..cues_per {
            let cue = as_query(&noisy(p, noise, &mut rng));
            let s = seed * 1_000_003 + (i * cues_per + c) as u64;
            totals[class] += 1;
            if retrieve_majority(&single_kernel, &cue, s) == *p {
                hits[class][0] += 1;
            }
            let m = mixture.gate(&cue);
            if retrieve_majority(&mixture.kernels[m], &cue, s) == *p {
                hits[class][1] += 1;
            }
        }
    }
    let t_retrieval = t2.elapsed().as_secs_f64();
    println!(
        "\nCues: {noise} of {n} bits flipped ({:.1} %), {cues_per} per pattern; retrieval T = {T}, \
         20 sweeps, 4 restarts, known bits clamped 10 sweeps, majority end state ({t_retrieval:.1} s)\n",
        100.0 * noise as f64 / n as f64
    );
    println!(
        "| N | class | single-model retrieval | mixture retrieval (likelihood gate) | held by single model | experts | unheld by mixture |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (class, name) in ["common", "rare"].iter().enumerate() {
        let range = 3 * class..3 * class + 3;
        let held = held_single.iter().filter(|i| range.contains(i)).count();
        let unheld = experts.unheld.iter().filter(|i| range.contains(i)).count();
        println!(
            "| {n} | {name} | {} | {} | {held}/3 | {} | {unheld}/3 |",
            pct(hits[class][0], totals[class]),
            pct(hits[class][1], totals[class]),
            experts.experts.len()
        );
    }
    Planted {
        data,
        single,
        experts,
        mixture,
    }
}

fn digits(seed: u64) {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/examples/data/digits8x8.txt")).unwrap();
    let labels =
        std::fs::read_to_string(format!("{root}/examples/data/digits-labels.txt")).unwrap();
    let rows: Vec<Pattern> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Pattern::parse_bits(l).unwrap())
        .collect();
    let labels: Vec<usize> = labels
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(rows.len(), labels.len(), "one label per row");
    let (data, row_index) = Dataset::from_rows(64, rows.into_iter().map(|p| (p, 1))).unwrap();
    let mut class = vec![usize::MAX; data.len()];
    for (r, &k) in row_index.iter().enumerate() {
        if class[k as usize] == usize::MAX {
            class[k as usize] = labels[r];
        }
    }
    let set = Arc::new(InteractionSet::order(64, 2, u64::MAX).unwrap());
    let mut cfg = TrainingConfig::new(Method::Pseudolikelihood);
    cfg.temperature = T;
    println!(
        "\n### digits8x8 (N = 64, {} rows, {} distinct patterns), order 2\n",
        row_index.len(),
        data.len()
    );
    println!("Training: {}", settings(&cfg));
    let t0 = Instant::now();
    let single = train_single(&data, &set, &cfg);
    let t_single = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let experts = train_experts(
        &data,
        set.clone(),
        &cfg,
        &single.model,
        &SplitOptions {
            min_weight: 0.0,
            max_experts: 32,
        },
        &Interrupt::new(),
        &NoObserver,
    )
    .unwrap();
    let t_experts = t1.elapsed().as_secs_f64();
    let all: Vec<usize> = (0..data.len()).collect();
    let held_single = held_patterns(&single.model, data.patterns(), &all).len();
    println!(
        "\nSingle model ({t_single:.1} s) holds {held_single} of {} distinct patterns as minima. \
         Experts (max_experts 32): {} in {} rounds ({t_experts:.1} s), {} patterns unheld; stop: {}",
        data.len(),
        experts.experts.len(),
        experts.rounds,
        experts.unheld.len(),
        experts.stop_reason
    );
    let mixture = Mixture::new(&experts, &data);
    if mixture.no_held > 0 {
        println!(
            "({} experts hold none of their patterns; their normaliser uses their training patterns)",
            mixture.no_held
        );
    }
    // Seeded sample of ≤ 200 distinct patterns (Fisher–Yates).
    let mut order = all.clone();
    let mut rng = ChainRng::new(seed, 11);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order.truncate(200);
    let noise = 6; // 10 % of 64 bits, rounded
    let cues_per = 5;
    let t2 = Instant::now();
    let mut hits = [[0usize; 2]; 10];
    let mut totals = [0usize; 10];
    let single_kernel = Kernel::new(&single.model);
    for (k, &i) in order.iter().enumerate() {
        let p = &data.patterns()[i];
        let c = class[i];
        for r in 0..cues_per {
            let cue = as_query(&noisy(p, noise, &mut rng));
            let s = seed * 1_000_003 + (k * cues_per + r) as u64;
            totals[c] += 1;
            if retrieve_majority(&single_kernel, &cue, s) == *p {
                hits[c][0] += 1;
            }
            let m = mixture.gate(&cue);
            if retrieve_majority(&mixture.kernels[m], &cue, s) == *p {
                hits[c][1] += 1;
            }
        }
    }
    let t_retrieval = t2.elapsed().as_secs_f64();
    println!(
        "\nCues: {} sampled distinct patterns × {cues_per}, {noise} of 64 bits flipped (≈ 10 %); \
         retrieval as above; success = majority end state equals the cued pattern ({t_retrieval:.1} s)\n",
        order.len()
    );
    println!("| digit | cues | single-model retrieval | mixture retrieval (likelihood gate) |");
    println!("|---|---|---|---|");
    for d in 0..10 {
        println!(
            "| {d} | {} | {} | {} |",
            totals[d],
            pct(hits[d][0], totals[d]),
            pct(hits[d][1], totals[d])
        );
    }
    let (h0, h1, tot) = (
        hits.iter().map(|h| h[0]).sum(),
        hits.iter().map(|h| h[1]).sum(),
        totals.iter().sum(),
    );
    println!("| all | {tot} | {} | {} |", pct(h0, tot), pct(h1, tot));
}

/// Index of the planted pattern a quenched state equals (None: elsewhere).
fn landing(data: &Dataset, ends: impl Iterator<Item = Pattern>, counts: &mut [usize]) {
    let index: HashMap<&Pattern, usize> = data
        .patterns()
        .iter()
        .enumerate()
        .map(|(i, p)| (p, i))
        .collect();
    for e in ends {
        let k = index.get(&e).copied().unwrap_or(data.len());
        counts[k] += 1;
    }
}

fn occupancy(p: &Planted, seed: u64) {
    let n = p.data.n();
    let draws = 2000usize;
    let t0 = Instant::now();
    // Mixture: expert m with probability π_m, then 200 heat-bath sweeps at T from random starts.
    let mut rng = ChainRng::new(seed, 23);
    let mut per_expert = vec![0usize; p.experts.experts.len()];
    for _ in 0..draws {
        let u = rng.next_f64();
        let mut acc = 0.0;
        let mut m = per_expert.len() - 1;
        for (i, s) in p.mixture.shares.iter().enumerate() {
            acc += s;
            if u < acc {
                m = i;
                break;
            }
        }
        per_expert[m] += 1;
    }
    let mut mix_counts = vec![0usize; p.data.len() + 1];
    for (m, &count) in per_expert.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let kernel = &p.mixture.kernels[m];
        let mut chains = Chains::random(n, count, seed + m as u64);
        sample(
            kernel,
            &mut chains,
            &Plan::fixed(1.0 / T, 200),
            seed + m as u64,
            &Interrupt::new(),
        )
        .unwrap();
        let starts: Vec<Pattern> = (0..count).map(|c| chains.pattern(c)).collect();
        landing(
            &p.data,
            quench_many(kernel, &starts).into_iter().map(|q| q.pattern),
            &mut mix_counts,
        );
    }
    let t_mix = t0.elapsed().as_secs_f64();
    // Single model: one chain, burn-in 200, every sweep of the next 2000 recorded.
    let t1 = Instant::now();
    let kernel = Kernel::new(&p.single.model);
    let mut chains = Chains::random(n, 1, seed);
    let plan = Plan {
        rule: Rule::HeatBath,
        order: SiteOrder::Sequential,
        schedule: Schedule::Fixed { beta: 1.0 / T },
        burn_in: 200,
        sweeps: draws,
        thin: 1,
        record: true,
    };
    let run = sample(&kernel, &mut chains, &plan, seed, &Interrupt::new()).unwrap();
    let starts: Vec<Pattern> = run.samples.into_iter().map(|s| s.pattern).collect();
    let mut single_counts = vec![0usize; p.data.len() + 1];
    landing(
        &p.data,
        quench_many(&kernel, &starts).into_iter().map(|q| q.pattern),
        &mut single_counts,
    );
    let t_single = t1.elapsed().as_secs_f64();
    println!(
        "\n### Sampling occupancy, planted N = {n}\n\nMixture: {draws} samples, expert m drawn with \
         probability π_m, then heat-bath at T = {T} for 200 sweeps from a random start ({t_mix:.1} s). \
         Single model: one chain, burn-in 200, {} recorded sweeps ({t_single:.1} s). Every sample \
         is quenched and counted by the planted pattern it lands in.\n",
        starts.len()
    );
    println!("| pattern | data share | mixture share | single-chain share |");
    println!("|---|---|---|---|");
    let w = p.data.weights();
    let share = |c: usize, total: usize| format!("{:.3}", c as f64 / total as f64);
    let mix_total: usize = mix_counts.iter().sum();
    let single_total: usize = single_counts.iter().sum();
    for i in 0..=p.data.len() {
        let name = if i == p.data.len() {
            "elsewhere".to_string()
        } else if i < 3 {
            format!("common {}", i + 1)
        } else {
            format!("rare {}", i - 2)
        };
        println!(
            "| {name} | {} | {} | {} |",
            if i < w.len() {
                format!("{:.3}", w[i])
            } else {
                "0".into()
            },
            share(mix_counts[i], mix_total),
            share(single_counts[i], single_total)
        );
    }
}

fn main() {
    let start = Instant::now();
    let seed = 7u64;
    println!("## Experts evidence (`cargo bench --bench experts`)\n");
    println!(
        "Machine: {} ({} rayon threads); seed {seed}",
        machine(),
        rayon::current_num_threads()
    );
    let p64 = planted(64, seed);
    occupancy(&p64, seed);
    let t = Instant::now();
    drop(planted(128, seed));
    eprintln!("N = 128 section: {:.1} s", t.elapsed().as_secs_f64());
    digits(seed);
    println!("\nTotal wall time: {:.1} s", start.elapsed().as_secs_f64());
}
