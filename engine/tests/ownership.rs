//! Mbuf ownership against a real DPDK pool: every mbuf goes back exactly once.
//!
//! EAL starts once per process, so this file holds a single test that runs
//! every check in turn (each test file is its own process).

use std::sync::Arc;
use zcap::dpdk::{
    stamped_ring, EalBuilder, Mbuf, MbufBatchFree, MbufBurst, Mempool, Stamp, StampedBurst,
};

#[test]
fn mbufs_are_freed_exactly_once() {
    let eal = EalBuilder::new()
        .no_huge(true)
        .memory_mb(Some(64))
        .lcore_cpus(vec![0])
        .log_level(3)
        .init()
        .expect("EAL starts with --no-huge");
    let pool = Arc::new(Mempool::new(&eal, "ownership", 255, 0, 2048).expect("pool"));
    assert_eq!(pool.in_use(), 0);

    // A single mbuf goes back when dropped.
    let m = pool.alloc().expect("alloc");
    assert_eq!(pool.in_use(), 1);
    drop(m);
    assert_eq!(pool.in_use(), 0);

    // A burst dropped halfway frees what it still holds, not what moved out.
    let mut burst = MbufBurst::<32>::new();
    assert!(pool.alloc_burst(&mut burst, 32));
    assert_eq!(pool.in_use(), 32);
    let taken: Vec<Mbuf> = (0..10).map(|_| burst.pop_front().unwrap()).collect();
    assert_eq!(burst.len(), 22);
    drop(burst);
    assert_eq!(
        pool.in_use(),
        10,
        "the burst freed exactly its remaining 22"
    );
    drop(taken);
    assert_eq!(pool.in_use(), 0);

    // The batch freer frees everything pushed, once, including a partial batch.
    let mut batch = MbufBatchFree::<8>::default();
    for _ in 0..20 {
        batch.push(pool.alloc().unwrap());
    }
    assert_eq!(
        pool.in_use(),
        4,
        "two full batches of 8 went back on the way"
    );
    batch.flush();
    assert_eq!(pool.in_use(), 0);

    // A ring hands ownership over, stamps travelling with their mbufs; a
    // ring dropped with mbufs inside frees them.
    let (mut producer, mut consumer) = stamped_ring(&eal, &pool, 31).unwrap();
    let mut burst = MbufBurst::<32>::new();
    assert!(pool.alloc_burst(&mut burst, 32));
    let mut stamped = StampedBurst::<32>::new();
    let mut i = 0;
    while let Some(m) = burst.pop_front() {
        stamped.push(
            m,
            Stamp {
                ts_ns: 1000 + i,
                rx_tsc: i,
            },
        );
        i += 1;
    }
    let sent = producer.enqueue(&mut stamped);
    assert_eq!(sent, 31, "a ring of 31 holds exactly 31");
    assert_eq!(stamped.len(), 1);
    drop(stamped);
    assert_eq!(pool.in_use(), 31);
    let mut out = StampedBurst::<8>::new();
    assert_eq!(consumer.dequeue(&mut out), 8);
    let stamps: Vec<Stamp> = std::iter::from_fn(|| out.pop_front())
        .map(|(m, s)| {
            drop(m);
            s
        })
        .collect();
    assert_eq!(
        stamps[0],
        Stamp {
            ts_ns: 1000,
            rx_tsc: 0
        }
    );
    assert_eq!(
        stamps[7],
        Stamp {
            ts_ns: 1007,
            rx_tsc: 7
        }
    );
    assert_eq!(pool.in_use(), 23);
    let mut more = StampedBurst::<8>::new();
    assert_eq!(consumer.dequeue(&mut more), 8);
    assert_eq!(more.retain(|_| false), 8, "retain frees what it rejects");
    assert_eq!(pool.in_use(), 15);
    drop(producer);
    drop(consumer);
    assert_eq!(pool.in_use(), 0, "the ring freed its contents on drop");
}
