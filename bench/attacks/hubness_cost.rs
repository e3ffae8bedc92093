//! What the hubness corrections cost over plain cosine (issue 8: target within 2x), on
//! random unit vectors: n queries x n gallery items at dimension d, identity pairs. Every
//! piece is timed as `attack::compare` runs it, before and after the statistics were fused
//! into the cosine pass, in the same process and interleaved (the machine is shared):
//!
//! - `cosine`: the plain pass (ranks of the true match and of the control's decoy);
//! - `cosine+stats`: the same pass also gathering CSLS's top-10 and the inverted softmax's
//!   log-normalisers per gallery item (`ColumnStats`), what `compare` runs now;
//! - `csls rank`, `inv-softmax rank`: each correction's own ranking pass with its offsets;
//! - `csls separate`, `inv-softmax separate`: the statistics pass each correction ran
//!   before (a second GEMM over all pairs), plus its ranking pass;
//! - `qb-norm bank (fused)` / `qb-norm bank (separate)`: QB-Norm's bank statistics over a
//!   bank of n/2 queries, in one pass now, two before.
//!
//! Usage: hubness_cost [--n N] [--dim D] [--repeats R]
//! Prints one line per piece and repeat, then medians (CPU and wall seconds), and the cost
//! of each correction relative to cosine before and after. Not a test.

use std::time::Instant;

use linkrisk::attack::neighbourhood::ColumnStats;
use linkrisk::attack::{decoy_targets, evaluate, evaluate_with_columns, hubness, Evaluation};
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
    let (k, beta) = (10, 20.0);
    let run = |e: Evaluation| e.attack.iter().filter(|o| o.first.greater == 0).count();
    let names = [
        "cosine",
        "cosine+stats",
        "csls rank",
        "inv-softmax rank",
        "csls separate",
        "inv-softmax separate",
        "qb-norm bank (fused)",
        "qb-norm bank (separate)",
        "qb-norm rank",
    ];
    let mut times: Vec<Vec<(f64, f64)>> = vec![Vec::new(); names.len()];
    let stats = ColumnStats::new(&plain, None, k, Some(beta))?.ok_or("no duplicates, no exclusions")?;
    let mut offsets_csls = Vec::new();
    let mut offsets_is = Vec::new();
    let mut offsets_qb = Vec::new();
    for repeat in 0..repeats {
        for (i, name) in names.iter().enumerate() {
            let (cpu0, wall0) = (cpu_seconds(), Instant::now());
            let hits = match i {
                0 => run(evaluate(q, &plain, &targets, &control, true, &sizes, &NoProgress)?),
                1 => {
                    let (e, states) = evaluate_with_columns(
                        q,
                        &plain,
                        &targets,
                        &control,
                        true,
                        &stats,
                        &sizes,
                        &NoProgress,
                    )?;
                    let found = stats.finish(states)?;
                    offsets_csls = hubness::csls_offsets_from(&found.knn_mean.unwrap_or_default());
                    offsets_is = hubness::inverted_softmax_offsets_from(
                        &found.log_normalizer.unwrap_or_default(),
                        beta,
                    );
                    run(e)
                }
                2 | 3 => {
                    let offsets = if i == 2 { &offsets_csls } else { &offsets_is };
                    let gallery = Gallery::with_offsets(g, offsets)?;
                    run(evaluate(q, &gallery, &targets, &control, false, &sizes, &NoProgress)?)
                }
                4 => {
                    let offsets = hubness::csls_offsets(q, g, None, k, &sizes, &NoProgress)?;
                    let gallery = Gallery::with_offsets(g, &offsets)?;
                    run(evaluate(q, &gallery, &targets, &control, false, &sizes, &NoProgress)?)
                }
                5 => {
                    let offsets = hubness::inverted_softmax_offsets(q, g, None, beta, &sizes, &NoProgress)?;
                    let gallery = Gallery::with_offsets(g, &offsets)?;
                    run(evaluate(q, &gallery, &targets, &control, false, &sizes, &NoProgress)?)
                }
                6 => {
                    let (offsets, active) = hubness::query_bank(b, g, beta, &sizes, &NoProgress)?;
                    offsets_qb = offsets;
                    active.iter().filter(|&&a| a).count()
                }
                7 => {
                    let offsets = hubness::inverted_softmax_offsets(b, g, None, beta, &sizes, &NoProgress)?;
                    let active = hubness::activation_set(b, g, &sizes, &NoProgress)?;
                    std::hint::black_box(offsets);
                    active.iter().filter(|&&a| a).count()
                }
                _ => {
                    let gallery = Gallery::with_offsets(g, &offsets_qb)?;
                    run(evaluate(q, &gallery, &targets, &control, false, &sizes, &NoProgress)?)
                }
            };
            let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
            println!("repeat {repeat} {name:<24} cpu {cpu:8.2} s  wall {wall:8.2} s  count {hits}");
            times[i].push((cpu, wall));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let cpu: Vec<f64> = times.iter().map(|t| median(t.iter().map(|x| x.0).collect())).collect();
    let wall: Vec<f64> = times.iter().map(|t| median(t.iter().map(|x| x.1).collect())).collect();
    println!("n = {n}, dim = {dim}, threads = {}, medians of {repeats}:", rayon::current_num_threads());
    println!("| piece | CPU s | wall s | CPU / cosine |");
    println!("|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        println!("| {name} | {:.2} | {:.2} | {:.2} |", cpu[i], wall[i], cpu[i] / cpu[0]);
    }
    // A correction's cost as `compare` runs it: before, its own statistics pass plus its
    // ranking pass; after, the statistics' extra time in the cosine pass (all of it charged
    // to each correction, though CSLS and the inverted softmax share it) plus its ranking.
    let extra = cpu[1] - cpu[0];
    println!("| correction | before: CPU / cosine | after: CPU / cosine |");
    println!("|---|---|---|");
    println!("| csls | {:.2} | {:.2} |", cpu[4] / cpu[0], (extra + cpu[2]) / cpu[0]);
    println!("| inverted_softmax | {:.2} | {:.2} |", cpu[5] / cpu[0], (extra + cpu[3]) / cpu[0]);
    println!(
        "| qb_norm (bank n/2) | {:.2} | {:.2} |",
        (cpu[7] + cpu[8]) / cpu[0],
        (cpu[6] + cpu[8]) / cpu[0]
    );
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
