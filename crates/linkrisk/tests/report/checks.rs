//! Checks shared by the fixture run and the measured run: a model's re-linkage tables (both
//! directions side by side, full-database ranks, subgroups), its attack tables, its re-ID
//! rows and its risk card, each compared figure by figure with the audit JSON.

use linkrisk::report::fmt;
use serde_json::Value;

use super::parse::*;

/// `pathology_matched` as the report writes it.
fn kind_label(kind: &str) -> String {
    kind.replace('_', "-")
}

/// The directions of a relink JSON: the top level, then `reverse` when present.
pub fn directions(relink: &Value) -> Vec<&Value> {
    std::iter::once(relink).chain(relink.get("reverse").filter(|r| r.is_object())).collect()
}

fn direction_name(d: &Value) -> String {
    format!("{} → {}", d["query_view"].as_str().unwrap(), d["gallery_view"].as_str().unwrap())
}

fn pct_or_dash(cell: &str, v: Option<&Value>) {
    match v.filter(|v| v.is_number()) {
        Some(v) => assert_shows(cell, &[f(v)]),
        None => assert_eq!(cell, "–", "expected no figure"),
    }
}

/// The re-linkage block of `model` (one relink audit on `split`): every pool row of both
/// directions, the full database, the ranks table and the subgroups equal the JSON, and the
/// skipped pools are listed. Returns the number of figures compared.
pub fn check_relink(md: &str, model: &str, split: &str, relink: &Value) -> usize {
    let dirs = directions(relink);
    let names: Vec<String> = dirs.iter().map(|d| direction_name(d)).collect();
    let block = md_block(md, &format!("{model} — {}, {split} split", names.join(" and ")));
    let tables = md_tables(block);
    let mut checked = 0;
    let pools = first_table(&tables, &["Pool", "N", "Chance", "Recall@1", "Exact expectation"]);
    let two = dirs.len() > 1;
    let rows: usize = dirs.iter().map(|d| d["pools"].as_array().unwrap().len() + 1).sum();
    assert_eq!(pools.rows.len(), rows, "one row per pool and direction, plus the full database");
    for (d, name) in dirs.iter().zip(&names) {
        let key = |kind: &str, n: &str| -> Vec<String> {
            let mut key = vec![kind.to_string(), n.to_string()];
            if two {
                key.push(name.clone());
            }
            key
        };
        let find = |key: Vec<String>| -> Vec<String> {
            let mut cols = vec![pools.col("Pool"), pools.col("N")];
            if two {
                cols.push(pools.col("Direction"));
            }
            pools
                .rows
                .iter()
                .find(|r| cols.iter().zip(&key).all(|(c, k)| r[*c] == *k))
                .unwrap_or_else(|| panic!("no pool row {key:?}"))
                .clone()
        };
        for p in d["pools"].as_array().unwrap() {
            let n = p["pool_size"].as_u64().unwrap();
            let kind = p["kind"].as_str().unwrap();
            let row = find(key(&kind_label(kind), &fmt::count(n as f64)));
            match pools.header.iter().position(|h| h == "Trials") {
                Some(c) => assert_shows(&row[c], &[f(&p["trials"])]),
                // One trial count everywhere: said once above the table.
                None => {
                    assert!(plain(block)
                        .contains(&format!("{} pools drawn per query", fmt::count(f(&p["trials"])))))
                }
            }
            assert_shows(&row[pools.col("Chance")], &[f(&p["chance_at_1"])]);
            assert_shows(&row[pools.col("Recall@1")], &[f(&p["recall_at_1"])]);
            let ci = &p["ci95_recall_at_1"];
            assert_shows(&row[pools.col("95% CI")], &[f(&ci[0]), f(&ci[1])]);
            assert_shows(&row[pools.col("Lift")], &[f(&p["lift_at_1"])]);
            pct_or_dash(&row[pools.col("Exact expectation")], p.get("expected_recall_at_1"));
            pct_or_dash(&row[pools.col("Identical findings")], p.get("exact_match_fraction"));
            checked += 6;
        }
        for s in d["skipped_pools"].as_array().into_iter().flatten() {
            let n = fmt::count(f(&s["pool_size"]));
            assert!(!pools.rows.iter().any(|r| r[1] == n), "skipped pool {n} shown as measured");
            let reason = s["reason"].as_str().unwrap();
            assert!(
                plain(block).contains(&format!("N={n}")) && plain(block).contains(reason),
                "skipped pool {n} not listed"
            );
        }
        let full = &d["full"];
        let row = find(key("full database", &fmt::count(f(&d["n_gallery"]))));
        assert_shows(&row[pools.col("Recall@1")], &[f(&full["recall_at_1"])]);
        let ci = &full["ci95_recall_at_1"];
        assert_shows(&row[pools.col("95% CI")], &[f(&ci[0]), f(&ci[1])]);
        assert_shows(&row[pools.col("Lift")], &[f(&full["lift_at_1"])]);
        assert_shows(&row[pools.col("Chance")], &[f(&full["chance_at_1"])]);
        let ranks = first_table(&tables, &["Full database", "MRR"]);
        let row = ranks.row(&[name]);
        for (col, key) in [
            ("Recall@1", "recall_at_1"),
            ("Recall@5", "recall_at_5"),
            ("Recall@10", "recall_at_10"),
            ("MRR", "mrr"),
            ("Median rank", "median_rank"),
        ] {
            assert_shows(&row[ranks.col(col)], &[f(&full[key])]);
            checked += 1;
        }
        let subgroups = d["subgroups"].as_array().unwrap();
        assert!(!subgroups.is_empty(), "{model} {name}: no subgroups in the JSON");
        let table = first_table(&tables, &["Attribute", "Group"]);
        let q = table.col(&if two { format!("{name} queries") } else { "Queries".to_string() });
        assert_eq!(table.header[q + 1..q + 3], ["Recall@1", "95% CI"]);
        assert_eq!(table.rows.len(), subgroups.len(), "one row per subgroup");
        for s in subgroups {
            let row = table.row(&[s["attribute"].as_str().unwrap(), s["value"].as_str().unwrap()]);
            assert_shows(&row[q], &[f(&s["n_queries"])]);
            assert_shows(&row[q + 1], &[f(&s["recall_at_1"])]);
            assert_shows(&row[q + 2], &[f(&s["ci95_recall_at_1"][0]), f(&s["ci95_recall_at_1"][1])]);
            checked += 3;
        }
    }
    checked
}

