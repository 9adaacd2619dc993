//! Ethernet ports: lookup, configuration with N RX queues and RSS, start/stop,
//! statistics. An [`RxQueue`] is owned by exactly one poll loop.

use super::eal::Eal;
use super::error::{check, DpdkError, Result};
use super::mbuf::MbufBurst;
use super::mempool::Mempool;
use crate::nic::sizing::FrameSizing;
use std::ffi::{c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a port is and what it can do.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// DPDK port id.
    pub id: u16,
    /// Device name (`net_null0`, `0000:03:00.0`).
    pub name: String,
    /// Poll-mode driver (`net_null`, `net_pcap`, `net_ixgbe`, ...).
    pub driver: String,
    /// Most RX queues the device accepts.
    pub max_rx_queues: u16,
    /// RSS hash functions the device supports (0: no RSS).
    pub rss_offloads: u64,
    /// RX offloads the device supports.
    pub rx_offloads: u64,
    /// The underlying device's name (a PCI address for a PCI NIC).
    pub device: String,
    /// MAC address.
    pub mac: [u8; 6],
    /// Link up, and its speed in Mbit/s (0: unknown).
    pub link_up: bool,
    pub speed_mbps: u32,
    /// Smallest and largest MTU, and the largest frame, received.
    pub min_mtu: u16,
    pub max_mtu: u16,
    pub max_rx_pktlen: u32,
    /// Bytes of the RSS key (0: the driver does not say).
    pub hash_key_size: u8,
}

/// Port counters from `rte_eth_stats_get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received by the port.
    pub ipackets: u64,
    /// Bytes received by the port.
    pub ibytes: u64,
    /// Packets the NIC dropped because the RX ring was full.
    pub imissed: u64,
    /// Erroneous packets.
    pub ierrors: u64,
    /// Receives that failed for want of an mbuf.
    pub rx_nombuf: u64,
}

/// How to set a port up.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// Number of RX queues (RSS spreads flows over them).
    pub rx_queues: u16,
    /// Descriptors per RX queue (adjusted to the device's limits).
    pub rx_descriptors: u16,
    /// Receive everything, not only what is addressed to the port.
    pub promiscuous: bool,
    /// The RSS key to hash with (`None`: the driver's).
    pub rss_key: Option<Vec<u8>>,
    /// The MTU to set and whether to receive frames over several mbufs.
    pub sizing: FrameSizing,
    /// Enable the RX timestamp offload (`-j adapter`).
    pub rx_timestamps: bool,
}

/// Resolves `spec` (a device name such as `net_null0` or `0000:03:00.0`, or a
/// port number) to a port id.
pub fn find_port(spec: &str) -> Result<u16> {
    if let Ok(id) = spec.parse::<u16>() {
        // SAFETY: a plain validity query on the port table.
        if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 1 {
            return Ok(id);
        }
        return Err(DpdkError::new(format!("no such port: {id}"), libc::ENODEV));
    }
    let name = CString::new(spec)
        .map_err(|_| DpdkError::new(format!("bad port name {spec:?}"), libc::EINVAL))?;
    let mut id = 0u16;
    // SAFETY: name is a valid C string and id a valid out-pointer for the call.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(name.as_ptr(), &mut id) };
    if ret < 0 {
        return Err(DpdkError::new(
            format!("no such port: {spec}"),
            libc::ENODEV,
        ));
    }
    Ok(id)
}

/// Reads what a port is and can do.
pub fn port_info(id: u16) -> Result<PortInfo> {
    let mut info = dpdk_sys::rte_eth_dev_info::default();
    // SAFETY: info is a valid out-struct; DPDK fills it for a valid port id.
    check(
        unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) },
        || format!("cannot read port {id}'s device info"),
    )?;
    let mut name = [0 as std::os::raw::c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: name has RTE_ETH_NAME_MAX_LEN bytes, the most DPDK writes.
    unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, name.as_mut_ptr()) };
    // SAFETY: both strings are NUL-terminated and owned by DPDK / our buffer.
    let (name, driver) = unsafe {
        (
            CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned(),
            if info.driver_name.is_null() {
                String::new()
            } else {
                CStr::from_ptr(info.driver_name)
                    .to_string_lossy()
                    .into_owned()
            },
        )
    };
    let (link_up, speed_mbps) = link(id);
    Ok(PortInfo {
        id,
        name,
        driver,
        max_rx_queues: info.max_rx_queues,
        rss_offloads: info.flow_type_rss_offloads,
        rx_offloads: info.rx_offload_capa,
        device: device_name(info.device),
        mac: mac_address(id),
        link_up,
        speed_mbps,
        min_mtu: info.min_mtu,
        max_mtu: info.max_mtu,
        max_rx_pktlen: info.max_rx_pktlen,
        hash_key_size: info.hash_key_size,
    })
}

