//! File-system work taken off a writer's thread: a thread of its own, on the
//! main lcore's CPU (the stats core, which mostly sleeps), that makes the
//! next file ahead of need (open(2), io_uring's set-up), reserves a new
//! file's blocks (`-C`'s fallocate), removes what `-W` and `--max-disk` give
//! up, and retires closed files (their unused blocks given back, descriptors
//! and buffers freed). A rotation on the writer's thread is then a rename of
//! the spare into place (and of its index's file), and the headers. Orders
//! are carried out in the order given, so a file's reservation always comes
//! before its retirement.
//!
//! The spare has a hidden name beside the first file until it is taken, and
//! no blocks reserved: it costs no disk. An indexed stream's spare comes
//! with an empty file for its index, hidden too. One never taken is removed
//! when the stream ends.

use crate::archive::index::index_path;
use crate::dpdk::preallocate;
use crate::storage::{FileSink, SinkSpec};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// What the helper does, in order.
enum Order {
    /// Make a spare.
    Make(Box<SpareOrder>),
    /// Reserve this many bytes for a file (a second descriptor of it).
    Reserve(File, u64),
    /// Remove a file.
    Remove(PathBuf),
    /// A closed file, all on disk: give back its unused blocks and free it.
    Retire(Box<FileSink>),
}

/// A file at `path`, ready to write, and an empty one at `index` for its
/// index.
struct SpareOrder {
    path: PathBuf,
    spec: SinkSpec,
    index: Option<PathBuf>,
}

/// A spare made (or why not), and its index's file.
struct Made {
    path: PathBuf,
    sink: io::Result<FileSink>,
    index: Option<(PathBuf, File)>,
}

impl Made {
    /// Removes what was made: it will not be used.
    fn remove(self) {
        drop(self.sink);
        let _ = std::fs::remove_file(&self.path);
        if let Some((index, _)) = self.index {
            let _ = std::fs::remove_file(index);
        }
    }
}

/// How often a writer waiting for the helper checks that it still runs.
const SETTLE_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// How many orders the helper has carried out.
#[derive(Default)]
struct Done {
    count: Mutex<u64>,
    changed: Condvar,
}

/// See the module docs.
pub(crate) struct FileHelper {
    orders: Option<Sender<Order>>,
    made: Receiver<Made>,
    /// The spare ordered and not taken yet.
    ordered: bool,
    /// Orders given, and carried out.
    sent: u64,
    done: Arc<Done>,
    thread: Option<JoinHandle<()>>,
}

impl FileHelper {
    /// The helper's thread, on `cpu` if given (else on the caller's CPU);
    /// `None` if it cannot start (the writer then does all this itself).
    pub(crate) fn start(cpu: Option<usize>) -> Option<Self> {
        let (orders, inbox) = mpsc::channel::<Order>();
        let (made_tx, made) = mpsc::channel::<Made>();
        let done = Arc::new(Done::default());
        let counted = done.clone();
        let thread = std::thread::Builder::new()
            .name("zcap-files".into())
            .spawn(move || {
                if let Some(id) = cpu {
                    core_affinity::set_for_current(core_affinity::CoreId { id });
                }
                for order in inbox {
                    carry_out(order, &made_tx);
                    *counted.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    counted.changed.notify_all();
                }
            })
            .ok()?;
        Some(FileHelper {
            orders: Some(orders),
            made,
            ordered: false,
            sent: 0,
            done,
            thread: Some(thread),
        })
    }

