//! Report tests: a run directory built from hand-written audit fixtures is rendered, and the
//! numbers in the Markdown and HTML are parsed back and compared with the JSON.

#![allow(clippy::unwrap_used)] // test-only helpers: a panic is the failure report

mod browser;
mod fixtures;

use linkrisk::report::{self, Format};
use serde_json::{json, Value};

/// A number as displayed, parsed back: value in JSON units and half a unit of its last digit.
#[derive(Debug, Clone, Copy)]
struct Shown {
    value: f64,
    tolerance: f64,
}

impl Shown {
    fn matches(&self, json: f64) -> bool {
        (json - self.value).abs() <= self.tolerance * (1.0 + 1e-9) + 1e-15
    }
}

/// Every number in `text`: `-1,234.5`, `0.480%` (-> 0.0048), `48.0×`, `6e-6`.
fn numbers(text: &str) -> Vec<Shown> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts =
            chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric() && chars[i - 1] != '@');
        if !starts {
            i += 1;
            continue;
        }
        let negative = i > 0 && chars[i - 1] == '-' && (i == 1 || !chars[i - 2].is_alphanumeric());
        let mut j = i;
        let mut digits = String::new();
        while j < chars.len()
            && (chars[j].is_ascii_digit()
                || (chars[j] == ',' && j + 1 < chars.len() && chars[j + 1].is_ascii_digit()))
        {
            if chars[j] != ',' {
                digits.push(chars[j]);
            }
            j += 1;
        }
        let mut decimals = 0i32;
        if j + 1 < chars.len() && chars[j] == '.' && chars[j + 1].is_ascii_digit() {
            digits.push('.');
            j += 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                digits.push(chars[j]);
                decimals += 1;
                j += 1;
            }
        }
        let mut exponent = 0i32;
        if j + 1 < chars.len() && chars[j] == 'e' && (chars[j + 1].is_ascii_digit() || chars[j + 1] == '-') {
            let mut k = j + 1;
            let mut e = String::new();
            if chars[k] == '-' {
                e.push('-');
                k += 1;
            }
            while k < chars.len() && chars[k].is_ascii_digit() {
                e.push(chars[k]);
                k += 1;
            }
            exponent = e.parse().unwrap();
            j = k;
        }
        let mut value: f64 = digits.parse::<f64>().unwrap() * 10f64.powi(exponent);
        let mut tolerance = 0.5 * 10f64.powi(exponent - decimals);
        if negative {
            value = -value;
        }
        if j < chars.len() && chars[j] == '%' {
            value /= 100.0;
            tolerance /= 100.0;
        }
        out.push(Shown { value, tolerance });
        i = j;
    }
    out
}

/// Every number anywhere in a JSON value.
fn json_numbers(value: &Value, out: &mut Vec<f64>) {
    match value {
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::Array(items) => items.iter().for_each(|v| json_numbers(v, out)),
        Value::Object(map) => map.values().for_each(|v| json_numbers(v, out)),
        _ => {}
    }
}

/// A Markdown table: header cells and body rows (cells unescaped).
#[derive(Debug)]
struct MdTable {
    header: Vec<String>,
    /// Per column: right-aligned (a figure column)?
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl MdTable {
    /// The body row whose first cells equal `key`.
    fn row(&self, key: &[&str]) -> &[String] {
        self.rows
            .iter()
            .find(|r| key.iter().enumerate().all(|(i, k)| r[i] == *k))
            .unwrap_or_else(|| panic!("no row {key:?} in {:?}", self.rows))
    }

    /// The body row with these (column, cell) values.
    fn find(&self, keys: &[(&str, &str)]) -> &[String] {
        let cols: Vec<(usize, &str)> = keys.iter().map(|(c, v)| (self.col(c), *v)).collect();
        self.rows
            .iter()
            .find(|r| cols.iter().all(|(i, v)| r[*i] == *v))
            .unwrap_or_else(|| panic!("no row {keys:?} in {:?}", self.rows))
    }

    fn col(&self, title: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == title)
            .unwrap_or_else(|| panic!("no column {title} in {:?}", self.header))
    }
}

