//! `-Z USER`: giving up root for the rest of a capture.

use std::io;

/// Makes the whole process `uid`, `gid` and `groups` (glibc applies each
/// call to every thread). Groups first: once the user id is dropped, they
/// could no longer be changed.
pub fn drop_to(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    // SAFETY: `groups` is a live buffer of `groups.len()` gids for the call.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain system call on the calling process's credentials.
    if unsafe { libc::setgid(gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain queries of the process's credentials.
    let (now_uid, now_euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if now_uid != uid || now_euid != uid {
        return Err(io::Error::other("the user id did not change"));
    }
    Ok(())
}
