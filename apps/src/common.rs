//! What `zcap` and `zcap-bench` share: the DPDK flags, signal handling, and
//! turning errors into one line and a documented exit status.

use clap::Args;
use std::sync::Arc;
use zcap::config::{parse_core_list, DpdkConfig, IdleMode, Interface, TimeStampType};
use zcap::nic::rss::RssKey;
use zcap::pipeline::control::Control;
use zcap::storage::{parse_size, IoMode};
use zcap::{Field, ZcapError};

/// How files are written.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// How files are written: auto (direct I/O where the file system takes
    /// O_DIRECT and is not tmpfs), direct, or buffered (the page cache).
    #[arg(long = "io", value_name = "MODE", default_value = "auto")]
    pub io: String,
    /// Bytes per write, e.g. 1M (default: 1M direct, 64K buffered).
    #[arg(long = "buffer-size", value_name = "SIZE")]
    pub buffer_size: Option<String>,
    /// Direct I/O: buffers per file, one filling and the rest in flight.
    #[arg(long = "buffers", value_name = "N", default_value_t = zcap::storage::DIRECT_BUFFERS)]
    pub buffers: usize,
}

impl StorageArgs {
    /// The I/O mode, bytes per write and buffers.
    pub fn parse(&self) -> Result<(IoMode, Option<usize>, usize), ZcapError> {
        let io = IoMode::parse(&self.io).ok_or_else(|| {
            ZcapError::usage(format!(
                "--io: unknown mode {:?} (auto, direct or buffered)",
                self.io
            ))
        })?;
        let buffer_bytes = self
            .buffer_size
            .as_deref()
            .map(|s| parse_size(s).map(|b| b as usize))
            .transpose()
            .map_err(|e| ZcapError::usage(format!("--buffer-size: {e}")))?;
        Ok((io, buffer_bytes, self.buffers))
    }
}

/// Flags that bring DPDK up: ports, queues, cores, memory.
#[derive(Debug, Args)]
pub struct DpdkArgs {
    /// Port to capture on: an interface name (eth1; a NIC DPDK cannot
    /// take beside the kernel is read through net_af_packet, not kernel
    /// bypass), a PCI address (0000:03:00.0), a vdev spec (net_null0,
    /// net_pcap0,rx_pcap=in.pcap; created for you) or a port number.
    /// `zcap -D` lists them.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// RX queues per port (RSS spreads flows over them). Default: one per
    /// replayed file of a net_pcap vdev, else 1.
    #[arg(short = 'Q', long = "queues", value_name = "N")]
    pub queues: Option<u16>,
    /// CPUs for the poll loops, e.g. 1,2,4-6. Default: every CPU but the first.
    #[arg(short = 'l', long = "lcores", value_name = "LIST")]
    pub lcores: Option<String>,
    /// CPUs for the writer threads, e.g. 5-8. Default: CPUs no poll loop uses,
    /// else the first CPU (shared with the stats core).
    #[arg(long = "writer-cpus", value_name = "LIST")]
    pub writer_cpus: Option<String>,
    /// Run without hugepages (slower; needs no set-up).
    #[arg(long = "no-huge")]
    pub no_huge: bool,
    /// EAL memory in MB.
    #[arg(long = "mem", value_name = "MB")]
    pub mem: Option<u32>,
    /// Raw EAL arguments, passed through (e.g. "--log-level=8").
    #[arg(long = "eal", value_name = "ARGS", allow_hyphen_values = true)]
    pub eal: Option<String>,
    /// Mbufs in the packet pool. Default: sized from queues and rings.
    #[arg(long = "mbufs", value_name = "N")]
    pub mbufs: Option<u32>,
    /// RX descriptors per queue.
    #[arg(long = "rx-desc", value_name = "N", default_value_t = 1024)]
    pub rx_desc: u16,
    /// Packets per receive call (1-64).
    #[arg(long = "burst", value_name = "N", default_value_t = 32)]
    pub burst: usize,
    /// Idle poll loops and writers: auto (back off only when CPUs are shared:
    /// sleep after 1 ms with nothing to do, yield sooner to a loop on the same
    /// CPU), busy, backoff.
    #[arg(long = "idle", value_name = "MODE", default_value = "auto")]
    pub idle: String,
    /// The RSS key: symmetric (both directions of a connection on one
    /// queue) or driver (the driver's default key).
    #[arg(long = "rss-key", value_name = "KEY", default_value = "symmetric")]
    pub rss_key: String,
    /// The MTU to set on the ports. Default: a NIC's largest (with
    /// scattered receive where a frame exceeds one mbuf); a virtual
    /// device's as it is.
    #[arg(long = "mtu", value_name = "N")]
    pub mtu: Option<u16>,
    /// Time stamps: host (the host clock), adapter (the NIC's RX stamps on
    /// the system clock's time) or adapter_unsynced (on the NIC's own
    /// clock). Default: a replay's own times, else host.
    #[arg(short = 'j', long = "time-stamp-type", value_name = "TYPE")]
    pub time_stamps: Option<String>,
    /// Let DPDK log more (repeat for more).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// A pcap-filter expression (tcpdump syntax); also accepted as trailing words.
    #[arg(short = 'f', long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,
    /// The filter as words, as tcpdump takes it. Options may follow them, as
    /// with tcpdump on Linux; a word that starts with '-' goes after `--`.
    #[arg(value_name = "FILTER")]
    pub filter_words: Vec<String>,
}

