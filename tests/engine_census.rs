//! The census of free-energy minima (model.md §5), checked against brute force and against each
//! other.

use boundstate::engine::census::{
    self, Census, CensusMethod, CensusOptions, MinimumKind, landscape,
};
use boundstate::engine::control::NoObserver;
use boundstate::engine::full::{self, Ceiling, FullDescription};
use boundstate::engine::spins::spins_from_index;
use boundstate::engine::{ChainRng, InteractionSet, Interrupt, Model, Pattern};
use std::collections::{BTreeMap, HashMap, HashSet};

fn digits4x4() -> (Vec<Pattern>, Vec<f64>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/digits4x4.txt");
    let text = std::fs::read_to_string(path).expect("examples/data/digits4x4.txt");
    let mut counts: BTreeMap<Pattern, usize> = BTreeMap::new();
    let mut total = 0usize;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        *counts
            .entry(Pattern::parse_bits(line).expect("0/1 rows"))
            .or_default() += 1;
        total += 1;
    }
    assert_eq!(total, 1797);
    let (patterns, weights) = counts
        .into_iter()
        .map(|(p, c)| (p, c as f64 / total as f64))
        .unzip();
    (patterns, weights)
}

fn full_digits() -> (Vec<Pattern>, Vec<f64>, FullDescription) {
    let (p, w) = digits4x4();
    let fd = full::full_description(16, &p, &w, 1.0, Ceiling::LibraryProbability(0.99)).unwrap();
    (p, w, fd)
}

fn run(model: &Model, p: &[Pattern], w: &[f64], opts: &CensusOptions) -> Census {
    census::census(model, p, w, opts, &Interrupt::new(), &NoObserver).unwrap()
}

fn flipped(p: &Pattern, a: usize) -> Pattern {
    let mut q = p.clone();
    q.flip(a);
    q
}

fn total_weight(c: &Census) -> f64 {
    c.minima.iter().map(|m| m.weight).sum::<f64>() + c.continuum.as_ref().map_or(0.0, |c| c.weight)
}

/// Full description of digits4x4 at P_lib = 0.99: its minima are the holes of the training
/// patterns that have no deeper training pattern one flip away; everything else is the
/// continuum or drains into a hole.
#[test]
fn full_description_minima_are_the_undrained_training_patterns() {
    let (p, w, fd) = full_digits();
    let c = run(
        &fd.model,
        &p,
        &w,
        &CensusOptions::new(CensusMethod::Exact, 1.0),
    );
    // Brute force on the weights alone (E_μ = −T ln w_μ, every other state at E_u > every E_μ):
    // strict: every training neighbour strictly lighter; weak: none heavier, some equal.
    let index: HashMap<&Pattern, usize> = p.iter().enumerate().map(|(i, q)| (q, i)).collect();
    let mut strict = HashSet::new();
    let mut weak = HashSet::new();
    for (i, q) in p.iter().enumerate() {
        let nb: Vec<f64> = (0..16)
            .filter_map(|a| index.get(&flipped(q, a)).map(|&j| w[j]))
            .collect();
        if nb.iter().all(|&x| x < w[i]) {
            strict.insert(q.to_string());
        } else if nb.iter().all(|&x| x <= w[i]) {
            weak.insert(q.to_string());
        }
    }
    assert_eq!(strict.len() + weak.len(), 19, "model.md §3: 19 of 185");
    let census_strict: HashSet<String> = c
        .minima
        .iter()
        .filter(|m| m.strict)
        .map(|m| m.pattern.clone())
        .collect();
    assert_eq!(census_strict, strict);
    // Every minimum is a memory (a hole); the weak ones are the plateaus of the equally deep.
    assert!(c.minima.iter().all(|m| m.kind == MinimumKind::Memory));
    for q in &weak {
        let i = index[&Pattern::parse_bits(q).unwrap()];
        let m = &c.minima[c.assignment[i].expect("a weak minimum is a minimum")];
        assert!(!m.strict);
        assert!((m.energy - fd.target_energies[i]).abs() < 1e-9);
    }
    let held: usize = c
        .minima
        .iter()
        .map(|m| {
            let q = Pattern::parse_bits(&m.pattern).unwrap();
            assert!(m.stability >= -1e-9, "σ_a h_a ≥ 0 at a minimum");
            assert_eq!(m.hamming, 0);
            assert_eq!(p[m.nearest_training], q);
            m.attracted
        })
        .sum();
    assert_eq!(held, c.assignment.iter().filter(|a| a.is_some()).count());
    eprintln!(
        "full digits4x4: {} minima ({} strict), continuum {:?}, {} patterns in the continuum",
        c.minima.len(),
        census_strict.len(),
        c.continuum,
        c.assignment.iter().filter(|a| a.is_none()).count()
    );
    // The continuum: the sea at E_u; F_c = E_u − T ln(#states).
    let cont = c.continuum.as_ref().expect("the continuum is a phase");
    let states = cont.states.unwrap();
    assert!((cont.free_energy - (fd.ceiling_energy - states.ln())).abs() < 1e-9);
    assert!(cont.weight > 0.0 && cont.weight < 0.01);
    assert!((total_weight(&c) - 1.0).abs() < 1e-12);
    // ln Z from the census equals ln Z of the enumeration.
    let en = boundstate::engine::exact::Enumeration::new(
        &fd.model,
        1.0,
        &Default::default(),
        &Interrupt::new(),
    )
    .unwrap();
    assert!((c.log_partition.unwrap() - en.log_partition()).abs() < 1e-10);
}

