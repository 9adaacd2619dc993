//! Bringing DPDK up for a run: EAL with an lcore per poll loop, one mempool,
//! the ports started with their RX queues. Shared by `zcap` and `zcap-bench`.

use crate::config::{is_pci_address, DpdkConfig, Interface, TimeStampType};
use crate::dpdk::{
    find_port, hugepages_available, port_info, port_mtu, DpdkError, Eal, EalBuilder, Mempool, Port,
    PortConfig, RxQueue,
};
use crate::error::{Field, ZcapError};
use crate::nic::rss::{symmetric_key, RssKey};
use crate::nic::sizing::{self, FrameCaps, FrameSizing, MtuChoice};
use crate::nic::{af_packet_iface, sysfs};
use crate::pipeline::backoff::IdlePolicy;
use crate::pipeline::device_clock::{self, DeviceClock};
pub(crate) use crate::placement::{Placement, Writers};
use std::sync::Arc;

/// One RX queue with the lcore that will poll it.
pub(crate) struct QueueSlot {
    /// The queue.
    pub rxq: RxQueue,
    /// Index of its port in the command line's `-i` list.
    pub interface: u32,
    /// EAL lcore for its poll loop.
    pub lcore: u32,
}

/// How one port was set up: for the report and the stampers.
#[derive(Debug, Clone)]
pub(crate) struct PortSetup {
    pub sizing: FrameSizing,
    /// `symmetric`, `driver`, or `none` (one queue, or no RSS).
    pub rss_key: &'static str,
    /// `-j adapter*`: the port's clock, measured.
    pub clock: Option<DeviceClock>,
}

/// DPDK, up and running for one capture or benchmark.
pub(crate) struct Session {
    /// The RX queues, in port then queue order.
    pub queues: Vec<QueueSlot>,
    /// The started ports, in `-i` order.
    pub ports: Vec<Port>,
    /// How each was set up, in the same order.
    pub port_setups: Vec<PortSetup>,
    /// The packet-buffer pool.
    pub pool: Arc<Mempool>,
    /// EAL; dropped last.
    pub eal: Eal,
    /// What each poll loop (in queue order) does when idle.
    pub poll_idle: Vec<IdlePolicy>,
    /// What each writer (in writer order) does when idle.
    pub writer_idle: Vec<IdlePolicy>,
    /// The CPU of each writer, in writer order (see [`Writers`]).
    pub writer_cpus: Vec<usize>,
    /// Where writers' file-system work runs: the main lcore's CPU, unless a
    /// poll loop runs there (then `None`: each writer's own).
    pub helper_cpu: Option<usize>,
}

/// The CPUs this process may run on, in order (never empty).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cpus.sort_unstable();
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}

/// Every mbuf the pipeline can hold at once, plus slack, as 2^n - 1: the RX
/// descriptors and ring of every queue, bursts in flight, the per-lcore mempool
/// caches, and what a merging writer holds back (`held`).
pub(crate) fn default_pool_size(
    queues: usize,
    rx_descriptors: u16,
    ring_size: u32,
    held: u32,
) -> u32 {
    use crate::pipeline::{MAX_BURST, WRITER_BURST};
    // A poll loop gathers up to 4 bursts and receives one more.
    let per_queue = u32::from(rx_descriptors) + ring_size + (6 * MAX_BURST + WRITER_BURST) as u32;
    let caches = (queues as u32 + 2) * MEMPOOL_CACHE * 3 / 2;
    let wanted = queues as u32 * per_queue + held + caches + 1024;
    (wanted + 1).next_power_of_two() - 1
}

/// The packet pool's driver when every poll loop and writer has a CPU of its
/// own: a LIFO stack, so the mbufs a writer just gave back are the next ones
/// received, their headers and bytes still in cache. DPDK's default ring is
/// FIFO and cycles through the whole pool (measured on the 2-CPU VM: the
/// written rate rose by a median 15 to 17%, docs/BENCHMARKS.md).
const POOL_OPS_OWN_CPUS: &str = "stack";

/// The driver when two of them share a CPU. The stack holds a spin lock and
/// the default MP/MC ring stalls whenever a thread is preempted inside it (the
/// others spin for a whole timeslice): the HTS ring is DPDK's mode for such
/// overcommitted cores.
const POOL_OPS_SHARED_CPUS: &str = "ring_mt_hts";

