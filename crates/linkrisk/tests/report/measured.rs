//! The measured two-model run ([`super::models`]): every section names both models, the
//! models are ranked by their headline figures, and every model's numbers — both
//! directions, subgroups, the exact-match share, attacks, re-ID, attributes, utility, its
//! risk card — equal run.json.

use linkrisk::report::{self, fmt};

use super::checks::*;
use super::models::{audit, two_model_run, MODELS};
use super::parse::*;

#[test]
fn both_models_are_named_in_every_section_and_their_numbers_equal_run_json() {
    let (_tmp, run) = two_model_run();
    let md = report::render_markdown(run);
    let mut checked = 0;
    for (label, _) in MODELS {
        for section in [
            "Summary",
            "Cross-modal re-linkage",
            "Attack comparison",
            "Patient re-identification",
            "Attribute inference",
            "Utility",
        ] {
            assert!(plain(md_block(&md, section)).contains(label), "section {section} does not name {label}");
        }
        let relink = audit(run, label, "relink", None);
        assert!(relink["reverse"].is_object(), "--direction both");
        checked += check_relink(&md, label, "test", relink);
        checked += check_attacks(&md, label, relink);
        check_card(&md, label, relink);
        let reid_tables = md_tables(md_block(&md, "Patient re-identification"));
        check_reid_row(
            &reid_tables,
            label,
            "nearest neighbour",
            audit(run, label, "reid", Some("nearest-neighbour")),
        );
        check_reid_row(
            &reid_tables,
            label,
            "linear-metric",
            audit(run, label, "reid", Some("linear-metric")),
        );

        let attributes = audit(run, label, "attributes", None);
        let block = md_block(&md, &format!("{label} — image view"));
        let tables = md_tables(block);
        let t = first_table(&tables, &["Attribute", "AUROC", "Re-identified", "p (difference)"]);
        let targets = attributes["attributes"].as_object().unwrap();
        assert_eq!(t.rows.len(), targets.len());
        for (name, target) in targets {
            let row = t.row(&[name]);
            let s = &target["stratified"];
            assert_shows(&row[t.col("AUROC")], &[f(&target["auroc"])]);
            assert_shows(&row[t.col("AUROC") + 1], &[f(&target["ci95"][0]), f(&target["ci95"][1])]);
            assert_shows(&row[t.col("Re-identified")], &[f(&s["reidentified"]["auroc"])]);
            assert_shows(&row[t.col("Not re-identified")], &[f(&s["not_reidentified"]["auroc"])]);
            assert_shows(&row[t.col("p (difference)")], &[f(&s["difference"]["p_value"])]);
            checked += 5;
        }

        let utility = audit(run, label, "utility", None);
        let column = format!("{label} (image)");
        let tables = md_tables(md_block(&md, "Utility"));
        let t = first_table(&tables, &["Finding", &column]);
        let c = t.col(&column);
        assert_shows(&t.row(&["Macro AUROC"])[c], &[f(&utility["macro_auroc"])]);
        let ci = &utility["ci95_macro_auroc"];
        assert_shows(&t.row(&["Macro 95% CI"])[c], &[f(&ci[0]), f(&ci[1])]);
        for (finding, v) in utility["per_finding"].as_object().unwrap() {
            assert_shows(&t.row(&[finding])[c], &[f(v)]);
            checked += 1;
        }
    }
    assert!(checked > 400, "only {checked} figures compared");
}

