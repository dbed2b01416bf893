//! Census timings: `cargo bench --bench census`. Prints one line per measurement.
//!
//! * exact census of digits4x4 (N = 16): full description and its order-2 projection;
//! * mean-field census of a Hopfield model, N = 784, 10 random patterns, 100 random starts;
//! * quench cost per start (steepest descent, engine::quench) at N = 64 / 256 / 784 on Hopfield
//!   models (issue 5 compares with dwave-samplers' SteepestDescentSolver: 34 µs / 395 µs /
//!   3.17 ms per start);
//! * sampling census, N = 64 Hopfield.

use boundstate::engine::census::{self, CensusMethod, CensusOptions};
use boundstate::engine::control::NoObserver;
use boundstate::engine::full::{self, Ceiling};
use boundstate::engine::quench::quench_many;
use boundstate::engine::sampler::Kernel;
use boundstate::engine::{ChainRng, Interrupt, Model, Pairwise, Pattern};
use std::collections::BTreeMap;
use std::time::Instant;

fn digits4x4() -> (Vec<Pattern>, Vec<f64>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/digits4x4.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut counts: BTreeMap<Pattern, usize> = BTreeMap::new();
    let mut total = 0;
    for l in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        *counts.entry(Pattern::parse_bits(l).unwrap()).or_default() += 1;
        total += 1;
    }
    counts
        .into_iter()
        .map(|(p, c)| (p, c as f64 / total as f64))
        .unzip()
}

fn random_patterns(n: usize, m: usize, seed: u64) -> Vec<Pattern> {
    (0..m)
        .map(|k| {
            let mut r = ChainRng::new(seed, k as u64);
            Pattern::from_spins(&(0..n).map(|_| r.spin()).collect::<Vec<_>>())
        })
        .collect()
}

fn hopfield(stored: &[Pattern]) -> Model {
    let n = stored[0].len();
    let mut w = vec![0.0; n * n];
    for p in stored {
        let s = p.to_spins();
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    w[a * n + b] += (s[a] * s[b]) as f64 / n as f64;
                }
            }
        }
    }
    Pairwise {
        n,
        field: vec![0.0; n],
        coupling: w,
        offset: 0.0,
    }
    .to_model()
}

fn time<T>(label: &str, reps: usize, mut f: impl FnMut() -> T) -> T {
    let mut out = None;
    let start = Instant::now();
    for _ in 0..reps {
        out = Some(f());
    }
    let s = start.elapsed().as_secs_f64() / reps as f64;
    println!("{label}: {:.3} ms", s * 1e3);
    out.unwrap()
}

fn main() {
    let i = Interrupt::new();
    let (p, w) = digits4x4();
    let fd = full::full_description(16, &p, &w, 1.0, Ceiling::LibraryProbability(0.99)).unwrap();
    let exact = CensusOptions::new(CensusMethod::Exact, 1.0);
    let c = time("exact census, digits4x4 full description (N=16)", 5, || {
        census::census(&fd.model, &p, &w, &exact, &i, &NoObserver).unwrap()
    });
    println!("  {} minima, continuum {:?}", c.minima.len(), c.continuum);
    let m2 = full::truncate(&fd.model, 2).unwrap();
    time(
        "exact census, digits4x4 order-2 projection (N=16)",
        5,
        || census::census(&m2, &p, &w, &exact, &i, &NoObserver).unwrap(),
    );

    let stored = random_patterns(784, 10, 1);
    let h = hopfield(&stored);
    let mut mf = CensusOptions::new(CensusMethod::MeanField, 0.3);
    mf.random_starts = 100;
    let c = time(
        "mean-field census, Hopfield N=784, 10 patterns, 100 random starts, T=0.3",
        1,
        || census::census(&h, &stored, &[0.1; 10], &mf, &i, &NoObserver).unwrap(),
    );
    let memories = c.minima.iter().filter(|m| m.hamming == 0).count();
    println!(
        "  {} minima ({memories} exactly on a stored pattern), continuum {:?}",
        c.minima.len(),
        c.continuum.map(|c| c.weight)
    );

    for n in [64usize, 256, 784] {
        let stored = random_patterns(n, (n / 20).max(2), 2);
        let k = Kernel::new(&hopfield(&stored));
        let starts = random_patterns(n, 1000, 3);
        let start = Instant::now();
        let q = quench_many(&k, &starts);
        let per = start.elapsed().as_secs_f64() / starts.len() as f64;
        let flips: usize = q.iter().map(|x| x.flips).sum();
        println!(
            "quench N={n}: {:.1} µs per start (wall, parallel over 1000 starts), {:.1} flips per start",
            per * 1e6,
            flips as f64 / 1000.0
        );
    }

    let stored = random_patterns(64, 3, 4);
    let h = hopfield(&stored);
    let s = CensusOptions::new(CensusMethod::Sampling, 0.3);
    let c = time(
        "sampling census, Hopfield N=64, 16 chains x 2000 sweeps, T=0.3",
        1,
        || census::census(&h, &stored, &[1.0 / 3.0; 3], &s, &i, &NoObserver).unwrap(),
    );
    println!(
        "  {} minima; {}",
        c.minima.len(),
        c.ergodicity.map(|e| e.note).unwrap_or_default()
    );
}
