//! Training methods checked against exact enumeration (model.md §3–§4, issue 4).
//!
//! Tolerances:
//! - exact: the optimiser stops when the largest component of ∇(Φ + λ/2 ΣJ²) is ≤ tol. The
//!   objective is strongly convex with curvature ≥ λ, so two solutions with gradients ≤ g₁, g₂
//!   differ by at most (g₁ + g₂)/λ·√P in norm; with tol = 1e-9, λ = 0.01 and P = 136 that is
//!   ≤ 2.4e-6, well inside the 1e-4 the issue asks for.
//! - pseudolikelihood: the estimator is consistent with standard error ∝ 1/√M; for couplings of
//!   size ≈ 0.3 on 6 spins the per-coupling standard deviation is ≈ 1.3/√M, so 8/√M is > 5σ.
//! - sampled: chain averages over K effectively independent samples have standard error
//!   ≤ 1/√K on every moment.

use boundstate::engine::control::NoObserver;
use boundstate::engine::exact::{Enumeration, ExactOptions, data_moments};
use boundstate::engine::full::Ceiling;
use boundstate::engine::train::{
    Checkpoints, Method, NoCheckpoints, Optimizer, TrainingConfig, train,
};
use boundstate::engine::{
    ChainRng, Dataset, EngineError, InteractionSet, Interrupt, Model, Observer, Pattern, Progress,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn load(path: &str) -> Dataset {
    let text = std::fs::read_to_string(path).expect("dataset file");
    let rows = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| (Pattern::parse_bits(l).expect("0/1 rows"), 1u64));
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap();
    Dataset::from_rows(first.len(), rows).unwrap().0
}

fn digits4x4() -> Dataset {
    load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/digits4x4.txt"
    ))
}

fn order(n: usize, k: usize) -> Arc<InteractionSet> {
    Arc::new(InteractionSet::order(n, k, u64::MAX).unwrap())
}

fn run(
    data: &Dataset,
    set: Arc<InteractionSet>,
    cfg: &TrainingConfig,
) -> boundstate::engine::train::Trained {
    train(
        data,
        set,
        cfg,
        None,
        &Interrupt::new(),
        &NoObserver,
        &NoCheckpoints,
    )
    .unwrap()
}

