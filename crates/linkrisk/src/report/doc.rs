//! The report as a format-neutral document: sections of paragraphs, tables and charts. The
//! Markdown and HTML renderers only serialize it, so both formats always show the same
//! numbers in the same words.

use super::svg::Chart;

/// A run of inline text. Text is literal: renderers escape every character their format
/// would interpret (model and view names come from user input), so markup comes only from
/// the span kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Span {
    /// Plain text.
    Text(String),
    /// Emphasised text (the headline figures).
    Strong(String),
    /// Code (commands, flags, keys).
    Code(String),
}

/// A table: header cells and body rows of already formatted cells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Body rows; each as long as `header`.
    pub rows: Vec<Vec<String>>,
    /// Per column: right-align (numbers)?
    pub numeric: Vec<bool>,
}

/// Placeholder for a figure the audit did not report.
pub const MISSING: &str = "–";

impl Table {
    /// A table with these columns (`(title, numeric)`).
    pub fn new(columns: &[(&str, bool)]) -> Table {
        Table {
            header: columns.iter().map(|c| c.0.to_string()).collect(),
            rows: Vec::new(),
            numeric: columns.iter().map(|c| c.1).collect(),
        }
    }

    /// Append a row (padded or cut to the header's width).
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.header.len(), MISSING.to_string());
        self.rows.push(row);
    }

    /// Drop columns in which no row has a figure, so absent keys leave no empty columns.
    pub fn prune_empty_columns(mut self) -> Table {
        let keep: Vec<bool> = (0..self.header.len())
            .map(|c| self.rows.iter().any(|r| r[c] != MISSING && !r[c].is_empty()))
            .collect();
        fn kept(v: Vec<String>, keep: &[bool]) -> Vec<String> {
            v.into_iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| x).collect()
        }
        self.header = kept(self.header, &keep);
        self.rows = self.rows.into_iter().map(|r| kept(r, &keep)).collect();
        self.numeric = self.numeric.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect();
        self
    }
}

/// A chart with its caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The chart.
    pub chart: Chart,
    /// One sentence saying how to read it.
    pub caption: String,
}

/// A risk card: one model's key figures, each a labelled line, meant to fit one screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// The model's name.
    pub title: String,
    /// (label, text) lines.
    pub items: Vec<(String, Vec<Span>)>,
}

/// A block of content.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A sub-heading.
    Heading(String),
    /// The headline paragraph, set larger.
    Lead(Vec<Span>),
    /// A paragraph.
    Para(Vec<Span>),
    /// A bulleted list.
    Bullets(Vec<Vec<Span>>),
    /// A table.
    Table(Table),
    /// One or more charts side by side.
    Figures(Vec<Figure>),
    /// Risk cards side by side (one per model).
    Cards(Vec<Card>),
}

/// A top-level section.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Anchor id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Content.
    pub blocks: Vec<Block>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Page title.
    pub title: String,
    /// Line under the title (provenance).
    pub subtitle: Vec<Span>,
    /// Sections in order.
    pub sections: Vec<Section>,
}

impl Document {
    /// Every chart in the document, in order.
    pub fn charts(&self) -> impl Iterator<Item = &Chart> {
        self.sections.iter().flat_map(|s| s.blocks.iter()).flat_map(|b| match b {
            Block::Figures(figs) => figs.iter().map(|f| &f.chart).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }
}

/// Shorthand for a text span.
pub fn t(text: impl Into<String>) -> Span {
    Span::Text(text.into())
}

/// Shorthand for a strong span.
pub fn b(text: impl Into<String>) -> Span {
    Span::Strong(text.into())
}

/// Shorthand for a code span.
pub fn code(text: impl Into<String>) -> Span {
    Span::Code(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_columns_are_pruned_and_rows_padded() {
        let mut table = Table::new(&[("a", false), ("b", true), ("c", true)]);
        table.push(vec!["x".into(), MISSING.into()]);
        table.push(vec!["y".into(), MISSING.into(), "3".into()]);
        let table = table.prune_empty_columns();
        assert_eq!(table.header, ["a", "c"]);
        assert_eq!(table.rows, vec![vec!["x", MISSING], vec!["y", "3"]]);
        assert_eq!(table.numeric, [false, true]);
    }
}
