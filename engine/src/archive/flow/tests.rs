use super::*;

fn udp4(tags: &[u16], fragment_offset: u16, cut: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for id in tags {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0]);
    f.extend_from_slice(&fragment_offset.to_be_bytes());
    f.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0, 8, 0, 0]);
    f.truncate(f.len() - cut);
    f
}

#[test]
fn reads_addresses_ports_and_tags() {
    let key = FlowKey::of_ethernet(&udp4(&[7, 300], 0, 0));
    assert_eq!(
        key.tags,
        Tags::Known {
            count: 2,
            ids: [7, 300]
        }
    );
    assert_eq!(
        key.net,
        Net::V4 {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            proto: 17,
            ports: Ports::Known { src: 1234, dst: 53 }
        }
    );
}

#[test]
fn says_what_it_could_not_read() {
    let later_fragment = FlowKey::of_ethernet(&udp4(&[], 5, 0));
    assert!(matches!(
        later_fragment.net,
        Net::V4 {
            ports: Ports::Absent,
            ..
        }
    ));
    let cut = FlowKey::of_ethernet(&udp4(&[], 0, 6));
    assert!(matches!(
        cut.net,
        Net::V4 {
            ports: Ports::Unknown,
            ..
        }
    ));
    assert_eq!(
        FlowKey::of_ethernet(&udp4(&[1, 2, 3], 0, 0)),
        FlowKey::UNKNOWN
    );
    assert_eq!(FlowKey::of_ethernet(&[0; 13]), FlowKey::UNKNOWN);
    let arp = FlowKey::of_ethernet(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 6]);
    assert_eq!(arp.net, Net::Other { ethertype: 0x0806 });
}

#[test]
fn packed_keys_unpack_to_themselves() {
    let v6 = [
        0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 17, 64, 0x20, 1, 0xd, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
        11, 12, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x04, 0xd2, 0, 0x35, 0, 8, 0,
        0,
    ];
    let mut frames = vec![v6[..].to_vec(), vec![0x08, 0x06, 0, 1], vec![0x08]];
    for tags in [&[][..], &[5], &[4095, 7], &[1, 2, 3]] {
        for (fragment, cut) in [(0, 0), (1, 0), (0, 3), (0, 30)] {
            frames.push(udp4(tags, fragment, cut)[12..].to_vec());
        }
    }
    for mut frame in frames {
        frame.splice(0..0, [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
        let key = FlowKey::of_ethernet(&frame);
        assert_eq!(FlowKey::unpacked(key.packed()), key, "{frame:02x?}");
    }
    assert_eq!(
        FlowKey::unpacked(FlowKey::UNKNOWN.packed()),
        FlowKey::UNKNOWN
    );
}

#[test]
fn encoded_lengths_are_what_decoding_consumes() {
    let keys = [
        FlowKey::of_ethernet(&udp4(&[], 0, 0)),
        FlowKey::of_ethernet(&udp4(&[5], 0, 0)),
        FlowKey::of_ethernet(&udp4(&[5, 6], 0, 0)),
        FlowKey::of_ethernet(&udp4(&[5, 6, 7], 0, 0)),
        FlowKey::of_ethernet(&udp4(&[], 1, 0)),
        FlowKey::of_ethernet(&udp4(&[], 0, 3)),
        FlowKey::of_ethernet(&udp4(&[], 0, 30)),
        FlowKey::UNKNOWN,
    ];
    for key in keys {
        let mut bytes = Vec::new();
        encode(&key, &mut bytes);
        bytes.extend_from_slice(&[0xee; 3]);
        let mut c = Cursor::new(&bytes);
        assert_eq!(decode(&mut c), Some(key));
        assert_eq!(encoded_len(&bytes), Some(bytes.len() - c.rest().len()));
        assert_eq!(encoded_len(&bytes[..bytes.len() - 4]), None, "cut short");
    }
    assert_eq!(encoded_len(&[0x34]), None, "no such port kind");
}

#[test]
fn every_kind_byte_is_as_long_as_decoding_reads() {
    for kind in 0..=255u8 {
        let mut bytes = vec![kind];
        bytes.extend((1..=48).map(|i| i as u8));
        let mut c = Cursor::new(&bytes);
        let decoded = decode(&mut c).map(|_| bytes.len() - c.rest().len());
        assert_eq!(encoded_len(&bytes), decoded, "kind {kind:#04x}");
    }
}

#[test]
fn keys_survive_encoding() {
    let mut frames = vec![udp4(&[], 0, 0), udp4(&[9], 0, 6), udp4(&[], 3, 0)];
    frames.push(vec![0; 14]);
    let mut v6 = vec![0u8; 12];
    v6.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 6, 64]);
    v6.extend((0..32).map(|i| i as u8));
    v6.extend_from_slice(&[0, 80, 1, 187]);
    frames.push(v6);
    let keys: Vec<FlowKey> = frames.iter().map(|f| FlowKey::of_ethernet(f)).collect();
    let mut bytes = Vec::new();
    keys.iter().for_each(|k| encode(k, &mut bytes));
    encode(&FlowKey::UNKNOWN, &mut bytes);
    let mut input = Cursor::new(&bytes);
    for key in keys.iter().chain([&FlowKey::UNKNOWN]) {
        assert_eq!(decode(&mut input).as_ref(), Some(key));
    }
    assert!(input.rest().is_empty());
    assert_eq!(decode(&mut Cursor::new(&[0x01])), None, "a tag cut short");
    let packed: std::collections::HashSet<[u64; 6]> = keys.iter().map(FlowKey::packed).collect();
    assert_eq!(packed.len(), keys.len(), "distinct keys pack apart");
    for frame in &frames {
        let slow = FlowKey::of_ethernet(frame).packed();
        assert_eq!(FlowKey::packed_of_ethernet(frame), slow, "{frame:02x?}");
    }
}
