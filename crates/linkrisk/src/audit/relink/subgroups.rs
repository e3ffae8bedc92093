//! Per-subgroup breakdowns (sex, race, age band, split) of the full-database results.

use std::collections::HashMap;

use super::*;
use crate::cohort::Metadata;
use crate::error::{Error, Result};
use crate::metrics::retrieval::{summarize, RankedQuery};

pub(super) fn age_band(age: Option<f64>) -> String {
    match age {
        None => "unknown".into(),
        Some(a) if a < 40.0 => "<40".into(),
        Some(a) if a < 60.0 => "40-59".into(),
        Some(a) if a < 80.0 => "60-79".into(),
        Some(_) => ">=80".into(),
    }
}

/// The subgroup attributes of the split's records (sex, race, age band, and split when
/// the audit spans several), each with its sorted values and every record's value index.
pub(super) fn subgroup_codes(
    meta: &Metadata,
    records: &[usize],
    config: &RelinkConfig,
) -> (Vec<SubgroupAttribute>, Vec<Vec<u32>>) {
    let mut attributes: Vec<(&'static str, Vec<String>)> = Vec::new();
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    if let Some(sex) = &meta.sex {
        attributes.push(("sex", records.iter().map(|&r| text(&sex[r])).collect()));
    }
    if let Some(race) = &meta.race {
        attributes.push(("race", records.iter().map(|&r| text(&race[r])).collect()));
    }
    if let Some(age) = &meta.age {
        attributes.push(("age", records.iter().map(|&r| age_band(age[r])).collect()));
    }
    if config.split.is_none() && meta.split_names.len() > 1 {
        attributes.push(("split", records.iter().map(|&r| meta.split_name(r).to_string()).collect()));
    }
    let mut described = Vec::new();
    let mut codes = Vec::new();
    for (attribute, values) in attributes {
        let mut distinct: Vec<String> = values.clone();
        distinct.sort();
        distinct.dedup();
        let index: HashMap<&str, u32> =
            distinct.iter().enumerate().map(|(i, v)| (v.as_str(), i as u32)).collect();
        codes.push(values.iter().map(|v| index[v.as_str()]).collect());
        described.push(SubgroupAttribute { attribute: attribute.to_string(), values: distinct });
    }
    (described, codes)
}

/// The attribute names subgroups can have (reports hold them as static strings).
pub(super) fn attribute_name(name: &str) -> Result<&'static str> {
    ["sex", "race", "age", "split"]
        .into_iter()
        .find(|&a| a == name)
        .ok_or_else(|| Error::config(format!("unknown subgroup attribute `{name}`")))
}

pub(super) fn subgroups(
    ctx: &DirectionContext,
    records: &[QueryRecord],
    queries: &[RankedQuery],
    config: &RelinkConfig,
) -> Result<Vec<SubgroupReport>> {
    let mut out = Vec::new();
    for (k, attribute) in ctx.subgroups.iter().enumerate() {
        let name = attribute_name(&attribute.attribute)?;
        for (code, value) in attribute.values.iter().enumerate() {
            let members: Vec<RankedQuery> = records
                .iter()
                .zip(queries)
                .filter(|(r, _)| r.subgroups.get(k) == Some(&(code as u32)))
                .map(|(_, q)| *q)
                .collect();
            if members.is_empty() {
                continue;
            }
            let s = summarize(&members, config.level);
            out.push(SubgroupReport {
                attribute: name,
                value: value.clone(),
                n_queries: members.len(),
                recall_at_1: s.recall_at_1.value,
                ci95_recall_at_1: s.recall_at_1.ci(),
                mrr: s.mrr,
                chance_at_1: s.chance_at_1,
                lift_at_1: s.lift_at_1,
            });
        }
    }
    Ok(out)
}
