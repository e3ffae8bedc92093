//! Cross-modal utility: what the heads are for. The image-side linear probe (paper 1's
//! utility) measures what the image embedding alone keeps; it does not need the image and
//! report heads to agree, so heads that align nothing (random projections) can score as
//! well as aligned ones. This measures the alignment that users of a shared space rely on,
//! at the level of findings rather than of individual records: CLIP-style zero-shot
//! classification (Radford et al. 2021) with report prototypes in place of text prompts.
//! For each finding, the prototype is the mean report embedding of training records
//! labelled positive minus that of training records labelled negative; an evaluation image
//! is scored by its cosine-space dot product with the prototype; the AUROC of those scores
//! over the evaluation split's labels, averaged over findings, is the macro AUROC.

use serde::Serialize;

use crate::audit::probing::{NamedValues, LEVEL};
use crate::audit::utility::{LabelPolicy, Skipped};
use crate::cohort::{Cohort, FINDINGS};
use crate::error::{Error, Result};
use crate::metrics::auroc::{delong, macro_auroc, AurocInterval};

/// Zero-shot finding classification of images with report prototypes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossModalUtility {
    /// Always `report_prototype_zero_shot`.
    pub method: &'static str,
    /// Split whose report embeddings form the prototypes.
    pub prototype_split: String,
    /// Split whose images are scored.
    pub eval_split: String,
    /// Mean AUROC over the scored findings (None when every finding was skipped).
    pub macro_auroc: Option<f64>,
    /// 95% interval of the macro AUROC (influence variance clustered by patient).
    pub ci95_macro_auroc: Option<[f64; 2]>,
    /// AUROC per scored finding, in CheXpert order.
    pub per_finding: NamedValues<f64>,
    /// Findings that could not be scored, and why.
    pub skipped: Vec<Skipped>,
}

/// Score the images of `eval_split` against report prototypes from `prototype_split`
/// (views `image_view` and `report_view` of `cohort`, which must share one space).
pub fn cross_modal_utility(
    cohort: &Cohort,
    image_view: &str,
    report_view: &str,
    prototype_split: &str,
    eval_split: &str,
    labels: LabelPolicy,
) -> Result<CrossModalUtility> {
    let meta = &cohort.metadata;
    let findings = meta.findings.as_ref().ok_or_else(|| {
        Error::input(
            cohort.dir.join("metadata.csv"),
            "no finding columns; cross-modal utility scores the 14 CheXpert findings: add them to metadata.csv",
        )
    })?;
    let image = cohort.view(image_view)?;
    let report = cohort.view(report_view)?;
    if image.dim() != report.dim() {
        return Err(Error::input(
            &cohort.dir,
            format!(
                "view `{image_view}` has {} dimensions but `{report_view}` has {}; cross-modal utility needs one shared space",
                image.dim(),
                report.dim()
            ),
        ));
    }
    let dim = image.dim();
    let proto_rows = meta.rows_in_split(prototype_split)?;
    let eval_rows = meta.rows_in_split(eval_split)?;
    let eval_patients: Vec<u32> = eval_rows.iter().map(|&i| meta.patient[i]).collect();

    let mut scores: Vec<Vec<f64>> = Vec::new();
    let mut targets: Vec<Vec<Option<bool>>> = Vec::new();
    let mut scored: Vec<&'static str> = Vec::new();
    let mut skipped = Vec::new();
    for (k, &finding) in FINDINGS.iter().enumerate() {
        let (mut pos, mut neg) = (vec![0f64; dim], vec![0f64; dim]);
        let (mut n_pos, mut n_neg) = (0usize, 0usize);
        for &i in &proto_rows {
            let (sum, count) = match labels.target(findings[i][k]) {
                Some(true) => (&mut pos, &mut n_pos),
                Some(false) => (&mut neg, &mut n_neg),
                None => continue,
            };
            for (s, &v) in sum.iter_mut().zip(report.row(i)) {
                *s += f64::from(v);
            }
            *count += 1;
        }
        let target: Vec<Option<bool>> = eval_rows.iter().map(|&i| labels.target(findings[i][k])).collect();
        let e_pos = target.iter().filter(|t| **t == Some(true)).count();
        let e_neg = target.iter().filter(|t| **t == Some(false)).count();
        let reason = if n_pos == 0 || n_neg == 0 {
            Some(format!(
                "no {} records in the {prototype_split} split to form a report prototype ({} positive, {} negative)",
                if n_pos == 0 { "positive" } else { "negative" },
                n_pos,
                n_neg
            ))
        } else if e_pos == 0 || e_neg == 0 {
            Some(format!(
                "no {} records in the {eval_split} split ({e_pos} positive, {e_neg} negative)",
                if e_pos == 0 { "positive" } else { "negative" }
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            skipped.push(Skipped { finding, reason });
            continue;
        }
        let prototype: Vec<f64> =
            pos.iter().zip(&neg).map(|(p, n)| p / n_pos as f64 - n / n_neg as f64).collect();
        scores.push(
            eval_rows
                .iter()
                .map(|&i| image.row(i).iter().zip(&prototype).map(|(&x, p)| f64::from(x) * p).sum())
                .collect(),
        );
        targets.push(target);
        scored.push(finding);
    }
    let mut per_finding = Vec::new();
    for ((s, t), &finding) in scores.iter().zip(&targets).zip(&scored) {
        let kept: Vec<usize> = (0..s.len()).filter(|&i| t[i].is_some()).collect();
        let d = delong(
            &kept.iter().map(|&i| s[i]).collect::<Vec<_>>(),
            &kept.iter().map(|&i| t[i] == Some(true)).collect::<Vec<_>>(),
        )?;
        per_finding.push((finding.to_string(), d.auroc));
    }
    let (macro_value, ci) = if scores.is_empty() {
        (None, None)
    } else {
        let pairs: Vec<(&[f64], &[Option<bool>])> =
            scores.iter().zip(&targets).map(|(s, t)| (s.as_slice(), t.as_slice())).collect();
        let m = macro_auroc(&pairs, Some(&eval_patients))?;
        (Some(m.auroc), Some(m.ci(LEVEL, AurocInterval::default()).ci()))
    };
    Ok(CrossModalUtility {
        method: "report_prototype_zero_shot",
        prototype_split: prototype_split.to_string(),
        eval_split: eval_split.to_string(),
        macro_auroc: macro_value,
        ci95_macro_auroc: ci,
        per_finding: NamedValues(per_finding),
        skipped,
    })
}
