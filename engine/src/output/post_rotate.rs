//! `-z`: the command run on every closed file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;

/// Runs the `-z` command on closed files, one at a time and in order, off the
/// writer's thread so a slow command never stalls capture. `-W`'s removals go
/// through the same queue, so a file is removed only after its command ran.
pub(crate) struct PostRotate {
    queue: Option<mpsc::Sender<PostJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum PostJob {
    Run(PathBuf),
    Remove(PathBuf),
}

impl PostRotate {
    /// Starts the thread that runs `command`.
    pub(crate) fn start(command: String) -> Self {
        let (queue, jobs) = mpsc::channel::<PostJob>();
        let thread = std::thread::Builder::new()
            .name("zcap-post-rotate".into())
            .spawn(move || {
                for job in jobs {
                    match job {
                        PostJob::Run(file) => run_post_rotate(&command, &file),
                        PostJob::Remove(file) => {
                            let _ = std::fs::remove_file(file);
                        }
                    }
                }
            })
            .ok();
        PostRotate {
            queue: Some(queue),
            thread,
        }
    }

    /// Queues the command for `file`.
    pub(crate) fn run(&self, file: &Path) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(PostJob::Run(file.to_owned()));
        }
    }

    /// Queues the removal of `file`, after every command queued before.
    pub(crate) fn remove(&self, file: &Path) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(PostJob::Remove(file.to_owned()));
        }
    }

    /// Waits for every queued job to finish.
    pub(crate) fn finish(mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
        Ok(s) => eprintln!("zcap: -z {command:?} failed on {}: {s}", file.display()),
        Err(e) => eprintln!(
            "zcap: -z {command:?} could not run on {}: {e}",
            file.display()
        ),
    }
}