    /// Waits until every order given so far is carried out: a name that
    /// `-W` gave up may be taken again by the next file (`-G` without a
    /// time in the name), which its removal must not reach.
    pub(crate) fn settle(&self) {
        let mut done = self.done.count.lock().unwrap_or_else(|e| e.into_inner());
        // (A helper that died carries out nothing more: stop waiting.)
        while *done < self.sent && self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            let wait = self.done.changed.wait_timeout(done, SETTLE_CHECK);
            done = wait.unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Orders a spare at `path`, made as `spec` says but with no blocks
    /// reserved (and a file for its index at `index`), unless one is
    /// ordered already.
    pub(crate) fn order_spare(&mut self, path: &Path, spec: &SinkSpec, index: Option<&Path>) {
        if !self.ordered {
            let path = path.to_owned();
            let spec = SinkSpec {
                preallocate: None,
                ..spec.clone()
            };
            let index = index.map(Path::to_owned);
            let order = SpareOrder { path, spec, index };
            self.ordered = self.send(Order::Make(Box::new(order))).is_ok();
        }
    }

    /// The spare, renamed to `path`, with `reserve` bytes to be reserved for
    /// it, and its index's file renamed beside it if one was made; waits for
    /// it if it is still being made. `None` if none was ordered, or it could
    /// not be made or renamed (on another file system, say): the caller
    /// makes the file itself (and its index: `None` in the pair).
    pub(crate) fn take_spare(
        &mut self,
        path: &Path,
        reserve: Option<u64>,
    ) -> Option<(FileSink, Option<File>)> {
        if !std::mem::take(&mut self.ordered) {
            return None;
        }
        let mut made = self.made.recv().ok()?;
        if made.sink.is_err() || std::fs::rename(&made.path, path).is_err() {
            made.remove();
            return None;
        }
        let index = made.index.take().and_then(|(spare, file)| {
            let renamed = std::fs::rename(&spare, index_path(path));
            if renamed.is_err() {
                let _ = std::fs::remove_file(spare);
            }
            renamed.ok().map(|()| file)
        });
        let mut sink = made.sink.ok()?;
        sink.renamed(path, Instant::now());
        if let Some(bytes) = reserve {
            if let Some(file) = sink.reserve_later(bytes) {
                let _ = self.send(Order::Reserve(file, bytes));
            }
        }
        Some((sink, index))
    }

    /// Removes `path` (at once, if the helper is gone).
    pub(crate) fn remove(&mut self, path: PathBuf) {
        if let Err(mpsc::SendError(Order::Remove(path))) = self.send(Order::Remove(path)) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Retires a closed file that is all on disk.
    pub(crate) fn retire(&mut self, sink: FileSink) {
        let _ = self.send(Order::Retire(Box::new(sink)));
    }

    fn send(&mut self, order: Order) -> Result<(), mpsc::SendError<Order>> {
        let sent = match &self.orders {
            Some(orders) => orders.send(order),
            None => Err(mpsc::SendError(order)),
        };
        self.sent += u64::from(sent.is_ok());
        sent
    }
}

/// One order, on the helper's thread.
fn carry_out(order: Order, done: &Sender<Made>) {
    match order {
        Order::Make(order) => {
            let SpareOrder { path, spec, index } = *order;
            let sink = FileSink::create(&path, &spec);
            let index = index.and_then(|p| File::create(&p).ok().map(|f| (p, f)));
            // The writer is gone: the spare goes too (see Drop).
            let _ = done.send(Made { path, sink, index });
        }
        Order::Reserve(file, bytes) => {
            let _ = preallocate(&file, bytes);
        }
        Order::Remove(path) => {
            let _ = std::fs::remove_file(path);
        }
        Order::Retire(mut sink) => sink.release_reserve(),
    }
}

impl Drop for FileHelper {
    /// Waits for the orders given, then removes a spare never taken.
    fn drop(&mut self) {
        self.orders.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.made.try_iter().for_each(Made::remove);
    }
}

/// How a spare's name ends (`zcap-extract` skips such files).
pub(crate) const SPARE_SUFFIX: &str = ".zcap-spare";

/// Where the spare of a stream whose first file is `first` waits: a hidden
/// name beside it, one per writer.
pub(crate) fn spare_path(first: &Path) -> PathBuf {
    let name = first
        .file_name()
        .map_or_else(|| "zcap".into(), |n| n.to_string_lossy().into_owned());
    first.with_file_name(format!(".{name}{SPARE_SUFFIX}"))
}
