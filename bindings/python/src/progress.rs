//! The library's `Progress` for Python callers: polls Python's signal handlers (so Ctrl-C
//! raises `KeyboardInterrupt` within one block of queries) and calls an optional Python
//! callback `progress(what, done, total)`, both at most every `POLL` so a fast pass does not
//! spend its time taking the GIL. The error the poll raised (KeyboardInterrupt, or one from
//! the callback) cancels the pass and is re-raised when the call returns.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Least time between two polls of Python.
const POLL: Duration = Duration::from_millis(100);

/// Progress state of the current pass.
struct State {
    what: String,
    done: u64,
    total: u64,
    last_poll: Instant,
}

/// Progress reporting and cancellation through Python.
pub struct PyProgress {
    callback: Option<Py<PyAny>>,
    state: Mutex<State>,
    error: Mutex<Option<PyErr>>,
}

impl PyProgress {
    /// Poll Python's signals and call `callback` (when given) as passes advance.
    pub fn new(callback: Option<Py<PyAny>>) -> PyProgress {
        let state = State { what: String::new(), done: 0, total: 0, last_poll: Instant::now() };
        PyProgress { callback, state: Mutex::new(state), error: Mutex::new(None) }
    }

    /// The error that stopped the pass, if any (taken: raised once).
    pub fn take_error(&self) -> Option<PyErr> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }

    fn poll(&self, what: &str, done: u64, total: u64) {
        if linkrisk::engine::Progress::cancelled(self) {
            return;
        }
        let result = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(cb) = &self.callback {
                cb.call1(py, (what, done, total))?;
            }
            Ok(())
        });
        if let (Err(e), Ok(mut slot)) = (result, self.error.lock()) {
            *slot = Some(e);
        }
    }
}

impl linkrisk::engine::Progress for PyProgress {
    fn begin(&self, total: u64, what: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.what = what.to_string();
            s.done = 0;
            s.total = total;
            s.last_poll = Instant::now();
        }
        self.poll(what, 0, total);
    }

    fn advance(&self, queries: u64) {
        let due = match self.state.lock() {
            Ok(mut s) => {
                s.done += queries;
                let due = s.last_poll.elapsed() >= POLL || s.done >= s.total;
                if due {
                    s.last_poll = Instant::now();
                }
                due.then(|| (s.what.clone(), s.done, s.total))
            }
            Err(_) => None,
        };
        if let Some((what, done, total)) = due {
            self.poll(&what, done, total);
        }
    }

    fn cancelled(&self) -> bool {
        self.error.lock().map(|e| e.is_some()).unwrap_or(false)
    }
}

/// Run `work` with the GIL released, reporting through `progress`; a Python error raised by
/// a poll (Ctrl-C, a failing callback) wins over the library's `Cancelled`.
pub fn run<T: Send>(
    py: Python<'_>,
    progress: &PyProgress,
    work: impl FnOnce(&PyProgress) -> linkrisk::Result<T> + Send,
) -> PyResult<T> {
    let result = py.detach(|| work(progress));
    if let Some(err) = progress.take_error() {
        return Err(err);
    }
    // A last look at the signals: a Ctrl-C during a pass without progress calls.
    py.check_signals()?;
    result.map_err(crate::error::to_py)
}
