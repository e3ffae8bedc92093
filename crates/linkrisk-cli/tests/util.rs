//! Shared helpers for the CLI tests.

use assert_cmd::Command;

/// The `linkrisk` binary built by this package.
pub fn linkrisk() -> Command {
    Command::cargo_bin("linkrisk").expect("the linkrisk binary is built")
}

/// Parse stdout as JSON.
pub fn json_stdout(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}
