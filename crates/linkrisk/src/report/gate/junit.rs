//! The gate's outcome as JUnit XML, the test-report format CI systems (GitLab, Jenkins,
//! GitHub Actions reporters) display: one `<testsuite>` per model, one `<testcase>` per
//! check, a `<failure>` for a figure over its threshold or an attack that did not run, and
//! `<skipped>` for a skipped attack accepted by `--allow-skipped`. Written with quick-xml,
//! which escapes text and attribute values; characters XML 1.0 cannot hold at all (control
//! characters) are replaced.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::{Check, CheckKind, GateOutcome};
use crate::error::{Error, Result};

/// The outcome as a JUnit XML document.
pub fn to_junit(outcome: &GateOutcome) -> Result<String> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let failures = outcome.violations().count();
    let skipped = outcome.checks.iter().filter(|c| c.kind == CheckKind::SkippedAttack && c.passed).count();
    write(&mut writer, Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = BytesStart::new("testsuites");
    root.push_attribute(("name", "linkrisk gate"));
    root.push_attribute(("tests", outcome.checks.len().to_string().as_str()));
    root.push_attribute(("failures", failures.to_string().as_str()));
    root.push_attribute(("errors", "0"));
    root.push_attribute(("skipped", skipped.to_string().as_str()));
    write(&mut writer, Event::Start(root))?;
    for model in &outcome.models {
        let checks: Vec<&Check> = outcome.checks.iter().filter(|c| &c.model == model).collect();
        let name = clean(model.as_deref().unwrap_or("(unlabelled)"));
        let mut suite = BytesStart::new("testsuite");
        suite.push_attribute(("name", name.as_str()));
        suite.push_attribute(("tests", checks.len().to_string().as_str()));
        suite.push_attribute((
            "failures",
            checks.iter().filter(|c| c.violated()).count().to_string().as_str(),
        ));
        suite.push_attribute(("errors", "0"));
        let suite_skipped = checks.iter().filter(|c| c.kind == CheckKind::SkippedAttack && c.passed).count();
        suite.push_attribute(("skipped", suite_skipped.to_string().as_str()));
        write(&mut writer, Event::Start(suite))?;
        for check in checks {
            test_case(&mut writer, &name, check)?;
        }
        write(&mut writer, Event::End(BytesEnd::new("testsuite")))?;
    }
    write(&mut writer, Event::End(BytesEnd::new("testsuites")))?;
    let mut text = String::from_utf8(writer.into_inner())
        .map_err(|e| Error::config(format!("the JUnit XML is not UTF-8: {e}")))?;
    text.push('\n');
    Ok(text)
}

fn test_case(writer: &mut Writer<Vec<u8>>, model: &str, check: &Check) -> Result<()> {
    let mut case = BytesStart::new("testcase");
    let classname = format!("linkrisk.gate.{model}");
    let name = clean(&check.name());
    case.push_attribute(("classname", classname.as_str()));
    case.push_attribute(("name", name.as_str()));
    let (element, kind) = match (check.kind, check.passed) {
        (_, false) => {
            (Some("failure"), if check.kind == CheckKind::Threshold { "threshold" } else { "skipped_attack" })
        }
        (CheckKind::SkippedAttack, true) => (Some("skipped"), "skipped_attack"),
        (CheckKind::Threshold, true) => (None, ""),
    };
    let Some(element) = element else {
        return write(writer, Event::Empty(case));
    };
    write(writer, Event::Start(case))?;
    let message = clean(&check.describe());
    let mut detail = BytesStart::new(element);
    detail.push_attribute(("message", message.as_str()));
    if element == "failure" {
        detail.push_attribute(("type", kind));
        write(writer, Event::Start(detail))?;
        write(writer, Event::Text(BytesText::new(&message)))?;
        write(writer, Event::End(BytesEnd::new(element)))?;
    } else {
        write(writer, Event::Empty(detail))?;
    }
    write(writer, Event::End(BytesEnd::new("testcase")))
}

fn write(writer: &mut Writer<Vec<u8>>, event: Event<'_>) -> Result<()> {
    writer.write_event(event).map_err(|e| Error::config(format!("cannot write the JUnit XML: {e}")))
}

/// `text` with the characters XML 1.0 forbids (control characters other than tab, newline
/// and carriage return) replaced by U+FFFD; the writer escapes the rest.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && !matches!(c, '\t' | '\n' | '\r') { '\u{fffd}' } else { c })
        .collect()
}
