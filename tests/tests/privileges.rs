//! Issue 16: `-Z USER`. Once the ports run and the first files are open,
//! zcap is USER (every thread), its files are USER's, rotated ones are
//! created as USER, and EAL's runtime directory still goes away at the end.
//! The suite runs as root (scripts/setup.sh needs it); `nobody` is in every
//! Debian's /etc/passwd.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(60);
/// A live source, small packets, a small pool.
const SOURCE: [&str; 5] = ["-q", "-i", "net_null0,size=64", "--mbufs", "4096"];

/// `nobody`'s uid and gid, from /etc/passwd.
fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a user nobody");
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// The real, effective, saved and file-system ids on `key` (`Uid:`, `Gid:`).
fn ids(pid: u32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_capture_drops_to_the_user_and_its_files_are_the_users() {
    assert!(is_root(), "the suite runs as root (scripts/test.sh)");
    let (uid, gid) = nobody();
    let dir = TempDir::new("run-as");
    let out = dir.path("cap");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cap = out.join("c.pcap");
    let json = dir.path("run-as.json");
    let mut child = Command::new(bin_dir().join("zcap"))
        .args(TEST_EAL)
        .args(SOURCE)
        .args(["--duration", "3"])
        .args([
            "-w",
            cap.to_str().unwrap(),
            "-C",
            "5",
            "-W",
            "4",
            "-Z",
            "nobody",
        ])
        .args(["--stats-json", json.to_str().unwrap()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ids(pid, "Uid:"), vec![uid; 4], "every uid is nobody's");
    assert_eq!(ids(pid, "Gid:"), vec![gid; 4]);
    // Every thread: the poll loop and the writer too.
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let tid: u32 = task.file_name().to_string_lossy().parse().unwrap();
        assert_eq!(ids(tid, "Uid:")[1], uid, "thread {tid}");
    }
    let (status, stderr) = wait_for_stderr(&mut child, LIMIT);
    assert!(status.success(), "{stderr}");
    let report = final_json(&json);
    assert_conservation(&report);
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
    assert!(files.len() >= 4, "rotated: {} files", files.len());
    for file in files.iter().map(|e| e.path()).chain([json.clone()]) {
        let meta = file.metadata().unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{}", file.display());
    }
    // Removed by the clean-up process once zcap has ended.
    let runtime = std::path::PathBuf::from(format!("/var/run/dpdk/zcap-{pid}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while runtime.exists() {
        assert!(
            Instant::now() < deadline,
            "{} left behind",
            runtime.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_user_who_cannot_write_the_directory_stops_at_the_first_rotation() {
    assert!(is_root(), "the suite runs as root (scripts/test.sh)");
    let dir = TempDir::new("run-as-denied");
    let cap = dir.path("c.pcap");
    let json = dir.path("denied.json");
    let args = [&SOURCE[..], &["--duration", "5"]].concat();
    let more = [
        "-w",
        cap.to_str().unwrap(),
        "-C",
        "2",
        "-Z",
        "nobody",
        "--stats-json",
    ];
    let run = zcap(
        &[&args[..], &more, &[json.to_str().unwrap()]].concat(),
        LIMIT,
    );
    // The first file's index and the second file are USER's to create:
    // both are refused, each said once, and the capture stops (exit 1).
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("cannot write the index") && lines[0].contains("Permission denied"));
    assert!(lines[1].contains("cannot create") && lines[1].contains("c-0001.pcap"));
    // The first file, made before the drop, is whole and nobody's.
    let first = dir.path("c-0000.pcap");
    assert!(count_pcap(&first) > 0);
    assert_eq!(first.metadata().unwrap().uid(), nobody().0);
    assert_conservation(&final_json(&json));
}

#[test]
fn an_unknown_user_is_refused_before_anything_starts() {
    let dir = TempDir::new("run-as-ghost");
    let cap = dir.path("c.pcap");
    let args = ["-i", "net_null0", "-c", "10", "-w", cap.to_str().unwrap()];
    zcap(&[&args[..], &["-Z", "no-such-user"]].concat(), LIMIT)
        .assert_usage_error("-Z: no user named \"no-such-user\"");
    assert!(!cap.exists());
}
