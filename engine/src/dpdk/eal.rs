//! The Environment Abstraction Layer: initialised once per process, cleaned up on drop.

use super::error::{DpdkError, Result};
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// EAL can be initialised only once in a process's life, even after cleanup.
static EAL_STARTED: AtomicBool = AtomicBool::new(false);

/// Friendly EAL options; [`EalBuilder::args`] turns them into an argv.
#[derive(Debug, Clone, Default)]
pub struct EalBuilder {
    vdevs: Vec<String>,
    pci_allow: Vec<String>,
    /// Probe every PCI device a DPDK driver can take (`zcap -D`).
    probe_pci: bool,
    /// DPDK's log lines go to stderr (`-w -` owns stdout).
    logs_to_stderr: bool,
    /// lcore id -> CPU, in lcore order; lcore 0 is the main lcore.
    lcore_cpus: Vec<usize>,
    no_huge: bool,
    memory_mb: Option<u32>,
    file_prefix: Option<String>,
    log_level: Option<u32>,
    extra: Vec<String>,
}

impl EalBuilder {
    /// A builder with no devices: without `pci_allow`, EAL probes no PCI device.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a virtual device, e.g. `net_null0` or `net_pcap0,rx_pcap=in.pcap`.
    pub fn vdev(mut self, spec: impl Into<String>) -> Self {
        self.vdevs.push(spec.into());
        self
    }

    /// Allows (and probes) the PCI device at this address.
    pub fn pci(mut self, address: impl Into<String>) -> Self {
        self.pci_allow.push(address.into());
        self
    }

    /// Probes every PCI device bound to a DPDK-usable driver (vfio-pci,
    /// or a bifurcated one such as mlx5), for listing them.
    pub fn probe_all_pci(mut self) -> Self {
        self.probe_pci = true;
        self
    }

    /// Sends DPDK's log lines (stdout by default on Linux) to stderr, for
    /// a capture whose records go to stdout.
    pub fn logs_to_stderr(mut self, yes: bool) -> Self {
        self.logs_to_stderr = yes;
        self
    }

    /// Maps EAL lcores to CPUs: `cpus[0]` runs the main lcore, `cpus[i]` lcore `i`.
    /// Several lcores may share a CPU (useful on small machines).
    pub fn lcore_cpus(mut self, cpus: Vec<usize>) -> Self {
        self.lcore_cpus = cpus;
        self
    }

    /// Runs on ordinary 4 KiB pages instead of hugepages (slower, needs no set-up).
    pub fn no_huge(mut self, yes: bool) -> Self {
        self.no_huge = yes;
        self
    }

    /// Memory to preallocate, in MB (`-m`).
    pub fn memory_mb(mut self, mb: Option<u32>) -> Self {
        self.memory_mb = mb;
        self
    }

    /// DPDK's global log level (1 emergency … 8 debug).
    pub fn log_level(mut self, level: u32) -> Self {
        self.log_level = Some(level);
        self
    }

    /// Raw EAL arguments passed through untouched, after the friendly ones.
    pub fn extra_args<I: IntoIterator<Item = String>>(mut self, args: I) -> Self {
        self.extra.extend(args);
        self
    }

