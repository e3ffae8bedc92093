//! `linkrisk demo` end to end at a small size: every audit lands in `run.json`, and every
//! number the report (Markdown and HTML) and the closing table show equals the JSON's.

use linkrisk::report::fmt;
use serde_json::Value;

use crate::util::{read, run_ok, temp_dir};

const MODELS: [&str; 4] = ["general", "biomedical", "radiology", "cxr-specialist"];

/// The audit JSON recorded under `label` for `audit` kind.
fn audit<'a>(run: &'a Value, kind: &str, label: &str) -> &'a Value {
    run["runs"]
        .as_array()
        .expect("runs is an array")
        .iter()
        .find(|e| e["label"] == label && e["audit"]["audit"] == kind)
        .map(|e| &e["audit"])
        .unwrap_or_else(|| panic!("run.json has no {kind} entry labelled {label}"))
}

fn f(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("no number at {pointer} in {v}"))
}

/// The text of the Markdown section whose heading line is `heading`, up to the next heading
/// of the same or a higher level.
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let start = md.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no heading {heading:?}")) + 1;
    let level = heading.chars().take_while(|&c| c == '#').count();
    let rest = &md[start + heading.len()..];
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| {
            let line = &rest[i..];
            let hashes = line.chars().take_while(|&c| c == '#').count();
            hashes > 0 && hashes <= level && line[hashes..].starts_with(' ')
        })
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The cells of the Markdown table row whose first cell is `first`.
fn row_cells<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .map(|l| l.trim().trim_matches('|').split(" | ").map(str::trim).collect::<Vec<_>>())
        .find(|cells| cells[0] == first)
        .unwrap_or_else(|| panic!("no table row {first:?} in:\n{text}"))
}

/// Index of the column titled `title` in the first table of `text`.
fn column_of(text: &str, title: &str) -> usize {
    let header = text.lines().find(|l| l.starts_with('|')).expect("a table");
    let cells: Vec<&str> = header.trim().trim_matches('|').split(" | ").map(str::trim).collect();
    cells.iter().position(|c| *c == title).unwrap_or_else(|| panic!("no column {title:?} in {header}"))
}

fn cell(text: &str, row: &str, column: usize) -> String {
    row_cells(text, row)[column].to_string()
}

