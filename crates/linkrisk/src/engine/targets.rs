//! What each query is looking for: its positives (gallery items that count as a correct
//! match) and its exclusions (gallery items that are neither positives nor negatives, e.g.
//! other records of the same study). Everything else in the gallery is a negative.
//!
//! Keeping both lists explicit per query is what lets one kernel serve re-linkage (one
//! positive: the paired record), patient re-identification (all other records of the
//! patient are positives; the query's own record and study are excluded) and top-k-only
//! passes (no positives at all).

use crate::error::{Error, Result};

/// Per-query positives and exclusions, stored compactly (CSR). The first positive given for
/// a query is its *anchor*: the one true match that candidate pools are built around.
#[derive(Debug, Clone)]
pub struct Targets {
    n_gallery: usize,
    /// Query q's special items are `items[start[q]..start[q+1]]`, ascending.
    start: Vec<usize>,
    items: Vec<u32>,
    /// Parallel to `items`: whether the item is a positive (else an exclusion).
    positive: Vec<bool>,
    /// Anchor positive per query, `u32::MAX` when the query has none.
    anchor: Vec<u32>,
}

impl Targets {
    /// Query i's only positive is gallery item i; nothing is excluded (paired views).
    pub fn identity(n: usize) -> Targets {
        Targets {
            n_gallery: n,
            start: (0..=n).collect(),
            items: (0..n as u32).collect(),
            positive: vec![true; n],
            anchor: (0..n as u32).collect(),
        }
    }

    /// `n_queries` queries with no positives and no exclusions (top-k-only passes).
    pub fn none(n_queries: usize, n_gallery: usize) -> Targets {
        Targets {
            n_gallery,
            start: vec![0; n_queries + 1],
            items: Vec::new(),
            positive: Vec::new(),
            anchor: vec![u32::MAX; n_queries],
        }
    }

    /// Start building targets for a gallery of `n_gallery` items, one query at a time.
    pub fn builder(n_gallery: usize) -> TargetsBuilder {
        TargetsBuilder {
            targets: Targets {
                n_gallery,
                start: vec![0],
                items: Vec::new(),
                positive: Vec::new(),
                anchor: Vec::new(),
            },
            scratch: Vec::new(),
        }
    }

    /// Number of queries.
    pub fn n_queries(&self) -> usize {
        self.anchor.len()
    }

    /// Size of the gallery the targets refer to.
    pub fn n_gallery(&self) -> usize {
        self.n_gallery
    }

    /// Positives and exclusions of query `q`, ascending, with a positive flag each.
    pub fn special(&self, q: usize) -> (&[u32], &[bool]) {
        let r = self.start[q]..self.start[q + 1];
        (&self.items[r.clone()], &self.positive[r])
    }

    /// Positives of query `q`, ascending.
    pub fn positives(&self, q: usize) -> impl Iterator<Item = u32> + '_ {
        let (items, positive) = self.special(q);
        items.iter().zip(positive).filter(|(_, &p)| p).map(|(&g, _)| g)
    }

    /// Exclusions of query `q`, ascending.
    pub fn exclusions(&self, q: usize) -> impl Iterator<Item = u32> + '_ {
        let (items, positive) = self.special(q);
        items.iter().zip(positive).filter(|(_, &p)| !p).map(|(&g, _)| g)
    }

    /// Number of positives of query `q`.
    pub fn n_positives(&self, q: usize) -> usize {
        self.special(q).1.iter().filter(|&&p| p).count()
    }

    /// Number of exclusions of query `q`.
    pub fn n_exclusions(&self, q: usize) -> usize {
        self.special(q).1.iter().filter(|&&p| !p).count()
    }

    /// Number of negatives of query `q`: gallery items that are neither positive nor excluded.
    pub fn n_negatives(&self, q: usize) -> usize {
        self.n_gallery - (self.start[q + 1] - self.start[q])
    }

    /// The anchor positive of query `q` (its one true match), if it has positives.
    pub fn anchor(&self, q: usize) -> Option<usize> {
        let a = self.anchor[q];
        (a != u32::MAX).then_some(a as usize)
    }

    /// Whether gallery item `g` is excluded for query `q`.
    pub fn is_excluded(&self, q: usize, g: u32) -> bool {
        let (items, positive) = self.special(q);
        items.binary_search(&g).is_ok_and(|i| !positive[i])
    }
}

/// Builds [`Targets`] query by query, validating indices.
#[derive(Debug)]
pub struct TargetsBuilder {
    targets: Targets,
    scratch: Vec<(u32, bool)>,
}

impl TargetsBuilder {
    /// Add the next query. `positives[0]` becomes its anchor; duplicates within a list are
    /// merged. Fails when an index is outside the gallery or an item is both a positive and
    /// an exclusion.
    pub fn push(&mut self, positives: &[u32], exclusions: &[u32]) -> Result<()> {
        let t = &mut self.targets;
        let q = t.anchor.len();
        let n = t.n_gallery;
        if let Some(&g) = positives.iter().chain(exclusions).find(|&&g| g as usize >= n) {
            return Err(Error::config(format!(
                "query {q}: gallery index {g} is outside the gallery of {n} items"
            )));
        }
        self.scratch.clear();
        self.scratch.extend(positives.iter().map(|&g| (g, true)));
        self.scratch.extend(exclusions.iter().map(|&g| (g, false)));
        self.scratch.sort_unstable();
        self.scratch.dedup();
        if let Some(w) = self.scratch.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::config(format!(
                "query {q}: gallery item {} is both a positive and an exclusion",
                w[0].0
            )));
        }
        t.items.extend(self.scratch.iter().map(|&(g, _)| g));
        t.positive.extend(self.scratch.iter().map(|&(_, p)| p));
        t.start.push(t.items.len());
        t.anchor.push(positives.first().copied().unwrap_or(u32::MAX));
        Ok(())
    }

    /// Finish.
    pub fn build(self) -> Targets {
        self.targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_keeps_anchor_and_sorts() {
        let mut b = Targets::builder(10);
        b.push(&[7, 2, 7], &[3, 1]).unwrap();
        b.push(&[], &[]).unwrap();
        assert!(b.push(&[4], &[4]).is_err());
        assert!(b.push(&[10], &[]).is_err());
        let t = b.build();
        assert_eq!(t.n_queries(), 2);
        assert_eq!(t.anchor(0), Some(7));
        assert_eq!(t.positives(0).collect::<Vec<_>>(), vec![2, 7]);
        assert_eq!(t.exclusions(0).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(t.n_negatives(0), 6);
        assert!(t.is_excluded(0, 3) && !t.is_excluded(0, 2) && !t.is_excluded(0, 5));
        assert_eq!(t.anchor(1), None);
        assert_eq!(t.n_negatives(1), 10);
    }
}
