//! The files a capture writes besides its records' first files: names and
//! creation of those, the disk budget they share, and the report files (`--stats-json`, `--latency-log`,
//! `--latency-plot`), all created before DPDK starts so that a bad path
//! costs nothing.

use crate::config::CaptureConfig;
use crate::dpdk::fs_stats;
use crate::error::{Field, ZcapError};
use crate::output::SharedBudget;
use crate::stats::plot::percentile_svg;
use crate::stats::CaptureReport;
use crate::storage::{directory_of, Budget, FileSink, IoMode, DIRECT_WRITE_BYTES};
use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The output files a capture writes: one, or one per queue; with
/// `--volumes`, writer k's in volume k mod V.
pub(crate) fn output_paths(config: &CaptureConfig, queues: &[(u32, u16)]) -> Vec<PathBuf> {
    let paths = writer_paths(config, queues);
    if config.volumes.is_empty() {
        return paths;
    }
    paths
        .iter()
        .enumerate()
        .map(|(k, path)| {
            let volume = &config.volumes[k % config.volumes.len()];
            volume.join(path.file_name().unwrap_or(path.as_os_str()))
        })
        .collect()
}

/// Checks before DPDK starts that every `--volumes` directory exists.
pub(crate) fn precheck_volumes(volumes: &[PathBuf]) -> Result<(), ZcapError> {
    match volumes.iter().find(|v| !v.is_dir()) {
        Some(missing) => Err(ZcapError::config(
            Field::Volumes,
            format!("{} is not a directory", missing.display()),
        )),
        None => Ok(()),
    }
}

