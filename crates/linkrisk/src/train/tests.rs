//! Tests of the heads, the loss and DP-SGD: analytic gradients against finite differences
//! (f64), Gram-trick norms against materialised gradients, the per-patient sensitivity
//! bound (property test), the noise scale, and end-to-end training on small correlated
//! features.

use proptest::prelude::*;
use rand::Rng;
use rand_distr::StandardNormal;

use super::batch::{batch_gradient, Batch};
use super::data::TrainData;
use super::model::{HeadKind, Layout, Model};
use super::optim::{Optimizer, OptimizerState};
use super::*;
use crate::cohort::metadata::MetadataBuilder;
use crate::cohort::{Metadata, View};
use crate::rng;

/// Random training data: `records[p]` records for patient p; records of a patient share a
/// study in pairs (records 0 and 1 of a patient are one study), features Gaussian.
fn random_data(seed: u64, records: &[usize], image_dim: usize, report_dim: usize) -> TrainData<f64> {
    let mut rng = rng::stream(seed, "test/data", 0);
    let mut data = TrainData {
        image_dim,
        report_dim,
        image: vec![],
        report: vec![],
        study: vec![],
        patient_rows: vec![],
        patient_ids: vec![],
    };
    let mut study = 0;
    for (p, &count) in records.iter().enumerate() {
        let start = data.study.len();
        for r in 0..count {
            data.image.extend((0..image_dim).map(|_| rng.sample::<f64, _>(StandardNormal)));
            data.report.extend((0..report_dim).map(|_| rng.sample::<f64, _>(StandardNormal)));
            if r != 1 {
                study += 1;
            }
            data.study.push(study);
        }
        data.patient_rows.push(start..data.study.len());
        data.patient_ids.push(format!("patient-{p}"));
    }
    data
}

fn model(kind: HeadKind, data: &TrainData<f64>, dim: usize, learn: bool, seed: u64) -> Model<f64> {
    model_at(kind, data, dim, learn, seed, 0.5)
}

