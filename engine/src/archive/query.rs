//! What the index can say about a pcap-filter expression: for each flow, No
//! (no packet of it can match), Yes or Maybe. libpcap decides on every
//! packet that is not a No, so the index only has to be right about No.
//!
//! The parser knows the host, net, port, portrange, proto, vlan and
//! protocol-name primitives, `and`/`or`/`not` (and and or of equal
//! precedence, left to right, as in libpcap), and a bare value after
//! `and`/`or` taking the qualifiers before it. An expression with anything
//! else is one [`Query::everything`]: no narrowing, still exact.
//!
//! `vlan` moves libpcap's offsets for every primitive after it in the text,
//! so each primitive carries the number of `vlan`s before it (its depth).
//! At the depth of a flow's tag count it reads the flow's own headers; at a
//! smaller depth it reads a tag (so it is false, unless it is `vlan`); at a
//! greater depth it reads bytes the index did not keep: Maybe.

mod parse;

use super::flow::{self, has_ports, FlowKey, Net, Ports, Tags};
use super::index::{Packed, PackedMap};
use super::wire::Cursor;
use std::sync::{Arc, Mutex};

/// Three-valued truth, ordered so that `and` is min and `or` is max.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tri {
    No,
    Maybe,
    Yes,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
            Tri::Yes => Tri::No,
        }
    }
}

/// Which address of a packet a host or net term reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Src,
    Dst,
    Either,
    Both,
}

/// The protocol qualifier in front of a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Any,
    Ip,
    Ip6,
    Arp,
    Rarp,
    /// tcp, udp or sctp, by IP protocol number.
    Transport(u8),
    /// A protocol the index does not answer for (ether, icmp ...).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Addr {
    V4 {
        net: u32,
        prefix: u8,
    },
    V6 {
        net: u128,
        prefix: u8,
    },
    /// A name libpcap resolves, or a form the index does not parse.
    Unparsed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prim {
    /// `ip`, `ip6`, `arp`, `rarp`.
    Network(Proto),
    /// `tcp`, `icmp` ..., `ip proto N`: the IPv4 protocol and IPv6 next
    /// header it stands for (`None`: never on that version).
    Carried {
        v4: Option<u8>,
        v6: Option<u8>,
    },
    Host {
        proto: Proto,
        dir: Dir,
        addr: Addr,
    },
    Port {
        proto: Proto,
        dir: Dir,
        lo: u16,
        hi: u16,
    },
    Vlan(Option<u16>),
    Maybe,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Leaf { prim: Prim, depth: u8 },
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// A compiled question for the index (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    root: Option<Node>,
}

impl Query {
    /// The query of no expression, or of one the index cannot narrow.
    pub(crate) fn everything() -> Self {
        Query { root: None }
    }

    /// The query of a pcap-filter expression libpcap has compiled.
    pub(crate) fn parse(expression: &str) -> Self {
        let tokens = parse::tokens(expression);
        if tokens.is_empty() {
            return Query::everything();
        }
        Query {
            root: parse::expression(tokens),
        }
    }

    /// True when the index can narrow anything at all.
    pub(crate) fn narrows(&self) -> bool {
        self.root.is_some()
    }

    /// What the expression can be for a packet of `flow`.
    pub(crate) fn eval(&self, flow: &FlowKey) -> Tri {
        match &self.root {
            None => Tri::Maybe,
            Some(node) => eval(node, flow),
        }
    }
}

fn eval(node: &Node, flow: &FlowKey) -> Tri {
    match node {
        Node::Leaf { prim, depth } => leaf(prim, *depth, flow),
        Node::Not(a) => eval(a, flow).not(),
        Node::And(a, b) => eval(a, flow).min(eval(b, flow)),
        Node::Or(a, b) => eval(a, flow).max(eval(b, flow)),
    }
}

fn leaf(prim: &Prim, depth: u8, flow: &FlowKey) -> Tri {
    // A term the index does not model may read anything (`ether src` reads
    // the MAC addresses whatever the tags): it rules nothing out.
    if *prim == Prim::Maybe {
        return Tri::Maybe;
    }
    let (tags, ids) = match flow.tags {
        Tags::Known { count, ids } => (count, ids),
        Tags::Deep => return Tri::Maybe,
    };
    if let Prim::Vlan(id) = prim {
        return match depth.cmp(&tags) {
            std::cmp::Ordering::Less => Tri::of(id.is_none_or(|id| ids[usize::from(depth)] == id)),
            std::cmp::Ordering::Equal => Tri::No,
            std::cmp::Ordering::Greater => Tri::Maybe,
        };
    }
    match depth.cmp(&tags) {
        std::cmp::Ordering::Less => Tri::No,
        std::cmp::Ordering::Greater => Tri::Maybe,
        std::cmp::Ordering::Equal => network(prim, &flow.net),
    }
}

