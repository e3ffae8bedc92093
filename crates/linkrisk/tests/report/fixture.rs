//! The hand-written fixture run (tests/data/report): snapshot, every table number a JSON
//! number, rows equal to their JSON figures, summary sentences, charts, omissions.

use linkrisk::report::{self, Format};
use serde_json::json;

use super::fixtures;
use super::parse::*;

fn render_fixture() -> (tempfile::TempDir, linkrisk::report::RunFile, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixtures::fixed_run(tmp.path());
    let md = report::render_markdown(&run);
    let html = report::render_html(&run);
    (tmp, run, md, html)
}

#[test]
fn markdown_matches_snapshot() {
    let (_tmp, _run, md, _) = render_fixture();
    let path = fixtures::data_dir().join("expected/report.md");
    if std::env::var_os("LINKRISK_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &md).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).expect("snapshot missing: run with LINKRISK_UPDATE_SNAPSHOTS=1");
    if md != expected {
        let line = md.lines().zip(expected.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "report.md differs from {} at line {}:\n  got:      {:?}\n  expected: {:?}\n(review, then update with LINKRISK_UPDATE_SNAPSHOTS=1)",
            path.display(),
            line + 1,
            md.lines().nth(line),
            expected.lines().nth(line)
        );
    }
}

/// Every number in every figure column of every table (both formats) is one of the run's
/// JSON numbers, rounded as displayed. Text columns (names, command lines, dates) are not
/// figures and are exempt.
#[test]
fn every_table_number_is_a_json_number() {
    let (_tmp, run, md, html) = render_fixture();
    let mut known = Vec::new();
    json_numbers(&serde_json::to_value(&run).unwrap(), &mut known);
    for (format, tables) in [("md", md_tables(&md)), ("html", html_tables(&html))] {
        assert!(tables.len() >= 10, "{format}: only {} tables", tables.len());
        let mut checked = 0;
        for table in &tables {
            for row in &table.rows {
                for ((title, cell), numeric) in table.header.iter().zip(row).zip(&table.numeric) {
                    if !numeric {
                        continue;
                    }
                    for shown in numbers(cell) {
                        assert!(
                            known.iter().any(|&k| shown.matches(k)),
                            "{format}: `{cell}` in column `{title}` is no JSON number"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 150, "{format}: only {checked} numbers checked");
    }
}

#[test]
fn markdown_and_html_tables_hold_the_same_cells() {
    let (_tmp, _run, md, html) = render_fixture();
    let (m, h) = (md_tables(&md), html_tables(&html));
    assert_eq!(m.len(), h.len());
    for (a, b) in m.iter().zip(&h) {
        assert_eq!(a.header, b.header);
        assert_eq!(a.numeric, b.numeric);
        assert_eq!(a.rows, b.rows);
    }
}

#[test]
fn relink_rows_of_both_directions_equal_the_json() {
    let (_tmp, _run, md, _) = render_fixture();
    let audit = fixtures::load("relink_image_report.json");
    assert!(audit["reverse"].is_object(), "the fixture has both directions");
    // The fixture entries carry no label: the model is the cohort directory the command
    // line names (`linkrisk relink cohort ...`), as a label would default to.
    let checked = super::checks::check_relink(&md, "cohort", "test", &audit);
    assert!(checked > 150, "{checked}");
    let checked = super::checks::check_attacks(&md, "cohort", &audit);
    assert!(checked > 20, "{checked}");
    // The assignment row has no pool: a full-database figure, no lift.
    let block = md_block(&md, "cohort — re-linkage image → report");
    let at = first_table(&md_tables(block), &["Attack", "Control"]).row(&["assignment"]).to_vec();
    assert_eq!(at[1], "full");
}

#[test]
fn reid_attribute_utility_and_mitigation_rows_equal_the_json() {
    let (_tmp, _run, md, _) = render_fixture();
    let tables = md_tables(&md);
    for (file, attacker) in
        [("reid_image.json", "nearest neighbour"), ("reid_image_linear_metric.json", "linear-metric")]
    {
        super::checks::check_reid_row(&tables, "cohort", attacker, &fixtures::load(file));
    }
    let reid = first_table(&tables, &["Model", "Attacker", "Rank-1"]);
    assert!(!reid.header.iter().any(|h| h == "CMC@1"), "CMC@1 repeats Rank-1");
    assert!(
        plain(&md).contains(
            "Trained attacker linear-metric of cohort: cross-fitted within the audited split (5 folds"
        ),
        "the trained attacker's protocol"
    );
    assert!(
        plain(&md).contains("Probe training data of cohort: cross-fitted within the audited split (5 folds")
    );
    assert!(plain(&md).contains("Probe training data of cohort: from the train split."));
    let attrs = fixtures::load("attributes_image.json");
    let at = first_table(&tables, &["Attribute", "AUROC", "Re-identified", "p (difference)"]);
    for (name, t) in attrs["targets"].as_object().unwrap() {
        let row = at.row(&[name]);
        assert_shows(&row[at.col("AUROC")], &[f(&t["auroc"])]);
        assert_shows(&row[at.col("Re-identified")], &[f(&t["reidentified"]["auroc"])]);
        assert_shows(&row[at.col("Not re-identified")], &[f(&t["not_reidentified"]["auroc"])]);
        assert_shows(&row[at.col("p (difference)")], &[f(&t["p_value_difference"])]);
    }
    let util = fixtures::load("utility_image.json");
    let ut = first_table(&tables, &["Finding", "AUROC"]);
    let per = util["per_finding"].as_object().unwrap();
    assert_eq!(ut.rows.len(), per.len());
    // CheXpert order, not alphabetical.
    assert_eq!(ut.rows[0][0], "No Finding");
    assert_eq!(ut.rows[13][0], "Support Devices");
    for (name, v) in per {
        assert_shows(&ut.row(&[name])[1], &[f(v)]);
    }
    assert!(md.contains(&format!("**{}**", linkrisk::report::fmt::score(f(&util["macro_auroc"])))));
    let mit = fixtures::load("mitigate.json");
    let mt = first_table(&tables, &["ε", "Cohort", "Recall@1 at N=10,000"]);
    for p in mit["points"].as_array().unwrap() {
        let eps = match p["epsilon"].as_f64() {
            Some(e) => linkrisk::report::fmt::epsilon(e),
            None => "∞ (non-private)".to_string(),
        };
        for (key, name) in
            [("members", "members (train)"), ("held_out", "held-out (test)"), ("external", "external")]
        {
            let c = &p["relink"][key];
            let row = mt.find(&[("ε", &eps), ("Cohort", name)]);
            let pool = c["pools"].as_array().unwrap().iter().find(|q| q["pool_size"] == 10000).unwrap();
            assert_shows(&row[mt.col("Recall@1 at N=10,000")], &[f(&pool["recall_at_1"])]);
            assert_shows(&row[mt.col("Reduction vs non-private")], &[f(&c["relative_reduction"])]);
            assert_shows(&row[mt.col("Utility macro AUROC")], &[f(&p["utility"]["macro_auroc"])]);
        }
    }
}

#[test]
fn summary_states_the_strongest_attack_with_json_figures() {
    let (_tmp, _run, md, html) = render_fixture();
    let audit = fixtures::load("relink_image_report.json");
    let csls = audit["attacks"].as_array().unwrap().iter().find(|a| a["name"] == "csls").unwrap().clone();
    let lead = md.lines().find(|l| l.starts_with("**Headline risk.**")).expect("headline");
    assert!(
        lead.starts_with("**Headline risk.** Model cohort: with the strongest attack tried (csls)"),
        "{lead}"
    );
    assert!(lead.contains("at a pool of 10,000 candidates"), "{lead}");
    // "X in 1,000" is Recall@1 x 1000.
    let x = lead.split("**").nth(3).unwrap();
    assert!(x.ends_with(" in 1,000"), "{x}");
    let shown = numbers(x)[0];
    assert!(
        Shown { value: shown.value / 1000.0, tolerance: shown.tolerance / 1000.0 }
            .matches(f(&csls["recall_at_1"])),
        "{x}"
    );
    let times = lead.split("**").nth(5).unwrap();
    assert!(times.ends_with("times chance"), "{times}");
    assert!(numbers(times)[0].matches(f(&csls["lift_at_1"])), "{times}");
    let ci = &csls["ci95_recall_at_1"];
    let after = &lead[lead.find("95% CI").unwrap()..];
    let ns = numbers(after);
    assert!(ns[1].matches(f(&ci[0])) && ns[2].matches(f(&ci[1])), "{after}");
    // Plain cosine is given beside it, naming the model.
    let plain_pool = audit["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool_size"] == 10000 && p["kind"] == "random")
        .unwrap();
    let line = md.lines().find(|l| l.starts_with("Plain cosine similarity alone (cohort)")).unwrap();
    assert!(
        numbers(line.split("**").nth(1).unwrap())[0].value / 1000.0 - f(&plain_pool["recall_at_1"]) < 1e-9,
        "{line}"
    );
    // The risk card: headline, both directions, attacks tried with the strongest per
    // direction and the side data of each, re-ID, attributes, utility, what was not tried.
    super::checks::check_card(&md, "cohort", &audit);
    let card = md_block(&md, "cohort");
    let tried = plain(bullet(card, "Attacks tried"));
    assert!(tried.starts_with("cosine, inverted_softmax, csls, procrustes (m=100), assignment; strongest: csls (image → report), cosine (report → image); side data: 100,000 labelled pairs from the train split (image → report), cross-fitted"), "{tried}");
    let reid = fixtures::load("reid_image_linear_metric.json");
    let line = bullet(card, "Re-identification");
    assert_shows(
        line,
        &[f(&reid["rank_1"]), 0.95, f(&reid["ci95_rank_1"][0]), f(&reid["ci95_rank_1"][1]), 1.0],
    );
    assert!(line.ends_with("(trained attacker linear-metric)"), "{line}");
    let attrs = fixtures::load("attributes_image.json");
    let t = &attrs["targets"];
    let line = bullet(card, "Attribute AUROC");
    let mut expected = Vec::new();
    for name in ["sex", "age", "race"] {
        expected.extend([
            f(&t[name]["auroc"]),
            0.95,
            f(&t[name]["ci95_auroc"][0]),
            f(&t[name]["ci95_auroc"][1]),
        ]);
    }
    assert_shows(line, &expected);
    let util = fixtures::load("utility_image.json");
    assert_shows(
        bullet(card, "Utility"),
        &[f(&util["macro_auroc"]), 0.95, f(&util["ci95_macro_auroc"][0]), f(&util["ci95_macro_auroc"][1])],
    );
    let not_tried = plain(bullet(card, "Not tried"));
    assert!(not_tried.contains("qb_norm: the query bank would hold fewer than 1,000 queries"), "{not_tried}");
    assert!(not_tried.contains("ridge at m=100,000"), "{not_tried}");
    assert!(plain(bullet(card, "Pools skipped")).contains("random and pathology-matched pools at N=100,000"));
    // Mitigation and caveats.
    assert!(
        md.contains("ε=0.34 bring Recall@1 at N=10,000 on the held-out (test) cohort from 0.490%"),
        "{md}"
    );
    assert!(md.contains("(a 61.8% relative reduction)"));
    assert!(md.contains("utility macro AUROC moves from 0.7963 to 0.7943"));
    assert!(md.contains("**Synthetic cohort.**"));
    let caveats = plain(md_block(&md, "Caveats"));
    assert!(caveats.contains("**Not tried:** qb_norm: the query bank"), "{caveats}");
    // The exact-match share follows the pathology-matched figure, in the words.
    assert!(
        caveats
            .contains("Recall@1 of cohort (image → report) at N=10,000 is still 0.290%, 29.0 times chance"),
        "{caveats}"
    );
    assert!(caveats.contains("at N=10,000 only 0.110% of negatives had identical findings"), "{caveats}");
    assert!(caveats.contains("**Pathology matching is partial.**"), "{caveats}");
    assert!(html.contains("<p class=\"lead\"><strong>Headline risk.</strong>"));
    assert!(html.contains("<div class=\"cards\">\n<div class=\"card\">\n<h3>cohort</h3>"));
}

#[test]
fn chart_markers_carry_the_json_values_in_order() {
    let (_tmp, _run, _md, html) = render_fixture();
    for id in [
        "relink-recall-1-cohort",
        "relink-subgroups-1-cohort",
        "relink-lift",
        "reid-cmc",
        "reid-roc",
        "attributes-roc",
        "mitigate-frontier-0",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "chart {id} missing");
    }
    let svg = &html[html.find("id=\"relink-recall-1-cohort\"").unwrap()..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    let audit = fixtures::load("relink_image_report.json");
    // The exact expected curve is a line through every `expected_recall_curve` point.
    for c in audit["expected_recall_curve"].as_array().unwrap() {
        let tip = format!(
            "image → report: N={}: exact expected Recall@1 {}",
            linkrisk::report::fmt::count(f(&c["pool_size"])),
            linkrisk::report::fmt::pct(f(&c["expected_recall_at_1"]))
        );
        assert!(svg.contains(&tip), "no curve point {tip}");
    }
    assert!(svg
        .contains("data-series=\"image → report: exact expectation, random pools\">\n<path class=\"line\""));
    // Monte-Carlo random-pool markers: tooltip = JSON recall; y pixel grows (lower) as
    // recall falls; each has its error bar.
    let mut last_y = f64::NEG_INFINITY;
    for p in audit["pools"].as_array().unwrap().iter().filter(|p| p["kind"] == "random") {
        let tip = format!(
            "image → report: random pools, N={}: Recall@1 ",
            linkrisk::report::fmt::count(f(&p["pool_size"]))
        );
        let at = svg.find(&tip).unwrap_or_else(|| panic!("no marker {tip}"));
        let shown = numbers(&svg[at + tip.len()..at + tip.len() + 12])[0];
        assert!(shown.matches(f(&p["recall_at_1"])));
        let marker = &svg[..at];
        let marker = &marker[marker.rfind("<circle").unwrap()..];
        let cy: f64 = marker.split("cy=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(cy > last_y, "markers not ordered by recall");
        last_y = cy;
    }
    assert!(svg.contains("report → image: random pools, N=10,000: Recall@1 0.549%"), "the reverse direction");
    // The chance line uses the JSON's chance_at_1 values.
    assert!(svg.contains("chance at N=43,793: 0.00228%"), "full-database chance point");
    // Forest plot: one marker per subgroup and direction, with its interval, at its row.
    let svg = &html[html.find("id=\"relink-subgroups-1-cohort\"").unwrap()..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    for s in audit["subgroups"].as_array().unwrap() {
        let tip = format!(
            "image → report, {} {}: Recall@1 {} (95% CI {})",
            s["attribute"].as_str().unwrap(),
            s["value"].as_str().unwrap(),
            linkrisk::report::fmt::pct(f(&s["recall_at_1"])),
            linkrisk::report::fmt::pct_interval([f(&s["ci95_recall_at_1"][0]), f(&s["ci95_recall_at_1"][1])])
        );
        assert!(svg.contains(&linkrisk::report::svg::esc(&tip)), "no forest marker {tip}");
    }
    assert!(svg.contains(">sex: F</text>") && svg.contains(">age: &lt;40</text>"), "row labels");
    assert_eq!(svg.matches("class=\"ci\"").count(), 2 * audit["subgroups"].as_array().unwrap().len());
}

#[test]
fn per_record_data_and_unknown_keys_never_reach_the_report() {
    let (tmp, _run, md, html) = render_fixture();
    for text in [&md, &html] {
        assert!(!text.contains("SECRET"), "per-record ids rendered");
        assert!(!text.contains("48213"), "per-record rank rendered");
        assert!(!text.contains("171.3"), "unknown key rendered");
        assert!(!text.contains("_fixture"));
    }
    // run.json itself keeps the audit JSON as recorded.
    let raw = std::fs::read_to_string(tmp.path().join("run.json")).unwrap();
    assert!(raw.contains("\"audit\": \"relink\""));
}

#[test]
fn missing_sections_are_omitted_and_unknown_audits_ignored() {
    let run = fixtures::run_of(vec![
        json!({"audit": "reid", "view": "image", "rank_1": 0.2, "cmc": {"1": 0.2, "5": 0.3}}),
        json!({"audit": "future-audit", "view": "image", "value": 0.123456}),
    ]);
    let md = report::render_markdown(&run);
    let html = report::render_html(&run);
    assert!(md.contains("## Patient re-identification"));
    for absent in [
        "## Cross-modal re-linkage",
        "## Attack comparison",
        "## Utility",
        "## Mitigation",
        "## Cohort",
        "Headline risk",
        "relink-recall",
        "Risk card",
    ] {
        assert!(!md.contains(absent) && !html.contains(absent), "{absent} present");
    }
    assert!(md.contains("**Cohort not recorded.**"));
    assert!(md.contains("future-audit:image"), "listed in provenance");
    assert!(!md.contains("0.123456") && !md.contains("12.3%"));
    // Columns with no figure are dropped (no sizes, mAP or AUROC here).
    let tables = md_tables(&md);
    let t = first_table(&tables, &["Model", "Attacker"]);
    assert_eq!(t.header, ["Model", "Attacker", "Rank-1", "CMC@5"], "columns without a figure are dropped");
    assert_eq!(t.rows, [["unlabelled model", "nearest neighbour", "20.0%", "30.0%"]]);
    // No audits at all: still a valid report that says so.
    let empty = report::render_markdown(&fixtures::run_of(vec![]));
    assert!(empty.contains("holds no audit results yet"));
}

#[test]
fn plain_cosine_headline_without_attacks_and_full_database_fallback() {
    let mut relink = fixtures::load("relink_image_report.json");
    let obj = relink.as_object_mut().unwrap();
    obj.remove("attacks");
    obj.remove("strongest_attack");
    obj.remove("skipped_attacks");
    obj.remove("reverse");
    let md = report::render_markdown(&fixtures::run_of(vec![relink.clone()]));
    let lead = md.lines().find(|l| l.starts_with("**Headline risk.**")).unwrap();
    assert!(lead.contains("Model unlabelled model: an attacker with this model and the report database finds the right report first for **4.90 in 1,000** images at a pool of 10,000 candidates"), "{lead}");
    assert!(lead.contains("**49.0 times chance** (chance 0.0100%)"), "{lead}");
    assert!(md.contains("Only plain cosine nearest-neighbour matching was tried"));
    let card = md_block(&md, "unlabelled model");
    assert!(plain(bullet(card, "Not tried"))
        .contains("attacks beyond plain cosine (no attack comparison: run with --attack all)"));
    // Only the full database measured.
    relink.as_object_mut().unwrap().remove("pools");
    let md = report::render_markdown(&fixtures::run_of(vec![relink]));
    let lead = md.lines().find(|l| l.starts_with("**Headline risk.**")).unwrap();
    assert!(lead.contains("**1.31 in 1,000** images at the full database of 43,793 reports"), "{lead}");
}

#[test]
fn several_models_are_ranked_compared_and_get_a_compact_legend() {
    let base = fixtures::load("relink_image_report.json");
    let mut run = fixtures::run_of(vec![base.clone(), base.clone()]);
    run.runs[0].label = Some("model A".into());
    run.runs[1].label = Some("model B".into());
    // Model B is stronger: its plain pool and its strongest attack (csls) at N=10,000.
    run.runs[1].audit["pools"][3]["recall_at_1"] = json!(0.0123);
    run.runs[1].audit["pools"][3]["lift_at_1"] = json!(123.0);
    assert_eq!(run.runs[1].audit["attacks"][2]["name"], "csls");
    run.runs[1].audit["attacks"][2]["recall_at_1"] = json!(0.0131);
    run.runs[1].audit["attacks"][2]["lift_at_1"] = json!(131.0);
    let md = report::render_markdown(&run);
    let html = report::render_html(&run);
    let tables = md_tables(&md);
    let t = first_table(&tables, &["Model", "Direction", "N=10", "N=10,000", "Full database"]);
    assert_shows(&t.row(&["model A", "image → report"])[t.col("N=10,000")], &[0.0049, 49.0]);
    assert_shows(&t.row(&["model B", "image → report"])[t.col("N=10,000")], &[0.0123, 123.0]);
    assert_shows(&t.row(&["model A", "report → image"])[t.col("N=10,000")], &[0.005488, 54.88]);
    assert_shows(&t.row(&["model A", "image → report"])[t.col("Full database")], &[0.00131, 57.3688]);
    // Model B first: its strongest attack at N=10,000 is above model A's.
    assert_eq!(t.rows[0][0], "model B");
    let ranking = first_table(&tables, &["Rank", "Model", "Strongest attack", "Lift"]);
    assert_eq!(ranking.rows.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(), ["model B", "model A"]);
    assert_eq!(ranking.row(&["1", "model B"])[2], "csls");
    assert_shows(&ranking.row(&["1", "model B"])[ranking.col("Lift")], &[131.0]);
    assert_eq!(ranking.row(&["2", "model A"])[2], "csls");
    assert_shows(&ranking.row(&["2", "model A"])[ranking.col("Lift")], &[71.0]);
    let lead = md.lines().find(|l| l.starts_with("**Headline risk.**")).unwrap();
    assert!(lead.starts_with("**Headline risk.** Model model B (the highest risk of the 2 models): with the strongest attack tried (csls)"), "{lead}");
    assert!(lead.contains("**13.1 in 1,000**"), "{lead}");
    // Every section names the model of each figure.
    for model in ["model A", "model B"] {
        for (section, title) in [
            ("Summary", model.to_string()),
            ("Cross-modal re-linkage", format!("{model} — image → report and report → image, test split")),
            ("Attack comparison", format!("{model} — re-linkage report → image")),
        ] {
            let block = md_block(&md, section);
            assert!(plain(block).contains(&title), "{section} does not name {model}");
        }
    }
    // Lift chart legend: each model once, each direction once, each pool kind once (not
    // every combination); log scale, as the lifts span more than a decade.
    let svg = &html[html.find("id=\"relink-lift\"").unwrap()..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    let legend = &svg[svg.find("class=\"legend\"").unwrap()..];
    for entry in [
        ">model A</text>",
        ">model B</text>",
        ">image → report</text>",
        ">report → image</text>",
        ">random pools</text>",
        ">pathology-matched pools</text>",
        ">full database</text>",
    ] {
        assert_eq!(legend.matches(entry).count(), 1, "{entry} in {legend}");
    }
    assert!(
        svg.contains("log scale)</text>") && svg.contains(">100</text>") && svg.contains(">10</text>"),
        "log lift axis"
    );
}

#[test]
fn reid_card_line_takes_the_strongest_attack_row_when_it_beats_rank_1() {
    let reid = json!({"audit": "reid", "view": "image", "rank_1": 0.259, "ci95_rank_1": [0.25, 0.27],
                      "strongest_attack": "csls",
                      "attacks": [{"name": "csls", "recall_at_1": 0.301, "ci95_recall_at_1": [0.29, 0.31]},
                                  {"name": "cosine", "recall_at_1": 0.259}]});
    let md = report::render_markdown(&fixtures::run_of(vec![reid]));
    let line = bullet(md_block(&md, "unlabelled model"), "Re-identification");
    assert_eq!(line, "30.1% (95% CI 29.0% – 31.0%) of query images, Rank-1 (attack csls)");
}

#[test]
fn html_is_self_contained() {
    let (_tmp, _run, _md, html) = render_fixture();
    assert!(html.contains("Content-Security-Policy"));
    for forbidden in ["<script", "<link", "@import", "src=", "href=\"http", "https://"] {
        assert!(!html.contains(forbidden), "{forbidden} in HTML");
    }
    // The only http:// is the SVG namespace; the only url() references are local.
    assert_eq!(html.matches("http://").count(), html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count());
    assert_eq!(html.matches("url(").count(), html.matches("url(#").count());
    assert!(html.contains("@media print"));
    assert!(html.len() < 400_000, "HTML is {} bytes", html.len());
}

#[test]
fn write_report_writes_both_formats_and_chart_files_without_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    fixtures::build_run(tmp.path());
    let written = report::write_report(tmp.path(), &[Format::Markdown, Format::Html]).unwrap();
    assert_eq!(written[0], tmp.path().join("report.md"));
    assert_eq!(written[1], tmp.path().join("report.html"));
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    for link in md.lines().filter(|l| l.starts_with("![")) {
        let rel = &link[link.find("](").unwrap() + 2..link.len() - 1];
        let svg = std::fs::read_to_string(tmp.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    }
    assert_eq!(written.len(), 2 + md.matches("](plots/").count());
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "temporary files left: {names:?}");
    assert!(!tmp.path().join("run.json.lock").exists());
    // A missing run.json is an error naming it.
    let err = report::write_report(&tmp.path().join("nope"), &[Format::Html]).unwrap_err().to_string();
    assert!(err.contains("run.json"), "{err}");
}

#[test]
fn number_parser_understands_the_formats() {
    let n = numbers("0.480% – 0.550%, 48.0×, 43,793, 6e-6, CMC@5, x1 -0.25");
    let values: Vec<f64> = n.iter().map(|s| s.value).collect();
    assert_eq!(values.len(), 6, "{values:?}");
    assert!((values[0] - 0.0048).abs() < 1e-15 && (n[0].tolerance - 0.000005).abs() < 1e-15);
    assert_eq!(values[2], 48.0);
    assert_eq!(values[3], 43793.0);
    assert!((values[4] - 6e-6).abs() < 1e-20);
    assert_eq!(values[5], -0.25);
}
