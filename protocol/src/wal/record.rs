//! WAL record headers, the record CRC, and the block-reference walk that locates a record's
//! main data.
//!
//! Mirrors `XLogRecord`, `XLogRecordBlockHeader`, `XLogRecordBlockImageHeader` and the
//! `XLR_*` / `BKPBLOCK_*` / `BKPIMAGE_*` constants of `src/include/access/xlogrecord.h`,
//! `ValidXLogRecord` (the CRC) and the header walk of `DecodeXLogRecord` in
//! `src/backend/access/transam/xlogreader.c`, and the resource manager ids of
//! `src/include/access/rmgrlist.h` (PROTOCOL.md §7.2 and §7.4).
//!
//! The CRC is CRC-32C over the record bytes after the 24-byte header, then over the first 20
//! header bytes (everything before `xl_crc`); the `crc32c` crate uses SSE 4.2 / ARMv8 CRC
//! instructions when the CPU has them.

use crate::lsn::Lsn;
use crate::version::PgVersion;

/// `SizeOfXLogRecord`: 24 bytes.
pub const SIZE_OF_XLOG_RECORD: usize = 24;
/// Offset of `xl_crc` in the header: the CRC covers the header bytes before it.
pub const XL_CRC_OFFSET: usize = 20;

/// `RM_XLOG_ID`.
pub const RM_XLOG_ID: u8 = 0;
/// `RM_XACT_ID` (pg_waldump's "Transaction").
pub const RM_XACT_ID: u8 = 1;

/// `XLR_INFO_MASK`: the low bits of `xl_info` reserved for the WAL machinery.
pub const XLR_INFO_MASK: u8 = 0x0F;
/// `XLR_RMGR_INFO_MASK`: the high bits of `xl_info`, the resource manager's record type.
pub const XLR_RMGR_INFO_MASK: u8 = 0xF0;

/// `XLOG_CHECKPOINT_SHUTDOWN` (rmid 0).
pub const XLOG_CHECKPOINT_SHUTDOWN: u8 = 0x00;
/// `XLOG_CHECKPOINT_ONLINE` (rmid 0).
pub const XLOG_CHECKPOINT_ONLINE: u8 = 0x10;
/// `XLOG_NOOP` (rmid 0).
pub const XLOG_NOOP: u8 = 0x20;
/// `XLOG_SWITCH` (rmid 0): the rest of the segment is unused.
pub const XLOG_SWITCH: u8 = 0x40;
/// `XLOG_RESTORE_POINT` (rmid 0): `pg_create_restore_point()`.
pub const XLOG_RESTORE_POINT: u8 = 0x70;
/// `XLOG_OVERWRITE_CONTRECORD` (rmid 0, 13.5+ / 14.1+).
pub const XLOG_OVERWRITE_CONTRECORD: u8 = 0xD0;

/// `XLOG_XACT_COMMIT` (rmid 1).
pub const XLOG_XACT_COMMIT: u8 = 0x00;
/// `XLOG_XACT_PREPARE` (rmid 1).
pub const XLOG_XACT_PREPARE: u8 = 0x10;
/// `XLOG_XACT_ABORT` (rmid 1).
pub const XLOG_XACT_ABORT: u8 = 0x20;
/// `XLOG_XACT_COMMIT_PREPARED` (rmid 1).
pub const XLOG_XACT_COMMIT_PREPARED: u8 = 0x30;
/// `XLOG_XACT_ABORT_PREPARED` (rmid 1).
pub const XLOG_XACT_ABORT_PREPARED: u8 = 0x40;
/// `XLOG_XACT_OPMASK`: the bits of `xl_info` that hold the transaction record type.
pub const XLOG_XACT_OPMASK: u8 = 0x70;
/// `XLOG_XACT_HAS_INFO`: an `xl_xact_xinfo` word follows the timestamp.
pub const XLOG_XACT_HAS_INFO: u8 = 0x80;

