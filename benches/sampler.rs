//! Sampler throughput (spin-flip attempts per second), see ../shared/design/benchmarks.md.
//!
//! `cargo bench --bench sampler` — built-in SK-like instances (N = 64, 256, 784) and an order-3
//! N = 64 model with all triplets; fixed T = 1 Metropolis and heat-bath (100 chains × 1000 sweeps),
//! annealing, quench; one and two threads; prints attempts/s. `-- --sizes 64,256` limits the SK
//! sizes, `-- --sizes 0` runs the order-3 model alone.
//!
//! `cargo bench --bench sampler -- --instance FILE.json --workload metropolis|gibbs|anneal|quench
//!  [--threads T] [--chains C] [--sweeps S]` — one measurement on an instance written by
//! bench/sampler_peers.py (the peers read the same file); prints one JSON line.
//! Instance JSON: {"n", "h": [N], "J": [N×N row-major, symmetric, zero diagonal], "beta_range":
//! [hot, cold] (annealing, geometric), "starts": [[±1; N], …] (quench)} with
//! E = −Σ_{i<j} J_ij s_i s_j − Σ_i h_i s_i.

use boundstate::engine::quench::quench_many;
use boundstate::engine::retrieve::{RetrievalOptions, retrieve};
use boundstate::engine::sampler::{Chains, Kernel, Plan, Rule, Schedule, SiteOrder, sample};
use boundstate::engine::{ChainRng, InteractionSet, Interrupt, Model, Pairwise, Pattern};
use std::time::Instant;

struct Instance {
    model: Model,
    beta_range: (f64, f64),
    starts: Vec<Pattern>,
}

fn sk(n: usize, seed: u64) -> Instance {
    let mut r = ChainRng::new(seed, 0);
    let mut coupling = vec![0.0; n * n];
    let sd = (1.0 / n as f64).sqrt();
    for i in 0..n {
        for j in i + 1..n {
            let w = r.normal() * sd;
            coupling[i * n + j] = w;
            coupling[j * n + i] = w;
        }
    }
    let field = (0..n).map(|_| r.normal() * 0.1).collect();
    let model = Pairwise {
        n,
        field,
        coupling,
        offset: 0.0,
    }
    .to_model();
    let starts = (0..100)
        .map(|_| Pattern::from_spins(&(0..n).map(|_| r.spin()).collect::<Vec<_>>()))
        .collect();
    Instance {
        model,
        beta_range: (0.1, 10.0),
        starts,
    }
}

fn order3(n: usize, seed: u64) -> Model {
    let set = InteractionSet::order(n, 3, u64::MAX).unwrap();
    let mut r = ChainRng::new(seed, 0);
    let j = set
        .iter()
        .map(|s| r.normal() / (n as f64).powf((s.len() as f64 - 1.0) / 2.0))
        .collect();
    Model::new(set, j, 0.0).unwrap()
}

fn load(path: &str) -> Instance {
    let text = std::fs::read_to_string(path).expect("instance file");
    let v: serde_json::Value = serde_json::from_str(&text).expect("instance JSON");
    let n = v["n"].as_u64().expect("n") as usize;
    let nums = |key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}"))
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let field = nums("h");
    let coupling = nums("J");
    assert_eq!(coupling.len(), n * n);
    let beta_range = v["beta_range"]
        .as_array()
        .map(|b| (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()))
        .unwrap_or((0.1, 10.0));
    let starts = v["starts"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    let s: Vec<i8> = row
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| if x.as_i64().unwrap() > 0 { 1 } else { -1 })
                        .collect();
                    Pattern::from_spins(&s)
                })
                .collect()
        })
        .unwrap_or_default();
    let model = Pairwise {
        n,
        field,
        coupling,
        offset: 0.0,
    }
    .to_model();
    Instance {
        model,
        beta_range,
        starts,
    }
}

struct Measured {
    seconds: f64,
    attempts: u64,
    best_energy: f64,
    /// Mean final energy over the reads.
    mean_energy: f64,
    /// Standard deviation of the final energies over the reads.
    sd_energy: f64,
}

fn measure(
    inst: &Instance,
    kernel: &Kernel,
    workload: &str,
    threads: usize,
    chains: usize,
    sweeps: usize,
    seed: u64,
) -> Measured {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let n = kernel.n();
    pool.install(|| match workload {
        "quench" => {
            let t0 = Instant::now();
            let q = quench_many(kernel, &inst.starts);
            let seconds = t0.elapsed().as_secs_f64();
            Measured {
                seconds,
                attempts: q.iter().map(|x| x.flips as u64).sum(),
                best_energy: q.iter().map(|x| x.energy).fold(f64::INFINITY, f64::min),
                mean_energy: q.iter().map(|x| x.energy).sum::<f64>() / q.len().max(1) as f64,
                sd_energy: 0.0,
            }
        }
        _ => {
            let (rule, schedule) = match workload {
                "metropolis" => (Rule::Metropolis, Schedule::Fixed { beta: 1.0 }),
                "gibbs" => (Rule::HeatBath, Schedule::Fixed { beta: 1.0 }),
                "anneal" => (
                    Rule::Metropolis,
                    Schedule::Geometric {
                        beta_start: inst.beta_range.0,
                        beta_end: inst.beta_range.1,
                    },
                ),
                other => panic!("unknown workload {other}"),
            };
            let mut ch = Chains::random(n, chains, seed);
            let plan = Plan {
                rule,
                order: SiteOrder::Sequential,
                schedule,
                burn_in: 0,
                sweeps,
                thin: 1,
                record: false,
            };
            let t0 = Instant::now();
            let run = sample(kernel, &mut ch, &plan, seed, &Interrupt::new()).unwrap();
            let seconds = t0.elapsed().as_secs_f64();
            let energies: Vec<f64> = (0..chains).map(|c| kernel.energy(ch.spins(c))).collect();
            Measured {
                seconds,
                attempts: run.attempts,
                best_energy: energies.iter().copied().fold(f64::INFINITY, f64::min),
                mean_energy: energies.iter().sum::<f64>() / chains.max(1) as f64,
                sd_energy: {
                    let m = energies.iter().sum::<f64>() / chains.max(1) as f64;
                    (energies.iter().map(|e| (e - m).powi(2)).sum::<f64>()
                        / (chains.max(2) - 1) as f64)
                        .sqrt()
                },
            }
        }
    })
}