/// Creates the packet pool with the driver that suits the CPU layout, or
/// with DPDK's default driver if that one is not registered (a DPDK built
/// without it).
fn create_pool(
    eal: &Eal,
    mbufs: u32,
    cache: u32,
    users_share_cpus: bool,
) -> Result<Mempool, DpdkError> {
    let ops = if users_share_cpus {
        POOL_OPS_SHARED_CPUS
    } else {
        POOL_OPS_OWN_CPUS
    };
    let ops = Mempool::driver_available(ops).then_some(ops);
    let data_room = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;
    debug_assert_eq!(
        u32::from(data_room),
        MBUF_DATA_ROOM + dpdk_sys::RTE_PKTMBUF_HEADROOM
    );
    Mempool::with_ops(eal, "zcap_pool", mbufs, cache, data_room, ops)
}

/// The per-lcore cache of a pool of `mbufs`. None for finite sources: their
/// poll loops receive only while the pool's free count covers a burst (see
/// `rx::PoolGuard`), which is exact only without caches. Otherwise
/// [`MEMPOOL_CACHE`], small pools less: DPDK refuses a cache above two thirds
/// of the pool, and a small pool must not sit in caches.
pub(crate) fn pool_cache(mbufs: u32, finite: bool) -> u32 {
    if finite {
        0
    } else {
        MEMPOOL_CACHE.min(mbufs / 8)
    }
}

/// Bytes of packet data one mbuf of the pool holds (DPDK's default).
const MBUF_DATA_ROOM: u32 = dpdk_sys::RTE_MBUF_DEFAULT_DATAROOM;

/// Bytes one mbuf takes in memory: data room, headroom and header, rounded up.
const MBUF_FOOTPRINT: u64 = 2560;

/// The machine's memory in MB (`MemTotal`), if it can be read.
fn memory_total_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// Mbufs each lcore keeps in its private mempool cache.
pub(crate) const MEMPOOL_CACHE: u32 = 256;

impl Session {
    /// Starts EAL and the ports, and places `writers` on CPUs; `pool_size`
    /// applies when `--mbufs` is unset.
    pub(crate) fn open(
        config: &DpdkConfig,
        writers: Writers,
        pool_size: impl FnOnce(usize) -> u32,
    ) -> Result<Session, ZcapError> {
        let config = &crate::nic::resolve_kernel_names(config)?;
        if !config.no_huge && !hugepages_available() {
            return Err(ZcapError::usage(
                "no free hugepages: reserve some with `sudo bash scripts/setup.sh`, or pass --no-huge",
            ));
        }
        let placement = Placement::new(config, writers, &allowed_cpus())?;
        let mbufs = config
            .mbufs
            .unwrap_or_else(|| pool_size(placement.poll_loops()));
        check_pool_memory(mbufs)?;
        let eal = start_eal(config, &placement, mbufs)?;
        let port_ids = find_ports(config)?;
        let pool = open_pool(config, &eal, &placement, mbufs)?;
        let (ports, port_setups, queues) = start_ports(config, &eal, &pool, &port_ids, &placement)?;
        Ok(Session {
            queues,
            ports,
            port_setups,
            pool,
            eal,
            poll_idle: placement.poll_idle,
            writer_idle: placement.writer_idle,
            helper_cpu: helper_cpu(&placement.lcore_cpus),
            writer_cpus: placement.writer_cpus,
        })
    }
}

/// The main lcore's CPU (`lcore_cpus[0]`) for the writers' file-system
/// work, unless a poll loop shares it: a poll loop must not be preempted.
fn helper_cpu(lcore_cpus: &[usize]) -> Option<usize> {
    let (&main, polls) = lcore_cpus.split_first()?;
    (!polls.contains(&main)).then_some(main)
}

/// Refuses a pool larger than the machine's memory.
fn check_pool_memory(mbufs: u32) -> Result<(), ZcapError> {
    let pool_mb = (u64::from(mbufs) * MBUF_FOOTPRINT) >> 20;
    match memory_total_mb().filter(|&total| pool_mb >= total) {
        Some(total_mb) => Err(ZcapError::config(
            Field::Mbufs,
            format!(
                "{mbufs} mbufs need about {pool_mb} MB, more than this machine's {total_mb} MB"
            ),
        )),
        None => Ok(()),
    }
}