/// `XLR_MAX_BLOCK_ID`.
pub const XLR_MAX_BLOCK_ID: u8 = 32;
/// `XLR_BLOCK_ID_DATA_SHORT`: main data with a 1-byte length.
pub const XLR_BLOCK_ID_DATA_SHORT: u8 = 255;
/// `XLR_BLOCK_ID_DATA_LONG`: main data with a 4-byte length.
pub const XLR_BLOCK_ID_DATA_LONG: u8 = 254;
/// `XLR_BLOCK_ID_ORIGIN`: a 2-byte replication origin follows.
pub const XLR_BLOCK_ID_ORIGIN: u8 = 253;
/// `XLR_BLOCK_ID_TOPLEVEL_XID` (14+): a 4-byte top-level xid follows.
pub const XLR_BLOCK_ID_TOPLEVEL_XID: u8 = 252;

const BKPBLOCK_HAS_IMAGE: u8 = 0x10;
const BKPBLOCK_SAME_REL: u8 = 0x80;
const BKPIMAGE_HAS_HOLE: u8 = 0x01;
/// `sizeof(RelFileLocator)` (`RelFileNode` before 16): three OIDs.
const SIZE_OF_REL_FILE_LOCATOR: usize = 12;

/// A decoded record header (`XLogRecord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XLogRecordHeader {
    /// `xl_tot_len`: the whole record's length, header included.
    pub tot_len: u32,
    /// `xl_xid`: the transaction id (0 if none).
    pub xid: u32,
    /// `xl_prev`: start of the previous record.
    pub prev: Lsn,
    /// `xl_info`: record type (high nibble) and WAL flags (low nibble).
    pub info: u8,
    /// `xl_rmid`: resource manager id.
    pub rmid: u8,
    /// `xl_crc`: CRC-32C of the record.
    pub crc: u32,
}

impl XLogRecordHeader {
    /// Decodes the header at the start of `buf`; `None` if `buf` has fewer than 24 bytes.
    pub fn decode(buf: &[u8]) -> Option<XLogRecordHeader> {
        let b: &[u8; SIZE_OF_XLOG_RECORD] = buf.get(..SIZE_OF_XLOG_RECORD)?.try_into().ok()?;
        Some(XLogRecordHeader {
            tot_len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            xid: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            prev: Lsn::new(u64::from_le_bytes([
                b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15],
            ])),
            info: b[16],
            rmid: b[17],
            crc: u32::from_le_bytes([b[20], b[21], b[22], b[23]]),
        })
    }

    /// The 24 header bytes (padding zeroed).
    pub fn encode(&self) -> [u8; SIZE_OF_XLOG_RECORD] {
        let mut b = [0u8; SIZE_OF_XLOG_RECORD];
        b[0..4].copy_from_slice(&self.tot_len.to_le_bytes());
        b[4..8].copy_from_slice(&self.xid.to_le_bytes());
        b[8..16].copy_from_slice(&self.prev.as_u64().to_le_bytes());
        b[16] = self.info;
        b[17] = self.rmid;
        b[20..24].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// The resource manager's record type: `xl_info & XLR_RMGR_INFO_MASK`.
    pub fn rmgr_info(&self) -> u8 {
        self.info & XLR_RMGR_INFO_MASK
    }

    /// Whether this is an `XLOG_SWITCH` record.
    pub fn is_switch(&self) -> bool {
        self.rmid == RM_XLOG_ID && self.rmgr_info() == XLOG_SWITCH
    }
}

/// The CRC-32C of an assembled record (page headers removed), computed the way
/// `ValidXLogRecord` does: the bytes after the header first, then the header up to `xl_crc`.
/// Returns `None` for fewer than 24 bytes.
pub fn record_crc(record: &[u8]) -> Option<u32> {
    if record.len() < SIZE_OF_XLOG_RECORD {
        return None;
    }
    let crc = crc32c::crc32c(&record[SIZE_OF_XLOG_RECORD..]);
    Some(crc32c::crc32c_append(crc, &record[..XL_CRC_OFFSET]))
}