fn model_at(
    kind: HeadKind,
    data: &TrainData<f64>,
    dim: usize,
    learn: bool,
    seed: u64,
    temperature: f64,
) -> Model<f64> {
    let layout = Layout::new(kind, data.image_dim, data.report_dim, dim, learn);
    let mut model = Model::<f64>::init(layout, seed, temperature);
    // Non-zero biases so their gradients are exercised.
    let mut rng = rng::stream(seed, "test/bias", 0);
    for layer in model.layout.image.clone().iter().chain(&model.layout.report.clone()) {
        for b in &mut model.params[layer.b..layer.b + layer.out_dim] {
            *b = rng.random_range(-0.3..0.3);
        }
    }
    model
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn loss_of(model: &Model<f64>, batch: &Batch<f64>) -> f64 {
    let mut grad = vec![0.0; model.layout.n_params];
    batch_gradient(model, batch, None, &mut grad).loss
}

#[test]
fn gradients_match_finite_differences() {
    let data = random_data(1, &[2, 1, 3, 1, 2, 1], 5, 4);
    // Temperature 0.5 takes the shared-shift softmax path, 0.02 (scale 50) the per-row one.
    for (kind, learn, temperature) in [
        (HeadKind::Linear, true, 0.5),
        (HeadKind::Mlp { hidden: 4 }, true, 0.5),
        (HeadKind::Linear, false, 0.5),
        (HeadKind::Mlp { hidden: 4 }, true, 0.02),
    ] {
        let mut model = model_at(kind, &data, 3, learn, 2, temperature);
        let batch = data.batch([&[0u32, 1, 2][..], &[3, 4, 5][..]]);
        let mut grad = vec![0.0; model.layout.n_params];
        let stats = batch_gradient(&model, &batch, None, &mut grad);
        assert!(stats.loss > 0.0);
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        for k in 0..model.layout.n_params {
            let saved = model.params[k];
            model.params[k] = saved + h;
            let up = loss_of(&model, &batch);
            model.params[k] = saved - h;
            let down = loss_of(&model, &batch);
            model.params[k] = saved;
            let numeric = (up - down) / (2.0 * h);
            let err = (numeric - grad[k]).abs() / (1e-6 + numeric.abs().max(grad[k].abs()));
            worst = worst.max(err);
            assert!(err < 1e-5, "{kind:?} param {k}: analytic {} numeric {numeric}", grad[k]);
        }
        assert!(worst < 1e-5, "{worst}");
        // Temperature: fixed means no parameter for it.
        assert_eq!(model.layout.log_scale.is_some(), learn);
    }
}

#[test]
fn same_study_records_are_not_negatives() {
    // Two records of one study with identical report features: without the mask their
    // InfoNCE terms could not both be satisfied; with it, the loss of a perfectly aligned
    // group goes to 0 as the temperature falls.
    let mut data = random_data(3, &[2, 1], 4, 4);
    let (a, b) = (0..4, 4..8);
    let shared: Vec<f64> = data.report[a.clone()].to_vec();
    data.report[b].copy_from_slice(&shared);
    assert_eq!(data.study[0], data.study[1]);
    let batch = data.batch([&[0u32, 1][..]]);
    let mut m = Model::<f64>::init(Layout::new(HeadKind::Linear, 4, 4, 4, false), 0, 0.01);
    // Identity heads: image head copies features, report head too; make image rows equal to
    // their reports so each pair is perfectly aligned.
    m.params.iter_mut().for_each(|p| *p = 0.0);
    for side in [m.layout.image[0], m.layout.report[0]] {
        for i in 0..4 {
            m.params[side.w + i * 4 + i] = 1.0;
        }
    }
    let mut aligned = batch.clone();
    aligned.image = aligned.report.clone();
    assert!(loss_of(&m, &aligned) < 1e-6, "{}", loss_of(&m, &aligned));
    let _ = a;
}

#[test]
fn gram_norms_equal_materialised_group_gradients() {
    let data = random_data(4, &[3, 1, 2, 2, 1, 4, 1], 6, 5);
    for kind in [HeadKind::Linear, HeadKind::Mlp { hidden: 7 }] {
        let model = model(kind, &data, 4, true, 5);
        let groups: [&[u32]; 3] = [&[0, 1], &[2, 3, 4], &[5, 6]];
        let batch = data.batch(groups);
        let mut grad = vec![0.0; model.layout.n_params];
        let stats = batch_gradient(&model, &batch, Some(1e9), &mut grad);
        let mut sum = vec![0.0; model.layout.n_params];
        for (k, group) in groups.iter().enumerate() {
            let single = data.batch([*group]);
            let mut g = vec![0.0; model.layout.n_params];
            batch_gradient(&model, &single, None, &mut g);
            let want = norm(&g);
            assert!((stats.group_norms[k] - want).abs() < 1e-10 * want, "{} vs {want}", stats.group_norms[k]);
            sum.iter_mut().zip(&g).for_each(|(s, x)| *s += x);
        }
        // Unclipped (huge radius) sum of groups = the batch gradient.
        let diff: Vec<f64> = sum.iter().zip(&grad).map(|(a, b)| a - b).collect();
        assert!(norm(&diff) < 1e-10 * norm(&grad));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// No group's clipped contribution exceeds C/2, and adding or removing any one patient
    /// changes the pre-noise clipped sum by at most C, whatever the data, the model, the
    /// batch and the grouping.
    #[test]
    fn one_patient_moves_the_clipped_sum_by_at_most_c(
        seed in 0u64..1_000_000,
        records in prop::collection::vec(1usize..4, 3..14),
        clip in prop_oneof![Just(1e-3), Just(0.05), Just(0.5), Just(5.0), Just(100.0)],
        n_groups in 1usize..5,
        mlp in any::<bool>(),
        step in 0u64..50,
    ) {
        let data = random_data(seed, &records, 4, 3);
        let kind = if mlp { HeadKind::Mlp { hidden: 3 } } else { HeadKind::Linear };
        let model = model(kind, &data, 3, seed % 2 == 0, seed);
        let key = super::dpsgd::group_key(seed);
        let all: Vec<u32> = (0..records.len() as u32).collect();
        let removed = (seed as usize) % records.len();
        let without: Vec<u32> = all.iter().copied().filter(|&p| p as usize != removed).collect();
        let radius = clip / 2.0;
        let clipped_sum = |patients: &[u32]| -> (Vec<f64>, Batch<f64>) {
            let batch = data.dp_batch(patients, &key, step, n_groups);
            let mut grad = vec![0.0; model.layout.n_params];
            batch_gradient(&model, &batch, Some(radius), &mut grad);
            (grad, batch)
        };
        let (with_p, batch) = clipped_sum(&all);
        let (without_p, _) = clipped_sum(&without);
        let change: Vec<f64> = with_p.iter().zip(&without_p).map(|(a, b)| a - b).collect();
        prop_assert!(norm(&change) <= clip, "change {} > C = {clip}", norm(&change));
        // Each group's clipped gradient, materialised on its own, is within C / 2.
        for rows in &batch.groups {
            let single = Batch {
                image: batch.image[rows.start * 4..rows.end * 4].to_vec(),
                report: batch.report[rows.start * 3..rows.end * 3].to_vec(),
                study: batch.study[rows.clone()].to_vec(),
                groups: std::iter::once(0..rows.len()).collect(),
            };
            let mut g = vec![0.0; model.layout.n_params];
            batch_gradient(&model, &single, Some(radius), &mut g);
            prop_assert!(norm(&g) <= radius, "group contribution {} > C/2 = {radius}", norm(&g));
        }
    }
}

#[test]
fn grouping_ignores_other_patients() {
    // The group of every other patient is the same with and without patient 2.
    let data = random_data(6, &[1, 2, 1, 3, 1, 1, 2, 1], 3, 3);
    let key = super::dpsgd::group_key(6);
    let all: Vec<u32> = (0..8).collect();
    let without: Vec<u32> = all.iter().copied().filter(|&p| p != 2).collect();
    let groups_of = |patients: &[u32]| -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = patients
            .iter()
            .map(|&p| {
                (
                    data.patient_ids[p as usize].clone(),
                    dpsgd::group_of(&key, 3, &data.patient_ids[p as usize], 3),
                )
            })
            .collect();
        v.sort();
        v
    };
    let with: Vec<_> = groups_of(&all).into_iter().filter(|(id, _)| id != "patient-2").collect();
    assert_eq!(with, groups_of(&without));
}

#[test]
fn dp_step_noise_has_std_sigma_c_over_batch() {
    // An empty batch: the update is pure noise. SGD with lr 1 moves each parameter by
    // -noise / B, noise ~ N(0, (sigma C)^2).
    let data = random_data(7, &[1, 1], 40, 30);
    let (sigma, clip, expected_batch) = (1.7, 0.8, 50usize);
    let mut model = model(HeadKind::Linear, &data, 32, false, 1);
    let start = model.params.clone();
    let mut optimizer = OptimizerState::<f64>::new(Optimizer::Sgd { momentum: 0.0 }, model.layout.n_params);
    let mut grad = vec![0.0; model.layout.n_params];
    let empty = data.batch(Vec::<&[u32]>::new());
    let mut moves = Vec::new();
    for step in 0..4 {
        let before = model.params.clone();
        let noise =
            DpStep { noise_multiplier: sigma, clip, group_clip: clip / 2.0, seed: 3, step, fault: None };
        dp_step(&mut model, &mut optimizer, &mut grad, &empty, noise, expected_batch, 1.0);
        moves.extend(model.params.iter().zip(&before).map(|(a, b)| (b - a) * expected_batch as f64));
    }
    assert_ne!(model.params, start);
    let n = moves.len() as f64;
    let sd = (moves.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
    let want = sigma * clip;
    assert!((sd - want).abs() < 5.0 * want / (2.0 * n).sqrt(), "noise sd {sd}, want {want} (n = {n})");
}

// ---- End-to-end on small correlated features ----

/// A cohort whose image and report features are two different noisy linear views of one
/// latent vector per record: `train` patients, then `test` patients.
pub(crate) fn correlated_cohort(train: usize, test: usize, noise: f64, seed: u64) -> Cohort {
    let (latent, di, dr) = (12, 32, 24);
    let mut rng = rng::stream(seed, "test/cohort", 0);
    let a: Vec<f64> = (0..di * latent).map(|_| rng.sample(StandardNormal)).collect();
    let b: Vec<f64> = (0..dr * latent).map(|_| rng.sample(StandardNormal)).collect();
    let mut builder = MetadataBuilder::default();
    let (mut image, mut report) = (Vec::new(), Vec::new());
    let mut splits = Vec::new();
    let mut studies = Vec::new();
    for p in 0..train + test {
        let count = 1 + (p % 2);
        for r in 0..count {
            let z: Vec<f64> = (0..latent).map(|_| rng.sample(StandardNormal)).collect();
            for (dim, mat, out) in [(di, &a, &mut image), (dr, &b, &mut report)] {
                for i in 0..dim {
                    let clean: f64 = (0..latent).map(|k| mat[i * latent + k] * z[k]).sum();
                    out.push((clean + noise * rng.sample::<f64, _>(StandardNormal)) as f32);
                }
            }
            builder.ids.push(format!("r{p}-{r}"));
            builder.patient_ids.push(format!("p{p}"));
            studies.push(format!("s{r}"));
            splits.push(if p < train { "train" } else { "test" }.to_string());
        }
    }
    builder.study_ids = Some(studies);
    builder.splits = Some(splits);
    let metadata: Metadata = builder.build(std::path::Path::new("<memory>"), 0).unwrap();
    let n = metadata.len();
    let views = vec![
        View::from_memory("image_features", n, di, image).unwrap(),
        View::from_memory("report_features", n, dr, report).unwrap(),
    ];
    Cohort::from_parts("<memory>", metadata, views).unwrap()
}

/// Image -> report top-1 over the records of `split` (argmax cosine among that split).
pub(crate) fn top1(projected: &Cohort, split: &str) -> f64 {
    let rows = projected.metadata.rows_in_split(split).unwrap();
    let (img, rep) = (projected.view("image").unwrap(), projected.view("report").unwrap());
    let hits = rows
        .iter()
        .filter(|&&i| {
            let best = rows
                .iter()
                .copied()
                .max_by(|&a, &b| {
                    let sa: f32 = img.row(i).iter().zip(rep.row(a)).map(|(x, y)| x * y).sum();
                    let sb: f32 = img.row(i).iter().zip(rep.row(b)).map(|(x, y)| x * y).sum();
                    sa.total_cmp(&sb)
                })
                .unwrap();
            best == i
        })
        .count();
    hits as f64 / rows.len() as f64
}

fn small_config(privacy: Privacy) -> TrainConfig {
    TrainConfig {
        dim: 16,
        epochs: 30.0,
        batch_size: 64,
        group_size: 16,
        lr: 3e-3,
        privacy,
        ..TrainConfig::non_private()
    }
}

#[test]
fn training_aligns_held_out_pairs_and_dp_aligns_less() {
    let cohort = correlated_cohort(400, 150, 0.5, 1);
    // Random heads: the initialisation, no steps (a tiny lr makes the update negligible).
    let random =
        train_heads(&cohort, &TrainConfig { lr: 1e-12, epochs: 0.01, ..small_config(Privacy::NonPrivate) })
            .unwrap();
    let random_top1 = top1(&random.project_cohort(&cohort).unwrap(), "test");
    let trained = train_heads(&cohort, &small_config(Privacy::NonPrivate)).unwrap();
    let trained_top1 = top1(&trained.project_cohort(&cohort).unwrap(), "test");
    let dp = train_heads(&cohort, &small_config(Privacy::Dp { epsilon: 0.5, delta: 1e-5 })).unwrap();
    let dp_top1 = top1(&dp.project_cohort(&cohort).unwrap(), "test");
    eprintln!(
        "held-out top-1: random {random_top1:.3}, non-private {trained_top1:.3}, DP eps 0.5 {dp_top1:.3}"
    );
    // 225 held-out records: chance is 1/225.
    assert!(random_top1 < 0.05, "random heads {random_top1}");
    assert!(trained_top1 > 0.3 && trained_top1 > 5.0 * random_top1, "trained {trained_top1}");
    assert!((dp_top1 - random_top1).abs() < trained_top1 - random_top1, "DP {dp_top1}");
    // The ledger says what was done.
    assert!(dp.ledger.dp_sgd && dp.ledger.epsilon.unwrap() <= 0.5 && dp.ledger.epsilon.unwrap() > 0.49);
    // A recorded seed (small_config's Some(0)) regenerates the noise: an evaluation, not a release.
    assert!(!dp.ledger.private, "{:?}", dp.ledger);
    assert!(dp.ledger.not_private_reason.as_deref().unwrap().contains("recorded seed 0"), "{:?}", dp.ledger);
    // The default accountant (PLD) calibrated the noise, and the ledger names it.
    assert_eq!(dp.ledger.accountant, "pld_poisson_subsampled_gaussian");
    assert_eq!(dp.ledger.accountant_parameters, Some(crate::privacy::Accountant::default()));
    assert_eq!(dp.ledger.best_order, None);
    let calibrated = crate::privacy::Accountant::default()
        .calibrate(0.5, 1e-5, dp.ledger.sample_rate, dp.ledger.steps)
        .unwrap()
        .noise_multiplier;
    assert_eq!(dp.ledger.noise_multiplier, calibrated);
    assert!(dp.ledger.noise_multiplier > 0.5);
    assert_eq!(dp.ledger.sample_rate, 64.0 / 400.0);
    assert_eq!(dp.ledger.steps, (30.0f64 / (64.0 / 400.0)).floor() as u64);
    assert_eq!(dp.ledger.group_clip, Some(0.5));
    assert_eq!(dp.ledger.groups_per_step, Some(4));
    assert_eq!(dp.ledger.train_patients, 400);
    assert_eq!(dp.ledger.train_records, 600);
    assert!(!trained.ledger.private && trained.ledger.epsilon.is_none());
    assert_eq!(trained.ledger.construction, "non_private");
    // The ablation trains on DP-SGD's batches without clipping or noise.
    let grouped = train_heads(
        &cohort,
        &TrainConfig { batching: Batching::DpGroups, ..small_config(Privacy::NonPrivate) },
    )
    .unwrap();
    assert_eq!(grouped.ledger.construction, "non_private_dp_groups");
    assert_eq!(grouped.ledger.steps, dp.ledger.steps);
    assert_eq!((grouped.ledger.groups_per_step, grouped.ledger.noise_multiplier), (Some(4), 0.0));
    let grouped_top1 = top1(&grouped.project_cohort(&cohort).unwrap(), "test");
    assert!(grouped_top1 > dp_top1, "dp-groups {grouped_top1} vs DP {dp_top1}");
}

#[test]
fn training_is_reproducible_from_the_seed() {
    let cohort = correlated_cohort(60, 10, 0.5, 2);
    let config = TrainConfig {
        epochs: 2.0,
        batch_size: 16,
        ..small_config(Privacy::Dp { epsilon: 2.0, delta: 1e-5 })
    };
    let a = train_heads(&cohort, &config).unwrap();
    let b = train_heads(&cohort, &config).unwrap();
    assert_eq!(a.model.params, b.model.params);
    let c = train_heads(&cohort, &TrainConfig { seed: Some(1), ..config.clone() }).unwrap();
    assert_ne!(a.model.params, c.model.params);
    // The same run on one thread gives the same bits.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let d = pool.install(|| train_heads(&cohort, &config).unwrap());
    assert_eq!(a.model.params, d.model.params);
}

#[test]
fn bad_configs_name_the_flag() {
    let cohort = correlated_cohort(20, 5, 0.5, 3);
    let err = |config: TrainConfig| train_heads(&cohort, &config).unwrap_err().to_string();
    let base = small_config(Privacy::Dp { epsilon: 1.0, delta: 1e-5 });
    assert!(err(TrainConfig { dim: 0, ..base.clone() }).contains("--dim"));
    assert!(err(TrainConfig { epochs: 0.0, ..base.clone() }).contains("--epochs"));
    assert!(err(TrainConfig { batch_size: 0, ..base.clone() }).contains("--batch-size"));
    assert!(err(TrainConfig { batch_size: 21, ..base.clone() })
        .contains("--batch-size 21 exceeds the 20 patients"));
    assert!(err(TrainConfig { clip: -1.0, ..base.clone() }).contains("--clip"));
    assert!(err(TrainConfig { lr: f64::NAN, ..base.clone() }).contains("--lr"));
    assert!(err(TrainConfig { group_size: 0, ..base.clone() }).contains("--group-size"));
    assert!(err(TrainConfig { head: HeadKind::Mlp { hidden: 0 }, ..base.clone() }).contains("--hidden"));
    assert!(err(TrainConfig { privacy: Privacy::Dp { epsilon: 0.0, delta: 1e-5 }, ..base.clone() })
        .contains("--epsilon"));
    assert!(err(TrainConfig { privacy: Privacy::Dp { epsilon: 1.0, delta: 2.0 }, ..base.clone() })
        .contains("--delta"));
    assert!(err(TrainConfig { train_split: "members".into(), ..base.clone() }).contains("split `members`"));
    assert!(err(TrainConfig { image_view: "img".into(), ..base.clone() }).contains("no view named `img`"));
    assert!(
        err(TrainConfig { temperature: Temperature::Fixed { value: 0.0 }, ..base }).contains("--temperature")
    );
}

#[test]
fn output_cohort_and_ledger() {
    let cohort = correlated_cohort(30, 10, 0.5, 4);
    let config = TrainConfig {
        epochs: 1.0,
        batch_size: 10,
        ..small_config(Privacy::Dp { epsilon: 3.0, delta: 1e-5 })
    };
    let heads = train_heads(&cohort, &config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heads");
    heads.write_cohort(&cohort, &out).unwrap();
    let loaded = Cohort::load(&out).unwrap();
    assert_eq!(loaded.len(), cohort.len());
    assert_eq!(loaded.metadata.ids, cohort.metadata.ids);
    assert_eq!(loaded.view_names(), vec!["image", "report"]);
    assert_eq!(loaded.view("image").unwrap().dim(), 16);
    // Rows written are the projection of every record, test split included, and an audit
    // reading them back sees exactly the rows evaluated in memory.
    let projected = heads.project_cohort(&cohort).unwrap();
    for view in ["image", "report"] {
        assert_eq!(loaded.view(view).unwrap().rows(), projected.view(view).unwrap().rows(), "{view}");
    }
    let ledger: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("privacy.json")).unwrap()).unwrap();
    for key in
        ["epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "epochs", "clip", "privacy_unit"]
    {
        assert!(!ledger[key].is_null(), "privacy.json lacks {key}: {ledger}");
    }
    assert_eq!(ledger["privacy_unit"], "patient");
    assert_eq!(ledger["construction"], DP_CONSTRUCTION);
    assert_eq!(ledger["seed"], 0);
    // Rewriting an earlier output is fine; a directory that is not one is refused.
    heads.write_cohort(&cohort, &out).unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    let err = heads.write_cohort(&cohort, &other).unwrap_err().to_string();
    assert!(err.contains("--out") && err.contains("not an earlier output of linkrisk train-heads"), "{err}");
    assert!(other.join("notes.txt").exists());
    // No temporary directories are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn projection_checks_dimensions() {
    let cohort = correlated_cohort(20, 5, 0.5, 5);
    let heads = train_heads(
        &cohort,
        &TrainConfig { epochs: 1.0, batch_size: 5, ..small_config(Privacy::NonPrivate) },
    )
    .unwrap();
    assert!(heads.project_image(&[0.0; 31]).unwrap_err().to_string().contains("32"));
    let out = heads.project_report(&vec![0.1; 24 * 3]).unwrap();
    assert_eq!(out.len(), 3 * 16);
    for row in out.chunks(16) {
        let n: f32 = row.iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
}

#[test]
fn learned_temperature_moves_and_stays_in_range() {
    let cohort = correlated_cohort(60, 10, 0.5, 8);
    let learned = Temperature::Learned { initial: 0.07 };
    let config = TrainConfig {
        epochs: 3.0,
        batch_size: 20,
        temperature: learned,
        ..small_config(Privacy::NonPrivate)
    };
    let heads = train_heads(&cohort, &config).unwrap();
    let t = heads.temperature();
    assert!(t != 0.07 && (0.01..=1.0).contains(&t), "{t}");
    assert!(heads.ledger.learned_temperature);
    // A huge learning rate pushes it to a bound, never past it (DP noise included).
    let wild =
        TrainConfig { lr: 10.0, privacy: Privacy::DpNoise { noise_multiplier: 5.0, delta: 1e-5 }, ..config };
    let t = train_heads(&cohort, &wild).unwrap().temperature();
    assert!((0.01 - 1e-9..=1.0 + 1e-9).contains(&t), "{t}");
}

/// A cohort whose records are split `train` / `public` / `test`.
fn with_public_split(cohort: &Cohort, every: u32) -> Cohort {
    let mut meta = cohort.metadata.clone();
    let public = meta.split_names.len() as u16;
    meta.split_names.push("public".into());
    let train = meta.split_index("train").unwrap();
    for i in 0..meta.len() {
        if meta.split[i] == train && meta.patient[i] % every == 0 {
            meta.split[i] = public;
        }
    }
    Cohort::from_parts("<memory>", meta, cohort.views().cloned().collect()).unwrap()
}

#[test]
fn public_projection_is_folded_into_heads_of_the_raw_features() {
    let cohort = with_public_split(&correlated_cohort(120, 20, 0.5, 9), 3);
    let projection =
        PublicProjection::fit(&cohort, "image_features", "report_features", "public", 8).unwrap();
    assert_eq!((projection.record.image_rank, projection.record.report_rank), (8, 8));
    assert!(projection.record.image_variance_kept > 0.5 && projection.record.image_variance_kept <= 1.0);
    // The projected public rows have unit mean squared norm.
    let public_rows: Vec<usize> = cohort.metadata.rows_in_split("public").unwrap();
    let view = cohort.view("image_features").unwrap();
    let rows: Vec<f32> = public_rows.iter().flat_map(|&i| view.row(i).to_vec()).collect();
    let projected = projection.apply(super::model::Side::Image, &rows);
    let mean_sq =
        projected.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / public_rows.len() as f64;
    assert!((mean_sq - 1.0).abs() < 1e-4, "{mean_sq}");
    // Training behind the projection: the folded heads on the raw features give the outputs
    // of the trained heads on the projected features.
    for head in [HeadKind::Linear, HeadKind::Mlp { hidden: 12 }] {
        let config = TrainConfig { head, epochs: 3.0, batch_size: 16, ..small_config(Privacy::NonPrivate) };
        let heads = train_heads_projected(&cohort, &config, &projection, &mut |_| {}).unwrap();
        assert_eq!(heads.image_input_dim(), 32);
        assert_eq!(heads.ledger.input_projection.as_ref().unwrap().split, "public");
        let all = cohort.view("image_features").unwrap().rows();
        let direct = heads.project_image(all).unwrap();
        let via_projection = heads.model.project(
            super::model::Side::Image,
            &projection.apply(super::model::Side::Image, all),
            cohort.len(),
        );
        let worst = direct.iter().zip(&via_projection).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{head:?}: {worst}");
        // A warm-started run continues behind the same projection.
        let dp = TrainConfig { head, epochs: 1.0, ..small_config(Privacy::Dp { epsilon: 2.0, delta: 1e-4 }) };
        let continued = train_heads_from(&cohort, &dp, &heads, &mut |_| {}).unwrap();
        assert_eq!(continued.ledger.input_projection, heads.ledger.input_projection);
        assert_eq!(continued.model.layout.in_dim(super::model::Side::Image), 8);
    }
    // The basis does not depend on the thread count.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let again = pool.install(|| {
        PublicProjection::fit(&cohort, "image_features", "report_features", "public", 8).unwrap()
    });
    assert_eq!(again, projection);
}

#[test]
fn exported_heads_read_back_project_the_same_bits_and_carry_the_ledger() {
    let cohort = with_public_split(&correlated_cohort(80, 20, 0.5, 10), 4);
    let warm = WarmStart {
        source: PublicSource::Split { split: "public".into() },
        training: TrainConfig { epochs: 5.0, batch_size: 8, ..small_config(Privacy::NonPrivate) },
        pca_rank: 6,
        seed: Some(3),
    };
    for head in [HeadKind::Linear, HeadKind::Mlp { hidden: 10 }] {
        let config = TrainConfig {
            head,
            epochs: 2.0,
            batch_size: 20,
            temperature: Temperature::Learned { initial: 0.1 },
            ..small_config(Privacy::Dp { epsilon: 3.0, delta: 1e-4 })
        };
        // Linear heads from random parameters; MLP heads behind the public warm start and
        // its projection.
        let heads = match head {
            HeadKind::Linear => train_heads(&cohort, &config).unwrap(),
            HeadKind::Mlp { .. } => {
                let training = TrainConfig { head, temperature: config.temperature, ..warm.training.clone() };
                let start =
                    warm_start(&cohort, "train", &WarmStart { training, ..warm.clone() }, &mut |_| {})
                        .unwrap();
                train_heads_from(&cohort, &config, &start.heads, &mut |_| {}).unwrap()
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let file = heads.export(dir.path()).unwrap();
        assert_eq!(file, dir.path().join(export::HEADS_FILE));
        let loaded = TrainedHeads::load(dir.path()).unwrap();
        assert_eq!(loaded.ledger, heads.ledger);
        assert_eq!(loaded.spec(), heads.spec());
        assert_eq!((loaded.image_view(), loaded.report_view()), ("image_features", "report_features"));
        for view in ["image", "report"] {
            assert_eq!(
                loaded.project_cohort(&cohort).unwrap().view(view).unwrap().rows(),
                heads.project_cohort(&cohort).unwrap().view(view).unwrap().rows(),
                "{head:?} {view}"
            );
        }
        // The metadata holds the ledger and the normalisation, as JSON; privacy.json beside.
        let bytes = std::fs::read(&file).unwrap();
        let (_, header) = ::safetensors::tensor::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        let ledger: serde_json::Value = serde_json::from_str(&meta["privacy"]).unwrap();
        assert_eq!(ledger, serde_json::to_value(&heads.ledger).unwrap());
        let on_disk: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("privacy.json")).unwrap()).unwrap();
        assert_eq!(on_disk, ledger);
        let norm: serde_json::Value = serde_json::from_str(&meta["feature_normalisation"]).unwrap();
        assert_eq!(norm["image"]["steps"][0], "l2_normalise_rows");
        assert_eq!(norm["image"]["dim"], 32);
        assert_eq!(norm["public_projection"].is_null(), heads.ledger.input_projection.is_none());
        assert_eq!(meta["format"], export::FORMAT);
    }
    // Files that are not exported heads are refused with the file named.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file at all").unwrap();
    let err = TrainedHeads::load(&junk).unwrap_err().to_string();
    assert!(err.contains("junk.safetensors") && err.contains("not a safetensors file"), "{err}");
    let view = ::safetensors::tensor::TensorView::new(::safetensors::tensor::Dtype::F32, vec![1], &[0u8; 4])
        .unwrap();
    let other = ::safetensors::tensor::serialize([("x", view)], &None).unwrap();
    std::fs::write(&junk, other).unwrap();
    let err = TrainedHeads::load(&junk).unwrap_err().to_string();
    assert!(err.contains("no `format`"), "{err}");
    let err = TrainedHeads::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(export::HEADS_FILE), "{err}");
}

