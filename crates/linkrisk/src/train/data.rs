//! Training records laid out for batching: the train split's feature rows regrouped so each
//! patient's records are contiguous, with the patient's own id (which the public grouping
//! rule hashes) and study per record.

use std::ops::Range;

use super::batch::Batch;
use super::dpsgd::group_of;
use super::real::Real;
use crate::cohort::Cohort;
use crate::error::{Error, Result};

/// The training split, patient by patient.
#[derive(Debug, Clone)]
pub(crate) struct TrainData<T> {
    pub image_dim: usize,
    pub report_dim: usize,
    /// Image features, one row per record, patients contiguous.
    pub image: Vec<T>,
    /// Report features, same row order.
    pub report: Vec<T>,
    /// Study index per row.
    pub study: Vec<u32>,
    /// Row range of each training patient.
    pub patient_rows: Vec<Range<usize>>,
    /// Each training patient's id as given in metadata.csv.
    pub patient_ids: Vec<String>,
}

impl<T: Real> TrainData<T> {
    /// The records of split `split` of `cohort`, from views `image_view` and `report_view`
    /// (rows as the cohort holds them: L2-normalised).
    pub fn from_cohort(cohort: &Cohort, image_view: &str, report_view: &str, split: &str) -> Result<Self> {
        let image = cohort.view(image_view)?;
        let report = cohort.view(report_view)?;
        let meta = &cohort.metadata;
        let split_index = meta.split_index(split).map_err(|_| {
            Error::input(
                &cohort.dir,
                format!(
                    "no records in split `{split}` (this cohort's splits: {}); heads are trained on the \
                     `{split}` split only: add a `split` column to metadata.csv marking the training records",
                    meta.split_names.join(", ")
                ),
            )
        })?;
        // Patients in order of first appearance in the split, records in row order.
        let mut local_of = vec![u32::MAX; meta.n_patients];
        let mut rows_of: Vec<Vec<usize>> = Vec::new();
        for i in 0..meta.len() {
            if meta.split[i] != split_index {
                continue;
            }
            let p = meta.patient[i] as usize;
            if local_of[p] == u32::MAX {
                local_of[p] = rows_of.len() as u32;
                rows_of.push(Vec::new());
            }
            rows_of[local_of[p] as usize].push(i);
        }
        let n_rows: usize = rows_of.iter().map(Vec::len).sum();
        let (di, dr) = (image.dim(), report.dim());
        let mut data = TrainData {
            image_dim: di,
            report_dim: dr,
            image: Vec::with_capacity(n_rows * di),
            report: Vec::with_capacity(n_rows * dr),
            study: Vec::with_capacity(n_rows),
            patient_rows: Vec::with_capacity(rows_of.len()),
            patient_ids: Vec::with_capacity(rows_of.len()),
        };
        for rows in &rows_of {
            let start = data.study.len();
            for &i in rows {
                data.image.extend(image.row(i).iter().map(|&v| T::of(f64::from(v))));
                data.report.extend(report.row(i).iter().map(|&v| T::of(f64::from(v))));
                data.study.push(meta.study[i]);
            }
            data.patient_rows.push(start..data.study.len());
            data.patient_ids.push(meta.patient_ids[rows[0]].clone());
        }
        Ok(data)
    }
}

impl TrainData<f32> {
    /// Replace the features by their public projection (rank-dimensional rows).
    pub fn project(&mut self, projection: &super::projection::PublicProjection) -> Result<()> {
        use super::model::Side;
        for (side, dim, name) in
            [(Side::Image, self.image_dim, "image"), (Side::Report, self.report_dim, "report")]
        {
            let want = projection.side(side).in_dim;
            if dim != want {
                return Err(Error::config(format!(
                    "the public projection was fitted on {want}-d {name} features, but these have {dim} dimensions"
                )));
            }
        }
        self.image = projection.apply(Side::Image, &self.image);
        self.report = projection.apply(Side::Report, &self.report);
        self.image_dim = projection.image.rank;
        self.report_dim = projection.report.rank;
        Ok(())
    }
}

impl<T: Copy> TrainData<T> {
    pub fn n_patients(&self) -> usize {
        self.patient_rows.len()
    }

    pub fn n_records(&self) -> usize {
        self.study.len()
    }

    /// A batch holding `groups` (each a list of patients), in that order.
    pub fn batch<'a>(&self, groups: impl IntoIterator<Item = &'a [u32]> + Clone) -> Batch<T> {
        let rows: usize = groups
            .clone()
            .into_iter()
            .flat_map(|g| g.iter())
            .map(|&p| self.patient_rows[p as usize].len())
            .sum();
        let mut batch = Batch {
            image: Vec::with_capacity(rows * self.image_dim),
            report: Vec::with_capacity(rows * self.report_dim),
            study: Vec::with_capacity(rows),
            groups: Vec::new(),
        };
        for patients in groups {
            let start = batch.study.len();
            for &p in patients {
                let rows = self.patient_rows[p as usize].clone();
                batch
                    .image
                    .extend_from_slice(&self.image[rows.start * self.image_dim..rows.end * self.image_dim]);
                batch.report.extend_from_slice(
                    &self.report[rows.start * self.report_dim..rows.end * self.report_dim],
                );
                batch.study.extend_from_slice(&self.study[rows]);
            }
            batch.groups.push(start..batch.study.len());
        }
        batch
    }

    /// The DP-SGD batch of `sampled` patients at `step`: split into at most `n_groups`
    /// groups by the keyed hash of each patient's id (empty groups are left out; they
    /// contribute nothing). Within a group patients keep their index order.
    pub fn dp_batch(&self, sampled: &[u32], key: &[u8; 32], step: u64, n_groups: usize) -> Batch<T> {
        let mut keyed: Vec<(usize, u32)> = sampled
            .iter()
            .map(|&p| (group_of(key, step, &self.patient_ids[p as usize], n_groups), p))
            .collect();
        keyed.sort_unstable();
        let patients: Vec<u32> = keyed.iter().map(|&(_, p)| p).collect();
        let mut groups = Vec::new();
        let mut start = 0;
        for k in 1..=keyed.len() {
            if k == keyed.len() || keyed[k].0 != keyed[start].0 {
                groups.push(&patients[start..k]);
                start = k;
            }
        }
        self.batch(groups)
    }
}