fn writer_paths(config: &CaptureConfig, queues: &[(u32, u16)]) -> Vec<PathBuf> {
    if !config.per_queue_files {
        return vec![config.output.clone()];
    }
    let path = &config.output;
    // /dev/null takes every queue's records (a file name built on it would
    // land in /dev). Not with rotation, whose names are built from the path.
    if is_dev_null(path) && !config.rotation.rotates() {
        return vec![path.clone(); queues.len()];
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    queues
        .iter()
        .map(|(port, queue)| path.with_file_name(format!("{stem}-port{port}-q{queue}{ext}")))
        .collect()
}

fn is_dev_null(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let char_device = |p: &Path| {
        p.metadata()
            .ok()
            .filter(|m| m.file_type().is_char_device())
            .map(|m| m.rdev())
    };
    let device = char_device(path);
    device.is_some() && device == char_device(Path::new("/dev/null"))
}

/// Checks before DPDK starts that the output can be created where asked.
pub(crate) fn precheck_output(path: &Path) -> Result<(), ZcapError> {
    if path.is_dir() {
        let problem = format!("{} is a directory", path.display());
        return Err(ZcapError::config(Field::Output, problem));
    }
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(ZcapError::config(
            Field::Output,
            format!(
                "cannot create {}: directory {} does not exist",
                path.display(),
                dir.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Creates every output file, or none: on failure the ones made are removed.
pub(crate) fn create_sinks(
    config: &CaptureConfig,
    paths: &[PathBuf],
) -> Result<Vec<FileSink>, ZcapError> {
    let mut sinks = Vec::new();
    let spec = config.sink_spec();
    for path in paths {
        let existed = path.exists();
        match FileSink::create(path, &spec) {
            Ok(sink) => sinks.push((sink, existed)),
            Err(err) => {
                for (sink, existed) in sinks {
                    remove_if_ours(sink.path(), existed);
                }
                return Err(create_error(config.io, path, err));
            }
        }
    }
    for (sink, _) in &sinks {
        say_if_buffered(sink);
    }
    Ok(sinks.into_iter().map(|(s, _)| s).collect())
}

/// The one line for an output file that cannot be created.
fn create_error(io: IoMode, path: &Path, err: std::io::Error) -> ZcapError {
    if io == IoMode::Direct && err.raw_os_error() == Some(libc::EINVAL) {
        let problem = format!(
            "cannot open {} for direct I/O: its file system refuses O_DIRECT (use --io buffered or auto)",
            path.display()
        );
        return ZcapError::config(Field::Io, problem);
    }
    let problem = format!("cannot create {}: {err}", path.display());
    ZcapError::config(Field::Output, problem)
}

/// `--io auto` says once per file where the file system refused direct I/O
/// (not for /dev/null and other devices, which never take it).
fn say_if_buffered(sink: &FileSink) {
    let regular = sink.path().metadata().is_ok_and(|m| m.is_file());
    if sink.refused_direct() && regular {
        crate::say!(
            "zcap: {}: the file system refuses O_DIRECT: writing through the page cache (--io buffered)",
            sink.path().display()
        );
    }
}

fn remove_if_ours(path: &Path, existed: bool) {
    if !existed && path.metadata().map(|m| m.is_file()).unwrap_or(false) {
        let _ = std::fs::remove_file(path);
    }
}

/// `--stats-json`, `--latency-log` and `--latency-plot`, created up front.
pub(crate) struct ReportFiles {
    json: Option<File>,
    hlog: Option<File>,
    plot: Option<(PathBuf, File)>,
}

/// Creates `path` for `field`, or says which file could not be made.
fn create(field: Field, path: Option<&PathBuf>) -> Result<Option<File>, ZcapError> {
    path.map(|p| {
        File::create(p)
            .map_err(|e| ZcapError::config(field, format!("cannot create {}: {e}", p.display())))
    })
    .transpose()
}

impl ReportFiles {
    /// Creates every report file the configuration names.
    pub(crate) fn create(config: &CaptureConfig) -> Result<Self, ZcapError> {
        let json = create(Field::StatsJson, config.stats_json.as_ref())?;
        let hlog = create(Field::LatencyLog, config.latency_log.as_ref())?;
        let plot = create(Field::LatencyPlot, config.latency_plot.as_ref())?;
        Ok(ReportFiles {
            json,
            hlog,
            plot: config.latency_plot.clone().zip(plot),
        })
    }

    /// Runs `body` with the per-interval logs open (the `.hlog` writer
    /// borrows its file and serializer for as long as it lives).
    pub(crate) fn with_logs<R>(
        &mut self,
        body: impl FnOnce(&mut IntervalLogs) -> Result<R, ZcapError>,
    ) -> Result<R, ZcapError> {
        let mut serializer = V2DeflateSerializer::new();
        let hlog = match self.hlog.as_mut() {
            Some(file) => Some(
                IntervalLogWriterBuilder::new()
                    .add_comment("zcap rx→written latency, ns")
                    .with_start_time(SystemTime::now())
                    .with_base_time(SystemTime::now())
                    .begin_log_with(file, &mut serializer)
                    .map_err(|e| ZcapError::config(Field::LatencyLog, e.to_string()))?,
            ),
            None => None,
        };
        let mut logs = IntervalLogs {
            json: self.json.as_mut(),
            hlog,
        };
        body(&mut logs)
    }

    /// Writes the percentile plot of every latency sample; an error names
    /// the file (a runtime failure: the capture is over, so the message says
    /// what the file is for).
    pub(crate) fn write_plot(&mut self, total: &Histogram<u64>) -> Result<(), String> {
        let Some((path, file)) = self.plot.as_mut() else {
            return Ok(());
        };
        let svg = percentile_svg(total, "zcap: latency from receive to written");
        file.write_all(svg.as_bytes())
            .map_err(|e| format!("cannot write the latency plot {}: {e}", path.display()))
    }
}

/// The per-interval outputs: a JSON line each, and a `.hlog` interval.
pub(crate) struct IntervalLogs<'a, 'b> {
    json: Option<&'a mut File>,
    hlog: Option<IntervalLogWriter<'a, 'b, File, V2DeflateSerializer>>,
}

impl IntervalLogs<'_, '_> {
    /// Logs one interval (or the final report, whose interval is the last).
    pub(crate) fn log(&mut self, report: &CaptureReport, interval: &Histogram<u64>) {
        if let Some(out) = self.json.as_mut() {
            let _ = writeln!(out, "{}", report.to_json());
        }
        if let Some(log) = self.hlog.as_mut() {
            let length = report.interval.as_ref().map_or(0.0, |i| i.duration_s);
            let start = (report.duration_s - length).max(0.0);
            let _ = log.write_histogram(
                interval,
                Duration::from_secs_f64(start),
                Duration::from_secs_f64(length),
                None,
            );
        }
    }
}

/// `--max-disk` in bytes, for the writers whose first files are `first`:
/// a share is of the first file's volume. Refused if it cannot hold the
/// files being written.
pub(super) fn disk_budget(
    config: &CaptureConfig,
    first: &[PathBuf],
) -> Result<Option<SharedBudget>, ZcapError> {
    let Some(budget) = config.max_disk else {
        return Ok(None);
    };
    let dir = first.first().map_or(Path::new("."), |p| directory_of(p));
    let volume = fs_stats(dir).map(|s| s.total_bytes).map_err(|e| {
        ZcapError::config(
            Field::MaxDisk,
            format!("cannot size {}: {e}", dir.display()),
        )
    })?;
    let limit = budget.bytes(volume);
    // A file passes -C by at most one record and one write.
    let slack = config.buffer_bytes.unwrap_or(DIRECT_WRITE_BYTES) as u64 + 512 * 1024;
    let file_limit = config.rotation.max_bytes.map(|b| b + slack);
    let budget = Budget::new(limit, first.len(), file_limit);
    if budget.too_small() {
        let problem = format!(
            "{limit} bytes cannot hold the files being written ({} writer(s), each up to {} bytes)",
            first.len(),
            file_limit.unwrap_or(0)
        );
        return Err(ZcapError::config(Field::MaxDisk, problem));
    }
    Ok(Some(Arc::new(Mutex::new(budget))))
}
