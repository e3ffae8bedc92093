//! Cost of ranking against a memory-mapped gallery (stored rows scaled chunk by chunk in
//! the kernel) vs the same gallery normalised in memory: CPU time of `for_each_block` over
//! the same queries, alternating the two several times. Not a test; docs/PERFORMANCE.md
//! ("Scale-out").
//!
//! ```sh
//! cargo run --release -p linkrisk --example scaled_gallery_cost -- /tmp/shard400k/report.npy [queries=384] [reps=3]
//! ```

use std::path::Path;
use std::time::Instant;

use linkrisk::cohort::{MapAttempt, MappedView};
use linkrisk::engine::{for_each_block, BlockSizes, Gallery, NoProgress, Rows, ScaledRows};

/// CPU seconds (user + system) of this process so far, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = Path::new(args.first().map_or("/tmp/shard400k/report.npy", String::as_str));
    let n_queries: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(384);
    let reps: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let mapped = match MappedView::open("report", path, None).expect("a float32 .npy view") {
        MapAttempt::Mapped(m) => m,
        MapAttempt::Unmappable { reason } => panic!("cannot map {}: {reason}", path.display()),
    };
    let (n, dim) = (mapped.n(), mapped.dim());
    let normalised = mapped.normalised_rows(0..n);
    // Queries: the first gallery rows (any unit rows do).
    let queries = Rows::new(&normalised[..n_queries * dim], n_queries, dim).expect("queries");
    let dense = Gallery::new(Rows::new(&normalised, n, dim).expect("rows"));
    let scaled = Gallery::scaled(ScaledRows::from_mapped(&mapped));
    let sizes = BlockSizes::default();
    let run = |gallery: &Gallery<'_>| {
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let mut checksum = 0f64;
        for_each_block(queries, gallery, 0..n_queries, &sizes, &NoProgress, |block| {
            checksum += f64::from(block.row(0).score(0));
            Ok(())
        })
        .expect("ranks");
        (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu, checksum)
    };
    println!(
        "gallery {n} x {dim}, {n_queries} queries, default blocks; threads {}",
        rayon::current_num_threads()
    );
    let (mut dense_cpu, mut mapped_cpu) = (0.0, 0.0);
    for rep in 0..reps {
        let (dw, dc, a) = run(&dense);
        let (mw, mc, b) = run(&scaled);
        assert_eq!(a.to_bits(), b.to_bits());
        dense_cpu += dc;
        mapped_cpu += mc;
        println!(
            "rep {rep}: in memory {dw:.2} s wall ({dc:.2} s CPU), mapped {mw:.2} s wall ({mc:.2} s CPU)"
        );
    }
    println!("mapped / in memory, CPU: {:.3}", mapped_cpu / dense_cpu);
}