#[test]
fn a_warm_start_split_sharing_a_patient_with_the_members_is_refused() {
    let cohort = correlated_cohort(40, 10, 0.5, 11);
    // Patient p3's first record moves to `public`, its second stays in `train`.
    let mut meta = cohort.metadata.clone();
    meta.split_names.push("public".into());
    let public = (meta.split_names.len() - 1) as u16;
    let first = meta.patient_ids.iter().position(|p| p == "p3").unwrap();
    assert_eq!(meta.patient_ids[first + 1], "p3");
    meta.split[first] = public;
    let shared = Cohort::from_parts("<memory>", meta, cohort.views().cloned().collect()).unwrap();
    let err = check_disjoint(&shared, "public", "train").unwrap_err().to_string();
    assert!(err.contains("1 of the 40 patients") && err.contains("p3"), "{err}");
    let warm = WarmStart {
        source: PublicSource::Split { split: "public".into() },
        training: small_config(Privacy::NonPrivate),
        pca_rank: 0,
        seed: Some(1),
    };
    assert!(warm_start(&shared, "train", &warm, &mut |_| {}).is_err());
    // Disjoint splits pass.
    let disjoint = with_public_split(&cohort, 5);
    check_disjoint(&disjoint, "public", "train").unwrap();
}

#[test]
fn private_defaults_draw_the_noise_from_the_os_and_the_ledger_records_the_accountant() {
    let cohort = correlated_cohort(120, 40, 0.5, 3);
    let config =
        TrainConfig { dim: 8, epochs: 1.0, batch_size: 32, group_size: 8, ..TrainConfig::private(2.0, 1e-4) };
    assert_eq!(config.seed, None, "the library's private default follows the CLI: no recorded seed");
    let heads = train_heads(&cohort, &config).unwrap();
    let ledger = &heads.ledger;
    assert!(ledger.private && ledger.dp_sgd && ledger.not_private_reason.is_none(), "{ledger:?}");
    assert_eq!(ledger.seed, None);
    // Two unseeded runs draw different noise (and so different heads).
    let again = train_heads(&cohort, &config).unwrap();
    let a = heads.project_cohort(&cohort).unwrap();
    let b = again.project_cohort(&cohort).unwrap();
    assert_ne!(a.view("image").unwrap().row(0), b.view("image").unwrap().row(0));
    // The RDP accountant over the extended grid: a larger (looser) noise multiplier for the
    // same target, its order recorded.
    let rdp = TrainConfig {
        accountant: crate::privacy::Accountant::Rdp { orders: crate::privacy::RdpOrders::Extended },
        seed: Some(5),
        ..config.clone()
    };
    let rdp_heads = train_heads(&cohort, &rdp).unwrap();
    let r = &rdp_heads.ledger;
    assert_eq!(r.accountant, "rdp_sampled_gaussian_extended_orders");
    assert!(r.best_order.is_some_and(|o| o > 1.0), "{r:?}");
    assert!(r.epsilon.unwrap() <= 2.0 + 1e-9);
    assert!(
        r.noise_multiplier > ledger.noise_multiplier,
        "RDP {} vs PLD {}",
        r.noise_multiplier,
        ledger.noise_multiplier
    );
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["accountant_parameters"], serde_json::json!({"accountant": "rdp", "orders": "extended"}));
    assert_eq!(json["private"], false);
}

#[test]
fn a_delta_of_at_least_one_over_the_training_patients_is_refused_unless_allowed() {
    let cohort = correlated_cohort(120, 40, 0.5, 3);
    // 120 training patients: delta must be below 1/120 = 8.333e-3.
    let config =
        TrainConfig { dim: 8, epochs: 1.0, batch_size: 32, group_size: 8, ..TrainConfig::private(1.0, 0.01) };
    let err = train_heads(&cohort, &config).unwrap_err().to_string();
    assert!(
        err.contains("--delta 0.01") && err.contains("1 / 120 privacy units") && err.contains("8.333e-3"),
        "{err}"
    );
    assert!(err.contains("--allow-large-delta"), "{err}");
    let noise =
        TrainConfig { privacy: Privacy::DpNoise { noise_multiplier: 1.0, delta: 0.5 }, ..config.clone() };
    assert!(train_heads(&cohort, &noise).unwrap_err().to_string().contains("1 / 120 privacy units"));
    let allowed = TrainConfig { allow_large_delta: true, ..config };
    let heads = train_heads(&cohort, &allowed).unwrap();
    assert!(heads.ledger.epsilon.unwrap() >= 0.0);
}