fn arg(args: &[String], key: &str) -> Option<String> {
    args.iter()
        .position(|a| a == key)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads").map_or(1, |s| s.parse().unwrap());
    let chains: usize = arg(&args, "--chains").map_or(100, |s| s.parse().unwrap());
    let sweeps: usize = arg(&args, "--sweeps").map_or(1000, |s| s.parse().unwrap());
    let seed: u64 = arg(&args, "--seed").map_or(1, |s| s.parse().unwrap());
    if let Some(path) = arg(&args, "--instance") {
        let workload = arg(&args, "--workload").expect("--workload");
        let inst = load(&path);
        let t0 = Instant::now();
        let kernel = Kernel::new(&inst.model);
        let build = t0.elapsed().as_secs_f64();
        let m = measure(&inst, &kernel, &workload, threads, chains, sweeps, seed);
        let per_start = if workload == "quench" {
            m.seconds / inst.starts.len().max(1) as f64
        } else {
            0.0
        };
        println!(
            "{{\"side\":\"boundstate\",\"workload\":\"{workload}\",\"n\":{},\"threads\":{threads},\
             \"seconds\":{},\"attempts\":{},\"rate\":{},\"best_energy\":{},\"mean_energy\":{},\
             \"sd_energy\":{},\"per_start\":{},\"kernel_build_seconds\":{build}}}",
            kernel.n(),
            m.seconds,
            m.attempts,
            m.attempts as f64 / m.seconds,
            m.best_energy,
            m.mean_energy,
            m.sd_energy,
            per_start
        );
        return;
    }
    // Built-in table (`--sizes 64,256` limits it; `--sizes 0` runs the order-3 model alone).
    println!("workload      N  threads  attempts/s (M)  seconds");
    let sizes: Vec<usize> = arg(&args, "--sizes").map_or(vec![64, 256, 784], |s| {
        s.split(',')
            .map(|x| x.parse().unwrap())
            .filter(|&n| n > 0)
            .collect()
    });
    for &n in &sizes {
        let inst = sk(n, n as u64);
        let kernel = Kernel::new(&inst.model);
        for workload in ["metropolis", "gibbs", "anneal"] {
            for threads in [1, 2] {
                let m = measure(&inst, &kernel, workload, threads, chains, sweeps, seed);
                println!(
                    "{workload:<12} {n:>4}  {threads:>7}  {:>14.1}  {:>7.3}",
                    m.attempts as f64 / m.seconds / 1e6,
                    m.seconds
                );
            }
        }
        let m = measure(&inst, &kernel, "quench", 1, chains, sweeps, seed);
        println!(
            "quench       {n:>4}  {:>7}  {:>11.1} µs/start",
            1,
            m.seconds / inst.starts.len() as f64 * 1e6
        );
        // Retrieval: 8 restarts × 20 heat-bath sweeps at T = 0.5, then quench. Two cues: a random
        // pattern with a tenth of its bits unknown (worst case: the dynamics flips many spins),
        // and a local minimum (the kind of state retrieval targets) with 5% of its bits flipped
        // and 5% unknown. Best of 5.
        let minimum = quench_many(&kernel, &inst.starts[..1]).remove(0).pattern;
        let random_cue: Vec<Option<bool>> = (0..n)
            .map(|a| (a % 10 != 0).then(|| inst.starts[0].bit(a)))
            .collect();
        let near_cue: Vec<Option<bool>> = (0..n)
            .map(|a| match a % 20 {
                0 => None,
                10 => Some(!minimum.bit(a)),
                _ => Some(minimum.bit(a)),
            })
            .collect();
        let opts = RetrievalOptions {
            temperature: 0.5,
            sweeps: 20,
            restarts: 8,
            clamp_known_sweeps: 5,
            seed: 1,
        };
        for (cue, query) in [("random cue", &random_cue), ("near a minimum", &near_cue)] {
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let best = (0..5)
                    .map(|_| {
                        let t0 = Instant::now();
                        pool.install(|| {
                            retrieve(&kernel, query, &opts, &Interrupt::new()).unwrap()
                        });
                        t0.elapsed().as_secs_f64()
                    })
                    .fold(f64::INFINITY, f64::min);
                println!(
                    "retrieve     {n:>4}  {threads:>7}  {:>11.3} ms (8 restarts × 20 sweeps + quench, {cue})",
                    best * 1e3
                );
            }
        }
    }
    let model = order3(64, 3);
    let kernel = Kernel::new(&model);
    let inst = Instance {
        model,
        beta_range: (0.1, 10.0),
        starts: Vec::new(),
    };
    for workload in ["metropolis", "gibbs"] {
        for threads in [1, 2] {
            let m = measure(&inst, &kernel, workload, threads, chains, sweeps / 10, seed);
            println!(
                "{workload:<12} {:>4}  {threads:>7}  {:>14.1}  {:>7.3}   (order 3, all triplets)",
                64,
                m.attempts as f64 / m.seconds / 1e6,
                m.seconds
            );
        }
    }
}
