//! DP-SGD epoch time vs a non-private epoch on the same heads and data (issue 6, part 5).
//!
//! Synthetic frozen features (image and report as noisy linear views of one latent vector
//! per record), then `train_heads` one epoch at a time in three modes, interleaved so that
//! machine load affects all alike: non-private with shuffled batches and InfoNCE over the
//! whole batch (what `--non-private` runs), non-private with DP-SGD's own batches
//! (`Batching::DpGroups`: Poisson-sampled patients, InfoNCE within hash groups, no clipping
//! or noise), and DP-SGD. DP-SGD / DpGroups is the cost of the DP machinery (per-group
//! norms, clipping, noise); DP-SGD / shuffled is what a user sees. Step time is taken from the progress callback
//! (first to last step), so setup (copying features, noise calibration) is reported apart.
//!
//! Run (release):
//!   cargo run --release -p linkrisk --example dpsgd_epoch -- [--patients 20000]
//!       [--image-dim 512] [--report-dim 512] [--dim 128] [--batch-size 256]
//!       [--group-size 4] [--head linear|mlp] [--hidden 512] [--repeats 3]

use std::time::Instant;

use linkrisk::cohort::metadata::MetadataBuilder;
use linkrisk::cohort::{Cohort, View};
use linkrisk::train::{train_heads_with_progress, Batching, HeadKind, Privacy, TrainConfig};
use rand::Rng;
use rand_distr::StandardNormal;

struct Options {
    patients: usize,
    image_dim: usize,
    report_dim: usize,
    dim: usize,
    batch_size: usize,
    group_size: usize,
    head: HeadKind,
    repeats: usize,
}

fn parse() -> Options {
    let mut o = Options {
        patients: 20_000,
        image_dim: 512,
        report_dim: 512,
        dim: 128,
        batch_size: TrainConfig::non_private().batch_size,
        group_size: TrainConfig::non_private().group_size,
        head: HeadKind::Linear,
        repeats: 3,
    };
    let mut hidden = 512;
    let mut mlp = false;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        let number = || value.parse::<usize>().unwrap_or_else(|_| panic!("{} needs a number", pair[0]));
        match pair[0].as_str() {
            "--patients" => o.patients = number(),
            "--image-dim" => o.image_dim = number(),
            "--report-dim" => o.report_dim = number(),
            "--dim" => o.dim = number(),
            "--batch-size" => o.batch_size = number(),
            "--group-size" => o.group_size = number(),
            "--hidden" => hidden = number(),
            "--repeats" => o.repeats = number(),
            "--head" => mlp = value == "mlp",
            other => panic!("unknown flag {other}"),
        }
    }
    if mlp {
        o.head = HeadKind::Mlp { hidden };
    }
    o
}

/// Patients with 1 or 2 records (1.5 on average), all in the train split.
fn cohort(o: &Options) -> Cohort {
    let latent = 32;
    let mut rng = linkrisk::rng::stream(0, "bench/cohort", 0);
    let a: Vec<f32> = (0..o.image_dim * latent).map(|_| rng.sample(StandardNormal)).collect();
    let b: Vec<f32> = (0..o.report_dim * latent).map(|_| rng.sample(StandardNormal)).collect();
    let mut meta = MetadataBuilder::default();
    let (mut image, mut report, mut studies, mut splits) = (vec![], vec![], vec![], vec![]);
    for p in 0..o.patients {
        for r in 0..1 + p % 2 {
            let z: Vec<f32> = (0..latent).map(|_| rng.sample(StandardNormal)).collect();
            for (dim, mat, out) in [(o.image_dim, &a, &mut image), (o.report_dim, &b, &mut report)] {
                for i in 0..dim {
                    let clean: f32 =
                        mat[i * latent..(i + 1) * latent].iter().zip(&z).map(|(m, z)| m * z).sum();
                    out.push(clean + rng.sample::<f32, _>(StandardNormal));
                }
            }
            meta.ids.push(format!("r{p}-{r}"));
            meta.patient_ids.push(format!("p{p}"));
            studies.push(format!("s{r}"));
            splits.push("train".to_string());
        }
    }
    meta.study_ids = Some(studies);
    meta.splits = Some(splits);
    let metadata = meta.build(std::path::Path::new("<bench>"), 0).expect("metadata");
    let n = metadata.len();
    let views = vec![
        View::from_memory("image_features", n, o.image_dim, image).expect("image"),
        View::from_memory("report_features", n, o.report_dim, report).expect("report"),
    ];
    Cohort::from_parts("<bench>", metadata, views).expect("cohort")
}

