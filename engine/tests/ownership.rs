//! Mbuf ownership against a real DPDK pool: every mbuf goes back exactly once.
//!
//! EAL starts once per process, so this file holds a single test that runs
//! every check in turn (each test file is its own process).

use std::sync::Arc;
use zcap::dpdk::{
    cycles_since_rx, stamped_ring, EalBuilder, HomePool, Mbuf, MbufBurst, Mempool, Received, Stamp,
    StampedBurst,
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

    // A ring hands ownership over, stamps and lengths travelling with their
    // mbufs; a ring dropped with mbufs inside frees them.
    let (mut producer, mut consumer) = stamped_ring(&eal, &pool, 31).unwrap();
    let mut burst = MbufBurst::<32>::new();
    assert!(pool.alloc_burst(&mut burst, 32));
    let mut stamped: StampedBurst<32> = producer.burst();
    let mut i = 0;
    while let Some(m) = burst.pop_front() {
        stamped.push(
            m,
            Stamp {
                ts_ns: 1000 + i,
                rx_tsc: 1 << 20,
            },
        );
        i += 1;
    }
    let sent = producer.enqueue(&mut stamped);
    assert_eq!(sent, 31, "a ring of 31 holds exactly 31");
    assert_eq!(stamped.len(), 1);
    drop(stamped);
    assert_eq!(pool.in_use(), 31);
    let mut out = StampedBurst::<8>::new(HomePool::NONE);
    assert_eq!(consumer.dequeue(&mut out), 8);
    let packets: Vec<Received> = std::iter::from_fn(|| out.pop_front()).collect();
    let stamps: Vec<u64> = packets.iter().map(|p| p.ts_ns()).collect();
    assert_eq!(stamps, (1000..1008).collect::<Vec<u64>>());
    for p in &packets {
        assert_eq!(p.orig_len(), p.mbuf().pkt_len());
        assert_eq!(p.rss_hash(), None);
        assert!(cycles_since_rx(p.rx_tick(), (1 << 20) + 100) <= 164);
        // A plain packet's bytes are found without the header, at the same
        // place the header says.
        let plain = p
            .contiguous()
            .expect("a fresh mbuf of the ring's pool is plain");
        let via_header = p.mbuf().segments().next().unwrap();
        assert_eq!(plain.as_ptr(), via_header.as_ptr());
        assert_eq!(plain.len(), via_header.len());
    }
    // The free batch puts plain packets straight back into the pool.
    let mut free = consumer.free_batch::<4>();
    assert_eq!(free.home(), consumer.home());
    packets.into_iter().for_each(|p| free.push(p));
    assert_eq!(pool.in_use(), 27, "two full batches of 4 went back");
    drop(free);
    assert_eq!(pool.in_use(), 23);
    let mut more = StampedBurst::<8>::new(HomePool::NONE);
    assert_eq!(consumer.dequeue(&mut more), 8);
    assert_eq!(more.retain(|_| false), 8, "retain frees what it rejects");
    assert_eq!(pool.in_use(), 15);
    drop(producer);
    drop(consumer);
    assert_eq!(pool.in_use(), 0, "the ring freed its contents on drop");

    // An mbuf of another pool is never plain: it goes back to its own pool
    // through DPDK's free, however it travelled.
    let other = Arc::new(Mempool::new(&eal, "ownership_other", 63, 0, 2048).expect("pool"));
    let (mut producer, mut consumer) = stamped_ring(&eal, &pool, 7).unwrap();
    let mut stamped: StampedBurst<2> = producer.burst();
    stamped.push(other.alloc().unwrap(), Stamp::default());
    stamped.push(pool.alloc().unwrap(), Stamp::default());
    assert_eq!(producer.enqueue(&mut stamped), 2);
    let mut out = StampedBurst::<2>::new(HomePool::NONE);
    assert_eq!(consumer.dequeue(&mut out), 2);
    let foreign = out.pop_front().unwrap();
    let native = out.pop_front().unwrap();
    assert!(foreign.contiguous().is_none());
    assert!(native.contiguous().is_some());
    let mut free = consumer.free_batch::<4>();
    free.push(foreign);
    free.push(native);
    free.flush();
    assert_eq!(
        other.in_use(),
        0,
        "the foreign mbuf went back to its own pool"
    );
    assert_eq!(pool.in_use(), 0);
}
