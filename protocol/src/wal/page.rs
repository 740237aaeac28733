//! WAL page headers: the short header on every page and the long header on a segment's first
//! page.
//!
//! Mirrors `XLogPageHeaderData`, `XLogLongPageHeaderData` and the `XLP_*` flags of
//! `src/include/access/xlog_internal.h` (PROTOCOL.md §7.1). All fields are little-endian.
//! Checking a header against what is expected is the validator's job
//! ([`super::validator`]), following `XLogReaderValidatePageHeader` in
//! `src/backend/access/transam/xlogreader.c`; this module only decodes and encodes.

use crate::lsn::Lsn;

/// `SizeOfXLogShortPHD`: 24 bytes.
pub const SIZE_OF_SHORT_PAGE_HEADER: usize = 24;
/// `SizeOfXLogLongPHD`: 40 bytes.
pub const SIZE_OF_LONG_PAGE_HEADER: usize = 40;
/// The usual `XLOG_BLCKSZ`.
pub const DEFAULT_XLOG_BLCKSZ: u32 = 8192;

/// The page starts with the continuation of a record begun on an earlier page.
pub const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
/// The page has the long header (first page of a segment).
pub const XLP_LONG_HEADER: u16 = 0x0002;
/// Full-page images of records starting on this page may be dropped (informational).
pub const XLP_BKP_REMOVABLE: u16 = 0x0004;
/// The page replaces the missing continuation of a record that was never completed
/// (13.5+ / 14.1+).
pub const XLP_FIRST_IS_OVERWRITE_CONTRECORD: u16 = 0x0008;

/// The fields the long header adds (`XLogLongPageHeaderData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XLogLongPageHeader {
    /// `xlp_sysid`: the database system identifier.
    pub sysid: u64,
    /// `xlp_seg_size`: `wal_segment_size` in bytes.
    pub seg_size: u32,
    /// `xlp_xlog_blcksz`: `XLOG_BLCKSZ`.
    pub xlog_blcksz: u32,
}

/// A decoded page header (`XLogPageHeaderData`, plus the long fields when
/// `XLP_LONG_HEADER` is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XLogPageHeader {
    /// `xlp_magic`: `XLOG_PAGE_MAGIC` of the major version.
    pub magic: u16,
    /// `xlp_info`: `XLP_*` flag bits.
    pub info: u16,
    /// `xlp_tli`: timeline of the first record starting on this page.
    pub tli: u32,
    /// `xlp_pageaddr`: the page's own LSN.
    pub pageaddr: Lsn,
    /// `xlp_rem_len`: bytes of a continued record still missing at the start of this page.
    pub rem_len: u32,
    /// The long header's fields, when `XLP_LONG_HEADER` is set.
    pub long: Option<XLogLongPageHeader>,
}

impl XLogPageHeader {
    /// Decodes the header at the start of `buf`. Returns `None` when `buf` is too short for
    /// the header it announces (24 bytes, or 40 when `XLP_LONG_HEADER` is set).
    pub fn decode(buf: &[u8]) -> Option<XLogPageHeader> {
        let short = buf.get(..SIZE_OF_SHORT_PAGE_HEADER)?;
        let info = u16::from_le_bytes([short[2], short[3]]);
        let long = if info & XLP_LONG_HEADER != 0 {
            let l = buf.get(SIZE_OF_SHORT_PAGE_HEADER..SIZE_OF_LONG_PAGE_HEADER)?;
            Some(XLogLongPageHeader {
                sysid: u64::from_le_bytes(l[0..8].try_into().ok()?),
                seg_size: u32::from_le_bytes(l[8..12].try_into().ok()?),
                xlog_blcksz: u32::from_le_bytes(l[12..16].try_into().ok()?),
            })
        } else {
            None
        };
        Some(XLogPageHeader {
            magic: u16::from_le_bytes([short[0], short[1]]),
            info,
            tli: u32::from_le_bytes(short[4..8].try_into().ok()?),
            pageaddr: Lsn::new(u64::from_le_bytes(short[8..16].try_into().ok()?)),
            rem_len: u32::from_le_bytes(short[16..20].try_into().ok()?),
            long,
        })
    }

    /// The header's size on the page: 40 with `XLP_LONG_HEADER`, else 24
    /// (`XLogPageHeaderSize`).
    pub fn size(&self) -> usize {
        header_size(self.info)
    }

    /// Whether the page starts with a continuation (`XLP_FIRST_IS_CONTRECORD`).
    pub fn is_contrecord(&self) -> bool {
        self.info & XLP_FIRST_IS_CONTRECORD != 0
    }

    /// Whether the page replaces a lost continuation (`XLP_FIRST_IS_OVERWRITE_CONTRECORD`).
    pub fn is_overwrite_contrecord(&self) -> bool {
        self.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD != 0
    }

