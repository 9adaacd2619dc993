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

use super::flow::{has_ports, FlowKey, Net, Ports, Tags};
use std::net::{Ipv4Addr, Ipv6Addr};

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
        let tokens = tokens(expression);
        if tokens.is_empty() {
            return Query::everything();
        }
        let mut parser = Parser {
            tokens,
            at: 0,
            vlans: 0,
            last: None,
        };
        let root = parser.expr().filter(|_| parser.at == parser.tokens.len());
        Query { root }
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

fn tokens(expression: &str) -> Vec<String> {
    let spaced = expression
        .replace("&&", " and ")
        .replace("||", " or ")
        .replace('(', " ( ")
        .replace(')', " ) ");
    let mut out = Vec::new();
    for word in spaced.split_whitespace() {
        // `!` is `not` only where it starts a word (`!=` is arithmetic,
        // which makes the whole expression one the index does not narrow).
        let mut word = word;
        while let Some(rest) = word.strip_prefix('!').filter(|r| !r.starts_with('=')) {
            out.push("not".to_owned());
            word = rest;
        }
        if !word.is_empty() {
            out.push(word.to_ascii_lowercase());
        }
    }
    out
}

/// The qualifiers of the last term: a bare value after `and`/`or` takes them.
#[derive(Debug, Clone, Copy)]
struct Qualifiers {
    proto: Proto,
    dir: Dir,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Net,
    Port,
    PortRange,
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
    vlans: u8,
    last: Option<Qualifiers>,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn peek_at(&self, ahead: usize) -> Option<&str> {
        self.tokens.get(self.at + ahead).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    /// `unary ((and|or) (unary|value))*`, left to right.
    fn expr(&mut self) -> Option<Node> {
        let mut left = self.unary()?;
        while let Some(op) = self.peek().filter(|t| matches!(*t, "and" | "or")) {
            let is_and = op == "and";
            self.at += 1;
            let right = match self.peek() {
                Some(t) if is_value(t) => self.inherited()?,
                _ => self.unary()?,
            };
            left = if is_and {
                Node::And(Box::new(left), Box::new(right))
            } else {
                Node::Or(Box::new(left), Box::new(right))
            };
        }
        Some(left)
    }

    fn unary(&mut self) -> Option<Node> {
        match self.peek()? {
            "not" => {
                self.at += 1;
                if self.peek().is_some_and(is_value) {
                    return None;
                }
                Some(Node::Not(Box::new(self.unary()?)))
            }
            "(" => {
                self.at += 1;
                let inner = self.expr()?;
                (self.next()? == ")").then_some(inner)
            }
            _ => self.primitive(),
        }
    }

    fn leaf(&self, prim: Prim) -> Node {
        Node::Leaf {
            prim,
            depth: self.vlans,
        }
    }

    /// A bare value with the last term's qualifiers.
    fn inherited(&mut self) -> Option<Node> {
        let q = self.last?;
        let value = self.next()?;
        Some(self.leaf(value_term(q, &value)?))
    }

    fn primitive(&mut self) -> Option<Node> {
        let first = self.peek()?.to_owned();
        if first == "vlan" {
            self.at += 1;
            let prim = match self.peek() {
                Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
                    let token = self.next()?;
                    decimal(&token).map_or(Prim::Maybe, |id| Prim::Vlan(Some(id)))
                }
                _ => Prim::Vlan(None),
            };
            let node = self.leaf(prim);
            self.vlans = self.vlans.checked_add(1)?;
            self.last = None;
            return Some(node);
        }
        let proto = match first.as_str() {
            "ip" => Some(Proto::Ip),
            "ip6" => Some(Proto::Ip6),
            "arp" => Some(Proto::Arp),
            "rarp" => Some(Proto::Rarp),
            "tcp" => Some(Proto::Transport(6)),
            "udp" => Some(Proto::Transport(17)),
            "sctp" => Some(Proto::Transport(132)),
            "ether" | "icmp" | "icmp6" | "igmp" => Some(Proto::Other),
            _ => None,
        };
        if proto.is_some() {
            self.at += 1;
        }
        let dir = self.dir();
        let kind = match self.peek() {
            Some("host") => Some(Kind::Host),
            Some("net") => Some(Kind::Net),
            Some("port") => Some(Kind::Port),
            Some("portrange") => Some(Kind::PortRange),
            _ => None,
        };
        if kind.is_some() {
            self.at += 1;
        }
        match (proto, dir, kind) {
            (Some(proto), None, None) => self.protocol(&first, proto),
            (None, None, None) if first == "proto" => {
                self.at += 1;
                self.proto_number(Proto::Any)
            }
            // A bare word is a host name to libpcap, or a keyword this
            // parser does not know (`mpls` moves offsets as `vlan` does).
            (None, None, None) if !is_value(&first) => None,
            (proto, dir, kind) => {
                let q = Qualifiers {
                    proto: proto.unwrap_or(Proto::Any),
                    dir: dir.unwrap_or(Dir::Either),
                    kind: kind.unwrap_or(Kind::Host),
                };
                let value = self.next()?;
                if kind == Some(Kind::Net) && self.peek() == Some("mask") {
                    self.at += 1;
                    let mask = self.next()?;
                    let prim = masked_net(q, &value, &mask)?;
                    self.last = None;
                    return Some(self.leaf(prim));
                }
                let prim = value_term(q, &value)?;
                self.last = Some(q);
                Some(self.leaf(prim))
            }
        }
    }

