//! `-Z USER`: once the ports are started and the first files open (before
//! any poll loop or writer thread starts), the
//! files zcap made so far are given to USER, the removal of EAL's runtime
//! directory is left to a root process that outlives this one, and the
//! process drops to USER and its groups. Rotated files are then USER's own.

use crate::account::Account;
use crate::archive::index_path;
use crate::config::CaptureConfig;
use crate::dpdk::{drop_to, Eal};
use std::os::unix::fs::chown;
use std::path::PathBuf;

/// Hands everything over and drops privileges; an error says which step
/// failed (the capture then stops, exit 1).
pub(crate) fn become_user(
    account: &Account,
    config: &CaptureConfig,
    eal: &Eal,
    first_files: &[PathBuf],
) -> Result<(), String> {
    let owned = |path: &std::path::Path| chown(path, Some(account.uid), Some(account.gid));
    let reports = [
        &config.stats_json,
        &config.latency_log,
        &config.latency_plot,
    ];
    let made = first_files
        .iter()
        .flat_map(|f| [f.clone(), index_path(f)])
        .chain(reports.into_iter().flatten().cloned())
        .filter(|p| p.is_file());
    for path in made {
        owned(&path).map_err(|e| {
            format!(
                "-Z: cannot give {} to {}: {e}",
                path.display(),
                account.name
            )
        })?;
    }
    // EAL's sockets and config: a user process can then remove them itself.
    let runtime = eal.runtime_dir();
    let entries = std::fs::read_dir(runtime).into_iter().flatten().flatten();
    for path in std::iter::once(runtime.to_owned()).chain(entries.map(|e| e.path())) {
        let _ = owned(&path);
    }
    eal.leave_cleanup_to_a_sentinel()
        .map_err(|e| format!("-Z: cannot start the clean-up process: {e}"))?;
    drop_to(account.uid, account.gid, &account.groups)
        .map_err(|e| format!("-Z: cannot become {}: {e}", account.name))
}
