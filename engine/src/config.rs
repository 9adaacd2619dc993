// Over 500 lines: every setting of a capture and its checks in one place, with their tests.
//! One validated capture configuration. Every bad value is rejected here with
//! a message that names the setting ([`Field`]).

use crate::error::{ConfigError, Field};
use crate::format::{FileFormat, TsPrecision};
use crate::output::RotationPolicy;
use crate::storage::{DiskBudget, IoMode, SinkSpec, DIRECT_BUFFERS};
use std::path::PathBuf;
use std::time::Duration;

/// How an `-i` value names a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interface {
    /// A virtual device to create, e.g. `net_pcap0,rx_pcap=in.pcap`.
    Vdev {
        /// The whole spec, handed to EAL's `--vdev`.
        spec: String,
        /// The device (and port) name: the spec up to the first comma.
        name: String,
    },
    /// A PCI device, `[DDDD:]BB:DD.F`.
    Pci(String),
    /// A DPDK port number.
    PortId(u16),
    /// A kernel interface name (`eth1`, `ens1f0`), opened as
    /// [`crate::nic::resolve_kernel_names`] decides.
    Kernel(String),
}

/// True for what Linux takes as an interface name: 1 to 15 bytes of
/// letters, digits, `-`, `_` and `.`.
fn is_kernel_name(text: &str) -> bool {
    (1..=15).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Largest frame one packet buffer holds (DPDK's default data room less
/// its headroom): zcap's pool has single-segment buffers of this size.
pub const MAX_SINGLE_BUFFER_FRAME: u32 = 2048;

/// net_null sets every packet's length to its `size=` without looking at the
/// buffer (and with `copy=1` writes that many bytes into it): a size larger
/// than one buffer made zcap read, or net_null write, past the buffer's end.
fn check_net_null_size(spec: &str) -> Result<(), ConfigError> {
    let Some(size) = spec.split(',').find_map(|kv| kv.strip_prefix("size=")) else {
        return Ok(());
    };
    match size.parse::<u32>() {
        Ok(n) if n <= MAX_SINGLE_BUFFER_FRAME => Ok(()),
        _ => Err(ConfigError::new(
            Field::Interface,
            format!("net_null size={size}: must be a number of bytes up to {MAX_SINGLE_BUFFER_FRAME}, what one packet buffer holds"),
        )),
    }
}

impl Interface {
    /// Parses an `-i` value.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = |message: String| ConfigError::new(Field::Interface, message);
        let text = text.trim();
        if text.is_empty() {
            return Err(bad("empty interface".into()));
        }
        if let Ok(id) = text.parse::<u16>() {
            return Ok(Interface::PortId(id));
        }
        let name = text.split(',').next().unwrap_or_default();
        let starts_like_driver = name.starts_with("net_") || name.starts_with("eth_");
        if starts_like_driver {
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad(format!("bad virtual device name {name:?}")));
            }
            if name.starts_with("net_null") {
                check_net_null_size(text)?;
            }
            return Ok(Interface::Vdev {
                spec: text.to_owned(),
                name: name.to_owned(),
            });
        }
        if text.contains(':') {
            return if is_pci_address(text) {
                Ok(Interface::Pci(text.to_owned()))
            } else {
                Err(bad(format!(
                    "malformed PCI address {text:?} (expected DDDD:BB:DD.F, e.g. 0000:03:00.0)"
                )))
            };
        }
        if is_kernel_name(text) {
            return Ok(Interface::Kernel(text.to_owned()));
        }
        Err(bad(format!(
            "{text:?} is not an interface name, a PCI address, a DPDK vdev spec (net_null0, net_pcap0,rx_pcap=FILE) or a port number"
        )))
    }

    /// The DPDK device name to look the port up by (port ids need no lookup).
    pub fn device_name(&self) -> Option<&str> {
        match self {
            Interface::Vdev { name, .. } => Some(name),
            Interface::Pci(addr) => Some(addr),
            Interface::PortId(_) => None,
            Interface::Kernel(name) => Some(name),
        }
    }

    /// The files a net_pcap vdev replays (`rx_pcap=`), in queue order.
    pub fn replayed_files(&self) -> Vec<PathBuf> {
        match self {
            Interface::Vdev { spec, name } if name.starts_with("net_pcap") => spec
                .split(',')
                .filter_map(|kv| kv.strip_prefix("rx_pcap="))
                .map(PathBuf::from)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// True for a source that ends by itself: a pcap file replayed once.
    pub fn is_finite(&self) -> bool {
        match self {
            Interface::Vdev { spec, name } => {
                name.starts_with("net_pcap")
                    && spec.contains("rx_pcap=")
                    && !spec.contains("infinite_rx=1")
            }
            _ => false,
        }
    }
}

/// True for `[DDDD:]BB:DD.F`.
pub(crate) fn is_pci_address(text: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = text.split(':').collect();
    let (domain, bus, devfn) = match parts.as_slice() {
        [d, b, df] => (Some(*d), *b, *df),
        [b, df] => (None, *b, *df),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    domain.is_none_or(|d| hex(d, 4))
        && hex(bus, 2)
        && hex(dev, 2)
        && func.len() == 1
        && matches!(func.chars().next(), Some('0'..='7'))
}

/// `-j`: where packet stamps come from, as tcpdump names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeStampType {
    /// A replay's own times for net_pcap, the host clock for the rest.
    #[default]
    Default,
    /// The host clock (the TSC, anchored to the system clock).
    Host,
    /// The NIC's RX timestamps, put on the system clock's time.
    Adapter,
    /// The NIC's RX timestamps on the NIC's own clock.
    AdapterUnsynced,
}

impl TimeStampType {
    /// Parses `-j host|adapter|adapter_unsynced`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text {
            "host" => Ok(TimeStampType::Host),
            "adapter" => Ok(TimeStampType::Adapter),
            "adapter_unsynced" => Ok(TimeStampType::AdapterUnsynced),
            _ => Err(ConfigError::new(
                Field::TimeStamps,
                format!("expected host, adapter or adapter_unsynced, not {text:?}"),
            )),
        }
    }

    /// True for the NIC's own stamps.
    pub fn from_adapter(self) -> bool {
        matches!(
            self,
            TimeStampType::Adapter | TimeStampType::AdapterUnsynced
        )
    }
}