    /// A protocol name alone (`tcp`), or `ip proto N`.
    fn protocol(&mut self, name: &str, proto: Proto) -> Option<Node> {
        self.last = None;
        if self.peek() == Some("proto") && matches!(proto, Proto::Ip | Proto::Ip6) {
            self.at += 1;
            return self.proto_number(proto);
        }
        let prim = match name {
            "ip" | "ip6" | "arp" | "rarp" => Prim::Network(proto),
            "tcp" => Prim::Carried {
                v4: Some(6),
                v6: Some(6),
            },
            "udp" => Prim::Carried {
                v4: Some(17),
                v6: Some(17),
            },
            "sctp" => Prim::Carried {
                v4: Some(132),
                v6: Some(132),
            },
            "icmp" => Prim::Carried {
                v4: Some(1),
                v6: None,
            },
            "icmp6" => Prim::Carried {
                v4: None,
                v6: Some(58),
            },
            "igmp" => Prim::Carried {
                v4: Some(2),
                v6: None,
            },
            _ => return None,
        };
        Some(self.leaf(prim))
    }

    fn proto_number(&mut self, proto: Proto) -> Option<Node> {
        let token = self.next()?;
        let Some(n) = decimal::<u8>(&token) else {
            self.last = None;
            return Some(self.leaf(Prim::Maybe));
        };
        let prim = match proto {
            Proto::Ip => Prim::Carried {
                v4: Some(n),
                v6: None,
            },
            Proto::Ip6 => Prim::Carried {
                v4: None,
                v6: Some(n),
            },
            _ => Prim::Carried {
                v4: Some(n),
                v6: Some(n),
            },
        };
        self.last = None;
        Some(self.leaf(prim))
    }

    /// `src`, `dst`, `src or dst`, `src and dst` (either order).
    fn dir(&mut self) -> Option<Dir> {
        let one = match self.peek()? {
            "src" => Dir::Src,
            "dst" => Dir::Dst,
            _ => return None,
        };
        self.at += 1;
        let other =
            |t: Option<&str>| matches!((one, t), (Dir::Src, Some("dst")) | (Dir::Dst, Some("src")));
        match self.peek() {
            Some("or") if other(self.peek_at(1)) => {
                self.at += 2;
                Some(Dir::Either)
            }
            Some("and") if other(self.peek_at(1)) => {
                self.at += 2;
                Some(Dir::Both)
            }
            _ => Some(one),
        }
    }
}

/// A number as the index reads it: plain decimal only. libpcap reads `010`
/// as octal (8) and `0x10` as hex, so those are left to libpcap (`None`).
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// True for a token that can only be a value, never a keyword.
fn is_value(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_digit()) || token.contains(':')
}

/// The term `kind value` with qualifiers `q`; `None` where libpcap reads it
/// in a way the index does not model.
fn value_term(q: Qualifiers, value: &str) -> Option<Prim> {
    let Qualifiers { proto, dir, kind } = q;
    if matches!(proto, Proto::Other) {
        return Some(Prim::Maybe);
    }
    match kind {
        Kind::Host => {
            let addr = match (value.parse::<Ipv4Addr>(), value.parse::<Ipv6Addr>()) {
                (Ok(v4), _) if value.split('.').count() == 4 => Addr::V4 {
                    net: v4.into(),
                    prefix: 32,
                },
                (_, Ok(v6)) => Addr::V6 {
                    net: v6.into(),
                    prefix: 128,
                },
                _ => Addr::Unparsed,
            };
            Some(Prim::Host { proto, dir, addr })
        }
        Kind::Net => Some(Prim::Host {
            proto,
            dir,
            addr: net(value),
        }),
        Kind::Port | Kind::PortRange => {
            let (lo, hi) = match value.split_once('-') {
                Some((lo, hi)) if kind == Kind::PortRange => (decimal(lo), decimal(hi)),
                None if kind == Kind::Port => (decimal(value), decimal(value)),
                _ => (None, None),
            };
            match (lo, hi) {
                (Some(lo), Some(hi))
                    if matches!(
                        proto,
                        Proto::Any | Proto::Transport(_) | Proto::Ip | Proto::Ip6
                    ) =>
                {
                    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                    Some(Prim::Port { proto, dir, lo, hi })
                }
                // A service name, resolved by libpcap.
                _ => Some(Prim::Maybe),
            }
        }
    }
}

