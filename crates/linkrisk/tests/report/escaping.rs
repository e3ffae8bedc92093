//! Hostile names: a model label, view names and an attack name built to break out of
//! Markdown (backticks, `|`, `<`, emphasis, links, line breaks) and HTML must reach both
//! formats as text, keep every table's columns, and never name a file outside `plots/`.

use linkrisk::report;
use serde_json::json;

use super::fixtures;
use super::parse::*;

const LABEL: &str = "evil`<img src=x onerror=alert(1)>|*x*[y](http://z)\nnext ../../etc";
const QUERY_VIEW: &str = "`<script>alert(1)</script>`|v";
const GALLERY_VIEW: &str = "r&amp;<b>";
const ATTACK: &str = "csls`</td><td>";

fn hostile_run() -> linkrisk::report::RunFile {
    let relink = json!({
        "audit": "relink", "query_view": QUERY_VIEW, "gallery_view": GALLERY_VIEW, "split": "te|st",
        "n_queries": 100, "n_gallery": 100,
        "full": {"recall_at_1": 0.05, "chance_at_1": 0.01, "lift_at_1": 5.0},
        "pools": [{"pool_size": 10, "kind": "random", "recall_at_1": 0.3, "chance_at_1": 0.1, "lift_at_1": 3.0},
                  {"pool_size": 10, "kind": "pathology_matched", "recall_at_1": 0.2, "chance_at_1": 0.1,
                   "lift_at_1": 2.0, "exact_match_fraction": 0.4}],
        "skipped_pools": [{"pool_size": 1000, "kind": "random", "reason": "<b>too</b> `big`"}],
        "subgroups": [{"attribute": "sex", "value": "<F>|`", "n_queries": 50, "recall_at_1": 0.04}],
        "strongest_attack": ATTACK, "strongest_attack_pool_size": 10,
        "attacks": [{"name": ATTACK, "pool_size": 10, "recall_at_1": 0.35, "control_recall_at_1": 0.1,
                     "normalized_risk": 0.27, "chance_at_1": 0.1, "lift_at_1": 3.5}],
        "skipped_attacks": [{"name": "qb_norm`<i>", "reason": "no |bank|"}]
    });
    let reid = json!({"audit": "reid", "view": QUERY_VIEW, "attacker": "<u>lm</u>", "rank_1": 0.4,
                      "cmc": {"1": 0.4, "5": 0.6}});
    let mut run = fixtures::run_of(vec![relink, reid]);
    for entry in &mut run.runs {
        entry.label = Some(LABEL.to_string());
    }
    run
}

#[test]
fn hostile_names_stay_text_in_markdown() {
    let md = report::render_markdown(&hostile_run());
    // No raw HTML: every `<` and `&` is backslash-escaped.
    let chars: Vec<char> = md.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if matches!(c, '<' | '&' | '`' | '|' | '*' | '[') && (i == 0 || chars[i - 1] != '\\') {
            // Unescaped only as our own markup: table pipes and bold markers.
            let line_start = chars[..i].iter().rposition(|&c| c == '\n').map_or(0, |p| p + 1);
            let line: String = chars[line_start..].iter().take_while(|&&c| c != '\n').collect();
            let at_edge = i == line_start || chars.get(i + 1).is_none_or(|&n| n == '\n');
            let ours = (*c == '|' && line.starts_with('|'))
                || (*c == '*' && (chars.get(i + 1) == Some(&'*') || chars[i - 1] == '*'))
                || (*c == '*' && line.starts_with('*') && at_edge)
                || (*c == '[' && line.starts_with("![") && i == line_start + 1);
            assert!(ours, "unescaped {c:?} at {i} in line {line:?}");
        }
    }
    assert!(!md.replace("\\<", "").contains('<'), "a raw < in the Markdown");
    // The label's line break does not end a line: it is a space.
    assert!(!md.lines().any(|l| l.starts_with("next ")), "a name's newline started a line");
    // Tables keep their columns; cells read back as the names.
    let tables = md_tables(&md);
    assert!(tables.len() >= 4);
    for t in &tables {
        assert!(t.rows.iter().all(|r| r.len() == t.header.len()), "a name broke table {:?}", t.header);
    }
    let label = LABEL.replace('\n', " ");
    let reid = first_table(&tables, &["Model", "Attacker", "Rank-1"]);
    assert_eq!(reid.rows[0][0], label);
    assert_eq!(reid.rows[0][1], "<u>lm</u>");
    let attacks = first_table(&tables, &["Attack", "Pool N"]);
    assert_eq!(attacks.rows[0][0], format!("{ATTACK} (strongest)"));
    let groups = first_table(&tables, &["Attribute", "Group"]);
    assert_eq!(groups.rows[0][1], "<F>|`");
    // Headings read back as the names.
    let direction = format!("{QUERY_VIEW} → {GALLERY_VIEW}");
    md_block(&md, &format!("{label} — {direction}, te|st split"));
    md_block(&md, &format!("{label} — re-linkage {direction}"));
    md_block(&md, &label);
    // Chart files stay inside plots/ with plain names.
    let doc = report::document(&hostile_run());
    let files = report::chart_files(&doc);
    assert!(files.len() >= 3);
    for (path, _) in files {
        let name = path.strip_prefix("plots").unwrap().to_str().unwrap().trim_start_matches('/').to_string();
        assert!(
            name.ends_with(".svg")
                && name
                    .trim_end_matches(".svg")
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "chart file {path:?}"
        );
        assert_eq!(path.components().count(), 2, "{path:?}");
    }
}

#[test]
fn hostile_names_stay_text_in_html() {
    let html = report::render_html(&hostile_run());
    for raw in ["<img", "<script", "<b>", "<u>", "<i>", "</td><td>\"", "<F>", "&amp;<b>"] {
        assert!(!html.contains(raw), "raw {raw:?} in the HTML");
    }
    assert!(html.contains("evil`&lt;img src=x onerror=alert(1)&gt;|*x*[y](http://z)"));
    assert!(html.contains("r&amp;amp;&lt;b&gt;"), "& is escaped once more");
    let tables = html_tables(&html);
    for t in &tables {
        assert!(t.rows.iter().all(|r| r.len() == t.header.len()), "a name broke table {:?}", t.header);
    }
    assert_eq!(first_table(&tables, &["Attack", "Pool N"]).rows[0][0], format!("{ATTACK} (strongest)"));
    for forbidden in ["<script", "<link", "@import", "href=\"http"] {
        assert!(!html.contains(forbidden), "{forbidden} in HTML");
    }
}
