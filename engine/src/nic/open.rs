//! How `-i NAME` opens a kernel interface name: through the NIC's own DPDK
//! driver where DPDK can have it without taking it from the kernel, else
//! through DPDK's `net_af_packet` on the kernel's interface (not kernel
//! bypass, but it works wherever tcpdump does).

use super::sysfs::{self, KernelInterface};
use crate::config::{DpdkConfig, Interface};
use crate::dpdk::hugepages_available;
use crate::error::{Field, ZcapError};

/// Kernel drivers whose NICs DPDK drives beside the kernel (bifurcated):
/// mlx5's PMD opens the PCI device while the kernel keeps its interface.
/// (mlx4 is left out: its two ports share one PCI function, so the PCI
/// address does not say which one the name is.)
const BIFURCATED_DRIVERS: [&str; 1] = ["mlx5_core"];

/// `/sys/class/net/NAME/type` of interfaces whose frames start with an
/// Ethernet header: ARPHRD_ETHER, and ARPHRD_LOOPBACK (lo's frames carry
/// a zeroed one).
const ETHERNET_TYPES: [u16; 2] = [1, 772];

/// The largest frame a 2048-byte kernel frame holds after TPACKET_V2's
/// header and the sockaddr_ll net_af_packet leaves before the data.
const AF_PACKET_MAX_FRAME: u32 = 2048 - 52;

/// Kernel drivers that hand a PCI device to user space (what
/// `scripts/nic.sh bind` binds to).
const USER_SPACE_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// How one kernel interface name is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// Through its PMD at this PCI address.
    Pmd {
        /// The device's PCI address.
        pci: String,
        /// The kernel driver it is bound to (`mlx5_core`, `vfio-pci`).
        driver: String,
    },
    /// Through `net_af_packet` on the interface: this vdev spec.
    AfPacket {
        /// The spec for EAL's `--vdev`.
        spec: String,
        /// Its device (and port) name.
        name: String,
        /// The kernel driver serving the interface, if it has a device.
        driver: Option<String>,
    },
}

/// What the machine says about a name, gathered before deciding.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    /// The kernel's interface of that name.
    pub(crate) kernel: Option<KernelInterface>,
    /// The PCI address `scripts/nic.sh bind` noted for the name.
    pub(crate) bound_pci: Option<String>,
    /// The driver that PCI device is bound to now.
    pub(crate) bound_driver: Option<String>,
}

/// The kernel interface a `net_af_packet` vdev spec reads, if it is one.
pub fn af_packet_iface(spec: &str) -> Option<&str> {
    let mut parts = spec.split(',');
    if !parts.next()?.starts_with("net_af_packet") {
        return None;
    }
    parts.find_map(|kv| kv.strip_prefix("iface="))
}

/// The device name of the `net_af_packet` vdev for interface `name`.
fn af_packet_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("net_af_packet_{safe}")
}

/// Decides how to open `name` with `queues` RX queues, each kernel ring
/// `frames` frames deep. An error is the one line for `-i`.
pub(crate) fn decide(
    name: &str,
    facts: &Facts,
    queues: u16,
    frames: u32,
) -> Result<Opening, String> {
    if let Some(kernel) = &facts.kernel {
        if let Some(kind) = kernel.arphrd.filter(|t| !ETHERNET_TYPES.contains(t)) {
            return Err(format!(
                "{name} is not an Ethernet interface (link type {kind} in /sys/class/net/{name}/type): zcap captures Ethernet"
            ));
        }
        let driver = kernel.driver.clone();
        if let (Some(d), Some(pci)) = (&driver, &kernel.pci) {
            if BIFURCATED_DRIVERS.contains(&d.as_str()) {
                let (pci, driver) = (pci.clone(), d.clone());
                return Ok(Opening::Pmd { pci, driver });
            }
        }
        let device = af_packet_name(name);
        // Each kernel frame takes the default 2048 bytes: what one mbuf holds.
        let spec = format!("{device},iface={name},qpairs={queues},framecnt={frames}");
        return Ok(Opening::AfPacket {
            spec,
            name: device,
            driver,
        });
    }
    match (&facts.bound_pci, &facts.bound_driver) {
        (Some(pci), Some(d)) if USER_SPACE_DRIVERS.contains(&d.as_str()) => Ok(Opening::Pmd {
            pci: pci.clone(),
            driver: d.clone(),
        }),
        (Some(pci), driver) => Err(format!(
            "{name} was bound to a DPDK driver as {pci} (scripts/nic.sh), but {pci} is now {}",
            driver.as_deref().map_or("bound to no driver".to_owned(), |d| format!("on {d}"))
        )),
        (None, _) => Err(format!(
            "no such interface {name:?}: not a kernel interface, nor one scripts/nic.sh bound (zcap -D lists them)"
        )),
    }
}

