//! Where records go: buffered capture files, and their rotation.

mod file;
pub mod naming;
pub mod rotate;

pub use file::FileSink;
pub use rotate::{Rotation, RotationPolicy};
