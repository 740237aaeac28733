//! End-to-end use of the public WAL API the way the streaming receiver uses it: a WAL stream
//! of several segments arrives in XLogData messages of arbitrary sizes that ignore segment
//! boundaries; the receiver splits them per segment, feeds one `SegmentValidator` per
//! segment and hands the state over at each boundary (PROTOCOL.md §5.3 and §7).
//!
//! The WAL comes from `wal::testkit` (synthetic pages and records with correct CRCs).

use barman_protocol::wal::testkit::{tli, WalBuilder};
use barman_protocol::wal::{
    validate_segment, SegmentHead, SegmentSummary, SegmentTail, SegmentValidator, ValidatorOptions,
};
use barman_protocol::{ErrorKind, Lsn, WalSegNo, WalSegmentSize};

/// Five 1 MB segments: commits, a restore point, a record crossing into segment 2, a record
/// spanning all of segment 3, and a switch ending segment 4; segment 5 is the live one.
fn stream() -> WalBuilder {
    let size = WalSegmentSize::MIN;
    let mut b = WalBuilder::new(16, size, 1);
    for i in 0..500u32 {
        b.noop(200 + (i as usize % 50) * 8);
        if i % 10 == 0 {
            b.commit(1000 + i, i64::from(i) * 1_000);
        }
    }
    b.restore_point("before batch", 600_000);
    b.fill_segment(4000);
    for i in 0..30u32 {
        b.abort(2000 + i, 700_000 + i64::from(i));
    }
    b.noop(2_200_000);
    b.commit(3000, 800_000);
    b.noop(50_000);
    b.switch();
    b.commit(3001, 900_000);
    b.noop(10_000);
    b
}

/// Feeds `wal` (starting at segment 1) as messages of the given sizes, splitting at segment
/// boundaries, and returns one result per segment fed.
fn receive(
    wal: &[u8],
    size: WalSegmentSize,
    messages: &[usize],
) -> Vec<Result<SegmentSummary, barman_protocol::Error>> {
    let seg = size.bytes() as usize;
    let mut results = Vec::new();
    let mut segno = 1u64;
    let mut validator =
        SegmentValidator::new(ValidatorOptions::new(tli(1), WalSegNo::new(segno), size)).unwrap();
    let mut pos = 0usize;
    let mut i = 0usize;
    while pos < wal.len() {
        let msg_len = messages[i % messages.len()].min(wal.len() - pos);
        i += 1;
        let mut msg = &wal[pos..pos + msg_len];
        pos += msg_len;
        while !msg.is_empty() {
            let room = seg - validator.position().segment_offset(size) as usize;
            let take = room.min(msg.len());
            match validator.feed(&msg[..take]) {
                Ok(None) => {}
                Ok(Some(summary)) => {
                    results.push(Ok(summary));
                    segno += 1;
                    let carry = validator.into_carry_over().unwrap();
                    validator = SegmentValidator::new(
                        ValidatorOptions::new(tli(1), WalSegNo::new(segno), size).carry_over(carry),
                    )
                    .unwrap();
                }
                Err(e) => {
                    results.push(Err(e));
                    return results;
                }
            }
            msg = &msg[take..];
        }
    }
    results
}

#[test]
fn a_stream_validates_the_same_in_any_message_sizes() {
    let b = stream();
    let size = b.seg_size();
    let complete = &b.bytes()[..4 * size.bytes() as usize];
    let reference = receive(complete, size, &[size.bytes() as usize]);
    assert_eq!(reference.len(), 4);
    let sums: Vec<_> = reference.iter().map(|r| r.clone().unwrap()).collect();
    assert_eq!(sums[0].head, SegmentHead::Clean);
    assert_eq!(sums[0].xacts.commits, 50);
    assert_eq!(sums[0].restore_points[0].name, "before batch");
    assert!(sums[0].pending_record.is_some() || sums[1].head == SegmentHead::Clean);
    assert_eq!(sums[1].xacts.aborts, 30);
    assert!(sums[1].pending_record.is_some());
    assert_eq!(sums[2].records, 0);
    assert_eq!(sums[2].head, SegmentHead::Carried);
    assert_eq!(sums[3].tail, SegmentTail::Switch);
    assert_eq!(sums[3].xacts.commits, 1);
    for messages in [&[1usize][..], &[8192], &[131_072, 7, 65_536], &[1_000_003]] {
        if messages == [1] {
            // One byte at a time over 4 MB is slow in debug builds; use the first 2 MB.
            let two = &complete[..2 * size.bytes() as usize];
            let got = receive(two, size, messages);
            assert_eq!(got, reference[..2].to_vec(), "{messages:?}");
            continue;
        }
        assert_eq!(receive(complete, size, messages), reference, "{messages:?}");
    }
}

#[test]
fn the_live_segment_validates_as_partial() {
    let b = stream();
    let size = b.seg_size();
    let live = b.segment(5);
    let s = validate_segment(
        &live,
        ValidatorOptions::for_file_name("000000010000000000000005.partial", size).unwrap(),
    )
    .unwrap();
    assert_eq!(s.tail, SegmentTail::EndOfWal);
    assert_eq!(s.xacts.commits, 1);
    assert_eq!(s.end, b.position().max_align());
    // Named as a complete segment it is incomplete.
    let e = validate_segment(
        &live,
        ValidatorOptions::for_file_name("000000010000000000000005", size).unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEnd);
    assert_eq!(Some(b.position().max_align().unwrap()), e.lsn());
}

#[test]
fn damage_in_a_carried_record_is_found_in_the_segment_where_it_ends() {
    let mut b = stream();
    let size = b.seg_size();
    // The 2.2 MB record starts in segment 2 and ends in segment 4: damage its last part.
    let off = 3 * size.bytes() as usize + 100_000;
    b.bytes_mut()[off] ^= 0x40;
    let complete = &b.bytes()[..4 * size.bytes() as usize];
    let got = receive(complete, size, &[65_536]);
    assert_eq!(got.len(), 4);
    assert!(got[..3].iter().all(|r| r.is_ok()));
    let e = got[3].clone().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Checksum);
    let started: Lsn = e.lsn().unwrap();
    assert_eq!(started.segment_number(size), WalSegNo::new(2));
}
