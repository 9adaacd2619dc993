//! zcap's error type: what went wrong, in one line, and which exit status it means.

use std::fmt;

/// Which documented exit status an error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad arguments or environment (no hugepages, no such port, bad filter,
    /// unwritable path, ...): exit status 2, nothing captured.
    Usage,
    /// Failure while capturing (a write failed, a poll loop died): exit status 1,
    /// files written so far closed and valid.
    Runtime,
}

/// The setting a configuration error is about. The library names no flags:
/// the binaries map each field to theirs (`zcap` maps [`Field::Mbufs`] to
/// `--mbufs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The capture interfaces (`-i`), and what they replay.
    Interface,
    /// RX queues per port.
    Queues,
    /// Packets per receive call.
    Burst,
    /// The packet pool's size.
    Mbufs,
    /// The poll loops' CPUs.
    Lcores,
    /// The writers' CPUs.
    WriterCpus,
    /// What idle loops do.
    Idle,
    /// Bytes kept per packet.
    Snaplen,
    /// Records to write before stopping.
    Count,
    /// Seconds to capture.
    Duration,
    /// Slots of each queue's ring.
    RingSize,
    /// The output file.
    Output,
    /// Rotation by size.
    RotateSize,
    /// Rotation by time.
    RotatePeriod,
    /// How many rotated files to keep.
    RotateFiles,
    /// The command run on each closed file.
    PostRotate,
    /// The latency plot's file.
    LatencyPlot,
    /// The latency interval log's file.
    LatencyLog,
    /// The JSON report's file.
    StatsJson,
    /// The filter expression.
    Filter,
    /// The benchmark's mode.
    Mode,
    /// How files are written (direct or buffered).
    Io,
    /// Bytes per write.
    BufferSize,
    /// Direct-I/O buffers per file.
    Buffers,
    /// The directories writers are spread over.
    Volumes,
    /// The disk budget.
    MaxDisk,
    /// The stream published to.
    Publish,
    /// The user to run as (`-Z`).
    User,
    /// The ports' MTU.
    Mtu,
    /// The RSS key.
    RssKey,
    /// The timestamp source (`-j`).
    TimeStamps,
}

impl Field {
    /// The field's name, as the library's own messages print it.
    pub fn name(self) -> &'static str {
        match self {
            Field::Interface => "interface",
            Field::Queues => "queues",
            Field::Burst => "burst",
            Field::Mbufs => "mbufs",
            Field::Lcores => "lcores",
            Field::WriterCpus => "writer cpus",
            Field::Idle => "idle",
            Field::Snaplen => "snaplen",
            Field::Count => "count",
            Field::Duration => "duration",
            Field::RingSize => "ring size",
            Field::Output => "output",
            Field::Io => "io",
            Field::BufferSize => "buffer size",
            Field::Buffers => "buffers",
            Field::Volumes => "volumes",
            Field::MaxDisk => "disk budget",
            Field::Publish => "publish",
            Field::User => "user",
            Field::Mtu => "mtu",
            Field::RssKey => "rss key",
            Field::TimeStamps => "time stamp type",
            Field::RotateSize => "rotation size",
            Field::RotatePeriod => "rotation period",
            Field::RotateFiles => "file count",
            Field::PostRotate => "post-rotate command",
            Field::LatencyPlot => "latency plot",
            Field::LatencyLog => "latency log",
            Field::StatsJson => "stats json",
            Field::Filter => "filter",
            Field::Mode => "mode",
        }
    }
}

/// A configuration value that cannot work: which setting, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting at fault.
    pub field: Field,
    /// Why, in one line, without naming the setting.
    pub message: String,
}

impl ConfigError {
    /// `field` cannot be as given, because `message`.
    pub fn new(field: Field, message: impl Into<String>) -> Self {
        ConfigError {
            field,
            message: message.into(),
        }
    }
}

impl From<ConfigError> for ZcapError {
    fn from(e: ConfigError) -> Self {
        ZcapError::config(e.field, e.message)
    }
}

/// An error with a one-line message that names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZcapError {
    /// Exit-status class.
    pub kind: ErrorKind,
    /// The setting at fault, when a setting is.
    pub field: Option<Field>,
    /// One line, naming the resource at fault (the setting is in `field`).
    pub message: String,
}

impl ZcapError {
    /// A bad value of `field` (exit status 2).
    pub fn config(field: Field, message: impl Into<String>) -> Self {
        ZcapError {
            field: Some(field),
            ..ZcapError::usage(message)
        }
    }

    /// A bad-input error (exit status 2).
    pub fn usage(message: impl Into<String>) -> Self {
        ZcapError {
            kind: ErrorKind::Usage,
            field: None,
            message: one_line(message.into()),
        }
    }

    /// A runtime failure (exit status 1).
    pub fn runtime(message: impl Into<String>) -> Self {
        ZcapError {
            kind: ErrorKind::Runtime,
            field: None,
            message: one_line(message.into()),
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Usage => 2,
            ErrorKind::Runtime => 1,
        }
    }
}

fn one_line(message: String) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for ZcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}: {}", field.name(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ZcapError {}
