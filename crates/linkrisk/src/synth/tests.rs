//! Tests of the synthetic cohorts: reproducibility, validation, and that the ground truth
//! shows in the views the way docs/METHODS.md says (brute-force nearest neighbours).

use std::collections::HashMap;
use std::sync::OnceLock;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::model::PATHOLOGIES;
use super::*;
use crate::cohort::{Label, FINDINGS};

/// 2,500 patients give about 1,000 test records: enough for stable nearest-neighbour rates.
fn ground_truth_population() -> &'static Population {
    static POPULATION: OnceLock<Population> = OnceLock::new();
    POPULATION.get_or_init(|| {
        Population::sample(&SynthConfig {
            patients: 2500,
            seed: 3,
            external_patients: 500,
            ..Default::default()
        })
        .unwrap()
    })
}

fn finding_index(name: &str) -> usize {
    FINDINGS.iter().position(|f| *f == name).unwrap()
}

/// Rows `rows` of an n x dim matrix, each scaled to unit norm.
fn unit_rows(data: &[f32], dim: usize, rows: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * dim);
    for &i in rows {
        let row = &data[i * dim..(i + 1) * dim];
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        out.extend(row.iter().map(|x| x / norm));
    }
    out
}

/// Brute-force cosine similarity of every query row with every candidate row (m x n).
fn similarity(queries: &[f32], candidates: &[f32], dim: usize) -> Vec<f32> {
    let (m, n) = (queries.len() / dim, candidates.len() / dim);
    let mut out = vec![0f32; m * n];
    matmul(
        MatMut::from_row_major_slice_mut(&mut out, m, n),
        Accum::Replace,
        MatRef::from_row_major_slice(queries, m, dim),
        MatRef::from_row_major_slice(candidates, n, dim).transpose(),
        1.0f32,
        Par::Seq,
    );
    out
}

/// Image -> report retrieval on the test split at one specialization.
struct Retrieval {
    n: usize,
    /// sim[i * n + j] = cos(image i, report j); pairs on the diagonal.
    sim: Vec<f32>,
    rows: Vec<usize>,
}

impl Retrieval {
    fn new(population: &Population, specialization: f64) -> Retrieval {
        let rows = population.metadata().rows_in_split("test").unwrap();
        let dim = population.config().dim;
        let image = unit_rows(&population.render(SynthView::Image, specialization).unwrap(), dim, &rows);
        let report = unit_rows(&population.render(SynthView::Report, specialization).unwrap(), dim, &rows);
        Retrieval { n: rows.len(), sim: similarity(&image, &report, dim), rows }
    }

    /// Candidates strictly more similar to image `i` than its own report.
    fn beaters(&self, i: usize) -> usize {
        let row = &self.sim[i * self.n..(i + 1) * self.n];
        row.iter().filter(|&&s| s > row[i]).count()
    }

    fn top1(&self) -> f64 {
        (0..self.n).filter(|&i| self.beaters(i) == 0).count() as f64 / self.n as f64
    }
}

#[test]
fn config_validation_names_the_flag() {
    let ok = SynthConfig::default();
    ok.validate().unwrap();
    let cases: Vec<(SynthConfig, &str)> = vec![
        (SynthConfig { patients: 0, ..ok.clone() }, "--patients"),
        (SynthConfig { studies_per_patient: 0, ..ok.clone() }, "--studies-per-patient"),
        (
            SynthConfig { studies_per_patient: MAX_STUDIES_PER_PATIENT + 1, ..ok.clone() },
            "--studies-per-patient",
        ),
        (SynthConfig { dim: 1, ..ok.clone() }, "--dim"),
        (SynthConfig { feature_dim: 0, ..ok.clone() }, "--feature-dim"),
        (SynthConfig { specialization: 1.5, ..ok.clone() }, "--specialization"),
        (SynthConfig { specialization: -0.1, ..ok.clone() }, "--specialization"),
        (SynthConfig { specialization: f64::NAN, ..ok.clone() }, "--specialization"),
        (SynthConfig { external_patients: MAX_PATIENTS + 1, ..ok.clone() }, "--external-patients"),
    ];
    for (config, flag) in cases {
        let err = generate(&config).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains(flag), "`{err}` should name {flag}");
    }
    let population = Population::sample(&SynthConfig { patients: 5, ..ok }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = population.write(dir.path(), 2.0).unwrap_err().to_string();
    assert!(err.contains("--specialization"), "{err}");
    let err = population.render(SynthView::Image, -1.0).unwrap_err().to_string();
    assert!(err.contains("--specialization"), "{err}");
}

