//! Report structs (serde) shared by audits, and renderers for JSON, Markdown and HTML.
