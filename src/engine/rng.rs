//! Seeded, portable random numbers for Monte Carlo.
//!
//! Every chain owns a `ChainRng` derived from `(seed, stream)`, so a result depends on the seed and
//! the chain index only, never on how chains are spread over threads. The generator is
//! xoshiro256++ seeded through SplitMix64; both are specified bit for bit, so a seed gives the same
//! numbers on every platform and in every version of this crate.

/// SplitMix64 step: the standard seeding mixer.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ generator for one chain (or one independent task).
#[derive(Clone, Debug)]
pub struct ChainRng {
    s: [u64; 4],
}

impl ChainRng {
    /// The generator for stream `stream` of master seed `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut sm = seed ^ 0x6A09_E667_F3BC_C908;
        let a = splitmix64(&mut sm);
        let mut sm2 = a ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut s = [0u64; 4];
        for x in &mut s {
            *x = splitmix64(&mut sm2);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Self { s }
    }

    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline(always)]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    #[inline(always)]
    pub fn next_f64_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) (Lemire's multiply-shift with rejection), n > 0.
    #[inline(always)]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = (self.next_u64() as u128) * (n as u128);
        let mut lo = m as u64;
        if lo < n {
            let threshold = n.wrapping_neg() % n;
            while lo < threshold {
                m = (self.next_u64() as u128) * (n as u128);
                lo = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// A uniformly random spin, ±1.
    #[inline(always)]
    pub fn spin(&mut self) -> i8 {
        if self.next_u64() >> 63 == 1 { 1 } else { -1 }
    }

    /// A standard normal deviate (Box–Muller; used for test instances, not in hot loops).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64_open0();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let mut a = ChainRng::new(7, 0);
        let mut b = ChainRng::new(7, 1);
        let mut a2 = ChainRng::new(7, 0);
        let xa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let xa2: Vec<u64> = (0..8).map(|_| a2.next_u64()).collect();
        assert_eq!(xa, xa2);
        assert_ne!(xa, xb);
    }

    #[test]
    fn uniform_mean_and_below_range() {
        // Mean of n uniforms has standard deviation 1/sqrt(12 n); allow 5 of them.
        let n = 200_000;
        let mut r = ChainRng::new(1, 2);
        let mean: f64 = (0..n).map(|_| r.next_f64()).sum::<f64>() / n as f64;
        let tol = 5.0 / (12.0 * n as f64).sqrt();
        assert!((mean - 0.5).abs() < tol, "mean {mean}");
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[r.below(7) as usize] += 1;
        }
        // Binomial(70000, 1/7): sd = sqrt(70000 * 1/7 * 6/7) ≈ 92.6; allow 5 sd.
        for c in counts {
            assert!((c as f64 - 10_000.0).abs() < 5.0 * 92.6, "{counts:?}");
        }
    }
}