#[test]
fn same_seed_is_identical_on_one_and_two_threads_and_other_seeds_differ() {
    let config =
        SynthConfig { patients: 300, external_patients: 60, dim: 24, feature_dim: 40, ..Default::default() };
    let on = |threads: usize, config: &SynthConfig| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| generate(config).unwrap())
    };
    let one = on(1, &config);
    let two = on(2, &config);
    assert_eq!(one.metadata, two.metadata);
    for ((name, _, a), (_, _, b)) in one.views().iter().zip(two.views().iter()) {
        assert_eq!(a.len(), b.len(), "{name}");
        assert!(
            a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits()),
            "view {name} differs by threads"
        );
    }
    let other = on(2, &SynthConfig { seed: 1, ..config.clone() });
    assert_ne!(one.metadata.findings, other.metadata.findings);
    for ((name, _, a), (_, _, b)) in one.views().iter().zip(other.views().iter()) {
        assert!(a.iter().zip(b.iter()).filter(|(x, y)| x != y).count() > a.len() / 2, "view {name}");
    }
}

#[test]
fn streaming_write_equals_in_memory_write_and_loads_back() {
    let config =
        SynthConfig { patients: 120, external_patients: 30, dim: 16, feature_dim: 24, ..Default::default() };
    let memory = generate(&config).unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let summary = memory.write(a.path()).unwrap();
    let mut streamed = generate_to_dir(&config, b.path()).unwrap();
    assert_eq!(streamed.dir, b.path());
    streamed.dir = a.path().to_path_buf();
    assert_eq!(summary, streamed);
    for file in ["metadata.csv", "image.npy", "report.npy", "image_features.npy", "report_features.npy"] {
        let x = std::fs::read(a.path().join(file)).unwrap();
        let y = std::fs::read(b.path().join(file)).unwrap();
        assert!(x == y, "{file} differs between the streaming and the in-memory writer");
    }
    let loaded = Cohort::load(a.path()).unwrap();
    let in_memory = memory.to_cohort().unwrap();
    assert_eq!(loaded.metadata, in_memory.metadata);
    assert_eq!(loaded.view_names(), vec!["image", "image_features", "report", "report_features"]);
    for name in loaded.view_names() {
        assert_eq!(loaded.view(name).unwrap().rows(), in_memory.view(name).unwrap().rows(), "{name}");
    }
    assert_eq!(summary.records, memory.len());
    assert_eq!(summary.splits.iter().map(|s| s.records).sum::<usize>(), memory.len());
    assert_eq!(summary.splits.iter().find(|s| s.name == "external").unwrap().patients, 30);
}

#[test]
fn splits_are_disjoint_by_patient_and_studies_follow_the_distribution() {
    let population = ground_truth_population();
    let meta = population.metadata();
    let mut split_of: HashMap<u32, u16> = HashMap::new();
    let mut studies: HashMap<u32, usize> = HashMap::new();
    for i in 0..meta.len() {
        let previous = split_of.insert(meta.patient[i], meta.split[i]);
        assert!(previous.is_none_or(|s| s == meta.split[i]), "patient {} in two splits", meta.patient_ids[i]);
        *studies.entry(meta.patient[i]).or_default() += 1;
    }
    assert_eq!(meta.n_patients, 3000);
    assert_eq!(meta.n_studies, meta.len(), "one record per study");
    let patients_in = |name: &str| {
        let s = meta.split_index(name).unwrap();
        split_of.values().filter(|&&x| x == s).count()
    };
    assert_eq!(patients_in("external"), 500);
    let test_fraction = patients_in("test") as f64 / 2500.0;
    assert!((test_fraction - 0.2).abs() < 0.03, "test fraction {test_fraction}");
    assert!(studies.values().all(|&k| (1..=5).contains(&k)));
    // P(1 study) = 1 / (1 + 0.6 + 0.36 + 0.216 + 0.1296) = 0.4337.
    let single = studies.values().filter(|&&k| k == 1).count() as f64 / studies.len() as f64;
    assert!((single - 0.4337).abs() < 0.03, "single-study fraction {single}");
    let one_each =
        Population::sample(&SynthConfig { patients: 50, studies_per_patient: 1, ..Default::default() })
            .unwrap();
    assert_eq!(one_each.len(), 50 + 800);
}