/// Brute-force basins from `Model::energy`: steepest descent (lowest neighbour, ties to the lowest
/// spin, only strictly lower moves) to a fixed point. (No ties occur for random couplings.)
fn brute_basins(model: &Model, t: f64) -> (Vec<u64>, HashMap<u64, (f64, usize)>, f64) {
    let n = model.n();
    let mut s = vec![0i8; n];
    let e: Vec<f64> = (0..1u64 << n)
        .map(|i| {
            spins_from_index(i, &mut s);
            model.energy(&s)
        })
        .collect();
    let root: Vec<u64> = (0..1u64 << n)
        .map(|mut i| {
            loop {
                let best = (0..n)
                    .map(|a| i ^ (1 << a))
                    .min_by(|&x, &y| e[x as usize].total_cmp(&e[y as usize]))
                    .unwrap();
                if e[best as usize] < e[i as usize] {
                    i = best;
                } else {
                    return i;
                }
            }
        })
        .collect();
    let mut z: HashMap<u64, (f64, usize)> = HashMap::new();
    let mut ztot = 0.0;
    for (i, &r) in root.iter().enumerate() {
        let q = (-e[i] / t).exp();
        let entry = z.entry(r).or_default();
        entry.0 += q;
        entry.1 += 1;
        ztot += q;
    }
    (root, z, ztot)
}

#[test]
fn small_random_model_basins_match_brute_force() {
    for (seed, n, k) in [(1u64, 8usize, 3usize), (2, 10, 2), (3, 7, 7)] {
        let set = InteractionSet::order(n, k, u64::MAX).unwrap();
        let mut r = ChainRng::new(seed, 0);
        let j: Vec<f64> = (0..set.len()).map(|_| r.normal() * 0.7).collect();
        let model = Model::new(set, j, 0.4).unwrap();
        let t = 0.8;
        let patterns: Vec<Pattern> = (0..5)
            .map(|_| Pattern::from_index(r.below(1 << n), n))
            .collect();
        let weights = vec![0.2; 5];
        let c = run(
            &model,
            &patterns,
            &weights,
            &CensusOptions::new(CensusMethod::Exact, t),
        );
        let (root, z, ztot) = brute_basins(&model, t);
        assert!((total_weight(&c) - 1.0).abs() < 1e-12);
        assert!(c.continuum.is_none(), "no flat regions in a random model");
        assert_eq!(c.minima.len(), z.len(), "seed {seed}");
        for m in &c.minima {
            let i = Pattern::parse_bits(&m.pattern).unwrap().index();
            let (zb, size) = z[&i];
            assert!((m.weight - zb / ztot).abs() < 1e-12, "seed {seed}");
            assert!((m.free_energy - (-t * zb.ln())).abs() < 1e-10 * (1.0 + m.free_energy.abs()));
            assert_eq!(m.basin_size, size as f64 / (1u64 << n) as f64);
            assert!(m.strict && m.stability > 0.0);
        }
        for (p, a) in patterns.iter().zip(&c.assignment) {
            let m = &c.minima[a.unwrap()];
            assert_eq!(
                m.pattern,
                Pattern::from_index(root[p.index() as usize], n).to_string()
            );
        }
        let f: Vec<f64> = c.minima.iter().map(|m| m.free_energy).collect();
        assert!(f.windows(2).all(|x| x[0] <= x[1]), "sorted by free energy");
    }
}

