//! One published message: pcap records (as in a little-endian pcap file,
//! without its file header) and the headers that describe them. No NATS
//! here: headers are name/value pairs.

/// Header names (docs/STREAM.md).
pub(crate) const FORMAT: &str = "Zcap-Format";
pub(crate) const LINK_TYPE: &str = "Zcap-Link-Type";
pub(crate) const RESOLUTION: &str = "Zcap-Ts-Resolution";
pub(crate) const SNAPLEN: &str = "Zcap-Snaplen";
pub(crate) const RECORDS: &str = "Zcap-Records";
pub(crate) const FIRST_NS: &str = "Zcap-First-Ns";
pub(crate) const LAST_NS: &str = "Zcap-Last-Ns";
pub(crate) const MIN_NS: &str = "Zcap-Min-Ns";
pub(crate) const MAX_NS: &str = "Zcap-Max-Ns";

/// The bytes of a pcap record's header.
pub(crate) const RECORD_HEADER: usize = 16;

/// What a message's headers say about its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    pub(crate) link_type: u16,
    /// Microsecond time stamps (else nanosecond).
    pub(crate) micro: bool,
    pub(crate) snaplen: u32,
    pub(crate) records: u64,
    /// The first and last record's times, and the earliest and latest.
    pub(crate) first_ns: u64,
    pub(crate) last_ns: u64,
    pub(crate) min_ns: u64,
    pub(crate) max_ns: u64,
}

/// One record of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub(crate) ts_ns: u64,
    pub(crate) orig_len: u32,
    pub(crate) data: &'a [u8],
}

/// The records of `payload`, in order; an error if it does not end on a
/// record boundary.
pub(crate) fn records(payload: &[u8], micro: bool) -> Records<'_> {
    Records {
        rest: payload,
        micro,
    }
}

/// See [`records`].
pub(crate) struct Records<'a> {
    rest: &'a [u8],
    micro: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < RECORD_HEADER {
            self.rest = &[];
            return Some(Err("a record header is cut short".to_owned()));
        }
        let word = |i: usize| u32::from_le_bytes(self.rest[i..i + 4].try_into().expect("4 bytes"));
        let (secs, frac, caplen, orig_len) = (word(0), word(4), word(8), word(12));
        let end = RECORD_HEADER + caplen as usize;
        if self.rest.len() < end {
            self.rest = &[];
            return Some(Err(format!("a record of {caplen} bytes is cut short")));
        }
        let scale = if self.micro { 1_000 } else { 1 };
        let ts_ns = u64::from(secs) * 1_000_000_000 + u64::from(frac) * scale;
        let data = &self.rest[RECORD_HEADER..end];
        self.rest = &self.rest[end..];
        Some(Ok(Record {
            ts_ns,
            orig_len,
            data,
        }))
    }
}

impl BlockMeta {
    /// Describes the records of `payload`, or says why it is no whole run
    /// of records.
    pub(crate) fn of(
        payload: &[u8],
        link_type: u16,
        micro: bool,
        snaplen: u32,
    ) -> Result<Self, String> {
        let mut meta = BlockMeta {
            link_type,
            micro,
            snaplen,
            records: 0,
            first_ns: 0,
            last_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        };
        for record in records(payload, micro) {
            let ts = record?.ts_ns;
            if meta.records == 0 {
                meta.first_ns = ts;
            }
            meta.records += 1;
            meta.last_ns = ts;
            meta.min_ns = meta.min_ns.min(ts);
            meta.max_ns = meta.max_ns.max(ts);
        }
        if meta.records == 0 {
            meta.min_ns = 0;
        }
        Ok(meta)
    }

    /// The headers that say it.
    pub(crate) fn headers(&self) -> Vec<(&'static str, String)> {
        let resolution = if self.micro { "us" } else { "ns" };
        vec![
            (FORMAT, "pcap".to_owned()),
            (LINK_TYPE, self.link_type.to_string()),
            (RESOLUTION, resolution.to_owned()),
            (SNAPLEN, self.snaplen.to_string()),
            (RECORDS, self.records.to_string()),
            (FIRST_NS, self.first_ns.to_string()),
            (LAST_NS, self.last_ns.to_string()),
            (MIN_NS, self.min_ns.to_string()),
            (MAX_NS, self.max_ns.to_string()),
        ]
    }

