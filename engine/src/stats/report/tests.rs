use super::*;

#[test]
fn conservation_counts_every_cause_once() {
    let mut r = CaptureReport {
        packets_received: 100,
        packets_written: 60,
        packets_filtered: 10,
        drops: Drops {
            ring_full: 20,
            writer: 5,
            count_limit: 5,
            imissed: 7, // port-side: not part of the received total
            ..Drops::default()
        },
        ..CaptureReport::default()
    };
    assert_eq!(r.unaccounted(), 0);
    r.drops.writer = 4;
    assert_eq!(r.unaccounted(), 1);
}

#[test]
fn json_has_the_contract_keys() {
    let json = CaptureReport::default().to_json();
    for key in [
        "duration_s",
        "packets_received",
        "bytes_received",
        "packets_written",
        "bytes_written",
        "packets_filtered",
        "\"drops\"",
        "imissed",
        "rx_nombuf",
        "ierrors",
        "ring_full",
        "writer",
        "rate_pps",
        "rate_bps",
        "latency_ns",
        "p9999",
        "cycles_per_packet",
        "queues",
    ] {
        assert!(json.contains(key), "missing {key} in {json}");
    }
}
