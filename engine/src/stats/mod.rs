//! Statistics: per-core counters, the capture report (text and JSON).

pub mod counters;
pub mod histogram;
pub mod json;
pub mod plot;
pub mod report;
pub mod thread_cpu;

pub use counters::{Counter, QueueCounters, QueueShared, WriterCounters};
pub use report::{CaptureReport, Drops, QueueReport, WriterReport};
pub use thread_cpu::ThreadCpu;