fn split_cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for ch in inner.chars() {
        if escaped {
            cells.last_mut().unwrap().push(ch);
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if ch == '|' {
            cells.push(String::new());
        } else {
            cells.last_mut().unwrap().push(ch);
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

fn md_tables(md: &str) -> Vec<MdTable> {
    let lines: Vec<&str> = md.lines().collect();
    let mut tables = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        if lines[i].starts_with('|') && lines[i + 1].starts_with("| ---") {
            let header = split_cells(lines[i]);
            let numeric = split_cells(lines[i + 1]).iter().map(|c| c.ends_with(':')).collect();
            let mut rows = Vec::new();
            let mut j = i + 2;
            while j < lines.len() && lines[j].starts_with('|') {
                rows.push(split_cells(lines[j]));
                j += 1;
            }
            tables.push(MdTable { header, numeric, rows });
            i = j;
        } else {
            i += 1;
        }
    }
    tables
}

/// Decode the few entities the HTML renderer writes.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn html_tables(html: &str) -> Vec<MdTable> {
    let cells = |row: &str, tag: &str| -> Vec<String> {
        row.split(&format!("<{tag}"))
            .skip(1)
            .map(|c| unescape(&c[c.find('>').unwrap() + 1..c.find(&format!("</{tag}>")).unwrap()]))
            .collect()
    };
    html.split("<table>")
        .skip(1)
        .map(|t| {
            let t = &t[..t.find("</table>").unwrap()];
            let head = &t[t.find("<thead>").unwrap() + 7..t.find("</thead>").unwrap()];
            let body = &t[t.find("<tbody>").unwrap() + 7..t.find("</tbody>").unwrap()];
            let numeric =
                head.split("<th").skip(1).map(|c| c.starts_with(" scope=\"col\" class=\"num")).collect();
            MdTable {
                header: cells(head, "th"),
                numeric,
                rows: body.split("<tr>").skip(1).map(|r| cells(r, "td")).collect(),
            }
        })
        .collect()
}

fn table_with<'a>(tables: &'a [MdTable], columns: &[&str]) -> Vec<&'a MdTable> {
    tables.iter().filter(|t| columns.iter().all(|c| t.header.iter().any(|h| h == c))).collect()
}

fn first_table<'a>(tables: &'a [MdTable], columns: &[&str]) -> &'a MdTable {
    table_with(tables, columns).into_iter().next().unwrap_or_else(|| panic!("no table with {columns:?}"))
}