/// The main data of an assembled record: walks the block reference headers the way
/// `DecodeXLogRecord` does and returns the last `main_data_len` bytes. The error is a reason
/// without position, for the caller to wrap.
pub(crate) fn main_data<'a>(record: &'a [u8], version: &PgVersion) -> Result<&'a [u8], String> {
    let mut cur = Cursor {
        buf: record,
        pos: SIZE_OF_XLOG_RECORD,
    };
    let mut datatotal: u64 = 0;
    let mut main_len: u64 = 0;
    let mut last_block: Option<u8> = None;
    while cur.remaining() > datatotal as usize {
        let id = cur.u8("block id")?;
        match id {
            XLR_BLOCK_ID_DATA_SHORT => {
                main_len = u64::from(cur.u8("main data length")?);
                break;
            }
            XLR_BLOCK_ID_DATA_LONG => {
                main_len = u64::from(cur.u32("main data length")?);
                break;
            }
            XLR_BLOCK_ID_ORIGIN => {
                cur.skip(2, "replication origin")?;
            }
            XLR_BLOCK_ID_TOPLEVEL_XID if version.has_toplevel_xid_block => {
                cur.skip(4, "top-level xid")?;
            }
            id if id <= XLR_MAX_BLOCK_ID => {
                if last_block.is_some_and(|l| id <= l) {
                    return Err(format!("out-of-order block_id {id}"));
                }
                last_block = Some(id);
                let fork_flags = cur.u8("block fork flags")?;
                datatotal += u64::from(cur.u16("block data length")?);
                if fork_flags & BKPBLOCK_HAS_IMAGE != 0 {
                    datatotal += u64::from(cur.u16("block image length")?);
                    cur.skip(2, "block image hole offset")?;
                    let bimg_info = cur.u8("block image info")?;
                    if bimg_info & BKPIMAGE_HAS_HOLE != 0
                        && bimg_info & version.bkpimage_compressed_mask != 0
                    {
                        cur.skip(2, "block image hole length")?;
                    }
                }
                if fork_flags & BKPBLOCK_SAME_REL == 0 {
                    cur.skip(SIZE_OF_REL_FILE_LOCATOR, "relation locator")?;
                }
                cur.skip(4, "block number")?;
            }
            other => return Err(format!("invalid block_id {other}")),
        }
    }
    let expected = datatotal + main_len;
    if cur.remaining() as u64 != expected {
        return Err(format!(
            "the block headers announce {expected} bytes of data but {} remain",
            cur.remaining()
        ));
    }
    let start = record.len() - main_len as usize;
    Ok(&record[start..])
}

