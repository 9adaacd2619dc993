//! Where every thread of a run goes, decided before DPDK starts: the queues
//! per port, the CPU of the main lcore, of each poll loop and of each writer,
//! and how each idles. Pure: the caller passes the CPUs this process may use.

use crate::config::{DpdkConfig, IdleMode, Interface};
use crate::dpdk::MAX_LCORES;
use crate::error::{Field, ZcapError};
use crate::pipeline::backoff::IdlePolicy;

/// The writer threads a run wants besides its poll loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writers {
    /// None (zcap-bench rxonly).
    None,
    /// One for every queue together.
    One,
    /// One per RX queue.
    PerQueue,
}

impl Writers {
    fn count(self, queues: usize) -> usize {
        match self {
            Writers::None => 0,
            Writers::One => 1,
            Writers::PerQueue => queues,
        }
    }
}

/// Queues to open on each port before DPDK is up: `-Q`, else one per replayed
/// file of a net_pcap vdev, else one.
fn planned_queues(config: &DpdkConfig) -> Vec<u16> {
    config
        .interfaces
        .iter()
        .map(|iface| match (config.queues, iface) {
            (Some(q), _) => q,
            (None, Interface::Vdev { spec, name }) if name.starts_with("net_pcap") => {
                spec.matches("rx_pcap=").count().max(1) as u16
            }
            _ => 1,
        })
        .collect()
}

/// Refuses a CPU list (of `field`) naming a CPU this process may not use.
fn check_allowed(field: Field, list: &[usize], allowed: &[usize]) -> Result<(), ZcapError> {
    match list.iter().find(|c| !allowed.contains(c)) {
        Some(bad) => Err(ZcapError::config(
            field,
            format!("CPU {bad} is not available to this process (allowed: {allowed:?})"),
        )),
        None => Ok(()),
    }
}

/// Maps lcore 0 (main: stats and control) and one lcore per poll loop to CPUs.
fn lcore_map(
    config: &DpdkConfig,
    poll_loops: usize,
    allowed: &[usize],
) -> Result<Vec<usize>, ZcapError> {
    let main_cpu = allowed[0];
    let poll_cpus = match &config.lcores {
        Some(list) => {
            check_allowed(Field::Lcores, list, allowed)?;
            list.clone()
        }
        None if allowed.len() > 1 => allowed[1..].to_vec(),
        None => vec![main_cpu],
    };
    let mut map = vec![main_cpu];
    map.extend((0..poll_loops).map(|i| poll_cpus[i % poll_cpus.len()]));
    Ok(map)
}

/// One CPU per writer: the `--writer-cpus` list (round robin), else the
/// allowed CPUs that neither the main lcore nor a poll loop uses, else the
/// main lcore's CPU, whose stats core mostly sleeps.
fn writer_cpu_map(
    config: &DpdkConfig,
    lcores: &[usize],
    writers: usize,
    allowed: &[usize],
) -> Result<Vec<usize>, ZcapError> {
    if let Some(list) = &config.writer_cpus {
        check_allowed(Field::WriterCpus, list, allowed)?;
    }
    Ok(place_writers(
        allowed,
        lcores,
        config.writer_cpus.as_deref(),
        writers,
    ))
}

/// The placement rule of [`writer_cpu_map`], apart from the machine.
/// `lcores[0]` is the main lcore's CPU.
fn place_writers(
    allowed: &[usize],
    lcores: &[usize],
    requested: Option<&[usize]>,
    writers: usize,
) -> Vec<usize> {
    let free: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|c| !lcores.contains(c))
        .collect();
    let pool = match requested {
        Some(list) => list.to_vec(),
        None if free.is_empty() => vec![lcores[0]],
        None => free,
    };
    (0..writers).map(|i| pool[i % pool.len()]).collect()
}

/// For each poll loop (on `poll_cpus`) and each writer (on `writer_cpus`):
/// whether another poll loop or writer runs on the same CPU.
fn crowding(poll_cpus: &[usize], writer_cpus: &[usize]) -> (Vec<bool>, Vec<bool>) {
    let all: Vec<usize> = poll_cpus.iter().chain(writer_cpus).copied().collect();
    let crowded = |cpu: &usize| all.iter().filter(|&c| c == cpu).count() > 1;
    (
        poll_cpus.iter().map(crowded).collect(),
        writer_cpus.iter().map(crowded).collect(),
    )
}

