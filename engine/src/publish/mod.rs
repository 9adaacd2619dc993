//! Beyond one host: capture into a NATS JetStream stream (`--publish`) and
//! extract from it (`zcap-extract --stream`). docs/STREAM.md describes the
//! messages. NATS itself stays on [`link`]'s runtime thread.

mod block;
mod ceiling;
mod fetch;
mod link;
mod mirror;
mod sink;
mod target;
mod window;

pub(crate) use block::RECORD_HEADER;
pub use ceiling::{run_bare_publisher, BarePublish, BarePublishReport};
pub use fetch::{extract_stream, StreamExtract};
pub use link::StreamSpec;
pub(crate) use link::{Link, HEADER_ROOM};
pub(crate) use mirror::Mirror;
pub use sink::PUBLISH_WINDOW;
pub(crate) use sink::{Channel, PublishCounts, Published, Stop, MESSAGE_BYTES};
pub(crate) use target::subject;
pub use target::{default_sensor, parse_age, valid_sensor, StreamTarget};
