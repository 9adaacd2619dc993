//! Where records go: buffered capture files, and their rotation.

mod file;
pub mod naming;
mod post_rotate;
pub mod rotate;
mod stream;

pub use file::FileSink;
pub use rotate::{Rotation, RotationPolicy};
pub(crate) use stream::FileStream;
