//! Statistics: per-core counters, the capture report (text and JSON).

pub(crate) mod counters;
pub(crate) mod histogram;
pub(crate) mod json;
pub(crate) mod plot;
mod report;
mod thread_cpu;

pub(crate) use counters::{QueueShared, WriterCounters};
pub use report::{
    CaptureReport, Drops, IntervalReport, LatencySummary, PortReport, PublishReport, QueueReport,
    WriterReport,
};
pub use thread_cpu::ThreadCpu;
