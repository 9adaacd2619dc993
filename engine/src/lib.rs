//! zcap's capture engine: a thin safe DPDK layer ([`dpdk`]), the capture
//! [`pipeline`], file [`format`]s and [`output`]s, and [`stats`].
//!
//! [`capture::run_capture`] runs one capture; [`bench`] runs the testpmd-style
//! benchmark. Both bring DPDK up through [`session::Session`].

// Only the thin DPDK layer may use `unsafe` (it allows it for itself).
#![deny(unsafe_code)]
// What the binaries and tests use is `pub`; everything else is crate-private,
// so the compiler sees dead code.
#![warn(unreachable_pub)]

/// `eprintln!` that never panics: a closed stderr (`zcap 2>&1 | head`) must
/// not kill the thread that wanted to say something (a `-z` runner did, and
/// the capture then waited for it for ever).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that never panics (see [`say!`]).
#[macro_export]
macro_rules! say_on_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub mod account;
pub mod archive;
pub mod bench;
pub mod capture;
pub mod config;
pub mod dpdk;
pub mod error;
mod filter_rewrite;
pub mod format;
mod monitor;
pub mod nic;
mod output;
pub mod pipeline;
mod placement;
pub mod publish;
mod session;
pub mod stats;
pub mod storage;

pub use error::{ConfigError, ErrorKind, Field, ZcapError};