/// A bounds-checked little-endian reader over record bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("the record ends inside the {what}"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), String> {
        self.take(n, what).map(|_| ())
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32) -> &'static PgVersion {
        PgVersion::for_major(major).unwrap()
    }

    /// The first record of the PG 15 segment in PROTOCOL.md §7.5 (CHECKPOINT_SHUTDOWN):
    /// file offsets 0x28 to 0x99 of its `xxd` dump.
    fn observed_checkpoint() -> Vec<u8> {
        let dump = "\
            7200 0000 0000 0000 0000 0000 0000 0000 0000 0000 789b ab59 \
            ff58 2800 0001 0000 0000 0100 0000 0100 \
            0000 0100 0000 0000 0000 0300 0000 0000 \
            0000 1027 0000 0100 0000 0000 0000 0300 \
            0000 0100 0000 0100 0000 0100 0000 fe7f \
            0000 684c 026b 0000 0000 0000 0000 0000 \
            0000 0000 0000 fe7f 0000";
        let hex: String = dump.split_whitespace().collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn observed_record_crc_matches_protocol_md() {
        let r = observed_checkpoint();
        assert_eq!(r.len(), 114);
        let h = XLogRecordHeader::decode(&r).unwrap();
        assert_eq!(h.tot_len, 114);
        assert_eq!(h.xid, 0);
        assert_eq!(h.prev, Lsn::INVALID);
        assert_eq!(h.rmid, RM_XLOG_ID);
        assert_eq!(h.rmgr_info(), XLOG_CHECKPOINT_SHUTDOWN);
        assert_eq!(h.crc, 0x59AB9B78);
        assert_eq!(record_crc(&r), Some(0x59AB9B78));
        assert!(!h.is_switch());
        assert_eq!(h.encode(), r[..24]);
        assert_eq!(main_data(&r, v(15)).unwrap().len(), 88);
    }

    #[test]
    fn crc_of_standard_check_value() {
        // The standard CRC-32C check value, to prove the crate computes Castagnoli.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE3069283);
        assert_eq!(record_crc(&[0u8; 23]), None);
    }

    #[test]
    fn decode_needs_24_bytes() {
        assert_eq!(XLogRecordHeader::decode(&[0u8; 23]), None);
        assert!(XLogRecordHeader::decode(&[0u8; 24]).is_some());
    }

    fn record(body: &[u8]) -> Vec<u8> {
        let mut r = XLogRecordHeader {
            tot_len: (SIZE_OF_XLOG_RECORD + body.len()) as u32,
            xid: 0,
            prev: Lsn::INVALID,
            info: 0,
            rmid: 0,
            crc: 0,
        }
        .encode()
        .to_vec();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn main_data_skips_block_references() {
        // Block 0 with data (3 bytes), an image with hole + compression (15+), new relation;
        // block 1 same relation, no image; origin; then short main data "xyz".
        let mut body = vec![
            0u8,
            0x10 | 0x20,
            3,
            0,
            /* image */ 5,
            0,
            0,
            0,
            0x01 | 0x04,
            9,
            0,
        ];
        body.extend_from_slice(&[0; 12]);
        body.extend_from_slice(&[7, 0, 0, 0]);
        body.extend_from_slice(&[1, 0x80 | 0x20, 2, 0, 8, 0, 0, 0]);
        body.extend_from_slice(&[XLR_BLOCK_ID_ORIGIN, 1, 0]);
        body.extend_from_slice(&[XLR_BLOCK_ID_TOPLEVEL_XID, 1, 2, 3, 4]);
        body.extend_from_slice(&[XLR_BLOCK_ID_DATA_SHORT, 3]);
        body.extend_from_slice(&[0xAA; 3 + 5 + 2]);
        body.extend_from_slice(b"xyz");
        assert_eq!(main_data(&record(&body), v(15)).unwrap(), b"xyz");
        // PostgreSQL 13 knows neither block id 252 nor the 15+ compression bits.
        let e = main_data(&record(&body), v(13)).unwrap_err();
        assert!(e.contains("block"), "{e}");
    }

    #[test]
    fn main_data_long_header_and_no_main_data() {
        let mut body = vec![XLR_BLOCK_ID_DATA_LONG, 4, 1, 0, 0];
        body.extend_from_slice(&[1u8; 260]);
        assert_eq!(main_data(&record(&body), v(14)).unwrap().len(), 260);
        assert_eq!(main_data(&record(&[]), v(14)).unwrap(), b"");
    }

    #[test]
    fn main_data_rejects_inconsistent_headers() {
        for (body, needle) in [
            (
                vec![XLR_BLOCK_ID_DATA_SHORT],
                "ends inside the main data length",
            ),
            (vec![XLR_BLOCK_ID_DATA_SHORT, 5, 1], "announce 5 bytes"),
            (vec![40u8, 0, 0, 0], "invalid block_id 40"),
            (
                vec![1u8, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0],
                "out-of-order",
            ),
            (vec![0u8, 0x10, 0, 0], "ends inside the block image length"),
        ] {
            let e = main_data(&record(&body), v(16)).unwrap_err();
            assert!(e.contains(needle), "{body:?}: {e}");
        }
    }
}
