//! Network interfaces as users name them, and what a port's capabilities
//! decide: how a kernel interface name is opened ([`open`]), the symmetric
//! RSS key ([`rss`]), the MTU and scattered receive ([`sizing`]), and the
//! interface list of `zcap -D` ([`list`]). Reading `/sys/class/net` is the
//! one piece of I/O ([`sysfs`]); every decision is plain code.

pub mod list;
pub mod open;
pub mod rss;
pub mod sizing;
pub mod sysfs;

pub use open::{af_packet_iface, resolve_kernel_names, Opening};
pub use sysfs::KernelInterface;
