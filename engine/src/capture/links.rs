//! What each `-i` delivers: Ethernet frames, or a replayed file's own link
//! type (raw IP, Linux cooked, ...). zcap writes that link type and compiles
//! the filter for it; it never labels packets as what they are not.

use crate::config::{CaptureConfig, Interface};
use crate::dpdk::capture_file_dlt;
use crate::error::{Field, ZcapError};
use crate::format::linktype::{capture_file_link_type, HEAD_BYTES};
use crate::format::{FileFormat, LINKTYPE_ETHERNET};
use std::io::Read;
use std::path::Path;

/// One port's link type, as written (`LINKTYPE_*`) and as libpcap compiles
/// filters for it (`DLT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) link_type: u16,
    pub(crate) dlt: i32,
}

const ETHERNET: Link = Link {
    link_type: LINKTYPE_ETHERNET,
    dlt: 1,
};

/// Each interface's link type, in `-i` order. Refused (exit 2, one line):
/// a replayed file that cannot be read, a port whose files differ, and ports
/// that differ where one link type must serve all (a pcap file, a filter).
pub(crate) fn interface_links(config: &CaptureConfig) -> Result<Vec<Link>, ZcapError> {
    let links = config
        .dpdk
        .interfaces
        .iter()
        .map(interface_link)
        .collect::<Result<Vec<_>, _>>()?;
    let first = links.first().copied().unwrap_or(ETHERNET);
    let Some(other) = links.iter().find(|l| l.link_type != first.link_type) else {
        return Ok(links);
    };
    let (a, b) = (first.link_type, other.link_type);
    if config.filter.is_some() {
        return Err(ZcapError::config(
            Field::Filter,
            format!("one filter cannot serve ports of link types {a} and {b}; capture them apart"),
        ));
    }
    if config.format == FileFormat::Pcap {
        return Err(ZcapError::config(
            Field::Output,
            format!(
                "a pcap file holds one link type, and the ports deliver {a} and {b}: write pcapng"
            ),
        ));
    }
    Ok(links)
}

/// An interface's link type: its replayed files' (all alike), else Ethernet.
fn interface_link(iface: &Interface) -> Result<Link, ZcapError> {
    let mut link = None;
    for file in iface.replayed_files() {
        let this = file_link(&file).map_err(|e| {
            ZcapError::config(
                Field::Interface,
                format!("cannot replay {}: {e}", file.display()),
            )
        })?;
        if link.is_some_and(|l: Link| l != this) {
            return Err(ZcapError::config(
                Field::Interface,
                format!(
                    "the files of one port must share a link type ({} differs)",
                    file.display()
                ),
            ));
        }
        link = Some(this);
    }
    Ok(link.unwrap_or(ETHERNET))
}

fn file_link(path: &Path) -> Result<Link, String> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    std::fs::File::open(path)
        .and_then(|f| f.take(HEAD_BYTES as u64).read_to_end(&mut head))
        .map_err(|e| e.to_string())?;
    let link_type = capture_file_link_type(&head)?;
    let dlt = capture_file_dlt(path)?;
    Ok(Link { link_type, dlt })
}
