//! Builders of synthetic WAL for tests: valid pages and records with correct CRCs, laid out
//! the way the server lays them out, so that tests can craft any situation (records crossing
//! pages and segments, `XLOG_SWITCH` followed by zeros, partial segments) and then damage
//! the bytes (flip a bit, zero a page, change a page address, magic or timeline).
//!
//! The layout follows PROTOCOL.md §7 and `CopyXLogRecordToWAL` / `AdvanceXLInsertBuffer` in
//! `src/backend/access/transam/xlog.c`: every page starts with a header (long on a segment's
//! first page), records start 8-aligned, a record that does not fit continues on the next
//! page after its header with `XLP_FIRST_IS_CONTRECORD` and `xlp_rem_len`, and after
//! `XLOG_SWITCH` the rest of the segment is zeros. Only compiled for tests or with the
//! `testkit` feature.

use super::page::{
    XLogLongPageHeader, XLogPageHeader, XLP_BKP_REMOVABLE, XLP_FIRST_IS_CONTRECORD,
    XLP_FIRST_IS_OVERWRITE_CONTRECORD, XLP_LONG_HEADER,
};
use super::record::{
    record_crc, XLogRecordHeader, RM_XACT_ID, RM_XLOG_ID, SIZE_OF_XLOG_RECORD, XLOG_NOOP,
    XLOG_RESTORE_POINT, XLOG_SWITCH, XLOG_XACT_ABORT, XLOG_XACT_ABORT_PREPARED, XLOG_XACT_COMMIT,
    XLOG_XACT_COMMIT_PREPARED, XLOG_XACT_HAS_INFO, XLR_BLOCK_ID_DATA_LONG, XLR_BLOCK_ID_DATA_SHORT,
};
use crate::lsn::{Lsn, TimelineId, WalSegNo, WalSegmentSize};
use crate::version::PgVersion;

/// The system identifier synthetic WAL carries unless told otherwise (the one observed in
/// PROTOCOL.md §7.5).
pub const TEST_SYSTEM_ID: u64 = 7710809521602424182;

const XACT_XINFO_HAS_TWOPHASE: u32 = 1 << 4;

/// Writes a WAL stream, record by record, starting at the beginning of a segment.
#[derive(Debug, Clone)]
pub struct WalBuilder {
    version: &'static PgVersion,
    seg_size: WalSegmentSize,
    block_size: u32,
    system_identifier: u64,
    timeline: u32,
    start: Lsn,
    buf: Vec<u8>,
    pos: u64,
    prev: Lsn,
    overwrite_next_page: bool,
}

impl WalBuilder {
    /// A stream for PostgreSQL `major` starting at the first byte of segment `segno`, on
    /// timeline 1 with 8 kB pages and [`TEST_SYSTEM_ID`]. The first record's `xl_prev` is
    /// `0/0` unless [`Self::prev`] says otherwise.
    pub fn new(major: u32, seg_size: WalSegmentSize, segno: u64) -> WalBuilder {
        let start = WalSegNo::new(segno)
            .start_lsn(seg_size)
            .expect("test segment number fits");
        WalBuilder {
            version: PgVersion::for_major(major).expect("supported major in tests"),
            seg_size,
            block_size: 8192,
            system_identifier: TEST_SYSTEM_ID,
            timeline: 1,
            start,
            buf: Vec::new(),
            pos: start.as_u64(),
            prev: Lsn::INVALID,
            overwrite_next_page: false,
        }
    }

    /// Uses another `XLOG_BLCKSZ` (set before writing anything).
    pub fn block_size(mut self, block_size: u32) -> WalBuilder {
        self.block_size = block_size;
        self
    }

    /// Uses another system identifier (set before writing anything).
    pub fn system_identifier(mut self, sysid: u64) -> WalBuilder {
        self.system_identifier = sysid;
        self
    }

    /// Sets the timeline written in the page headers from now on.
    pub fn timeline(mut self, tli: u32) -> WalBuilder {
        self.timeline = tli;
        self
    }

    /// Sets the `xl_prev` of the next record.
    pub fn prev(mut self, prev: Lsn) -> WalBuilder {
        self.prev = prev;
        self
    }

    /// Changes the timeline of the pages written from now on.
    pub fn set_timeline(&mut self, tli: u32) {
        self.timeline = tli;
    }

    /// The segment size.
    pub fn seg_size(&self) -> WalSegmentSize {
        self.seg_size
    }

    /// The position where the next byte will be written.
    pub fn position(&self) -> Lsn {
        Lsn::new(self.pos)
    }

