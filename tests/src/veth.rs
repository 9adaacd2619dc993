//! A live port for the tests: a veth pair inside a network namespace of the
//! test's own (never the machine's interfaces), and a sender that puts a
//! pcap file's frames into one end at a bounded rate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The end frames are sent into.
pub const SEND_END: &str = "zc-send";
/// The end zcap captures (by its interface name).
pub const CAPTURE_END: &str = "zc-cap";

const SENDER: &str = include_str!("send_frames.py");

/// A network namespace holding a veth pair, both ends up; removed (with
/// the pair) when dropped.
pub struct VethPair {
    namespace: String,
    sender: PathBuf,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the tests need iproute2's ip (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl VethPair {
    /// Creates namespace `zcap-test-PID-N` with the pair inside.
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let namespace = format!("zcap-test-{}-{n}", std::process::id());
        ip(&["netns", "add", &namespace]);
        let pair = VethPair {
            sender: std::env::temp_dir().join(format!("{namespace}-send.py")),
            namespace,
        };
        let ns = pair.namespace.as_str();
        // No IPv6 in the namespace: the kernel then sends nothing by itself
        // (no neighbour discovery, no MLD reports) onto the pair.
        pair.run(&["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"]);
        pair.run(&["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"]);
        ip(&[
            "-n",
            ns,
            "link",
            "add",
            SEND_END,
            "type",
            "veth",
            "peer",
            "name",
            CAPTURE_END,
        ]);
        for end in [SEND_END, CAPTURE_END] {
            ip(&["-n", ns, "link", "set", end, "up"]);
        }
        std::fs::write(&pair.sender, SENDER).unwrap();
        pair
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace]).arg(program);
        cmd
    }

    /// Runs `args` inside the namespace; panics if it fails.
    pub fn run(&self, args: &[&str]) {
        let status = self
            .command(Path::new(args[0]))
            .args(&args[1..])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{args:?} failed in {}", self.namespace);
    }

    /// The interface flags of `end` (IFF_PROMISC is 0x100).
    pub fn flags(&self, end: &str) -> u32 {
        let out = self
            .command(Path::new("cat"))
            .arg(format!("/sys/class/net/{end}/flags"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap()
    }

    /// Sends `pcap`'s frames into [`SEND_END`] at most `rate` per second
    /// (0: as fast as the sender goes); returns how many it sent.
    pub fn send(&self, pcap: &Path, rate: u32) -> u64 {
        let out = self
            .command(Path::new("python3"))
            .arg(&self.sender)
            .args([SEND_END, pcap.to_str().unwrap(), &rate.to_string()])
            .output()
            .expect("the tests need python3 (Debian's dpdk package depends on it)");
        assert!(
            out.status.success(),
            "the sender failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Default for VethPair {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
        let _ = std::fs::remove_file(&self.sender);
    }
}
