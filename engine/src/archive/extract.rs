//! `zcap-extract`: the packets of many capture files that fall in a time
//! window and match an expression, merged into one file in time order.

use super::index::{index_path, SUFFIX};
use super::plan::read_plan;
use super::query::{KeyVerdicts, Query};
use super::reader::{CaptureReader, Packet, EMPTY, GONE, NOT_A_CAPTURE};
use super::source::{FileSource, Judge};
use crate::dpdk::ClassicFilter;
use crate::format::pcapng::Interface as OutInterface;
use crate::format::{Encoder, FileFormat, RecordMeta, TsPrecision};
use crate::ZcapError;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What to extract, and where to.
#[derive(Debug, Clone)]
pub struct ExtractSpec {
    /// Capture files, and directories of them.
    pub inputs: Vec<PathBuf>,
    /// The window `[from, to)`, ns since the epoch.
    pub from_ns: Option<u64>,
    pub to_ns: Option<u64>,
    /// A pcap-filter expression.
    pub expression: Option<String>,
    /// The output file; `None` is standard output.
    pub output: Option<PathBuf>,
    pub format: FileFormat,
    /// pcap's precision; `None`: microseconds if every input is a
    /// microsecond pcap file, else nanoseconds.
    pub precision: Option<TsPrecision>,
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractSummary {
    /// Capture files read.
    pub files: usize,
    /// Of them, those read through their index.
    pub indexed: usize,
    /// Records read from the capture files.
    pub records_read: u64,
    /// Records written.
    pub written: u64,
    /// One line per file that stopped at damage (the exit status is 1).
    pub damaged: Vec<String>,
    /// One line per warning (no index, a damaged index).
    pub warnings: Vec<String>,
}

/// Runs an extraction. Usage errors (exit 2) come before anything is
/// written; damage found while reading is in the summary.
pub fn extract(spec: &ExtractSpec) -> Result<ExtractSummary, ZcapError> {
    let (from, to) = (spec.from_ns.unwrap_or(0), spec.to_ns.unwrap_or(u64::MAX));
    if from >= to {
        return Err(ZcapError::usage("--from must be before --to"));
    }
    let expression = spec.expression.clone().filter(|e| !e.trim().is_empty());
    // Loads libpcap, if there is an expression: loading it while the files
    // open was measured no faster (the disk is the bound), and a typo is
    // better told before any file is opened.
    let mut judge = Matcher::new(expression.clone(), from, to)?;
    let mut summary = ExtractSummary::default();
    let paths = capture_files(&spec.inputs, spec.output.as_deref())?;
    let query = expression
        .as_deref()
        .map_or_else(Query::everything, Query::parse);
    let mut sources = Vec::new();
    let opened = open_all(&paths, &query, (from, to));
    for ((path, named), opened) in paths.iter().zip(opened) {
        match opened {
            Ok(source) => sources.push(source),
            // A directory's other files, a capture file not yet begun, one
            // that a ring of files (-W) removed since the listing.
            Err(why) if !named && [NOT_A_CAPTURE, EMPTY, GONE].contains(&why.as_str()) => {}
            Err(why) => summary.damaged.push(format!("{}: {why}", path.display())),
        }
    }
    for source in &sources {
        for iface in source.reader().interfaces() {
            judge.filter_for(iface.link_type)?;
        }
    }
    summary.files = sources.len();
    summary.indexed = sources.iter().filter(|s| s.indexed()).count();
    let unindexed = summary.files - summary.indexed;
    if unindexed > 0 {
        summary.warnings.push(format!(
            "{unindexed} of {} files have no usable index; they are scanned whole",
            summary.files
        ));
    }
    let shapes: Vec<Shape> = sources.iter().map(Shape::of).collect();
    let out = Output::plan(spec.format, spec.precision, spec.output.as_deref(), &shapes)?;
    let mut writer = Output::open(spec.output.as_deref())?;
    let written = merge(&mut sources, &mut judge, &out, &mut writer, &mut summary);
    for source in &sources {
        summary.records_read += source.counts.read;
        summary.warnings.extend(source.warning.clone());
    }
    out.finish(written, &mut writer)?;
    Ok(summary)
}

/// Files opened at once when a search starts: opening one waits on a few
/// small reads (the capture's header, the index's header and directory),
/// then on the index bodies its first candidates come from; a disk serves
/// many such reads together about as fast as one, and two CPUs decode two
/// bodies at once.
const OPENING_THREADS: usize = 16;

/// Each capture file opened as a source, in `paths`' order, with the reads
/// of its first candidates in `window` started.
fn open_all(
    paths: &[(PathBuf, bool)],
    query: &Query,
    window: (u64, u64),
) -> Vec<Result<FileSource, String>> {
    let verdicts = KeyVerdicts::shared(query.clone());
    let open = |path: &Path| {
        let reader = CaptureReader::open(path)?;
        let index = read_plan(&index_path(path), reader.len(), reader.header_end());
        let mut source = FileSource::new(path, reader, index, Arc::clone(&verdicts));
        source.plan_ahead(window);
        Ok(source)
    };
    let next = AtomicUsize::new(0);
    let threads = paths.len().min(OPENING_THREADS);
    let mut opened: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((path, _)) = paths.get(i) else {
                            return mine;
                        };
                        mine.push((i, open(path)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("opening a file does not panic"))
            .collect()
    });
    opened.sort_unstable_by_key(|(i, _)| *i);
    opened.into_iter().map(|(_, result)| result).collect()
}