    /// The start of the last record written (`xl_prev` of the next one).
    pub fn last_record(&self) -> Lsn {
        self.prev
    }

    /// Every byte written so far, from the start of the first segment.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Mutable access to the bytes written, to damage them.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The offset in [`Self::bytes`] of a position.
    pub fn offset_of(&self, lsn: Lsn) -> usize {
        (lsn.as_u64() - self.start.as_u64()) as usize
    }

    /// The bytes of segment `segno` as a full segment: what was written, then zeros (a
    /// pre-zeroed or zero-padded file).
    pub fn segment(&self, segno: u64) -> Vec<u8> {
        let size = self.seg_size.bytes() as usize;
        let begin = self.offset_of(
            WalSegNo::new(segno)
                .start_lsn(self.seg_size)
                .expect("test segment number fits"),
        );
        let mut out = vec![0u8; size];
        if begin < self.buf.len() {
            let end = (begin + size).min(self.buf.len());
            out[..end - begin].copy_from_slice(&self.buf[begin..end]);
        }
        out
    }

    /// Marks the next page header this builder writes with
    /// `XLP_FIRST_IS_OVERWRITE_CONTRECORD` (use with [`Self::abandon_record`]).
    pub fn overwrite_next_page(&mut self) {
        self.overwrite_next_page = true;
    }

    /// Writes the first `written` bytes of a record of `tot_len` bytes that is then
    /// abandoned (a crash before its continuation was written), and moves to the next page,
    /// whose header gets `XLP_FIRST_IS_OVERWRITE_CONTRECORD`. Returns the abandoned record's
    /// position. The record must not fit on the current page.
    pub fn abandon_record(&mut self, tot_len: u32) -> Lsn {
        let body = vec![0xA5u8; tot_len as usize - SIZE_OF_XLOG_RECORD];
        let mut record = self.make_record(RM_XLOG_ID, XLOG_NOOP, 0, &body);
        record[0..4].copy_from_slice(&tot_len.to_le_bytes());
        self.align();
        self.page_header_if_needed(None);
        let lsn = Lsn::new(self.pos);
        let page_left = self.block_size as u64 - self.pos % self.block_size as u64;
        assert!(
            page_left < tot_len as u64,
            "the abandoned record must cross a page"
        );
        self.put(&record[..page_left as usize]);
        self.overwrite_next_page = true;
        lsn
    }

    /// Writes a record with main data `main` (short or long main-data header as needed).
    pub fn record(&mut self, rmid: u8, info: u8, xid: u32, main: &[u8]) -> Lsn {
        let mut body = Vec::with_capacity(main.len() + 5);
        if !main.is_empty() {
            if main.len() < 256 {
                body.push(XLR_BLOCK_ID_DATA_SHORT);
                body.push(main.len() as u8);
            } else {
                body.push(XLR_BLOCK_ID_DATA_LONG);
                body.extend_from_slice(&(main.len() as u32).to_le_bytes());
            }
            body.extend_from_slice(main);
        }
        self.raw_record(rmid, info, xid, &body)
    }

    /// Writes a record whose bytes after the 24-byte header are `body` (block headers, data,
    /// as the test wants them).
    pub fn raw_record(&mut self, rmid: u8, info: u8, xid: u32, body: &[u8]) -> Lsn {
        let record = self.make_record(rmid, info, xid, body);
        self.write_record(&record)
    }

    /// A filler record (`XLOG_NOOP`) of exactly `tot_len` bytes (at least 26).
    pub fn noop(&mut self, tot_len: usize) -> Lsn {
        assert!(
            tot_len >= SIZE_OF_XLOG_RECORD + 2,
            "a NOOP with data has at least 26 bytes"
        );
        let mut body = Vec::with_capacity(tot_len - SIZE_OF_XLOG_RECORD);
        let short = tot_len - SIZE_OF_XLOG_RECORD - 2;
        let main_len = if short < 256 {
            body.extend_from_slice(&[XLR_BLOCK_ID_DATA_SHORT, short as u8]);
            short
        } else {
            let long = tot_len - SIZE_OF_XLOG_RECORD - 5;
            body.push(XLR_BLOCK_ID_DATA_LONG);
            body.extend_from_slice(&(long as u32).to_le_bytes());
            long
        };
        body.extend((0..main_len).map(|i| (i * 7 + 3) as u8));
        let lsn = self.raw_record(RM_XLOG_ID, XLOG_NOOP, 0, &body);
        debug_assert_eq!(self.record_len_written(lsn), tot_len);
        lsn
    }

