//! Helpers for zcap's end-to-end tests: build and find the binaries, make pcap
//! fixtures, run zcap on vdevs, and read its files back with independent
//! readers (the pcap-file crate; tshark / capinfos where the test says so).
#![forbid(unsafe_code)]

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::TsResolution;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod frames;
pub mod loopfs;
pub mod nats;
pub mod veth;

/// One packet as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Original (wire) length.
    pub orig_len: u32,
    /// The bytes kept.
    pub data: Vec<u8>,
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Builds the release binaries once per test process and returns their folder.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--quiet", "-p", "zcap-apps", "--bins"])
            .current_dir(workspace())
            .status()
            .expect("cannot run cargo to build the zcap binaries");
        assert!(status.success(), "building the zcap binaries failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target"));
        let target = if target.is_absolute() {
            target
        } else {
            workspace().join(target)
        };
        target.join("release")
    })
}

/// A fresh directory for one test's files, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a directory named after the test.
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("zcap-test-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished run of a binary left.
#[derive(Debug)]
pub struct Run {
    /// Exit status (None: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts a failure while capturing: status 1 and one line on stderr
    /// holding every one of `needles`.
    pub fn assert_runtime_error(&self, needles: &[&str]) {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit 1; stderr: {}",
            self.stderr
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "one line: {lines:?}");
        for needle in needles {
            assert!(lines[0].contains(needle), "{needle:?} not in {}", lines[0]);
        }
    }

    /// Asserts a bad-input failure: status 2, one line on stderr naming
    /// `needle`, and no sign of a panic.
    pub fn assert_usage_error(&self, needle: &str) {
        assert_eq!(
            self.code,
            Some(2),
            "expected exit 2, got {:?}; stderr: {}",
            self.code,
            self.stderr
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got: {:?}",
            lines
        );
        assert!(
            lines[0].contains(needle),
            "stderr {:?} does not mention {needle:?}",
            lines[0]
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
    }

    /// Asserts success and returns self.
    pub fn assert_ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "failed: {:?}\nstderr:\n{}",
            self.code,
            self.stderr
        );
        self
    }
}

/// Common arguments for tests: no hugepages, few mbufs, quiet logs.
pub const TEST_EAL: [&str; 1] = ["--no-huge"];

/// Runs `zcap ARGS` (with `--no-huge` added) and waits at most `limit`.
pub fn zcap(args: &[&str], limit: Duration) -> Run {
    run_bin("zcap", args, limit)
}

/// Runs a zcap binary with `--no-huge` and a time limit.
pub fn run_bin(name: &str, args: &[&str], limit: Duration) -> Run {
    let mut cmd = Command::new(bin_dir().join(name));
    cmd.args(TEST_EAL).args(args);
    run_with_limit(cmd, limit)
}

/// Replays `input` through net_pcap into `out` (`-q`, with `extra`);
/// returns the final JSON report, written beside `out` as `.json`.
pub fn replay(input: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let json = out.with_extension("json");
    let args = [
        "-q",
        "-i",
        &spec,
        "-w",
        out.to_str().unwrap(),
        "--stats-json",
    ];
    let args = [&args[..], &[json.to_str().unwrap()], extra].concat();
    zcap(&args, Duration::from_secs(120)).assert_ok();
    final_json(&json)
}

/// Runs `zcap-extract ARGS` (it takes no EAL arguments) for at most 120 s.
pub fn zcap_extract(args: &[&str]) -> Run {
    let mut cmd = Command::new(bin_dir().join("zcap-extract"));
    cmd.args(args);
    run_with_limit(cmd, Duration::from_secs(120))
}

/// Waits at most `limit` for a child whose stderr is piped; returns its
/// exit status and what it wrote there.
pub fn wait_for_stderr(
    child: &mut std::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let status = wait_with_limit(child, limit);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status, stderr)
}

/// Runs a command, killing it after `limit` (the test then fails).
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Run {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the binary");
    let pid = child.id();
    let deadline = Instant::now() + limit;
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        true
    });
    let output = child
        .wait_with_output()
        .expect("cannot wait for the binary");
    let run = Run::from(output);
    drop(watchdog);
    run
}