#[test]
fn landscape_of_the_full_description_melts_at_t_cross() {
    let (p, w, fd) = full_digits();
    let l = landscape(
        &fd.model,
        &p,
        &w,
        0.25,
        3.0,
        12,
        CensusMethod::Exact,
        &Interrupt::new(),
        &NoObserver,
    )
    .unwrap();
    let plib: Vec<f64> = l.points.iter().map(|x| x.library_probability).collect();
    assert!(plib.windows(2).all(|x| x[1] < x[0]), "{plib:?}");
    for pt in &l.points {
        assert!((pt.library_probability - fd.library_probability_at(pt.temperature)).abs() < 1e-9);
    }
    let tx = l.melting_temperature.unwrap();
    let expected = fd.melting_temperature.unwrap();
    eprintln!("T_x = {tx} (full.rs {expected}); points {:#?}", l.points);
    assert!((tx - expected).abs() < 1e-6);
}

/// Hopfield couplings W_ab = (1/N) Σ_μ ξ^μ_a ξ^μ_b (a ≠ b), no fields: memories, their
/// reversals and mixture states.
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
    boundstate::engine::Pairwise {
        n,
        field: vec![0.0; n],
        coupling: w,
        offset: 0.0,
    }
    .to_model()
}

/// Order-2 models of digits4x4 (the projection of the full description, and a Hopfield model of
/// three digits): every exact minimum holding more than 1 % of the weight is found by the other
/// methods, with the same free energy to a stated tolerance.
///
/// Tolerance. At low T the basin partition function of a minimum with single-flip Boltzmann
/// factors x_a = e^{−ΔE_a/T} is Z_a = e^{−E_a/T} (1 + Σ_a x_a + O(x²)); mean field reproduces
/// the first order exactly (F(m) = E − T Σ_a ln(1 + x_a) + O(T x²)), its error is the
/// second-order term (pairs of flips, whose energies are not additive). So we require
/// |F_exact − F_other| ≤ T (Σ_a x_a)² + 1e-9 and compare at temperatures where Σ_a x_a ≤ 1/2 for
/// every compared minimum (the low-temperature regime where the expansion holds).
fn check_agreement(model: &Model, p: &[Pattern], w: &[f64], t: f64, other: CensusMethod) -> usize {
    let exact = run(model, p, w, &CensusOptions::new(CensusMethod::Exact, t));
    let mut opts = CensusOptions::new(other, t);
    opts.seed = 7;
    let c = run(model, p, w, &opts);
    assert!((total_weight(&c) - 1.0).abs() < 1e-9);
    let mut compared = 0;
    for m in exact.minima.iter().filter(|m| m.weight > 0.01) {
        let q = Pattern::parse_bits(&m.pattern).unwrap();
        let s = q.to_spins();
        let x: f64 = (0..q.len())
            .map(|a| (-model.flip_energy(&s, a) / t).exp())
            .sum();
        assert!(x <= 0.5, "T = {t} is not low for {}: Σx = {x}", m.pattern);
        let tol = t * x * x + 1e-9;
        let found = c
            .minima
            .iter()
            .find(|o| o.pattern == m.pattern)
            .unwrap_or_else(|| {
                panic!(
                    "{other:?} misses exact minimum {} (w {})",
                    m.pattern, m.weight
                )
            });
        let d = (found.free_energy - m.free_energy).abs();
        eprintln!(
            "{other:?} T={t} {}: F_exact {:.9} F {:.9} |ΔF| {d:.3e} tol {tol:.3e}",
            m.pattern, m.free_energy, found.free_energy
        );
        assert!(d <= tol, "{}: |ΔF| = {d} > {tol}", m.pattern);
        compared += 1;
    }
    compared
}

#[test]
fn exact_and_mean_field_agree_on_order_two_models() {
    let (p, w, fd) = full_digits();
    let m2 = full::truncate(&fd.model, 2).unwrap();
    assert_eq!(
        check_agreement(&m2, &p, &w, 0.04, CensusMethod::MeanField),
        1
    );
    // Three digits as a Hopfield model.
    let mut by_weight: Vec<usize> = (0..p.len()).collect();
    by_weight.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
    let stored: Vec<Pattern> = by_weight[..3].iter().map(|&i| p[i].clone()).collect();
    let h = hopfield(&stored);
    let n = check_agreement(&h, &stored, &[1.0 / 3.0; 3], 0.15, CensusMethod::MeanField);
    assert!(n >= 2, "{n}");
}