/// The name of the device behind a port (`0000:03:00.0`, `net_null0`).
fn device_name(device: *mut dpdk_sys::rte_device) -> String {
    if device.is_null() {
        return String::new();
    }
    // SAFETY: device came from the port's dev_info and lives as long as the
    // port; rte_dev_name returns a NUL-terminated string owned by it (or NULL).
    unsafe {
        let name = dpdk_sys::rte_dev_name(device);
        if name.is_null() {
            String::new()
        } else {
            CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    }
}

/// The port's MAC address (zeros if the driver cannot say).
fn mac_address(id: u16) -> [u8; 6] {
    let mut mac = dpdk_sys::rte_ether_addr::default();
    // SAFETY: mac is a valid out-struct for a valid port id.
    unsafe { dpdk_sys::rte_eth_macaddr_get(id, &mut mac) };
    mac.addr_bytes
}

/// Link status and speed in Mbit/s, without waiting for negotiation.
fn link(id: u16) -> (bool, u32) {
    let mut link = dpdk_sys::rte_eth_link::default();
    // SAFETY: link is a valid out-struct for a valid port id.
    if unsafe { dpdk_sys::rte_eth_link_get_nowait(id, &mut link) } < 0 {
        return (false, 0);
    }
    let speed = match link.link_speed {
        dpdk_sys::RTE_ETH_SPEED_NUM_UNKNOWN => 0,
        s => s,
    };
    (link.link_status() != 0, speed)
}

/// Every port DPDK has probed, in port order.
pub fn all_ports() -> Vec<PortInfo> {
    let mut ports = Vec::new();
    // SAFETY: plain iteration over the port table; RTE_MAX_ETHPORTS ends it.
    let mut id = unsafe { dpdk_sys::rte_eth_find_next(0) };
    while u32::from(id) < dpdk_sys::RTE_MAX_ETHPORTS {
        if let Ok(info) = port_info(id) {
            ports.push(info);
        }
        // SAFETY: as above.
        id = unsafe { dpdk_sys::rte_eth_find_next(id + 1) };
    }
    ports
}

/// A configured, started port. Stopped and closed when the last handle (the
/// port or one of its RX queues) is dropped.
#[derive(Clone)]
pub struct Port {
    inner: Arc<PortInner>,
}

struct PortInner {
    info: PortInfo,
    /// zcap turned promiscuous mode on, so it turns it off again (on
    /// net_af_packet the mode is the kernel interface's IFF_PROMISC).
    restore_promiscuous: AtomicBool,
    _pool: Arc<Mempool>,
    _eal: Eal,
}

/// RSS over IP, TCP and UDP (as the port offers them) when there is more
/// than one queue, with the hash delivered in each mbuf where it can be,
/// and the configuration's key; the MTU and scatter as sized. The key's
/// bytes must outlive the configure call (the conf points at them).
fn port_conf(info: &PortInfo, config: &PortConfig) -> dpdk_sys::rte_eth_conf {
    let mut conf = dpdk_sys::rte_eth_conf::default();
    if let Some(mtu) = config.sizing.mtu {
        conf.rxmode.mtu = u32::from(mtu);
    }
    if config.rx_timestamps {
        conf.rxmode.offloads |= u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_TIMESTAMP);
    }
    if config.sizing.scatter {
        conf.rxmode.offloads |= u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_SCATTER);
    }
    if config.rx_queues > 1 && info.rss_offloads != 0 {
        if let Some(key) = &config.rss_key {
            // DPDK only reads the key (the pointer is *mut for historical
            // reasons); drivers read it again in dev_start, which runs
            // while `config` is still borrowed.
            conf.rx_adv_conf.rss_conf.rss_key = key.as_ptr().cast_mut();
            conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
        }
        let wanted = u64::from(dpdk_sys::RTE_ETH_RSS_IP)
            | u64::from(dpdk_sys::RTE_ETH_RSS_TCP)
            | u64::from(dpdk_sys::RTE_ETH_RSS_UDP);
        conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = wanted & info.rss_offloads;
        let hash_offload = u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_RSS_HASH);
        conf.rxmode.offloads |= hash_offload & info.rx_offloads;
    }
    conf
}

