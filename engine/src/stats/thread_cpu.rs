//! CPU time of the calling thread, split into user and kernel time, from
//! `/proc/thread-self/stat`. A writer's split shows where its time goes: to
//! a file, most of it is the kernel's copy into the page cache.

/// Clock ticks per second of `/proc`'s times: Linux's USER_HZ, 100 on every
/// architecture DPDK supports, whatever the kernel's own tick rate.
const USER_HZ: f64 = 100.0;

/// User and kernel CPU seconds a thread used (10 ms resolution).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThreadCpu {
    /// Seconds in user space.
    pub user_s: f64,
    /// Seconds in the kernel (system calls such as write(2), page faults).
    pub system_s: f64,
}

impl ThreadCpu {
    /// The calling thread's CPU time so far; `None` where `/proc` is missing.
    pub fn of_current_thread() -> Option<Self> {
        parse_stat(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
    }

    /// The time used since `earlier` (a reading of the same thread).
    pub fn since(self, earlier: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            system_s: (self.system_s - earlier.system_s).max(0.0),
        }
    }
}

/// Reads utime and stime (fields 14 and 15) from a `/proc/*/stat` line.
fn parse_stat(text: &str) -> Option<ThreadCpu> {
    // Field 2, the thread's name, is in parentheses and may itself hold
    // spaces and parentheses: count fields from the last ')'.
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    // The first field after the name is field 3, so field 14 is the 12th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(ThreadCpu {
        user_s: utime as f64 / USER_HZ,
        system_s: stime as f64 / USER_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_from_the_end_of_the_name() {
        // A name with a space and a ')' in it; utime 250, stime 1375.
        let line = "4242 (zcap) w 0) R 1 4242 4242 0 -1 4194560 90 0 0 0 250 1375 0 0 20 0 7 0 123 4096 100";
        let cpu = parse_stat(line).expect("parses");
        assert_eq!(cpu.user_s, 2.5);
        assert_eq!(cpu.system_s, 13.75);
    }

    #[test]
    fn a_truncated_line_is_none() {
        assert_eq!(parse_stat("4242 (zcap) R 1 2 3"), None);
        assert_eq!(parse_stat("no name here"), None);
    }

    #[test]
    fn a_busy_thread_sees_its_time_grow() {
        let before = ThreadCpu::of_current_thread().expect("Linux has /proc/thread-self");
        // Spin until a tick of CPU time is counted; 5 s of wall time is plenty
        // even on a crowded machine.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let used = ThreadCpu::of_current_thread().unwrap().since(before);
            if used.user_s + used.system_s > 0.0 {
                break;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "no CPU time counted after 5 s of spinning"
            );
        }
    }
}