    fn record_len_written(&self, lsn: Lsn) -> usize {
        let off = self.offset_of(lsn);
        u32::from_le_bytes(self.buf[off..off + 4].try_into().expect("4 bytes")) as usize
    }

    /// A plain commit of `xid` at `time` (microseconds since 2000-01-01).
    pub fn commit(&mut self, xid: u32, time: i64) -> Lsn {
        self.record(RM_XACT_ID, XLOG_XACT_COMMIT, xid, &time.to_le_bytes())
    }

    /// A plain abort of `xid` at `time`.
    pub fn abort(&mut self, xid: u32, time: i64) -> Lsn {
        self.record(RM_XACT_ID, XLOG_XACT_ABORT, xid, &time.to_le_bytes())
    }

    /// COMMIT PREPARED of prepared transaction `prepared_xid`, issued by `xid`.
    pub fn commit_prepared(&mut self, xid: u32, prepared_xid: u32, time: i64) -> Lsn {
        let main = two_phase_data(time, prepared_xid);
        self.record(
            RM_XACT_ID,
            XLOG_XACT_COMMIT_PREPARED | XLOG_XACT_HAS_INFO,
            xid,
            &main,
        )
    }

    /// ABORT PREPARED of prepared transaction `prepared_xid`, issued by `xid`.
    pub fn abort_prepared(&mut self, xid: u32, prepared_xid: u32, time: i64) -> Lsn {
        let main = two_phase_data(time, prepared_xid);
        self.record(
            RM_XACT_ID,
            XLOG_XACT_ABORT_PREPARED | XLOG_XACT_HAS_INFO,
            xid,
            &main,
        )
    }

    /// `pg_create_restore_point(name)` at `time`.
    pub fn restore_point(&mut self, name: &str, time: i64) -> Lsn {
        let mut main = time.to_le_bytes().to_vec();
        let mut rp_name = [0u8; 64];
        let n = name.len().min(63);
        rp_name[..n].copy_from_slice(&name.as_bytes()[..n]);
        main.extend_from_slice(&rp_name);
        self.record(RM_XLOG_ID, XLOG_RESTORE_POINT, 0, &main)
    }

    /// `XLOG_SWITCH`: the record, then zeros to the end of the segment it ends in.
    pub fn switch(&mut self) -> Lsn {
        let lsn = self.raw_record(RM_XLOG_ID, XLOG_SWITCH, 0, &[]);
        let seg = self.seg_size.bytes() as u64;
        if self.pos % seg != 0 {
            let next = (self.pos / seg + 1) * seg;
            self.zeros_to(next);
        }
        lsn
    }

    /// Writes filler records until the stream reaches the end of the current segment (the
    /// last one may cross into the next segment). Returns the last record's position.
    pub fn fill_segment(&mut self, record_len: usize) -> Lsn {
        let seg = self.seg_size.bytes() as u64;
        let segno = self.pos / seg;
        let mut last = self.prev;
        let mut n = 0usize;
        while self.pos / seg == segno {
            // Vary the lengths a little so records land at many different offsets.
            last = self.noop(record_len + (n % 5) * 8 + n % 3);
            n += 1;
        }
        last
    }

    fn make_record(&self, rmid: u8, info: u8, xid: u32, body: &[u8]) -> Vec<u8> {
        let mut record = XLogRecordHeader {
            tot_len: (SIZE_OF_XLOG_RECORD + body.len()) as u32,
            xid,
            prev: self.prev,
            info,
            rmid,
            crc: 0,
        }
        .encode()
        .to_vec();
        record.extend_from_slice(body);
        let crc = record_crc(&record).expect("record has a header");
        record[20..24].copy_from_slice(&crc.to_le_bytes());
        record
    }

    fn align(&mut self) {
        let aligned = (self.pos + 7) & !7;
        self.zeros_to(aligned);
    }

    fn zeros_to(&mut self, lsn: u64) {
        let end = (lsn - self.start.as_u64()) as usize;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.pos = lsn;
    }

    /// Writes a page header if the position is at a page start. `rem_len` is the part of a
    /// record still to write when the page continues one.
    fn page_header_if_needed(&mut self, rem_len: Option<u32>) {
        if self.pos % self.block_size as u64 != 0 {
            return;
        }
        let first_in_segment = self.pos % self.seg_size.bytes() as u64 == 0;
        let mut info = XLP_BKP_REMOVABLE;
        if first_in_segment {
            info |= XLP_LONG_HEADER;
        }
        if rem_len.is_some() {
            info |= XLP_FIRST_IS_CONTRECORD;
        }
        if self.overwrite_next_page {
            info |= XLP_FIRST_IS_OVERWRITE_CONTRECORD;
            self.overwrite_next_page = false;
        }
        let header = XLogPageHeader {
            magic: self.version.xlog_page_magic,
            info,
            tli: self.timeline,
            pageaddr: Lsn::new(self.pos),
            rem_len: rem_len.unwrap_or(0),
            long: first_in_segment.then_some(XLogLongPageHeader {
                sysid: self.system_identifier,
                seg_size: self.seg_size.bytes(),
                xlog_blcksz: self.block_size,
            }),
        };
        let mut bytes = [0u8; 40];
        let n = header.encode(&mut bytes).expect("40-byte buffer");
        self.put(&bytes[..n]);
    }

