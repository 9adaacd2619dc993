//! `-z`: the command run on every closed file.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Runs the `-z` command on closed files, one at a time and in order, off the
/// writer's thread so a slow command never stalls capture. `-W`'s removals go
/// through the same queue, so a file is removed only after its command ran.
pub(crate) struct PostRotate {
    queue: Arc<Queue>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum PostJob {
    Run(PathBuf),
    Remove(PathBuf),
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<PostJob>,
    /// No job will be added; the thread ends once the queue is empty.
    closed: bool,
    /// The thread is running a job.
    busy: bool,
}

/// How often [`PostRotate::finish`] looks for a reason to stop waiting.
const FINISH_POLL: Duration = Duration::from_millis(20);

impl PostRotate {
    /// Starts the thread that runs `command`.
    pub(crate) fn start(command: String) -> Self {
        let queue = Arc::new(Queue::default());
        let jobs = queue.clone();
        let thread = std::thread::Builder::new()
            .name("zcap-post-rotate".into())
            .spawn(move || {
                while let Some(job) = jobs.next() {
                    match job {
                        PostJob::Run(file) => run_post_rotate(&command, &file),
                        PostJob::Remove(file) => {
                            let _ = std::fs::remove_file(file);
                        }
                    }
                    jobs.done();
                }
            })
            .ok();
        PostRotate { queue, thread }
    }

    /// Queues the command for `file`.
    pub(crate) fn run(&self, file: &Path) {
        self.queue.push(PostJob::Run(file.to_owned()));
    }

    /// Queues the removal of `file`, after every command queued before.
    pub(crate) fn remove(&self, file: &Path) {
        self.queue.push(PostJob::Remove(file.to_owned()));
    }

    /// Waits for every queued job, unless `stop_waiting` turns true first
    /// (a second signal): then the jobs not started are dropped, and the
    /// files whose command did not run are returned. A command already
    /// running is left to finish on its own.
    pub(crate) fn finish(mut self, stop_waiting: impl Fn() -> bool) -> Vec<PathBuf> {
        let mut state = self.queue.lock();
        state.closed = true;
        self.queue.changed.notify_all();
        while !state.jobs.is_empty() || state.busy {
            if stop_waiting() {
                let skipped = state.jobs.drain(..).filter_map(|job| match job {
                    PostJob::Run(file) => Some(file),
                    PostJob::Remove(_) => None,
                });
                return skipped.collect();
            }
            state = match self.queue.changed.wait_timeout(state, FINISH_POLL) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        drop(state);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        Vec::new()
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, job: PostJob) {
        self.lock().jobs.push_back(job);
        self.changed.notify_all();
    }

    /// The next job, waiting for one; `None` once closed and empty.
    fn next(&self) -> Option<PostJob> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                state.busy = true;
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn done(&self) {
        self.lock().busy = false;
        self.changed.notify_all();
    }
}

/// Runs `CMD FILE` through `sh -c 'CMD "$1"'`, so CMD may carry arguments.
fn run_post_rotate(command: &str, file: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{command} \"$1\""))
        .arg("zcap-post-rotate")
        .arg(file)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => crate::say!("zcap: -z {command:?} failed on {}: {s}", file.display()),
        Err(e) => crate::say!(
            "zcap: -z {command:?} could not run on {}: {e}",
            file.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn every_command_runs_in_order_before_finish_returns() {
        let dir = std::env::temp_dir().join(format!("zcap-post-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let post = PostRotate::start(format!("echo >>{}", log.display()));
        for name in ["a", "b", "c"] {
            post.run(Path::new(name));
        }
        assert!(post.finish(|| false).is_empty());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\nb\nc\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_signal_stops_the_wait_and_names_the_files_left() {
        let post = PostRotate::start("sleep 0.5; true".to_owned());
        for name in ["a", "b", "c"] {
            post.run(Path::new(name));
        }
        let signalled = AtomicBool::new(false);
        // The first command is running (0.5 s); the signal comes now.
        std::thread::sleep(Duration::from_millis(100));
        signalled.store(true, Ordering::Relaxed);
        let left = post.finish(|| signalled.load(Ordering::Relaxed));
        assert_eq!(left, vec![PathBuf::from("b"), PathBuf::from("c")]);
        // The running command ends on its own; the test leaves nothing behind.
        std::thread::sleep(Duration::from_millis(700));
    }
}
