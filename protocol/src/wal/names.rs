//! WAL file names: segments, `.partial` segments, timeline history files and backup history
//! files.
//!
//! Ports of the naming helpers of `src/include/access/xlog_internal.h`: `XLogFileName`,
//! `XLogFromFileName`, `IsXLogFileName`, `IsPartialXLogFileName`, `TLHistoryFileName`,
//! `IsTLHistoryFileName`, `BackupHistoryFileName` and `IsBackupHistoryFileName` (PROTOCOL.md
//! §6.1–6.4). A segment name is `TTTTTTTTXXXXXXXXYYYYYYYY`: the timeline, then the segment
//! number split into `segno / segs_per_xlogid` and `segno % segs_per_xlogid`, all upper-case
//! hexadecimal. The split depends on `wal_segment_size`, so parsing and formatting take it.
//!
//! Parsing is stricter than PostgreSQL's `Is*FileName` checks (which only look at the
//! character set): timeline 0, a last group out of range for the segment size, and a backup
//! offset outside the segment are all rejected, so that a parsed name always formats back to
//! the same text.

use std::fmt;

use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId, WalSegNo, WalSegmentSize};

/// Length of a segment file name (`XLOG_FNAME_LEN`).
pub const XLOG_FNAME_LEN: usize = 24;

const PARTIAL_SUFFIX: &str = ".partial";
const HISTORY_SUFFIX: &str = ".history";
const BACKUP_SUFFIX: &str = ".backup";

/// A parsed WAL archive file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WalFileName {
    /// `TTTTTTTTXXXXXXXXYYYYYYYY`: a complete segment.
    Segment {
        /// The timeline in the name.
        timeline: TimelineId,
        /// The segment number.
        segno: WalSegNo,
    },
    /// `TTTTTTTTXXXXXXXXYYYYYYYY.partial`: a segment that may be incomplete.
    Partial {
        /// The timeline in the name.
        timeline: TimelineId,
        /// The segment number.
        segno: WalSegNo,
    },
    /// `TTTTTTTT.history`: the history of timeline `timeline`.
    History {
        /// The timeline whose ancestry the file lists.
        timeline: TimelineId,
    },
    /// `TTTTTTTTXXXXXXXXYYYYYYYY.OOOOOOOO.backup`: a backup history file, named after the
    /// segment and offset of the backup's start LSN.
    Backup {
        /// The timeline in the name (the backup's stop timeline).
        timeline: TimelineId,
        /// The segment holding the backup's start LSN.
        segno: WalSegNo,
        /// The start LSN's offset inside that segment.
        offset: u32,
    },
}

impl WalFileName {
    /// Parses any of the four kinds of names for segments of `size` bytes.
    pub fn parse(name: &str, size: WalSegmentSize) -> Result<WalFileName> {
        if let Some(stem) = name.strip_suffix(PARTIAL_SUFFIX) {
            let (timeline, segno) = parse_segment_file_name(stem, size)?;
            return Ok(WalFileName::Partial { timeline, segno });
        }
        if let Some(stem) = name.strip_suffix(HISTORY_SUFFIX) {
            if stem.len() != 8 {
                return Err(bad_name(
                    name,
                    "a history file name is 8 hex digits then .history",
                ));
            }
            let timeline = parse_timeline(stem, name)?;
            return Ok(WalFileName::History { timeline });
        }
        if let Some(stem) = name.strip_suffix(BACKUP_SUFFIX) {
            let (segment, offset) = stem.split_once('.').ok_or_else(|| {
                bad_name(
                    name,
                    "a backup history file name is <segment>.<8 hex digits>.backup",
                )
            })?;
            let (timeline, segno) = parse_segment_file_name(segment, size)?;
            if offset.len() != 8 {
                return Err(bad_name(name, "the backup offset must be 8 hex digits"));
            }
            let offset = parse_hex32(offset, name)?;
            if offset >= size.bytes() {
                return Err(bad_name(
                    name,
                    &format!("the backup offset is beyond the end of a {size} segment"),
                ));
            }
            return Ok(WalFileName::Backup {
                timeline,
                segno,
                offset,
            });
        }
        let (timeline, segno) = parse_segment_file_name(name, size)?;
        Ok(WalFileName::Segment { timeline, segno })
    }