/// The attack table of each direction of `model`: every row equals its JSON row, exactly one
/// row is marked strongest (the JSON's strongest attack at its pool), the side protocol is
/// stated and every skipped attack is listed.
pub fn check_attacks(md: &str, model: &str, relink: &Value) -> usize {
    let mut checked = 0;
    for d in directions(relink) {
        let block = md_block(md, &format!("{model} — re-linkage {}", direction_name(d)));
        let text = plain(block);
        match d["side"]["source"].as_str() {
            Some("cross_fit") => {
                let folds = d["side"]["folds"].as_u64().unwrap();
                assert!(
                    text.contains(&format!("cross-fitted within the audited split ({folds} folds")),
                    "{text}"
                );
            }
            Some(source) => {
                let split = source.trim_start_matches("split ");
                assert!(text.contains(&format!("from the {split} split")), "{text}");
            }
            None => {}
        }
        let tables = md_tables(block);
        let table = first_table(&tables, &["Attack", "Pool N", "Recall@1", "Normalized risk"]);
        let rows = d["attacks"].as_array().unwrap();
        assert_eq!(table.rows.len(), rows.len());
        let marked: Vec<&Vec<String>> =
            table.rows.iter().filter(|r| r[0].ends_with(" (strongest)")).collect();
        assert_eq!(marked.len(), 1, "exactly one strongest row: {:?}", table.rows);
        assert_eq!(marked[0][0], format!("{} (strongest)", d["strongest_attack"].as_str().unwrap()));
        let pool =
            |a: &Value| a.get("pool_size").and_then(Value::as_f64).map_or("full".to_string(), fmt::count);
        if let Some(n) = d.get("strongest_attack_pool_size").and_then(Value::as_f64) {
            assert_eq!(marked[0][table.col("Pool N")], fmt::count(n));
        }
        for (a, row) in rows.iter().zip(&table.rows) {
            // Rows keep the audit's order.
            assert_eq!(row[0].trim_end_matches(" (strongest)"), a["name"].as_str().unwrap());
            assert_eq!(row[table.col("Pool N")], pool(a));
            assert_shows(&row[table.col("Recall@1")], &[f(&a["recall_at_1"])]);
            assert_shows(&row[table.col("Control")], &[f(&a["control_recall_at_1"])]);
            assert_shows(&row[table.col("Normalized risk")], &[f(&a["normalized_risk"])]);
            if let Some(m) = a.get("leaked_pairs") {
                assert_shows(&row[table.col("Leaked pairs")], &[f(m)]);
            }
            if let Some(l) = a.get("lift_at_1") {
                assert_shows(&row[table.col("Lift")], &[f(l)]);
            }
            checked += 4;
        }
        for s in d["skipped_attacks"].as_array().into_iter().flatten() {
            let name = s["name"].as_str().unwrap();
            let reason = s["reason"].as_str().unwrap();
            assert!(text.contains(name) && text.contains(reason), "skipped {name} not listed: {text}");
        }
    }
    checked
}

