//! Corruption tests: damage synthetic WAL (from `wal::testkit`) in record data, record
//! headers, page headers and long headers, and check that the validator rejects it with the
//! position and the message PostgreSQL's reader (`xlogreader.c`) would give, and that
//! arbitrary bytes never make it panic. The observed pg_waldump messages these follow are in
//! PROTOCOL.md §7.7.

use barman_protocol::wal::page::{XLogPageHeader, XLP_FIRST_IS_CONTRECORD, XLP_LONG_HEADER};
use barman_protocol::wal::record::{RM_XACT_ID, RM_XLOG_ID, XLOG_XACT_PREPARE};
use barman_protocol::wal::testkit::{flip_bit, tli, WalBuilder, TEST_SYSTEM_ID};
use barman_protocol::wal::{
    validate_segment, SegmentKind, SegmentSummary, SegmentValidator, TransactionId,
    ValidatorOptions, XactKind,
};
use barman_protocol::{Error, ErrorKind, Lsn, WalSegNo, WalSegmentSize};

const MIB: WalSegmentSize = WalSegmentSize::MIN;

fn opts(segno: u64) -> ValidatorOptions {
    ValidatorOptions::new(tli(1), WalSegNo::new(segno), MIB)
}

fn validate(bytes: &[u8], o: ValidatorOptions) -> Result<SegmentSummary, Error> {
    validate_segment(bytes, o)
}

/// Feeds `bytes` in chunks of the given sizes (cycled) and returns the summary.
fn feed_chunked(
    bytes: &[u8],
    o: ValidatorOptions,
    sizes: &[usize],
) -> Result<SegmentSummary, Error> {
    let mut v = SegmentValidator::new(o)?;
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len()).max(1);
        i += 1;
        if let Some(s) = v.feed(&rest[..n])? {
            return Ok(s);
        }
        rest = &rest[n..];
    }
    v.finish()
}

/// A segment with every kind of interesting record, crossing pages.
fn busy_segment() -> (WalBuilder, Vec<Lsn>) {
    let mut b = WalBuilder::new(15, MIB, 1);
    let mut lsns = vec![b.noop(114)];
    lsns.push(b.commit(735, 1_000));
    lsns.push(b.noop(8241));
    lsns.push(b.abort(736, 900));
    lsns.push(b.restore_point("rp one", 1_100));
    lsns.push(b.commit_prepared(737, 700, 1_200));
    lsns.push(b.abort_prepared(738, 701, 1_300));
    lsns.push(b.record(RM_XACT_ID, XLOG_XACT_PREPARE, 739, &[0u8; 40]));
    lsns.push(b.noop(30_000));
    lsns.push(b.commit(740, 1_250));
    (b, lsns)
}

