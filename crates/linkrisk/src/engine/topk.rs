//! A running top-k of (score, gallery index) with a deterministic order: higher score
//! first, lower gallery index first among equal scores.

use serde::Serialize;

/// One retrieved gallery item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Neighbor {
    /// Gallery index.
    pub gallery: u32,
    /// Its score (cosine similarity plus the gallery offset, if any).
    pub score: f32,
}

impl Neighbor {
    /// Whether `self` ranks before `other` in a top-k list.
    #[inline]
    pub fn before(&self, other: &Neighbor) -> bool {
        self.score > other.score || (self.score == other.score && self.gallery < other.gallery)
    }
}

/// The best `k` neighbours seen so far, best first.
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    items: Vec<Neighbor>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK { k, items: Vec::new() }
    }

    /// Scores below this cannot enter (`-inf` while the list has room).
    #[inline]
    pub(crate) fn threshold(&self) -> f32 {
        if self.items.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.items.last().map_or(f32::INFINITY, |n| n.score)
        }
    }

    pub(crate) fn offer(&mut self, candidate: Neighbor) {
        if self.k == 0 {
            return;
        }
        if self.items.len() == self.k {
            match self.items.last() {
                Some(worst) if candidate.before(worst) => {
                    self.items.pop();
                }
                _ => return,
            }
        }
        let at = self.items.partition_point(|n| n.before(&candidate));
        self.items.insert(at, candidate);
    }

    pub(crate) fn into_vec(self) -> Vec<Neighbor> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_k_with_index_tiebreak() {
        let mut t = TopK::new(3);
        for (g, s) in [(5, 0.5), (1, 0.9), (2, 0.5), (7, 0.1), (0, 0.5), (3, 0.95)] {
            t.offer(Neighbor { gallery: g, score: s });
        }
        let got: Vec<u32> = t.into_vec().iter().map(|n| n.gallery).collect();
        assert_eq!(got, vec![3, 1, 0]);
    }
}