    /// The file name for segments of `size` bytes.
    pub fn to_file_name(&self, size: WalSegmentSize) -> String {
        match *self {
            WalFileName::Segment { timeline, segno } => segment_file_name(timeline, segno, size),
            WalFileName::Partial { timeline, segno } => {
                format!(
                    "{}{PARTIAL_SUFFIX}",
                    segment_file_name(timeline, segno, size)
                )
            }
            WalFileName::History { timeline } => history_file_name(timeline),
            WalFileName::Backup {
                timeline,
                segno,
                offset,
            } => format!(
                "{}.{offset:08X}{BACKUP_SUFFIX}",
                segment_file_name(timeline, segno, size)
            ),
        }
    }

    /// The timeline in the name.
    pub fn timeline(&self) -> TimelineId {
        match *self {
            WalFileName::Segment { timeline, .. }
            | WalFileName::Partial { timeline, .. }
            | WalFileName::History { timeline }
            | WalFileName::Backup { timeline, .. } => timeline,
        }
    }

    /// The segment number, for every kind but history files.
    pub fn segno(&self) -> Option<WalSegNo> {
        match *self {
            WalFileName::Segment { segno, .. }
            | WalFileName::Partial { segno, .. }
            | WalFileName::Backup { segno, .. } => Some(segno),
            WalFileName::History { .. } => None,
        }
    }

    /// For a backup history file, the backup's start LSN.
    pub fn backup_start_lsn(&self, size: WalSegmentSize) -> Option<Lsn> {
        match *self {
            WalFileName::Backup { segno, offset, .. } => {
                Lsn::from_segment_offset(segno, offset, size)
            }
            _ => None,
        }
    }
}

/// `XLogFileName`: the name of segment `segno` on `timeline`.
pub fn segment_file_name(timeline: TimelineId, segno: WalSegNo, size: WalSegmentSize) -> String {
    let per_id = size.segments_per_xlogid();
    // segno / per_id < 2^32 because per_id = 2^32 / size and segno < 2^64 / size.
    format!(
        "{:08X}{:08X}{:08X}",
        timeline.get(),
        segno.get() / per_id,
        segno.get() % per_id
    )
}

/// `XLogFromFileName`: the timeline and segment number of a 24-digit segment name.
pub fn parse_segment_file_name(name: &str, size: WalSegmentSize) -> Result<(TimelineId, WalSegNo)> {
    if !is_segment_file_name(name) {
        return Err(bad_name(
            name,
            "a WAL segment name is 24 upper-case hexadecimal digits",
        ));
    }
    let timeline = parse_timeline(&name[0..8], name)?;
    let log = u64::from(parse_hex32(&name[8..16], name)?);
    let seg = u64::from(parse_hex32(&name[16..24], name)?);
    let per_id = size.segments_per_xlogid();
    if seg >= per_id {
        return Err(bad_name(
            name,
            &format!(
                "with {size} segments the last 8 digits must be below {per_id:08X}; is the segment size right?"
            ),
        ));
    }
    Ok((timeline, WalSegNo::new(log * per_id + seg)))
}

/// `TLHistoryFileName`: `%08X.history`.
pub fn history_file_name(timeline: TimelineId) -> String {
    format!("{:08X}{HISTORY_SUFFIX}", timeline.get())
}

/// `BackupHistoryFileName`: the backup history file name of a backup that started at `start`.
pub fn backup_history_file_name(timeline: TimelineId, start: Lsn, size: WalSegmentSize) -> String {
    WalFileName::Backup {
        timeline,
        segno: start.segment_number(size),
        offset: start.segment_offset(size),
    }
    .to_file_name(size)
}