/// A child process killed when dropped, so a failing test leaves no capture
/// running (declare it after what the process uses, so it goes first).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends `signal` (`INT`, `HUP`, ...) to `child`.
pub fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits for `child` at most `limit`; kills it and fails the test past that.
pub fn wait_with_limit(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the process did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes an Ethernet pcap file with `precision` timestamps.
pub fn write_pcap(path: &Path, records: &[Record], nano: bool) {
    write_pcap_link(path, records, nano, 1);
}

/// Writes a pcap file of link type `link` (a `LINKTYPE_*`).
pub fn write_pcap_link(path: &Path, records: &[Record], nano: bool, link: u32) {
    let file = std::fs::File::create(path).unwrap();
    let header = PcapHeader {
        ts_resolution: if nano {
            TsResolution::NanoSecond
        } else {
            TsResolution::MicroSecond
        },
        snaplen: 65535,
        datalink: pcap_file::DataLink::from(link),
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(file, header).unwrap();
    for r in records {
        let packet = PcapPacket::new(Duration::from_nanos(r.ts_ns), r.orig_len, &r.data);
        writer.write_packet(&packet).unwrap();
    }
}

/// Reads a pcap file with the pcap-file crate; returns its header and records.
pub fn read_pcap(path: &Path) -> (PcapHeader, Vec<Record>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = PcapReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.header();
    let mut records = Vec::new();
    // The raw reader: pcap-file 2.0's checked one wrongly rejects records whose
    // orig_len exceeds the file's snaplen, which every truncated capture has.
    let nanos_per_frac = match header.ts_resolution {
        TsResolution::MicroSecond => 1_000,
        TsResolution::NanoSecond => 1,
    };
    while let Some(packet) = reader.next_raw_packet() {
        let p = packet.unwrap_or_else(|e| panic!("{}: bad record: {e}", path.display()));
        assert_eq!(
            p.incl_len as usize,
            p.data.len(),
            "{}: torn record",
            path.display()
        );
        assert!(
            p.incl_len <= header.snaplen,
            "{}: record longer than snaplen",
            path.display()
        );
        records.push(Record {
            ts_ns: u64::from(p.ts_sec) * 1_000_000_000 + u64::from(p.ts_frac) * nanos_per_frac,
            orig_len: p.orig_len,
            data: p.data.into_owned(),
        });
    }
    (header, records)
}

/// Counts a pcap file's records with the pcap-file crate, checking each is
/// whole, without keeping them (live captures can be large).
pub fn count_pcap(path: &Path) -> u64 {
    let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).unwrap());
    let mut reader = PcapReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut count = 0;
    while let Some(packet) = reader.next_raw_packet() {
        let p = packet.unwrap_or_else(|e| panic!("{}: bad record: {e}", path.display()));
        assert_eq!(
            p.incl_len as usize,
            p.data.len(),
            "{}: torn record",
            path.display()
        );
        count += 1;
    }
    count
}

/// What a pcapng file holds, as pcap-file reads it.
#[derive(Debug, Default)]
pub struct Pcapng {
    /// Interface names (if_name), in order.
    pub interfaces: Vec<String>,
    /// Packets, in file order.
    pub records: Vec<Record>,
    /// The RX queue of each packet (epb_queue), if present.
    pub queues: Vec<Option<u32>>,
    /// Interface statistics blocks seen.
    pub statistics_blocks: usize,
    /// Each statistics block's (isb_ifrecv, isb_ifdrop, isb_usrdeliv).
    pub statistics: Vec<(u64, u64, u64)>,
    /// Each interface's link type (`LINKTYPE_*`).
    pub link_types: Vec<u32>,
}

/// Reads a pcapng file with the pcap-file crate.
pub fn read_pcapng(path: &Path) -> Pcapng {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    let file = std::fs::File::open(path).unwrap();
    let mut reader = PcapNgReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Pcapng::default();
    while let Some(block) = reader.next_block() {
        match block.unwrap_or_else(|e| panic!("{}: bad block: {e}", path.display())) {
            Block::InterfaceDescription(idb) => {
                let name = idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                    _ => None,
                });
                out.interfaces.push(name.unwrap_or_default());
                out.link_types.push(idb.linktype.into());
            }
            Block::EnhancedPacket(epb) => {
                out.queues.push(epb.options.iter().find_map(|o| match o {
                    EnhancedPacketOption::Unknown(o) if o.code == 6 && o.value.len() == 4 => {
                        let v = &o.value;
                        Some(u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
                    }
                    _ => None,
                }));
                out.records.push(Record {
                    ts_ns: epb.timestamp.as_nanos() as u64,
                    orig_len: epb.original_len,
                    data: epb.data.into_owned(),
                });
            }
            Block::InterfaceStatistics(isb) => {
                use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption as O;
                let mut counts = (0, 0, 0);
                for option in &isb.options {
                    match option {
                        O::IsbIfRecv(v) => counts.0 = *v,
                        O::IsbIfDrop(v) => counts.1 = *v,
                        O::IsbUsrDeliv(v) => counts.2 = *v,
                        _ => {}
                    }
                }
                out.statistics.push(counts);
                out.statistics_blocks += 1
            }
            _ => {}
        }
    }
    out
}

/// Reads the last line of a stats JSON file (the final report).
pub fn final_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let last = text.lines().last().expect("empty stats JSON");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("bad JSON {last:?}: {e}"))
}

/// A u64 at a JSON pointer such as `/drops/ring_full`.
pub fn json_u64(json: &serde_json::Value, pointer: &str) -> u64 {
    json.pointer(pointer)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("no integer at {pointer} in {json}"))
}

/// Asserts conservation: received = written + filtered + every zcap-side drop.
pub fn assert_conservation(json: &serde_json::Value) {
    let received = json_u64(json, "/packets_received");
    let accounted = json_u64(json, "/packets_written")
        + json_u64(json, "/packets_filtered")
        + json_u64(json, "/drops/ring_full")
        + json_u64(json, "/drops/writer")
        + json_u64(json, "/drops/count_limit");
    assert_eq!(received, accounted, "conservation broken: {json}");
}

/// True when a Debian tool (tshark, capinfos, ...) is installed.
pub fn have_tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a tool and returns its stdout and stderr; panics if it fails.
pub fn tool(name: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is required for this test (scripts/setup.sh installs it): {e}")
    });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{name} {args:?} failed: {stderr}");
    (stdout, stderr)
}