/// Whether idle poll loops sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleMode {
    /// Back off when the machine has fewer CPUs than busy threads.
    Auto,
    /// Always busy-poll (dedicated cores).
    Busy,
    /// Always back off when idle (shared cores).
    Backoff,
}

impl IdleMode {
    /// Parses `--idle auto|busy|backoff`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text {
            "auto" => Ok(IdleMode::Auto),
            "busy" => Ok(IdleMode::Busy),
            "backoff" => Ok(IdleMode::Backoff),
            _ => Err(ConfigError::new(
                Field::Idle,
                format!("expected auto, busy or backoff, not {text:?}"),
            )),
        }
    }
}

/// EAL and resource settings shared by `zcap` and `zcap-bench`.
#[derive(Debug, Clone)]
pub struct DpdkConfig {
    /// The ports to capture on.
    pub interfaces: Vec<Interface>,
    /// RX queues per port (`None`: every replayed file of a net_pcap port, else 1).
    pub queues: Option<u16>,
    /// CPUs for the poll loops (`None`: every CPU but the first).
    pub lcores: Option<Vec<usize>>,
    /// CPUs for the writer threads (`None`: CPUs no poll loop uses, else the
    /// main lcore's).
    pub writer_cpus: Option<Vec<usize>>,
    /// Run on 4 KiB pages.
    pub no_huge: bool,
    /// EAL memory in MB.
    pub mem_mb: Option<u32>,
    /// Raw EAL arguments.
    pub eal_args: Vec<String>,
    /// Mbufs in the pool (`None`: sized from queues, descriptors and rings).
    pub mbufs: Option<u32>,
    /// RX descriptors per queue.
    pub rx_descriptors: u16,
    /// Packets per receive call.
    pub burst: usize,
    /// Idle behaviour of the poll loops.
    pub idle: IdleMode,
    /// DPDK's log level (1-8).
    pub log_level: u32,
    /// The RSS key the ports hash with.
    pub rss_key: crate::nic::rss::RssKey,
    /// `--mtu`: the MTU to set (`None`: a NIC's largest, a vdev's own).
    pub mtu: Option<u16>,
    /// `-j`: where stamps come from.
    pub time_stamps: TimeStampType,
    /// `-w -`: records go to stdout, so DPDK's log lines go to stderr.
    pub stdout_is_output: bool,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            interfaces: Vec::new(),
            queues: None,
            lcores: None,
            writer_cpus: None,
            no_huge: false,
            mem_mb: None,
            eal_args: Vec::new(),
            mbufs: None,
            rx_descriptors: 1024,
            burst: 32,
            idle: IdleMode::Auto,
            log_level: 3,
            rss_key: crate::nic::rss::RssKey::Symmetric,
            mtu: None,
            time_stamps: TimeStampType::Default,
            stdout_is_output: false,
        }
    }
}