/// `IsXLogFileName`: 24 upper-case hexadecimal digits.
pub fn is_segment_file_name(name: &str) -> bool {
    name.len() == XLOG_FNAME_LEN && is_upper_hex(name)
}

/// `IsPartialXLogFileName`: a segment name followed by `.partial`.
pub fn is_partial_file_name(name: &str) -> bool {
    name.strip_suffix(PARTIAL_SUFFIX)
        .is_some_and(is_segment_file_name)
}

/// `IsTLHistoryFileName`: 8 upper-case hexadecimal digits followed by `.history`.
pub fn is_history_file_name(name: &str) -> bool {
    name.strip_suffix(HISTORY_SUFFIX)
        .is_some_and(|stem| stem.len() == 8 && is_upper_hex(stem))
}

/// `IsBackupHistoryFileName`: a segment name, anything, then `.backup`.
pub fn is_backup_history_file_name(name: &str) -> bool {
    name.len() > XLOG_FNAME_LEN
        && name.is_char_boundary(XLOG_FNAME_LEN)
        && is_upper_hex(&name[..XLOG_FNAME_LEN])
        && name.ends_with(BACKUP_SUFFIX)
}

fn is_upper_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn parse_hex32(digits: &str, whole: &str) -> Result<u32> {
    if digits.is_empty() || !is_upper_hex(digits) {
        return Err(bad_name(whole, "expected upper-case hexadecimal digits"));
    }
    u32::from_str_radix(digits, 16).map_err(|_| bad_name(whole, "number out of range"))
}

fn parse_timeline(digits: &str, whole: &str) -> Result<TimelineId> {
    let v = parse_hex32(digits, whole)?;
    TimelineId::new(v).map_err(|_| bad_name(whole, "timeline 0 does not exist"))
}

fn bad_name(name: &str, why: &str) -> Error {
    Error::syntax(format!("invalid WAL file name \"{name}\": {why}"))
}

/// Formats a [`WalFileName`] for a given segment size; see [`WalFileName::display`].
#[derive(Debug, Clone, Copy)]
pub struct DisplayWalFileName {
    name: WalFileName,
    size: WalSegmentSize,
}

impl WalFileName {
    /// A `Display` adapter, for use in messages without allocating first.
    pub fn display(&self, size: WalSegmentSize) -> DisplayWalFileName {
        DisplayWalFileName { name: *self, size }
    }
}

