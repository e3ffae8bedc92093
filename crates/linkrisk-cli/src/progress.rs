//! Progress bars on stderr, hidden when stderr is not a terminal (pipes, CI, tests).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `total` units of work, labelled `what`; invisible unless stderr is a TTY.
#[allow(dead_code)]
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), draw_target());
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} (eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// The library engine's progress callbacks drawn on an indicatif bar (hidden off a TTY).
pub struct EngineBar(pub ProgressBar);

impl EngineBar {
    /// A new, empty bar; each ranking pass sets its own length and label.
    pub fn new(what: &str) -> EngineBar {
        EngineBar(bar(0, what))
    }
}

impl linkrisk::engine::Progress for EngineBar {
    fn begin(&self, total: u64, what: &str) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(what.to_string());
    }

    fn advance(&self, queries: u64) {
        self.0.inc(queries);
    }
}
