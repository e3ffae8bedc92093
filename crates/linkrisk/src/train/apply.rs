//! Applying trained heads: project features or a whole cohort, and write the projected
//! cohort with its `privacy.json` ledger (`linkrisk train-heads`, `linkrisk apply-heads`).
//! Every path goes through the same folded model ([`TrainedHeads`]'s `applied`), so a
//! cohort projected in memory by `mitigate` and one written by `apply-heads` from exported
//! heads hold the same bits.

use std::path::Path;

use super::model::Side;
use super::TrainedHeads;
use crate::cohort::{Cohort, View};
use crate::error::{Error, Result};

impl TrainedHeads {
    /// Dimension of the shared output space.
    pub fn dim(&self) -> usize {
        self.applied.layout.out_dim()
    }

    /// Input dimension of the image head.
    pub fn image_input_dim(&self) -> usize {
        self.applied.layout.in_dim(Side::Image)
    }

    /// Input dimension of the report head.
    pub fn report_input_dim(&self) -> usize {
        self.applied.layout.in_dim(Side::Report)
    }

    /// The temperature at the end of training.
    pub fn temperature(&self) -> f64 {
        self.applied.temperature()
    }

    /// Apply the image head to `features` (rows x image_input_dim, row-major; pass rows as
    /// the cohort holds them, L2-normalised). Returns rows x dim, each row of unit norm.
    pub fn project_image(&self, features: &[f32]) -> Result<Vec<f32>> {
        self.project(Side::Image, features)
    }

    /// Apply the report head, as [`TrainedHeads::project_image`].
    pub fn project_report(&self, features: &[f32]) -> Result<Vec<f32>> {
        self.project(Side::Report, features)
    }

    fn project(&self, side: Side, features: &[f32]) -> Result<Vec<f32>> {
        let in_dim = self.applied.layout.in_dim(side);
        if features.len() % in_dim != 0 {
            return Err(Error::config(format!(
                "{} features have {} values, not a multiple of the head's input dimension {in_dim}",
                if side == Side::Image { "image" } else { "report" },
                features.len()
            )));
        }
        Ok(self.applied.project(side, features, features.len() / in_dim))
    }

    /// The head outputs of every record of `cohort` as the rows a cohort file holds
    /// (normalised once when the views are built): `(image, report)`, n x dim each.
    fn written_rows(&self, cohort: &Cohort) -> Result<(View, View)> {
        let image_features = cohort.view(&self.image_view)?;
        let report_features = cohort.view(&self.report_view)?;
        for (view, want) in
            [(image_features, self.image_input_dim()), (report_features, self.report_input_dim())]
        {
            if view.dim() != want {
                return Err(Error::input(
                    view.source_path(),
                    format!(
                        "view `{}` has dimension {}, but the heads were trained on dimension {want}",
                        view.name(),
                        view.dim()
                    ),
                ));
            }
        }
        let n = cohort.len();
        let image = View::from_memory("image", n, self.dim(), self.project_image(image_features.rows())?)?;
        let report =
            View::from_memory("report", n, self.dim(), self.project_report(report_features.rows())?)?;
        Ok((image, report))
    }

    /// The cohort with views `image` and `report`: the heads applied to every record (every
    /// split) of the feature views they were trained on, exactly as an audit reads them
    /// back from the cohort [`TrainedHeads::write_cohort`] writes (the rows written,
    /// normalised again as loading does), so an audit of the written cohort sees the same
    /// bits. Metadata is kept as is.
    pub fn project_cohort(&self, cohort: &Cohort) -> Result<Cohort> {
        let (image, report) = self.written_rows(cohort)?;
        let n = cohort.len();
        let image = View::from_memory("image", n, self.dim(), image.into_rows())?;
        let report = View::from_memory("report", n, self.dim(), report.into_rows())?;
        Cohort::from_parts(cohort.dir.clone(), cohort.metadata.clone(), vec![image, report])
    }

    /// Write the projected cohort to `out`: `metadata.csv` (the cohort's metadata in
    /// linkrisk's columns), `image.npy`, `report.npy` and `privacy.json` (the ledger), built
    /// in a temporary sibling directory and renamed into place. An existing `out` is
    /// replaced only if it is empty or an earlier output (has `privacy.json`).
    pub fn write_cohort(&self, cohort: &Cohort, out: &Path) -> Result<()> {
        let (image, report) = self.written_rows(cohort)?;
        let ledger = serde_json::to_string_pretty(&self.ledger)
            .map_err(|e| Error::config(format!("serialising privacy.json: {e}")))?;
        write_dir_atomically(out, |tmp| {
            crate::cohort::write::write_cohort(
                tmp,
                &cohort.metadata,
                &[("image", self.dim(), image.rows()), ("report", self.dim(), report.rows())],
            )?;
            crate::cohort::write::atomic_bytes(&tmp.join("privacy.json"), format!("{ledger}\n").as_bytes())
        })
    }
}

/// Fill a temporary sibling of `out` with `fill`, then move it to `out`.
fn write_dir_atomically(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = out
        .file_name()
        .and_then(|s| s.to_str())
        .ok_or_else(|| Error::config(format!("--out {}: not a usable directory name", out.display())))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if out.exists() {
        let reusable = out.is_dir()
            && (out.join("privacy.json").is_file()
                || std::fs::read_dir(out).map_err(|e| Error::io(out, e))?.next().is_none());
        if !reusable {
            return Err(Error::config(format!(
                "--out {} exists and is not an earlier output of linkrisk train-heads or apply-heads (no privacy.json); \
                 choose a new directory",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, e))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| Error::write(&tmp, e))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if out.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(out, &old).map_err(|e| Error::write(out, e))?;
        std::fs::rename(&tmp, out).map_err(|e| Error::write(out, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, out).map_err(|e| Error::write(out, e))?;
    }
    Ok(())
}