/// EAL with the placement's lcores and the ports' devices.
fn start_eal(config: &DpdkConfig, placement: &Placement, mbufs: u32) -> Result<Eal, ZcapError> {
    // Without hugepages EAL reserves a small fixed amount unless told: ask for
    // what the pool needs plus room for everything else.
    let mem_mb = config.mem_mb.or_else(|| {
        config
            .no_huge
            .then(|| ((u64::from(mbufs) * MBUF_FOOTPRINT) >> 20) as u32 + 128)
    });
    let mut eal = EalBuilder::new()
        .lcore_cpus(placement.lcore_cpus.clone())
        .no_huge(config.no_huge)
        .memory_mb(mem_mb)
        .log_level(config.log_level)
        .logs_to_stderr(config.stdout_is_output)
        .extra_args(config.eal_args.iter().cloned());
    for iface in &config.interfaces {
        eal = match iface {
            Interface::Vdev { spec, .. } => eal.vdev(spec.clone()),
            Interface::Pci(addr) => eal.pci(addr.clone()),
            Interface::PortId(_) | Interface::Kernel(_) => eal,
        };
    }
    eal.init()
        .map_err(|e| ZcapError::usage(format!("cannot start DPDK: {e}")))
}

/// The port id of every `-i`, each at most once.
fn find_ports(config: &DpdkConfig) -> Result<Vec<u16>, ZcapError> {
    let mut port_ids = Vec::new();
    for iface in &config.interfaces {
        let id = match iface {
            Interface::PortId(id) => find_port(&id.to_string()),
            other => find_port(other.device_name().unwrap_or_default()),
        }
        .map_err(|e| ZcapError::config(Field::Interface, e.to_string()))?;
        if port_ids.contains(&id) {
            let problem = format!("port {id} given twice");
            return Err(ZcapError::config(Field::Interface, problem));
        }
        port_ids.push(id);
    }
    Ok(port_ids)
}

/// The packet pool, its cache and driver chosen for the sources and CPUs.
fn open_pool(
    config: &DpdkConfig,
    eal: &Eal,
    placement: &Placement,
    mbufs: u32,
) -> Result<Arc<Mempool>, ZcapError> {
    let cache = pool_cache(mbufs, config.replays_only());
    create_pool(eal, mbufs, cache, placement.pool_users_share_cpus)
        .map(Arc::new)
        .map_err(|e| match config.mbufs {
            Some(_) => ZcapError::config(Field::Mbufs, e.to_string()),
            None => ZcapError::usage(format!(
                "{e} (the default pool for {} queues; set a smaller pool, or fewer queues or ring slots)",
                placement.poll_loops()
            )),
        })
}

/// How to set port `id` (the `index`-th `-i`) up, and what that is for
/// the report: the RSS key, its MTU (a NIC's largest, unless `--mtu`; a
/// virtual device's as it is), promiscuous mode and RX timestamps.
fn port_config(
    config: &DpdkConfig,
    index: usize,
    id: u16,
    rx_queues: u16,
) -> Result<(PortConfig, PortSetup), ZcapError> {
    let info = port_info(id).map_err(|e| ZcapError::config(Field::Interface, e.to_string()))?;
    let choice = match config.mtu {
        Some(mtu) => MtuChoice::Exactly(mtu),
        None if is_pci_address(&info.device) => MtuChoice::Largest,
        None => MtuChoice::Keep,
    };
    let caps = FrameCaps {
        min_mtu: info.min_mtu,
        max_mtu: info.max_mtu,
        max_rx_pktlen: info.max_rx_pktlen,
        scatter: info.rx_offloads & u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_SCATTER) != 0,
        mbuf_data_room: MBUF_DATA_ROOM,
    };
    let mut sizing = sizing::decide(&caps, choice)
        .map_err(|e| ZcapError::config(Field::Mtu, format!("port {}: {e}", info.name)))?;
    // Kept as it is: set to what it is (ethdev would make 0 mean 1500).
    sizing.mtu = sizing.mtu.or_else(|| port_mtu(id));
    if sizing.limited_by_mbuf {
        crate::say!(
            "zcap: port {} has no scattered receive: its MTU is {} (what one mbuf holds), not its largest, {}",
            info.name,
            sizing.mtu.unwrap_or_default(),
            info.max_mtu
        );
    }
    let hashes = rx_queues > 1 && info.rss_offloads != 0;
    let rss_key = (hashes && config.rss_key == RssKey::Symmetric)
        .then(|| symmetric_key(usize::from(info.hash_key_size)));
    let setup = PortSetup {
        sizing,
        rss_key: if hashes {
            config.rss_key.name()
        } else {
            "none"
        },
        clock: None,
    };
    let offered = info.rx_offloads & u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_TIMESTAMP) != 0;
    if config.time_stamps.from_adapter() && !offered {
        return Err(ZcapError::config(
            Field::TimeStamps,
            format!(
                "port {} ({}) offers no RX timestamps; -j host stamps with the host clock",
                info.name, info.driver
            ),
        ));
    }
    let port_config = PortConfig {
        rx_queues,
        rx_descriptors: config.rx_descriptors,
        // A kernel interface already promiscuous stays so, and zcap does
        // not turn it off at the end (ethdev cannot tell: it says "off").
        promiscuous: !kernel_promiscuous(&config.interfaces[index]),
        rss_key,
        sizing,
        rx_timestamps: config.time_stamps.from_adapter(),
    };
    Ok((port_config, setup))
}