#[test]
fn demo_report_numbers_equal_the_run_json() {
    let tmp = temp_dir();
    let out = tmp.path().join("demo");
    let outcome = run_ok([
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--patients",
        "300",
        "--trials",
        "3",
        "--bootstrap",
        "20",
        "--seed",
        "7",
    ]);
    let run: Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(run["cohort"]["synthetic"] == true, "the cohort summary is recorded: {}", run["cohort"]);

    let comparison = section(&md, "### Models compared: Recall@1 (lift) with random pools");
    let utility = section(&md, "## Utility");
    let attributes = section(&md, "## Attribute inference");
    let mut full_recalls = Vec::new();
    for model in MODELS {
        // Re-linkage: the comparison row shows the full-database Recall@1 and lift.
        let relink = audit(&run, "relink", model);
        let (recall, lift) = (f(relink, "/full/recall_at_1"), f(relink, "/full/lift_at_1"));
        full_recalls.push(recall);
        let row = comparison
            .lines()
            .find(|l| l.starts_with(&format!("| {model} | image → report |")))
            .unwrap_or_else(|| panic!("no comparison row for {model}:\n{comparison}"));
        let shown = format!("{} ({})", fmt::pct(recall), fmt::times(lift));
        assert!(row.trim_end().ends_with(&format!("| {shown} |")), "{model}: {row} lacks {shown}");
        assert!(html.contains(&shown), "the HTML report lacks {shown}");

        // Utility: one column per model in the comparison table, macro AUROC and interval on top.
        let utility_json = audit(&run, "utility", model);
        let macro_auroc = f(utility_json, "/macro_auroc");
        let ci = [f(utility_json, "/ci95_macro_auroc/0"), f(utility_json, "/ci95_macro_auroc/1")];
        let column = column_of(utility, &format!("{model} (image)"));
        assert_eq!(cell(utility, "Macro AUROC", column), fmt::score(macro_auroc), "{model}");
        assert_eq!(cell(utility, "Macro 95% CI", column), fmt::score_interval(ci), "{model}");
        assert!(html.contains(&fmt::score(macro_auroc)));
        for (finding, value) in utility_json["per_finding"].as_object().unwrap() {
            assert_eq!(
                cell(utility, finding, column),
                fmt::score(value.as_f64().unwrap()),
                "{model} {finding}"
            );
        }

        // Re-identification: one row per model and attacker.
        let reid_section = section(&md, "## Patient re-identification");
        let (rank_1, map) = (column_of(reid_section, "Rank-1"), column_of(reid_section, "mAP"));
        for attacker in ["nearest-neighbour", "linear-metric"] {
            let entry = run["runs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| {
                    e["label"] == model && e["audit"]["audit"] == "reid" && e["audit"]["attacker"] == attacker
                })
                .map(|e| &e["audit"])
                .unwrap_or_else(|| panic!("no reid entry of {attacker} for {model}"));
            let shown = if attacker == "nearest-neighbour" { "nearest neighbour" } else { attacker };
            let row = reid_section
                .lines()
                .map(|l| l.trim().trim_matches('|').split(" | ").map(str::trim).collect::<Vec<_>>())
                .find(|cells| cells.len() > 2 && cells[0] == model && cells[1] == shown)
                .unwrap_or_else(|| panic!("no re-ID row {model} / {shown}:\n{reid_section}"));
            assert_eq!(row[rank_1], fmt::pct(f(entry, "/rank_1")), "{model} {attacker}");
            assert_eq!(row[map], fmt::score(f(entry, "/map")), "{model} {attacker}");
        }

        // Attributes: one row per attribute.
        let attributes_json = audit(&run, "attributes", model);
        let text = section(attributes, &format!("### {model} — image view"));
        for (name, value) in attributes_json["per_attribute"].as_object().unwrap() {
            let line = format!("| {name} | {} |", fmt::score(value.as_f64().unwrap()));
            assert!(text.contains(&line), "{model}: attributes lack {line}:\n{text}");
            // Paper 2's stratification by the re-identification flags.
            let strata = &attributes_json["attributes"][name]["stratified"];
            if let Some(auroc) = strata["reidentified"]["auroc"].as_f64() {
                let column = column_of(text, "Re-identified");
                assert_eq!(cell(text, name, column), fmt::score(auroc), "{model} {name} re-identified");
            }
        }

        // The closing table on stdout shows the same figures.
        let printed = outcome
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{model} ")))
            .unwrap_or_else(|| panic!("stdout has no row for {model}:\n{}", outcome.stdout));
        for value in [format!("{recall:.4}"), format!("{macro_auroc:.4}")] {
            assert!(printed.contains(&value), "{model}: stdout row {printed:?} lacks {value}");
        }
    }
    // The synthetic ground truth: more specialization, more re-linkage.
    assert!(
        full_recalls.windows(2).all(|w| w[0] < w[1]),
        "Recall@1 rises with specialization: {full_recalls:?}"
    );
    assert!(md.contains("**Headline risk.**") && html.contains("Headline risk."));

    // The two-point mitigation: private heads link less than non-private ones, and the
    // report's table shows the JSON's Recall@1 and reduction.
    let mitigation = audit(&run, "mitigate", "mitigation");
    let reductions = mitigation["reductions"].as_array().unwrap();
    assert!(!reductions.is_empty());
    let mitigate_section = section(&md, "## Mitigation: privacy–utility trade-off");
    for r in reductions.iter().filter(|r| r["kind"] == "random") {
        let reduction = f(r, "/relative_reduction");
        assert!(reduction > 0.2, "DP heads cut Recall@1 by more than 20%: {r}");
        let shown = format!("| {} | {} |", fmt::pct(f(r, "/recall_at_1")), {
            let lo_hi = mitigate_section.lines().find(|l| l.contains(&fmt::pct(f(r, "/recall_at_1"))));
            assert!(
                lo_hi.is_some(),
                "mitigation table lacks {}:\n{mitigate_section}",
                fmt::pct(f(r, "/recall_at_1"))
            );
            lo_hi.unwrap().split(" | ").nth(4).unwrap_or_default().to_string()
        });
        let line = mitigate_section.lines().find(|l| l.contains(&shown)).unwrap();
        assert!(line.contains(&fmt::pct(reduction)), "{line} lacks the reduction {}", fmt::pct(reduction));
    }
    // Utility beside each cohort's row: held-out for members and held-out, external for external.
    for point in mitigation["points"].as_array().unwrap() {
        let utility = &point["utility"];
        for (cohort, key) in [("held-out (test)", "/macro_auroc"), ("external", "/external_macro_auroc")] {
            let want = fmt::score(f(utility, key));
            let row = mitigate_section
                .lines()
                .filter(|l| l.contains(&format!("| {cohort} |")))
                .find(|l| l.trim_end().ends_with(&format!("| {want} |")));
            assert!(row.is_some(), "no {cohort} row with utility {want}:\n{mitigate_section}");
        }
    }
    assert!(outcome.stdout.contains("Mitigation:"), "{}", outcome.stdout);

    // One population, four embeddings: everything but image.npy / report.npy is shared.
    let general = out.join("cohorts/general");
    let mut images = Vec::new();
    for model in MODELS {
        let dir = out.join("cohorts").join(model);
        let cohort = linkrisk::cohort::Cohort::load(&dir).unwrap();
        assert_eq!(cohort.metadata.split_names.len(), 3, "train, test and external");
        for file in ["metadata.csv", "image_features.npy", "report_features.npy"] {
            assert_eq!(read(&dir, file), read(&general, file), "{model}/{file}");
        }
        images.push(read(&dir, "image.npy"));
    }
    assert!(images.windows(2).all(|w| w[0] != w[1]), "each model embeds differently");
    assert!(outcome.stdout.contains("report.html"));
}
