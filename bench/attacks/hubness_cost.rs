//! What the hubness corrections cost over plain cosine (issue 8: target within 2x), on
//! random unit vectors: n queries x n gallery items at dimension d, identity pairs. Each
//! attack is timed as `attack::compare` runs it: plain cosine is one blocked pass that also
//! scores the control; CSLS adds a top-k pass for its neighbourhood terms; the inverted
//! softmax a log-sum-exp pass; QB-Norm a log-sum-exp pass over a query bank (n/2 rows) plus
//! the bank's nearest-item pass. Not a test.
//!
//! Usage: hubness_cost [--n N] [--dim D] [--repeats R]
//! Prints one line per attack and repeat, then medians (CPU seconds and wall seconds) and
//! the ratio to cosine.

use std::time::Instant;

use linkrisk::attack::{decoy_targets, evaluate, hubness};
use linkrisk::engine::{BlockSizes, Gallery, NoProgress, Rows, Targets};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn unit_rows(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut data: Vec<f32> = (0..n * dim).map(|_| StandardNormal.sample(&mut rng)).collect();
    for row in data.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    data
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| -> usize {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(default)
    };
    let (n, dim, repeats) = (flag("--n", 20_000), flag("--dim", 512), flag("--repeats", 3));
    let queries = unit_rows(1, n, dim);
    // Gallery: a noisy copy of the queries, so the true match ranks high.
    let noise = unit_rows(2, n, dim);
    let mut gallery: Vec<f32> = queries.iter().zip(&noise).map(|(q, e)| q + 0.8 * e).collect();
    for row in gallery.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    let bank = unit_rows(3, n / 2, dim);
    let (q, g, b) =
        (Rows::new(&queries, n, dim)?, Rows::new(&gallery, n, dim)?, Rows::new(&bank, n / 2, dim)?);
    let targets = Targets::identity(n);
    let control = decoy_targets(&targets, 0)?.targets;
    let sizes = BlockSizes::default();
    let plain = Gallery::new(g);
    let mut results: Vec<(&str, Vec<(f64, f64)>)> =
        ["cosine", "csls", "inverted_softmax", "qb_norm"].iter().map(|&a| (a, Vec::new())).collect();
    for repeat in 0..repeats {
        for (name, times) in results.iter_mut() {
            let (cpu0, wall0) = (cpu_seconds(), Instant::now());
            let e = match *name {
                "cosine" => evaluate(q, &plain, &targets, &control, false, &sizes, &NoProgress)?,
                "csls" => {
                    let offsets = hubness::csls_offsets(q, g, None, 10, &sizes, &NoProgress)?;
                    let gallery = Gallery::with_offsets(g, &offsets)?;
                    evaluate(q, &gallery, &targets, &control, false, &sizes, &NoProgress)?
                }
                "inverted_softmax" => {
                    let offsets = hubness::inverted_softmax_offsets(q, g, None, 20.0, &sizes, &NoProgress)?;
                    let gallery = Gallery::with_offsets(g, &offsets)?;
                    evaluate(q, &gallery, &targets, &control, false, &sizes, &NoProgress)?
                }
                _ => {
                    // As `compare` runs it: the bank's normalisers and activation set, the
                    // normalised pass, and the plain pass's top-1 (which cosine computes
                    // anyway when QB-Norm is requested; counted here as a second pass).
                    let offsets = hubness::inverted_softmax_offsets(b, g, None, 20.0, &sizes, &NoProgress)?;
                    let active = hubness::activation_set(b, g, &sizes, &NoProgress)?;
                    let gallery = Gallery::with_offsets(g, &offsets)?;
                    let e = evaluate(q, &gallery, &targets, &control, false, &sizes, &NoProgress)?;
                    std::hint::black_box(active);
                    e
                }
            };
            let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
            let hits = e.attack.iter().filter(|o| o.first.greater == 0).count();
            println!("repeat {repeat} {name:<17} cpu {cpu:8.2} s  wall {wall:8.2} s  top-1 hits {hits}");
            times.push((cpu, wall));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(results[0].1.iter().map(|t| t.0).collect());
    let base_wall = median(results[0].1.iter().map(|t| t.1).collect());
    println!("n = {n}, dim = {dim}, threads = {}, medians of {repeats}:", rayon::current_num_threads());
    println!("| attack | CPU s | wall s | CPU / cosine | wall / cosine |");
    println!("|---|---|---|---|---|");
    for (name, times) in &results {
        let cpu = median(times.iter().map(|t| t.0).collect());
        let wall = median(times.iter().map(|t| t.1).collect());
        println!("| {name} | {cpu:.2} | {wall:.2} | {:.2} | {:.2} |", cpu / base, wall / base_wall);
    }
    Ok(())
}

/// CPU time (user + system, all threads) of this process so far, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}
