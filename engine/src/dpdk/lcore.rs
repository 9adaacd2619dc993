//! Running closures on EAL worker lcores, with panics caught and reported.

use super::error::{check, Result};
use std::ffi::c_void;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;
type Outcome = Arc<Mutex<Option<std::result::Result<(), String>>>>;

struct Launch {
    job: Job,
    outcome: Outcome,
}

/// A closure running on an lcore; [`LcoreTask::join`] waits for it.
pub struct LcoreTask {
    lcore: u32,
    outcome: Outcome,
}

/// Runs `job` on worker lcore `lcore` (which must be idle).
pub fn launch(lcore: u32, job: impl FnOnce() + Send + 'static) -> Result<LcoreTask> {
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let launch = Box::new(Launch {
        job: Box::new(job),
        outcome: outcome.clone(),
    });
    let arg = Box::into_raw(launch).cast::<c_void>();
    // SAFETY: `trampoline` takes back the Box we leak here exactly once; if the
    // launch fails, DPDK never calls it and we reclaim the Box ourselves.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if ret < 0 {
        // SAFETY: DPDK did not take `arg`, so it is still ours to free.
        drop(unsafe { Box::from_raw(arg.cast::<Launch>()) });
    }
    check(ret, || format!("cannot launch work on lcore {lcore}"))?;
    Ok(LcoreTask { lcore, outcome })
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box leaked by `launch`, handed to us exactly once.
    let launch = unsafe { Box::from_raw(arg.cast::<Launch>()) };
    let Launch { job, outcome } = *launch;
    // A panic must not unwind into C: catch it and report it to `join`.
    let result = catch_unwind(AssertUnwindSafe(job)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned())
    });
    let failed = result.is_err();
    *outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    c_int::from(failed)
}

impl LcoreTask {
    /// The lcore the task runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure to return; `Err` carries a panic's message.
    pub fn join(self) -> std::result::Result<(), String> {
        // SAFETY: waits for the lcore we launched on; returns once it is idle.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) };
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| Err(format!("lcore {} finished without a result", self.lcore)))
    }
}
