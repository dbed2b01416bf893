//! Exact enumeration, the Walsh–Hadamard pair, the full description and the model codecs,
//! checked against brute force and the identities of model.md §2–§4.
//!
//! Tolerances: IEEE double has ε = 2.2e-16. A sum of m terms rounds by at most (m − 1) ε Σ|terms|
//! (usually √m ε); a fast Walsh–Hadamard transform of length 2^N by at most N ε per element times
//! the magnitude of the partial sums. Each tolerance below names the bound it comes from.

use boundstate::engine::codec::{self, Bqm, CouplingJson, DescriptionKind, ModelJson};
use boundstate::engine::exact::{
    self, EnergyMethod, Enumeration, ExactOptions, MomentMethod, data_entropy, data_moments,
};
use boundstate::engine::full::{self, Ceiling};
use boundstate::engine::spins::spins_from_index;
use boundstate::engine::{
    ChainRng, EngineError, InteractionSet, Interrupt, Model, Pattern, Subset, wht,
};
use std::collections::BTreeMap;
use std::sync::Arc;

const EPS: f64 = f64::EPSILON;

fn digits4x4() -> (Vec<Pattern>, Vec<f64>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/digits4x4.txt");
    let text = std::fs::read_to_string(path).expect("examples/data/digits4x4.txt");
    let mut counts: BTreeMap<Pattern, usize> = BTreeMap::new();
    let mut total = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        *counts
            .entry(Pattern::parse_bits(line.trim()).expect("0/1 rows"))
            .or_default() += 1;
        total += 1;
    }
    assert_eq!(total, 1797, "rows stated in examples/data/README.md");
    let (patterns, weights) = counts
        .into_iter()
        .map(|(p, c)| (p, c as f64 / total as f64))
        .unzip();
    (patterns, weights)
}

fn random_model(set: InteractionSet, seed: u64, scale: f64) -> Model {
    let mut r = ChainRng::new(seed, 0);
    let j = (0..set.len()).map(|_| r.normal() * scale).collect();
    let offset = r.normal();
    Model::new(set, j, offset).unwrap()
}

fn coupling_scale(m: &Model) -> f64 {
    m.offset().abs() + m.couplings().iter().map(|j| j.abs()).sum::<f64>()
}

fn all_spins(n: usize) -> impl Iterator<Item = Vec<i8>> {
    (0..1u64 << n).map(move |i| {
        let mut s = vec![0i8; n];
        spins_from_index(i, &mut s);
        s
    })
}

/// Brute force from `Model::energy`: (ln Z, ⟨E⟩, S, p).
fn brute(model: &Model, t: f64) -> (f64, f64, f64, Vec<f64>) {
    let e: Vec<f64> = all_spins(model.n()).map(|s| model.energy(&s)).collect();
    let emin = e.iter().copied().fold(f64::INFINITY, f64::min);
    let w: Vec<f64> = e.iter().map(|x| (-(x - emin) / t).exp()).collect();
    let z: f64 = w.iter().sum();
    let p: Vec<f64> = w.iter().map(|x| x / z).collect();
    let mean_e: f64 = p.iter().zip(&e).map(|(p, e)| p * e).sum();
    let entropy: f64 = -p
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|p| p * p.ln())
        .sum::<f64>();
    (z.ln() - emin / t, mean_e, entropy, p)
}

fn brute_moments(set: &InteractionSet, p: &[f64]) -> Vec<f64> {
    let spins: Vec<Vec<i8>> = all_spins(set.n()).collect();
    set.iter()
        .map(|s| {
            spins
                .iter()
                .zip(p)
                .map(|(sp, p)| p * s.chi(sp) as f64)
                .sum()
        })
        .collect()
}

fn enumerate(model: &Model, t: f64) -> Enumeration {
    Enumeration::new(model, t, &ExactOptions::default(), &Interrupt::new()).unwrap()
}

