//! Spins, patterns and their encodings.
//!
//! A configuration is a vector of Ising spins σ_a ∈ {−1, +1}; an input bit b maps to σ = 2b − 1.
//! A [`Pattern`] is the bit-packed form (bit a set ⇔ σ_a = +1) used for storage and hashing.
//! For N ≤ 64 a configuration also has a *state index*: the integer whose bit a is set ⇔ σ_a = +1.

use std::fmt;

/// A bit-packed configuration of `n` spins; bit a set means σ_a = +1.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern {
    n: usize,
    words: Vec<u64>,
}

impl Pattern {
    /// All spins down (every bit 0).
    pub fn zeros(n: usize) -> Self {
        Self {
            n,
            words: vec![0; n.div_ceil(64)],
        }
    }

    pub fn from_bits(bits: &[u8]) -> Self {
        let mut p = Self::zeros(bits.len());
        for (a, &b) in bits.iter().enumerate() {
            if b != 0 {
                p.words[a / 64] |= 1 << (a % 64);
            }
        }
        p
    }

    pub fn from_spins(spins: &[i8]) -> Self {
        let mut p = Self::zeros(spins.len());
        for (a, &s) in spins.iter().enumerate() {
            if s > 0 {
                p.words[a / 64] |= 1 << (a % 64);
            }
        }
        p
    }

    /// From the state index of a configuration of n ≤ 64 spins.
    pub fn from_index(index: u64, n: usize) -> Self {
        assert!(n <= 64);
        let mut p = Self::zeros(n);
        if n > 0 {
            p.words[0] = if n == 64 {
                index
            } else {
                index & ((1u64 << n) - 1)
            };
        }
        p
    }

    /// Parse a string of '0'/'1'. Returns the column (0-based) of the first other character.
    pub fn parse_bits(s: &str) -> Result<Self, (usize, char)> {
        let mut bits = Vec::with_capacity(s.len());
        for (i, c) in s.chars().enumerate() {
            match c {
                '0' => bits.push(0),
                '1' => bits.push(1),
                other => return Err((i, other)),
            }
        }
        Ok(Self::from_bits(&bits))
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    #[inline]
    pub fn bit(&self, a: usize) -> bool {
        (self.words[a / 64] >> (a % 64)) & 1 == 1
    }

    /// σ_a as ±1.
    #[inline]
    pub fn spin(&self, a: usize) -> i8 {
        if self.bit(a) { 1 } else { -1 }
    }

    pub fn set(&mut self, a: usize, up: bool) {
        if up {
            self.words[a / 64] |= 1 << (a % 64);
        } else {
            self.words[a / 64] &= !(1 << (a % 64));
        }
    }

    pub fn flip(&mut self, a: usize) {
        self.words[a / 64] ^= 1 << (a % 64);
    }

    pub fn to_spins(&self) -> Vec<i8> {
        (0..self.n).map(|a| self.spin(a)).collect()
    }

    /// Write σ into `out` (length n) without allocating.
    pub fn write_spins(&self, out: &mut [i8]) {
        for (a, s) in out.iter_mut().enumerate().take(self.n) {
            *s = self.spin(a);
        }
    }

    pub fn to_bits(&self) -> Vec<u8> {
        (0..self.n).map(|a| self.bit(a) as u8).collect()
    }

    /// The state index (n ≤ 64).
    pub fn index(&self) -> u64 {
        assert!(self.n <= 64, "state index needs n <= 64");
        self.words.first().copied().unwrap_or(0)
    }

    /// Number of spins where the two patterns differ.
    pub fn hamming(&self, other: &Pattern) -> usize {
        debug_assert_eq!(self.n, other.n);
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a ^ b).count_ones() as usize)
            .sum()
    }

    /// Overlap q = (1/N) σ·σ'.
    pub fn overlap(&self, other: &Pattern) -> f64 {
        if self.n == 0 {
            return 1.0;
        }
        1.0 - 2.0 * self.hamming(other) as f64 / self.n as f64
    }

    /// Number of spins up.
    pub fn count_up(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Packed little-endian bytes, ⌈n/8⌉ of them: bit a is bit (a mod 8) of byte a/8.
    pub fn to_bytes(&self) -> Vec<u8> {
        let nbytes = self.n.div_ceil(8);
        let mut out = Vec::with_capacity(nbytes);
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.truncate(nbytes);
        out
    }

    /// Inverse of [`Pattern::to_bytes`]; `None` if the length does not match `n`.
    pub fn from_bytes(bytes: &[u8], n: usize) -> Option<Self> {
        if bytes.len() != n.div_ceil(8) {
            return None;
        }
        let mut p = Self::zeros(n);
        for (i, &b) in bytes.iter().enumerate() {
            p.words[i / 8] |= (b as u64) << (8 * (i % 8));
        }
        // Bits beyond n must be zero for equality and hashing to be canonical.
        if !n.is_multiple_of(64)
            && let Some(last) = p.words.last_mut()
            && *last >> (n % 64) != 0
        {
            return None;
        }
        Some(p)
    }

    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

impl fmt::Display for Pattern {
    /// The string of '0'/'1', first spin first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: String = (0..self.n)
            .map(|a| if self.bit(a) { '1' } else { '0' })
            .collect();
        f.write_str(&s)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({self})")
    }
}

/// σ of the configuration with state index `index` (bit a set ⇔ σ_a = +1).
#[inline]
pub fn spins_from_index(index: u64, out: &mut [i8]) {
    for (a, s) in out.iter_mut().enumerate() {
        *s = if (index >> a) & 1 == 1 { 1 } else { -1 };
    }
}

/// The state index of σ (n ≤ 64).
#[inline]
pub fn index_from_spins(spins: &[i8]) -> u64 {
    debug_assert!(spins.len() <= 64);
    spins.iter().enumerate().fold(
        0u64,
        |acc, (a, &s)| if s > 0 { acc | (1 << a) } else { acc },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let bits: Vec<u8> = (0..130).map(|i| ((i * 7 + 3) % 5 < 2) as u8).collect();
        let p = Pattern::from_bits(&bits);
        assert_eq!(p.to_bits(), bits);
        assert_eq!(Pattern::from_bytes(&p.to_bytes(), 130), Some(p.clone()));
        assert_eq!(Pattern::parse_bits(&p.to_string()).unwrap(), p);
        assert_eq!(Pattern::from_spins(&p.to_spins()), p);
        assert_eq!(Pattern::parse_bits("0120"), Err((2, '2')));
    }

    #[test]
    fn index_and_hamming() {
        let p = Pattern::parse_bits("1011").unwrap();
        assert_eq!(p.index(), 0b1101);
        assert_eq!(Pattern::from_index(0b1101, 4), p);
        let mut s = [0i8; 4];
        spins_from_index(0b1101, &mut s);
        assert_eq!(s, [1, -1, 1, 1]);
        assert_eq!(index_from_spins(&s), 0b1101);
        let q = Pattern::parse_bits("0011").unwrap();
        assert_eq!(p.hamming(&q), 1);
        assert!((p.overlap(&q) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn from_bytes_rejects_garbage_bits() {
        assert_eq!(Pattern::from_bytes(&[0xFF], 4), None);
        assert_eq!(Pattern::from_bytes(&[0x0F, 0], 4), None);
    }
}