/// Sets up `rx_queues` queues of `rx_desc` descriptors each, on the port's
/// NUMA socket, receiving into `pool`.
fn setup_rx_queues(info: &PortInfo, rx_queues: u16, rx_desc: u16, pool: &Mempool) -> Result<()> {
    let id = info.id;
    // SAFETY: plain query; -1 (unknown) is mapped to SOCKET_ID_ANY.
    let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
    let socket = if socket < 0 {
        dpdk_sys::SOCKET_ID_ANY
    } else {
        socket
    } as u32;
    for queue in 0..rx_queues {
        // SAFETY: the port is configured for this queue; the pool outlives the
        // port (PortInner keeps an Arc); NULL rx_conf means the defaults.
        check(
            unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id,
                    queue,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            },
            || format!("cannot set up RX queue {queue} of port {}", info.name),
        )?;
    }
    Ok(())
}

impl Port {
    /// Configures port `id` with `config`, sets up its RX queues on `pool`,
    /// starts it, and returns it with one handle per RX queue.
    pub fn start(
        eal: &Eal,
        id: u16,
        config: &PortConfig,
        pool: &Arc<Mempool>,
    ) -> Result<(Port, Vec<RxQueue>)> {
        let info = port_info(id)?;
        if config.rx_queues == 0 || config.rx_queues > info.max_rx_queues {
            return Err(DpdkError::new(
                format!(
                    "port {} ({}) supports 1 to {} RX queues, not {}",
                    info.name, info.driver, info.max_rx_queues, config.rx_queues
                ),
                // ERANGE, not EINVAL: the caller names -Q for this one alone.
                libc::ERANGE,
            ));
        }
        let conf = port_conf(&info, config);
        // SAFETY: conf is a valid configuration for the call; 0 TX queues is allowed.
        check(
            unsafe { dpdk_sys::rte_eth_dev_configure(id, config.rx_queues, 0, &conf) },
            || format!("cannot configure port {}", info.name),
        )?;
        let port = Port {
            inner: Arc::new(PortInner {
                info: info.clone(),
                restore_promiscuous: AtomicBool::new(false),
                _pool: pool.clone(),
                _eal: eal.clone(),
            }),
        };
        let mut rx_desc = config.rx_descriptors;
        let mut tx_desc = 0u16;
        // SAFETY: both are valid in/out pointers for the call.
        check(
            unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc) },
            || format!("cannot size port {}'s RX rings", info.name),
        )?;
        setup_rx_queues(&info, config.rx_queues, rx_desc, pool)?;
        if config.promiscuous {
            let restore = enable_promiscuous(id);
            port.inner
                .restore_promiscuous
                .store(restore, Ordering::Relaxed);
        }
        // SAFETY: the port is configured and its queues are set up.
        check(unsafe { dpdk_sys::rte_eth_dev_start(id) }, || {
            format!("cannot start port {}", info.name)
        })?;
        let queues = (0..config.rx_queues)
            .map(|queue| RxQueue::resolve(port.clone(), id, queue))
            .collect::<Result<Vec<_>>>()?;
        Ok((port, queues))
    }

    /// What the port is.
    pub fn info(&self) -> &PortInfo {
        &self.inner.info
    }

    /// The device clock its RX timestamps count on (`None`: the driver
    /// cannot read it).
    pub fn read_clock(&self) -> Option<u64> {
        read_clock(self.inner.info.id)
    }

    /// The port's basic counters.
    pub fn stats(&self) -> PortStats {
        let mut raw = dpdk_sys::rte_eth_stats::default();
        // SAFETY: raw is a valid out-struct for a started port.
        let ret = unsafe { dpdk_sys::rte_eth_stats_get(self.inner.info.id, &mut raw) };
        if ret < 0 {
            return PortStats::default();
        }
        PortStats {
            ipackets: raw.ipackets,
            ibytes: raw.ibytes,
            imissed: raw.imissed,
            ierrors: raw.ierrors,
            rx_nombuf: raw.rx_nombuf,
        }
    }
}

/// Port `id`'s MTU now, if the driver says.
pub fn port_mtu(id: u16) -> Option<u16> {
    let mut mtu = 0u16;
    // SAFETY: mtu is a valid out-pointer for a valid port id.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_mtu(id, &mut mtu) };
    (ret == 0 && mtu > 0).then_some(mtu)
}