/// What the machine says about `name`.
fn facts(name: &str) -> Facts {
    let kernel = sysfs::read_interface(name);
    let bound_pci = match kernel {
        Some(_) => None,
        None => sysfs::bound_names()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, pci)| pci),
    };
    let bound_driver = bound_pci.as_deref().and_then(sysfs::pci_driver);
    Facts {
        kernel,
        bound_pci,
        bound_driver,
    }
}

/// Frames in each kernel ring of a `net_af_packet` queue: as deep as the
/// RX descriptors asked, and even (two 2 KiB frames per 4 KiB block).
fn kernel_ring_frames(rx_descriptors: u16) -> u32 {
    (u32::from(rx_descriptors).max(64) + 1) & !1
}

/// net_af_packet cuts frames to one 2 KiB kernel frame: said where the
/// interface's MTU allows longer ones (GRO, on by default on NICs, merges
/// packets into longer ones still).
fn say_if_frames_are_cut(name: &str, mtu: Option<u32>) {
    let mtu = mtu.unwrap_or(0);
    if mtu + 14 > AF_PACKET_MAX_FRAME {
        crate::say!(
            "zcap: -i {name}: its MTU is {mtu}; net_af_packet keeps at most {AF_PACKET_MAX_FRAME} bytes of a frame and loses the longer ones' length (and GRO merges packets: ethtool -K {name} gro off)"
        );
    }
}

