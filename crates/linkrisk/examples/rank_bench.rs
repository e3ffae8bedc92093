//! Times the engine's full-rank pass (Recall counts against the true match + top-10) on
//! two .npy matrices, for bench/ranking_bench.py. Not a test.
//!
//! Usage: rank_bench QUERIES.npy GALLERY.npy [--block-rows N] [--chunk-cols N] [--sgemm]
//! Prints one JSON object on stdout.

use std::time::Instant;

use linkrisk::cohort::npy;
use linkrisk::engine::{rank, BlockSizes, Gallery, NoProgress, RankOptions, Rows, Targets};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let flag =
        |name: &str| args.iter().position(|a| a == name).map(|i| args[i + 1].parse::<usize>()).transpose();
    let block_rows = flag("--block-rows")?.unwrap_or(0);
    let chunk_cols = flag("--chunk-cols")?.unwrap_or(0);
    let queries = npy::read(std::path::Path::new(&args[1]))?;
    let gallery = npy::read(std::path::Path::new(&args[2]))?;
    let (n_q, n_g, dim) = (queries.rows, gallery.rows, queries.cols);
    let q = Rows::new(&queries.data, n_q, dim)?;
    let t_prep = Instant::now();
    let g = Gallery::new(Rows::new(&gallery.data, n_g, dim)?);
    let prep_s = t_prep.elapsed().as_secs_f64();
    let options =
        RankOptions { top_k: 10, sizes: BlockSizes { block_rows, chunk_cols, ..BlockSizes::default() } };
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let ranked = if args.iter().any(|a| a == "--gemm-only") {
        linkrisk::engine::for_each_block(q, &g, 0..n_q, &options.sizes, &NoProgress, |_| Ok(()))?;
        Vec::new()
    } else {
        let top_k = if args.iter().any(|a| a == "--no-topk") { 0 } else { 10 };
        rank(q, &g, &Targets::identity(n_q), 0..n_q, &RankOptions { top_k, ..options }, &NoProgress)?
    };
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let hits = ranked.iter().filter(|r| r.positives[0].greater == 0).count();
    // Peak RSS of loading + ranking, read before the sgemm timing allocates its own matrices.
    let peak_rss = peak_rss_mib();
    let sgemm = if args.iter().any(|a| a == "--sgemm") { Some(sgemm_gflops()) } else { None };
    // --gemm-only: the kernel alone (scores computed, nothing reduced); --no-topk: counts only.
    let flops = 2.0 * n_q as f64 * g.n_unique() as f64 * dim as f64;
    println!(
        "{{\"n_queries\": {n_q}, \"n_gallery\": {n_g}, \"dim\": {dim}, \"threads\": {}, \"block_rows\": {block_rows}, \"chunk_cols\": {chunk_cols}, \"seconds\": {seconds:.4}, \"dedup_seconds\": {prep_s:.4}, \"gflops\": {:.2}, \"cpu_seconds\": {cpu:.2}, \"gflop_per_cpu_second\": {:.2}, \"sgemm_gflops\": {}, \"sgemm_sustained_gflops\": {}, \"sgemm_gflop_per_cpu_second\": {}, \"peak_rss_mib\": {:.1}, \"top1_hits\": {hits}}}",
        rayon::current_num_threads(),
        flops / seconds / 1e9,
        flops / cpu / 1e9,
        sgemm.map_or("null".to_string(), |s| format!("{:.2}", s.0)),
        sgemm.map_or("null".to_string(), |s| format!("{:.2}", s.1)),
        sgemm.map_or("null".to_string(), |s| format!("{:.2}", s.2)),
        peak_rss
    );
    Ok(())
}

/// faer sgemm rate on C (4096 x 4096) = A (4096 x 512) B^T over 20 back-to-back runs:
/// (best single run, sustained mean over all 20, GFLOP per CPU-second over all 20). The
/// sustained rate is the fair reference for a pass that itself runs for seconds.
fn sgemm_gflops() -> (f64, f64, f64) {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, MatRef, Par};
    let (m, n, k) = (4096, 4096, 512);
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    let b: Vec<f32> = (0..n * k).map(|i| ((i * 104_729) % 1000) as f32 / 1000.0).collect();
    let mut c = vec![0f32; m * n];
    let flop = 2.0 * (m * n * k) as f64;
    let runs = 20;
    let mut best = 0.0f64;
    let cpu0 = cpu_seconds();
    let all = Instant::now();
    for _ in 0..runs {
        let t = Instant::now();
        matmul(
            MatMut::from_row_major_slice_mut(&mut c, m, n),
            Accum::Replace,
            MatRef::from_row_major_slice(&a, m, k),
            MatRef::from_row_major_slice(&b, n, k).transpose(),
            1.0f32,
            Par::rayon(0),
        );
        best = best.max(flop / t.elapsed().as_secs_f64() / 1e9);
    }
    let sustained = runs as f64 * flop / all.elapsed().as_secs_f64() / 1e9;
    let cpu = cpu_seconds() - cpu0;
    (best, sustained, runs as f64 * flop / cpu / 1e9)
}

/// CPU time (user + system, all threads) of this process so far, from /proc/self/stat
/// (clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