/// Sampling against exact on the same models. The sampled F_a = E_a + T ln r_a has a statistical
/// error: r_a is a share of K correlated samples, so δF ≈ T δr/r ≈ T √((1 − r)/(r K_eff)); with
/// r ≥ 0.5 (low T) and K_eff ≥ 100 effective samples per basin that is ≤ 0.1 T. We allow
/// 0.1 T + the mean-field bound (which also covers the exact-vs-estimate difference when a
/// minimum is never sampled exactly).
#[test]
fn exact_and_sampling_agree_on_order_two_models() {
    let (p, w, fd) = full_digits();
    let m2 = full::truncate(&fd.model, 2).unwrap();
    for (model, pats, ws, t) in [(m2, p.clone(), w.clone(), 0.04), {
        let mut by_weight: Vec<usize> = (0..p.len()).collect();
        by_weight.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
        let stored: Vec<Pattern> = by_weight[..3].iter().map(|&i| p[i].clone()).collect();
        (hopfield(&stored), stored, vec![1.0 / 3.0; 3], 0.15)
    }] {
        let exact = run(
            &model,
            &pats,
            &ws,
            &CensusOptions::new(CensusMethod::Exact, t),
        );
        let mut opts = CensusOptions::new(CensusMethod::Sampling, t);
        opts.seed = 11;
        let c = run(&model, &pats, &ws, &opts);
        assert!((total_weight(&c) - 1.0).abs() < 1e-9);
        let erg = c.ergodicity.as_ref().unwrap();
        eprintln!("sampling T={t}: {} minima; {}", c.minima.len(), erg.note);
        for m in exact.minima.iter().filter(|m| m.weight > 0.01) {
            let q = Pattern::parse_bits(&m.pattern).unwrap();
            let s = q.to_spins();
            let x: f64 = (0..q.len())
                .map(|a| (-model.flip_energy(&s, a) / t).exp())
                .sum();
            let tol = 0.1 * t + t * x * x + 1e-9;
            let found = c
                .minima
                .iter()
                .find(|o| o.pattern == m.pattern)
                .unwrap_or_else(|| panic!("sampling misses exact minimum {}", m.pattern));
            let d = (found.free_energy - m.free_energy).abs();
            eprintln!(
                "  {}: F_exact {:.6} F_sampled {:.6} |ΔF| {d:.2e} tol {tol:.2e}, w {:.3} vs {:.3}",
                m.pattern, m.free_energy, found.free_energy, m.weight, found.weight
            );
            assert!(d <= tol);
        }
        // Quench-based assignment: agrees with the exact basins (both are steepest descent).
        for (a, b) in exact.assignment.iter().zip(&c.assignment) {
            assert_eq!(
                a.map(|i| &exact.minima[i].pattern),
                b.map(|i| &c.minima[i].pattern)
            );
        }
    }
}

#[test]
fn landscape_svg_is_self_contained() {
    let (p, w, fd) = full_digits();
    let l = landscape(
        &fd.model,
        &p,
        &w,
        0.3,
        2.5,
        9,
        CensusMethod::Exact,
        &Interrupt::new(),
        &NoObserver,
    )
    .unwrap();
    let svg = boundstate::engine::plot::landscape_svg(&l, "digits4x4 <full>");
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    assert!(svg.contains("T× = ") && svg.contains("&lt;full&gt;"));
    assert!(!svg.contains("NaN") && !svg.contains("script") && !svg.contains("href"));
    if let Ok(dir) = std::env::var("CENSUS_SVG_DIR") {
        std::fs::write(format!("{dir}/landscape.svg"), &svg).unwrap();
    }
}

/// model.md §3: the projection to order 2 brings false states and drops patterns. For digits4x4
/// (full description at P_lib 0.99, T = 1, truncated to |S| ≤ 2) the exact census at T = 0.1
/// finds two minima: the most frequent digit pattern and a false state (its reversal); of the 19
/// training patterns that were minima of the full description, 18 are no longer minima.
#[test]
fn order_two_projection_counts() {
    let (p, w, fd) = full_digits();
    let full_c = run(
        &fd.model,
        &p,
        &w,
        &CensusOptions::new(CensusMethod::Exact, 0.1),
    );
    let m2 = full::truncate(&fd.model, 2).unwrap();
    let c = run(&m2, &p, &w, &CensusOptions::new(CensusMethod::Exact, 0.1));
    let memories = c
        .minima
        .iter()
        .filter(|m| m.kind == MinimumKind::Memory)
        .count();
    let false_states = c.minima.len() - memories;
    // Training patterns that are fixed points (minima or plateau members) of each model.
    let minima_of = |model: &Model| -> HashSet<usize> {
        (0..p.len())
            .filter(|&i| {
                let s = p[i].to_spins();
                (0..16).all(|a| model.flip_energy(&s, a) >= -1e-9)
            })
            .collect()
    };
    let before = minima_of(&fd.model);
    let after = minima_of(&m2);
    assert_eq!(before.len(), 19);
    let dropped = before.difference(&after).count();
    eprintln!(
        "order 2: {} minima ({memories} memories, {false_states} false states); full: {} minima; \
         dropped {dropped} of 19",
        c.minima.len(),
        full_c.minima.len()
    );
    assert_eq!((memories, false_states), (1, 1));
    assert_eq!(dropped, 18);
    let best = p
        .iter()
        .zip(&w)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0
        .to_string();
    let mem = c
        .minima
        .iter()
        .find(|m| m.kind == MinimumKind::Memory)
        .unwrap();
    assert_eq!(mem.pattern, best);
    let reversed: String = best
        .chars()
        .map(|ch| if ch == '1' { '0' } else { '1' })
        .collect();
    assert!(c.minima.iter().any(|m| m.pattern == reversed));
}