impl DpdkArgs {
    /// The filter expression, from -f or the trailing words (not both).
    pub fn filter(&self) -> Result<Option<String>, ZcapError> {
        match (&self.filter, self.filter_words.is_empty()) {
            (Some(_), false) => Err(ZcapError::usage(
                "-f: give the filter either with -f or as trailing words, not both",
            )),
            (Some(f), true) => Ok(Some(f.clone())),
            (None, false) => Ok(Some(self.filter_words.join(" "))),
            (None, true) => Ok(None),
        }
    }

    /// The validated DPDK configuration.
    pub fn to_config(&self) -> Result<DpdkConfig, ZcapError> {
        let interfaces = self
            .interfaces
            .iter()
            .map(|i| Interface::parse(i))
            .collect::<Result<Vec<_>, _>>()?;
        let lcores = self
            .lcores
            .as_deref()
            .map(parse_core_list)
            .transpose()
            .map_err(|e| ZcapError::usage(format!("-l: {e}")))?;
        let writer_cpus = self
            .writer_cpus
            .as_deref()
            .map(parse_core_list)
            .transpose()
            .map_err(|e| ZcapError::usage(format!("--writer-cpus: {e}")))?;
        let config = DpdkConfig {
            interfaces,
            queues: self.queues,
            lcores,
            writer_cpus,
            no_huge: self.no_huge,
            mem_mb: self.mem,
            eal_args: self
                .eal
                .as_deref()
                .map(|a| a.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            mbufs: self.mbufs,
            rx_descriptors: self.rx_desc,
            burst: self.burst,
            idle: IdleMode::parse(&self.idle)?,
            log_level: 3 + u32::from(self.verbose).min(5),
            rss_key: RssKey::parse(&self.rss_key).ok_or_else(|| {
                ZcapError::config(
                    Field::RssKey,
                    format!("expected symmetric or driver, not {:?}", self.rss_key),
                )
            })?,
            mtu: self.mtu,
            time_stamps: self
                .time_stamps
                .as_deref()
                .map(TimeStampType::parse)
                .transpose()?
                .unwrap_or_default(),
            // The capture sets this for -w - (records on stdout).
            stdout_is_output: false,
        };
        // The engine validates the rest where it runs the configuration.
        Ok(config)
    }
}

/// Parses the command line; on a bad one prints one line and exits 2
/// (help and version print in full and exit 0).
pub fn parse_args<T: clap::Parser>(program: &str) -> T {
    T::try_parse().unwrap_or_else(|err| {
        use clap::error::ErrorKind;
        if matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) {
            let _ = err.print();
            std::process::exit(0);
        }
        let text = err.to_string();
        let first = text.lines().next().unwrap_or("bad arguments");
        let first = first.strip_prefix("error: ").unwrap_or(first);
        zcap::say!("{program}: {first} (see {program} --help)");
        std::process::exit(2);
    })
}

/// Handles signals on a thread of their own: SIGINT and SIGTERM stop
/// gracefully (a second one stops at once, files still closed valid); SIGHUP
/// starts new output files.
pub fn install_signal_handler(control: &Arc<Control>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let control = control.clone();
    // Failure here only means signals keep their default action.
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        let _ = std::thread::Builder::new()
            .name("zcap-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    match signal {
                        SIGHUP => control.request_rotation(),
                        _ => control.on_signal(),
                    }
                }
            });
    }
}

/// The flag that sets `field`. The engine names settings by field; the
/// binaries know their flags.
pub fn flag(field: Field) -> &'static str {
    match field {
        Field::Interface => "-i",
        Field::Queues => "-Q",
        Field::Burst => "--burst",
        Field::Mbufs => "--mbufs",
        Field::Lcores => "-l",
        Field::WriterCpus => "--writer-cpus",
        Field::Idle => "--idle",
        Field::Snaplen => "-s",
        Field::Count => "-c",
        Field::Duration => "--duration",
        Field::RingSize => "--ring-size",
        Field::Output => "-w",
        Field::RotateSize => "-C",
        Field::RotatePeriod => "-G",
        Field::RotateFiles => "-W",
        Field::PostRotate => "-z",
        Field::LatencyPlot => "--latency-plot",
        Field::LatencyLog => "--latency-log",
        Field::StatsJson => "--stats-json",
        Field::Filter => "-f",
        Field::Mode => "--mode",
        Field::Io => "--io",
        Field::BufferSize => "--buffer-size",
        Field::Buffers => "--buffers",
        Field::Volumes => "--volumes",
        Field::MaxDisk => "--max-disk",
        Field::Publish => "--publish",
        Field::User => "-Z",
        Field::Mtu => "--mtu",
        Field::RssKey => "--rss-key",
        Field::TimeStamps => "-j",
    }
}

/// Prints an error as one line, naming the flag at fault, and exits with
/// its status.
pub fn fail(program: &str, err: &ZcapError) -> ! {
    match err.field {
        Some(field) => zcap::say!("{program}: {}: {}", flag(field), err.message),
        None => zcap::say!("{program}: {}", err.message),
    }
    std::process::exit(err.exit_code());
}

/// Parses seconds given as a decimal number.
pub fn parse_seconds(flag: &str, text: &str) -> Result<std::time::Duration, ZcapError> {
    let secs: f64 = text
        .parse()
        .map_err(|_| ZcapError::usage(format!("{flag}: {text:?} is not a number of seconds")))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(ZcapError::usage(format!(
            "{flag}: must be a positive number of seconds"
        )));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
