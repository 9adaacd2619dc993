//! Where records go: buffered capture files.

mod file;

pub use file::FileSink;