#[test]
fn findings_have_the_documented_prevalence_and_structure() {
    let population = ground_truth_population();
    let meta = population.metadata();
    let findings = meta.findings.as_ref().unwrap();
    let rows = |split: &str| meta.rows_in_split(split).unwrap();
    let internal: Vec<usize> = rows("train").into_iter().chain(rows("test")).collect();
    let prevalence = |rows: &[usize], k: usize| {
        rows.iter().filter(|&&i| findings[i][k] == Label::Positive).count() as f64 / rows.len() as f64
    };
    for (k, pathology) in PATHOLOGIES.iter().enumerate() {
        let observed = prevalence(&internal, k + 1);
        let tolerance = 0.02 + 0.15 * pathology.prevalence;
        assert!(
            (observed - pathology.prevalence).abs() < tolerance,
            "{}: prevalence {observed} vs model {}",
            pathology.name,
            pathology.prevalence
        );
    }
    let [devices, opacity, effusion, fracture, other] =
        ["Support Devices", "Lung Opacity", "Pleural Effusion", "Fracture", "Pleural Other"]
            .map(|f| prevalence(&internal, finding_index(f)));
    assert!(devices > fracture && opacity > fracture && effusion > other && fracture > other);
    // Every label kind occurs, and No Finding agrees with the other columns.
    for label in [Label::Positive, Label::Negative, Label::Uncertain, Label::Blank] {
        assert!(findings.iter().flatten().any(|&l| l == label), "no {label:?} labels");
    }
    let devices_column = finding_index("Support Devices");
    for labels in findings {
        let abnormal = (1..FINDINGS.len())
            .filter(|&k| k != devices_column)
            .any(|k| matches!(labels[k], Label::Positive | Label::Uncertain));
        let expected = if abnormal { Label::Blank } else { Label::Positive };
        assert_eq!(labels[0], expected, "No Finding inconsistent with {labels:?}");
    }
    // Findings correlate: effusion is more common among studies with cardiomegaly.
    let cardiomegaly = finding_index("Cardiomegaly");
    let effusion_col = finding_index("Pleural Effusion");
    let with: Vec<usize> =
        internal.iter().copied().filter(|&i| findings[i][cardiomegaly] == Label::Positive).collect();
    assert!(prevalence(&with, effusion_col) > 1.5 * effusion, "no cardiomegaly-effusion correlation");
}

#[test]
fn external_split_is_shifted() {
    let population = ground_truth_population();
    let meta = population.metadata();
    let findings = meta.findings.as_ref().unwrap();
    let devices = finding_index("Support Devices");
    let rate = |rows: &[usize]| {
        rows.iter().filter(|&&i| findings[i][devices] == Label::Positive).count() as f64 / rows.len() as f64
    };
    let (train, test, external) = (
        meta.rows_in_split("train").unwrap(),
        meta.rows_in_split("test").unwrap(),
        meta.rows_in_split("external").unwrap(),
    );
    assert!(rate(&external) > rate(&train) + 0.08, "external {} vs train {}", rate(&external), rate(&train));
    // Domain shift in the features: the external centroid is far from train's; test's is not.
    let dim = population.config().dim;
    let image = population.render(SynthView::Image, 0.5).unwrap();
    let centroid = |rows: &[usize]| {
        let unit = unit_rows(&image, dim, rows);
        let mut c = vec![0f64; dim];
        for row in unit.chunks(dim) {
            c.iter_mut().zip(row).for_each(|(a, &b)| *a += f64::from(b) / rows.len() as f64);
        }
        c
    };
    let distance = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let (c_train, c_test, c_external) = (centroid(&train), centroid(&test), centroid(&external));
    let (shift, noise) = (distance(&c_train, &c_external), distance(&c_train, &c_test));
    eprintln!("centroid distance train-external {shift:.3}, train-test {noise:.3}");
    assert!(shift > 3.0 * noise, "external shift {shift} vs train-test {noise}");
}

