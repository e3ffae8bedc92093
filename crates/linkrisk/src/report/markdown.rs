//! Markdown renderer (`report.md`), for review in a pull request or a text editor. Charts are
//! written beside it as standalone SVG files (`plots/<id>.svg`) and linked as images.

use super::doc::{Block, Document, Span, Table};

/// Directory (relative to the report) holding the charts' SVG files.
pub const PLOTS_DIR: &str = "plots";

/// Render `doc` as GitHub-flavoured Markdown. Charts become image links to
/// `plots/<chart id>.svg`; [`super::chart_files`] lists the files to write beside it.
pub fn render(doc: &Document) -> String {
    let mut out = format!("# {}\n\n{}\n", doc.title, spans(&doc.subtitle));
    for section in &doc.sections {
        out.push_str(&format!("\n## {}\n", section.title));
        for block in &section.blocks {
            out.push('\n');
            match block {
                Block::Heading(text) => out.push_str(&format!("### {}\n", inline(text))),
                Block::Lead(s) | Block::Para(s) => out.push_str(&format!("{}\n", spans(s))),
                Block::Bullets(items) => {
                    for item in items {
                        out.push_str(&format!("- {}\n", spans(item)));
                    }
                }
                Block::Table(table) => out.push_str(&render_table(table)),
                Block::Figures(figures) => {
                    for (i, fig) in figures.iter().enumerate() {
                        if i > 0 {
                            out.push('\n');
                        }
                        out.push_str(&format!(
                            "![{}]({PLOTS_DIR}/{}.svg)\n\n*{}*\n",
                            inline(&fig.chart.title),
                            fig.chart.id,
                            inline(&fig.caption)
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
            Span::Text(text) => inline(text),
            Span::Strong(text) => format!("**{}**", inline(text)),
            Span::Code(text) => format!("`{}`", text.replace('`', "'")),
        })
        .collect()
}

/// Escape characters Markdown would interpret inside running text; backquoted stretches
/// (`--attack all`) are kept as code.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for ch in text.chars() {
        if ch == '`' {
            in_code = !in_code;
            out.push(ch);
            continue;
        }
        if !in_code && matches!(ch, '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn render_table(table: &Table) -> String {
    let row = |cells: &[String]| {
        format!("| {} |\n", cells.iter().map(|c| inline(c)).collect::<Vec<_>>().join(" | "))
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
    fn inline_escapes_markdown_but_keeps_code() {
        assert_eq!(inline("a|b *c* `--x_y`"), "a\\|b \\*c\\* `--x_y`");
        assert_eq!(inline("<script>"), "\\<script\\>");
    }

    #[test]
    fn tables_right_align_numeric_columns() {
        let mut t = Table::new(&[("Pool", false), ("N", true)]);
        t.push(vec!["random".into(), "10,000".into()]);
        assert_eq!(render_table(&t), "| Pool | N |\n| --- | ---: |\n| random | 10,000 |\n");
    }
}