/// Where every thread of a run goes and how it idles, decided from the
/// configuration and the CPUs this process may use, before DPDK starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// RX queues to open on each port, in `-i` order.
    pub queues_per_port: Vec<u16>,
    /// The CPU of lcore 0 (main: stats and control), then of each poll loop.
    pub lcore_cpus: Vec<usize>,
    /// The CPU of each writer, in writer order.
    pub writer_cpus: Vec<usize>,
    /// What each poll loop (in queue order) does when idle.
    pub poll_idle: Vec<IdlePolicy>,
    /// What each writer does when idle.
    pub writer_idle: Vec<IdlePolicy>,
    /// Two threads that take mbufs from the pool share a CPU (which picks
    /// the pool's driver).
    pub pool_users_share_cpus: bool,
}

impl Placement {
    /// The placement for `writers` beside one poll loop per queue, on the
    /// `allowed` CPUs (sorted, not empty).
    pub(crate) fn new(
        config: &DpdkConfig,
        writers: Writers,
        allowed: &[usize],
    ) -> Result<Self, ZcapError> {
        let queues_per_port = planned_queues(config);
        let poll_loops: usize = queues_per_port.iter().map(|&q| usize::from(q)).sum();
        if poll_loops + 1 > MAX_LCORES {
            return Err(ZcapError::config(
                Field::Queues,
                format!(
                    "{poll_loops} queues need {} lcores (one per poll loop and the main one); this DPDK has {MAX_LCORES}",
                    poll_loops + 1
                ),
            ));
        }
        let lcore_cpus = lcore_map(config, poll_loops, allowed)?;
        let writer_cpus = writer_cpu_map(config, &lcore_cpus, writers.count(poll_loops), allowed)?;
        // Threads sharing a CPU: poll loops, writers, and the main lcore (it
        // sleeps between ticks, but a thread it preempts may hold a ring).
        let mut busy: Vec<usize> = lcore_cpus.iter().chain(&writer_cpus).copied().collect();
        let busy_threads = busy.len();
        busy.sort_unstable();
        busy.dedup();
        let shared_cpus = busy.len() < busy_threads;
        let (poll_crowded, writer_crowded) = crowding(&lcore_cpus[1..], &writer_cpus);
        // Poll loops and writers are the threads that take mbufs from the pool
        // and give them back. The main lcore is left out: it neither takes nor
        // gives any while capturing, and a thread it preempts waits only for
        // its short stats tick, not a timeslice.
        let pool_users_share_cpus = poll_crowded.iter().chain(&writer_crowded).any(|&c| c);
        let backoff = match config.idle {
            IdleMode::Busy => false,
            IdleMode::Backoff => true,
            IdleMode::Auto => shared_cpus,
        };
        let policies = |crowded: &[bool]| -> Vec<IdlePolicy> {
            crowded
                .iter()
                .map(|&c| IdlePolicy::new(backoff, c))
                .collect()
        };
        Ok(Placement {
            queues_per_port,
            poll_idle: policies(&poll_crowded),
            writer_idle: policies(&writer_crowded),
            lcore_cpus,
            writer_cpus,
            pool_users_share_cpus,
        })
    }

