//! `zcap -D`: the ports DPDK can open and the kernel's interfaces, each
//! with what it can do, as text (like `tcpdump -D`) or JSON.

use super::open::{decide, Facts, Opening};
use super::sysfs::{self, KernelInterface};
use crate::config::{DpdkConfig, Interface};
use crate::dpdk::{all_ports, hugepages_available, EalBuilder, PortInfo};
use crate::session::allowed_cpus;
use crate::stats::json::JsonObject;

/// What `-D` found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Ports DPDK probed: PCI devices bound to a DPDK-usable driver and
    /// the vdevs `-i` named.
    pub ports: Vec<PortInfo>,
    /// Names `scripts/nic.sh bind` noted, by PCI address.
    pub bound_names: Vec<(String, String)>,
    /// The kernel's interfaces, with how `-i NAME` would open each.
    pub kernel: Vec<(KernelInterface, Opening)>,
    /// Why DPDK could not start, if it could not (the kernel's interfaces
    /// are listed all the same).
    pub dpdk_error: Option<String>,
}

/// The RSS hash types, as testpmd names them.
const RSS_NAMES: [(u32, &str); 12] = [
    (dpdk_sys::RTE_ETH_RSS_IPV4, "ipv4"),
    (dpdk_sys::RTE_ETH_RSS_FRAG_IPV4, "ipv4-frag"),
    (dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP, "ipv4-tcp"),
    (dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP, "ipv4-udp"),
    (dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_SCTP, "ipv4-sctp"),
    (dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_OTHER, "ipv4-other"),
    (dpdk_sys::RTE_ETH_RSS_IPV6, "ipv6"),
    (dpdk_sys::RTE_ETH_RSS_FRAG_IPV6, "ipv6-frag"),
    (dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP, "ipv6-tcp"),
    (dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP, "ipv6-udp"),
    (dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV6_OTHER, "ipv6-other"),
    (dpdk_sys::RTE_ETH_RSS_L2_PAYLOAD, "l2-payload"),
];