    /// The argv this builder hands to `rte_eal_init` (program name first).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["zcap".to_owned()];
        if !self.lcore_cpus.is_empty() {
            let map: Vec<String> = self
                .lcore_cpus
                .iter()
                .enumerate()
                .map(|(lcore, cpu)| format!("{lcore}@{cpu}"))
                .collect();
            args.push(format!("--lcores={}", map.join(",")));
        }
        if self.no_huge {
            args.push("--no-huge".to_owned());
        }
        if let Some(mb) = self.memory_mb {
            args.push("-m".to_owned());
            args.push(mb.to_string());
        }
        let prefix = self
            .file_prefix
            .clone()
            .unwrap_or_else(|| format!("zcap-{}", std::process::id()));
        args.push(format!("--file-prefix={prefix}"));
        if self.pci_allow.is_empty() && !self.probe_pci {
            // Probe no PCI device unless asked: never grab a NIC by accident.
            args.push("--no-pci".to_owned());
        }
        for pci in &self.pci_allow {
            args.push(format!("--allow={pci}"));
        }
        for vdev in &self.vdevs {
            args.push(format!("--vdev={vdev}"));
        }
        if let Some(level) = self.log_level {
            args.push(format!("--log-level={level}"));
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Initialises EAL. Fails if EAL was already initialised in this process.
    pub fn init(self) -> Result<Eal> {
        if EAL_STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::new(
                "DPDK's EAL was already initialised in this process",
                libc::EALREADY,
            ));
        }
        let args = self.args();
        let prefix = args
            .iter()
            .find_map(|a| a.strip_prefix("--file-prefix="))
            .unwrap_or_default()
            .to_owned();
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()).expect("EAL argument with a NUL byte"))
            .collect();
        if self.logs_to_stderr {
            log_to_stderr();
        }
        // EAL may permute argv, so it gets a private array of pointers.
        let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());
        // EAL explains failures on stderr over several lines, and prints its
        // whole usage (100 lines) on stdout for a bad argument: keep its words
        // for our one-line error instead.
        let (((ret, errno), eal_said), eal_printed) = with_captured(1, || {
            with_captured(2, || {
                // SAFETY: argv holds argc valid NUL-terminated strings (owned by
                // `owned`, alive for the call) and a terminating NULL; EAL only
                // reads or permutes it.
                let ret = unsafe { dpdk_sys::rte_eal_init(owned.len() as i32, argv.as_mut_ptr()) };
                // SAFETY: reads a thread-local integer through a C helper.
                (ret, unsafe { dpdk_sys::zcap_rte_errno() })
            })
        });
        // SAFETY: returns EAL's static buffer of the runtime directory's path
        // (empty if EAL got no further than its arguments); copied at once.
        let runtime_dir = unsafe { CStr::from_ptr(dpdk_sys::rte_eal_get_runtime_dir()) };
        let runtime_dir = PathBuf::from(runtime_dir.to_string_lossy().into_owned());
        if ret < 0 {
            remove_own_files(&prefix, &runtime_dir);
            let mut said: Vec<&str> = Vec::new();
            for line in eal_said.lines().map(str::trim) {
                if !line.is_empty() && !line.contains("Detected") && !said.contains(&line) {
                    said.push(line);
                }
            }
            let context = if said.is_empty() {
                format!("EAL arguments: {}", args[1..].join(" "))
            } else {
                said.join("; ")
            };
            return Err(DpdkError::new(context, errno));
        }
        if self.logs_to_stderr {
            crate::say_on_line!("{eal_printed}");
        } else {
            use std::io::Write as _;
            let _ = write!(std::io::stdout(), "{eal_printed}");
        }
        crate::say_on_line!("{eal_said}");
        Ok(Eal {
            _inner: Arc::new(EalInner {
                prefix,
                runtime_dir,
            }),
        })
    }
}

/// Proof that EAL is initialised. A shared handle: pools, ports and rings keep
/// a clone, so EAL is cleaned up only after the last of them is gone.
#[derive(Debug, Clone)]
pub struct Eal {
    _inner: Arc<EalInner>,
}

#[derive(Debug)]
struct EalInner {
    /// This process's `--file-prefix`.
    prefix: String,
    /// EAL's runtime directory (sockets, shared config), named after it.
    runtime_dir: PathBuf,
}

impl Eal {
    /// Ids of the worker lcores (every lcore but the main one), in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut lcores = Vec::new();
        let mut id = u32::MAX; // rte_get_next_lcore(-1, ...) starts from the first
        loop {
            // SAFETY: plain query of EAL's lcore table, valid after rte_eal_init.
            id = unsafe { dpdk_sys::rte_get_next_lcore(id, 1, 0) };
            if id >= dpdk_sys::RTE_MAX_LCORE {
                return lcores;
            }
            lcores.push(id);
        }
    }

    /// Hands the removal of this process's runtime directory and hugepage
    /// files to a root process that outlives it (`-Z`: once the process is
    /// no longer root it cannot remove entries of /var/run/dpdk or of the
    /// hugepage mount). The process, in a group of its own (Ctrl-C does not
    /// reach it), waits for this one to end, however it ends.
    pub fn leave_cleanup_to_a_sentinel(&self) -> std::io::Result<()> {
        use std::os::unix::process::CommandExt;
        let inner = &self._inner;
        let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
case "$2" in */"$3") rm -rf -- "$2";; esac
prefix=$3; shift 3
for mount in "$@"; do rm -f -- "$mount/$prefix"map_*; done"#;
        std::process::Command::new("sh")
            .args(["-c", script, "zcap-cleanup"])
            .arg(std::process::id().to_string())
            .arg(&inner.runtime_dir)
            .arg(&inner.prefix)
            .args(hugetlbfs_mounts())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map(drop)
    }

    /// EAL's runtime directory (sockets, shared config).
    pub fn runtime_dir(&self) -> &Path {
        &self._inner.runtime_dir
    }

    /// TSC ticks per second, as EAL measured them.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: reads a value EAL computed during init.
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by `init`; every DPDK object holds an Eal
        // clone, so this runs after all of them are gone.
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
        remove_own_files(&self.prefix, &self.runtime_dir);
    }
}

