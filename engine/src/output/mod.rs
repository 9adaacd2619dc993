//! Where records go: buffered capture files, and their rotation.

mod file;
pub(crate) mod naming;
mod post_rotate;
pub(crate) mod rotate;
mod stream;

pub(crate) use file::FileSink;
pub(crate) use rotate::{Rotation, RotationPolicy};
pub(crate) use stream::FileStream;