    fn put(&mut self, bytes: &[u8]) {
        let off = self.offset_of(Lsn::new(self.pos));
        if self.buf.len() < off + bytes.len() {
            self.buf.resize(off + bytes.len(), 0);
        }
        self.buf[off..off + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len() as u64;
    }

    fn write_record(&mut self, record: &[u8]) -> Lsn {
        self.align();
        self.page_header_if_needed(None);
        let lsn = Lsn::new(self.pos);
        let mut rest = record;
        loop {
            let page_left = (self.block_size as u64 - self.pos % self.block_size as u64) as usize;
            let take = page_left.min(rest.len());
            self.put(&rest[..take]);
            rest = &rest[take..];
            if rest.is_empty() {
                break;
            }
            self.page_header_if_needed(Some(rest.len() as u32));
        }
        self.prev = lsn;
        lsn
    }
}

fn two_phase_data(time: i64, prepared_xid: u32) -> Vec<u8> {
    let mut main = time.to_le_bytes().to_vec();
    main.extend_from_slice(&XACT_XINFO_HAS_TWOPHASE.to_le_bytes());
    main.extend_from_slice(&prepared_xid.to_le_bytes());
    main
}

/// Flips bit `bit` (0–7) of byte `offset`.
pub fn flip_bit(bytes: &mut [u8], offset: usize, bit: u8) {
    bytes[offset] ^= 1 << bit;
}

/// The timeline as a [`TimelineId`], for building validator options in tests.
pub fn tli(n: u32) -> TimelineId {
    TimelineId::new(n).expect("timeline above 0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::page::SIZE_OF_LONG_PAGE_HEADER;

    #[test]
    fn first_record_follows_the_long_header() {
        let mut b = WalBuilder::new(15, WalSegmentSize::DEFAULT, 1);
        let lsn = b.commit(735, 1);
        assert_eq!(lsn, Lsn::new(0x0100_0000 + SIZE_OF_LONG_PAGE_HEADER as u64));
        let h = XLogPageHeader::decode(b.bytes()).unwrap();
        assert_eq!(h.magic, 0xD110);
        assert_eq!(h.pageaddr, Lsn::new(0x0100_0000));
        assert_eq!(h.long.unwrap().sysid, TEST_SYSTEM_ID);
        let r = XLogRecordHeader::decode(&b.bytes()[40..]).unwrap();
        assert_eq!(r.xid, 735);
        assert_eq!(
            record_crc(&b.bytes()[40..40 + r.tot_len as usize]),
            Some(r.crc)
        );
        assert_eq!(b.last_record(), lsn);
    }

    #[test]
    fn records_cross_pages_with_continuation_headers() {
        let mut b = WalBuilder::new(16, WalSegmentSize::DEFAULT, 1);
        b.noop(8000);
        let crossing = b.noop(500);
        let second_page = XLogPageHeader::decode(&b.bytes()[8192..]).unwrap();
        assert!(second_page.is_contrecord());
        let first_part = 8192 - b.offset_of(crossing);
        assert_eq!(second_page.rem_len as usize, 500 - first_part);
        assert_eq!(b.position().as_u64() % 8192, 24 + 500 - first_part as u64);
    }

    #[test]
    fn switch_pads_the_segment_with_zeros() {
        let mut b = WalBuilder::new(13, WalSegmentSize::MIN, 5);
        b.commit(3, 0);
        b.switch();
        assert_eq!(b.position(), Lsn::new(6 << 20));
        assert_eq!(b.bytes().len(), 1 << 20);
        assert!(b.bytes()[200..].iter().all(|&x| x == 0));
        let seg = b.segment(5);
        assert_eq!(seg.len(), 1 << 20);
        assert_eq!(b.segment(6), vec![0u8; 1 << 20]);
        let mut bytes = seg.clone();
        flip_bit(&mut bytes, 0, 0);
        assert_ne!(bytes, seg);
        assert_eq!(tli(2).get(), 2);
    }
}
