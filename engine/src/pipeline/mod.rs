//! The capture pipeline: poll loops → rings → writers, and the shutdown that
//! drains them.

pub(crate) mod backoff;
pub(crate) mod clock;
pub mod control;
pub(crate) mod device_clock;
mod handoff;
pub(crate) mod merge;
pub(crate) mod poll;
pub(crate) mod rx;
pub(crate) mod stamp;
pub(crate) mod stop;
pub(crate) mod writer;

/// Most packets one receive call handles.
pub const MAX_BURST: usize = 64;

/// Most packets a writer takes from a ring in one dequeue. Larger than a
/// receive burst: each dequeue pulls the ring's producer index across from
/// the poll loop's core and sends the consumer index back, so fewer, larger
/// dequeues move fewer cache lines per packet.
pub const WRITER_BURST: usize = 256;
