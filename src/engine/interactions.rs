//! Interaction sets: which spin products χ_S(σ) = Π_{a∈S} σ_a carry a coupling.
//!
//! The set 𝒮 is the model's *description*: every subset (full), every subset of size 1..=k
//! (reduced, order k) or an explicit list (custom). The empty set is never a member; its coupling
//! J_∅ is the model's constant offset.

use super::EngineError;
use std::collections::HashMap;

/// Largest N for the full description (2^N couplings).
pub const FULL_MAX_SPINS: usize = 24;

/// Which description a set was built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Description {
    /// Every S with 1 ≤ |S| ≤ k.
    Order(usize),
    /// Every non-empty subset; member i is the subset with bit mask i + 1.
    Full,
    /// An explicit list of subsets, in the order given.
    Custom,
}

/// One member S of an interaction set.
#[derive(Clone, Copy, Debug)]
pub enum Subset<'a> {
    Spins(&'a [u32]),
    Mask(u64),
}

impl<'a> Subset<'a> {
    pub fn len(&self) -> usize {
        match self {
            Subset::Spins(s) => s.len(),
            Subset::Mask(m) => m.count_ones() as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The spin indices, ascending.
    pub fn iter(&self) -> SubsetIter<'a> {
        match *self {
            Subset::Spins(s) => SubsetIter::Spins(s.iter()),
            Subset::Mask(m) => SubsetIter::Mask(m),
        }
    }

    pub fn to_vec(&self) -> Vec<u32> {
        self.iter().collect()
    }

    /// χ_S(σ) = Π_{a∈S} σ_a.
    #[inline]
    pub fn chi(&self, spins: &[i8]) -> i8 {
        let mut p = 1i8;
        for a in self.iter() {
            p *= spins[a as usize];
        }
        p
    }

    pub fn contains(&self, a: u32) -> bool {
        match self {
            Subset::Spins(s) => s.binary_search(&a).is_ok(),
            Subset::Mask(m) => a < 64 && (m >> a) & 1 == 1,
        }
    }
}

pub enum SubsetIter<'a> {
    Spins(std::slice::Iter<'a, u32>),
    Mask(u64),
}

impl Iterator for SubsetIter<'_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        match self {
            SubsetIter::Spins(it) => it.next().copied(),
            SubsetIter::Mask(m) => {
                if *m == 0 {
                    None
                } else {
                    let a = m.trailing_zeros();
                    *m &= *m - 1;
                    Some(a)
                }
            }
        }
    }
}

/// The interaction set 𝒮 over `n` spins.
#[derive(Clone, Debug, PartialEq)]
pub struct InteractionSet {
    n: usize,
    description: Description,
    /// Explicit members in CSR form (empty for `Full`).
    offsets: Vec<u32>,
    members: Vec<u32>,
    max_order: usize,
}

/// Number of subsets of size 1..=k of n spins, or `None` on overflow.
pub fn count_order(n: usize, k: usize) -> Option<u64> {
    let mut total: u64 = 0;
    let mut c: u128 = 1; // C(n, 0)
    for s in 1..=k.min(n) {
        c = c * (n - s + 1) as u128 / s as u128;
        total = total.checked_add(u64::try_from(c).ok()?)?;
    }
    Some(total)
}

impl InteractionSet {
    /// Every S with 1 ≤ |S| ≤ k, ordered by size, then lexicographically.
    /// `max_members` bounds the number of couplings (memory guard).
    pub fn order(n: usize, k: usize, max_members: u64) -> Result<Self, EngineError> {
        if n == 0 {
            return Err(EngineError::invalid(
                "n_spins",
                "a model needs at least one spin",
            ));
        }
        if k < 1 || k > n {
            return Err(EngineError::invalid(
                "order",
                format!("order must be between 1 and N = {n}, got {k}"),
            ));
        }
        let count = count_order(n, k).unwrap_or(u64::MAX);
        if count > max_members {
            return Err(EngineError::invalid(
                "order",
                format!(
                    "order {k} on N = {n} spins has {count} couplings, above the limit of {max_members}"
                ),
            ));
        }
        let mut offsets = Vec::with_capacity(count as usize + 1);
        let mut members = Vec::new();
        offsets.push(0u32);
        let mut comb: Vec<u32> = Vec::with_capacity(k);
        for size in 1..=k {
            comb.clear();
            comb.extend(0..size as u32);
            loop {
                members.extend_from_slice(&comb);
                offsets.push(members.len() as u32);
                // Advance to the next combination in lexicographic order.
                let mut i = size;
                let mut advanced = false;
                while i > 0 {
                    i -= 1;
                    if (comb[i] as usize) < n - size + i {
                        comb[i] += 1;
                        for j in i + 1..size {
                            comb[j] = comb[j - 1] + 1;
                        }
                        advanced = true;
                        break;
                    }
                }
                if !advanced {
                    break;
                }
            }
        }
        Ok(Self {
            n,
            description: Description::Order(k),
            offsets,
            members,
            max_order: k,
        })
    }

