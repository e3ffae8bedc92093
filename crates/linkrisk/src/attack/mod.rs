//! Stronger attackers than plain cosine nearest-neighbour (issue 8): hubness corrections
//! (CSLS, inverted softmax), 1:1 assignment, leaked-pair alignment, control baselines.
//! A risk number is only as good as the strongest attack tried.

pub mod linear_metric;
