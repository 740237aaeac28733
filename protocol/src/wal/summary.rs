//! The per-segment summary: what recovery needs to know about a WAL segment without reading
//! it again, and its one-line text form.
//!
//! The validator ([`super::validator`]) fills a [`SegmentSummary`] while it checks a segment.
//! It holds the segment's identity (timeline, number, size, system identifier, major version),
//! the records it validated (count, first and last record LSN, `end` = where the next record
//! begins, a record left pending for the next segment), how the segment ends (full,
//! `XLOG_SWITCH`, end of WAL in a `.partial`), and the recovery facts: transaction ends
//! (`RM_XACT` commit / abort / commit prepared / abort prepared, as `recoveryStopsBefore` in
//! `src/backend/access/transam/xlogrecovery.c` sees them) and restore points
//! (`XLOG_RESTORE_POINT`, `xl_restore_point` in `src/include/access/xlog_internal.h`).
//!
//! # Bounded size, and what recovery can decide from it
//!
//! A 16 MB segment can hold well over 100 000 commits, so the summary does not list them.
//! It keeps, per segment: the number of commits and aborts, the first and last transaction
//! end (LSN, xid, time, kind), the minimum and maximum xid (in modulo-2^32 order,
//! `TransactionIdPrecedes`) and the minimum and maximum commit/abort time. Restore points are
//! rare and all kept. That is enough for `recover` to answer, before restoring anything,
//! "is this target reachable from the archive, and which segments does it need?":
//!
//! - `--target-lsn L`: reachable when the archive holds every segment from the backup's start
//!   to the one containing `L`, and that segment's `end` is at or after `L` (a `.partial` may
//!   stop short). Each summary's `end` and tail say exactly how far its WAL goes.
//! - `--target-time T`: recovery stops at the first transaction end whose time is after `T`
//!   (or at/after, when not inclusive). The first segment after the backup end whose
//!   `max_time` is past `T` is where it stops; if no segment has one, recovery would run out
//!   of WAL before reaching the target (PostgreSQL 13+ then refuses to finish), so the target
//!   is not reachable. Commit times are not strictly ordered in WAL, which is why the maximum,
//!   not the last, is kept.
//! - `--target-xid X`: recovery stops at the commit/abort record of exactly `X`. A segment
//!   whose xid range does not cover `X` cannot hold it ([`XactSummary::may_contain_xid`]);
//!   one that does may. So "no segment covers X" proves the target unreachable, and the
//!   covering segments bound the WAL to copy. Exact membership would need every xid (a few
//!   hundred KB per busy segment), which the summary deliberately does not store.
//! - `--target-name N`: reachable exactly when a restore point named `N` appears after the
//!   backup's end; its LSN tells which segment is needed.
//!
//! A transaction end or restore point is attributed to the segment where its record *ends*
//! (it is usable by recovery only once that segment is there); its `lsn` may therefore lie in
//! the previous segment. Without carried-over state, the continuation of a record that began
//! in the previous segment is skipped unverified (`head=skipped:N`) and its facts are not
//! seen; validate segments in order with carry-over to see everything.
//!
//! # Line format (version 1)
//!
//! One line, fields separated by single spaces, `key=value` after the leading tag:
//!
//! ```text
//! walsummary1 seg=000000010000000000000003 size=16MB sysid=7710809521602424182 pg=15
//!   blcksz=8192 head=clean tail=switch records=812 first=0/3000028 last=0/3154B18
//!   end=0/4000000 commits=3 aborts=1 xids=726..729 times=817010740378436..817010741002311
//!   firstxact=c:726:817010740378436:0/3000A10 lastxact=A:729:817010741002311:0/3154AE0
//!   rp=0/3000B20:817010740500000:before%20upgrade
//! ```
//!
//! (shown wrapped; it is one line). `head` is `clean`, `carried` or `skipped:<bytes>`;
//! `tail` is `full`, `switch` or `eow` (end of WAL in a partial segment). `first`, `last`,
//! `end`, `pending` (a record continuing into the next segment) and the xact fields are
//! omitted when empty. Times are microseconds since 2000-01-01 UTC (`TimestampTz`); a
//! transaction end is `kind:xid:time:lsn` with kind `c` commit, `a` abort, `C` commit
//! prepared, `A` abort prepared. Each restore point is `rp=lsn:time:name` with the name
//! percent-encoded (bytes outside `!`..`~`, and `%`, as `%XX`), in WAL order.

