//! What a cohort holds, in numbers: records, patients, studies per patient, views, splits
//! (with patients shared between splits, a leakage warning), finding prevalence and
//! demographics. `linkrisk inspect` prints it; its JSON is this struct serialised.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::metadata::{Label, Metadata, FINDINGS};
use super::npy::Dtype;
use super::Cohort;

/// Summary of a validated cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortSummary {
    /// The cohort directory.
    pub dir: PathBuf,
    /// The metadata file read (None for cohorts built in memory).
    pub metadata_file: Option<PathBuf>,
    /// The `cohort.toml` manifest, when there is one.
    pub manifest: Option<PathBuf>,
    /// Number of records (rows of the metadata and of every view).
    pub records: usize,
    /// Number of distinct patients.
    pub patients: usize,
    /// Number of distinct studies (a study is a (patient, study_id) pair; without a
    /// `study_id` column every record is its own study).
    pub studies: usize,
    /// Whether the metadata has a `study_id` column.
    pub has_study_column: bool,
    /// How many studies each patient has.
    pub studies_per_patient: CountDistribution,
    /// The views, sorted by name.
    pub views: Vec<ViewSummary>,
    /// Whether the metadata has a `split` column (otherwise every record is in `test`).
    pub has_split_column: bool,
    /// Records, patients and studies per split, in order of first appearance.
    pub splits: Vec<SplitSummary>,
    /// Pairs of splits that share patients (only pairs sharing at least one).
    pub shared_patients: Vec<SharedPatients>,
    /// Patients with records in more than one split.
    pub patients_in_several_splits: usize,
    /// Counts per CheXpert finding, in CheXpert order (None without finding columns).
    pub findings: Option<Vec<FindingSummary>>,
    /// Sex, race and age.
    pub demographics: Demographics,
    /// Metadata columns present but not used by linkrisk.
    pub extra_columns: Vec<String>,
    /// Files in the directory that are neither metadata, manifest nor view sources.
    pub ignored_files: Vec<PathBuf>,
    /// Containers whose record ids were checked against the metadata order (`file:member`).
    pub ids_checked: Vec<String>,
    /// Things a reviewer should look at (e.g. patients shared between splits).
    pub warnings: Vec<String>,
}

/// Distribution of a per-patient count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountDistribution {
    /// Smallest count.
    pub min: usize,
    /// Median count (mean of the two middle values for an even number of patients).
    pub median: f64,
    /// Mean count.
    pub mean: f64,
    /// Largest count.
    pub max: usize,
    /// Patients per bin of counts, up to the bin holding the largest count.
    pub histogram: Vec<HistogramBin>,
}

/// One histogram bin: patients with `low..=high` studies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistogramBin {
    /// Label, e.g. `3` or `6-10` or `51+`.
    pub label: String,
    /// Smallest count in the bin.
    pub low: usize,
    /// Largest count in the bin (None: unbounded).
    pub high: Option<usize>,
    /// Patients whose count falls in the bin.
    pub patients: usize,
}

/// One view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewSummary {
    /// View name.
    pub name: String,
    /// File it was read from.
    pub file: PathBuf,
    /// Member, tensor or column inside a container.
    pub member: Option<String>,
    /// Element type in the file (converted to float32 at load).
    pub dtype: Dtype,
    /// (records, dimension).
    pub shape: [usize; 2],
    /// Smallest L2 norm of a row before normalisation.
    pub norm_min: f32,
    /// Largest L2 norm of a row before normalisation.
    pub norm_max: f32,
}

/// One split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitSummary {
    /// Split name (`train`, `test`, `external`, ...).
    pub name: String,
    /// Records in the split.
    pub records: usize,
    /// Distinct patients in the split.
    pub patients: usize,
    /// Distinct studies in the split.
    pub studies: usize,
}

/// Patients found in both of two splits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedPatients {
    /// The two splits.
    pub splits: [String; 2],
    /// Patients with records in both.
    pub patients: usize,
}

