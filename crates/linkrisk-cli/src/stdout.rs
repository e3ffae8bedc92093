//! Standard output that never panics. std's `println!` panics when stdout is a closed pipe
//! (`linkrisk relink DIR | head -1`) or a full device (`> /dev/full`); every `print!` and
//! `println!` of this crate goes through [`write`] instead (main.rs shadows the two macros).
//!
//! A closed pipe ends the output quietly, as in ripgrep: later output is dropped and the
//! command's exit code stands (0 on success; `linkrisk gate` still exits 1 when a threshold
//! fails, so a pipeline cannot turn a failed gate into a pass by closing its pipe). Any
//! other write error (a full disk) is kept, later output is dropped, and `main` reports it
//! with exit 2 once the command has finished ([`take_error`]).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set once a write to stdout failed: nothing more is written.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first write error that was not a closed pipe.
static ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Write `args` to stdout and flush; on failure, stop writing and remember the error.
pub fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            if let Ok(mut slot) = ERROR.lock() {
                slot.get_or_insert(e);
            }
        }
    }
}

/// Write `text` to stdout as [`write`] does (for the JSON report sent to `-`).
pub fn write_str(text: &str) {
    write(format_args!("{text}"));
}

/// The write error (other than a closed pipe) that stopped the output, if any.
pub fn take_error() -> Option<std::io::Error> {
    ERROR.lock().ok().and_then(|mut slot| slot.take())
}