#[test]
fn specialization_raises_relinkage_and_it_is_above_chance_at_zero() {
    let population = ground_truth_population();
    let top1: Vec<f64> = [0.0, 0.5, 1.0].iter().map(|&s| Retrieval::new(population, s).top1()).collect();
    let n = population.metadata().rows_in_split("test").unwrap().len() as f64;
    eprintln!("image->report top-1 at s = 0, 0.5, 1: {top1:?} over {n} test records");
    assert!(top1[0] > 5.0 / n, "top-1 at s=0 {} vs chance {}", top1[0], 1.0 / n);
    assert!(top1[0] < top1[1] && top1[1] < top1[2], "top-1 by specialization {top1:?}");
    assert!(top1[2] > 0.15, "top-1 at s=1 {}", top1[2]);
}

/// Within candidate sets that share the query's positive findings, top-1 is lower than in
/// random sets of the same size (exact hypergeometric expectation from the full ranks), and
/// still well above chance: instance detail exists beyond the labels.
#[test]
fn pathology_matched_candidates_lower_but_do_not_remove_the_signal() {
    let population = ground_truth_population();
    let findings = population.metadata().findings.as_ref().unwrap();
    for s in [0.5, 1.0] {
        let retrieval = Retrieval::new(population, s);
        let n = retrieval.n;
        let key = |i: usize| findings[retrieval.rows[i]].map(|l| l == Label::Positive);
        let mut groups: HashMap<[bool; 14], Vec<usize>> = HashMap::new();
        for i in 0..n {
            groups.entry(key(i)).or_default().push(i);
        }
        let (mut matched, mut random, mut chance, mut queries) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..n {
            let group = &groups[&key(i)];
            if group.len() < 2 {
                continue;
            }
            let row = &retrieval.sim[i * n..(i + 1) * n];
            matched += f64::from(u8::from(group.iter().all(|&j| j == i || row[j] <= row[i])));
            let beaters = retrieval.beaters(i);
            // P(no beater among group.len() - 1 candidates drawn from the other n - 1).
            random += (0..group.len() - 1)
                .map(|t| (n - 1 - beaters).saturating_sub(t) as f64 / (n - 1 - t) as f64)
                .product::<f64>();
            chance += 1.0 / group.len() as f64;
            queries += 1.0;
        }
        let (matched, random, chance) = (matched / queries, random / queries, chance / queries);
        eprintln!("s={s}: matched top-1 {matched:.3}, random pools {random:.3}, chance {chance:.3}, {queries} queries");
        assert!(queries > 0.8 * n as f64);
        assert!(matched < random - 0.03, "s={s}: matched {matched} vs random pools {random}");
        assert!(matched > 2.0 * chance, "s={s}: matched {matched} vs chance {chance}");
    }
}

#[test]
fn patients_are_reidentifiable_from_images_more_than_from_reports() {
    let population = ground_truth_population();
    let meta = population.metadata();
    let rows = meta.rows_in_split("test").unwrap();
    let dim = population.config().dim;
    let patient: Vec<u32> = rows.iter().map(|&i| meta.patient[i]).collect();
    let rank1 = |view: SynthView| {
        let unit = unit_rows(&population.render(view, 0.5).unwrap(), dim, &rows);
        let sim = similarity(&unit, &unit, dim);
        let n = rows.len();
        let (mut hits, mut queries, mut chance) = (0usize, 0usize, 0.0);
        for i in 0..n {
            let same = patient.iter().filter(|&&p| p == patient[i]).count() - 1;
            if same == 0 {
                continue;
            }
            let row = &sim[i * n..(i + 1) * n];
            let nearest = (0..n).filter(|&j| j != i).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            hits += usize::from(patient[nearest] == patient[i]);
            queries += 1;
            chance += same as f64 / (n - 1) as f64;
        }
        (hits as f64 / queries as f64, chance / queries as f64)
    };
    let (image, chance) = rank1(SynthView::Image);
    let (report, _) = rank1(SynthView::Report);
    eprintln!("re-ID rank-1: image {image:.3}, report {report:.3}, chance {chance:.5}");
    assert!(image > 0.15 && image > 50.0 * chance, "image re-ID {image} (chance {chance})");
    assert!(report < image / 2.0, "report re-ID {report} vs image {image}");
}