/// Label counts of one finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingSummary {
    /// CheXpert finding name.
    pub finding: String,
    /// Records labelled 1.
    pub positive: usize,
    /// Records labelled 0.
    pub negative: usize,
    /// Records labelled -1.
    pub uncertain: usize,
    /// Records with a blank cell.
    pub blank: usize,
    /// positive / records.
    pub prevalence: f64,
}

/// Demographic columns, counted over records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Demographics {
    /// `sex` values (None without the column).
    pub sex: Option<CategoryCounts>,
    /// `race` values (None without the column).
    pub race: Option<CategoryCounts>,
    /// `age` in years (None without the column).
    pub age: Option<AgeSummary>,
}

/// Counts of a categorical column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryCounts {
    /// (value, records), most frequent first, ties by value.
    pub counts: Vec<CategoryCount>,
    /// Records with a blank cell.
    pub missing: usize,
}

/// One category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    /// The value as written.
    pub value: String,
    /// Records with it.
    pub records: usize,
}

/// Age statistics over records with an age.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeSummary {
    /// Youngest (None when every cell is blank).
    pub min: Option<f64>,
    /// Mean (None when every cell is blank).
    pub mean: Option<f64>,
    /// Oldest (None when every cell is blank).
    pub max: Option<f64>,
    /// Records with an age.
    pub present: usize,
    /// Records with a blank cell.
    pub missing: usize,
}

/// Bins of the studies-per-patient histogram: exact counts 1-5, then ranges.
const BINS: [(usize, Option<usize>); 9] = [
    (1, Some(1)),
    (2, Some(2)),
    (3, Some(3)),
    (4, Some(4)),
    (5, Some(5)),
    (6, Some(10)),
    (11, Some(20)),
    (21, Some(50)),
    (51, None),
];

impl CohortSummary {
    /// Summarise `cohort`.
    pub fn of(cohort: &Cohort) -> CohortSummary {
        let m = &cohort.metadata;
        let notes = cohort.load_notes();
        let studies_per_patient = distribution(&studies_per_patient(m));
        let views = cohort
            .views()
            .map(|v| ViewSummary {
                name: v.name().to_string(),
                file: v.source().path.clone(),
                member: v.source().member.clone(),
                dtype: v.source().dtype,
                shape: [v.n(), v.dim()],
                norm_min: v.norms().iter().copied().fold(f32::INFINITY, f32::min),
                norm_max: v.norms().iter().copied().fold(0.0, f32::max),
            })
            .collect();
        let (splits, shared_patients, patients_in_several_splits) = splits(m);
        let mut warnings = Vec::new();
        if patients_in_several_splits > 0 {
            let pairs: Vec<String> = shared_patients
                .iter()
                .map(|s| format!("{}/{}: {}", s.splits[0], s.splits[1], s.patients))
                .collect();
            warnings.push(format!(
                "{patients_in_several_splits} patients have records in more than one split ({}); a model trained on one split \
                 and audited on another sees these patients twice (patient-level leakage): split by patient",
                pairs.join(", ")
            ));
        }
        CohortSummary {
            dir: cohort.dir.clone(),
            metadata_file: notes.metadata_file.clone(),
            manifest: notes.manifest.clone(),
            records: m.len(),
            patients: m.n_patients,
            studies: m.n_studies,
            has_study_column: m.study_ids.is_some(),
            studies_per_patient,
            views,
            has_split_column: m.has_split_column,
            splits,
            shared_patients,
            patients_in_several_splits,
            findings: m.findings.as_ref().map(|f| findings(f)),
            demographics: Demographics {
                sex: m.sex.as_ref().map(|v| categories(v)),
                race: m.race.as_ref().map(|v| categories(v)),
                age: m.age.as_ref().map(|v| age(v)),
            },
            extra_columns: m.extra_columns.clone(),
            ignored_files: notes.ignored_files.clone(),
            ids_checked: notes
                .ids_checked
                .iter()
                .map(|c| format!("{}:{}", c.file.display(), c.member))
                .collect(),
            warnings,
        }
    }
}