#[test]
fn models_are_ranked_by_their_headline_and_the_specialised_model_leads() {
    let (_tmp, run) = two_model_run();
    let md = report::render_markdown(run);
    let tables = md_tables(md_block(&md, "Models ranked by re-linkage risk"));
    let t = first_table(&tables, &["Rank", "Model", "Lift"]);
    assert_eq!(t.rows.len(), 2);
    let mut lifts = Vec::new();
    for row in &t.rows {
        let relink = audit(run, &row[1], "relink", None);
        let d = directions(relink)
            .into_iter()
            .find(|d| {
                format!("{} → {}", d["query_view"].as_str().unwrap(), d["gallery_view"].as_str().unwrap())
                    == row[3]
            })
            .unwrap();
        let pool = format!("N={}", row[t.col("Pool N")]);
        let (recall, ci, lift, _) = named_figure(d, &row[t.col("Strongest attack")], &pool);
        assert_shows(&row[t.col("Recall@1")], &[f(recall)]);
        assert_shows(&row[t.col("95% CI")], &[f(&ci[0]), f(&ci[1])]);
        assert_shows(&row[t.col("Lift")], &[f(lift)]);
        lifts.push(f(lift));
        // Re-ID: the stronger attacker's Rank-1; utility: the macro AUROC.
        let rank1 = ["nearest-neighbour", "linear-metric"]
            .iter()
            .map(|a| f(&audit(run, &row[1], "reid", Some(a))["rank_1"]))
            .fold(0.0, f64::max);
        assert_shows(&row[t.col("Re-ID Rank-1")], &[rank1]);
        assert_shows(
            &row[t.col("Utility macro AUROC")],
            &[f(&audit(run, &row[1], "utility", None)["macro_auroc"])],
        );
    }
    assert!(lifts[0] >= lifts[1], "ranked by lift: {lifts:?}");
    // The synthetic specialization knob: the specialised model links more often.
    assert_eq!(t.rows[0][1], MODELS[1].0, "{:?}", t.rows);
    // The headline sentence is about the first-ranked model and says so.
    let lead = md.lines().find(|l| l.starts_with("**Headline risk.**")).unwrap();
    assert!(
        plain(lead).starts_with(&format!(
            "**Headline risk.** Model {} (the highest risk of the 2 models)",
            MODELS[1].0
        )),
        "{lead}"
    );
    // The cards come in rank order too.
    let cards: Vec<usize> =
        MODELS.iter().map(|(m, _)| md.find(&format!("\n### {}\n", m.replace('_', "\\_"))).unwrap()).collect();
    assert!(cards[1] < cards[0], "the leading model's card first");
}

#[test]
fn the_exact_match_caveat_quotes_the_headline_pool_share() {
    let (_tmp, run) = two_model_run();
    let md = report::render_markdown(run);
    let (leader, _) = MODELS[1];
    let card = plain(bullet(md_block(&md, leader), "Headline"));
    let (_, rest) = card.split_once("), ").unwrap();
    let (dir, rest) = rest.split_once(" at N=").unwrap();
    let n: f64 = rest.split_once(':').unwrap().0.replace(',', "").parse().unwrap();
    let relink = audit(run, leader, "relink", None);
    let d = directions(relink)
        .into_iter()
        .find(|d| {
            format!("{} → {}", d["query_view"].as_str().unwrap(), d["gallery_view"].as_str().unwrap()) == dir
        })
        .unwrap();
    let pm = d["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "pathology_matched" && f(&p["pool_size"]) == n)
        .expect("a pathology-matched pool at the headline's N");
    let share = f(&pm["exact_match_fraction"]);
    let caveats = plain(md_block(&md, "Caveats"));
    let n_text = fmt::count(n);
    let expected = if share < 0.5 {
        format!("at N={n_text} only {} of negatives had identical findings", fmt::pct(share))
    } else {
        format!("At N={n_text}, {} of negatives had identical findings", fmt::pct(share))
    };
    assert!(caveats.contains(&expected), "{expected:?} not in {caveats}");
    // Both models tried the same attacks: listed once, for every model.
    assert!(caveats.contains("attacks tried (every model: cosine, csls, inverted_softmax, qb_norm, assignment, procrustes (m=20, 100), ridge (m=20, 100))"), "{caveats}");
    assert!(
        caveats.contains(&format!(
            "Recall@1 of {leader} ({dir}) at N={n_text} is still {}",
            fmt::pct(f(&pm["recall_at_1"]))
        )),
        "{caveats}"
    );
}

#[test]
fn measured_tables_hold_json_numbers_in_both_formats() {
    let (_tmp, run) = two_model_run();
    let md = report::render_markdown(run);
    let html = report::render_html(run);
    let mut known = Vec::new();
    json_numbers(&serde_json::to_value(run).unwrap(), &mut known);
    known.sort_by(f64::total_cmp);
    let (m, h) = (md_tables(&md), html_tables(&html));
    assert_eq!(m.len(), h.len());
    let mut checked = 0;
    for (a, b) in m.iter().zip(&h) {
        assert_eq!((&a.header, &a.numeric, &a.rows), (&b.header, &b.numeric, &b.rows));
        for row in &a.rows {
            for ((title, cell), numeric) in a.header.iter().zip(row).zip(&a.numeric) {
                if !numeric {
                    continue;
                }
                for shown in numbers(cell) {
                    let lo = known.partition_point(|&k| k < shown.value - shown.tolerance * 1.001);
                    assert!(
                        known.get(lo).is_some_and(|&k| shown.matches(k)),
                        "`{cell}` in column `{title}` is no JSON number"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} numbers");
}
