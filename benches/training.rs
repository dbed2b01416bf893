//! Training speed on digits8x8 (1797 × 64), order 2, T = 1 (docs: ../bench/training_peers.py).
//!
//! `cargo bench --bench training -- [--reps K] [--json PATH] [--tolerance X] [--sampled]`
//!
//! - pseudo-likelihood: all 64 conditional likelihoods (λ = 0.01 on every coefficient, Newton per
//!   site, rayon over sites), K repetitions, median and best wall-clock; the per-site
//!   coefficients of the last repetition go to PATH (for the accuracy comparison with sklearn);
//! - with `--sampled`: one `sampled` run (defaults) with its moment error and Pearson r.

use boundstate::engine::control::NoObserver;
use boundstate::engine::train::{
    Method, NoCheckpoints, Optimizer, PlOptions, TrainingConfig, pseudolikelihood_sites, train,
};
use boundstate::engine::{Dataset, InteractionSet, Interrupt, Pattern};
use std::sync::Arc;
use std::time::Instant;

fn load() -> Dataset {
    let shared = "/work/shared/data/digits8x8.txt";
    let local = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/digits8x8.txt");
    let path = if std::path::Path::new(shared).exists() {
        shared
    } else {
        local
    };
    let text = std::fs::read_to_string(path).expect("digits8x8.txt");
    let rows = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| (Pattern::parse_bits(l).expect("0/1 rows"), 1u64));
    Dataset::from_rows(64, rows).unwrap().0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let reps: usize = arg("--reps").map_or(5, |v| v.parse().expect("--reps K"));
    let json = arg("--json");
    let data = load();
    let set = Arc::new(InteractionSet::order(64, 2, u64::MAX).unwrap());
    let options = PlOptions {
        temperature: 1.0,
        l2: 0.01,
        optimizer: Optimizer::Auto,
        max_iterations: 100,
        tolerance: arg("--tolerance").map_or(1e-8, |v| v.parse().expect("--tolerance X")),
    };
    let mut times = Vec::new();
    let mut fits = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        fits = pseudolikelihood_sites(&data, &set, &options, &Interrupt::new(), &|_| {}).unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let objective: f64 = fits.iter().map(|f| f.objective).sum();
    let worst = fits.iter().map(|f| f.max_gradient).fold(0.0f64, f64::max);
    eprintln!(
        "pseudolikelihood digits8x8 order 2 (64 sites, {} distinct patterns, {} threads): \
         median {:.4} s, best {:.4} s over {reps} reps; Σ objective {objective:.10}, largest \
         site gradient {worst:.2e}",
        data.len(),
        rayon::current_num_threads(),
        sorted[reps / 2],
        sorted[0]
    );
    if let Some(path) = json {
        let sites: Vec<serde_json::Value> = fits
            .iter()
            .map(|f| {
                // Feature of each coefficient: −1 for the field (constant 1), else the other spin.
                let others: Vec<i64> = f
                    .members
                    .iter()
                    .map(|&i| {
                        let s = set.subset(i).to_vec();
                        s.iter()
                            .map(|&b| b as i64)
                            .find(|&b| b != f.site as i64)
                            .unwrap_or(-1)
                    })
                    .collect();
                serde_json::json!({
                    "site": f.site, "others": others, "theta": f.coefficients,
                    "objective": f.objective, "max_gradient": f.max_gradient,
                    "iterations": f.iterations,
                })
            })
            .collect();
        let out =
            serde_json::json!({"times": times, "l2": 0.01, "temperature": 1.0, "sites": sites});
        std::fs::write(&path, serde_json::to_vec(&out).unwrap()).expect("write json");
    }
    if args.iter().any(|a| a == "--sampled") {
        let mut cfg = TrainingConfig::new(Method::Sampled);
        // Overrides for experiments: BS_CHAINS, BS_SWEEPS, BS_ITERS, BS_LR, BS_NO_TEMPERING=1.
        let env = |k: &str| std::env::var(k).ok();
        if let Some(v) = env("BS_CHAINS") {
            cfg.chains = v.parse().unwrap();
        }
        if let Some(v) = env("BS_SWEEPS") {
            cfg.sweeps_per_step = v.parse().unwrap();
        }
        if let Some(v) = env("BS_ITERS") {
            cfg.max_iterations = v.parse().unwrap();
        }
        if let Some(v) = env("BS_LR") {
            cfg.step_size = Some(v.parse().unwrap());
        }
        cfg.parallel_tempering = env("BS_NO_TEMPERING").is_none();
        if env("BS_GD").is_some() {
            cfg.optimizer = Optimizer::GradientDescent;
        }
        let t = Instant::now();
        let r = train(
            &data,
            set.clone(),
            &cfg,
            None,
            &Interrupt::new(),
            &NoObserver,
            &NoCheckpoints,
        )
        .unwrap()
        .report;
        for h in r.history.iter().step_by(10) {
            eprintln!(
                "  step {:5}: largest moment error {:.4}",
                h.iteration, h.max_moment_error
            );
        }
        eprintln!(
            "sampled digits8x8 order 2 (defaults: {} chains × {} sweeps/step, tempering {}, Adam, PL start): \
             {:.2} s, {} steps, stop {}, largest moment error {:.4}, r = {:?}, ergodicity broken {}",
            cfg.chains,
            cfg.sweeps_per_step,
            cfg.parallel_tempering,
            t.elapsed().as_secs_f64(),
            r.iterations,
            r.stop_reason,
            r.max_moment_error,
            r.correlation_r,
            r.ergodicity_broken
        );
    }
}