/// The files named by `inputs`, each with whether it was named itself:
/// files as given, then each directory's files by name, indexes left out
/// (those that are no capture are passed over when opened). A directory's
/// entries are told apart by the type its listing gives: no file is looked
/// at here (on a cold disk, looking at each of 400 entries in turn cost a
/// read each). The output must not be one of them.
fn capture_files(
    inputs: &[PathBuf],
    output: Option<&Path>,
) -> Result<Vec<(PathBuf, bool)>, ZcapError> {
    let real_output = output.and_then(|out| std::fs::canonicalize(out).ok());
    let mut output_is_input = false;
    let mut is_output = |real: Option<PathBuf>| {
        output_is_input |= real.is_some() && real == real_output;
    };
    let mut files = Vec::new();
    for input in inputs {
        let unreadable = |e: std::io::Error| ZcapError::usage(format!("{}: {e}", input.display()));
        if !std::fs::metadata(input).map_err(unreadable)?.is_dir() {
            is_output(std::fs::canonicalize(input).ok());
            files.push((input.clone(), true));
            continue;
        }
        let dir = std::fs::canonicalize(input).map_err(unreadable)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(input).map_err(unreadable)?.flatten() {
            let path = entry.path();
            if path.to_string_lossy().ends_with(SUFFIX) || is_spare(&path) {
                continue;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_file() => is_output(Some(dir.join(entry.file_name()))),
                Ok(kind) if kind.is_symlink() && path.is_file() => {
                    is_output(std::fs::canonicalize(&path).ok());
                }
                _ => continue,
            }
            found.push(path);
        }
        found.sort();
        files.extend(found.into_iter().map(|p| (p, false)));
    }
    match output {
        Some(out) if output_is_input => Err(ZcapError::usage(format!(
            "{} is both an input and the output",
            out.display()
        ))),
        _ => Ok(files),
    }
}

/// The window and the expression, compiled per link type.
pub(crate) struct Matcher {
    expression: Option<String>,
    from: u64,
    to: u64,
    filters: HashMap<u16, ClassicFilter>,
}

impl Matcher {
    pub(crate) fn new(expression: Option<String>, from: u64, to: u64) -> Result<Self, ZcapError> {
        if expression.is_some() {
            crate::dpdk::load_libpcap().map_err(ZcapError::usage)?;
        }
        let mut matcher = Matcher {
            expression,
            from,
            to,
            filters: HashMap::new(),
        };
        // An expression is checked even when there is nothing to read.
        matcher.filter_for(1)?;
        Ok(matcher)
    }