use std::fmt;
use std::str::FromStr;

use super::names::{parse_segment_file_name, segment_file_name};
use super::xact::{RestorePoint, TimestampTz, TransactionId, XactEvent, XactKind};
use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId, WalSegNo, WalSegmentSize};

const TAG: &str = "walsummary1";

/// How a segment begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentHead {
    /// The first page starts with a record.
    Clean,
    /// The first page continues a record from the previous segment, which was completed and
    /// its CRC checked using the state carried over from the previous segment's validator.
    Carried,
    /// The first page continues a record from the previous segment that could not be checked
    /// (no carried-over state): this many bytes were skipped, following `xlp_rem_len`.
    Skipped {
        /// Bytes of continuation skipped.
        bytes: u32,
    },
}

/// How a segment ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentTail {
    /// WAL runs to the last byte (the last record may continue into the next segment).
    Full,
    /// An `XLOG_SWITCH` record ends the WAL of this segment; the rest is unused.
    Switch,
    /// Valid WAL ends before the end of the segment (only for `.partial` segments).
    EndOfWal,
}

/// Transaction ends seen in a segment, kept bounded (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XactSummary {
    /// COMMIT and COMMIT PREPARED records.
    pub commits: u32,
    /// ABORT and ABORT PREPARED records.
    pub aborts: u32,
    /// The first transaction end, in WAL order.
    pub first: Option<XactEvent>,
    /// The last transaction end, in WAL order.
    pub last: Option<XactEvent>,
    /// The smallest and largest xid, in `TransactionIdPrecedes` order.
    pub xid_range: Option<(TransactionId, TransactionId)>,
    /// The earliest and latest commit/abort time.
    pub time_range: Option<(TimestampTz, TimestampTz)>,
}

impl XactSummary {
    /// Adds one transaction end.
    pub fn add(&mut self, e: XactEvent) {
        if e.kind.is_commit() {
            self.commits = self.commits.saturating_add(1);
        } else {
            self.aborts = self.aborts.saturating_add(1);
        }
        self.first.get_or_insert(e);
        self.last = Some(e);
        self.xid_range = Some(match self.xid_range {
            None => (e.xid, e.xid),
            Some((lo, hi)) => (
                if e.xid.precedes(lo) { e.xid } else { lo },
                if hi.precedes(e.xid) { e.xid } else { hi },
            ),
        });
        self.time_range = Some(match self.time_range {
            None => (e.time, e.time),
            Some((lo, hi)) => (lo.min(e.time), hi.max(e.time)),
        });
    }

    /// Commits plus aborts.
    pub fn count(&self) -> u64 {
        u64::from(self.commits) + u64::from(self.aborts)
    }

    /// Whether a transaction end for `xid` may be in the segment (false means it is not).
    pub fn may_contain_xid(&self, xid: TransactionId) -> bool {
        match self.xid_range {
            None => false,
            Some((lo, hi)) => !xid.precedes(lo) && !hi.precedes(xid),
        }
    }

    /// Whether some transaction end in the segment is after `target` (or at it, when
    /// `inclusive` is false): the condition under which `recovery_target_time` stops recovery
    /// in this segment or earlier.
    pub fn reaches_time(&self, target: TimestampTz, inclusive: bool) -> bool {
        match self.time_range {
            None => false,
            Some((_, hi)) => {
                if inclusive {
                    hi > target
                } else {
                    hi >= target
                }
            }
        }
    }
}

