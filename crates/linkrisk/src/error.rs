//! The library's error type. Every error a user can cause names what to fix: the file, the
//! row or column, the flag and the bad value. The CLI prints the message and exits 2.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in linkrisk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input file could not be read at all (missing, permissions, I/O failure).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An input file was read but its content breaks the input contract. `message` names
    /// the row, column or tensor and says how to fix it.
    #[error("{}: {message}", path.display())]
    Input {
        /// The offending file (or cohort directory when no single file is at fault).
        path: PathBuf,
        /// What is wrong, where, and what to do about it.
        message: String,
    },
    /// A configuration value (flag, parameter) is invalid; the message names it and the
    /// accepted range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An output could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The caller stopped the work through [`crate::engine::Progress::cancelled`].
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Shorthand for [`Error::Input`].
    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input { path: path.into(), message: message.into() }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Shorthand for [`Error::Write`].
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write { path: path.into(), source }
    }
}