    /// Compiles the expression for `link_type` once.
    pub(crate) fn filter_for(&mut self, link_type: u16) -> Result<(), ZcapError> {
        let Some(expression) = &self.expression else {
            return Ok(());
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = self.filters.entry(link_type) {
            let filter = ClassicFilter::compile_for(expression, 262_144, dlt_of(link_type))
                .map_err(|e| ZcapError::usage(format!("bad expression {expression:?}: {e}")))?;
            slot.insert(filter);
        }
        Ok(())
    }
}

/// libpcap's `DLT_*` for a file's `LINKTYPE_*`: the same number but for
/// the few that differ (pcap-common.c).
fn dlt_of(link_type: u16) -> i32 {
    match link_type {
        100 => 11,
        101 => 12,
        102 => 15,
        103 => 16,
        other => i32::from(other),
    }
}

impl Judge for Matcher {
    fn window(&self) -> (u64, u64) {
        (self.from, self.to)
    }

    fn accepts(&mut self, link_type: u16, packet: &Packet) -> bool {
        if packet.ts_ns < self.from || packet.ts_ns >= self.to {
            return false;
        }
        if self.expression.is_none() {
            return true;
        }
        // An interface first seen inside the file, of a new link type.
        if self.filter_for(link_type).is_err() {
            return false;
        }
        self.filters[&link_type].matches(&packet.data, packet.orig_len)
    }
}

/// The output's encoder, and where each source's interfaces go in it.
pub(crate) struct Output {
    encoder: Encoder,
    /// Per source, per interface of it: the output interface.
    interfaces: Vec<Vec<u32>>,
    name: String,
}

/// What the output needs to know of one source: its interfaces (each
/// with its snaplen), and whether its times are microseconds.
pub(crate) struct Shape {
    pub(crate) interfaces: Vec<(OutInterface, u32)>,
    pub(crate) micro: bool,
}

impl Shape {
    fn of(source: &FileSource) -> Self {
        let interfaces = source.reader().interfaces().iter().map(|iface| {
            let out = OutInterface {
                name: iface.name.clone(),
                description: iface.description.clone(),
                link_type: iface.link_type,
                comment: None,
            };
            (out, iface.snaplen)
        });
        Shape {
            interfaces: interfaces.collect(),
            micro: source.reader().is_micro_pcap(),
        }
    }
}

impl Output {
    /// The output for `shapes`' sources: interfaces that agree in name,
    /// description and link type are one.
    pub(crate) fn plan(
        format: FileFormat,
        precision: Option<TsPrecision>,
        output: Option<&Path>,
        shapes: &[Shape],
    ) -> Result<Self, ZcapError> {
        let mut out_ifaces: Vec<OutInterface> = Vec::new();
        let mut map = Vec::new();
        let mut snaplen = 0u32;
        for shape in shapes {
            let mut mine = Vec::new();
            for (iface, iface_snaplen) in &shape.interfaces {
                snaplen = snaplen.max(*iface_snaplen);
                let at = out_ifaces.iter().position(|o| {
                    o.name == iface.name
                        && o.link_type == iface.link_type
                        && o.description == iface.description
                });
                let at = at.unwrap_or_else(|| {
                    out_ifaces.push(iface.clone());
                    out_ifaces.len() - 1
                });
                mine.push(at as u32);
            }
            map.push(mine);
        }
        if format == FileFormat::Pcap {
            let mut types: Vec<u16> = out_ifaces.iter().map(|i| i.link_type).collect();
            types.sort_unstable();
            types.dedup();
            if types.len() > 1 {
                return Err(ZcapError::usage(format!("the inputs hold link types {types:?}: pcap holds one; write pcapng (-F pcapng)")));
            }
        }
        let all_micro = !shapes.is_empty() && shapes.iter().all(|s| s.micro);
        let precision = precision.unwrap_or(if all_micro {
            TsPrecision::Micro
        } else {
            TsPrecision::Nano
        });
        let snaplen = if snaplen == 0 { 262_144 } else { snaplen };
        if out_ifaces.is_empty() {
            out_ifaces.push(OutInterface {
                name: String::new(),
                description: String::new(),
                link_type: 1,
                comment: None,
            });
        }
        let name = output.map_or("standard output".to_owned(), |p| p.display().to_string());
        Ok(Output {
            encoder: Encoder::new(format, precision, snaplen, out_ifaces),
            interfaces: map,
            name,
        })
    }

