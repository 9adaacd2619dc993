//! The archive: an index beside every capture file, written while
//! capturing, and extraction by time window and filter across many files
//! (`zcap-extract`). No DPDK: libpcap's compiler and matcher decide on
//! every packet; the index only says which packets need not be read.

pub(crate) mod extract;
pub(crate) mod flow;
pub(crate) mod index;
mod plan;
mod query;
pub(crate) mod reader;
pub(crate) mod source;
mod stream;
mod time;
mod wire;

pub use extract::{extract, ExtractSpec, ExtractSummary};
pub use index::index_path;
pub use time::parse_time;
