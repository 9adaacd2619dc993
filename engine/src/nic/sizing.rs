//! How large a frame a port takes: its MTU, and whether a frame may span
//! several mbufs (scattered receive). A NIC drops a frame longer than its
//! MTU allows, and one longer than an mbuf unless scatter is on, without a
//! trace in the capture: a recorder wants the largest frames the port
//! takes.

/// What a port says about frame sizes (from `rte_eth_dev_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCaps {
    /// Smallest and largest MTU the port accepts.
    pub min_mtu: u16,
    pub max_mtu: u16,
    /// Largest frame the port receives, headers and CRC included.
    pub max_rx_pktlen: u32,
    /// True if it offers `RTE_ETH_RX_OFFLOAD_SCATTER`.
    pub scatter: bool,
    /// Bytes of packet data one mbuf holds.
    pub mbuf_data_room: u32,
}

/// What the capture asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtuChoice {
    /// Leave the port's MTU as it is (virtual devices: their MTU is the
    /// kernel interface's or meaningless).
    Keep,
    /// The largest the port allows (physical ports, by default).
    Largest,
    /// `--mtu N`.
    Exactly(u16),
}

/// What to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSizing {
    /// The MTU to set; `None`: leave it.
    pub mtu: Option<u16>,
    /// Enable scattered receive.
    pub scatter: bool,
    /// True if the MTU was lowered to what one mbuf holds (no scatter).
    pub limited_by_mbuf: bool,
}

/// Bytes a frame has beyond its MTU: the Ethernet header, CRC and two VLAN
/// tags (the QinQ frames a capture port may see).
const ETHER_OVERHEAD: u32 = 14 + 4 + 2 * 4;

/// The overhead the port itself implies (its largest frame less its largest
/// MTU), or the Ethernet one.
fn overhead(caps: &FrameCaps) -> u32 {
    match caps.max_rx_pktlen.checked_sub(u32::from(caps.max_mtu)) {
        Some(o) if (14..=64).contains(&o) => o.max(ETHER_OVERHEAD),
        _ => ETHER_OVERHEAD,
    }
}

/// The largest MTU whose frames the port receives.
fn largest_mtu(caps: &FrameCaps) -> u16 {
    // ethdev's own reckoning: an Ethernet header and CRC beyond the MTU.
    let by_frame = caps.max_rx_pktlen.saturating_sub(14 + 4);
    (u32::from(caps.max_mtu).min(by_frame) as u16).max(caps.min_mtu)
}

/// Decides the MTU and scatter for `choice` on a port with `caps`. An
/// error is the line for `--mtu`.
pub fn decide(caps: &FrameCaps, choice: MtuChoice) -> Result<FrameSizing, String> {
    let mtu = match choice {
        MtuChoice::Keep => {
            return Ok(FrameSizing {
                mtu: None,
                scatter: false,
                limited_by_mbuf: false,
            })
        }
        // A driver that leaves ethdev's default max_mtu (65535) bounds the
        // frame by max_rx_pktlen alone.
        MtuChoice::Largest => largest_mtu(caps),
        MtuChoice::Exactly(n) if (caps.min_mtu..=caps.max_mtu).contains(&n) => n,
        MtuChoice::Exactly(n) => {
            return Err(format!(
                "{n} is outside the port's MTU range, {} to {}",
                caps.min_mtu, caps.max_mtu
            ))
        }
    };
    let overhead = overhead(caps);
    let fits_one_mbuf = u32::from(mtu) + overhead <= caps.mbuf_data_room;
    if fits_one_mbuf || caps.scatter {
        return Ok(FrameSizing {
            mtu: Some(mtu),
            scatter: !fits_one_mbuf,
            limited_by_mbuf: false,
        });
    }
    let most = (caps.mbuf_data_room - overhead).min(u32::from(caps.max_mtu)) as u16;
    match choice {
        MtuChoice::Exactly(n) => Err(format!(
            "{n} needs frames over several mbufs, and this port has no scattered receive: at most {most}"
        )),
        _ => Ok(FrameSizing {
            mtu: Some(most.max(caps.min_mtu)),
            scatter: false,
            limited_by_mbuf: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ixgbe-like port: jumbo frames to 9728 bytes, scatter offered.
    fn ixgbe() -> FrameCaps {
        FrameCaps {
            min_mtu: 68,
            max_mtu: 9710,
            max_rx_pktlen: 9728,
            scatter: true,
            mbuf_data_room: 2048,
        }
    }

    #[test]
    fn a_physical_port_takes_its_largest_frames_over_several_mbufs() {
        let sizing = decide(&ixgbe(), MtuChoice::Largest).unwrap();
        assert_eq!(sizing.mtu, Some(9710));
        assert!(sizing.scatter);
        assert!(!sizing.limited_by_mbuf);
    }

    #[test]
    fn a_standard_mtu_needs_no_scatter() {
        let sizing = decide(&ixgbe(), MtuChoice::Exactly(1500)).unwrap();
        assert_eq!(
            sizing,
            FrameSizing {
                mtu: Some(1500),
                scatter: false,
                limited_by_mbuf: false
            }
        );
        // 2048 - 26 bytes of overhead is the most one mbuf holds.
        assert!(!decide(&ixgbe(), MtuChoice::Exactly(2022)).unwrap().scatter);
        assert!(decide(&ixgbe(), MtuChoice::Exactly(2023)).unwrap().scatter);
    }

    #[test]
    fn without_scatter_the_mtu_stops_at_one_mbuf() {
        let caps = FrameCaps {
            scatter: false,
            ..ixgbe()
        };
        let sizing = decide(&caps, MtuChoice::Largest).unwrap();
        assert_eq!(sizing.mtu, Some(2022));
        assert!(sizing.limited_by_mbuf && !sizing.scatter);
        let err = decide(&caps, MtuChoice::Exactly(9000)).unwrap_err();
        assert!(err.contains("at most 2022"), "{err}");
    }

    #[test]
    fn an_mtu_outside_the_range_is_refused_and_keep_touches_nothing() {
        let err = decide(&ixgbe(), MtuChoice::Exactly(9800)).unwrap_err();
        assert!(err.contains("68 to 9710"), "{err}");
        assert!(decide(&ixgbe(), MtuChoice::Exactly(60)).is_err());
        let keep = decide(&ixgbe(), MtuChoice::Keep).unwrap();
        assert_eq!(
            keep,
            FrameSizing {
                mtu: None,
                scatter: false,
                limited_by_mbuf: false
            }
        );
    }

    #[test]
    fn an_unset_max_mtu_is_bounded_by_the_largest_frame() {
        let caps = FrameCaps {
            max_mtu: u16::MAX,
            max_rx_pktlen: 9018,
            ..ixgbe()
        };
        assert_eq!(decide(&caps, MtuChoice::Largest).unwrap().mtu, Some(9000));
    }

    #[test]
    fn the_ports_own_overhead_counts_when_larger() {
        // mlx5: max_rx_pktlen 65535 against max_mtu 65535 - 18 says 18, less
        // than the QinQ allowance, which stays.
        let caps = FrameCaps {
            max_mtu: 9978,
            max_rx_pktlen: 9978 + 40,
            ..ixgbe()
        };
        assert_eq!(overhead(&caps), 40);
        let caps = FrameCaps {
            max_rx_pktlen: 9710 + 18,
            ..ixgbe()
        };
        assert_eq!(overhead(&caps), 26);
    }
}