/// True if `iface` is a net_af_packet vdev on an interface the kernel
/// already has in promiscuous mode.
fn kernel_promiscuous(iface: &Interface) -> bool {
    let Interface::Vdev { spec, .. } = iface else {
        return false;
    };
    af_packet_iface(spec)
        .and_then(sysfs::read_interface)
        .is_some_and(|k| k.promiscuous)
}

/// How long the first measurement of a device clock's rate takes.
const CLOCK_CALIBRATION: std::time::Duration = std::time::Duration::from_millis(20);

/// `-j adapter` / `adapter_unsynced`: the port's clock, measured against
/// the system clock. A device that cannot read its clock cannot be put on
/// the system's time; unsynced, its stamps are then taken as nanoseconds.
fn measure_clock(port: &Port, synced: bool) -> Result<DeviceClock, ZcapError> {
    let first = device_clock::sample(|| port.read_clock());
    std::thread::sleep(CLOCK_CALIBRATION);
    let second = device_clock::sample(|| port.read_clock());
    let name = &port.info().name;
    let (Some(first), Some(second)) = (first, second) else {
        if !synced {
            return Ok(DeviceClock::nanoseconds());
        }
        return Err(ZcapError::config(
            Field::TimeStamps,
            format!("port {name} cannot read its clock (rte_eth_read_clock), so its stamps cannot be put on the system's time; -j adapter_unsynced keeps the device's own"),
        ));
    };
    DeviceClock::calibrate(first, second, 64, synced)
        .map_err(|e| ZcapError::config(Field::TimeStamps, format!("port {name}: {e}")))
}

/// The started ports, how each was set up, and their queues.
type StartedPorts = (Vec<Port>, Vec<PortSetup>, Vec<QueueSlot>);

/// Starts every port with its queues; each queue gets the next worker lcore.
fn start_ports(
    config: &DpdkConfig,
    eal: &Eal,
    pool: &Arc<Mempool>,
    port_ids: &[u16],
    placement: &Placement,
) -> Result<StartedPorts, ZcapError> {
    let workers = eal.worker_lcores();
    let mut ports = Vec::new();
    let mut setups = Vec::new();
    let mut queues = Vec::new();
    for (index, (&id, &rx_queues)) in port_ids.iter().zip(&placement.queues_per_port).enumerate() {
        let (port_config, setup) = port_config(config, index, id, rx_queues)?;
        let (port, rxqs) = Port::start(eal, id, &port_config, pool).map_err(|e| {
            let field = if e.errno == libc::ERANGE {
                Field::Queues
            } else {
                Field::Interface
            };
            ZcapError::config(field, e.to_string())
        })?;
        for rxq in rxqs {
            let lcore = workers[queues.len()];
            queues.push(QueueSlot {
                rxq,
                interface: index as u32,
                lcore,
            });
        }
        let clock = match config.time_stamps {
            TimeStampType::Adapter => Some(measure_clock(&port, true)?),
            TimeStampType::AdapterUnsynced => Some(measure_clock(&port, false)?),
            _ => None,
        };
        setups.push(PortSetup { clock, ..setup });
        ports.push(port);
    }
    Ok((ports, setups, queues))
}
