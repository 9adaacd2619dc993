//! The kernel's network interfaces, as `/sys/class/net` shows them, and the
//! names `scripts/nic.sh bind` gave to the devices it took from the kernel.

use std::path::{Path, PathBuf};

/// What the kernel says about one network interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelInterface {
    /// The interface name (`eth1`, `ens1f0`).
    pub name: String,
    /// Its kernel driver (`ixgbe`, `mlx5_core`, `veth`); `None` for a
    /// virtual interface without a device (`lo`).
    pub driver: Option<String>,
    /// The PCI address of its device, for a PCI NIC.
    pub pci: Option<String>,
    /// Its MAC address.
    pub mac: String,
    /// `up`, `down`, `unknown`, ...
    pub operstate: String,
    /// Administratively up (IFF_UP) and passing packets: operstate `up`,
    /// or `unknown` (loopback, tun) while IFF_UP is set.
    pub up: bool,
    /// Link speed in Mbit/s, where the driver says.
    pub speed_mbps: Option<u32>,
    /// The MTU.
    pub mtu: Option<u32>,
    /// The ARPHRD_* link type (`type`): 1 for Ethernet.
    pub arphrd: Option<u16>,
    /// Promiscuous (IFF_PROMISC) now.
    pub promiscuous: bool,
}

/// `IFF_UP` in an interface's `flags`.
const IFF_UP: u32 = 0x1;
/// `IFF_PROMISC`.
const IFF_PROMISC: u32 = 0x100;

/// The kernel's interface directory.
const SYS_CLASS_NET: &str = "/sys/class/net";

/// Where `scripts/nic.sh bind` notes `NAME PCI` for each interface it
/// handed to vfio-pci (the name is gone from the kernel once it is bound).
pub const BOUND_NAMES: &str = "/run/zcap/bound-interfaces";

fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_owned())
}

fn link_name(path: &Path) -> Option<String> {
    let target: PathBuf = std::fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// Reads interface `name`, if the kernel has it.
pub fn read_interface(name: &str) -> Option<KernelInterface> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let dir = Path::new(SYS_CLASS_NET).join(name);
    if !dir.is_dir() {
        return None;
    }
    let operstate = read_trimmed(&dir.join("operstate")).unwrap_or_default();
    let flags = read_trimmed(&dir.join("flags"))
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    let up = operstate == "up" || (operstate == "unknown" && flags & IFF_UP != 0);
    let on_pci = link_name(&dir.join("device/subsystem")).as_deref() == Some("pci");
    Some(KernelInterface {
        name: name.to_owned(),
        driver: link_name(&dir.join("device/driver")),
        pci: on_pci.then(|| link_name(&dir.join("device"))).flatten(),
        mac: read_trimmed(&dir.join("address")).unwrap_or_default(),
        operstate,
        up,
        // Reading `speed` of a link that is down fails (EINVAL) or says -1.
        speed_mbps: read_trimmed(&dir.join("speed")).and_then(|s| s.parse().ok()),
        mtu: read_trimmed(&dir.join("mtu")).and_then(|s| s.parse().ok()),
        arphrd: read_trimmed(&dir.join("type")).and_then(|s| s.parse().ok()),
        promiscuous: flags & IFF_PROMISC != 0,
    })
}

/// Every interface the kernel has, by name.
pub fn list_interfaces() -> Vec<KernelInterface> {
    let mut names: Vec<String> = std::fs::read_dir(SYS_CLASS_NET)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.iter().filter_map(|n| read_interface(n)).collect()
}

/// The `NAME PCI` pairs `scripts/nic.sh bind` noted (none if it never ran).
pub fn bound_names() -> Vec<(String, String)> {
    parse_bound_names(&std::fs::read_to_string(BOUND_NAMES).unwrap_or_default())
}

/// Parses [`BOUND_NAMES`]: one `NAME PCI` pair per line; `#` comments.
pub(crate) fn parse_bound_names(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// The driver the PCI device at `address` is bound to (`vfio-pci` once
/// `scripts/nic.sh bind` took it), if any.
pub fn pci_driver(address: &str) -> Option<String> {
    link_name(
        &Path::new("/sys/bus/pci/devices")
            .join(address)
            .join("driver"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_names_parse_pairs_and_skip_the_rest() {
        let text = "# written by scripts/nic.sh\neth1 0000:03:00.0\n\n ens1f1  0000:03:00.1 # port 2\nlonely\n";
        assert_eq!(
            parse_bound_names(text),
            vec![
                ("eth1".to_owned(), "0000:03:00.0".to_owned()),
                ("ens1f1".to_owned(), "0000:03:00.1".to_owned())
            ]
        );
    }

    #[test]
    fn loopback_is_read_and_paths_are_not_names() {
        let lo = read_interface("lo").expect("every Linux machine has lo");
        assert_eq!(lo.driver, None);
        assert_eq!(lo.pci, None);
        assert_eq!(lo.mac, "00:00:00:00:00:00");
        for bad in ["", ".", "..", "../lo", "lo/x"] {
            assert_eq!(read_interface(bad), None, "{bad:?}");
        }
        assert!(list_interfaces().iter().any(|i| i.name == "lo"));
    }
}