/// Mean-field landscape of a Hopfield model: ordered minima at low T, only the paramagnetic
/// continuum above the critical temperature (T_c = largest eigenvalue of W ≤ 1 + M/N-ish).
#[test]
fn mean_field_landscape_melts_into_the_paramagnet() {
    let (p, w) = digits4x4();
    let mut by_weight: Vec<usize> = (0..p.len()).collect();
    by_weight.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
    let stored: Vec<Pattern> = by_weight[..3].iter().map(|&i| p[i].clone()).collect();
    let h = hopfield(&stored);
    let l = landscape(
        &h,
        &stored,
        &[1.0 / 3.0; 3],
        0.1,
        4.0,
        8,
        CensusMethod::MeanField,
        &Interrupt::new(),
        &NoObserver,
    )
    .unwrap();
    let first = &l.points[0];
    let last = l.points.last().unwrap();
    assert!(
        first.n_minima >= 2 && first.continuum_weight < 1e-6,
        "{first:?}"
    );
    assert_eq!(last.n_minima, 0);
    assert!((last.continuum_weight - 1.0).abs() < 1e-12);
    assert!(
        l.points
            .iter()
            .all(|x| (0.0..=1.0).contains(&x.library_probability))
    );
    eprintln!("{:#?} T_x {:?}", l.points, l.melting_temperature);
}

/// Planted random patterns (N = 64 and 128, M = 0.05 N, equal weights) in a Hopfield model:
/// mean field and sampling find every planted memory (as a `memory` minimum attracting its own
/// pattern) and label everything else (reversals, mixtures) as false states.
#[test]
fn planted_patterns_are_found_by_mean_field_and_sampling() {
    for n in [64usize, 128] {
        let m = n / 20;
        let stored: Vec<Pattern> = (0..m)
            .map(|k| {
                let mut r = ChainRng::new(42, k as u64);
                Pattern::from_spins(&(0..n).map(|_| r.spin()).collect::<Vec<_>>())
            })
            .collect();
        let h = hopfield(&stored);
        let ws = vec![1.0 / m as f64; m];
        for method in [CensusMethod::MeanField, CensusMethod::Sampling] {
            let mut opts = CensusOptions::new(method, 0.2);
            opts.random_starts = 50;
            opts.sampling_sweeps = 500;
            let c = run(&h, &stored, &ws, &opts);
            for (i, p) in stored.iter().enumerate() {
                let a = c.assignment[i].expect("a planted pattern is a bound state");
                assert_eq!(c.minima[a].pattern, p.to_string(), "{method:?} N={n}");
                assert_eq!(c.minima[a].kind, MinimumKind::Memory);
                assert_eq!(c.minima[a].attracted, 1);
            }
            let memories = c
                .minima
                .iter()
                .filter(|x| x.kind == MinimumKind::Memory)
                .count();
            assert_eq!(memories, m);
            assert!(
                c.minima
                    .iter()
                    .filter(|x| x.kind == MinimumKind::FalseState)
                    .all(|x| x.hamming > 0)
            );
            // Results are storable: JSON round trip.
            let json = serde_json::to_string(&c).unwrap();
            let back: Census = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c);
            eprintln!(
                "{method:?} N={n}: {} minima, {memories} memories, {:.3}s",
                c.minima.len(),
                c.seconds
            );
        }
    }
}

#[test]
fn interrupt_stops_the_census() {
    let (p, w, fd) = full_digits();
    let i = Interrupt::new();
    i.raise();
    for method in [
        CensusMethod::Exact,
        CensusMethod::MeanField,
        CensusMethod::Sampling,
    ] {
        let r = census::census(
            &fd.model,
            &p,
            &w,
            &CensusOptions::new(method, 1.0),
            &i,
            &NoObserver,
        );
        assert_eq!(r.unwrap_err(), boundstate::engine::EngineError::Interrupted);
    }
}