/// Reads port `id`'s device clock.
fn read_clock(id: u16) -> Option<u64> {
    let mut clock = 0u64;
    // SAFETY: clock is a valid out-pointer; the call only reads the device.
    let ret = unsafe { dpdk_sys::rte_eth_read_clock(id, &mut clock) };
    (ret == 0).then_some(clock)
}

/// Turns promiscuous mode on, best effort (not every driver has it); true
/// if it was off and is now on.
fn enable_promiscuous(id: u16) -> bool {
    // SAFETY: plain control calls on a configured port.
    unsafe {
        let was_on = dpdk_sys::rte_eth_promiscuous_get(id) == 1;
        !was_on && dpdk_sys::rte_eth_promiscuous_enable(id) == 0
    }
}

impl Drop for PortInner {
    fn drop(&mut self) {
        if self.restore_promiscuous.load(Ordering::Relaxed) {
            // SAFETY: plain control call on a port that is still configured.
            unsafe { dpdk_sys::rte_eth_promiscuous_disable(self.info.id) };
        }
        // SAFETY: the last handle is gone, so no poll loop uses the queues; stopping
        // and closing a started port is always allowed.
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.info.id);
            dpdk_sys::rte_eth_dev_close(self.info.id);
        }
    }
}

/// The driver's receive function, as ethdev's fast-path table holds it.
type RxBurstFn = unsafe extern "C" fn(*mut c_void, *mut *mut dpdk_sys::rte_mbuf, u16) -> u16;

/// One RX queue of a started port. Not `Clone`: exactly one poll loop owns it.
///
/// Receiving does what DPDK's inline `rte_eth_rx_burst` does, with the driver's
/// function and queue data looked up once when the port starts rather than
/// through a wrapper call per burst; RX callbacks (e.g. pdump's) still run.
pub struct RxQueue {
    /// Keeps the port started while the queue is polled; never read.
    _port: Port,
    port_id: u16,
    queue: u16,
    rx_burst: RxBurstFn,
    queue_data: *mut c_void,
    callbacks: *const *mut c_void,
}

// SAFETY: the queue's driver data is used by exactly one thread at a time: the
// handle is not Clone and receiving takes &mut self.
unsafe impl Send for RxQueue {}

impl RxQueue {
    /// Looks the queue up in ethdev's fast-path table (filled by dev_start).
    fn resolve(port: Port, port_id: u16, queue: u16) -> Result<Self> {
        // SAFETY: rte_eth_fp_ops is ethdev's global per-port table; the port is
        // started, so its entry and queue arrays are set up and stay put until stop.
        let (rx_burst, queue_data, callbacks) = unsafe {
            let ops = std::ptr::addr_of!(dpdk_sys::rte_eth_fp_ops[usize::from(port_id)]);
            let rxq = (*ops).rxq;
            (
                (*ops).rx_pkt_burst,
                *rxq.data.add(usize::from(queue)),
                rxq.clbk.add(usize::from(queue)) as *const *mut c_void,
            )
        };
        match (rx_burst, queue_data.is_null()) {
            (Some(rx_burst), false) => Ok(RxQueue {
                _port: port,
                port_id,
                queue,
                rx_burst,
                queue_data,
                callbacks,
            }),
            _ => Err(DpdkError::new(
                format!("port {port_id} queue {queue} has no receive function"),
                libc::ENODEV,
            )),
        }
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// The queue index on its port.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// The port's device clock, as [`Port::read_clock`].
    pub fn read_clock(&self) -> Option<u64> {
        read_clock(self.port_id)
    }

    /// Receives up to `min(max, N)` packets into an empty `burst`; returns how many.
    #[inline(always)]
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>, max: usize) -> usize {
        let max = max.min(N) as u16;
        let slots = burst.fill_slots();
        // SAFETY: this handle is the queue's only user (not Clone, &mut self), the
        // port is started (we hold it), `slots` has room for `max` pointers, and
        // the function/queue pair came from ethdev's table for this queue.
        let n = unsafe {
            let mut n = (self.rx_burst)(self.queue_data, slots.as_mut_ptr(), max);
            // Same relaxed load as DPDK's inline: callbacks are published with release.
            let cb = std::ptr::read_volatile(self.callbacks);
            if !cb.is_null() {
                n = dpdk_sys::rte_eth_call_rx_callbacks(
                    self.port_id,
                    self.queue,
                    slots.as_mut_ptr(),
                    n,
                    max,
                    cb,
                );
            }
            n
        } as usize;
        burst.set_filled(n);
        n
    }
}