    /// Writes the header into the first [`Self::size`] bytes of `out` (the four padding
    /// bytes after `xlp_rem_len` are zeroed). Returns the number of bytes written, or `None`
    /// when `out` is too short.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let size = self.size();
        let out = out.get_mut(..size)?;
        out[0..2].copy_from_slice(&self.magic.to_le_bytes());
        out[2..4].copy_from_slice(&self.info.to_le_bytes());
        out[4..8].copy_from_slice(&self.tli.to_le_bytes());
        out[8..16].copy_from_slice(&self.pageaddr.as_u64().to_le_bytes());
        out[16..20].copy_from_slice(&self.rem_len.to_le_bytes());
        out[20..24].fill(0);
        if size == SIZE_OF_LONG_PAGE_HEADER {
            let long = self.long.unwrap_or(XLogLongPageHeader {
                sysid: 0,
                seg_size: 0,
                xlog_blcksz: 0,
            });
            out[24..32].copy_from_slice(&long.sysid.to_le_bytes());
            out[32..36].copy_from_slice(&long.seg_size.to_le_bytes());
            out[36..40].copy_from_slice(&long.xlog_blcksz.to_le_bytes());
        }
        Some(size)
    }
}

/// `XLogPageHeaderSize` from the `xlp_info` bits alone.
pub(crate) fn header_size(info: u16) -> usize {
    if info & XLP_LONG_HEADER != 0 {
        SIZE_OF_LONG_PAGE_HEADER
    } else {
        SIZE_OF_SHORT_PAGE_HEADER
    }
}

/// Whether `block_size` is a value PostgreSQL can be built with (`--with-wal-blocksize`:
/// 1, 2, 4, 8, 16, 32 or 64 kB).
pub fn is_valid_block_size(block_size: u32) -> bool {
    block_size.is_power_of_two() && (1024..=65536).contains(&block_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 40 bytes of the PG 15 segment in PROTOCOL.md §7.5.
    const OBSERVED_LONG: [u8; 40] = [
        0x10, 0xd1, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x76, 0xed, 0xcf, 0x01, 0x68, 0x4c,
        0x02, 0x6b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00,
    ];

    #[test]
    fn decodes_the_observed_long_header() {
        let h = XLogPageHeader::decode(&OBSERVED_LONG).unwrap();
        assert_eq!(h.magic, 0xD110);
        assert_eq!(h.info, XLP_LONG_HEADER);
        assert_eq!(h.tli, 1);
        assert_eq!(h.pageaddr, Lsn::new(0x0100_0000));
        assert_eq!(h.rem_len, 0);
        assert_eq!(
            h.long,
            Some(XLogLongPageHeader {
                sysid: 7710809521602424182,
                seg_size: 16 << 20,
                xlog_blcksz: 8192
            })
        );
        assert_eq!(h.size(), 40);
        assert!(!h.is_contrecord());
        let mut out = [0xFFu8; 40];
        assert_eq!(h.encode(&mut out), Some(40));
        assert_eq!(out, OBSERVED_LONG);
    }

    #[test]
    fn decodes_the_observed_short_header() {
        // Page 2 of the same segment: FIRST_IS_CONTRECORD | BKP_REMOVABLE, rem_len 209.
        let mut b = [0u8; 24];
        b[..20].copy_from_slice(&[
            0x10, 0xd1, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00,
            0x00, 0x00, 0xd1, 0x00, 0x00, 0x00,
        ]);
        let h = XLogPageHeader::decode(&b).unwrap();
        assert_eq!(h.info, XLP_FIRST_IS_CONTRECORD | XLP_BKP_REMOVABLE);
        assert!(h.is_contrecord());
        assert!(!h.is_overwrite_contrecord());
        assert_eq!(h.pageaddr, Lsn::new(0x0100_2000));
        assert_eq!(h.rem_len, 209);
        assert_eq!(h.long, None);
        assert_eq!(h.size(), 24);
        let mut out = [0u8; 24];
        assert_eq!(h.encode(&mut out), Some(24));
        assert_eq!(out, b);
    }

    #[test]
    fn short_input_needs_more_bytes() {
        assert_eq!(XLogPageHeader::decode(&OBSERVED_LONG[..23]), None);
        // A long header announced but only the short part present.
        assert_eq!(XLogPageHeader::decode(&OBSERVED_LONG[..24]), None);
        assert_eq!(XLogPageHeader::decode(&OBSERVED_LONG[..39]), None);
        let h = XLogPageHeader::decode(&OBSERVED_LONG).unwrap();
        assert_eq!(h.encode(&mut [0u8; 39]), None);
    }

    #[test]
    fn block_sizes() {
        for ok in [1024, 2048, 4096, 8192, 16384, 32768, 65536] {
            assert!(is_valid_block_size(ok));
        }
        for bad in [0, 512, 3000, 131072] {
            assert!(!is_valid_block_size(bad));
        }
    }
}
