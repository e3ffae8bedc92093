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

/// The progress of a whole `linkrisk audit` / `linkrisk demo` run: one bar over the models
/// (which model, which audit, elapsed) above the current ranking pass's bar, both hidden off
/// a terminal; and one log line per step on stderr, printed in either case (CI logs).
pub struct RunProgress {
    multi: indicatif::MultiProgress,
    models: ProgressBar,
    /// The current ranking pass, for the library's `Progress` callbacks.
    pub pass: EngineBar,
    started: std::time::Instant,
}

impl RunProgress {
    /// Bars on stderr (hidden when it is not a terminal).
    pub fn new() -> RunProgress {
        let multi = indicatif::MultiProgress::with_draw_target(draw_target());
        let models = multi.add(ProgressBar::new(0));
        models.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] model {pos}/{len} {wide_msg}")
                .expect("static template"),
        );
        let pass = EngineBar(multi.add(bar(0, "ranking")));
        RunProgress { multi, models, pass, started: std::time::Instant::now() }
    }

    /// Show one runner event: update the bars, log the step.
    pub fn event(&self, event: linkrisk::runner::Event<'_>) {
        use linkrisk::runner::Event;
        match event {
            Event::Planned { models, .. } => self.models.set_length(models as u64),
            Event::Model { index, label, dir } => {
                self.models.set_position(index as u64 + 1);
                self.models.set_message(label.to_string());
                self.log(&format!("{label}: cohort {}", dir.display()));
            }
            Event::Audit { label, what, .. } => {
                self.models.set_message(format!("{label}: {what}"));
                self.log(&format!("{label}: {what}"));
            }
            Event::Done { .. } => self.pass.0.reset(),
            Event::NotRun { label, item } => {
                self.log(&format!("{label}: not run: {} {}: {}", item.audit, item.what, item.reason))
            }
            Event::Failed { label, failure } => {
                self.log(&format!("{label}: {} failed: {}", failure.audit, failure.error))
            }
            Event::Step { what } => {
                self.models.set_message(what.to_string());
                self.log(what);
            }
            Event::Rendering => self.log("rendering the report"),
        }
    }

    fn log(&self, line: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.multi.suspend(|| eprintln!("[{elapsed:>6.1} s] {line}"));
    }

    /// Remove the bars.
    pub fn finish(&self) {
        self.pass.0.finish_and_clear();
        self.models.finish_and_clear();
    }
}
