//! A training set (model.md §1): M distinct patterns ξ^μ with counts n_μ, weights
//! w_μ = n_μ / M_tot, and the data entropy S_w = −Σ_μ w_μ ln w_μ.

use super::EngineError;
use super::spins::Pattern;
use std::collections::HashMap;

/// Distinct patterns with their counts, in order of first appearance.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    n: usize,
    patterns: Vec<Pattern>,
    counts: Vec<u64>,
}

impl Dataset {
    /// Merge rows into distinct patterns (first appearance order), summing counts.
    /// Returns the dataset and, for every row, the index of its distinct pattern.
    pub fn from_rows(
        n: usize,
        rows: impl IntoIterator<Item = (Pattern, u64)>,
    ) -> Result<(Self, Vec<u32>), EngineError> {
        let mut index: HashMap<Pattern, u32> = HashMap::new();
        let mut patterns = Vec::new();
        let mut counts: Vec<u64> = Vec::new();
        let mut row_index = Vec::new();
        for (p, c) in rows {
            if p.len() != n {
                return Err(EngineError::invalid(
                    "patterns",
                    format!("pattern of length {} in a dataset of N = {n}", p.len()),
                ));
            }
            let k = *index.entry(p.clone()).or_insert_with(|| {
                patterns.push(p);
                counts.push(0);
                (patterns.len() - 1) as u32
            });
            counts[k as usize] = counts[k as usize]
                .checked_add(c)
                .ok_or_else(|| EngineError::invalid("counts", "counts overflow"))?;
            row_index.push(k);
        }
        let ds = Self::new(n, patterns, counts)?;
        Ok((ds, row_index))
    }

    /// From distinct patterns and positive counts.
    pub fn new(n: usize, patterns: Vec<Pattern>, counts: Vec<u64>) -> Result<Self, EngineError> {
        if patterns.is_empty() {
            return Err(EngineError::invalid("patterns", "the dataset is empty"));
        }
        if patterns.len() != counts.len() {
            return Err(EngineError::invalid(
                "counts",
                format!("{} counts for {} patterns", counts.len(), patterns.len()),
            ));
        }
        if let Some(i) = counts.iter().position(|&c| c == 0) {
            return Err(EngineError::invalid(
                format!("counts[{i}]"),
                "count must be positive",
            ));
        }
        Ok(Self {
            n,
            patterns,
            counts,
        })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// M, the number of distinct patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// M_tot = Σ_μ n_μ.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// w_μ = n_μ / M_tot.
    pub fn weights(&self) -> Vec<f64> {
        let t = self.total() as f64;
        self.counts.iter().map(|&c| c as f64 / t).collect()
    }

    /// S_w = −Σ_μ w_μ ln w_μ (nats).
    pub fn entropy(&self) -> f64 {
        -self
            .weights()
            .iter()
            .map(|&w| if w > 0.0 { w * w.ln() } else { 0.0 })
            .sum::<f64>()
    }

    /// The sub-dataset of the given distinct patterns (weights renormalise within it).
    pub fn subset(&self, indices: &[usize]) -> Result<Self, EngineError> {
        Self::new(
            self.n,
            indices.iter().map(|&i| self.patterns[i].clone()).collect(),
            indices.iter().map(|&i| self.counts[i]).collect(),
        )
    }

    /// Spins that take one value in every pattern (their field has no finite optimum without a
    /// penalty), with that value.
    pub fn constant_spins(&self) -> Vec<(usize, i8)> {
        (0..self.n)
            .filter_map(|a| {
                let s = self.patterns[0].spin(a);
                self.patterns
                    .iter()
                    .all(|p| p.spin(a) == s)
                    .then_some((a, s))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_rows_and_computes_entropy() {
        let rows = ["01", "11", "01", "01"]
            .iter()
            .map(|s| (Pattern::parse_bits(s).unwrap(), 1));
        let (ds, idx) = Dataset::from_rows(2, rows).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.counts(), &[3, 1]);
        assert_eq!(idx, vec![0, 1, 0, 0]);
        let s = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
        assert!((ds.entropy() - s).abs() < 1e-15);
        assert_eq!(ds.constant_spins(), vec![(1, 1)]);
        assert!(Dataset::new(2, vec![], vec![]).is_err());
    }
}
