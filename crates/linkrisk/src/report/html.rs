//! HTML renderer (`report.html`): one self-contained page — inline CSS and inline SVG, no
//! script, no external resource (a Content-Security-Policy forbids any), readable on screen
//! and on paper (print styles keep figures and table rows whole).

use super::doc::{Block, Card, Document, Span, Table};
use super::svg::esc;

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1a1a1a;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.8rem; margin: 0 0 2px; }
.subtitle { color: #555555; margin: 0 0 20px; }
h2 { font-size: 1.3rem; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e5e5e5; }
h3 { font-size: 1.05rem; margin: 22px 0 6px; }
p, ul { max-width: 860px; }
h1, h2, h3, p, li, dd, figcaption { overflow-wrap: anywhere; }
#summary { background: #f4f8fc; border: 1px solid #cddbea; border-left: 6px solid #0072B2;
  border-radius: 4px; padding: 2px 22px 10px; }
#summary h2 { border: 0; margin-top: 14px; }
.lead { font-size: 1.12rem; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 14px;
  margin: 12px 0 16px; }
.card { background: #ffffff; border: 1px solid #cddbea; border-radius: 6px; padding: 4px 16px 10px;
  min-width: 0; }
.card h3 { margin: 8px 0 6px; font-size: 1.08rem; color: #0b4f7a; }
.card dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 3px 12px; margin: 0;
  font-size: 0.9rem; }
.card dt { font-weight: 600; color: #444444; }
.card dd { margin: 0; min-width: 0; }
.table-wrap { overflow-x: auto; margin: 8px 0 18px; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 9px; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top; }
th { background: #f7f7f7; border-bottom: 2px solid #bdbdbd; font-weight: 600; }
td { overflow-wrap: break-word; }
#runs td { overflow-wrap: anywhere; }
th.num, td.num { text-align: right; }
td.num { white-space: nowrap; overflow-wrap: normal; }
td.num.ci { white-space: normal; min-width: 4.5em; }
#runs td:nth-child(3) { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.8rem; }
.figures { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
figure { margin: 8px 0 12px; flex: 1 1 460px; max-width: 636px; min-width: 0; }
figure.narrow { flex: 0 1 396px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #555555; margin-top: 2px; }
footer { margin-top: 40px; color: #666666; font-size: 0.85rem; }
@page { margin: 14mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  #summary, .card, th { background: none; }
  h2, h3 { break-after: avoid; }
  figure, tr, .lead, .card { break-inside: avoid; }
  .cards { grid-template-columns: 1fr; gap: 8px; }
  .table-wrap { overflow: visible; }
  table { font-size: 7.5pt; }
  th, td { padding: 2px 3px; }
  figure { flex-basis: 100%; max-width: 100%; }
}
"#;

/// Render `doc` as a complete, self-contained HTML page.
pub fn render(doc: &Document) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"generator\" content=\"linkrisk\">\n");
    out.push_str(&format!(
        "<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&doc.title)
    ));
    out.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"subtitle\">{}</p>\n",
        esc(&doc.title),
        spans(&doc.subtitle)
    ));
    for section in &doc.sections {
        out.push_str(&format!("<section id=\"{}\">\n<h2>{}</h2>\n", esc(&section.id), esc(&section.title)));
        for block in &section.blocks {
            match block {
                Block::Heading(text) => out.push_str(&format!("<h3>{}</h3>\n", esc(text))),
                Block::Lead(s) => out.push_str(&format!("<p class=\"lead\">{}</p>\n", spans(s))),
                Block::Para(s) => out.push_str(&format!("<p>{}</p>\n", spans(s))),
                Block::Bullets(items) => {
                    out.push_str("<ul>\n");
                    for item in items {
                        out.push_str(&format!("<li>{}</li>\n", spans(item)));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table(table) => out.push_str(&render_table(table)),
                Block::Cards(cards) => {
                    out.push_str("<div class=\"cards\">\n");
                    for card in cards {
                        out.push_str(&render_card(card));
                    }
                    out.push_str("</div>\n");
                }
                Block::Figures(figures) => {
                    out.push_str("<div class=\"figures\">\n");
                    for fig in figures {
                        let narrow = if fig.chart.plot_size.0 < 400.0 { " class=\"narrow\"" } else { "" };
                        out.push_str(&format!(
                            "<figure{narrow}>\n{}<figcaption>{}</figcaption>\n</figure>\n",
                            fig.chart.to_svg(),
                            esc(&fig.caption)
                        ));
                    }
                    out.push_str("</div>\n");
                }
            }
        }
        out.push_str("</section>\n");
    }
    out.push_str(
        "<footer>Generated by linkrisk from run.json. Aggregate figures only; no per-record data.</footer>\n",
    );
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn spans(spans: &[Span]) -> String {
    let mut out = String::new();
    for s in spans {
        match s {
            Span::Text(text) => out.push_str(&esc(text)),
            Span::Strong(text) => out.push_str(&format!("<strong>{}</strong>", esc(text))),
            Span::Code(text) => out.push_str(&format!("<code>{}</code>", esc(text))),
        }
    }
    out
}

fn render_card(card: &Card) -> String {
    let mut out = format!("<div class=\"card\">\n<h3>{}</h3>\n<dl>\n", esc(&card.title));
    for (label, text) in &card.items {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(label), spans(text)));
    }
    out.push_str("</dl>\n</div>\n");
    out
}

fn render_table(table: &Table) -> String {
    let class = |numeric: bool| if numeric { " class=\"num\"" } else { "" };
    let mut out = String::from("<div class=\"table-wrap\"><table>\n<thead><tr>");
    for (h, &n) in table.header.iter().zip(&table.numeric) {
        out.push_str(&format!("<th scope=\"col\"{}>{}</th>", class(n), esc(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for (cell, &n) in row.iter().zip(&table.numeric) {
            // Intervals (and `a / b` pairs) may break after their dash (never before it) when
            // the page is narrow; single figures never break.
            if n && (cell.contains(" – ") || cell.contains(" / ")) {
                let cell = cell.replace(" – ", "\u{a0}– ").replace(" / ", "\u{a0}/ ");
                out.push_str(&format!("<td class=\"num ci\">{}</td>", esc(&cell)));
            } else {
                out.push_str(&format!("<td{}>{}</td>", class(n), esc(cell)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::doc::{t, Section};

    #[test]
    fn text_is_escaped_and_code_is_marked() {
        use crate::report::doc::code;
        assert_eq!(
            spans(&[t("run `x` <now> "), code("--attack all")]),
            "run `x` &lt;now&gt; <code>--attack all</code>"
        );
        let mut table = Table::new(&[("View", false), ("N", true)]);
        table.push(vec!["<img src=x>".into(), "1".into()]);
        let html = render_table(&table);
        assert!(html.contains("<td>&lt;img src=x&gt;</td><td class=\"num\">1</td>"), "{html}");
    }

    #[test]
    fn page_is_self_contained() {
        let doc = Document {
            title: "T".into(),
            subtitle: vec![t("s")],
            sections: vec![Section {
                id: "a".into(),
                title: "A".into(),
                blocks: vec![Block::Para(vec![t("x")])],
            }],
        };
        let html = render(&doc);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("default-src 'none'"));
        for forbidden in ["<script", "http://", "https://", "<link", "@import", "url("] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
        crate::report::svg::tests::assert_balanced(&html);
    }
}
