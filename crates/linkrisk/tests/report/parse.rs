//! Parsing the rendered report back: numbers as displayed (with the tolerance of their last
//! digit), Markdown and HTML tables, and the Markdown under a heading.

#![allow(dead_code)]

use serde_json::Value;

/// A number as displayed, parsed back: value in JSON units and half a unit of its last digit.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    pub value: f64,
    pub tolerance: f64,
}

impl Shown {
    pub fn matches(&self, json: f64) -> bool {
        (json - self.value).abs() <= self.tolerance * (1.0 + 1e-9) + 1e-15
    }
}

/// Every number in `text`: `-1,234.5`, `0.480%` (-> 0.0048), `48.0×`, `6e-6`.
pub fn numbers(text: &str) -> Vec<Shown> {
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
pub fn json_numbers(value: &Value, out: &mut Vec<f64>) {
    match value {
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::Array(items) => items.iter().for_each(|v| json_numbers(v, out)),
        Value::Object(map) => map.values().for_each(|v| json_numbers(v, out)),
        _ => {}
    }
}

/// A Markdown table: header cells and body rows (cells unescaped).
#[derive(Debug)]
pub struct MdTable {
    pub header: Vec<String>,
    /// Per column: right-aligned (a figure column)?
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl MdTable {
    /// The body row whose first cells equal `key`.
    pub fn row(&self, key: &[&str]) -> &[String] {
        self.rows
            .iter()
            .find(|r| key.iter().enumerate().all(|(i, k)| r[i] == *k))
            .unwrap_or_else(|| panic!("no row {key:?} in {:?}", self.rows))
    }

    /// The body row with these (column, cell) values.
    pub fn find(&self, keys: &[(&str, &str)]) -> &[String] {
        let cols: Vec<(usize, &str)> = keys.iter().map(|(c, v)| (self.col(c), *v)).collect();
        self.rows
            .iter()
            .find(|r| cols.iter().all(|(i, v)| r[*i] == *v))
            .unwrap_or_else(|| panic!("no row {keys:?} in {:?}", self.rows))
    }

    pub fn col(&self, title: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == title)
            .unwrap_or_else(|| panic!("no column {title} in {:?}", self.header))
    }
}

pub fn split_cells(line: &str) -> Vec<String> {
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

pub fn md_tables(md: &str) -> Vec<MdTable> {
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
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace('\u{a0}', " ")
}

pub fn html_tables(html: &str) -> Vec<MdTable> {
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

pub fn table_with<'a>(tables: &'a [MdTable], columns: &[&str]) -> Vec<&'a MdTable> {
    tables.iter().filter(|t| columns.iter().all(|c| t.header.iter().any(|h| h == c))).collect()
}

pub fn first_table<'a>(tables: &'a [MdTable], columns: &[&str]) -> &'a MdTable {
    table_with(tables, columns).into_iter().next().unwrap_or_else(|| panic!("no table with {columns:?}"))
}

/// Assert that `cell` shows exactly the given JSON values, in order.
#[track_caller]
pub fn assert_shows(cell: &str, expected: &[f64]) {
    let shown = numbers(cell);
    assert_eq!(shown.len(), expected.len(), "cell {cell:?} vs {expected:?}");
    for (s, &e) in shown.iter().zip(expected) {
        assert!(s.matches(e), "cell {cell:?} shows {} (±{}), JSON has {e}", s.value, s.tolerance);
    }
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Markdown text with its backslash escapes removed (what a reader sees).
pub fn plain(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut chars = md.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_punctuation()) {
            out.push(chars.next().unwrap());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Markdown from the heading whose text is exactly `title` (any level, escapes removed)
/// to the next heading of the same or a higher level.
pub fn md_block<'a>(md: &'a str, title: &str) -> &'a str {
    let mut start = None;
    let mut level = 0;
    let mut offset = 0;
    for line in md.split_inclusive('\n') {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        let is_heading = hashes > 0 && line[hashes..].starts_with(' ');
        match start {
            None if is_heading && plain(line[hashes + 1..].trim_end()) == title => {
                start = Some(offset);
                level = hashes;
            }
            Some(s) if is_heading && hashes <= level => return &md[s..offset],
            _ => {}
        }
        offset += line.len();
    }
    match start {
        Some(s) => &md[s..],
        None => panic!("no heading {title:?} in the report"),
    }
}

/// The bullet `- **LABEL:** text` of a block, text returned.
pub fn bullet<'a>(block: &'a str, label: &str) -> &'a str {
    let prefix = format!("- **{label}:** ");
    block
        .lines()
        .find_map(|l| plain_prefix(l, &prefix))
        .unwrap_or_else(|| panic!("no bullet {label:?} in {block}"))
}

fn plain_prefix<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    // Labels are escaped like any text: compare unescaped, return the raw rest.
    let end = line.find(":** ")? + 4;
    (plain(&line[..end]) == prefix).then(|| &line[end..])
}