/// `config` with every kernel interface name replaced by the device that
/// opens it; says once for each that it is not kernel bypass.
pub fn resolve_kernel_names(config: &DpdkConfig) -> Result<DpdkConfig, ZcapError> {
    let mut resolved = config.clone();
    let all_kernel = config
        .interfaces
        .iter()
        .all(|i| matches!(i, Interface::Kernel(_)));
    let queues = config.queues.unwrap_or(1);
    let frames = kernel_ring_frames(config.rx_descriptors);
    let mut all_af_packet = all_kernel;
    for iface in &mut resolved.interfaces {
        let Interface::Kernel(name) = iface else {
            continue;
        };
        let facts = facts(name);
        let opening = decide(name, &facts, queues, frames)
            .map_err(|e| ZcapError::config(Field::Interface, e))?;
        if matches!(opening, Opening::Pmd { .. }) {
            all_af_packet = false;
        }
        *iface = match opening {
            Opening::Pmd { pci, .. } => Interface::Pci(pci),
            Opening::AfPacket {
                spec,
                name: device,
                driver,
            } => {
                let served = driver.map_or_else(String::new, |d| format!(" (driver {d})"));
                crate::say!(
                    "zcap: -i {name}: the kernel serves this interface{served}: capturing through DPDK's net_af_packet, which is not kernel bypass (scripts/nic.sh binds a NIC to DPDK)"
                );
                say_if_frames_are_cut(name, facts.kernel.and_then(|k| k.mtu));
                Interface::Vdev { spec, name: device }
            }
        };
    }
    // net_af_packet copies every frame out of the kernel's ring: hugepages
    // buy it little, and `zcap -i eth0` should run wherever tcpdump does.
    if all_af_packet && !config.no_huge && !hugepages_available() {
        crate::say!("zcap: no free hugepages: running on 4 KiB pages (net_af_packet needs none)");
        resolved.no_huge = true;
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(name: &str, driver: Option<&str>, pci: Option<&str>) -> Facts {
        Facts {
            kernel: Some(KernelInterface {
                name: name.into(),
                driver: driver.map(Into::into),
                pci: pci.map(Into::into),
                ..KernelInterface::default()
            }),
            ..Facts::default()
        }
    }

    #[test]
    fn a_kernel_nic_is_captured_through_af_packet() {
        let opening = decide(
            "eth1",
            &kernel("eth1", Some("ixgbe"), Some("0000:03:00.0")),
            4,
            1024,
        );
        assert_eq!(
            opening.unwrap(),
            Opening::AfPacket {
                spec: "net_af_packet_eth1,iface=eth1,qpairs=4,framecnt=1024".into(),
                name: "net_af_packet_eth1".into(),
                driver: Some("ixgbe".into()),
            }
        );
        let veth = decide("veth-a.1", &kernel("veth-a.1", Some("veth"), None), 1, 512).unwrap();
        assert!(matches!(veth, Opening::AfPacket { name, .. } if name == "net_af_packet_veth_a_1"));
    }

    #[test]
    fn a_bifurcated_nic_opens_through_its_pmd_and_stays_the_kernels() {
        let facts = kernel("ens1f0", Some("mlx5_core"), Some("0000:81:00.0"));
        assert_eq!(
            decide("ens1f0", &facts, 2, 1024).unwrap(),
            Opening::Pmd {
                pci: "0000:81:00.0".into(),
                driver: "mlx5_core".into()
            }
        );
    }

    #[test]
    fn a_name_bound_away_by_nic_sh_opens_its_pci_device() {
        let bound = |driver: Option<&str>| Facts {
            kernel: None,
            bound_pci: Some("0000:03:00.1".into()),
            bound_driver: driver.map(Into::into),
        };
        let vfio = decide("eth2", &bound(Some("vfio-pci")), 1, 1024).unwrap();
        assert!(matches!(vfio, Opening::Pmd { pci, .. } if pci == "0000:03:00.1"));
        let back = decide("eth2", &bound(Some("ixgbe")), 1, 1024).unwrap_err();
        assert!(back.contains("is now on ixgbe"), "{back}");
        let none = decide("eth2", &bound(None), 1, 1024).unwrap_err();
        assert!(none.contains("bound to no driver"), "{none}");
    }

    #[test]
    fn only_ethernet_interfaces_are_opened() {
        let mut tun = kernel("tun0", None, None);
        tun.kernel.as_mut().unwrap().arphrd = Some(65534);
        let err = decide("tun0", &tun, 1, 1024).unwrap_err();
        assert!(
            err.contains("not an Ethernet interface (link type 65534"),
            "{err}"
        );
        let mut lo = kernel("lo", None, None);
        lo.kernel.as_mut().unwrap().arphrd = Some(772);
        assert!(decide("lo", &lo, 1, 1024).is_ok());
        let mlx4 = kernel("eth3", Some("mlx4_core"), Some("0000:05:00.0"));
        assert!(matches!(
            decide("eth3", &mlx4, 1, 1024).unwrap(),
            Opening::AfPacket { .. }
        ));
    }

    #[test]
    fn an_unknown_name_is_one_clear_line() {
        let err = decide("eth9", &Facts::default(), 1, 1024).unwrap_err();
        assert!(err.starts_with("no such interface \"eth9\""), "{err}");
        assert!(err.contains("zcap -D"), "{err}");
    }

    #[test]
    fn an_af_packet_spec_names_its_interface() {
        assert_eq!(
            af_packet_iface("net_af_packet_eth1,iface=eth1,qpairs=2"),
            Some("eth1")
        );
        assert_eq!(
            af_packet_iface("net_af_packet0,qpairs=2,iface=veth0"),
            Some("veth0")
        );
        assert_eq!(af_packet_iface("net_pcap0,iface=eth1"), None);
        assert_eq!(af_packet_iface("net_af_packet0"), None);
    }

    #[test]
    fn kernel_rings_are_even_and_not_tiny() {
        assert_eq!(kernel_ring_frames(1024), 1024);
        assert_eq!(kernel_ring_frames(1023), 1024);
        assert_eq!(kernel_ring_frames(8), 64);
    }
}
