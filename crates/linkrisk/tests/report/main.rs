//! Report tests: run directories — one built from hand-written audit fixtures, one measured
//! on two synthetic models — are rendered, and the numbers in the Markdown and HTML are
//! parsed back and compared with the JSON; hostile names must stay text; a headless
//! browser checks the page's layout.

#![allow(clippy::unwrap_used)] // test-only helpers: a panic is the failure report

mod browser;
mod checks;
mod escaping;
mod fixture;
mod fixtures;
mod measured;
mod models;
mod parse;