/// CPU seconds (user + system) used by this process so far, from /proc/self/stat (Linux;
/// clock ticks of 1/100 s). Robust to other processes sharing the machine, unlike wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// Wall and CPU seconds of one epoch of steps, setup wall seconds, and steps.
struct EpochTime {
    wall: f64,
    cpu: f64,
    setup: f64,
    steps: u64,
}

/// Time one run of one epoch: wall time per step from the progress callback (first to last
/// step, scaled to all steps), CPU time of the whole run minus its setup share.
fn time_epoch(cohort: &Cohort, config: &TrainConfig) -> EpochTime {
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let mut first: Option<(Instant, f64)> = None;
    let mut last = (start, cpu_start);
    let mut steps = 0;
    train_heads_with_progress(cohort, config, &mut |p| {
        let now = (Instant::now(), cpu_seconds());
        first.get_or_insert(now);
        last = now;
        steps = p.steps;
    })
    .expect("training");
    let first = first.expect("at least one step");
    let per_step = (last.0 - first.0).as_secs_f64() / (steps - 1) as f64;
    let cpu_per_step = (last.1 - first.1) / (steps - 1) as f64;
    let setup = (first.0 - start).as_secs_f64() - per_step;
    EpochTime { wall: per_step * steps as f64, cpu: cpu_per_step * steps as f64, setup, steps }
}

fn main() {
    let o = parse();
    let cohort = cohort(&o);
    let base = TrainConfig {
        head: o.head,
        dim: o.dim,
        epochs: 1.0,
        batch_size: o.batch_size,
        group_size: o.group_size,
        seed: Some(1),
        ..TrainConfig::non_private()
    };
    let grouped = TrainConfig { batching: Batching::DpGroups, ..base.clone() };
    let dp = TrainConfig { privacy: Privacy::Dp { epsilon: 1.0, delta: 1e-5 }, ..base.clone() };
    println!(
        "records {} patients {} image_dim {} report_dim {} dim {} head {:?} batch {} patients group {} threads {}",
        cohort.len(),
        o.patients,
        o.image_dim,
        o.report_dim,
        o.dim,
        o.head,
        o.batch_size,
        o.group_size,
        rayon::current_num_threads()
    );
    let modes = [("non-private shuffled", &base), ("non-private dp-groups", &grouped), ("DP-SGD", &dp)];
    let mut wall = vec![Vec::new(); modes.len()];
    let mut cpu = vec![Vec::new(); modes.len()];
    // One warm-up round, then interleaved timed rounds.
    for (_, config) in modes {
        time_epoch(&cohort, config);
    }
    for repeat in 0..o.repeats {
        let mut line = format!("repeat {repeat}:");
        for (k, (name, config)) in modes.iter().enumerate() {
            let t = time_epoch(&cohort, config);
            line.push_str(&format!(
                " {name} {:.3} s wall / {:.2} s cpu ({} steps, setup {:.3} s);",
                t.wall, t.cpu, t.steps, t.setup
            ));
            wall[k].push(t.wall);
            cpu[k].push(t.cpu);
        }
        println!("{line}");
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (what, times) in [("wall", &mut wall), ("cpu", &mut cpu)] {
        let m: Vec<f64> = times.iter_mut().map(median).collect();
        println!(
            "median {what} s per epoch: non-private shuffled {:.3}, non-private dp-groups {:.3}, DP-SGD {:.3}; \
             DP-SGD / dp-groups {:.3}, DP-SGD / shuffled {:.3}",
            m[0],
            m[1],
            m[2],
            m[2] / m[1],
            m[2] / m[0]
        );
    }
}
