//! The parser of the pcap-filter subset the index narrows by (see the
//! parent module's docs): tokens, then primitives with their qualifiers
//! and `vlan` depth, joined by `and`, `or` and `not`.

use super::{Addr, Dir, Node, Prim, Proto};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The tree of `tokens`, or `None` where the index cannot narrow.
pub(super) fn expression(tokens: Vec<String>) -> Option<Node> {
    let mut parser = Parser {
        tokens,
        at: 0,
        vlans: 0,
        last: None,
    };
    parser.expr().filter(|_| parser.at == parser.tokens.len())
}

pub(super) fn tokens(expression: &str) -> Vec<String> {
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