    /// Every non-empty subset; member i is the subset whose bit mask is i + 1.
    pub fn full(n: usize) -> Result<Self, EngineError> {
        if n == 0 || n > FULL_MAX_SPINS {
            return Err(EngineError::invalid(
                "full",
                format!("the full description needs 1 ≤ N ≤ {FULL_MAX_SPINS}, got N = {n}"),
            ));
        }
        Ok(Self {
            n,
            description: Description::Full,
            offsets: Vec::new(),
            members: Vec::new(),
            max_order: n,
        })
    }

    /// An explicit list of subsets. Indices must be < n, no subset empty, no spin repeated within a
    /// subset and no subset repeated. Members keep the given order; spins within one are sorted.
    pub fn custom(n: usize, subsets: &[Vec<usize>]) -> Result<Self, EngineError> {
        if n == 0 {
            return Err(EngineError::invalid(
                "n_spins",
                "a model needs at least one spin",
            ));
        }
        if subsets.is_empty() {
            return Err(EngineError::invalid(
                "interactions",
                "the list of interactions is empty",
            ));
        }
        let mut offsets = Vec::with_capacity(subsets.len() + 1);
        let mut members = Vec::new();
        let mut seen: HashMap<Vec<u32>, usize> = HashMap::with_capacity(subsets.len());
        let mut max_order = 0;
        offsets.push(0u32);
        for (i, s) in subsets.iter().enumerate() {
            if s.is_empty() {
                return Err(EngineError::invalid(
                    format!("interactions[{i}]"),
                    "an interaction must name at least one spin (the constant J_∅ is implicit)",
                ));
            }
            let mut sorted: Vec<u32> = Vec::with_capacity(s.len());
            for &a in s {
                if a >= n {
                    return Err(EngineError::invalid(
                        format!("interactions[{i}]"),
                        format!("spin index {a} is out of range 0..{n}"),
                    ));
                }
                sorted.push(a as u32);
            }
            sorted.sort_unstable();
            if sorted.windows(2).any(|w| w[0] == w[1]) {
                return Err(EngineError::invalid(
                    format!("interactions[{i}]"),
                    "a spin is repeated within one interaction",
                ));
            }
            if let Some(j) = seen.insert(sorted.clone(), i) {
                return Err(EngineError::invalid(
                    format!("interactions[{i}]"),
                    format!("the same interaction already appears as interactions[{j}]"),
                ));
            }
            max_order = max_order.max(sorted.len());
            members.extend_from_slice(&sorted);
            offsets.push(members.len() as u32);
        }
        Ok(Self {
            n,
            description: Description::Custom,
            offsets,
            members,
            max_order,
        })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn description(&self) -> &Description {
        &self.description
    }

    /// |𝒮|, the number of couplings (not counting J_∅).
    pub fn len(&self) -> usize {
        match self.description {
            Description::Full => (1usize << self.n) - 1,
            _ => self.offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest |S|.
    pub fn max_order(&self) -> usize {
        self.max_order
    }

    pub fn is_full(&self) -> bool {
        self.description == Description::Full
    }

    /// Member i.
    #[inline]
    pub fn subset(&self, i: usize) -> Subset<'_> {
        match self.description {
            Description::Full => Subset::Mask(i as u64 + 1),
            _ => {
                Subset::Spins(&self.members[self.offsets[i] as usize..self.offsets[i + 1] as usize])
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Subset<'_>> + '_ {
        (0..self.len()).map(move |i| self.subset(i))
    }

    /// Bit mask of member i (n ≤ 64).
    pub fn mask(&self, i: usize) -> u64 {
        self.subset(i).iter().fold(0u64, |m, a| m | (1 << a))
    }

    /// For each spin a, the members that contain it (CSR: `offsets`, `members`). Not for `Full`.
    pub fn incidence(&self) -> Incidence {
        assert!(
            !self.is_full(),
            "incidence of the full description is 2^(N-1) per spin"
        );
        let mut degree = vec![0u32; self.n];
        for &a in &self.members {
            degree[a as usize] += 1;
        }
        let mut offsets = Vec::with_capacity(self.n + 1);
        offsets.push(0u32);
        for a in 0..self.n {
            offsets.push(offsets[a] + degree[a]);
        }
        let mut fill = offsets[..self.n].to_vec();
        let mut interactions = vec![0u32; self.members.len()];
        for i in 0..self.len() {
            for a in self.subset(i).iter() {
                interactions[fill[a as usize] as usize] = i as u32;
                fill[a as usize] += 1;
            }
        }
        Incidence {
            offsets,
            interactions,
        }
    }

    /// A map from sorted spin lists to member index.
    pub fn lookup(&self) -> HashMap<Vec<u32>, usize> {
        (0..self.len())
            .map(|i| (self.subset(i).to_vec(), i))
            .collect()
    }

    /// Members as lists of spin indices (for serialisation and the API).
    pub fn to_lists(&self) -> Vec<Vec<u32>> {
        self.iter().map(|s| s.to_vec()).collect()
    }
}

/// Spin → members containing it, in CSR form.
#[derive(Clone, Debug)]
pub struct Incidence {
    pub offsets: Vec<u32>,
    pub interactions: Vec<u32>,
}

impl Incidence {
    #[inline]
    pub fn of(&self, a: usize) -> &[u32] {
        &self.interactions[self.offsets[a] as usize..self.offsets[a + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_sets_have_binomial_sizes_and_canonical_order() {
        let s = InteractionSet::order(5, 2, u64::MAX).unwrap();
        assert_eq!(s.len(), 5 + 10);
        assert_eq!(s.subset(0).to_vec(), vec![0]);
        assert_eq!(s.subset(5).to_vec(), vec![0, 1]);
        assert_eq!(s.subset(14).to_vec(), vec![3, 4]);
        let s3 = InteractionSet::order(6, 3, u64::MAX).unwrap();
        assert_eq!(s3.len() as u64, count_order(6, 3).unwrap());
        assert_eq!(s3.len(), 6 + 15 + 20);
        let all = InteractionSet::order(4, 4, u64::MAX).unwrap();
        assert_eq!(all.len(), 15);
        assert!(InteractionSet::order(4, 5, u64::MAX).is_err());
        assert!(InteractionSet::order(4, 0, u64::MAX).is_err());
        assert!(InteractionSet::order(784, 3, 1_000_000).is_err());
    }

    #[test]
    fn full_members_are_masks() {
        let s = InteractionSet::full(3).unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s.subset(4).to_vec(), vec![0, 2]); // mask 0b101
        assert!(InteractionSet::full(25).is_err());
    }

    #[test]
    fn custom_validation() {
        let s = InteractionSet::custom(4, &[vec![1, 0], vec![2], vec![0, 2, 3]]).unwrap();
        assert_eq!(s.subset(0).to_vec(), vec![0, 1]);
        assert_eq!(s.max_order(), 3);
        let inc = s.incidence();
        assert_eq!(inc.of(0), &[0, 2]);
        assert_eq!(inc.of(3), &[2]);
        assert!(InteractionSet::custom(4, &[vec![4]]).is_err());
        assert!(InteractionSet::custom(4, &[vec![1, 1]]).is_err());
        assert!(InteractionSet::custom(4, &[vec![0, 1], vec![1, 0]]).is_err());
        assert!(InteractionSet::custom(4, &[vec![]]).is_err());
    }
}