/// `A[.B[.C[.D]]][/len]` or `V6/len`.
fn net(value: &str) -> Addr {
    let (base, len) = match value.split_once('/') {
        Some((base, len)) => match decimal::<u8>(len) {
            Some(len) => (base, Some(len)),
            None => return Addr::Unparsed,
        },
        None => (value, None),
    };
    if let Ok(v6) = base.parse::<Ipv6Addr>() {
        return match len {
            Some(prefix) if prefix <= 128 => Addr::V6 {
                net: v6.into(),
                prefix,
            },
            _ => Addr::Unparsed,
        };
    }
    let parts: Vec<&str> = base.split('.').collect();
    let octets: Option<Vec<u8>> = parts.iter().map(|p| decimal(p)).collect();
    match octets {
        Some(octets) if (1..=4).contains(&octets.len()) => {
            let mut bytes = [0u8; 4];
            bytes[..octets.len()].copy_from_slice(&octets);
            let prefix = len.unwrap_or(8 * octets.len() as u8);
            if prefix > 32 {
                return Addr::Unparsed;
            }
            Addr::V4 {
                net: u32::from_be_bytes(bytes),
                prefix,
            }
        }
        _ => Addr::Unparsed,
    }
}

fn masked_net(q: Qualifiers, value: &str, mask: &str) -> Option<Prim> {
    if matches!(q.proto, Proto::Other) {
        return Some(Prim::Maybe);
    }
    let addr = match (value.parse::<Ipv4Addr>(), mask.parse::<Ipv4Addr>()) {
        (Ok(v4), Ok(mask)) => {
            let mask = u32::from(mask);
            let prefix = mask.leading_ones() as u8;
            if mask.count_ones() != u32::from(prefix) {
                Addr::Unparsed
            } else {
                Addr::V4 {
                    net: v4.into(),
                    prefix,
                }
            }
        }
        _ => Addr::Unparsed,
    };
    Some(Prim::Host {
        proto: q.proto,
        dir: q.dir,
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpdk::ClassicFilter;

    /// Frames of every shape the flow parser tells apart: tags (none, one,
    /// QinQ, three), IPv4 with and without ports, fragments, IPv6 with and
    /// without an extension header, ARP, frames cut short.
    fn frames() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let hosts: [[u8; 4]; 3] = [[10, 0, 0, 1], [10, 0, 1, 3], [192, 168, 1, 7]];
        for tags in [&[][..], &[100], &[100, 200], &[5, 6, 7]] {
            for (i, (src, dst)) in hosts.iter().zip(hosts.iter().rev()).enumerate() {
                for proto in [6u8, 17, 1, 132] {
                    for frag in [0u16, 0x2000, 0x0005] {
                        let sport = 1000 + i as u16 * 500;
                        out.push(ipv4(tags, *src, *dst, proto, frag, sport, [80, 53, 443][i]));
                    }
                }
            }
            out.push(ipv6(tags, 6, false));
            out.push(ipv6(tags, 17, true));
            out.push(ipv6(tags, 58, false));
            out.push(arp(tags));
        }
        let cuts: Vec<Vec<u8>> = out
            .iter()
            .flat_map(|f| {
                [14, 20, 30, 36]
                    .into_iter()
                    .filter(|&n| n < f.len())
                    .map(|n| f[..n].to_vec())
            })
            .collect();
        out.extend(cuts);
        out
    }

    fn ethernet(tags: &[u16], ethertype: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        for (i, id) in tags.iter().enumerate() {
            let tpid: u16 = if i == 0 && tags.len() > 1 {
                0x88a8
            } else {
                0x8100
            };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn ipv4(
        tags: &[u16],
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        frag: u16,
        sport: u16,
        dport: u16,
    ) -> Vec<u8> {
        let mut f = ethernet(tags, 0x0800);
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1]);
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0; 16]);
        f
    }

    fn ipv6(tags: &[u16], proto: u8, fragment_header: bool) -> Vec<u8> {
        let mut f = ethernet(tags, 0x86dd);
        let next = if fragment_header { 44 } else { proto };
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 16, next, 64]);
        f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        if fragment_header {
            f.extend_from_slice(&[proto, 0, 0, 0, 0, 0, 0, 1]);
        }
        f.extend_from_slice(&[0x13, 0x88, 0, 80, 0, 8, 0, 0]);
        f
    }

    fn arp(tags: &[u16]) -> Vec<u8> {
        let mut f = ethernet(tags, 0x0806);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 10, 0, 0, 1]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 1, 3]);
        f
    }

    const EXPRESSIONS: &[&str] = &[
        "host 10.0.1.3",
        "src host 10.0.0.1",
        "dst host 192.168.1.7",
        "host 10.0.0.1 and host 192.168.1.7",
        "src and dst net 10.0.0.0/8",
        "src or dst host 10.0.1.3",
        "net 192.168",
        "net 10.0.0.0 mask 255.255.255.0",
        "ip host 10.0.0.1",
        "arp host 10.0.1.3",
        "host 10.0.1.3 or 192.168.1.7",
        "port 80",
        "port 53 or 443",
        "tcp port 80",
        "udp dst port 53",
        "src port 1500",
        "portrange 1000-1600",
        "sctp",
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "ip6",
        "ip",
        "arp",
        "ip proto 6",
        "ip6 proto 17",
        "proto 17",
        "vlan",
        "vlan 100",
        "vlan 200",
        "vlan 100 and vlan 200",
        "vlan and host 10.0.0.1",
        "vlan 100 and udp port 53",
        "not vlan",
        "not tcp",
        "not host 10.0.1.3",
        "not vlan 100 and host 10.0.0.1",
        "host 10.0.0.1 and not vlan",
        "tcp or not vlan",
        "ip6 host 2001:db8::1",
        "ip6 net 2001:db8::/32",
        "ip6 and tcp port 80",
        "ip6 and udp",
        "port 80 and not tcp",
        "(host 10.0.0.1 or host 10.0.1.3) and (port 80 or port 53)",
        "not (tcp or udp)",
        "host 10.0.0.1 or tcp and port 53",
        "ether host 02:00:00:00:00:01 and port 80",
        "greater 60 and host 10.0.0.1",
        "tcp[13] & 2 != 0",
        "!tcp && !udp",
        "host localhost",
        "port http",
        "vlan and vlan and vlan",
        "not ip and not ip6",
        "ether src 02:00:00:00:00:02",
        "ether host 02:00:00:00:00:01 or vlan 100",
        "port 0x50",
        "port 010",
        "vlan 0144",
        "ip proto 021",
        "net 012",
        "portrange 01000-1600",
        "udp port 0065",
    ];

    #[test]
    fn the_index_never_rules_out_a_packet_libpcap_matches() {
        let frames = frames();
        let mut narrowed = 0;
        for expr in EXPRESSIONS {
            let Ok(filter) = ClassicFilter::compile(expr, 262_144) else {
                continue;
            };
            let query = Query::parse(expr);
            for frame in &frames {
                let key = FlowKey::of_ethernet(frame);
                let verdict = query.eval(&key);
                let matches = filter.matches(frame, frame.len() as u32);
                assert!(
                    !(matches && verdict == Tri::No),
                    "{expr:?} matches a frame the index ruled out: {key:?} {frame:02x?}"
                );
                narrowed += usize::from(verdict == Tri::No);
            }
        }
        assert!(
            narrowed > frames.len() * EXPRESSIONS.len() / 4,
            "the index narrows: {narrowed}"
        );
    }

    #[test]
    fn parses_what_it_knows_and_gives_up_on_the_rest() {
        for narrowing in [
            "host 10.0.0.1",
            "port 53 or 80",
            "vlan 100 and tcp",
            "not (udp or arp)",
            "src or dst net 10/8",
        ] {
            assert!(Query::parse(narrowing).narrows(), "{narrowing}");
        }
        for not_narrowing in [
            "tcp[13] & 2 != 0",
            "greater 100",
            "ether broadcast",
            "host a and not b",
            "mpls and tcp",
            "host 10.0.0.1 80",
        ] {
            assert!(!Query::parse(not_narrowing).narrows(), "{not_narrowing}");
        }
        let key = FlowKey::of_ethernet(&ipv4(&[], [10, 0, 0, 1], [10, 0, 0, 2], 6, 0, 1234, 80));
        let q = |e: &str| Query::parse(e).eval(&key);
        assert_eq!(q("host 10.0.0.1 and port 80"), Tri::Yes);
        assert_eq!(q("host 10.0.0.3 or udp"), Tri::No);
        assert_eq!(
            q("port 80 or 81 and udp"),
            Tri::No,
            "and and or of equal precedence, left to right"
        );
        assert_eq!(q("vlan and host 10.0.0.1"), Tri::No);
        assert_eq!(q("port http"), Tri::Maybe);
    }
}