#[test]
fn rejects_flipped_bits_in_record_headers() {
    let (mut b, lsns) = busy_segment();
    b.fill_segment(100);
    let seg = b.segment(1);
    let at = b.offset_of(lsns[3]);
    // xl_xid, xl_info, padding and xl_crc are only covered by the CRC.
    for byte in [4usize, 16, 18, 21] {
        let mut bad = seg.clone();
        flip_bit(&mut bad, at + byte, 1);
        let e = validate(&bad, opts(1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Checksum, "byte {byte}: {e}");
        assert_eq!(e.lsn(), Some(lsns[3]));
    }
    // xl_prev.
    let mut bad = seg.clone();
    flip_bit(&mut bad, at + 9, 0);
    let e = validate(&bad, opts(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RecordHeader);
    assert!(
        e.to_string().starts_with("record with incorrect prev-link"),
        "{e}"
    );
    // xl_rmid.
    let mut bad = seg.clone();
    bad[at + 17] = 127;
    let e = validate(&bad, opts(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "invalid resource manager ID 127 at {}; the segment is corrupt",
            lsns[3]
        )
    );
    // xl_tot_len too small, and absurdly large.
    let mut bad = seg.clone();
    bad[at..at + 4].copy_from_slice(&20u32.to_le_bytes());
    let e = validate(&bad, opts(1)).unwrap_err();
    assert!(e.to_string().starts_with("invalid record length at"), "{e}");
    let mut bad = seg.clone();
    bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = validate(&bad, opts(1)).unwrap_err();
    assert!(
        e.to_string().contains("more than PostgreSQL 15 allows"),
        "{e}"
    );
    // A length one byte too long makes the CRC cover one more byte.
    let mut bad = seg.clone();
    let len = u32::from_le_bytes(bad[at..at + 4].try_into().unwrap()) + 1;
    bad[at..at + 4].copy_from_slice(&len.to_le_bytes());
    assert_eq!(
        validate(&bad, opts(1)).unwrap_err().kind(),
        ErrorKind::Checksum
    );
}

#[test]
fn a_bit_flip_anywhere_in_the_records_is_detected() {
    let mut b = WalBuilder::new(14, MIB, 1);
    b.commit(5, 1);
    b.noop(9000);
    b.restore_point("x", 2);
    b.abort(6, 3);
    let end = b.position();
    b.fill_segment(300);
    let seg = b.segment(1);
    validate(&seg, opts(1)).unwrap();
    // Every bit of the first 9 kB of records (skipping page headers and padding, which a
    // flip may turn into something else that is also detected).
    let mut undetected = Vec::new();
    for off in 40..b.offset_of(end) {
        for bit in [0u8, 5] {
            let mut bad = seg.clone();
            flip_bit(&mut bad, off, bit);
            if validate(&bad, opts(1)).is_ok() {
                undetected.push(off);
            }
        }
    }
    // Only alignment padding between records is not covered by any check.
    for off in &undetected {
        let in_padding = seg[*off] == 0 && (off % 8 != 0 || *off % 8192 >= 20);
        assert!(in_padding, "flip at offset {off} went unnoticed");
    }
}

#[test]
fn page_header_damage_is_reported_with_the_page_lsn() {
    let (mut b, _) = busy_segment();
    b.fill_segment(100);
    let seg = b.segment(1);
    let page = 3 * 8192;
    let page_lsn = Lsn::new((1 << 20) + page as u64);
    type Damage<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
    let cases: Vec<(Damage<'_>, ErrorKind, &str)> = vec![
        (
            Box::new(|s: &mut Vec<u8>| s[page] ^= 1),
            ErrorKind::PageHeader,
            "invalid magic number D111",
        ),
        (
            Box::new(|s: &mut Vec<u8>| s[page + 2] = 0x10),
            ErrorKind::PageHeader,
            "invalid info bits 0010",
        ),
        (
            Box::new(|s: &mut Vec<u8>| s[page + 2] |= XLP_LONG_HEADER as u8),
            ErrorKind::PageHeader,
            "only the first page of a segment has a long header",
        ),
        (
            Box::new(|s: &mut Vec<u8>| s[page + 10] ^= 0x10),
            ErrorKind::PageHeader,
            "unexpected pageaddr",
        ),
        (
            Box::new(|s: &mut Vec<u8>| s[page + 4] = 2),
            ErrorKind::PageHeader,
            "is on timeline 2, but segment 000000010000000000000001 is on timeline 1",
        ),
        (
            Box::new(|s: &mut Vec<u8>| s[page..page + 24].fill(0)),
            ErrorKind::UnexpectedEnd,
            "is all zeros",
        ),
        (
            Box::new(|s: &mut Vec<u8>| s[page..page + 8192].fill(0)),
            ErrorKind::UnexpectedEnd,
            "is all zeros",
        ),
    ];
    for (damage, kind, needle) in cases {
        let mut bad = seg.clone();
        damage(&mut bad);
        let e = validate(&bad, opts(1)).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(e.lsn(), Some(page_lsn), "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}

#[test]
fn checks_continuation_flags_and_lengths() {
    let mut b = WalBuilder::new(16, MIB, 1);
    b.noop(8192 - 40); // fills page 1 exactly: page 2 starts with a record
    b.noop(8000);
    let crossing = b.noop(500); // continues on page 3
    b.fill_segment(100);
    let seg = b.segment(1);
    let (page2, page3) = (8192, 2 * 8192);
    assert!(!XLogPageHeader::decode(&seg[page2..])
        .unwrap()
        .is_contrecord());
    // rem_len off by one.
    let mut bad = seg.clone();
    let rem = u32::from_le_bytes(bad[page3 + 16..page3 + 20].try_into().unwrap());
    bad[page3 + 16..page3 + 20].copy_from_slice(&(rem - 1).to_le_bytes());
    let e = validate(&bad, opts(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "invalid contrecord length {} (expected {rem}) in page at 0/104000 for the record at {crossing}; the segment is corrupt",
            rem - 1
        )
    );
    // Continuation flag missing.
    let mut bad = seg.clone();
    bad[page3 + 2] &= !(XLP_FIRST_IS_CONTRECORD as u8);
    let e = validate(&bad, opts(1)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("there is no contrecord flag at 0/104000"),
        "{e}"
    );
    // A continuation flag on a page that starts with a record.
    let mut bad = seg.clone();
    bad[page2 + 2] |= XLP_FIRST_IS_CONTRECORD as u8;
    bad[page2 + 16] = 8;
    let e = validate(&bad, opts(1)).unwrap_err();
    assert_eq!(e.lsn(), Some(Lsn::new(0x10_2000)));
    assert!(
        e.to_string()
            .starts_with("contrecord is requested by 0/102000"),
        "{e}"
    );
    // A remaining length without the flag.
    let mut bad = seg.clone();
    bad[page2 + 16] = 8;
    let e = validate(&bad, opts(1)).unwrap_err();
    assert!(
        e.to_string()
            .contains("has xlp_rem_len 8 but is not marked as a continuation"),
        "{e}"
    );
    validate(&seg, opts(1)).unwrap();
}

#[test]
fn long_header_must_match_the_cluster() {
    let mut b = WalBuilder::new(17, MIB, 1);
    b.fill_segment(100);
    let seg = b.segment(1);
    let ok = validate(&seg, opts(1).system_identifier(Some(TEST_SYSTEM_ID))).unwrap();
    assert_eq!(ok.pg_major, 17);
    let e = validate(&seg, opts(1).system_identifier(Some(42))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignSegment);
    assert!(e.is_foreign());
    assert_eq!(
        e.to_string(),
        format!("segment 000000010000000000000001 is from a different database system: its system identifier is {TEST_SYSTEM_ID}, expected 42")
    );
    // Another version.
    let e = validate(&seg, opts(1).major(16).unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignSegment);
    assert!(e.to_string().contains("written by PostgreSQL 17"), "{e}");
    let e = validate(&seg, opts(1).page_magic(0xD118).unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignSegment);
    validate(&seg, opts(1).page_magic(0xD116).unwrap()).unwrap();
    // Another segment size: read as 2 MB segments the file is too short and its header
    // says 1 MB.
    let two = WalSegmentSize::from_mib(2).unwrap();
    let mut v =
        SegmentValidator::new(ValidatorOptions::new(tli(1), WalSegNo::new(0), two)).unwrap();
    let e = v.feed(&seg).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignSegment);
    assert!(
        e.to_string().contains("WAL segment size of 1048576 bytes"),
        "{e}"
    );
    // Another block size.
    let e = validate(&seg, opts(1).block_size(Some(16384))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignSegment);
    let mut bad = seg.clone();
    bad[36..40].copy_from_slice(&3000u32.to_le_bytes());
    assert!(validate(&bad, opts(1))
        .unwrap_err()
        .to_string()
        .contains("invalid WAL block size of 3000"));
    // The first page without its long header.
    let mut bad = seg.clone();
    bad[2] &= !(XLP_LONG_HEADER as u8);
    let e = validate(&bad, opts(1)).unwrap_err();
    assert!(
        e.to_string().contains("the long header flag is missing"),
        "{e}"
    );
    // A segment at the wrong position (swapped files): its page address is wrong.
    let e = validate(&seg, opts(2)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PageHeader);
    assert_eq!(e.lsn(), Some(Lsn::new(2 << 20)));
    assert!(
        e.to_string()
            .starts_with("unexpected pageaddr 0/100000 in page at 0/200000"),
        "{e}"
    );
    // A magic of no known version.
    let mut bad = seg.clone();
    bad[0..2].copy_from_slice(&0x1234u16.to_le_bytes());
    let e = validate(&bad, opts(1)).unwrap_err();
    assert!(
        e.to_string()
            .contains("not the WAL page magic of any PostgreSQL version"),
        "{e}"
    );
}

#[test]
fn timelines_must_not_go_backwards() {
    // A segment of timeline 2 copied from timeline 1 at promotion: old pages say 1.
    let mut b = WalBuilder::new(15, MIB, 1);
    b.noop(20_000);
    b.set_timeline(2);
    b.noop(20_000);
    b.fill_segment(100);
    let seg = b.segment(1);
    validate(&seg, ValidatorOptions::new(tli(2), WalSegNo::new(1), MIB)).unwrap();
    // The same file named as timeline 1 has pages of a later timeline.
    let e = validate(&seg, opts(1)).unwrap_err();
    assert!(
        e.to_string().contains("is on timeline 2, but segment"),
        "{e}"
    );
    // A page going back to timeline 1 after timeline 2.
    let mut bad = seg.clone();
    let last_page = bad.len() - 8192;
    bad[last_page + 4] = 1;
    let e = validate(&bad, ValidatorOptions::new(tli(2), WalSegNo::new(1), MIB)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("out-of-sequence timeline ID 1 (after 2)"),
        "{e}"
    );
    let mut bad = seg.clone();
    bad[last_page + 4] = 0;
    assert!(validate(&bad, ValidatorOptions::new(tli(2), WalSegNo::new(1), MIB)).is_err());
}

#[test]
fn undecodable_contents_are_reported() {
    let mut b = WalBuilder::new(15, MIB, 1);
    // A commit record whose main data is too short for its timestamp, with a valid CRC.
    let bad = b.record(RM_XACT_ID, 0x00, 9, &[1, 2, 3]);
    b.fill_segment(100);
    let e = validate(&b.segment(1), opts(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RecordData);
    assert_eq!(
        e.to_string(),
        format!("record at {bad} (transaction commit) passed its CRC check but could not be decoded: the record data ends inside the xact_time")
    );
    let mut b = WalBuilder::new(15, MIB, 1);
    let bad = b.raw_record(RM_XLOG_ID, 0x70, 0, &[255, 5]);
    b.fill_segment(100);
    let e = validate(&b.segment(1), opts(1)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("record at {bad} (restore point)")),
        "{e}"
    );
    // A prepared commit that spans two pages is captured across them.
    let mut b = WalBuilder::new(15, MIB, 1);
    b.noop(8192 - 40 - 24);
    let cp = b.commit_prepared(50, 49, 7);
    b.fill_segment(100);
    let s = validate(&b.segment(1), opts(1)).unwrap();
    assert_eq!(s.xacts.first.unwrap().lsn, cp);
    assert_eq!(s.xacts.first.unwrap().xid, TransactionId::new(49));
    assert_eq!(s.xacts.first.unwrap().kind, XactKind::CommitPrepared);
}

/// A small deterministic generator, so the fuzz test needs no extra crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut b = WalBuilder::new(15, MIB, 1);
    b.commit(1, 1);
    b.noop(9000);
    b.restore_point("p", 2);
    b.commit_prepared(3, 2, 3);
    b.fill_segment(90);
    let seg = b.segment(1);
    for round in 0..400 {
        let mut bytes = if round % 4 == 0 {
            (0..(1 << 20)).map(|_| rng.next() as u8).collect::<Vec<_>>()
        } else {
            seg.clone()
        };
        // Random damage: bytes overwritten with random or extreme values.
        for _ in 0..(1 + rng.next() % 8) {
            let off = (rng.next() % (1 << 20)) as usize;
            let off = if rng.next() % 2 == 0 {
                off % 40_000
            } else {
                off
            };
            bytes[off] = match rng.next() % 3 {
                0 => rng.next() as u8,
                1 => 0xFF,
                _ => 0,
            };
        }
        let kind = if round % 2 == 0 {
            SegmentKind::Complete
        } else {
            SegmentKind::Partial
        };
        let chunk = [1 + (rng.next() % 20_000) as usize];
        let _ = feed_chunked(&bytes, opts(1).kind(kind), &chunk);
        let len = (rng.next() % (1 << 20)) as usize;
        let _ = validate(&bytes[..len], opts(1).kind(kind));
    }
}