impl DpdkConfig {
    /// True when every source is a replayed file: the capture ends by itself,
    /// and its poll loops may wait (for the ring, for mbufs) instead of dropping.
    pub fn replays_only(&self) -> bool {
        self.interfaces.iter().all(Interface::is_finite)
    }

    /// Checks the values that need no DPDK to check.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, message: &str| Err(ConfigError::new(field, message));
        if self.interfaces.is_empty() {
            return bad(Field::Interface, "no interface given (try net_null0)");
        }
        if self.queues == Some(0) {
            return bad(Field::Queues, "at least one queue is needed");
        }
        if self.burst == 0 || self.burst > crate::pipeline::MAX_BURST {
            let max = crate::pipeline::MAX_BURST;
            return bad(Field::Burst, &format!("must be 1 to {max}"));
        }
        if let Some(m) = self.mbufs.filter(|m| !(64..=(1 << 30)).contains(m)) {
            let problem = format!("{m} is not a usable pool size (64 to 2^30)");
            return bad(Field::Mbufs, &problem);
        }
        if matches!(&self.lcores, Some(l) if l.is_empty()) {
            return bad(Field::Lcores, "empty core list");
        }
        if matches!(&self.writer_cpus, Some(l) if l.is_empty()) {
            return bad(Field::WriterCpus, "empty core list");
        }
        Ok(())
    }
}

/// Parses a core list such as `1,2,4-6`; the caller names its flag in errors.
pub fn parse_core_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad core list {text:?} (expected e.g. 1,2,4-6)");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cores.is_empty() {
        return Err(format!("bad core list {text:?}"));
    }
    Ok(cores)
}

/// Everything `zcap` needs to run one capture.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Ports, queues, cores, memory.
    pub dpdk: DpdkConfig,
    /// The output file.
    pub output: PathBuf,
    /// Its format.
    pub format: FileFormat,
    /// pcap timestamp precision.
    pub precision: TsPrecision,
    /// Bytes kept per packet.
    pub snaplen: u32,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// One file per queue, no merge.
    pub per_queue_files: bool,
    /// Live report period (`None`: no live report).
    pub stats_interval: Option<Duration>,
    /// Where to write the JSON report.
    pub stats_json: Option<PathBuf>,
    /// Slots per queue ring.
    pub ring_size: u32,
    /// How files are written (`--io`).
    pub io: IoMode,
    /// Bytes per write (`--buffer-size`); `None`: the I/O mode's default.
    pub buffer_bytes: Option<usize>,
    /// Direct I/O: buffers per file, one filling and the rest in flight.
    pub buffers: usize,
    /// Directories the writers' files are spread over (`--volumes`): writer
    /// k writes in volume k mod V. Empty: where `output` says.
    pub volumes: Vec<PathBuf>,
    /// The most disk this capture's files may take (`--max-disk`).
    pub max_disk: Option<DiskBudget>,
    /// Longest time a record may sit in the buffer.
    pub flush_interval: Duration,
    /// For finite sources: stop once nothing arrived for this long.
    pub idle_stop: Duration,
    /// A pcap-filter expression; packets it rejects are counted as filtered.
    pub filter: Option<String>,
    /// File rotation (`-C`, `-G`, `-W`, `-z`).
    pub rotation: RotationPolicy,
    /// HdrHistogram interval log of the rx → written latency (`.hlog`).
    pub latency_log: Option<PathBuf>,
    /// Latency percentile plot (SVG).
    pub latency_plot: Option<PathBuf>,
    /// Benchmark only (`zcap-bench --mode handoff`): writers free every
    /// packet unencoded, counted as writer drops, so a run measures the poll
    /// loops, the rings and the pool's round trip without the encoder.
    pub hand_off_only: bool,
    /// Write an index beside every file (`--index`/`--no-index`); `None`:
    /// only when rotating.
    pub index: Option<bool>,
    /// `--compress zstd:LEVEL`: files are `.zst`, one zstd frame per write.
    pub compress: Option<i32>,
    /// `--publish`: records go to a JetStream stream instead of files.
    pub publish: Option<PublishConfig>,
    /// `-Z USER`: drop to USER once the ports run and the first files are
    /// open.
    pub run_as: Option<String>,
}