/// Everything the archive keeps about one validated segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The segment's timeline (from its file name).
    pub timeline: TimelineId,
    /// The segment number.
    pub segno: WalSegNo,
    /// `wal_segment_size`.
    pub seg_size: WalSegmentSize,
    /// The database system identifier from the long page header.
    pub system_identifier: u64,
    /// The PostgreSQL major version, from the page magic.
    pub pg_major: u32,
    /// `XLOG_BLCKSZ`, from the long page header.
    pub block_size: u32,
    /// How the segment begins.
    pub head: SegmentHead,
    /// How the segment ends.
    pub tail: SegmentTail,
    /// Records whose CRC was checked in this segment (a record continuing from the previous
    /// segment counts here when it was completed with carried-over state).
    pub records: u32,
    /// Start of the first record checked here.
    pub first_record: Option<Lsn>,
    /// Start of the last record checked here.
    pub last_record: Option<Lsn>,
    /// Where the next record begins after the last one read (PostgreSQL's `EndRecPtr`): the
    /// end of valid WAL for a `.partial`, the segment end after `XLOG_SWITCH`.
    pub end: Option<Lsn>,
    /// A record that starts here and continues into the next segment.
    pub pending_record: Option<Lsn>,
    /// Transaction ends.
    pub xacts: XactSummary,
    /// Restore points, in WAL order.
    pub restore_points: Vec<RestorePoint>,
}

impl SegmentSummary {
    /// The segment's file name (without `.partial`).
    pub fn file_name(&self) -> String {
        segment_file_name(self.timeline, self.segno, self.seg_size)
    }

    /// The first byte of the segment.
    pub fn start_lsn(&self) -> Option<Lsn> {
        self.segno.start_lsn(self.seg_size)
    }

    /// The first byte after the segment.
    pub fn end_lsn(&self) -> Option<Lsn> {
        self.segno.end_lsn(self.seg_size)
    }

    /// Whether an `XLOG_SWITCH` record ends this segment's WAL.
    pub fn ends_with_switch(&self) -> bool {
        self.tail == SegmentTail::Switch
    }

    /// The restore point called `name`, if this segment has it.
    pub fn restore_point(&self, name: &str) -> Option<&RestorePoint> {
        self.restore_points.iter().find(|r| r.name == name)
    }

    /// The one-line text form (see the module documentation).
    pub fn to_line(&self) -> String {
        self.to_string()
    }

    /// Parses the one-line text form.
    pub fn parse_line(line: &str) -> Result<SegmentSummary> {
        line.parse()
    }
}

fn write_event(f: &mut fmt::Formatter<'_>, key: &str, e: &XactEvent) -> fmt::Result {
    write!(
        f,
        " {key}={}:{}:{}:{}",
        e.kind.code(),
        e.xid,
        e.time.as_pg_micros(),
        e.lsn
    )
}

fn encode_name(name: &str, out: &mut String) {
    for &b in name.as_bytes() {
        if (0x21..=0x7E).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn decode_name(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b @ 0x21..=0x7E => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for SegmentSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TAG} seg={} size={} sysid={} pg={} blcksz={}",
            self.file_name(),
            self.seg_size,
            self.system_identifier,
            self.pg_major,
            self.block_size
        )?;
        match self.head {
            SegmentHead::Clean => f.write_str(" head=clean")?,
            SegmentHead::Carried => f.write_str(" head=carried")?,
            SegmentHead::Skipped { bytes } => write!(f, " head=skipped:{bytes}")?,
        }
        f.write_str(match self.tail {
            SegmentTail::Full => " tail=full",
            SegmentTail::Switch => " tail=switch",
            SegmentTail::EndOfWal => " tail=eow",
        })?;
        write!(f, " records={}", self.records)?;
        for (key, v) in [
            ("first", self.first_record),
            ("last", self.last_record),
            ("end", self.end),
            ("pending", self.pending_record),
        ] {
            if let Some(l) = v {
                write!(f, " {key}={l}")?;
            }
        }
        let x = &self.xacts;
        write!(f, " commits={} aborts={}", x.commits, x.aborts)?;
        if let Some((lo, hi)) = x.xid_range {
            write!(f, " xids={lo}..{hi}")?;
        }
        if let Some((lo, hi)) = x.time_range {
            write!(f, " times={}..{}", lo.as_pg_micros(), hi.as_pg_micros())?;
        }
        if let Some(e) = &x.first {
            write_event(f, "firstxact", e)?;
        }
        if let Some(e) = &x.last {
            write_event(f, "lastxact", e)?;
        }
        for rp in &self.restore_points {
            let mut name = String::new();
            encode_name(&rp.name, &mut name);
            write!(f, " rp={}:{}:{name}", rp.lsn, rp.time.as_pg_micros())?;
        }
        Ok(())
    }
}