/// Assert that `cell` shows exactly the given JSON values, in order.
#[track_caller]
fn assert_shows(cell: &str, expected: &[f64]) {
    let shown = numbers(cell);
    assert_eq!(shown.len(), expected.len(), "cell {cell:?} vs {expected:?}");
    for (s, &e) in shown.iter().zip(expected) {
        assert!(s.matches(e), "cell {cell:?} shows {} (±{}), JSON has {e}", s.value, s.tolerance);
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

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
fn relink_rows_equal_the_json() {
    let (_tmp, _run, md, _) = render_fixture();
    let tables = md_tables(&md);
    let audit = fixtures::load("relink_image_report.json");
    let table = first_table(&tables, &["Pool", "N", "Recall@1", "Lift", "Exact expectation"]);
    let pools = audit["pools"].as_array().unwrap();
    assert_eq!(table.rows.len(), pools.len() + 1, "one row per pool plus the full database");
    for p in pools {
        let kind = p["kind"].as_str().unwrap().replace('_', "-");
        let n = p["pool_size"].as_u64().unwrap();
        let row = table.row(&[&kind, &linkrisk::report::fmt::count(n as f64)]);
        assert_shows(&row[table.col("Trials")], &[f(&p["trials"])]);
        assert_shows(&row[table.col("Recall@1")], &[f(&p["recall_at_1"])]);
        let ci = &p["ci95_recall_at_1"];
        assert_shows(&row[table.col("95% CI")], &[f(&ci[0]), f(&ci[1])]);
        assert_shows(&row[table.col("Chance")], &[f(&p["chance_at_1"])]);
        assert_shows(&row[table.col("Lift")], &[f(&p["lift_at_1"])]);
        match p.get("expected_recall_at_1") {
            Some(e) => assert_shows(&row[table.col("Exact expectation")], &[f(e)]),
            None => assert_eq!(row[table.col("Exact expectation")], "–"),
        }
    }
    let full = &audit["full"];
    let row = table.row(&["full database"]);
    assert_shows(&row[1], &[f(&audit["n_gallery"])]);
    assert_shows(&row[table.col("Recall@1")], &[f(&full["recall_at_1"])]);
    assert_shows(&row[table.col("Lift")], &[f(&full["lift_at_1"])]);
    let ft = first_table(&tables, &["Full database", "MRR"]);
    let row = &ft.rows[0];
    for (col, key) in [
        ("Recall@5", "recall_at_5"),
        ("Recall@10", "recall_at_10"),
        ("MRR", "mrr"),
        ("Median rank", "median_rank"),
    ] {
        assert_shows(&row[ft.col(col)], &[f(&full[key])]);
    }
    // Attack comparison.
    let at = first_table(&tables, &["Attack", "Control", "Normalized risk"]);
    for a in audit["attacks"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        let label = if name == "csls" { "csls (strongest)".to_string() } else { name.to_string() };
        let row = at.row(&[&label]);
        assert_shows(&row[at.col("Recall@1")], &[f(&a["recall_at_1"])]);
        assert_shows(&row[at.col("Control")], &[f(&a["control_recall_at_1"])]);
        assert_shows(&row[at.col("Normalized risk")], &[f(&a["normalized_risk"])]);
        match a.get("lift_at_1") {
            Some(l) => assert_shows(&row[at.col("Lift")], &[f(l)]),
            None => assert_eq!(row[at.col("Lift")], "–"),
        }
    }
}

#[test]
fn reid_attribute_utility_and_mitigation_rows_equal_the_json() {
    let (_tmp, _run, md, _) = render_fixture();
    let tables = md_tables(&md);
    let reid = first_table(&tables, &["Measure", "image (nearest neighbour)", "image (linear-metric)"]);
    for (file, column) in [
        ("reid_image.json", "image (nearest neighbour)"),
        ("reid_image_linear_metric.json", "image (linear-metric)"),
    ] {
        let a = fixtures::load(file);
        let c = reid.col(column);
        assert_shows(&reid.row(&["Rank-1"])[c], &[f(&a["rank_1"])]);
        assert_shows(&reid.row(&["Rank-1 95% CI"])[c], &[f(&a["ci95_rank_1"][0]), f(&a["ci95_rank_1"][1])]);
        assert!(!reid.rows.iter().any(|r| r[0] == "CMC@1"), "CMC@1 repeats Rank-1");
        for k in ["5", "10", "20"] {
            assert_shows(&reid.row(&[&format!("CMC@{k}")])[c], &[f(&a["cmc"][k])]);
        }
        assert_shows(&reid.row(&["mAP"])[c], &[f(&a["map"])]);
        assert_shows(&reid.row(&["Verification AUROC"])[c], &[f(&a["verification_auroc"])]);
        assert_shows(&reid.row(&["Queries"])[c], &[f(&a["n_queries"])]);
        assert_shows(&reid.row(&["Gallery"])[c], &[f(&a["n_gallery"])]);
    }
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
    assert!(lead.contains("strongest attack tried (csls)"), "{lead}");
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
    // Plain cosine is given beside it, and the re-ID and mitigation sentences follow.
    let plain = audit["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool_size"] == 10000 && p["kind"] == "random")
        .unwrap();
    let line = md.lines().find(|l| l.starts_with("Plain cosine")).unwrap();
    assert!(
        numbers(line.split("**").nth(1).unwrap())[0].value / 1000.0 - f(&plain["recall_at_1"]) < 1e-9,
        "{line}"
    );
    assert!(md.contains("Re-identification: for **63.7%** of query images"), "strongest re-ID attacker");
    assert!(
        md.contains("ε=0.34 bring Recall@1 at N=10,000 on the held-out (test) cohort from 0.490%"),
        "{md}"
    );
    assert!(md.contains("(a 61.8% relative reduction)"));
    assert!(md.contains("utility macro AUROC moves from 0.7963 to 0.7943"));
    assert!(md.contains("**Synthetic cohort.**"));
    assert!(md.contains("still 0.290%, 29.0 times chance"), "pathology-matched caveat");
    assert!(html.contains("<p class=\"lead\"><strong>Headline risk.</strong>"));
}

#[test]
fn chart_markers_carry_the_json_values_in_order() {
    let (_tmp, _run, _md, html) = render_fixture();
    for id in
        ["relink-recall", "relink-lift", "reid-cmc", "reid-roc", "attributes-roc", "mitigate-frontier-0"]
    {
        assert!(html.contains(&format!("id=\"{id}\"")), "chart {id} missing");
    }
    let svg = &html[html.find("id=\"relink-recall\"").unwrap()..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    let audit = fixtures::load("relink_image_report.json");
    // Random-pool markers: tooltip = JSON recall; y pixel grows (lower) as recall falls.
    let mut last_y = f64::NEG_INFINITY;
    for p in audit["pools"].as_array().unwrap().iter().filter(|p| p["kind"] == "random") {
        let tip = format!("random pools, N={}: Recall@1 ", linkrisk::report::fmt::count(f(&p["pool_size"])));
        let at = svg.find(&tip).unwrap_or_else(|| panic!("no marker {tip}"));
        let shown = numbers(&svg[at + tip.len()..at + tip.len() + 12])[0];
        assert!(shown.matches(f(&p["recall_at_1"])));
        let marker = &svg[..at];
        let marker = &marker[marker.rfind("<circle").unwrap()..];
        let cy: f64 = marker.split("cy=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(cy > last_y, "markers not ordered by recall");
        last_y = cy;
    }
    // The chance line uses the JSON's chance_at_1 values.
    assert!(svg.contains("chance at N=43,793: 0.00228%"), "full-database chance point");
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
    ] {
        assert!(!md.contains(absent) && !html.contains(absent), "{absent} present");
    }
    assert!(md.contains("**Cohort not recorded.**"));
    assert!(md.contains("future-audit:image"), "listed in provenance");
    assert!(!md.contains("0.123456") && !md.contains("12.3%"));
    // Columns with no figure are dropped (no mAP, no AUROC here).
    let tables = md_tables(&md);
    let t = first_table(&tables, &["Measure"]);
    let measures: Vec<&str> = t.rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(measures, ["Rank-1", "CMC@5"], "rows without a figure are dropped");
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
    let md = report::render_markdown(&fixtures::run_of(vec![relink.clone()]));
    let lead = md.lines().find(|l| l.starts_with("**Headline risk.**")).unwrap();
    assert!(lead.contains("An attacker with this model and the report database finds the right report first for **4.90 in 1,000** images at a pool of 10,000 candidates"), "{lead}");
    assert!(lead.contains("**49.0 times chance** (chance 0.0100%)"), "{lead}");
    assert!(md.contains("Only plain cosine nearest-neighbour matching was tried"));
    // Only the full database measured.
    relink.as_object_mut().unwrap().remove("pools");
    let md = report::render_markdown(&fixtures::run_of(vec![relink]));
    let lead = md.lines().find(|l| l.starts_with("**Headline risk.**")).unwrap();
    assert!(lead.contains("**1.31 in 1,000** images at the full database of 43,793 reports"), "{lead}");
}

#[test]
fn several_relink_audits_get_a_comparison_table_and_a_compact_legend() {
    let base = fixtures::load("relink_image_report.json");
    let mut run = fixtures::run_of(vec![base.clone(), base.clone()]);
    run.runs[0].label = Some("model A".into());
    run.runs[1].label = Some("model B".into());
    run.runs[1].audit["pools"][3]["recall_at_1"] = json!(0.0123);
    run.runs[1].audit["pools"][3]["lift_at_1"] = json!(123.0);
    let md = report::render_markdown(&run);
    let html = report::render_html(&run);
    let tables = md_tables(&md);
    let t = first_table(&tables, &["Measurement", "N=10", "N=10,000", "Full database"]);
    assert_shows(&t.row(&["model A"])[t.col("N=10,000")], &[0.0049, 49.0]);
    assert_shows(&t.row(&["model B"])[t.col("N=10,000")], &[0.0123, 123.0]);
    assert_shows(&t.row(&["model A"])[t.col("Full database")], &[0.00131, 57.3688]);
    // The headline is the strongest figure of all measurements (here model B's plain cosine,
    // above every attack row) and names its measurement.
    let lead = md.lines().find(|l| l.starts_with("**Headline risk.**")).unwrap();
    assert!(lead.contains("An attacker with this model") && lead.contains("**12.3 in 1,000**"), "{lead}");
    assert!(lead.ends_with("Measurement: model B."), "{lead}");
    // Legend: each model once, each pool kind once (not every model x kind pair).
    let svg = &html[html.find("id=\"relink-recall\"").unwrap()..];
    let legend = &svg[svg.find("class=\"legend\"").unwrap()..svg.find("</svg>").unwrap()];
    for entry in [
        ">model A</text>",
        ">model B</text>",
        ">random pools</text>",
        ">pathology-matched pools</text>",
        ">full database</text>",
    ] {
        assert_eq!(legend.matches(entry).count(), 1, "{entry} in {legend}");
    }
}

#[test]
fn reid_sentence_takes_the_strongest_attack_row_when_it_beats_rank_1() {
    let reid = json!({"audit": "reid", "view": "image", "rank_1": 0.259, "ci95_rank_1": [0.25, 0.27],
                      "strongest_attack": "csls",
                      "attacks": [{"name": "csls", "recall_at_1": 0.301, "ci95_recall_at_1": [0.29, 0.31]},
                                  {"name": "cosine", "recall_at_1": 0.259}]});
    let md = report::render_markdown(&fixtures::run_of(vec![reid]));
    assert!(md.contains("Re-identification: for **30.1%** of query images (95% CI 29.0% – 31.0%), the most similar other image belongs to the same patient (Rank-1, attack csls)."), "{md}");
}

#[test]
fn strings_from_json_are_escaped() {
    let run = fixtures::run_of(vec![json!({
        "audit": "relink", "query_view": "<script>alert(1)</script>", "gallery_view": "a|b",
        "pools": [{"pool_size": 100, "kind": "random", "recall_at_1": 0.1, "chance_at_1": 0.01, "lift_at_1": 10.0}]
    })]);
    let html = report::render_html(&run);
    assert!(!html.contains("<script"), "raw script tag in HTML");
    assert!(html.contains("&lt;script&gt;"));
    let md = report::render_markdown(&run);
    assert!(!md.contains("<script>"));
    let tables = md_tables(&md);
    assert!(
        tables.iter().all(|t| t.rows.iter().all(|r| r.len() == t.header.len())),
        "a | in a name broke a table"
    );
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