fn field_of(e: EngineError) -> String {
    match e {
        EngineError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn exact_digits4x4_order2_reaches_the_fixed_point() {
    let data = digits4x4();
    let set = order(16, 2);
    let mut cfg = TrainingConfig::new(Method::Exact);
    cfg.l2 = 0.01;
    cfg.tolerance = 1e-9;
    let newton = run(&data, set.clone(), &cfg);
    let r = &newton.report;
    assert!(r.converged, "{r:?}");
    assert_eq!(r.stop_reason, "converged");
    assert!(r.max_gradient <= 1e-9, "{}", r.max_gradient);
    // Bit 0 is constant in digits4x4: the report says so.
    assert!(r.constant_spins.contains(&0));
    assert!(
        r.warnings.iter().any(|w| w.contains("bit 0")),
        "{:?}",
        r.warnings
    );

    // Φ = T(S_w + KL) by an independent enumeration of the trained model, Φ ≥ T S_w.
    let en = Enumeration::new(
        &newton.model,
        1.0,
        &ExactOptions::default(),
        &Interrupt::new(),
    )
    .unwrap();
    let pot = en.potential(data.patterns(), &data.weights()).unwrap();
    let phi = r.potential.unwrap();
    assert!(
        (phi - (pot.data_entropy + pot.kl_divergence)).abs() < 1e-10,
        "{phi} vs {pot:?}"
    );
    assert!((pot.potential - phi).abs() < 1e-10);
    assert!(phi >= data.entropy());
    assert!((r.kl_divergence.unwrap() - pot.kl_divergence).abs() < 1e-10);
    // The stored J_∅ normalises the model: ln Z = 0.
    assert!(en.log_partition().abs() < 1e-10);

    // Gradient check independently: model moments − data moments + λJ.
    let m = en.moments(&set, &Interrupt::new()).unwrap();
    let d = data_moments(&set, data.patterns(), &data.weights()).unwrap();
    let worst = m
        .iter()
        .zip(&d)
        .zip(newton.model.couplings())
        .map(|((m, d), j)| (m - d + 0.01 * j).abs())
        .fold(0.0f64, f64::max);
    assert!(worst <= 1e-9, "{worst}");

    // The objective Φ + λ/2 ΣJ² decreases along the run (Φ alone need not at the end, where the
    // penalty trades against it).
    let h: Vec<f64> = r.history.iter().map(|p| p.objective.unwrap()).collect();
    assert!(h.len() >= 3);
    for w in h.windows(2) {
        assert!(w[1] <= w[0] + 1e-12, "{h:?}");
    }

    // An independent solution (L-BFGS) of the same objective agrees to 1e-6 (bound 2.4e-6 above,
    // the issue asks for 1e-4).
    cfg.optimizer = Optimizer::Lbfgs;
    let lbfgs = run(&data, set.clone(), &cfg);
    assert!(lbfgs.report.converged, "{:?}", lbfgs.report);
    let diff = newton
        .model
        .couplings()
        .iter()
        .zip(lbfgs.model.couplings())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    assert!(diff < 1e-6, "newton vs lbfgs differ by {diff}");
    assert!(lbfgs.report.iterations > newton.report.iterations);
}

#[test]
fn exact_default_tolerance_matches_the_issue() {
    let data = digits4x4();
    let mut cfg = TrainingConfig::new(Method::Exact);
    cfg.l2 = 0.01;
    let t = run(&data, order(16, 2), &cfg);
    assert!(t.report.converged);
    assert!(t.report.max_gradient <= 1e-6);
    assert!(t.report.correlation_r.unwrap() > 0.9);
}

#[test]
fn full_description_reproduces_the_targets() {
    let data = digits4x4();
    let mut cfg = TrainingConfig::new(Method::Full);
    cfg.ceiling = Ceiling::LibraryProbability(0.99);
    cfg.temperature = 0.8;
    let t = run(&data, Arc::new(InteractionSet::full(16).unwrap()), &cfg);
    let r = &t.report;
    assert!((r.library_probability.unwrap() - 0.99).abs() < 1e-12);
    let eu = r.ceiling_energy.unwrap();
    let w = data.weights();
    let mut is_pattern = vec![false; 1 << 16];
    for (p, &wm) in data.patterns().iter().zip(&w) {
        let e = t.model.energy(&p.to_spins());
        assert!((e - (-0.8 * wm.ln())).abs() < 1e-10, "{e}");
        is_pattern[p.index() as usize] = true;
    }
    let mut s = vec![0i8; 16];
    for i in (0..1u64 << 16).step_by(97) {
        if !is_pattern[i as usize] {
            boundstate::engine::spins::spins_from_index(i, &mut s);
            assert!((t.model.energy(&s) - eu).abs() < 1e-10);
        }
    }
    // p(ξ) = w P_lib.
    let en = Enumeration::new(&t.model, 0.8, &ExactOptions::default(), &Interrupt::new()).unwrap();
    for (p, &wm) in data.patterns().iter().zip(&w).take(20) {
        let q = en.probability_of_index(p.index());
        assert!(
            (q - wm * 0.99).abs() < 1e-12 * (1.0 + q),
            "{q} vs {}",
            wm * 0.99
        );
    }
    // KL(w‖p) = −ln P_lib for this model.
    assert!((r.kl_divergence.unwrap() + 0.99f64.ln()).abs() < 1e-9);
}

#[test]
fn projection_keeps_the_low_order_couplings() {
    let data = digits4x4();
    let full_cfg = TrainingConfig::new(Method::Full);
    let full = run(
        &data,
        Arc::new(InteractionSet::full(16).unwrap()),
        &full_cfg,
    );
    let cfg = TrainingConfig::new(Method::Projection);
    let set = order(16, 2);
    let proj = run(&data, set.clone(), &cfg);
    for (i, s) in set.iter().enumerate() {
        let mask = set.mask(i);
        assert_eq!(
            proj.model.couplings()[i],
            full.model.couplings()[(mask - 1) as usize],
            "{s:?}"
        );
    }
    let r = &proj.report;
    assert!(r.potential.unwrap() >= data.entropy());
    assert!(r.library_probability.unwrap() < 0.99);
    assert_eq!(r.stop_reason, "closed_form");
}

/// A random order-2 model on 6 spins and `m` samples drawn exactly from it.
fn sampled_dataset(seed: u64, m: usize) -> (Model, Dataset) {
    let set = InteractionSet::order(6, 2, u64::MAX).unwrap();
    let mut r = ChainRng::new(seed, 0);
    let j: Vec<f64> = (0..set.len()).map(|_| 0.3 * r.normal()).collect();
    let model = Model::new(set, j, 0.0).unwrap();
    let en = Enumeration::new(&model, 1.0, &ExactOptions::default(), &Interrupt::new()).unwrap();
    let p = en.probabilities();
    let mut cdf = Vec::with_capacity(p.len());
    let mut acc = 0.0;
    for q in &p {
        acc += q;
        cdf.push(acc);
    }
    let mut counts = vec![0u64; p.len()];
    for _ in 0..m {
        let u = r.next_f64() * acc;
        let i = cdf.partition_point(|&c| c < u).min(p.len() - 1);
        counts[i] += 1;
    }
    let rows = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| (Pattern::from_index(i as u64, 6), c));
    (model, Dataset::from_rows(6, rows).unwrap().0)
}

#[test]
fn pseudolikelihood_recovers_a_known_model() {
    for (seed, m) in [(1u64, 20_000usize), (2, 200_000)] {
        let (truth, data) = sampled_dataset(seed, m);
        let mut cfg = TrainingConfig::new(Method::Pseudolikelihood);
        cfg.l2 = 0.0;
        let t = run(&data, truth.shared_set(), &cfg);
        assert!(t.report.converged, "{:?}", t.report);
        let err = t
            .model
            .couplings()
            .iter()
            .zip(truth.couplings())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        let tol = 8.0 / (m as f64).sqrt();
        assert!(err < tol, "M = {m}: max coupling error {err} ≥ {tol}");
        // N = 6 is below the exact cap: Φ and the moment error are reported exactly.
        assert!(t.report.potential.unwrap() >= data.entropy() - 1e-12);
        assert!(t.report.max_moment_error < tol);
        // Exact training on the same data agrees with PL within the same statistical tolerance.
        let mut ecfg = TrainingConfig::new(Method::Exact);
        ecfg.l2 = 0.0;
        let e = run(&data, truth.shared_set(), &ecfg);
        let err = e
            .model
            .couplings()
            .iter()
            .zip(truth.couplings())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        assert!(err < tol, "exact: {err}");
        // Without a penalty Φ itself decreases monotonically.
        let h: Vec<f64> = e
            .report
            .history
            .iter()
            .map(|p| p.potential.unwrap())
            .collect();
        for w in h.windows(2) {
            assert!(w[1] <= w[0] + 1e-12, "{h:?}");
        }
    }
}

#[test]
fn pseudolikelihood_on_triplets_and_lbfgs() {
    let data = digits4x4();
    let set = order(16, 3);
    let mut cfg = TrainingConfig::new(Method::Pseudolikelihood);
    let newton = run(&data, set.clone(), &cfg);
    assert!(newton.report.converged);
    cfg.optimizer = Optimizer::Lbfgs;
    cfg.max_iterations = 2000;
    cfg.tolerance = 1e-7;
    let lbfgs = run(&data, set, &cfg);
    assert!(lbfgs.report.converged, "{:?}", lbfgs.report);
    let pl_n = newton.report.pseudolikelihood.unwrap();
    let pl_l = lbfgs.report.pseudolikelihood.unwrap();
    assert!(pl_n <= pl_l + 1e-9, "{pl_n} {pl_l}");
    assert!((pl_n - pl_l).abs() < 1e-6);
}

struct SaveAt {
    at: usize,
    calls: AtomicUsize,
    saved: Mutex<Vec<Vec<u8>>>,
}

impl Checkpoints for SaveAt {
    fn due(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.at
    }
    fn save(&self, bytes: Vec<u8>) {
        self.saved.lock().unwrap().push(bytes);
    }
}

struct RaiseAt {
    at: u64,
    interrupt: Interrupt,
}

impl Observer for RaiseAt {
    fn progress(&self, p: &Progress) {
        if p.iteration >= self.at {
            self.interrupt.raise();
        }
    }
}

#[test]
fn interrupted_run_resumes_from_its_checkpoint() {
    let data = digits4x4();
    let set = order(16, 2);
    for optimizer in [Optimizer::Lbfgs, Optimizer::Newton, Optimizer::Adam] {
        let mut cfg = TrainingConfig::new(Method::Exact);
        cfg.optimizer = optimizer;
        cfg.l2 = 0.01;
        if optimizer == Optimizer::Adam {
            cfg.max_iterations = 40;
        }
        let straight = run(&data, set.clone(), &cfg);

        let interrupt = Interrupt::new();
        let cps = SaveAt {
            at: 4,
            calls: AtomicUsize::new(0),
            saved: Mutex::new(Vec::new()),
        };
        let obs = RaiseAt {
            at: 6,
            interrupt: interrupt.clone(),
        };
        let err = train(&data, set.clone(), &cfg, None, &interrupt, &obs, &cps).err();
        assert_eq!(err, Some(EngineError::Interrupted));
        let saved = cps.saved.lock().unwrap().clone();
        assert_eq!(saved.len(), 2, "one when due, one on the interrupt");
        // Resume from the earlier one (as after a crash) and from the last one.
        for (bytes, from) in [(&saved[0], 3), (&saved[1], 6)] {
            let resumed = train(
                &data,
                set.clone(),
                &cfg,
                Some(bytes),
                &Interrupt::new(),
                &NoObserver,
                &NoCheckpoints,
            )
            .unwrap();
            assert_eq!(resumed.report.resumed_from_iteration, Some(from));
            assert_eq!(resumed.report.iterations, straight.report.iterations);
            assert_eq!(resumed.report.stop_reason, straight.report.stop_reason);
            assert_eq!(
                resumed.model.couplings(),
                straight.model.couplings(),
                "{optimizer:?}"
            );
        }
        // A checkpoint is refused for another configuration, and when corrupted.
        let mut other = cfg.clone();
        other.l2 = 0.02;
        let e = train(
            &data,
            set.clone(),
            &other,
            Some(&saved[0]),
            &Interrupt::new(),
            &NoObserver,
            &NoCheckpoints,
        );
        assert_eq!(field_of(e.err().unwrap()), "resume");
        let mut bad = saved[0].clone();
        let k = bad.len() / 2;
        bad[k] ^= 1;
        let e = train(
            &data,
            set.clone(),
            &cfg,
            Some(&bad),
            &Interrupt::new(),
            &NoObserver,
            &NoCheckpoints,
        );
        assert_eq!(field_of(e.err().unwrap()), "resume");
    }
}

#[test]
fn wall_clock_limit_stops_with_a_model() {
    let data = digits4x4();
    let mut cfg = TrainingConfig::new(Method::Exact);
    cfg.optimizer = Optimizer::GradientDescent;
    cfg.wall_clock_limit = Some(std::time::Duration::from_millis(1));
    let t = run(&data, order(16, 2), &cfg);
    assert_eq!(t.report.stop_reason, "wall_clock_limit");
    assert!(!t.report.converged);
}

#[test]
fn invalid_input_names_the_field() {
    let data = digits4x4();
    let set = order(16, 2);
    let go = |cfg: &TrainingConfig, set: Arc<InteractionSet>| {
        field_of(
            train(
                &data,
                set,
                cfg,
                None,
                &Interrupt::new(),
                &NoObserver,
                &NoCheckpoints,
            )
            .err()
            .unwrap(),
        )
    };
    let mut cfg = TrainingConfig::new(Method::Exact);
    cfg.temperature = 0.0;
    assert_eq!(go(&cfg, set.clone()), "temperature");
    cfg.temperature = f64::NAN;
    assert_eq!(go(&cfg, set.clone()), "temperature");
    let mut cfg = TrainingConfig::new(Method::Exact);
    cfg.exact_max_spins = 12;
    assert_eq!(go(&cfg, set.clone()), "method");
    let mut cfg = TrainingConfig::new(Method::Exact);
    cfg.l2 = -1.0;
    assert_eq!(go(&cfg, set.clone()), "l2");
    let cfg = TrainingConfig::new(Method::Full);
    assert_eq!(go(&cfg, set.clone()), "description");
    let cfg = TrainingConfig::new(Method::Exact);
    assert_eq!(go(&cfg, order(15, 2)), "description");
    let mut cfg = TrainingConfig::new(Method::Full);
    cfg.ceiling = Ceiling::LibraryProbability(1.0);
    assert_eq!(
        go(&cfg, Arc::new(InteractionSet::full(16).unwrap())),
        "library_probability"
    );
    let mut cfg = TrainingConfig::new(Method::Sampled);
    cfg.optimizer = Optimizer::Newton;
    assert_eq!(go(&cfg, set.clone()), "optimizer");
    let mut cfg = TrainingConfig::new(Method::Sampled);
    cfg.chains = 0;
    assert_eq!(go(&cfg, set.clone()), "chains");
    let mut cfg = TrainingConfig::new(Method::Exact);
    cfg.tolerance = 0.0;
    assert_eq!(go(&cfg, set.clone()), "tolerance");
    let e = train(
        &data,
        set.clone(),
        &TrainingConfig::new(Method::Exact),
        Some(b"junk"),
        &Interrupt::new(),
        &NoObserver,
        &NoCheckpoints,
    );
    assert_eq!(field_of(e.err().unwrap()), "resume");
}

#[test]
fn interrupt_stops_training() {
    let data = digits4x4();
    let i = Interrupt::new();
    i.raise();
    for method in [Method::Exact, Method::Pseudolikelihood, Method::Full] {
        let set = if method == Method::Full {
            Arc::new(InteractionSet::full(16).unwrap())
        } else {
            order(16, 2)
        };
        let e = train(
            &data,
            set,
            &TrainingConfig::new(method),
            None,
            &i,
            &NoObserver,
            &NoCheckpoints,
        );
        assert_eq!(e.err(), Some(EngineError::Interrupted), "{method:?}");
    }
}

#[test]
fn sampled_matches_the_data_moments() {
    let (truth, data) = sampled_dataset(3, 50_000);
    let cfg = TrainingConfig::new(Method::Sampled);
    let t = run(&data, truth.shared_set(), &cfg);
    let r = &t.report;
    // N = 6: the report's moment error is exact (enumeration of the trained model). The
    // persistent-chain gradient has noise ≈ 1/√(chains) per step, averaged by Adam's decaying
    // step over hundreds of steps: 0.02 leaves a wide margin.
    assert!(r.max_moment_error < 0.02, "{r:?}");
    assert!(!r.ergodicity_broken, "{:?}", r.ergodicity_warning);
    assert!(r.potential.unwrap() >= data.entropy() - 1e-12);
    // Close to the exact fit of the same objective.
    let e = run(
        &data,
        truth.shared_set(),
        &TrainingConfig::new(Method::Exact),
    );
    let diff = t
        .model
        .couplings()
        .iter()
        .zip(e.model.couplings())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    assert!(diff < 0.05, "sampled vs exact couplings differ by {diff}");
}

#[test]
fn sampled_detects_broken_ergodicity() {
    // Two far-apart patterns (all up, all down) with 2% noise: a ferromagnet at T = 1 with local
    // fields ≈ ½ ln 49 ≈ 1.95 whose free-energy barrier (≈ 1.95 N / 4 ≈ 15.6) the chains cannot
    // cross in a few hundred sweeps.
    let n = 32;
    let mut rng = ChainRng::new(7, 0);
    let mut rows = Vec::new();
    for k in 0..400 {
        let up = k % 2 == 0;
        let spins: Vec<i8> = (0..n)
            .map(|_| {
                let s = if up { 1 } else { -1 };
                if rng.next_f64() < 0.02 { -s } else { s }
            })
            .collect();
        rows.push((Pattern::from_spins(&spins), 1u64));
    }
    let data = Dataset::from_rows(n, rows).unwrap().0;
    let mut cfg = TrainingConfig::new(Method::Sampled);
    cfg.max_iterations = 50;
    cfg.chains = 128;
    let t = run(&data, order(n, 2), &cfg);
    assert!(t.report.ergodicity_broken, "{:?}", t.report);
    let w = t.report.ergodicity_warning.unwrap();
    assert!(w.contains("disagree"), "{w}");
}

#[test]
fn sampled_resumes_from_its_checkpoint() {
    let (truth, data) = sampled_dataset(4, 5_000);
    for tempering in [false, true] {
        let mut cfg = TrainingConfig::new(Method::Sampled);
        cfg.max_iterations = 30;
        cfg.chains = 64;
        cfg.parallel_tempering = tempering;
        let straight = run(&data, truth.shared_set(), &cfg);
        let interrupt = Interrupt::new();
        let cps = SaveAt {
            at: 10,
            calls: AtomicUsize::new(0),
            saved: Mutex::new(Vec::new()),
        };
        let obs = RaiseAt {
            at: 15,
            interrupt: interrupt.clone(),
        };
        let err = train(
            &data,
            truth.shared_set(),
            &cfg,
            None,
            &interrupt,
            &obs,
            &cps,
        )
        .err();
        assert_eq!(err, Some(EngineError::Interrupted));
        let saved = cps.saved.lock().unwrap().clone();
        for bytes in &saved {
            let resumed = train(
                &data,
                truth.shared_set(),
                &cfg,
                Some(bytes),
                &Interrupt::new(),
                &NoObserver,
                &NoCheckpoints,
            )
            .unwrap();
            assert_eq!(resumed.model.couplings(), straight.model.couplings());
            assert_eq!(resumed.report.iterations, straight.report.iterations);
        }
        if tempering {
            assert_eq!(straight.report.swap_acceptance.as_ref().unwrap().len(), 7);
        }
    }
}

/// Issue 4's target for `sampled`, with the defaults a user gets (1024 chains, replica exchange,
/// pseudo-likelihood start): on digits8x8 at order 2, T = 1, the largest moment error of the
/// trained model is ≤ 0.02 and the Pearson r of the connected correlations ≥ 0.95. The error is
/// measured by the report's final evaluation, 1024 chains × 500 sweeps of Rao–Blackwellised
/// averages; the benchmark run gives 0.0116, and quadrupling the evaluation sweeps moves the figure
/// by about 0.002, so the margin is the fit's, not the dice's. (About 30 s in release mode on two
/// cores.)
#[test]
fn sampled_fits_digits8x8_to_the_issue_target() {
    let data = load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/digits8x8.txt"
    ));
    let cfg = TrainingConfig::new(Method::Sampled);
    let t = run(&data, order(64, 2), &cfg);
    let r = &t.report;
    assert!(
        r.max_moment_error <= 0.02,
        "largest moment error {} after {} steps ({})",
        r.max_moment_error,
        r.iterations,
        r.stop_reason
    );
    assert!(
        r.correlation_r.unwrap() >= 0.95,
        "r = {:?}",
        r.correlation_r
    );
}