impl FromStr for SegmentSummary {
    type Err = Error;

    fn from_str(line: &str) -> Result<SegmentSummary> {
        let bad = |why: &str| Error::syntax(format!("invalid WAL segment summary: {why}"));
        let mut tokens = line.trim_end_matches(['\n', '\r']).split(' ');
        if tokens.next() != Some(TAG) {
            return Err(bad(&format!("the line does not start with \"{TAG}\"")));
        }
        let mut seg: Option<&str> = None;
        let mut size: Option<WalSegmentSize> = None;
        let mut sysid = None;
        let mut pg = None;
        let mut blcksz = None;
        let mut head = None;
        let mut tail = None;
        let mut records = None;
        let (mut first, mut last, mut end, mut pending) = (None, None, None, None);
        let (mut commits, mut aborts) = (None, None);
        let mut xacts = XactSummary::default();
        let mut restore_points = Vec::new();

        fn once<T>(slot: &mut Option<T>, v: T, key: &str) -> Result<()> {
            if slot.replace(v).is_some() {
                return Err(Error::syntax(format!(
                    "invalid WAL segment summary: \"{key}\" appears twice"
                )));
            }
            Ok(())
        }
        let num = |v: &str, key: &str| -> Result<u64> {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("\"{key}\" is not a number: \"{v}\"")));
            }
            v.parse()
                .map_err(|_| bad(&format!("\"{key}\" is out of range: \"{v}\"")))
        };
        let u32_of = |v: &str, key: &str| -> Result<u32> {
            u32::try_from(num(v, key)?).map_err(|_| bad(&format!("\"{key}\" is out of range")))
        };
        let time_of = |v: &str, key: &str| -> Result<TimestampTz> {
            let (neg, digits) = match v.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, v),
            };
            let n = num(digits, key)?;
            let n = if neg {
                0i64.checked_sub_unsigned(n)
            } else {
                i64::try_from(n).ok()
            };
            n.map(TimestampTz::from_pg_micros)
                .ok_or_else(|| bad(&format!("\"{key}\" is out of range")))
        };
        let range = |v: &str, key: &str| -> Result<(String, String)> {
            v.split_once("..")
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| bad(&format!("\"{key}\" is not a range lo..hi: \"{v}\"")))
        };
        let event = |v: &str, key: &str| -> Result<XactEvent> {
            let mut p = v.splitn(4, ':');
            let (k, xid, time, lsn) = match (p.next(), p.next(), p.next(), p.next()) {
                (Some(k), Some(x), Some(t), Some(l)) => (k, x, t, l),
                _ => return Err(bad(&format!("\"{key}\" is not kind:xid:time:lsn"))),
            };
            let mut kc = k.chars();
            let kind = match (kc.next(), kc.next()) {
                (Some(c), None) => XactKind::from_code(c),
                _ => None,
            }
            .ok_or_else(|| bad(&format!("\"{key}\" has an unknown kind \"{k}\"")))?;
            Ok(XactEvent {
                lsn: lsn.parse()?,
                xid: xid.parse()?,
                time: time_of(time, key)?,
                kind,
            })
        };

        for token in tokens {
            let (key, v) = token
                .split_once('=')
                .ok_or_else(|| bad(&format!("\"{token}\" is not key=value")))?;
            match key {
                "seg" => once(&mut seg, v, key)?,
                "size" => once(&mut size, v.parse()?, key)?,
                "sysid" => once(&mut sysid, num(v, key)?, key)?,
                "pg" => once(&mut pg, u32_of(v, key)?, key)?,
                "blcksz" => once(&mut blcksz, u32_of(v, key)?, key)?,
                "head" => {
                    let h = match v {
                        "clean" => SegmentHead::Clean,
                        "carried" => SegmentHead::Carried,
                        _ => match v.strip_prefix("skipped:") {
                            Some(n) => SegmentHead::Skipped {
                                bytes: u32_of(n, key)?,
                            },
                            None => return Err(bad(&format!("unknown head \"{v}\""))),
                        },
                    };
                    once(&mut head, h, key)?
                }
                "tail" => {
                    let t = match v {
                        "full" => SegmentTail::Full,
                        "switch" => SegmentTail::Switch,
                        "eow" => SegmentTail::EndOfWal,
                        _ => return Err(bad(&format!("unknown tail \"{v}\""))),
                    };
                    once(&mut tail, t, key)?
                }
                "records" => once(&mut records, u32_of(v, key)?, key)?,
                "first" => once(&mut first, v.parse::<Lsn>()?, key)?,
                "last" => once(&mut last, v.parse::<Lsn>()?, key)?,
                "end" => once(&mut end, v.parse::<Lsn>()?, key)?,
                "pending" => once(&mut pending, v.parse::<Lsn>()?, key)?,
                "commits" => once(&mut commits, u32_of(v, key)?, key)?,
                "aborts" => once(&mut aborts, u32_of(v, key)?, key)?,
                "xids" => {
                    let (a, b) = range(v, key)?;
                    once(&mut xacts.xid_range, (a.parse()?, b.parse()?), key)?
                }
                "times" => {
                    let (a, b) = range(v, key)?;
                    once(
                        &mut xacts.time_range,
                        (time_of(&a, key)?, time_of(&b, key)?),
                        key,
                    )?
                }
                "firstxact" => once(&mut xacts.first, event(v, key)?, key)?,
                "lastxact" => once(&mut xacts.last, event(v, key)?, key)?,
                "rp" => {
                    let mut p = v.splitn(3, ':');
                    let (lsn, time, name) = match (p.next(), p.next(), p.next()) {
                        (Some(l), Some(t), Some(n)) => (l, t, n),
                        _ => return Err(bad("\"rp\" is not lsn:time:name")),
                    };
                    restore_points.push(RestorePoint {
                        lsn: lsn.parse()?,
                        time: time_of(time, key)?,
                        name: decode_name(name).ok_or_else(|| {
                            bad(&format!("restore point name \"{name}\" is badly encoded"))
                        })?,
                    });
                }
                _ => return Err(bad(&format!("unknown field \"{key}\""))),
            }
        }
        let missing = |key: &str| bad(&format!("\"{key}\" is missing"));
        let seg_size = size.ok_or_else(|| missing("size"))?;
        let (timeline, segno) =
            parse_segment_file_name(seg.ok_or_else(|| missing("seg"))?, seg_size)?;
        xacts.commits = commits.ok_or_else(|| missing("commits"))?;
        xacts.aborts = aborts.ok_or_else(|| missing("aborts"))?;
        let complete = xacts.first.is_some()
            && xacts.last.is_some()
            && xacts.xid_range.is_some()
            && xacts.time_range.is_some();
        let empty = xacts.first.is_none()
            && xacts.last.is_none()
            && xacts.xid_range.is_none()
            && xacts.time_range.is_none();
        if (xacts.count() > 0 && !complete) || (xacts.count() == 0 && !empty) {
            return Err(bad(
                "the transaction fields disagree with the commit and abort counts",
            ));
        }
        Ok(SegmentSummary {
            timeline,
            segno,
            seg_size,
            system_identifier: sysid.ok_or_else(|| missing("sysid"))?,
            pg_major: pg.ok_or_else(|| missing("pg"))?,
            block_size: blcksz.ok_or_else(|| missing("blcksz"))?,
            head: head.ok_or_else(|| missing("head"))?,
            tail: tail.ok_or_else(|| missing("tail"))?,
            records: records.ok_or_else(|| missing("records"))?,
            first_record: first,
            last_record: last,
            end,
            pending_record: pending,
            xacts,
            restore_points,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
    }

    fn event(kind: XactKind, xid: u32, time: i64, at: &str) -> XactEvent {
        XactEvent {
            lsn: lsn(at),
            xid: TransactionId::new(xid),
            time: TimestampTz::from_pg_micros(time),
            kind,
        }
    }

    fn sample() -> SegmentSummary {
        let mut xacts = XactSummary::default();
        xacts.add(event(
            XactKind::Commit,
            726,
            817_010_740_378_436,
            "0/3000A10",
        ));
        xacts.add(event(
            XactKind::Abort,
            727,
            817_010_740_000_000,
            "0/3000B10",
        ));
        xacts.add(event(
            XactKind::AbortPrepared,
            729,
            817_010_741_002_311,
            "0/3154AE0",
        ));
        SegmentSummary {
            timeline: TimelineId::FIRST,
            segno: WalSegNo::new(3),
            seg_size: WalSegmentSize::DEFAULT,
            system_identifier: 7710809521602424182,
            pg_major: 15,
            block_size: 8192,
            head: SegmentHead::Clean,
            tail: SegmentTail::Switch,
            records: 812,
            first_record: Some(lsn("0/3000028")),
            last_record: Some(lsn("0/3154B18")),
            end: Some(lsn("0/4000000")),
            pending_record: None,
            xacts,
            restore_points: vec![
                RestorePoint {
                    lsn: lsn("0/3000B20"),
                    time: TimestampTz::from_pg_micros(817_010_740_500_000),
                    name: "before upgrade".into(),
                },
                RestorePoint {
                    lsn: lsn("0/3000C20"),
                    time: TimestampTz::from_pg_micros(-5),
                    name: "100% sûr: a=b\t\n".into(),
                },
            ],
        }
    }

    #[test]
    fn line_round_trips() {
        let s = sample();
        let line = s.to_line();
        assert!(!line.contains('\n'));
        assert!(line.starts_with(
            "walsummary1 seg=000000010000000000000003 size=16MB sysid=7710809521602424182 pg=15 blcksz=8192 head=clean tail=switch records=812 first=0/3000028 last=0/3154B18 end=0/4000000 commits=1 aborts=2 xids=726..729 times=817010740000000..817010741002311 firstxact=c:726:817010740378436:0/3000A10 lastxact=A:729:817010741002311:0/3154AE0 rp=0/3000B20:817010740500000:before%20upgrade rp=0/3000C20:-5:100%25%20s%C3%BBr:%20a=b%09%0A"
        ), "{line}");
        assert_eq!(SegmentSummary::parse_line(&line).unwrap(), s);
        assert_eq!(SegmentSummary::parse_line(&format!("{line}\n")).unwrap(), s);
    }

    #[test]
    fn minimal_line_round_trips() {
        for head in [
            SegmentHead::Clean,
            SegmentHead::Carried,
            SegmentHead::Skipped { bytes: 209 },
        ] {
            for tail in [
                SegmentTail::Full,
                SegmentTail::Switch,
                SegmentTail::EndOfWal,
            ] {
                let s = SegmentSummary {
                    timeline: TimelineId::new(2).unwrap(),
                    segno: WalSegNo::new(0x123),
                    seg_size: WalSegmentSize::from_mib(1).unwrap(),
                    system_identifier: 0,
                    pg_major: 13,
                    block_size: 8192,
                    head,
                    tail,
                    records: 0,
                    first_record: None,
                    last_record: None,
                    end: None,
                    pending_record: Some(lsn("0/123FFF8")),
                    xacts: XactSummary::default(),
                    restore_points: vec![],
                };
                let line = s.to_line();
                assert_eq!(line.parse::<SegmentSummary>().unwrap(), s, "{line}");
                assert_eq!(s.file_name(), "000000020000000000000123");
            }
        }
    }

    #[test]
    fn helpers_answer_recovery_questions() {
        let s = sample();
        assert!(s.ends_with_switch());
        assert_eq!(s.start_lsn(), Some(lsn("0/3000000")));
        assert_eq!(s.end_lsn(), Some(lsn("0/4000000")));
        assert_eq!(
            s.restore_point("before upgrade").unwrap().lsn,
            lsn("0/3000B20")
        );
        assert!(s.restore_point("nope").is_none());
        let x = &s.xacts;
        assert_eq!(x.count(), 3);
        assert!(x.may_contain_xid(TransactionId::new(726)));
        assert!(x.may_contain_xid(TransactionId::new(728)));
        assert!(!x.may_contain_xid(TransactionId::new(725)));
        assert!(!x.may_contain_xid(TransactionId::new(730)));
        let hi = TimestampTz::from_pg_micros(817_010_741_002_311);
        assert!(!x.reaches_time(hi, true));
        assert!(x.reaches_time(hi, false));
        assert!(x.reaches_time(TimestampTz::from_pg_micros(0), true));
        assert!(!XactSummary::default().may_contain_xid(TransactionId::new(5)));
        assert!(!XactSummary::default().reaches_time(hi, false));
    }

    #[test]
    fn xid_range_follows_wraparound() {
        let mut x = XactSummary::default();
        x.add(event(XactKind::Commit, u32::MAX - 1, 1, "0/10"));
        x.add(event(XactKind::Commit, 5, 2, "0/20"));
        x.add(event(XactKind::Commit, u32::MAX - 3, 0, "0/30"));
        assert_eq!(
            x.xid_range,
            Some((TransactionId::new(u32::MAX - 3), TransactionId::new(5)))
        );
        assert!(x.may_contain_xid(TransactionId::new(3)));
        assert!(x.may_contain_xid(TransactionId::new(u32::MAX)));
        assert!(!x.may_contain_xid(TransactionId::new(6)));
        assert_eq!(
            x.time_range,
            Some((
                TimestampTz::from_pg_micros(0),
                TimestampTz::from_pg_micros(2)
            ))
        );
        assert_eq!(x.first.unwrap().xid.get(), u32::MAX - 1);
        assert_eq!(x.last.unwrap().xid.get(), u32::MAX - 3);
    }

    #[test]
    fn rejects_malformed_lines() {
        let good = sample().to_line();
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "does not start"),
            ("walsummary2 seg=x".into(), "does not start"),
            (good.replace(" size=16MB", ""), "\"size\" is missing"),
            (good.replace(" records=812", ""), "\"records\" is missing"),
            (good.replace(" head=clean", ""), "\"head\" is missing"),
            (good.replace(" tail=switch", ""), "\"tail\" is missing"),
            (
                good.replace(" sysid=7710809521602424182", ""),
                "\"sysid\" is missing",
            ),
            (good.replace(" pg=15", ""), "\"pg\" is missing"),
            (good.replace(" blcksz=8192", ""), "\"blcksz\" is missing"),
            (good.replace(" commits=1", ""), "\"commits\" is missing"),
            (good.replace(" aborts=2", ""), "\"aborts\" is missing"),
            (
                good.replace(" seg=000000010000000000000003", ""),
                "\"seg\" is missing",
            ),
            (
                good.replace("records=812", "records=812 records=1"),
                "appears twice",
            ),
            (good.replace("records=812", "records=x"), "not a number"),
            (
                good.replace("records=812", "records=99999999999"),
                "out of range",
            ),
            (good.replace("head=clean", "head=dirty"), "unknown head"),
            (good.replace("tail=switch", "tail=x"), "unknown tail"),
            (good.replace("records=812", "colour=blue"), "unknown field"),
            (good.replace("records=812", "records"), "not key=value"),
            (good.replace(" xids=726..729", ""), "disagree"),
            (
                good.replace("commits=1 aborts=2", "commits=0 aborts=0"),
                "disagree",
            ),
            (good.replace("xids=726..729", "xids=726"), "not a range"),
            (good.replace("firstxact=c:", "firstxact=x:"), "unknown kind"),
            (
                good.replace("firstxact=c:726:", "firstxact=c:"),
                "kind:xid:time:lsn",
            ),
            (
                good.replace("rp=0/3000B20:817010740500000:", "rp=0/3000B20:"),
                "lsn:time:name",
            ),
            (
                good.replace("before%20upgrade", "before%2"),
                "badly encoded",
            ),
            (
                good.replace("before%20upgrade", "before%zzupgrade"),
                "badly encoded",
            ),
            (good.replace("before%20upgrade", "%FF"), "badly encoded"),
            (
                good.replace("times=817010740000000", "times=-99999999999999999999"),
                "out of range",
            ),
            (good.replace("  ", " ") + " ", "not key=value"),
        ];
        for (line, needle) in cases {
            let e = line.parse::<SegmentSummary>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Syntax, "{line}");
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
        // Values parsed by other types report their own errors.
        assert!(good
            .replace("first=0/3000028", "first=zz")
            .parse::<SegmentSummary>()
            .is_err());
        assert!(good
            .replace("size=16MB", "size=3MB")
            .parse::<SegmentSummary>()
            .is_err());
        assert!(good
            .replace(
                "seg=000000010000000000000003",
                "seg=0000000100000000000001FF"
            )
            .parse::<SegmentSummary>()
            .is_err());
    }
}
