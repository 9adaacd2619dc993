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
mod output;
pub mod pipeline;
mod placement;
pub mod publish;
mod session;
pub mod stats;
pub mod storage;

pub use error::{ConfigError, ErrorKind, Field, ZcapError};
