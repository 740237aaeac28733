//! Page header checks of the segment validator: `XLogReaderValidatePageHeader` in
//! `src/backend/access/transam/xlogreader.c` (magic, info bits, long header, page address,
//! timeline) plus the continuation checks of `XLogDecodeNextRecord` and
//! `XLogFindNextRecord` (`XLP_FIRST_IS_CONTRECORD`, `xlp_rem_len`,
//! `XLP_FIRST_IS_OVERWRITE_CONTRECORD`), PROTOCOL.md §7.1, §7.3 and §7.6.

use super::{internal, SegmentKind, SegmentValidator, State};
use crate::error::{Error, ErrorKind, Result};
use crate::version::PgVersion;
use crate::wal::page::{is_valid_block_size, XLogPageHeader, XLP_LONG_HEADER};
use crate::wal::summary::SegmentHead;

impl SegmentValidator {
    /// `XLogReaderValidatePageHeader` plus the continuation checks of
    /// `XLogDecodeNextRecord`, for the header just gathered in `hdr_buf`.
    pub(super) fn page_header(&mut self, size: u32) -> Result<()> {
        let page_lsn = self.lsn_at(self.page_start);
        let offset = self.page_start;
        let raw = &self.hdr_buf[..size as usize];
        let zeroed = raw.iter().all(|&b| b == 0);
        let magic = u16::from_le_bytes([raw[0], raw[1]]);
        let info = u16::from_le_bytes([raw[2], raw[3]]);
        // A long header is only decoded (and only gathered) on a segment's first page.
        let decoded = if offset != 0 && info & XLP_LONG_HEADER != 0 {
            None
        } else {
            XLogPageHeader::decode(raw)
        };
        if zeroed {
            if self.kind == SegmentKind::Partial {
                let rec_lsn = match self.state {
                    State::Record => self.rec.lsn,
                    _ => page_lsn,
                };
                return self.end_of_wal(rec_lsn, "zeroed page");
            }
            return Err(Error::at(
                ErrorKind::UnexpectedEnd,
                page_lsn,
                format!(
                    "page at {page_lsn} (offset {offset}) is all zeros, {} bytes before the end of segment {}; a complete segment holds WAL up to its end or up to an XLOG_SWITCH record: the segment is incomplete or damaged",
                    self.seg_size.bytes() - offset,
                    self.name()
                ),
            ));
        }
        let at = |kind: ErrorKind, msg: String| Error::at(kind, page_lsn, msg);

        // Magic: the version's, or learned from the first page.
        let version = match self.version {
            Some(v) if v.xlog_page_magic == magic => v,
            Some(v) => {
                let foreign = PgVersion::for_page_magic(magic);
                return Err(match foreign {
                    Some(f) if self.version_given && offset == 0 => at(
                        ErrorKind::ForeignSegment,
                        format!(
                            "segment {} was written by PostgreSQL {} (page magic 0x{:04X}), expected PostgreSQL {} (0x{:04X})",
                            self.name(),
                            f.major,
                            magic,
                            v.major,
                            v.xlog_page_magic
                        ),
                    ),
                    _ => at(
                        ErrorKind::PageHeader,
                        format!(
                            "invalid magic number {:04X} in page at {page_lsn} (offset {offset}), expected {:04X} (PostgreSQL {}); the segment is corrupt",
                            magic, v.xlog_page_magic, v.major
                        ),
                    ),
                });
            }
            None => PgVersion::for_page_magic(magic).ok_or_else(|| {
                at(
                    ErrorKind::PageHeader,
                    format!(
                        "invalid magic number {:04X} in page at {page_lsn} (offset {offset}): not the WAL page magic of any PostgreSQL version from 13 to 18; the segment is corrupt or not WAL",
                        magic
                    ),
                )
            })?,
        };
        self.version = Some(version);

        if info & !version.xlp_all_flags != 0 {
            return Err(at(
                ErrorKind::PageHeader,
                format!(
                    "invalid info bits {info:04X} in page at {page_lsn} (offset {offset}); the segment is corrupt"
                ),
            ));
        }
        if offset != 0 && info & XLP_LONG_HEADER != 0 {
            return Err(at(
                ErrorKind::PageHeader,
                format!(
                    "invalid info bits {info:04X} in page at {page_lsn} (offset {offset}): only the first page of a segment has a long header; the segment is corrupt"
                ),
            ));
        }
        let h = decoded.ok_or_else(|| internal(page_lsn))?;
        match (offset, h.long) {
            (0, None) => {
                return Err(at(
                    ErrorKind::PageHeader,
                    format!(
                        "invalid info bits {:04X} in the first page of segment {} (at {page_lsn}): the long header flag is missing; the segment is corrupt",
                        h.info,
                        self.name()
                    ),
                ))
            }
            (0, Some(long)) => {
                if let Some(expected) = self.system_identifier {
                    if long.sysid != expected {
                        return Err(at(
                            ErrorKind::ForeignSegment,
                            format!(
                                "segment {} is from a different database system: its system identifier is {}, expected {}",
                                self.name(),
                                long.sysid,
                                expected
                            ),
                        ));
                    }
                }
                self.system_identifier = Some(long.sysid);
                if long.seg_size != self.seg_size.bytes() {
                    return Err(at(
                        ErrorKind::ForeignSegment,
                        format!(
                            "segment {} was written with a WAL segment size of {} bytes, expected {} ({}); it comes from a different database system or is corrupt",
                            self.name(),
                            long.seg_size,
                            self.seg_size.bytes(),
                            self.seg_size
                        ),
                    ));
                }
                if !is_valid_block_size(long.xlog_blcksz) {
                    return Err(at(
                        ErrorKind::PageHeader,
                        format!(
                            "segment {} claims an invalid WAL block size of {} bytes; the segment is corrupt",
                            self.name(),
                            long.xlog_blcksz
                        ),
                    ));
                }
                if self.block_size != 0 && long.xlog_blcksz != self.block_size {
                    return Err(at(
                        ErrorKind::ForeignSegment,
                        format!(
                            "segment {} was written with a WAL block size of {} bytes, expected {}; it comes from a different database system",
                            self.name(),
                            long.xlog_blcksz,
                            self.block_size
                        ),
                    ));
                }
                self.block_size = long.xlog_blcksz;
            }
            (_, _) => {}
        }

        if h.pageaddr != page_lsn {
            let recycled = h.pageaddr < page_lsn
                && (page_lsn.as_u64() - h.pageaddr.as_u64()) % u64::from(self.seg_size.bytes())
                    == 0;
            if recycled && self.kind == SegmentKind::Partial {
                let rec_lsn = match self.state {
                    State::Record => self.rec.lsn,
                    _ => page_lsn,
                };
                return self.end_of_wal(rec_lsn, "stale page from a recycled segment");
            }
            return Err(at(
                ErrorKind::PageHeader,
                format!(
                    "unexpected pageaddr {} in page at {page_lsn} (offset {offset} of segment {}); the page belongs to another position: the segment is corrupt, misplaced or a recycled file",
                    h.pageaddr,
                    self.name()
                ),
            ));
        }

        if h.tli == 0 || h.tli > self.timeline.get() {
            return Err(at(
                ErrorKind::PageHeader,
                format!(
                    "page at {page_lsn} (offset {offset}) is on timeline {}, but segment {} is on timeline {}; the segment is corrupt or misnamed",
                    h.tli,
                    self.name(),
                    self.timeline
                ),
            ));
        }
        if h.tli < self.last_page_tli {
            return Err(at(
                ErrorKind::PageHeader,
                format!(
                    "out-of-sequence timeline ID {} (after {}) in page at {page_lsn} (offset {offset}); the segment is corrupt",
                    h.tli, self.last_page_tli
                ),
            ));
        }
        self.last_page_tli = h.tli;
        // Page geometry, now that the block size is known.
        self.page_end = self.page_start + self.block_size;

        match self.state {
            State::Record => {
                if h.is_overwrite_contrecord() {
                    // The record's continuation was lost in a crash and replaced: drop it
                    // and read the page from its start (the previous record stays the same).
                    self.state = State::Between;
                    if offset == 0 {
                        self.head = SegmentHead::Clean;
                    }
                    return Ok(());
                }
                let rec_lsn = self.rec.lsn;
                if !h.is_contrecord() {
                    return Err(at(
                        ErrorKind::PageHeader,
                        format!(
                            "there is no contrecord flag at {page_lsn}: the record at {rec_lsn} continues on this page, but the page is not marked as a continuation; the segment is corrupt"
                        ),
                    ));
                }
                if self.rec.header_len < 4 {
                    return Err(internal(rec_lsn));
                }
                let expected = self.rec.tot_len - self.rec.consumed;
                if h.rem_len != expected {
                    return Err(at(
                        ErrorKind::PageHeader,
                        format!(
                            "invalid contrecord length {} (expected {expected}) in page at {page_lsn} for the record at {rec_lsn}; the segment is corrupt",
                            h.rem_len
                        ),
                    ));
                }
                if offset == 0 {
                    self.head = SegmentHead::Carried;
                }
            }
            State::Skip { remaining } => {
                if !h.is_contrecord() || h.rem_len != remaining {
                    return Err(at(
                        ErrorKind::PageHeader,
                        format!(
                            "invalid contrecord length {} (expected {remaining}) in page at {page_lsn}, continuing the record from the previous segment; the segment is corrupt",
                            if h.is_contrecord() { h.rem_len } else { 0 }
                        ),
                    ));
                }
            }
            State::Between => {
                if h.is_contrecord() && offset == 0 && !self.carried {
                    if h.rem_len == 0 {
                        return Err(at(
                            ErrorKind::PageHeader,
                            format!(
                                "invalid contrecord length 0 in the first page of segment {} (at {page_lsn}); the segment is corrupt",
                                self.name()
                            ),
                        ));
                    }
                    self.state = State::Skip {
                        remaining: h.rem_len,
                    };
                    self.head = SegmentHead::Skipped { bytes: h.rem_len };
                } else if h.is_contrecord() {
                    return Err(at(
                        ErrorKind::PageHeader,
                        format!(
                            "contrecord is requested by {page_lsn}: the page is marked as continuing a record (xlp_rem_len {}), but the previous record ended before it; the segment is corrupt",
                            h.rem_len
                        ),
                    ));
                } else if h.rem_len != 0 {
                    return Err(at(
                        ErrorKind::PageHeader,
                        format!(
                            "page at {page_lsn} (offset {offset}) has xlp_rem_len {} but is not marked as a continuation; the segment is corrupt",
                            h.rem_len
                        ),
                    ));
                }
            }
            State::Dead { .. } => {}
        }
        Ok(())
    }
}
