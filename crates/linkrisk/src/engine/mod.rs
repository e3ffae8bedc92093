//! The ranking engine: blocked cosine similarity on faer's GEMM, reduced block by block to
//! per-query (greater, tied) counts and a running top-k. Memory is O(block x n), never an
//! n x n matrix. Every audit ranks through here; nothing else computes similarities.