/// `--publish nats://...`, `--sensor` and the stream's settings.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    pub target: crate::publish::StreamTarget,
    /// The subjects' sensor token (the host name by default).
    pub sensor: String,
    /// The stream zcap creates when it is missing.
    pub stream: crate::publish::StreamSpec,
    /// Messages each writer may have unacknowledged.
    pub window: usize,
    /// `-w` too: files as always, and a copy of every record published.
    pub files: bool,
}

impl CaptureConfig {
    /// A capture of `interfaces` to `output` with every default.
    pub fn new(interfaces: Vec<Interface>, output: PathBuf) -> Self {
        let format = FileFormat::from_path(&output.to_string_lossy());
        CaptureConfig {
            dpdk: DpdkConfig {
                interfaces,
                ..DpdkConfig::default()
            },
            output,
            format,
            precision: TsPrecision::Nano,
            snaplen: 262_144,
            count: None,
            duration: None,
            per_queue_files: false,
            stats_interval: Some(Duration::from_secs(1)),
            stats_json: None,
            ring_size: 4096,
            io: IoMode::Auto,
            buffer_bytes: None,
            buffers: DIRECT_BUFFERS,
            volumes: Vec::new(),
            max_disk: None,
            flush_interval: Duration::from_millis(200),
            idle_stop: Duration::from_millis(500),
            filter: None,
            rotation: RotationPolicy::default(),
            latency_log: None,
            latency_plot: None,
            hand_off_only: false,
            index: None,
            compress: None,
            publish: None,
            run_as: None,
        }
    }

    /// True when every file gets an index beside it.
    pub fn indexes(&self) -> bool {
        self.index.unwrap_or_else(|| self.rotation.rotates())
    }

    /// Checks every value that needs neither DPDK nor the file system.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.dpdk.validate()?;
        let bad = |field, message: &str| Err(ConfigError::new(field, message));
        if self.snaplen == 0 {
            return bad(Field::Snaplen, "snaplen must be at least 1");
        }
        if self.count == Some(0) {
            return bad(Field::Count, "count must be at least 1");
        }
        if self.duration == Some(Duration::ZERO) {
            return bad(Field::Duration, "must be more than 0 seconds");
        }
        if self.ring_size < 64 {
            return bad(Field::RingSize, "at least 64 slots");
        }
        if self.output.as_os_str().is_empty() {
            return bad(Field::Output, "empty file name");
        }
        self.rotation.validate()?;
        self.validate_stdout()?;
        self.validate_storage()?;
        self.validate_publish()?;
        if let Some(plot) = &self.latency_plot {
            if !plot
                .to_string_lossy()
                .to_ascii_lowercase()
                .ends_with(".svg")
            {
                let problem = format!("{} must end in .svg (the plot is SVG)", plot.display());
                return bad(Field::LatencyPlot, &problem);
            }
        }
        Ok(())
    }
}

impl CaptureConfig {
    /// True for `-w -`: one pcap or pcapng stream on standard output.
    pub fn writes_to_stdout(&self) -> bool {
        crate::storage::is_stdout(&self.output)
    }

    /// `-w -` is one stream: what needs files or several outputs is refused.
    fn validate_stdout(&self) -> Result<(), ConfigError> {
        if !self.writes_to_stdout() {
            return Ok(());
        }
        let stream_only = [
            (self.per_queue_files, "--per-queue-files"),
            (self.io == IoMode::Direct, "--io direct"),
        ];
        let mut given = self.file_flags().into_iter().chain(stream_only);
        match given.find(|(given, _)| *given) {
            Some((_, flag)) => Err(ConfigError::new(
                Field::Output,
                format!("-w - is one stream on standard output: {flag} needs files"),
            )),
            None => Ok(()),
        }
    }