/// Area under the ROC curve by the rank-sum statistic (ties count half).
fn auroc(scores: &[f64], positive: &[bool]) -> f64 {
    let (mut pairs, mut wins) = (0.0, 0.0);
    for (i, &a) in scores.iter().enumerate() {
        for (j, &b) in scores.iter().enumerate() {
            if positive[i] && !positive[j] {
                pairs += 1.0;
                wins += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    wins / pairs
}

#[test]
fn sex_leaks_weakly_into_images_and_not_into_reports() {
    let population = ground_truth_population();
    let meta = population.metadata();
    let dim = population.config().dim;
    let sex = meta.sex.as_ref().unwrap();
    let female = |i: usize| sex[i].as_deref() == Some("F");
    let (train, test) = (meta.rows_in_split("train").unwrap(), meta.rows_in_split("test").unwrap());
    // Probe: the difference of class means on train, scored on test.
    let probe_auroc = |view: SynthView| {
        let data = population.render(view, 0.5).unwrap();
        let train_rows = unit_rows(&data, dim, &train);
        let mut direction = vec![0f64; dim];
        let n_female = train.iter().filter(|&&i| female(i)).count() as f64;
        let n_male = train.len() as f64 - n_female;
        for (r, &i) in train.iter().enumerate() {
            let w = if female(i) { 1.0 / n_female } else { -1.0 / n_male };
            direction
                .iter_mut()
                .zip(&train_rows[r * dim..(r + 1) * dim])
                .for_each(|(d, &x)| *d += w * f64::from(x));
        }
        let test_rows = unit_rows(&data, dim, &test);
        let scores: Vec<f64> = test_rows
            .chunks(dim)
            .map(|row| row.iter().zip(&direction).map(|(&x, d)| f64::from(x) * d).sum())
            .collect();
        auroc(&scores, &test.iter().map(|&i| female(i)).collect::<Vec<_>>())
    };
    let image = probe_auroc(SynthView::Image);
    let report = probe_auroc(SynthView::Report);
    eprintln!("sex AUROC (mean-difference probe): image {image:.3}, report {report:.3}");
    assert!((0.6..0.9).contains(&image), "sex AUROC from images {image}");
    assert!((report - 0.5).abs() < 0.08, "sex AUROC from reports {report}");
}

#[test]
fn auroc_helper_matches_a_hand_count() {
    // 2 positives x 2 negatives: (0.9 > 0.1, 0.9 > 0.4, 0.4 = 0.4 half, 0.4 > 0.1) = 3.5 / 4.
    assert_eq!(auroc(&[0.9, 0.4, 0.4, 0.1], &[true, true, false, false]), 0.875);
}

#[test]
fn a_larger_cohort_extends_a_smaller_one() {
    let small =
        Population::sample(&SynthConfig { patients: 100, external_patients: 10, ..Default::default() })
            .unwrap();
    let large =
        Population::sample(&SynthConfig { patients: 160, external_patients: 10, ..Default::default() })
            .unwrap();
    let internal = |p: &Population| {
        p.metadata().split.iter().filter(|&&s| p.metadata().split_names[s as usize] != "external").count()
    };
    let n = internal(&small);
    let rows: Vec<usize> = (0..n).collect();
    assert_eq!(small.metadata().select(&rows).unwrap(), large.metadata().select(&rows).unwrap());
    assert_eq!(
        small.image_latent[..n * super::population::image_cols::LEN],
        large.image_latent[..n * super::population::image_cols::LEN]
    );
    let external = |p: &Population| p.metadata().rows_in_split("external").unwrap();
    let (a, b) = (external(&small), external(&large));
    assert_eq!(small.metadata().select(&a).unwrap().findings, large.metadata().select(&b).unwrap().findings);
}
