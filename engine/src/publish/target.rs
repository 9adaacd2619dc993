//! `--publish nats://HOST:PORT[,HOST:PORT...]/STREAM` and
//! `zcap-extract --stream ...`: where a stream lives, and the subjects a
//! capture's writers publish on.

/// A parsed stream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget {
    /// `host:port`, each a seed of the cluster.
    pub servers: Vec<String>,
    /// The JetStream stream's name.
    pub stream: String,
}

/// The subjects zcap publishes on, and that a stream must take.
pub(crate) const SUBJECTS: &str = "zcap.>";

/// NATS's default client port, for a server given without one.
const DEFAULT_PORT: u16 = 4222;

impl StreamTarget {
    /// Parses `nats://HOST[:PORT][,HOST[:PORT]...]/STREAM`; an error says
    /// what is wrong in words.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("nats://").ok_or_else(|| {
            if url.starts_with("tls://") {
                format!("{url:?}: TLS is not supported: use nats://")
            } else {
                format!("{url:?} is not a nats:// URL (nats://HOST:PORT/STREAM)")
            }
        })?;
        let (hosts, stream) = rest
            .split_once('/')
            .ok_or_else(|| format!("{url:?} names no stream (nats://HOST:PORT/STREAM)"))?;
        if !valid_stream_name(stream) {
            return Err(format!(
                "{url:?}: {stream:?} is not a stream name (letters, digits, - and _)"
            ));
        }
        let servers = hosts
            .split(',')
            .map(|host| server(host, url))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StreamTarget {
            servers,
            stream: stream.to_owned(),
        })
    }

    /// The servers as the client takes them.
    pub(crate) fn addresses(&self) -> Vec<String> {
        self.servers.iter().map(|s| format!("nats://{s}")).collect()
    }
}

fn server(host: &str, url: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err(format!("{url:?} names an empty server"));
    }
    if host.contains('@') {
        return Err(format!("{url:?}: credentials in the URL are not supported"));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => {
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{url:?}: {port:?} is not a port"))?;
            (name, port)
        }
        None => (host, DEFAULT_PORT),
    };
    let ok = |c: char| c.is_ascii_alphanumeric() || "-._[]:".contains(c);
    if name.is_empty() || !name.chars().all(ok) {
        return Err(format!("{url:?}: {name:?} is not a host name"));
    }
    Ok(format!("{name}:{port}"))
}

/// JetStream stream names: no spaces, dots, wildcards or path separators.
fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A subject token (`--sensor`): no dots, wildcards or spaces.
pub fn valid_sensor(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The host name, made a subject token (dots and others become `-`).
pub fn default_sensor() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let token: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if token.is_empty() {
        "sensor".to_owned()
    } else {
        token
    }
}

/// `--stream-max-age`: seconds, or a number with s, m, h or d.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?}: expected an age such as 90s, 30m, 12h or 7d");
    let (number, scale) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1.0),
        Some((at, 'm')) => (&text[..at], 60.0),
        Some((at, 'h')) => (&text[..at], 3600.0),
        Some((at, 'd')) => (&text[..at], 86400.0),
        _ => (text, 1.0),
    };
    let seconds: f64 = number.parse().map_err(|_| bad())?;
    let seconds = seconds * scale;
    if !(1.0..1e12).contains(&seconds) {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// The subject writer `(port, queue)` of `sensor` publishes on.
pub(crate) fn subject(sensor: &str, port: u32, queue: u16) -> String {
    format!("zcap.{sensor}.{port}.{queue}")
}

/// A subject's sensor, port and queue; `None` for one zcap did not name.
pub(crate) fn parse_subject(subject: &str) -> Option<(String, u32, u16)> {
    let mut parts = subject.split('.');
    let (zcap, sensor, port, queue) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if zcap != "zcap" || parts.next().is_some() {
        return None;
    }
    Some((sensor.to_owned(), port.parse().ok()?, queue.parse().ok()?))
}

/// True if a stream taking `subjects` takes every subject under `zcap.>`.
pub(crate) fn covers_zcap(subjects: &[String]) -> bool {
    subjects.iter().any(|s| s == ">" || s == SUBJECTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_and_stream() {
        let t = StreamTarget::parse("nats://127.0.0.1:4333,localhost/CAP-1").unwrap();
        assert_eq!(t.servers, ["127.0.0.1:4333", "localhost:4222"]);
        assert_eq!(t.stream, "CAP-1");
        assert_eq!(
            t.addresses(),
            ["nats://127.0.0.1:4333", "nats://localhost:4222"]
        );
    }

    #[test]
    fn refuses_what_is_not_a_stream_url() {
        for (url, says) in [
            ("http://h:1/S", "not a nats:// URL"),
            ("tls://h:1/S", "TLS is not supported"),
            ("nats://h:1", "names no stream"),
            ("nats://h:1/", "not a stream name"),
            ("nats://h:1/a.b", "not a stream name"),
            ("nats://h:0/S", "not a port"),
            ("nats://h:99999/S", "not a port"),
            ("nats://h:x/S", "not a port"),
            ("nats://,h/S", "empty server"),
            ("nats://u:p@h/S", "credentials"),
            ("nats://h h/S", "not a host name"),
        ] {
            let err = StreamTarget::parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn ages_take_units() {
        assert_eq!(parse_age("90").unwrap().as_secs(), 90);
        assert_eq!(parse_age("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_age("1.5h").unwrap().as_secs(), 5400);
        assert_eq!(parse_age("7d").unwrap().as_secs(), 604_800);
        for bad in ["", "d", "0", "-1h", "1w", "nan"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_round_trip_and_coverage() {
        let s = subject("probe-1", 0, 3);
        assert_eq!(s, "zcap.probe-1.0.3");
        assert_eq!(parse_subject(&s), Some(("probe-1".to_owned(), 0, 3)));
        assert_eq!(parse_subject("zcap.a.0"), None);
        assert_eq!(parse_subject("zcap.a.0.1.2"), None);
        assert_eq!(parse_subject("other.a.0.1"), None);
        assert_eq!(parse_subject("zcap.a.x.1"), None);
        assert!(covers_zcap(&["zcap.>".into()]));
        assert!(covers_zcap(&["x".into(), ">".into()]));
        assert!(!covers_zcap(&["zcap.*".into(), "zcap.a.>".into()]));
        assert!(valid_sensor("host_1-a") && !valid_sensor("a.b") && !valid_sensor(""));
        assert!(valid_sensor(&default_sensor()));
    }
}