/// IPv6 next-header values that are extension headers: libpcap's protocol
/// tests look through some of them, so a flow behind one is Maybe.
fn extension_header(next: u8) -> bool {
    matches!(
        next,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// A term at the depth of the flow's own network header.
fn network(prim: &Prim, net: &Net) -> Tri {
    if *net == Net::Unknown || *prim == Prim::Maybe {
        return Tri::Maybe;
    }
    match prim {
        Prim::Network(proto) => Tri::of(matches!(
            (proto, net),
            (Proto::Ip, Net::V4 { .. })
                | (Proto::Ip6, Net::V6 { .. })
                | (Proto::Arp, Net::Other { ethertype: 0x0806 })
                | (Proto::Rarp, Net::Other { ethertype: 0x8035 })
        )),
        Prim::Carried { v4, v6 } => match *net {
            Net::V4 { proto, .. } => Tri::of(*v4 == Some(proto)),
            Net::V6 { next, .. } if v6.is_some() && extension_header(next) => Tri::Maybe,
            Net::V6 { next, .. } => Tri::of(*v6 == Some(next)),
            _ => Tri::No,
        },
        Prim::Host { proto, dir, addr } => host(*proto, *dir, addr, net),
        Prim::Port { proto, dir, lo, hi } => port(*proto, *dir, (*lo, *hi), net),
        Prim::Vlan(_) | Prim::Maybe => Tri::Maybe,
    }
}

fn host(proto: Proto, dir: Dir, addr: &Addr, net: &Net) -> Tri {
    let arp_like = matches!(
        net,
        Net::Other {
            ethertype: 0x0806 | 0x8035
        }
    );
    match (addr, net) {
        (Addr::Unparsed, _) => Tri::Maybe,
        (Addr::V4 { net: want, prefix }, Net::V4 { src, dst, .. })
            if matches!(proto, Proto::Any | Proto::Ip) =>
        {
            let hit =
                |a: &[u8; 4]| prefix_eq(u32::from_be_bytes(*a).into(), (*want).into(), *prefix, 32);
            directed(dir, hit(src), hit(dst))
        }
        (Addr::V6 { net: want, prefix }, Net::V6 { src, dst, .. })
            if matches!(proto, Proto::Any | Proto::Ip6) =>
        {
            let hit = |a: &[u8; 16]| prefix_eq(u128::from_be_bytes(*a), *want, *prefix, 128);
            directed(dir, hit(src), hit(dst))
        }
        // libpcap's `host` also reads ARP and RARP addresses.
        (Addr::V4 { .. }, _)
            if arp_like && matches!(proto, Proto::Any | Proto::Arp | Proto::Rarp) =>
        {
            Tri::Maybe
        }
        _ if matches!(proto, Proto::Other) => Tri::Maybe,
        _ => Tri::No,
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
    let shift = u32::from(bits - prefix.min(bits));
    match a.checked_shr(shift) {
        Some(a_top) => a_top == b.checked_shr(shift).unwrap_or(0),
        None => true,
    }
}

fn directed(dir: Dir, src: bool, dst: bool) -> Tri {
    Tri::of(match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::Either => src || dst,
        Dir::Both => src && dst,
    })
}

fn port(proto: Proto, dir: Dir, (lo, hi): (u16, u16), net: &Net) -> Tri {
    let (carried, ports) = match *net {
        Net::V4 { proto, ports, .. } => (proto, ports),
        Net::V6 { next, .. } if extension_header(next) => return Tri::Maybe,
        Net::V6 { next, ports, .. } => (next, ports),
        _ => return Tri::No,
    };
    let wanted = match proto {
        Proto::Transport(p) => p == carried,
        Proto::Any => has_ports(carried),
        Proto::Ip | Proto::Ip6 => has_ports(carried) && proto_family_matches(proto, net),
        _ => return Tri::Maybe,
    };
    if !wanted {
        return Tri::No;
    }
    match ports {
        Ports::Known { src, dst } => {
            let hit = |p: u16| (lo..=hi).contains(&p);
            directed(dir, hit(src), hit(dst))
        }
        Ports::Absent => Tri::No,
        Ports::Unknown => Tri::Maybe,
    }
}

fn proto_family_matches(proto: Proto, net: &Net) -> bool {
    matches!(
        (proto, net),
        (Proto::Ip, Net::V4 { .. }) | (Proto::Ip6, Net::V6 { .. })
    )
}

/// A query's verdicts on encoded flow keys, each distinct key decoded and
/// judged once: the same flows come back in segment after segment, and in
/// file after file of one search, which shares one ([`SharedVerdicts`]).
pub(crate) struct KeyVerdicts {
    query: Query,
    seen: PackedMap<bool>,
}

/// One search's verdicts, for the sources its threads open.
pub(crate) type SharedVerdicts = Arc<Mutex<KeyVerdicts>>;

/// Keys remembered at most (a few MB): a long capture of many short flows
/// must not grow a search without bound.
const MOST_REMEMBERED: usize = 1 << 16;

impl KeyVerdicts {
    /// A search's verdicts of `query`, to share.
    pub(crate) fn shared(query: Query) -> SharedVerdicts {
        Arc::new(Mutex::new(KeyVerdicts {
            query,
            seen: PackedMap::default(),
        }))
    }

    /// True when the index can narrow anything at all.
    pub(crate) fn narrows(&self) -> bool {
        self.query.narrows()
    }

    /// Whether a packet of the flow whose encoded key is `key` (`packed`:
    /// the same, packed) may match; `None` if `key` is not one.
    pub(crate) fn may_match(&mut self, key: &[u8], packed: Packed) -> Option<bool> {
        // (A key of a segment body is one: its length was read as decoding
        // reads it.)
        if !self.narrows() {
            return Some(true);
        }
        if let Some(&verdict) = self.seen.get(&packed) {
            return Some(verdict);
        }
        let flow = flow::decode(&mut Cursor::new(key))?;
        let verdict = self.query.eval(&flow) != Tri::No;
        if self.seen.len() >= MOST_REMEMBERED {
            // Its memory goes too (clear keeps it).
            self.seen = PackedMap::default();
        }
        self.seen.insert(packed, verdict);
        Some(verdict)
    }
}

#[cfg(test)]
mod tests;