/// Number of distinct studies of each patient.
fn studies_per_patient(m: &Metadata) -> Vec<usize> {
    let mut patient_of_study = vec![u32::MAX; m.n_studies];
    for (i, &s) in m.study.iter().enumerate() {
        patient_of_study[s as usize] = m.patient[i];
    }
    let mut counts = vec![0usize; m.n_patients];
    for p in patient_of_study {
        counts[p as usize] += 1;
    }
    counts
}

fn distribution(counts: &[usize]) -> CountDistribution {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let median = if n == 0 {
        0.0
    } else if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0
    };
    let max = sorted.last().copied().unwrap_or(0);
    let mut histogram = Vec::new();
    for (low, high) in BINS {
        if low > max {
            break;
        }
        let patients = sorted.iter().filter(|&&c| c >= low && high.is_none_or(|h| c <= h)).count();
        let label = match high {
            Some(h) if h == low => low.to_string(),
            Some(h) => format!("{low}-{h}"),
            None => format!("{low}+"),
        };
        histogram.push(HistogramBin { label, low, high, patients });
    }
    CountDistribution {
        min: sorted.first().copied().unwrap_or(0),
        median,
        mean: if n == 0 { 0.0 } else { sorted.iter().sum::<usize>() as f64 / n as f64 },
        max,
        histogram,
    }
}

fn splits(m: &Metadata) -> (Vec<SplitSummary>, Vec<SharedPatients>, usize) {
    let k = m.split_names.len();
    // in_split[p * k + s]: patient p has a record in split s.
    let mut in_split = vec![false; m.n_patients * k];
    let mut study_in_split = vec![false; m.n_studies * k];
    let mut records = vec![0usize; k];
    for i in 0..m.len() {
        let s = m.split[i] as usize;
        records[s] += 1;
        in_split[m.patient[i] as usize * k + s] = true;
        study_in_split[m.study[i] as usize * k + s] = true;
    }
    let count = |flags: &[bool], s: usize| flags.chunks(k).filter(|row| row[s]).count();
    let summaries = (0..k)
        .map(|s| SplitSummary {
            name: m.split_names[s].clone(),
            records: records[s],
            patients: count(&in_split, s),
            studies: count(&study_in_split, s),
        })
        .collect();
    let mut shared = Vec::new();
    for a in 0..k {
        for b in a + 1..k {
            let patients = in_split.chunks(k).filter(|row| row[a] && row[b]).count();
            if patients > 0 {
                shared.push(SharedPatients {
                    splits: [m.split_names[a].clone(), m.split_names[b].clone()],
                    patients,
                });
            }
        }
    }
    let several = in_split.chunks(k.max(1)).filter(|row| row.iter().filter(|&&x| x).count() > 1).count();
    (summaries, shared, several)
}

fn findings(labels: &[[Label; FINDINGS.len()]]) -> Vec<FindingSummary> {
    let n = labels.len();
    FINDINGS
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let count = |l: Label| labels.iter().filter(|row| row[k] == l).count();
            let positive = count(Label::Positive);
            FindingSummary {
                finding: name.to_string(),
                positive,
                negative: count(Label::Negative),
                uncertain: count(Label::Uncertain),
                blank: count(Label::Blank),
                prevalence: if n == 0 { 0.0 } else { positive as f64 / n as f64 },
            }
        })
        .collect()
}

fn categories(values: &[Option<String>]) -> CategoryCounts {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut missing = 0;
    for v in values {
        match v {
            Some(v) => *counts.entry(v.as_str()).or_default() += 1,
            None => missing += 1,
        }
    }
    let mut counts: Vec<CategoryCount> = counts
        .into_iter()
        .map(|(value, records)| CategoryCount { value: value.to_string(), records })
        .collect();
    counts.sort_by(|a, b| b.records.cmp(&a.records).then_with(|| a.value.cmp(&b.value)));
    CategoryCounts { counts, missing }
}

fn age(values: &[Option<f64>]) -> AgeSummary {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let n = present.len();
    AgeSummary {
        min: present.iter().copied().reduce(f64::min),
        mean: (n > 0).then(|| present.iter().sum::<f64>() / n as f64),
        max: present.iter().copied().reduce(f64::max),
        present: n,
        missing: values.len() - n,
    }
}

