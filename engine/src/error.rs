//! zcap's error type: what went wrong, in one line, and which exit status it means.

use std::fmt;

/// Which documented exit status an error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad arguments or environment (no hugepages, no such port, bad filter,
    /// unwritable path, ...): exit status 2, nothing captured.
    Usage,
    /// Failure while capturing (a write failed, a poll loop died): exit status 1,
    /// files written so far closed and valid.
    Runtime,
}

/// An error with a one-line message that names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZcapError {
    /// Exit-status class.
    pub kind: ErrorKind,
    /// One line, naming the flag or resource at fault.
    pub message: String,
}

impl ZcapError {
    /// A bad-input error (exit status 2).
    pub fn usage(message: impl Into<String>) -> Self {
        ZcapError {
            kind: ErrorKind::Usage,
            message: one_line(message.into()),
        }
    }

    /// A runtime failure (exit status 1).
    pub fn runtime(message: impl Into<String>) -> Self {
        ZcapError {
            kind: ErrorKind::Runtime,
            message: one_line(message.into()),
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Usage => 2,
            ErrorKind::Runtime => 1,
        }
    }
}

fn one_line(message: String) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for ZcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ZcapError {}
