//! Which files records go to: names, rotation, `-W`, `-z` (the storage
//! layer writes them).

mod helper;
mod index_file;
pub(crate) mod naming;
mod post_rotate;
pub(crate) mod rotate;
mod stream;

pub(crate) use helper::SPARE_SUFFIX;
pub(crate) use index_file::IndexSpec;
pub(crate) use rotate::{Rotation, RotationPolicy};
pub(crate) use stream::{ClosingFile, FileStream, Removed, SharedBudget};
