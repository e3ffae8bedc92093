//! Markdown renderer (`report.md`), for review in a pull request or a text editor. Charts are
//! written beside it as standalone SVG files (`plots/<id>.svg`) and linked as images.
//!
//! Every text is escaped ([`escape`]): model, view and attack names come from user input,
//! and a name with a backtick, `|` or `<` must neither open a code span, split a table cell
//! nor reach the reader's Markdown viewer as raw HTML.

use super::doc::{Block, Card, Document, Span, Table};

/// Directory (relative to the report) holding the charts' SVG files.
pub const PLOTS_DIR: &str = "plots";

/// Render `doc` as GitHub-flavoured Markdown. Charts become image links to
/// `plots/<chart id>.svg`; [`super::chart_files`] lists the files to write beside it.
pub fn render(doc: &Document) -> String {
    let mut out = format!("# {}\n\n{}\n", escape(&doc.title), spans(&doc.subtitle));
    for section in &doc.sections {
        out.push_str(&format!("\n## {}\n", escape(&section.title)));
        for block in &section.blocks {
            out.push('\n');
            match block {
                Block::Heading(text) => out.push_str(&format!("### {}\n", escape(text))),
                Block::Lead(s) | Block::Para(s) => out.push_str(&format!("{}\n", spans(s))),
                Block::Bullets(items) => {
                    for item in items {
                        out.push_str(&format!("- {}\n", spans(item)));
                    }
                }
                Block::Table(table) => out.push_str(&render_table(table)),
                Block::Cards(cards) => {
                    for (i, card) in cards.iter().enumerate() {
                        if i > 0 {
                            out.push('\n');
                        }
                        out.push_str(&render_card(card));
                    }
                }
                Block::Figures(figures) => {
                    for (i, fig) in figures.iter().enumerate() {
                        if i > 0 {
                            out.push('\n');
                        }
                        out.push_str(&format!(
                            "![{}]({PLOTS_DIR}/{}.svg)\n\n*{}*\n",
                            escape(&fig.chart.title),
                            fig.chart.id,
                            escape(&fig.caption)
                        ));
                    }
                }
            }
        }
    }
    out
}

fn spans(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(text) => escape(text),
            Span::Strong(text) => format!("**{}**", escape(text)),
            Span::Code(text) => code_span(text),
        })
        .collect()
}

/// A card: its title as a heading, then one bullet per line with the label in bold.
fn render_card(card: &Card) -> String {
    let mut out = format!("### {}\n\n", escape(&card.title));
    for (label, text) in &card.items {
        out.push_str(&format!("- **{}:** {}\n", escape(label), spans(text)));
    }
    out
}

/// Escape `text` so Markdown shows it literally: every character CommonMark or GitHub
/// would interpret inline (emphasis, code, links, images, raw HTML, entities, table cells,
/// strikethrough) gets a backslash, and line breaks become spaces so a name cannot end a
/// table row or start a block.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '&' | '!' | '~') {
            out.push('\\');
        }
        out.push(if ch.is_control() { ' ' } else { ch });
    }
    out
}

/// `text` as a code span, fenced by more backticks than any run inside it.
fn code_span(text: &str) -> String {
    let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn render_table(table: &Table) -> String {
    let row = |cells: &[String]| {
        format!("| {} |\n", cells.iter().map(|c| escape(c)).collect::<Vec<_>>().join(" | "))
    };
    let mut out = row(&table.header);
    let rule: Vec<String> =
        table.numeric.iter().map(|&n| if n { "---:".to_string() } else { "---".to_string() }).collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for r in &table.rows {
        out.push_str(&row(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_completely_and_code_spans_are_fenced() {
        assert_eq!(escape("a|b *c* `--x_y`"), "a\\|b \\*c\\* \\`--x\\_y\\`");
        assert_eq!(escape("<script>"), "\\<script\\>");
        assert_eq!(escape("`<img src=x onerror=alert(1)>"), "\\`\\<img src=x onerror=alert(1)\\>");
        assert_eq!(escape("a\nb"), "a b");
        assert_eq!(code_span("--attack all"), "`--attack all`");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x"), "`` `x ``");
    }

    #[test]
    fn tables_right_align_numeric_columns() {
        let mut t = Table::new(&[("Pool", false), ("N", true)]);
        t.push(vec!["random".into(), "10,000".into()]);
        assert_eq!(render_table(&t), "| Pool | N |\n| --- | ---: |\n| random | 10,000 |\n");
    }
}