/// The re-ID row of (`model`, `attacker`) equals the entry's JSON.
pub fn check_reid_row(tables: &[MdTable], model: &str, attacker: &str, a: &Value) {
    let t = first_table(tables, &["Model", "Attacker", "Rank-1", "mAP"]);
    let row = t.row(&[model, attacker]);
    assert_shows(&row[t.col("Queries / gallery")], &[f(&a["n_queries"]), f(&a["n_gallery"])]);
    assert_shows(&row[t.col("Rank-1")], &[f(&a["rank_1"])]);
    let ci = t.col("Rank-1") + 1;
    assert_shows(&row[ci], &[f(&a["ci95_rank_1"][0]), f(&a["ci95_rank_1"][1])]);
    for (k, v) in a["cmc"].as_object().unwrap() {
        if let Some(c) = t.header.iter().position(|h| *h == format!("CMC@{k}")) {
            assert_shows(&row[c], &[f(v)]);
        }
    }
    assert_shows(&row[t.col("mAP")], &[f(&a["map"])]);
    assert_shows(&row[t.col("Verification AUROC")], &[f(&a["verification_auroc"])]);
}

/// The figure a card or ranking row names — attack `attack` of direction `d` at `pool`
/// (`N=10,000` text or `the full database`) — as (recall, ci, lift, chance) from the JSON:
/// the attack's row of the comparison, or without a comparison the random pool's
/// Monte-Carlo figure.
pub fn named_figure<'a>(
    d: &'a Value,
    attack: &str,
    pool: &str,
) -> (&'a Value, &'a Value, &'a Value, &'a Value) {
    let n: Option<f64> = pool.strip_prefix("N=").map(|n| n.replace(',', "").parse().unwrap());
    if d.get("attacks").is_none_or(Value::is_null) {
        assert_eq!(attack, "cosine", "without an attack comparison only plain cosine");
        let row = match n {
            Some(n) => d["pools"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["kind"] == "random" && f(&p["pool_size"]) == n)
                .unwrap(),
            None => &d["full"],
        };
        return (&row["recall_at_1"], &row["ci95_recall_at_1"], &row["lift_at_1"], &row["chance_at_1"]);
    }
    let row = d["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["name"] == attack
                && a.get("pool_size").and_then(Value::as_f64) == n
                && d.get("strongest_attack_leaked_pairs").is_none_or(|m| a.get("leaked_pairs") == Some(m))
        })
        .unwrap_or_else(|| panic!("no {attack} row at {pool}"));
    (&row["recall_at_1"], &row["ci95_recall_at_1"], &row["lift_at_1"], &row["chance_at_1"])
}

/// Assert that `text` (`Recall@1 X (95% CI a – b), L× chance (chance c)`) shows the figure.
pub fn assert_figure(text: &str, fig: (&Value, &Value, &Value, &Value)) {
    let at = text.find("Recall@1 ").unwrap_or_else(|| panic!("no Recall@1 in {text}")) + 9;
    // `95% CI` reads as 0.95.
    assert_shows(&text[at..], &[f(fig.0), 0.95, f(&fig.1[0]), f(&fig.1[1]), f(fig.2), f(fig.3)]);
}

/// `model`'s card: its headline and per-direction lines name an attack, a direction and a
/// pool whose JSON figures they show; the headline is the strongest of the directions'.
pub fn check_card(md: &str, model: &str, relink: &Value) -> f64 {
    let card = md_block(md, model);
    let head = plain(bullet(card, "Headline"));
    let (attack, rest) = head.split_once(" (").unwrap();
    let dir_at = rest.split_once("), ").unwrap().1;
    let (dir, rest) = dir_at.split_once(" at ").unwrap();
    let (pool, figure) = rest.split_once(": ").unwrap();
    let d = directions(relink).into_iter().find(|d| direction_name(d) == dir).unwrap();
    let fig = named_figure(d, attack, pool);
    assert_figure(figure, fig);
    let mut best = f(fig.2);
    let dirs = directions(relink);
    for d in dirs.iter().copied().filter(|_| dirs.len() > 1) {
        let line = plain(bullet(card, &direction_name(d)));
        let (attack, rest) = line.split_once(" at ").unwrap();
        let (pool, figure) = rest.split_once(": ").unwrap();
        let fig = named_figure(d, attack, pool);
        assert_figure(figure, fig);
        best = best.max(f(fig.2));
    }
    assert_eq!(f(fig.2), best, "the headline is the strongest direction's figure");
    best
}