/// EAL leaves its runtime directory (`/var/run/dpdk/PREFIX`) and, with
/// hugepages, a hugepage file (`PREFIX` `map_N`) behind after cleanup:
/// removes them, this process's own and never another's.
fn remove_own_files(prefix: &str, runtime_dir: &Path) {
    if prefix.is_empty() {
        return;
    }
    if runtime_dir.file_name().is_some_and(|name| name == prefix) {
        let _ = std::fs::remove_dir_all(runtime_dir);
    }
    for mount in hugetlbfs_mounts() {
        let Ok(entries) = std::fs::read_dir(&mount) else {
            continue;
        };
        for entry in entries.flatten() {
            if is_own_hugepage_file(&entry.file_name().to_string_lossy(), prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// `PREFIX` `map_N`: a hugepage file EAL made for this prefix.
fn is_own_hugepage_file(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("map_"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Where hugetlbfs is mounted.
fn hugetlbfs_mounts() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let dir = f.nth(1)?;
            (f.next()? == "hugetlbfs").then(|| PathBuf::from(dir))
        })
        .collect()
}

/// True when this machine has free hugepages of any size and a hugetlbfs mount,
/// i.e. when EAL can start without `--no-huge`.
pub fn hugepages_available() -> bool {
    let mounted = !hugetlbfs_mounts().is_empty();
    let free: u64 = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path().join("free_hugepages")).ok())
                .filter_map(|s| s.trim().parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    mounted && free > 0
}

/// Reads the TSC, as `rte_rdtsc` does, but inlined: DPDK's is a static
/// inline function, which bindgen can only reach through an out-of-line call.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the CPU's time-stamp counter; no memory is touched.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// Registers the calling (non-EAL) thread with EAL so it gets an lcore id and
/// mempool caches; unregisters on drop.
pub struct ThreadRegistration {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ThreadRegistration {
    /// Registers the calling thread.
    pub fn register() -> Result<Self> {
        // SAFETY: registers the calling thread in EAL's lcore table; EAL is up.
        let ret = unsafe { dpdk_sys::rte_thread_register() };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno(
                "cannot register a writer thread with DPDK",
            ));
        }
        Ok(ThreadRegistration {
            _not_send: std::marker::PhantomData,
        })
    }
}

impl Drop for ThreadRegistration {
    fn drop(&mut self) {
        // SAFETY: this thread was registered by `register` and is still running.
        unsafe { dpdk_sys::rte_thread_unregister() }
    }
}

/// Points DPDK's log stream at a stdio stream on a copy of stderr (best
/// effort: without it, logs stay on stdout).
fn log_to_stderr() {
    // SAFETY: dup of a valid fd; fdopen takes ownership of the copy and the
    // FILE lives for the rest of the process, as rte_openlog_stream needs.
    unsafe {
        let fd = libc::dup(2);
        if fd < 0 {
            return;
        }
        let stream = libc::fdopen(fd, c"w".as_ptr());
        if stream.is_null() {
            libc::close(fd);
            return;
        }
        dpdk_sys::rte_openlog_stream(stream.cast());
    }
}

/// Runs `f` with file descriptor `fd` pointed at an in-memory file; returns
/// what `f` returned and what was written to `fd` meanwhile. If the
/// redirection cannot be set up, `f` runs with `fd` untouched.
fn with_captured<T>(fd: i32, f: impl FnOnce() -> T) -> (T, String) {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create with a static name; dup/dup2/fflush on valid fds.
    // Every fd opened here is closed or owned by a File before returning.
    unsafe {
        let memfd = libc::memfd_create(c"zcap-eal-output".as_ptr(), 0);
        if memfd < 0 {
            return (f(), String::new());
        }
        let saved = libc::dup(fd);
        if saved < 0 {
            libc::close(memfd);
            return (f(), String::new());
        }
        libc::fflush(std::ptr::null_mut());
        libc::dup2(memfd, fd);
        let result = f();
        libc::fflush(std::ptr::null_mut());
        libc::dup2(saved, fd);
        libc::close(saved);
        let mut file = std::fs::File::from_raw_fd(memfd);
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() {
            let _ = file.read_to_string(&mut text);
        }
        (result, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_prefixs_hugepage_files_are_ours() {
        assert!(is_own_hugepage_file("zcap-12map_0", "zcap-12"));
        assert!(is_own_hugepage_file("zcap-12map_17", "zcap-12"));
        assert!(
            !is_own_hugepage_file("zcap-123map_0", "zcap-12"),
            "another pid"
        );
        assert!(!is_own_hugepage_file("zcap-12map_", "zcap-12"));
        assert!(!is_own_hugepage_file("zcap-12map_0x", "zcap-12"));
        assert!(!is_own_hugepage_file("rtemap_0", "zcap-12"));
    }
}