    /// Where the output goes: a file created now, or standard output.
    pub(crate) fn open(
        output: Option<&Path>,
    ) -> Result<std::io::BufWriter<Box<dyn Write>>, ZcapError> {
        let sink: Box<dyn Write> =
            match output {
                Some(path) => Box::new(std::fs::File::create(path).map_err(|e| {
                    ZcapError::usage(format!("cannot create {}: {e}", path.display()))
                })?),
                None => Box::new(std::io::stdout().lock()),
            };
        Ok(std::io::BufWriter::with_capacity(1 << 20, sink))
    }

    /// Flushes `writer`; a reader that stopped reading (`| head`) is no error.
    pub(crate) fn finish(
        &self,
        written: std::io::Result<()>,
        writer: &mut dyn Write,
    ) -> Result<(), ZcapError> {
        match written.and_then(|()| writer.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(ZcapError::runtime(format!(
                "cannot write {}: {e}",
                self.name
            ))),
        }
    }
}

/// A source of matching packets for the merge, each source in its own
/// time order.
pub(crate) trait MatchSource {
    /// The next packet the judge accepts; `Err` says where reading stopped
    /// at damage (the packets before it were given).
    fn next_match(&mut self, judge: &mut Matcher) -> Result<Option<Packet>, String>;
}

impl MatchSource for FileSource {
    fn next_match(&mut self, judge: &mut Matcher) -> Result<Option<Packet>, String> {
        FileSource::next_match(self, judge).map_err(|damage| {
            format!(
                "{}: {damage}; the records before it are extracted",
                self.path.display()
            )
        })
    }
}

/// A source's next packet, ordered for the merge: earliest first, then by
/// source, then by arrival within the source.
struct Head {
    ts_ns: u64,
    source: usize,
    seq: u64,
    packet: Packet,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key().cmp(&self.key())
    }
}
impl Head {
    fn key(&self) -> (u64, usize, u64) {
        (self.ts_ns, self.source, self.seq)
    }
}

/// Merges every source's matches into `out`, in time order.
pub(crate) fn merge<S: MatchSource>(
    sources: &mut [S],
    judge: &mut Matcher,
    out: &Output,
    writer: &mut dyn Write,
    summary: &mut ExtractSummary,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    out.encoder.file_header(&mut buf);
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    let mut pull =
        |i: usize, sources: &mut [S], heap: &mut BinaryHeap<Head>, summary: &mut ExtractSummary| {
            match sources[i].next_match(judge) {
                Ok(Some(packet)) => {
                    seq += 1;
                    heap.push(Head {
                        ts_ns: packet.ts_ns,
                        source: i,
                        seq,
                        packet,
                    });
                }
                Ok(None) => {}
                Err(damage) => summary.damaged.push(damage),
            }
        };
    for i in 0..sources.len() {
        pull(i, sources, &mut heap, summary);
    }
    while let Some(head) = heap.pop() {
        let p = &head.packet;
        let meta = RecordMeta {
            ts_ns: p.ts_ns,
            orig_len: p.orig_len,
            interface: out.interfaces[head.source]
                .get(p.interface as usize)
                .copied()
                .unwrap_or(0),
            queue: p.queue.unwrap_or(0),
            rss_hash: p.rss_hash,
        };
        out.encoder.record(&mut buf, &meta, [&p.data[..]]);
        summary.written += 1;
        if buf.len() >= 1 << 16 {
            writer.write_all(&buf)?;
            buf.clear();
        }
        pull(head.source, sources, &mut heap, summary);
    }
    out.encoder.file_trailer(&mut buf, &[]);
    writer.write_all(&buf)
}

/// zcap's spare for a writer's next file (see `output/helper.rs`), not yet
/// a capture file.
fn is_spare(path: &Path) -> bool {
    path.to_string_lossy()
        .ends_with(crate::output::SPARE_SUFFIX)
}