impl fmt::Display for DisplayWalFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name.to_file_name(self.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn tli(n: u32) -> TimelineId {
        TimelineId::new(n).unwrap()
    }

    fn size_mib(n: u32) -> WalSegmentSize {
        WalSegmentSize::from_mib(n).unwrap()
    }

    #[test]
    fn segment_names_match_protocol_md_table() {
        let lsn: Lsn = "2/8C000028".parse().unwrap();
        let cases = [
            (1, "0000000100000002000008C0"),
            (16, "00000001000000020000008C"),
            (64, "000000010000000200000023"),
            (1024, "000000010000000200000002"),
        ];
        for (mib, name) in cases {
            let size = size_mib(mib);
            let segno = lsn.segment_number(size);
            assert_eq!(segment_file_name(tli(1), segno, size), name, "{mib}MB");
            assert_eq!(
                parse_segment_file_name(name, size).unwrap(),
                (tli(1), segno)
            );
        }
    }

    #[test]
    fn every_kind_round_trips_for_every_segment_size() {
        for mib in [1u32, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] {
            let size = size_mib(mib);
            let per_id = size.segments_per_xlogid();
            for segno in [
                0,
                1,
                per_id - 1,
                per_id,
                per_id * 7 + 3,
                u64::MAX / size.bytes() as u64,
            ] {
                let segno = WalSegNo::new(segno);
                for name in [
                    WalFileName::Segment {
                        timeline: tli(1),
                        segno,
                    },
                    WalFileName::Partial {
                        timeline: tli(0xABCDEF12),
                        segno,
                    },
                    WalFileName::Backup {
                        timeline: tli(3),
                        segno,
                        offset: size.bytes() - 8,
                    },
                    WalFileName::History { timeline: tli(2) },
                ] {
                    let text = name.to_file_name(size);
                    assert_eq!(WalFileName::parse(&text, size).unwrap(), name, "{text}");
                    assert_eq!(name.display(size).to_string(), text);
                }
            }
        }
    }

    #[test]
    fn examples_from_protocol_md() {
        let size = WalSegmentSize::DEFAULT;
        let b = WalFileName::parse("000000010000000000000009.00000028.backup", size).unwrap();
        assert_eq!(
            b,
            WalFileName::Backup {
                timeline: tli(1),
                segno: WalSegNo::new(9),
                offset: 0x28
            }
        );
        assert_eq!(b.backup_start_lsn(size), Some("0/9000028".parse().unwrap()));
        assert_eq!(b.timeline(), tli(1));
        assert_eq!(b.segno(), Some(WalSegNo::new(9)));
        assert_eq!(
            backup_history_file_name(tli(1), "0/9000028".parse().unwrap(), size),
            "000000010000000000000009.00000028.backup"
        );
        let h = WalFileName::parse("00000002.history", size).unwrap();
        assert_eq!(h, WalFileName::History { timeline: tli(2) });
        assert_eq!(h.segno(), None);
        assert_eq!(h.backup_start_lsn(size), None);
        assert_eq!(history_file_name(tli(0x1A)), "0000001A.history");
        let p = WalFileName::parse("000000020000000000000006.partial", size).unwrap();
        assert_eq!(p.timeline(), tli(2));
        assert_eq!(p.segno(), Some(WalSegNo::new(6)));
    }

    #[test]
    fn predicates_follow_postgres() {
        assert!(is_segment_file_name("000000010000000000000001"));
        assert!(!is_segment_file_name("00000001000000000000000a"));
        assert!(!is_segment_file_name("00000001000000000000001"));
        assert!(is_partial_file_name("000000010000000000000001.partial"));
        assert!(!is_partial_file_name("000000010000000000000001.partia"));
        assert!(is_history_file_name("00000002.history"));
        assert!(!is_history_file_name("0000002.history"));
        assert!(!is_history_file_name("0000000g.history"));
        assert!(is_backup_history_file_name(
            "000000010000000000000009.00000028.backup"
        ));
        assert!(!is_backup_history_file_name(
            "000000010000000000000009.backup0"
        ));
        assert!(!is_backup_history_file_name("ééééééééééééé.backup"));
    }

    #[test]
    fn rejects_malformed_names() {
        let size = WalSegmentSize::DEFAULT;
        for bad in [
            "",
            "00000001000000000000000",
            "0000000100000000000000011",
            "00000001000000000000000a",
            "000000000000000000000001",
            "0000000100000000000001FF",
            "000000010000000000000001.partia",
            "000000010000000000000001.PARTIAL",
            "0000002.history",
            "000000002.history",
            "00000000.history",
            "0000000x.history",
            "000000010000000000000009.backup",
            "000000010000000000000009.0000028.backup",
            "000000010000000000000009.0000002g.backup",
            "000000010000000000000009.01000000.backup",
            "000000010000000000000009.00000028.backu",
            "ééééééééééééééééééééééé",
        ] {
            let e = WalFileName::parse(bad, size).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Syntax, "{bad:?}");
            assert!(e.to_string().starts_with("invalid WAL file name"), "{e}");
        }
        let e = WalFileName::parse("0000000100000000000001FF", size).unwrap_err();
        assert!(e.to_string().contains("below 00000100"), "{e}");
        // The same name is valid with 1 MB segments.
        assert_eq!(
            WalFileName::parse("0000000100000000000001FF", size_mib(1))
                .unwrap()
                .segno(),
            Some(WalSegNo::new(0x1FF))
        );
    }
}