fn field_of<T: std::fmt::Debug>(r: Result<T, EngineError>) -> String {
    match r {
        Err(EngineError::Invalid { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn wht_round_trip_and_direct_sums() {
    let mut r = ChainRng::new(11, 0);
    for n in 1..=10usize {
        let len = 1usize << n;
        let e: Vec<f64> = (0..len).map(|_| 3.0 * r.normal()).collect();
        let scale = e.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let mut j = e.clone();
        wht::couplings_from_energies(&mut j);
        let spins: Vec<Vec<i8>> = all_spins(n).collect();
        // Direct sums of 2^n terms ≤ scale, times 2^−n: worst case 2^n ε scale ≤ 2.3e-13 scale.
        let tol = 1e-12 * scale;
        for s in 0..len {
            let chi = Subset::Mask(s as u64);
            let direct = -(spins
                .iter()
                .zip(&e)
                .map(|(sp, ei)| chi.chi(sp) as f64 * ei)
                .sum::<f64>())
                / len as f64;
            assert!((j[s] - direct).abs() <= tol, "n = {n}, S = {s:b}");
        }
        for (i, sp) in spins.iter().enumerate() {
            let direct = -(0..len)
                .map(|s| j[s] * Subset::Mask(s as u64).chi(sp) as f64)
                .sum::<f64>();
            assert!((direct - e[i]).abs() <= tol, "n = {n}, i = {i}");
        }
        let mut back = j.clone();
        wht::energies_from_couplings(&mut back);
        for (a, b) in back.iter().zip(&e) {
            assert!((a - b).abs() <= tol, "round trip n = {n}");
        }
    }
}

#[test]
fn enumeration_matches_brute_force() {
    let models = [
        random_model(InteractionSet::order(12, 2, u64::MAX).unwrap(), 1, 0.3),
        random_model(InteractionSet::order(11, 3, u64::MAX).unwrap(), 2, 0.2),
        random_model(
            InteractionSet::custom(
                12,
                &[
                    vec![0, 5, 11],
                    vec![3],
                    vec![1, 2, 3, 4],
                    vec![7, 8],
                    vec![9, 10, 6, 0, 2],
                    vec![11],
                ],
            )
            .unwrap(),
            3,
            0.8,
        ),
        random_model(InteractionSet::full(8).unwrap(), 4, 0.2),
    ];
    for (k, m) in models.iter().enumerate() {
        for t in [0.7, 1.3] {
            let (log_z, mean_e, entropy, p) = brute(m, t);
            let en = enumerate(m, t);
            // Energies differ from the reference by ≲ √(2^12) ε Σ|J| (Gray accumulation or the
            // transform) and Z sums 2^12 positive terms: 1e-12 relative holds with a wide margin.
            let tol = 1e-12 * log_z.abs().max(1.0);
            assert!(
                (en.log_partition() - log_z).abs() <= tol,
                "model {k} T {t} ln Z"
            );
            assert!(
                (en.free_energy() + t * log_z).abs() <= t * tol,
                "model {k} T {t} A"
            );
            assert!(
                (en.mean_energy() - mean_e).abs() <= 1e-12 * coupling_scale(m),
                "model {k} ⟨E⟩"
            );
            assert!(
                (en.entropy() - entropy).abs() <= 1e-12 * entropy.max(1.0),
                "model {k} S"
            );
            let reference = brute_moments(m.set(), &p);
            for method in [MomentMethod::Direct, MomentMethod::Transform] {
                let mo = en.moments_with(m.set(), method, &Interrupt::new()).unwrap();
                // Moments lie in [−1, 1]; sums of 2^12 terms of size ≤ p_i.
                for (s, (a, b)) in mo.iter().zip(&reference).enumerate() {
                    assert!((a - b).abs() <= 1e-12, "model {k} {method:?} member {s}");
                }
            }
            for (i, (a, b)) in en.probabilities().iter().zip(&p).enumerate() {
                assert!((a - b).abs() <= 1e-12 * b, "model {k} p[{i}]");
            }
        }
    }
    // Moments of another set than the model's own.
    let m = &models[0];
    let (_, _, _, p) = brute(m, 1.0);
    let other =
        InteractionSet::custom(12, &[vec![0, 1, 2], vec![5, 11], vec![3, 4, 7, 9]]).unwrap();
    let en = enumerate(m, 1.0);
    let mo = en.moments(&other, &Interrupt::new()).unwrap();
    for (a, b) in mo.iter().zip(brute_moments(&other, &p)) {
        assert!((a - b).abs() <= 1e-12);
    }
}

#[test]
fn gray_walk_agrees_with_transform_across_blocks() {
    // N = 16 and 15 span 4 and 2 blocks of 2^14 states.
    let cases = [
        (
            random_model(InteractionSet::order(16, 2, u64::MAX).unwrap(), 5, 0.3),
            vec![EnergyMethod::GrayPairwise, EnergyMethod::GrayIncidence],
        ),
        (
            random_model(InteractionSet::order(15, 3, u64::MAX).unwrap(), 6, 0.1),
            vec![EnergyMethod::GrayIncidence],
        ),
    ];
    for (m, methods) in cases {
        let opts = |energy_method| ExactOptions {
            energy_method,
            ..Default::default()
        };
        let reference =
            exact::energies_with(&m, &opts(EnergyMethod::Transform), &Interrupt::new()).unwrap();
        // A block accumulates ≤ 2^14 increments, each |ΔE| ≤ 2 Σ|J|: worst case 2^15 ε Σ|J|
        // ≈ 7e-12 Σ|J|; the transform adds N ε Σ|J|.
        let tol = 1e-11 * coupling_scale(&m);
        for method in methods {
            let table = exact::energies_with(&m, &opts(method), &Interrupt::new()).unwrap();
            let worst = table
                .iter()
                .zip(&reference)
                .fold(0.0f64, |w, (a, b)| w.max((a - b).abs()));
            assert!(worst <= tol, "{method:?}: {worst}");
        }
        let mut s = vec![0i8; m.n()];
        for i in (0..1u64 << m.n()).step_by(997) {
            spins_from_index(i, &mut s);
            assert!((reference[i as usize] - m.energy(&s)).abs() <= tol);
        }
    }
}

fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let (patterns, weights) = digits4x4();
    let fd = full::full_description(
        16,
        &patterns,
        &weights,
        1.0,
        Ceiling::LibraryProbability(0.99),
    )
    .unwrap();
    let models = [
        (
            random_model(InteractionSet::order(18, 2, u64::MAX).unwrap(), 7, 0.2),
            EnergyMethod::Auto,
        ),
        (
            random_model(InteractionSet::order(16, 3, u64::MAX).unwrap(), 8, 0.1),
            EnergyMethod::GrayIncidence,
        ),
        (fd.model.clone(), EnergyMethod::Auto),
    ];
    for (k, (m, method)) in models.iter().enumerate() {
        let run = || {
            let opts = ExactOptions {
                energy_method: *method,
                ..Default::default()
            };
            let en = Enumeration::new(m, 0.9, &opts, &Interrupt::new()).unwrap();
            let direct = (m.set().len() < 200).then(|| {
                en.moments_with(m.set(), MomentMethod::Direct, &Interrupt::new())
                    .unwrap()
            });
            let spectrum = en.spectrum(&Interrupt::new()).unwrap();
            (
                en.log_partition().to_bits(),
                en.mean_energy().to_bits(),
                en.entropy().to_bits(),
                en.energies()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>(),
                spectrum.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                direct.map(|d| d.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
            )
        };
        let one = thread_pool(1).install(run);
        let two = thread_pool(2).install(run);
        assert!(
            one == two,
            "model {k}: results differ between 1 and 2 threads"
        );
    }
}

#[test]
fn full_description_of_digits_reproduces_the_data() {
    let (patterns, weights) = digits4x4();
    assert_eq!(
        patterns.len(),
        185,
        "distinct patterns stated in examples/data/README.md"
    );
    let n = 16;
    for (t, q) in [(1.0, 0.99), (0.5, 0.9)] {
        let fd = full::full_description(n, &patterns, &weights, t, Ceiling::LibraryProbability(q))
            .unwrap();
        assert_eq!(fd.non_represented, (1 << n) - 185);
        assert!((fd.library_probability - q).abs() <= 1e-15);
        let en = enumerate(&fd.model, t);
        // The energies come from an inverse transform whose partial sums are bounded by
        // Σ|J| ≈ 10²: |δE| ≲ N ε Σ|J| ≈ 4e-13, so p and ln p are good to ~1e-12 relative.
        for (mu, (p, w)) in patterns.iter().zip(&weights).enumerate() {
            let got = en.probability_of_index(p.index());
            let want = w * q;
            assert!((got - want).abs() <= 1e-12 * want, "T {t} pattern {mu}");
            let lp = en.log_probability(p).unwrap();
            assert!((lp - want.ln()).abs() <= 1e-12, "T {t} ln p pattern {mu}");
        }
        let p_lib = en.library_probability(&patterns).unwrap();
        assert!((p_lib - q).abs() <= 1e-12, "T {t}: P_lib {p_lib}");
        // Every non-represented configuration sits at E_u: p = (1 − P_lib)/(2^N − M).
        let p_u = (1.0 - q) / fd.non_represented as f64;
        let represented: std::collections::HashSet<u64> =
            patterns.iter().map(|p| p.index()).collect();
        for i in (0..1u64 << n)
            .filter(|i| !represented.contains(i))
            .step_by(101)
        {
            assert!((en.probability_of_index(i) - p_u).abs() <= 1e-12 * p_u);
        }
        // p(ξ) = w P_lib makes KL(w ‖ p) = −ln P_lib exactly (model.md §4).
        let pot = en.potential(&patterns, &weights).unwrap();
        assert!((pot.kl_divergence + q.ln()).abs() <= 1e-12);
        // Melting: P_lib(T_×) = 1/2 by enumeration of the same couplings.
        let tx = fd.melting_temperature.unwrap();
        let hot = enumerate(&fd.model, tx);
        assert!((hot.library_probability(&patterns).unwrap() - 0.5).abs() <= 1e-12);
    }
}

#[test]
fn full_description_couplings_are_the_weighted_hebb_rule() {
    let (patterns, weights) = digits4x4();
    let n = 16;
    let len = 1usize << n;
    let fd = full::full_description(
        n,
        &patterns,
        &weights,
        1.0,
        Ceiling::LibraryProbability(0.99),
    )
    .unwrap();
    let idx: Vec<u64> = patterns.iter().map(|p| p.index()).collect();
    let gap_sum: f64 = fd.gaps.iter().map(|d| d.abs()).sum();
    // Both sides are ±sums of the M gaps times 2^−N: error ≤ M ε Σ|Δ| 2^−N ≤ 1e-13 Σ|Δ| 2^−N.
    let tol = 1e-13 * gap_sum / len as f64;
    let j = fd.model.couplings();
    for s in 1..len as u64 {
        let closed: f64 = idx
            .iter()
            .zip(&fd.gaps)
            .map(|(&i, d)| d * wht::chi(s, i))
            .sum::<f64>()
            / len as f64;
        assert!((j[s as usize - 1] - closed).abs() <= tol, "S = {s:b}");
    }
    let j0 = -fd.ceiling_energy + gap_sum / len as f64;
    assert!((fd.model.offset() - j0).abs() <= 1e-13 * fd.ceiling_energy);
    // The same couplings straight from the energy table J = −2^−N H^T E, where rounding scales
    // with max|E| instead: the transform's partial sums are ≤ 2^s max|E| at stage s, so the
    // error after the 2^−N scaling is ≤ 2 ε max|E| per stage, ≤ 2 N ε max|E| in all.
    let mut table = vec![fd.ceiling_energy; len];
    for (&i, e) in idx.iter().zip(&fd.target_energies) {
        table[i as usize] = *e;
    }
    let emax = table.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    wht::couplings_from_energies(&mut table);
    let tol = 2.0 * n as f64 * EPS * emax;
    assert!((table[0] - fd.model.offset()).abs() <= tol);
    for s in 1..len {
        assert!((table[s] - j[s - 1]).abs() <= tol, "S = {s:b}");
    }
}

#[test]
fn truncation_keeps_low_orders() {
    let (patterns, weights) = digits4x4();
    let fd = full::full_description(
        16,
        &patterns,
        &weights,
        1.0,
        Ceiling::LibraryProbability(0.99),
    )
    .unwrap();
    for k in [1, 2, 3] {
        let t = full::truncate(&fd.model, k).unwrap();
        assert_eq!(t.set(), &InteractionSet::order(16, k, u64::MAX).unwrap());
        for (s, &j) in t.set().iter().zip(t.couplings()) {
            let mask = s.iter().fold(0u64, |m, a| m | (1 << a));
            assert_eq!(j, fd.model.couplings()[mask as usize - 1]);
        }
        assert_eq!(t.offset(), fd.model.offset());
    }
    assert_eq!(field_of(full::truncate(&fd.model, 17)), "order");
    let wrong = Arc::new(InteractionSet::order(15, 2, u64::MAX).unwrap());
    assert_eq!(field_of(full::project(&fd.model, wrong)), "interactions");
}

#[test]
fn potential_identities_and_gradient() {
    let n = 10;
    let mut r = ChainRng::new(21, 0);
    let mut patterns: Vec<Pattern> = Vec::new();
    while patterns.len() < 40 {
        let p = Pattern::from_index(r.below(1 << n), n);
        if !patterns.contains(&p) {
            patterns.push(p);
        }
    }
    let raw: Vec<f64> = (0..40).map(|_| r.next_f64() + 0.1).collect();
    let total: f64 = raw.iter().sum();
    let weights: Vec<f64> = raw.iter().map(|w| w / total).collect();
    let t = 0.8;
    let set = InteractionSet::order(n, 2, u64::MAX).unwrap();
    let model = random_model(set.clone(), 9, 0.4);
    let en = enumerate(&model, t);
    let pot = en.potential(&patterns, &weights).unwrap();

    // Independent pieces: Σ w E from Model::energy, KL from the probability vector.
    let probs = en.probabilities();
    let data_energy: f64 = patterns
        .iter()
        .zip(&weights)
        .map(|(p, w)| w * model.energy(&p.to_spins()))
        .sum();
    let kl: f64 = patterns
        .iter()
        .zip(&weights)
        .map(|(p, w)| w * (w / probs[p.index() as usize]).ln())
        .sum();
    let s_w = data_entropy(&weights);
    let phi = data_energy + t * en.log_partition();
    // Φ is O(10); each piece is a sum of ≤ 40 terms or one logarithm.
    assert!((pot.potential - phi).abs() <= 1e-12 * phi.abs().max(1.0));
    assert!((pot.kl_divergence - kl).abs() <= 1e-12);
    assert!((pot.data_entropy - s_w).abs() <= 1e-15);
    assert!((phi - t * (s_w + kl)).abs() <= 1e-12 * phi.abs().max(1.0));
    assert!(kl > 0.0 && phi >= t * s_w);

    // ∂Φ/∂J_S = ⟨χ_S⟩_model − ⟨χ_S⟩_data (model.md §4), by central differences: truncation
    // O(h²) ≈ 1e-10 and rounding ε|Φ|/h ≈ 1e-10 for h = 1e-5.
    let model_moments = en.moments(&set, &Interrupt::new()).unwrap();
    let data = data_moments(&set, &patterns, &weights).unwrap();
    let h = 1e-5;
    let phi_at = |m: &Model| {
        enumerate(m, t)
            .potential(&patterns, &weights)
            .unwrap()
            .potential
    };
    for s in [0, 3, 10, 25, 54] {
        let mut plus = model.clone();
        plus.couplings_mut()[s] += h;
        let mut minus = model.clone();
        minus.couplings_mut()[s] -= h;
        let fd = (phi_at(&plus) - phi_at(&minus)) / (2.0 * h);
        let want = model_moments[s] - data[s];
        assert!((fd - want).abs() <= 1e-8, "member {s}: {fd} vs {want}");
    }
}

#[test]
fn data_moments_match_spin_products() {
    let (patterns, weights) = digits4x4();
    let set = InteractionSet::order(16, 3, u64::MAX).unwrap();
    let got = data_moments(&set, &patterns, &weights).unwrap();
    for (k, s) in set.iter().enumerate() {
        let want: f64 = patterns
            .iter()
            .zip(&weights)
            .map(|(p, w)| w * s.chi(&p.to_spins()) as f64)
            .sum();
        // 185 terms of size ≤ w: error ≤ 185 ε Σw.
        assert!((got[k] - want).abs() <= 1e-13, "member {k}");
    }
    // More than 64 spins takes the general path.
    let n = 70;
    let mut r = ChainRng::new(3, 0);
    let pats: Vec<Pattern> = (0..30)
        .map(|_| Pattern::from_spins(&(0..n).map(|_| r.spin()).collect::<Vec<_>>()))
        .collect();
    let w = vec![1.0 / 30.0; 30];
    let big = InteractionSet::custom(n, &[vec![0, 69], vec![5, 64, 65], vec![33]]).unwrap();
    let got = data_moments(&big, &pats, &w).unwrap();
    for (k, s) in big.iter().enumerate() {
        let want: f64 = pats
            .iter()
            .map(|p| s.chi(&p.to_spins()) as f64 / 30.0)
            .sum();
        assert!((got[k] - want).abs() <= 1e-14);
    }
    assert_eq!(field_of(data_moments(&big, &pats, &w[..29])), "weights");
    assert_eq!(field_of(data_moments(&set, &pats, &w)), "patterns[0]");
}

#[test]
fn library_probability_validates_patterns() {
    let m = random_model(InteractionSet::order(6, 2, u64::MAX).unwrap(), 1, 0.5);
    let en = enumerate(&m, 1.0);
    let a = Pattern::from_index(5, 6);
    assert_eq!(
        field_of(en.library_probability(&[a.clone(), a.clone()])),
        "patterns[1]"
    );
    assert_eq!(
        field_of(en.library_probability(&[Pattern::zeros(5)])),
        "patterns[0]"
    );
    let all: Vec<Pattern> = (0..64).map(|i| Pattern::from_index(i, 6)).collect();
    // Σ of all 64 probabilities is 1 up to 64 ε.
    assert!((en.library_probability(&all).unwrap() - 1.0).abs() <= 1e-13);
    assert_eq!(field_of(en.potential(&[a], &[0.5])), "weights");
}

fn sample_models() -> Vec<Model> {
    vec![
        random_model(InteractionSet::order(7, 2, u64::MAX).unwrap(), 1, 0.5),
        random_model(InteractionSet::order(6, 4, u64::MAX).unwrap(), 2, 0.5),
        random_model(InteractionSet::full(5).unwrap(), 3, 0.5),
        random_model(
            InteractionSet::custom(9, &[vec![8, 0], vec![3], vec![1, 4, 7], vec![2, 5, 6, 8]])
                .unwrap(),
            4,
            0.5,
        ),
    ]
}

#[test]
fn binary_codec_round_trips_and_rejects_damage() {
    for m in sample_models() {
        let blob = codec::encode(&m);
        assert_eq!(codec::decode(&blob).unwrap(), m);
        for cut in 0..blob.len() {
            assert!(codec::decode(&blob[..cut]).is_err(), "truncated at {cut}");
        }
        for byte in 0..blob.len() {
            let mut bad = blob.clone();
            bad[byte] ^= 0x10;
            assert!(codec::decode(&bad).is_err(), "flipped byte {byte}");
        }
    }
    let v: Vec<f64> = (0..100).map(|i| (i as f64).sin()).collect();
    assert_eq!(codec::decode_f64s(&codec::encode_f64s(&v)).unwrap(), v);
    let (patterns, _) = digits4x4();
    let blob = codec::encode_patterns(16, &patterns).unwrap();
    assert_eq!(blob.len(), 6 + 4 + 8 + 185 * 2 + 4);
    assert_eq!(codec::decode_patterns(&blob).unwrap(), (16, patterns));
}

fn within_ulp(a: f64, b: f64) -> bool {
    a == b || (a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1
}

#[test]
fn json_form_round_trips() {
    for m in sample_models() {
        let j = ModelJson::from_model(&m);
        assert_eq!(j.to_model(u64::MAX).unwrap(), m);
        // serde_json without its `float_roundtrip` feature may parse a float 1 ulp off.
        let text = serde_json::to_string(&j).unwrap();
        let back: ModelJson = serde_json::from_str(&text).unwrap();
        let bm = back.to_model(u64::MAX).unwrap();
        assert_eq!(bm.set(), m.set());
        assert!(within_ulp(bm.offset(), m.offset()));
        for (a, b) in bm.couplings().iter().zip(m.couplings()) {
            assert!(within_ulp(*a, *b), "{a} vs {b}");
        }
    }
    let v: serde_json::Value =
        serde_json::to_value(ModelJson::from_model(&sample_models()[0])).unwrap();
    assert_eq!(v["description"], "order");
    assert_eq!(v["order"], 2);
    assert_eq!(v["n_spins"], 7);
    assert_eq!(v["couplings"][7]["spins"], serde_json::json!([0, 1]));

    // Couplings left out of an order/full description are zero; spins may come unsorted.
    let sparse = ModelJson {
        n_spins: 4,
        description: DescriptionKind::Full,
        order: None,
        offset: 0.5,
        couplings: vec![CouplingJson {
            spins: vec![3, 1],
            value: 2.0,
        }],
    };
    let m = sparse.to_model(u64::MAX).unwrap();
    assert_eq!(m.couplings()[0b1010 - 1], 2.0);
    assert_eq!(m.couplings().iter().filter(|&&j| j != 0.0).count(), 1);

    let bad = |description, order, spins: Vec<u32>| ModelJson {
        n_spins: 4,
        description,
        order,
        offset: 0.0,
        couplings: vec![
            CouplingJson {
                spins: vec![0],
                value: 1.0,
            },
            CouplingJson { spins, value: 1.0 },
        ],
    };
    use DescriptionKind::*;
    assert_eq!(
        field_of(bad(Order, Some(2), vec![0, 1, 2]).to_model(u64::MAX)),
        "couplings[1].spins"
    );
    assert_eq!(
        field_of(bad(Order, None, vec![1]).to_model(u64::MAX)),
        "order"
    );
    assert_eq!(
        field_of(bad(Full, Some(2), vec![1]).to_model(u64::MAX)),
        "order"
    );
    assert_eq!(
        field_of(bad(Custom, None, vec![4]).to_model(u64::MAX)),
        "couplings[1].spins"
    );
    assert_eq!(
        field_of(bad(Custom, None, vec![0]).to_model(u64::MAX)),
        "couplings[1].spins"
    );
    assert_eq!(
        field_of(bad(Custom, None, vec![2, 2]).to_model(u64::MAX)),
        "couplings[1].spins"
    );
    assert_eq!(
        field_of(bad(Custom, None, vec![]).to_model(u64::MAX)),
        "couplings[1].spins"
    );
    assert_eq!(field_of(bad(Order, Some(3), vec![1]).to_model(10)), "order");
    assert_eq!(field_of(bad(Full, None, vec![1]).to_model(10)), "n_spins");
}

#[test]
fn dimod_convention() {
    let m = random_model(InteractionSet::order(6, 2, u64::MAX).unwrap(), 5, 0.7);
    let bqm = Bqm::from_model(&m).unwrap();
    assert_eq!(bqm.vartype, "SPIN");
    assert_eq!(bqm.linear[2], (2, -m.couplings()[2]));
    assert_eq!(bqm.offset, -m.offset());
    for s in all_spins(6) {
        // Two sums of 21 terms in different orders.
        assert!((bqm.energy(&s).unwrap() - m.energy(&s)).abs() <= 1e-13 * coupling_scale(&m));
    }
    assert_eq!(bqm.to_model(None).unwrap(), m);
    let text = serde_json::to_string(&bqm).unwrap();
    let back = serde_json::from_str::<Bqm>(&text).unwrap();
    assert_eq!(back.quadratic.len(), bqm.quadratic.len());
    for (a, b) in back.quadratic.iter().zip(&bqm.quadratic) {
        assert!(a.0 == b.0 && a.1 == b.1 && within_ulp(a.2, b.2));
    }

    // Sparse, repeated and reversed entries are summed; N given or inferred.
    let sparse = Bqm {
        vartype: "SPIN".into(),
        linear: vec![(0, 0.5), (2, -1.0), (0, 0.25)],
        quadratic: vec![(2, 0, 1.5), (0, 2, 0.5), (1, 2, -0.75)],
        offset: 0.1,
    };
    let sm = sparse.to_model(Some(4)).unwrap();
    assert_eq!(sm.n(), 4);
    assert_eq!(sm.set().len(), 4 + 2);
    for s in all_spins(4) {
        assert!((sparse.energy(&s).unwrap() - sm.energy(&s)).abs() <= 1e-14);
    }
    assert_eq!(sparse.to_model(None).unwrap().n(), 3);
    let binary = Bqm {
        vartype: "BINARY".into(),
        ..sparse.clone()
    };
    let bm = binary.to_model(None).unwrap();
    for s in all_spins(3) {
        assert!((binary.energy(&s).unwrap() - bm.energy(&s)).abs() <= 1e-14);
    }

    let gap = Bqm {
        linear: vec![(0, 1.0), (3, 1.0)],
        quadratic: vec![],
        ..sparse.clone()
    };
    assert_eq!(field_of(gap.to_model(None)), "linear");
    assert_eq!(gap.to_model(Some(4)).unwrap().n(), 4);
    assert_eq!(field_of(gap.to_model(Some(3))), "linear[1]");
    let self_loop = Bqm {
        quadratic: vec![(1, 1, 1.0)],
        ..sparse.clone()
    };
    assert_eq!(field_of(self_loop.to_model(None)), "quadratic[0]");
    let wrong = Bqm {
        vartype: "INTEGER".into(),
        ..sparse
    };
    assert_eq!(field_of(wrong.to_model(None)), "vartype");
    let triplets = random_model(InteractionSet::order(4, 3, u64::MAX).unwrap(), 1, 1.0);
    assert_eq!(field_of(Bqm::from_model(&triplets)), "description");
}