    /// The flags that only files have, each with whether it was given.
    fn file_flags(&self) -> [(bool, &'static str); 6] {
        [
            (
                self.rotation.rotates() || self.rotation.max_files.is_some(),
                "-C, -G or -W",
            ),
            (self.rotation.post_rotate.is_some(), "-z"),
            (self.max_disk.is_some(), "--max-disk"),
            (self.index == Some(true), "--index"),
            (self.compress.is_some(), "--compress"),
            (!self.volumes.is_empty(), "--volumes"),
        ]
    }

    fn validate_storage(&self) -> Result<(), ConfigError> {
        let bad = |field, message: &str| Err(ConfigError::new(field, message));
        if let Some(bytes) = self.buffer_bytes {
            if !(4096..=(256 << 20)).contains(&bytes) {
                return bad(Field::BufferSize, "must be from 4K to 256M");
            }
        }
        if !(2..=1024).contains(&self.buffers) {
            return bad(Field::Buffers, "must be from 2 to 1024");
        }
        if self.max_disk.is_some() && !self.rotation.rotates() {
            return bad(
                Field::MaxDisk,
                "needs rotation (-C or -G): a budget is kept by removing the oldest closed files",
            );
        }
        if self.volumes.iter().any(|v| v.as_os_str().is_empty()) {
            return bad(Field::Volumes, "an empty directory name");
        }
        Ok(())
    }

    /// `--publish` replaces the files: what only files have is refused.
    fn validate_publish(&self) -> Result<(), ConfigError> {
        let Some(publish) = &self.publish else {
            return Ok(());
        };
        let bad = |message: &str| Err(ConfigError::new(Field::Publish, message));
        if publish.files {
            return self.validate_publish_beside_files(publish);
        }
        let given = self.file_flags().into_iter();
        let io = (self.io != IoMode::Auto, "--io");
        if let Some((_, flag)) = given.chain([io]).find(|(given, _)| *given) {
            return bad(&format!(
                "{flag} is for files; a published capture has none"
            ));
        }
        if self.format != FileFormat::Pcap {
            return bad("messages hold pcap records: -F pcapng does not apply");
        }
        Self::validate_stream(publish)
    }

    /// `-w` with `--publish`: each writer drains one queue, whose subject
    /// its copies go to.
    fn validate_publish_beside_files(&self, publish: &PublishConfig) -> Result<(), ConfigError> {
        if !self.per_queue_files {
            return Err(ConfigError::new(
                Field::Publish,
                "with -w, add --per-queue-files: each queue's writer publishes on its own subject",
            ));
        }
        Self::validate_stream(publish)
    }

    fn validate_stream(publish: &PublishConfig) -> Result<(), ConfigError> {
        let bad = |message: &str| Err(ConfigError::new(Field::Publish, message));
        if !crate::publish::valid_sensor(&publish.sensor) {
            return bad(&format!(
                "--sensor {:?}: letters, digits, - and _ only (it is a subject token)",
                publish.sensor
            ));
        }
        if !(1..=5).contains(&publish.stream.replicas) {
            return bad("--stream-replicas must be 1 to 5");
        }
        if !(1..=4096).contains(&publish.window) {
            return bad("--publish-window must be 1 to 4096 messages");
        }
        Ok(())
    }

    /// How each writer's files are written.
    pub(crate) fn sink_spec(&self) -> SinkSpec {
        SinkSpec {
            mode: self.io,
            buffer_bytes: self.buffer_bytes,
            buffers: self.buffers,
            flush_interval: self.flush_interval,
            zstd_level: self.compress,
            // Compressed files end far short of -C's raw bytes.
            preallocate: self.rotation.max_bytes.filter(|_| self.compress.is_none()),
            #[cfg(test)]
            memory: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_parse_by_shape() {
        assert_eq!(Interface::parse("3").unwrap(), Interface::PortId(3));
        assert_eq!(
            Interface::parse("0000:03:00.0").unwrap(),
            Interface::Pci("0000:03:00.0".into())
        );
        assert_eq!(
            Interface::parse("03:00.1").unwrap(),
            Interface::Pci("03:00.1".into())
        );
        let vdev = Interface::parse("net_pcap0,rx_pcap=a.pcap").unwrap();
        assert_eq!(vdev.device_name(), Some("net_pcap0"));
        assert!(vdev.is_finite());
        assert!(!Interface::parse("net_pcap0,rx_pcap=a.pcap,infinite_rx=1")
            .unwrap()
            .is_finite());
        assert!(!Interface::parse("net_null0").unwrap().is_finite());
        for name in ["eth1", "ens1f0", "veth-zcap.1"] {
            assert_eq!(
                Interface::parse(name).unwrap(),
                Interface::Kernel(name.into())
            );
        }
        let two = Interface::parse("net_pcap0,rx_pcap=a.pcap,rx_pcap=/b/c.pcapng").unwrap();
        let files = vec![PathBuf::from("a.pcap"), PathBuf::from("/b/c.pcapng")];
        assert_eq!(two.replayed_files(), files);
        assert!(Interface::parse("net_null0")
            .unwrap()
            .replayed_files()
            .is_empty());
    }

    #[test]
    fn net_null_sizes_past_one_buffer_are_refused() {
        assert!(Interface::parse("net_null0,size=1514").is_ok());
        assert!(Interface::parse("net_null0,size=2048,copy=1").is_ok());
        for bad in [
            "net_null0,size=9000",
            "net_null1,copy=1,size=2049",
            "net_null0,size=big",
        ] {
            let err = Interface::parse(bad).unwrap_err();
            assert_eq!(err.field, Field::Interface, "{bad}");
            assert!(err.message.starts_with("net_null size="), "{bad}: {err:?}");
        }
    }

    #[test]
    fn malformed_interfaces_name_the_flag() {
        for bad in [
            "0000:zz:00.0",
            "0000:03:00.9",
            "00:03:00:0",
            "",
            "net_pcap0;rm",
            "a-name-longer-than-15",
            "eth0/x",
        ] {
            let err = Interface::parse(bad).unwrap_err();
            assert_eq!(err.field, Field::Interface, "{bad}: {err:?}");
        }
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("1,3-5").unwrap(), vec![1, 3, 4, 5]);
        assert!(parse_core_list("5-3").is_err());
        assert!(parse_core_list("a").is_err());
    }

    #[test]
    fn bad_values_are_rejected_with_their_field() {
        let base = CaptureConfig::new(vec![Interface::PortId(0)], "x.pcap".into());
        let mut c = base.clone();
        c.snaplen = 0;
        assert_eq!(c.validate().unwrap_err().field, Field::Snaplen);
        let mut c = base.clone();
        c.count = Some(0);
        assert_eq!(c.validate().unwrap_err().field, Field::Count);
        let mut c = base.clone();
        c.dpdk.queues = Some(0);
        assert_eq!(c.validate().unwrap_err().field, Field::Queues);
        let mut c = base.clone();
        c.dpdk.mbufs = Some(1);
        assert_eq!(c.validate().unwrap_err().field, Field::Mbufs);
        let mut c = base;
        c.output = PathBuf::new();
        assert_eq!(c.validate().unwrap_err().field, Field::Output);
    }

    #[test]
    fn stdout_takes_one_plain_stream() {
        let base = CaptureConfig::new(vec![Interface::PortId(0)], "-".into());
        assert!(base.writes_to_stdout());
        assert_eq!(base.format, FileFormat::Pcap);
        base.validate().unwrap();
        assert!(!base.indexes(), "no index beside a pipe");
        let mut rotating = base.clone();
        rotating.rotation.max_bytes = Some(1_000_000);
        let mut queues = base.clone();
        queues.per_queue_files = true;
        let mut direct = base.clone();
        direct.io = IoMode::Direct;
        let mut compressed = base;
        compressed.compress = Some(3);
        for (config, flag) in [
            (rotating, "-C"),
            (queues, "--per-queue-files"),
            (direct, "--io direct"),
            (compressed, "--compress"),
        ] {
            let err = config.validate().unwrap_err();
            assert_eq!(err.field, Field::Output, "{flag}");
            assert!(err.message.contains(flag), "{flag}: {}", err.message);
        }
    }
}