/// The names of the hash types in `rss_offloads`.
pub(crate) fn rss_names(rss_offloads: u64) -> Vec<&'static str> {
    RSS_NAMES
        .iter()
        .filter(|(bit, _)| rss_offloads & u64::from(*bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

fn offers(info: &PortInfo, offload: u32) -> bool {
    info.rx_offloads & u64::from(offload) != 0
}

fn mac_text(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

fn yes_no(yes: bool) -> &'static str {
    if yes {
        "yes"
    } else {
        "no"
    }
}

fn link_text(up: bool, speed_mbps: Option<u32>) -> String {
    match (up, speed_mbps.filter(|&s| s > 0)) {
        (false, _) => "down".to_owned(),
        (true, Some(s)) if s >= 1000 && s % 1000 == 0 => format!("up {} Gbit/s", s / 1000),
        (true, Some(s)) => format!("up {s} Mbit/s"),
        (true, None) => "up".to_owned(),
    }
}

fn opening_text(opening: &Opening) -> String {
    match opening {
        Opening::Pmd { pci, driver } => {
            format!("DPDK driver at {pci} ({driver}, beside the kernel)")
        }
        Opening::AfPacket { .. } => "net_af_packet (not kernel bypass)".to_owned(),
    }
}

impl Listing {
    /// The kernel name `scripts/nic.sh` noted for a port's device.
    fn bound_name(&self, info: &PortInfo) -> Option<&str> {
        let (name, _) = self
            .bound_names
            .iter()
            .find(|(_, pci)| *pci == info.device)?;
        Some(name)
    }

    /// Plain text, one line per port or interface.
    pub fn text(&self) -> String {
        let mut out = String::from("DPDK ports (-i NAME, PCI address or number):\n");
        if let Some(error) = &self.dpdk_error {
            out.push_str(&format!("  not listed: {error}\n"));
        } else if self.ports.is_empty() {
            out.push_str(
                "  none (bind a NIC with scripts/nic.sh bind IFACE, or give a vdev with -i)\n",
            );
        }
        for p in &self.ports {
            let was = self
                .bound_name(p)
                .map_or(String::new(), |n| format!(" (was {n})"));
            let rss = rss_names(p.rss_offloads);
            out.push_str(&format!(
                "  {}. {}{was}  driver {}  mac {}  link {}  rx queues {}  mtu up to {}  rss {}  timestamp {}  scatter {}\n",
                p.id,
                p.name,
                p.driver,
                mac_text(&p.mac),
                link_text(p.link_up, Some(p.speed_mbps)),
                p.max_rx_queues,
                p.max_mtu,
                if rss.is_empty() { "none".to_owned() } else { rss.join(",") },
                yes_no(offers(p, dpdk_sys::RTE_ETH_RX_OFFLOAD_TIMESTAMP)),
                yes_no(offers(p, dpdk_sys::RTE_ETH_RX_OFFLOAD_SCATTER)),
            ));
        }
        out.push_str("Kernel interfaces (-i NAME):\n");
        for (k, opening) in &self.kernel {
            out.push_str(&format!(
                "  {}  driver {}{}  mac {}  link {}  mtu {}  opens through {}\n",
                k.name,
                k.driver.as_deref().unwrap_or("none (virtual)"),
                k.pci
                    .as_deref()
                    .map_or(String::new(), |p| format!("  pci {p}")),
                k.mac,
                link_text(k.up, k.speed_mbps),
                k.mtu.map_or("?".to_owned(), |m| m.to_string()),
                opening_text(opening),
            ));
        }
        out
    }

    /// One JSON object: `dpdk_ports` and `kernel_interfaces`.
    pub fn json(&self) -> String {
        let ports = self.ports.iter().map(|p| self.port_json(p)).collect();
        let kernel = self.kernel.iter().map(|(k, o)| kernel_json(k, o)).collect();
        JsonObject::new()
            .array("dpdk_ports", ports)
            .opt_str("dpdk_error", self.dpdk_error.as_deref())
            .array("kernel_interfaces", kernel)
            .finish()
    }

    fn port_json(&self, p: &PortInfo) -> JsonObject {
        JsonObject::new()
            .u64("port", p.id.into())
            .str("name", &p.name)
            .opt_str("kernel_name", self.bound_name(p))
            .str("driver", &p.driver)
            .str("device", &p.device)
            .str("mac", &mac_text(&p.mac))
            .bool("link_up", p.link_up)
            .u64("speed_mbps", p.speed_mbps.into())
            .u64("max_rx_queues", p.max_rx_queues.into())
            .u64("min_mtu", p.min_mtu.into())
            .u64("max_mtu", p.max_mtu.into())
            .u64("rss_key_bytes", p.hash_key_size.into())
            .str_array("rss_hash", &rss_names(p.rss_offloads))
            .bool(
                "timestamp",
                offers(p, dpdk_sys::RTE_ETH_RX_OFFLOAD_TIMESTAMP),
            )
            .bool("scatter", offers(p, dpdk_sys::RTE_ETH_RX_OFFLOAD_SCATTER))
    }
}

fn kernel_json(k: &KernelInterface, opening: &Opening) -> JsonObject {
    let (opens, pci) = match opening {
        Opening::Pmd { pci, .. } => ("dpdk", Some(pci.as_str())),
        Opening::AfPacket { .. } => ("af_packet", None),
    };
    JsonObject::new()
        .str("name", &k.name)
        .opt_str("driver", k.driver.as_deref())
        .opt_str("pci", k.pci.as_deref())
        .str("mac", &k.mac)
        .str("operstate", &k.operstate)
        .bool("up", k.up)
        .u64("speed_mbps", k.speed_mbps.unwrap_or(0).into())
        .u64("mtu", k.mtu.unwrap_or(0).into())
        .str("opens_through", opens)
        .opt_str("opens_pci", pci)
        .bool("kernel_bypass", pci.is_some())
}

/// Starts EAL with every PCI device a DPDK driver can take and the vdevs
/// of `-i`, and lists them with the kernel's interfaces. Needs no
/// hugepages: without free ones it runs on 4 KiB pages. If DPDK cannot
/// start, the kernel's interfaces are still listed.
pub fn list(config: &DpdkConfig) -> Listing {
    let mut eal = EalBuilder::new()
        .probe_all_pci()
        .lcore_cpus(vec![allowed_cpus()[0]])
        .no_huge(config.no_huge || !hugepages_available())
        .memory_mb(Some(config.mem_mb.unwrap_or(256)))
        .log_level(config.log_level)
        .extra_args(config.eal_args.iter().cloned());
    for iface in &config.interfaces {
        if let Interface::Vdev { spec, .. } = iface {
            eal = eal.vdev(spec.clone());
        }
    }
    let (ports, dpdk_error) = match eal.init() {
        Ok(eal) => {
            let ports = all_ports();
            drop(eal);
            (ports, None)
        }
        Err(e) => (Vec::new(), Some(format!("cannot start DPDK: {e}"))),
    };
    let kernel = sysfs::list_interfaces()
        .into_iter()
        .filter_map(|k| {
            let facts = Facts {
                kernel: Some(k.clone()),
                ..Facts::default()
            };
            let opening = decide(&k.name, &facts, 1, 1024).ok()?;
            Some((k, opening))
        })
        .collect();
    Listing {
        ports,
        bound_names: sysfs::bound_names(),
        kernel,
        dpdk_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ixgbe_port() -> PortInfo {
        PortInfo {
            id: 0,
            name: "0000:03:00.0".into(),
            driver: "net_ixgbe".into(),
            max_rx_queues: 128,
            rss_offloads: u64::from(
                dpdk_sys::RTE_ETH_RSS_IPV4
                    | dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP
                    | dpdk_sys::RTE_ETH_RSS_IPV6,
            ),
            rx_offloads: u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_SCATTER),
            device: "0000:03:00.0".into(),
            mac: [0, 0x1b, 0x21, 0xaa, 0xbb, 0x01],
            link_up: true,
            speed_mbps: 10_000,
            min_mtu: 68,
            max_mtu: 9710,
            max_rx_pktlen: 9728,
            hash_key_size: 40,
        }
    }

    fn listing() -> Listing {
        let veth = KernelInterface {
            name: "veth0".into(),
            driver: Some("veth".into()),
            mac: "02:00:00:00:00:01".into(),
            operstate: "up".into(),
            up: true,
            speed_mbps: Some(10_000),
            mtu: Some(1500),
            ..KernelInterface::default()
        };
        let opening = decide(
            "veth0",
            &Facts {
                kernel: Some(veth.clone()),
                ..Facts::default()
            },
            1,
            1024,
        )
        .unwrap();
        Listing {
            ports: vec![ixgbe_port()],
            bound_names: vec![("eth1".into(), "0000:03:00.0".into())],
            kernel: vec![(veth, opening)],
            dpdk_error: None,
        }
    }

    #[test]
    fn text_names_each_port_and_what_it_can_do() {
        let text = listing().text();
        let port_line = text.lines().nth(1).unwrap();
        for needle in [
            "0. 0000:03:00.0 (was eth1)",
            "driver net_ixgbe",
            "mac 00:1b:21:aa:bb:01",
            "link up 10 Gbit/s",
            "rx queues 128",
            "mtu up to 9710",
            "rss ipv4,ipv4-tcp,ipv6",
            "timestamp no",
            "scatter yes",
        ] {
            assert!(port_line.contains(needle), "{needle:?} not in {port_line}");
        }
        assert!(text.contains("veth0  driver veth"), "{text}");
        assert!(
            text.contains("opens through net_af_packet (not kernel bypass)"),
            "{text}"
        );
    }

    #[test]
    fn json_has_both_lists() {
        let json = listing().json();
        for needle in [
            r#""dpdk_ports":[{"port":0,"name":"0000:03:00.0","kernel_name":"eth1","driver":"net_ixgbe""#,
            r#""rss_hash":["ipv4","ipv4-tcp","ipv6"],"timestamp":false,"scatter":true"#,
            r#""kernel_interfaces":[{"name":"veth0","driver":"veth","pci":null"#,
            r#""opens_through":"af_packet","opens_pci":null,"kernel_bypass":false"#,
        ] {
            assert!(json.contains(needle), "{needle} not in {json}");
        }
    }

    #[test]
    fn links_read_as_people_write_them() {
        assert_eq!(link_text(true, Some(25_000)), "up 25 Gbit/s");
        assert_eq!(link_text(true, Some(100)), "up 100 Mbit/s");
        assert_eq!(link_text(true, Some(0)), "up");
        assert_eq!(link_text(false, Some(10_000)), "down");
    }
}
