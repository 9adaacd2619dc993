//! zcap's capture engine: a thin safe DPDK layer ([`dpdk`]), the capture
//! [`pipeline`], file [`format`]s and [`output`]s, and [`stats`].
//!
//! [`capture::run_capture`] runs one capture; [`bench`] runs the testpmd-style
//! benchmark. Both bring DPDK up through [`session::Session`].

// Only the thin DPDK layer may use `unsafe` (it allows it for itself).
#![deny(unsafe_code)]

pub mod bench;
pub mod capture;
pub mod config;
pub mod dpdk;
pub mod error;
mod filter_rewrite;
pub mod format;
pub mod monitor;
pub mod output;
pub mod pipeline;
pub mod session;
pub mod stats;

pub use error::{ErrorKind, ZcapError};
