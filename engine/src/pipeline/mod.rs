//! The capture pipeline: poll loops → rings → writers, and the shutdown that
//! drains them.

pub mod clock;
pub mod control;
pub mod merge;
pub mod poll;
pub mod stamp;
pub mod writer;

/// Most packets one receive or dequeue call handles.
pub const MAX_BURST: usize = 64;
