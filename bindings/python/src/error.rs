//! The one bridge from `linkrisk::Error` to Python exceptions: input problems raise
//! `linkrisk.InputError`, bad settings `linkrisk.ConfigError` (both `ValueError`s, defined
//! in `linkrisk/_errors.py`, which also parses the row and column out of the message), an
//! unwritable output `OSError`. The text is the CLI's (`linkrisk: error: TEXT`).

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyRuntimeError};
use pyo3::prelude::*;

/// The Python exception for a library error.
pub fn to_py(err: linkrisk::Error) -> PyErr {
    Python::attach(|py| match &err {
        linkrisk::Error::Input { path, message } => {
            raise(py, "InputError", err.to_string(), message, Some(path))
        }
        linkrisk::Error::Io { path, source } => {
            raise(py, "InputError", err.to_string(), &source.to_string(), Some(path))
        }
        linkrisk::Error::Config(message) => raise(py, "ConfigError", err.to_string(), message, None),
        linkrisk::Error::Write { .. } => PyOSError::new_err(err.to_string()),
        linkrisk::Error::Cancelled => PyKeyboardInterrupt::new_err("cancelled"),
        _ => PyRuntimeError::new_err(err.to_string()),
    })
}

/// A `ConfigError` for an argument the bindings check themselves (as the CLI checks flags).
pub fn config(message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| raise(py, "ConfigError", format!("invalid configuration: {message}"), &message, None))
}

fn raise(py: Python<'_>, class: &str, text: String, message: &str, path: Option<&std::path::Path>) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let errors = py.import("linkrisk._errors")?;
        let file = path.map(|p| p.display().to_string());
        let value = errors.getattr(class)?.call1((text.clone(), message, file))?;
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| e)
}
