//! The fast Walsh–Hadamard transform and the energy ↔ coupling pair of model.md §2.
//!
//! Conventions: a configuration is addressed by its state index i (bit a set ⇔ σ_a = +1) and a
//! subset S by its bit mask. Then χ_S(σ_i) = Π_{a∈S} σ_a = (−1)^{|S| − popcount(S & i)}
//! = (−1)^{popcount(S & !i)}, i.e. χ_S(σ_i) = (−1)^{|S|} H_{S,i} with the Sylvester–Hadamard
//! matrix H_{S,i} = (−1)^{popcount(S & i)}.
//!
//! Every output element is produced by the same sequence of butterflies whatever the number of
//! threads, so results are bit-identical on any rayon pool.

use rayon::prelude::*;

/// Below this length the transform runs on the calling thread.
const PAR_MIN_LEN: usize = 1 << 15;
/// Chunk (2^12 f64 = 32 KiB) in which the low stages run cache-resident.
const CHUNK: usize = 1 << 12;

/// χ_S(σ_i) = (−1)^{popcount(S & !i)} for subset mask `mask` and state index `index`.
#[inline]
pub fn chi(mask: u64, index: u64) -> f64 {
    if (mask & !index).count_ones() & 1 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// In place, unnormalised: (H x)_k = Σ_i (−1)^{popcount(k & i)} x_i, in O(N 2^N) for length 2^N.
/// H H = 2^N I. Parallel (rayon) for long inputs, bit-identical to the serial transform.
///
/// # Panics
/// If the length is not a power of two.
pub fn fwht(x: &mut [f64]) {
    let len = x.len();
    assert!(
        len.is_power_of_two(),
        "Walsh–Hadamard transform needs a power-of-two length, got {len}"
    );
    if len < PAR_MIN_LEN {
        fwht_serial(x);
        return;
    }
    x.par_chunks_mut(CHUNK).for_each(fwht_serial);
    let mut h = CHUNK;
    while h < len {
        if 4 * h <= len {
            // Two stages (h and 2h) per pass over memory: the same butterflies, fewer passes.
            x.par_chunks_mut(4 * h).for_each(|block| {
                let (lo, hi) = block.split_at_mut(2 * h);
                let (q0, q1) = lo.split_at_mut(h);
                let (q2, q3) = hi.split_at_mut(h);
                q0.par_chunks_mut(CHUNK)
                    .zip(q1.par_chunks_mut(CHUNK))
                    .zip(q2.par_chunks_mut(CHUNK))
                    .zip(q3.par_chunks_mut(CHUNK))
                    .for_each(|(((a, b), c), d)| radix4(a, b, c, d));
            });
            h *= 4;
        } else {
            x.par_chunks_mut(2 * h).for_each(|block| {
                let (lo, hi) = block.split_at_mut(h);
                lo.par_chunks_mut(CHUNK)
                    .zip(hi.par_chunks_mut(CHUNK))
                    .for_each(|(a, b)| radix2(a, b));
            });
            h *= 2;
        }
    }
}

fn fwht_serial(x: &mut [f64]) {
    let len = x.len();
    let mut h = 1;
    while h < len {
        for block in x.chunks_exact_mut(2 * h) {
            let (a, b) = block.split_at_mut(h);
            radix2(a, b);
        }
        h *= 2;
    }
}

#[inline]
fn radix2(a: &mut [f64], b: &mut [f64]) {
    for (u, v) in a.iter_mut().zip(b.iter_mut()) {
        let (s, d) = (*u + *v, *u - *v);
        *u = s;
        *v = d;
    }
}

/// Stage h on (q0, q1) and (q2, q3), then stage 2h on (q0, q2) and (q1, q3).
#[inline]
fn radix4(q0: &mut [f64], q1: &mut [f64], q2: &mut [f64], q3: &mut [f64]) {
    for (((w, x), y), z) in q0
        .iter_mut()
        .zip(q1.iter_mut())
        .zip(q2.iter_mut())
        .zip(q3.iter_mut())
    {
        let (s01, d01) = (*w + *x, *w - *x);
        let (s23, d23) = (*y + *z, *y - *z);
        *w = s01 + s23;
        *y = s01 - s23;
        *x = d01 + d23;
        *z = d01 - d23;
    }
}

/// Multiply element S by `scale · (−1)^{|S|}` (exact for scale ±2^k).
fn scale_by_parity(x: &mut [f64], scale: f64) {
    let body = |(c, chunk): (usize, &mut [f64])| {
        let base = c * CHUNK;
        for (j, v) in chunk.iter_mut().enumerate() {
            let s = if (base + j).count_ones() & 1 == 0 {
                scale
            } else {
                -scale
            };
            *v *= s;
        }
    };
    if x.len() < PAR_MIN_LEN {
        x.chunks_mut(CHUNK).enumerate().for_each(body);
    } else {
        x.par_chunks_mut(CHUNK).enumerate().for_each(body);
    }
}

/// In place: energy table E_i (by state index) → couplings J_S (by mask, J_∅ at 0),
/// J_S = −2^{−N} Σ_i χ_S(σ_i) E_i.
///
/// # Panics
/// If the length is not a power of two.
pub fn couplings_from_energies(x: &mut [f64]) {
    fwht(x);
    let inv = 1.0 / x.len() as f64;
    scale_by_parity(x, -inv);
}

/// In place: couplings J_S (by mask, J_∅ at 0) → energy table E_i = −Σ_S J_S χ_S(σ_i)
/// (S including ∅).
///
/// # Panics
/// If the length is not a power of two.
pub fn energies_from_couplings(x: &mut [f64]) {
    scale_by_parity(x, -1.0);
    fwht(x);
}

/// In place: a distribution p_i (by state index) → its spectrum ⟨χ_S⟩ = Σ_i p_i χ_S(σ_i) for every
/// mask S (entry 0 is Σ_i p_i).
///
/// # Panics
/// If the length is not a power of two.
pub fn spectrum_from_probabilities(x: &mut [f64]) {
    fwht(x);
    scale_by_parity(x, 1.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::ChainRng;

    fn naive(x: &[f64]) -> Vec<f64> {
        (0..x.len())
            .map(|k| {
                (0..x.len())
                    .map(|i| {
                        if (k & i).count_ones() & 1 == 0 {
                            x[i]
                        } else {
                            -x[i]
                        }
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn small_transform_matches_definition() {
        let mut r = ChainRng::new(1, 0);
        for n in 0..=8 {
            let x: Vec<f64> = (0..1usize << n).map(|_| r.normal()).collect();
            let mut y = x.clone();
            fwht(&mut y);
            let z = naive(&x);
            let scale: f64 = x.iter().map(|v| v.abs()).sum();
            // Each output is a ±sum of 2^n inputs: rounding ≤ n ε Σ|x| either way.
            for (a, b) in y.iter().zip(&z) {
                assert!((a - b).abs() <= 1e-14 * scale, "n = {n}");
            }
        }
    }

    #[test]
    fn parallel_path_is_bit_identical_to_serial() {
        for n in [15usize, 16, 17, 18] {
            let mut r = ChainRng::new(2, n as u64);
            let x: Vec<f64> = (0..1usize << n).map(|_| r.normal()).collect();
            let mut a = x.clone();
            let mut b = x;
            fwht(&mut a);
            fwht_serial(&mut b);
            assert!(a == b, "n = {n}");
        }
    }

    #[test]
    fn chi_matches_spin_products() {
        let mut s = [0i8; 5];
        for i in 0..32u64 {
            crate::engine::spins::spins_from_index(i, &mut s);
            for mask in 0..32u64 {
                let direct: i8 = (0..5)
                    .filter(|a| (mask >> a) & 1 == 1)
                    .map(|a| s[a])
                    .product();
                assert_eq!(chi(mask, i), direct as f64);
            }
        }
    }
}
