//! zcap's capture engine: a thin safe DPDK layer ([`dpdk`]), the capture
//! pipeline, file formats and outputs, and statistics.

pub mod dpdk;