    /// Reads the headers back (`get` looks one up by name); an error names
    /// the header that is missing or wrong.
    pub(crate) fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, String> {
        let number = |name: &str| -> Result<u64, String> {
            let value = get(name).ok_or_else(|| format!("no {name} header"))?;
            value
                .parse()
                .map_err(|_| format!("{name}: {value:?} is not a number"))
        };
        match get(FORMAT) {
            Some("pcap") => {}
            other => return Err(format!("{FORMAT} is {other:?}, not \"pcap\"")),
        }
        let micro = match get(RESOLUTION) {
            Some("us") => true,
            Some("ns") => false,
            other => return Err(format!("{RESOLUTION} is {other:?}, not \"us\" or \"ns\"")),
        };
        let link_type = u16::try_from(number(LINK_TYPE)?)
            .map_err(|_| format!("{LINK_TYPE} is out of range"))?;
        let snaplen =
            u32::try_from(number(SNAPLEN)?).map_err(|_| format!("{SNAPLEN} is out of range"))?;
        Ok(BlockMeta {
            link_type,
            micro,
            snaplen,
            records: number(RECORDS)?,
            first_ns: number(FIRST_NS)?,
            last_ns: number(LAST_NS)?,
            min_ns: number(MIN_NS)?,
            max_ns: number(MAX_NS)?,
        })
    }

    /// True if some record may fall in `[from, to)`.
    pub(crate) fn overlaps(&self, from: u64, to: u64) -> bool {
        self.records > 0 && self.max_ns >= from && self.min_ns < to
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A pcap record as zcap's encoder writes it.
    pub(crate) fn record(buf: &mut Vec<u8>, ts_ns: u64, micro: bool, data: &[u8], orig: u32) {
        let frac = if micro {
            ts_ns % 1_000_000_000 / 1_000
        } else {
            ts_ns % 1_000_000_000
        };
        buf.extend_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        buf.extend_from_slice(&(frac as u32).to_le_bytes());
        buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        buf.extend_from_slice(&orig.to_le_bytes());
        buf.extend_from_slice(data);
    }

    #[test]
    fn describes_records_and_round_trips_headers() {
        let mut buf = Vec::new();
        record(&mut buf, 5_000_000_123, false, b"abc", 60);
        record(&mut buf, 4_000_000_000, false, b"", 64);
        record(&mut buf, 7_500_000_000, false, b"defg", 4);
        let meta = BlockMeta::of(&buf, 1, false, 128).unwrap();
        assert_eq!(meta.records, 3);
        assert_eq!(
            (meta.first_ns, meta.last_ns),
            (5_000_000_123, 7_500_000_000)
        );
        assert_eq!((meta.min_ns, meta.max_ns), (4_000_000_000, 7_500_000_000));
        let headers = meta.headers();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(BlockMeta::from_headers(get), Ok(meta));
        let got: Vec<_> = records(&buf, false).map(Result::unwrap).collect();
        assert_eq!(
            got[0],
            Record {
                ts_ns: 5_000_000_123,
                orig_len: 60,
                data: b"abc"
            }
        );
        assert_eq!(got[2].data, b"defg");
        assert!(meta.overlaps(7_500_000_000, u64::MAX));
        assert!(!meta.overlaps(7_500_000_001, u64::MAX));
        assert!(!meta.overlaps(0, 4_000_000_000));
        assert!(meta.overlaps(0, 4_000_000_001));
    }

    #[test]
    fn microseconds_scale_and_cut_records_are_refused() {
        let mut buf = Vec::new();
        record(&mut buf, 1_000_002_000, true, b"xy", 2);
        let meta = BlockMeta::of(&buf, 1, true, 65535).unwrap();
        assert_eq!(meta.first_ns, 1_000_002_000);
        assert!(BlockMeta::of(&buf[..buf.len() - 1], 1, true, 65535)
            .unwrap_err()
            .contains("cut short"));
        assert!(BlockMeta::of(&buf[..10], 1, true, 65535)
            .unwrap_err()
            .contains("header"));
        let empty = BlockMeta::of(&[], 1, false, 1).unwrap();
        assert!(!empty.overlaps(0, u64::MAX));
    }

    #[test]
    fn bad_headers_are_named() {
        let meta = BlockMeta::of(&[], 1, false, 1).unwrap();
        for (drop, says) in [(FORMAT, "Zcap-Format"), (RECORDS, "no Zcap-Records")] {
            let headers = meta.headers();
            let get = |name: &str| {
                (name != drop)
                    .then(|| {
                        headers
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, v)| v.as_str())
                    })
                    .flatten()
            };
            assert!(BlockMeta::from_headers(get).unwrap_err().contains(says));
        }
    }
}