    /// Poll loops: one per queue.
    pub(crate) fn poll_loops(&self) -> usize {
        self.lcore_cpus.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crowded_cpus_are_those_with_two_data_path_threads() {
        // One poll loop on 1, its writer on 0 (beside the main lcore only).
        assert_eq!(crowding(&[1], &[0]), (vec![false], vec![false]));
        // The writer on its poll loop's CPU.
        assert_eq!(crowding(&[1], &[1]), (vec![true], vec![true]));
        // Three poll loops on two CPUs, writers on a third.
        assert_eq!(
            crowding(&[1, 2, 1], &[3, 4, 5]),
            (vec![true, false, true], vec![false, false, false])
        );
        // No writers (rxonly benchmarks).
        assert_eq!(crowding(&[1, 2], &[]), (vec![false, false], vec![]));
    }

    #[test]
    fn writers_take_free_cpus_then_share_the_main_one() {
        let all: Vec<usize> = (0..16).collect();
        // Main on 0, poll loops on 1-4: four writers get 5-8.
        assert_eq!(
            place_writers(&all, &[0, 1, 2, 3, 4], None, 4),
            vec![5, 6, 7, 8]
        );
        // More writers than free CPUs: round robin over the free ones.
        assert_eq!(place_writers(&[0, 1, 2], &[0, 1], None, 3), vec![2, 2, 2]);
        // Two CPUs, one poll loop: the writer shares the main lcore's CPU.
        assert_eq!(place_writers(&[0, 1], &[0, 1], None, 1), vec![0]);
        // An explicit list wins, round robin.
        assert_eq!(
            place_writers(&all, &[0, 1], Some(&[7, 9]), 3),
            vec![7, 9, 7]
        );
        assert!(place_writers(&all, &[0, 1], None, 0).is_empty());
    }

    fn config(queues: u16) -> DpdkConfig {
        DpdkConfig {
            interfaces: vec![Interface::parse("net_null0").unwrap()],
            queues: Some(queues),
            ..DpdkConfig::default()
        }
    }

    #[test]
    fn two_cpus_one_queue_one_writer() {
        let p = Placement::new(&config(1), Writers::One, &[0, 1]).unwrap();
        assert_eq!(p.lcore_cpus, vec![0, 1], "main on 0, the poll loop on 1");
        assert_eq!(p.writer_cpus, vec![0], "the writer beside the main lcore");
        assert!(!p.pool_users_share_cpus, "the main lcore does not count");
        // The writer shares CPU 0 with the main lcore: auto backs off.
        assert_eq!(p.poll_idle, vec![IdlePolicy::Sleep]);
        assert_eq!(p.writer_idle, vec![IdlePolicy::Sleep]);
    }

    #[test]
    fn more_queues_than_cpus_crowd_the_poll_loops() {
        let p = Placement::new(&config(3), Writers::PerQueue, &[0, 1, 2]).unwrap();
        assert_eq!(p.lcore_cpus, vec![0, 1, 2, 1]);
        assert_eq!(p.poll_loops(), 3);
        assert_eq!(
            p.writer_cpus,
            vec![0, 0, 0],
            "no free CPU: beside the main lcore"
        );
        assert!(p.pool_users_share_cpus);
        assert_eq!(p.poll_idle[0], IdlePolicy::YieldThenSleep);
        assert_eq!(p.writer_idle, vec![IdlePolicy::YieldThenSleep; 3]);
    }

    #[test]
    fn own_cpus_spin_unless_told_to_back_off() {
        let all: Vec<usize> = (0..8).collect();
        let p = Placement::new(&config(2), Writers::PerQueue, &all).unwrap();
        assert_eq!(
            (p.lcore_cpus, p.writer_cpus.clone()),
            (vec![0, 1, 2], vec![3, 4])
        );
        assert_eq!(p.poll_idle, vec![IdlePolicy::Spin; 2]);
        let mut backoff = config(2);
        backoff.idle = IdleMode::Backoff;
        let p = Placement::new(&backoff, Writers::PerQueue, &all).unwrap();
        assert_eq!(p.writer_idle, vec![IdlePolicy::Sleep; 2]);
    }

    #[test]
    fn more_poll_loops_than_dpdk_has_lcores_are_refused_before_eal() {
        assert!(Placement::new(&config(127), Writers::One, &[0, 1]).is_ok());
        let err = Placement::new(&config(128), Writers::One, &[0, 1]).unwrap_err();
        assert_eq!(err.field, Some(Field::Queues));
        assert!(
            err.message.starts_with("128 queues need 129 lcores"),
            "{err}"
        );
    }

    #[test]
    fn a_cpu_outside_the_allowed_set_names_its_field() {
        let mut c = config(1);
        c.lcores = Some(vec![5]);
        let err = Placement::new(&c, Writers::One, &[0, 1]).unwrap_err();
        assert_eq!(err.field, Some(Field::Lcores));
        assert!(err.message.starts_with("CPU 5"), "{err}");
        let mut c = config(1);
        c.writer_cpus = Some(vec![9]);
        let err = Placement::new(&c, Writers::One, &[0, 1]).unwrap_err();
        assert_eq!(err.field, Some(Field::WriterCpus));
        assert!(err.message.starts_with("CPU 9"), "{err}");
    }
}