#[cfg(test)]
mod tests {
    use super::super::metadata::MetadataBuilder;
    use super::super::View;
    use super::*;

    fn cohort() -> Cohort {
        // Patients: p1 has 3 studies (train, train, test), p2 has 1 (test), p3 has 2 studies
        // of which one has two records (external).
        let b = MetadataBuilder {
            ids: ["a", "b", "c", "d", "e", "f", "g"].map(String::from).to_vec(),
            patient_ids: ["p1", "p1", "p1", "p2", "p3", "p3", "p3"].map(String::from).to_vec(),
            study_ids: Some(["s1", "s2", "s3", "s1", "s1", "s1", "s2"].map(String::from).to_vec()),
            splits: Some(
                ["train", "train", "test", "test", "external", "external", "external"]
                    .map(String::from)
                    .to_vec(),
            ),
            sex: Some(vec![
                Some("F".into()),
                Some("F".into()),
                None,
                Some("M".into()),
                None,
                None,
                Some("M".into()),
            ]),
            age: Some(vec![Some(50.0), None, Some(70.0), Some(30.0), None, None, None]),
            ..Default::default()
        };
        let meta = b.build(std::path::Path::new("m.csv"), 2).unwrap();
        let data: Vec<f32> = (0..14).map(|i| 1.0 + i as f32).collect();
        Cohort::from_parts("c", meta, vec![View::from_memory("image", 7, 2, data).unwrap()]).unwrap()
    }

    #[test]
    fn counts_by_hand() {
        let s = CohortSummary::of(&cohort());
        assert_eq!((s.records, s.patients, s.studies), (7, 3, 6));
        let d = &s.studies_per_patient;
        assert_eq!((d.min, d.median, d.max), (1, 2.0, 3));
        assert!((d.mean - 2.0).abs() < 1e-12);
        let bins: Vec<(&str, usize)> = d.histogram.iter().map(|b| (b.label.as_str(), b.patients)).collect();
        assert_eq!(bins, [("1", 1), ("2", 1), ("3", 1)]);
        let splits: Vec<(&str, usize, usize, usize)> =
            s.splits.iter().map(|x| (x.name.as_str(), x.records, x.patients, x.studies)).collect();
        assert_eq!(splits, [("train", 2, 1, 2), ("test", 2, 2, 2), ("external", 3, 1, 2)]);
        assert_eq!(
            s.shared_patients,
            [SharedPatients { splits: ["train".into(), "test".into()], patients: 1 }]
        );
        assert_eq!(s.patients_in_several_splits, 1);
        assert!(s.warnings[0].contains("train/test: 1"), "{:?}", s.warnings);
        let sex = s.demographics.sex.unwrap();
        assert_eq!(sex.missing, 3);
        assert_eq!(
            sex.counts,
            [
                CategoryCount { value: "F".into(), records: 2 },
                CategoryCount { value: "M".into(), records: 2 }
            ]
        );
        let age = s.demographics.age.unwrap();
        assert_eq!(
            (age.min, age.mean, age.max, age.present, age.missing),
            (Some(30.0), Some(50.0), Some(70.0), 3, 4)
        );
        assert_eq!(s.views[0].shape, [7, 2]);
        assert!((s.views[0].norm_min - (1f32 + 4.0).sqrt()).abs() < 1e-6);
    }

    #[test]
    fn histogram_ranges_and_even_median() {
        let d = distribution(&[1, 1, 7, 60]);
        assert_eq!(d.median, 4.0);
        let bins: Vec<(&str, usize)> = d.histogram.iter().map(|b| (b.label.as_str(), b.patients)).collect();
        assert_eq!(
            bins,
            [
                ("1", 2),
                ("2", 0),
                ("3", 0),
                ("4", 0),
                ("5", 0),
                ("6-10", 1),
                ("11-20", 0),
                ("21-50", 0),
                ("51+", 1)
            ]
        );
    }
}
