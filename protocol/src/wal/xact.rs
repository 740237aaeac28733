//! The recovery-relevant contents of WAL records: transaction ends (commit, abort, commit
//! prepared, abort prepared) and restore points, with the [`TransactionId`] and
//! [`TimestampTz`] newtypes they carry.
//!
//! Mirrors `xl_xact_commit` / `xl_xact_abort` and their optional sub-records in
//! `src/include/access/xact.h`, the walk of `ParseCommitRecord` / `ParseAbortRecord` in
//! `src/backend/access/rmgrdesc/xactdesc.c`, `xl_restore_point` in
//! `src/include/access/xlog_internal.h`, the target checks of `recoveryStopsBefore` in
//! `src/backend/access/transam/xlogrecovery.c` (which xid a record stands for), and
//! `TransactionIdPrecedes` in `src/backend/access/transam/transam.c`.
//!
//! The xid a transaction-end record stands for is the record header's `xl_xid`, except for
//! COMMIT PREPARED / ABORT PREPARED, where it is the prepared transaction's xid stored in the
//! record (`XACT_XINFO_HAS_TWOPHASE`), exactly as recovery compares `recovery_target_xid`.

use std::fmt;
use std::str::FromStr;

use super::record::{
    XLOG_XACT_ABORT, XLOG_XACT_ABORT_PREPARED, XLOG_XACT_COMMIT, XLOG_XACT_COMMIT_PREPARED,
    XLOG_XACT_HAS_INFO, XLOG_XACT_OPMASK,
};
use crate::error::{Error, Result};
use crate::lsn::Lsn;
use crate::version::PgVersion;

const XACT_XINFO_HAS_DBINFO: u32 = 1 << 0;
const XACT_XINFO_HAS_SUBXACTS: u32 = 1 << 1;
const XACT_XINFO_HAS_RELFILELOCATORS: u32 = 1 << 2;
const XACT_XINFO_HAS_INVALS: u32 = 1 << 3;
const XACT_XINFO_HAS_TWOPHASE: u32 = 1 << 4;
const XACT_XINFO_HAS_DROPPED_STATS: u32 = 1 << 8;

/// `sizeof(xl_xact_dbinfo)`.
const SIZE_OF_DBINFO: usize = 8;
/// `sizeof(TransactionId)`.
const SIZE_OF_XID: usize = 4;
/// `sizeof(RelFileLocator)` / `sizeof(RelFileNode)`.
const SIZE_OF_REL_FILE_LOCATOR: usize = 12;
/// `sizeof(SharedInvalidationMessage)`.
const SIZE_OF_INVAL_MESSAGE: usize = 16;
/// `MAXFNAMELEN`: the size of `xl_restore_point.rp_name`.
const RESTORE_POINT_NAME_LEN: usize = 64;

/// A 32-bit transaction id (`TransactionId`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TransactionId(u32);

impl TransactionId {
    /// `InvalidTransactionId`.
    pub const INVALID: TransactionId = TransactionId(0);
    /// `FirstNormalTransactionId`.
    pub const FIRST_NORMAL: TransactionId = TransactionId(3);

    /// Wraps a raw xid.
    pub const fn new(xid: u32) -> TransactionId {
        TransactionId(xid)
    }

    /// The raw xid.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `TransactionIdIsNormal`.
    pub const fn is_normal(self) -> bool {
        self.0 >= Self::FIRST_NORMAL.0
    }

    /// `TransactionIdPrecedes`: modulo-2^32 order for normal xids, plain order otherwise.
    pub const fn precedes(self, other: TransactionId) -> bool {
        if !self.is_normal() || !other.is_normal() {
            return self.0 < other.0;
        }
        (self.0.wrapping_sub(other.0) as i32) < 0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for TransactionId {
    type Err = Error;

    /// Decimal digits only.
    fn from_str(s: &str) -> Result<TransactionId> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::syntax(format!(
                "invalid transaction id \"{s}\": expected a decimal number"
            )));
        }
        s.parse()
            .map(TransactionId)
            .map_err(|_| Error::syntax(format!("invalid transaction id \"{s}\": out of range")))
    }
}

/// `TimestampTz`: microseconds since 2000-01-01 00:00:00 UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimestampTz(i64);

/// Seconds from 1970-01-01 to 2000-01-01.
const UNIX_TO_POSTGRES_EPOCH_SECS: i64 = 946_684_800;
const USECS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

impl TimestampTz {
    /// `DT_NOBEGIN`, printed `-infinity`.
    pub const NEG_INFINITY: TimestampTz = TimestampTz(i64::MIN);
    /// `DT_NOEND`, printed `infinity`.
    pub const INFINITY: TimestampTz = TimestampTz(i64::MAX);

    /// From microseconds since 2000-01-01 UTC (the value stored in WAL).
    pub const fn from_pg_micros(micros: i64) -> TimestampTz {
        TimestampTz(micros)
    }

    /// Microseconds since 2000-01-01 UTC.
    pub const fn as_pg_micros(self) -> i64 {
        self.0
    }

    /// From microseconds since 1970-01-01 UTC, or `None` when out of range.
    pub fn from_unix_micros(micros: i64) -> Option<TimestampTz> {
        micros
            .checked_sub(UNIX_TO_POSTGRES_EPOCH_SECS * USECS_PER_SEC)
            .map(TimestampTz)
    }

    /// Microseconds since 1970-01-01 UTC, or `None` when out of range.
    pub fn to_unix_micros(self) -> Option<i64> {
        self.0
            .checked_add(UNIX_TO_POSTGRES_EPOCH_SECS * USECS_PER_SEC)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for TimestampTz {
    /// ISO 8601 in UTC as PostgreSQL prints it with `TimeZone = UTC`:
    /// `2026-11-22 03:25:40.378436+00` (trailing zeros of the fraction dropped).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimestampTz::INFINITY => return f.write_str("infinity"),
            TimestampTz::NEG_INFINITY => return f.write_str("-infinity"),
            _ => {}
        }
        let unix_secs = self.0.div_euclid(USECS_PER_SEC) + UNIX_TO_POSTGRES_EPOCH_SECS;
        let micros = self.0.rem_euclid(USECS_PER_SEC);
        let (year, month, day) = civil_from_days(unix_secs.div_euclid(SECS_PER_DAY));
        let secs_of_day = unix_secs.rem_euclid(SECS_PER_DAY);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
            secs_of_day / 3600,
            secs_of_day / 60 % 60,
            secs_of_day % 60
        )?;
        if micros != 0 {
            let frac = format!("{micros:06}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("+00")
    }
}

impl FromStr for TimestampTz {
    type Err = Error;

    /// Parses what `Display` prints: `YYYY-MM-DD HH:MM:SS[.ffffff]+00` (UTC only), or
    /// `infinity` / `-infinity`.
    fn from_str(s: &str) -> Result<TimestampTz> {
        match s {
            "infinity" => return Ok(TimestampTz::INFINITY),
            "-infinity" => return Ok(TimestampTz::NEG_INFINITY),
            _ => {}
        }
        let bad = || {
            Error::syntax(format!(
                "invalid timestamp \"{s}\": expected YYYY-MM-DD HH:MM:SS[.ffffff]+00 in UTC"
            ))
        };
        let body = s.strip_suffix("+00").ok_or_else(bad)?;
        let (date, time) = body.split_once(' ').ok_or_else(bad)?;
        let num = |t: &str, len: usize| -> Result<i64> {
            if t.len() != len || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        let mut d = date.split('-');
        let (year, month, day) = match (d.next(), d.next(), d.next(), d.next()) {
            (Some(y), Some(m), Some(dd), None) => (num(y, 4)?, num(m, 2)?, num(dd, 2)?),
            _ => return Err(bad()),
        };
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (time, None),
        };
        let mut t = hms.split(':');
        let (hour, minute, second) = match (t.next(), t.next(), t.next(), t.next()) {
            (Some(h), Some(m), Some(sec), None) => (num(h, 2)?, num(m, 2)?, num(sec, 2)?),
            _ => return Err(bad()),
        };
        let micros = match frac {
            None => 0,
            Some(fr) if !fr.is_empty() && fr.len() <= 6 => {
                num(fr, fr.len())? * 10i64.pow(6 - fr.len() as u32)
            }
            Some(_) => return Err(bad()),
        };
        let month_days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        if !(1..=12).contains(&month)
            || day < 1
            || day > month_days[(month - 1) as usize] + i64::from(month == 2 && leap)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(bad());
        }
        let days = days_from_civil(year, month as u32, day as u32);
        let unix_secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second;
        Ok(TimestampTz(
            (unix_secs - UNIX_TO_POSTGRES_EPOCH_SECS) * USECS_PER_SEC + micros,
        ))
    }
}

/// Which kind of transaction end a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XactKind {
    /// `XLOG_XACT_COMMIT`.
    Commit,
    /// `XLOG_XACT_ABORT`.
    Abort,
    /// `XLOG_XACT_COMMIT_PREPARED`.
    CommitPrepared,
    /// `XLOG_XACT_ABORT_PREPARED`.
    AbortPrepared,
}

impl XactKind {
    /// One-letter code used by the summary line: `c`, `a`, `C`, `A`.
    pub fn code(self) -> char {
        match self {
            XactKind::Commit => 'c',
            XactKind::Abort => 'a',
            XactKind::CommitPrepared => 'C',
            XactKind::AbortPrepared => 'A',
        }
    }

    /// The inverse of [`XactKind::code`].
    pub fn from_code(c: char) -> Option<XactKind> {
        match c {
            'c' => Some(XactKind::Commit),
            'a' => Some(XactKind::Abort),
            'C' => Some(XactKind::CommitPrepared),
            'A' => Some(XactKind::AbortPrepared),
            _ => None,
        }
    }

    /// Whether the transaction committed.
    pub fn is_commit(self) -> bool {
        matches!(self, XactKind::Commit | XactKind::CommitPrepared)
    }
}

/// One transaction end: a point where recovery may stop for `--target-xid` or
/// `--target-time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XactEvent {
    /// Start of the record.
    pub lsn: Lsn,
    /// The transaction the record ends (the prepared xid for the `*Prepared` kinds).
    pub xid: TransactionId,
    /// `xact_time`: the commit or abort time.
    pub time: TimestampTz,
    /// Commit or abort, plain or prepared.
    pub kind: XactKind,
}

/// A named restore point (`pg_create_restore_point()`), a stop point for `--target-name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RestorePoint {
    /// Start of the record.
    pub lsn: Lsn,
    /// `rp_time`.
    pub time: TimestampTz,
    /// `rp_name` (up to 63 bytes; invalid UTF-8 replaced by U+FFFD).
    pub name: String,
}

/// Decodes the main data of an `RM_XACT_ID` record. Returns `Ok(None)` for record types that
/// do not end a transaction (PREPARE, ASSIGNMENT, INVALIDATIONS).
pub(crate) fn parse_xact(
    lsn: Lsn,
    header_xid: u32,
    info: u8,
    main: &[u8],
    version: &PgVersion,
) -> std::result::Result<Option<XactEvent>, String> {
    let kind = match info & XLOG_XACT_OPMASK {
        XLOG_XACT_COMMIT => XactKind::Commit,
        XLOG_XACT_ABORT => XactKind::Abort,
        XLOG_XACT_COMMIT_PREPARED => XactKind::CommitPrepared,
        XLOG_XACT_ABORT_PREPARED => XactKind::AbortPrepared,
        _ => return Ok(None),
    };
    let mut cur = Reader { buf: main, pos: 0 };
    let time = TimestampTz(cur.i64("xact_time")?);
    let xinfo = if info & XLOG_XACT_HAS_INFO != 0 {
        cur.u32("xinfo")?
    } else {
        0
    };
    let mut xid = header_xid;
    if xinfo & XACT_XINFO_HAS_DBINFO != 0 {
        cur.skip(SIZE_OF_DBINFO, "database info")?;
    }
    if xinfo & XACT_XINFO_HAS_SUBXACTS != 0 {
        cur.array(SIZE_OF_XID, "subtransactions")?;
    }
    if xinfo & XACT_XINFO_HAS_RELFILELOCATORS != 0 {
        cur.array(SIZE_OF_REL_FILE_LOCATOR, "relations")?;
    }
    if xinfo & XACT_XINFO_HAS_DROPPED_STATS != 0 {
        if let Some(item) = version.xact_stats_item_size {
            cur.array(item as usize, "dropped statistics")?;
        }
    }
    if kind.is_commit() && xinfo & XACT_XINFO_HAS_INVALS != 0 {
        cur.array(SIZE_OF_INVAL_MESSAGE, "invalidation messages")?;
    }
    if xinfo & XACT_XINFO_HAS_TWOPHASE != 0 {
        let twophase = cur.u32("prepared transaction id")?;
        if matches!(kind, XactKind::CommitPrepared | XactKind::AbortPrepared) {
            xid = twophase;
        }
    } else if matches!(kind, XactKind::CommitPrepared | XactKind::AbortPrepared) {
        return Err("a COMMIT/ABORT PREPARED record has no prepared transaction id".into());
    }
    Ok(Some(XactEvent {
        lsn,
        xid: TransactionId(xid),
        time,
        kind,
    }))
}

/// Decodes the main data of an `XLOG_RESTORE_POINT` record.
pub(crate) fn parse_restore_point(
    lsn: Lsn,
    main: &[u8],
) -> std::result::Result<RestorePoint, String> {
    let mut cur = Reader { buf: main, pos: 0 };
    let time = TimestampTz(cur.i64("rp_time")?);
    let name = cur.take(RESTORE_POINT_NAME_LEN, "rp_name")?;
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(RestorePoint {
        lsn,
        time,
        name: String::from_utf8_lossy(&name[..len]).into_owned(),
    })
}

/// A bounds-checked little-endian reader over main data.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("the record data ends inside the {what}"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn skip(&mut self, n: usize, what: &str) -> std::result::Result<(), String> {
        self.take(n, what).map(|_| ())
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &str) -> std::result::Result<i64, String> {
        let b = self.take(8, what)?;
        Ok(i64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// An `int` count followed by that many items of `item` bytes.
    fn array(&mut self, item: usize, what: &str) -> std::result::Result<(), String> {
        let n = self.u32(what)? as i32;
        let n = usize::try_from(n).map_err(|_| format!("negative count {n} of {what}"))?;
        let bytes = n
            .checked_mul(item)
            .ok_or_else(|| format!("count {n} of {what} is too large"))?;
        self.skip(bytes, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn v(major: u32) -> &'static PgVersion {
        PgVersion::for_major(major).unwrap()
    }

    #[test]
    fn xid_order_wraps_like_postgres() {
        let x = TransactionId::new;
        assert!(x(3).precedes(x(4)));
        assert!(!x(4).precedes(x(3)));
        assert!(!x(4).precedes(x(4)));
        assert!(x(u32::MAX).precedes(x(3)));
        // 2^31 apart: PostgreSQL says the larger one precedes.
        assert!(x(0x8000_0005).precedes(x(5)));
        assert!(x(1).precedes(x(2)));
        assert!(x(2).precedes(x(u32::MAX)));
        assert!(!TransactionId::INVALID.is_normal());
        assert!(TransactionId::FIRST_NORMAL.is_normal());
    }

    #[test]
    fn xid_text_round_trips() {
        for s in ["0", "735", "4294967295"] {
            assert_eq!(s.parse::<TransactionId>().unwrap().to_string(), s);
        }
        for bad in ["", "-1", "4294967296", "1e3"] {
            assert_eq!(
                bad.parse::<TransactionId>().unwrap_err().kind(),
                ErrorKind::Syntax
            );
        }
    }

    #[test]
    fn timestamps_print_like_postgres_in_utc() {
        assert_eq!(
            TimestampTz::from_pg_micros(0).to_string(),
            "2000-01-01 00:00:00+00"
        );
        assert_eq!(
            TimestampTz::from_pg_micros(500_000).to_string(),
            "2000-01-01 00:00:00.5+00"
        );
        assert_eq!(
            TimestampTz::from_pg_micros(-1).to_string(),
            "1999-12-31 23:59:59.999999+00"
        );
        // 2026-11-22 03:25:40.378436 UTC, as pg_waldump printed a commit of the test cluster.
        let unix = 1_795_317_940_378_436i64;
        let t = TimestampTz::from_unix_micros(unix).unwrap();
        assert_eq!(t.to_string(), "2026-11-22 03:25:40.378436+00");
        assert_eq!(t.to_unix_micros(), Some(unix));
        assert_eq!(
            TimestampTz::from_pg_micros((1461 + 59) * 86_400_000_000).to_string(),
            "2004-02-29 00:00:00+00"
        );
        assert_eq!(TimestampTz::INFINITY.to_string(), "infinity");
        assert_eq!(TimestampTz::NEG_INFINITY.to_string(), "-infinity");
        assert_eq!(TimestampTz::from_unix_micros(i64::MIN), None);
        assert_eq!(
            TimestampTz::from_pg_micros(i64::MAX - 1).to_unix_micros(),
            None
        );
        // Extreme values print without panicking.
        let _ = TimestampTz::from_pg_micros(i64::MIN + 1).to_string();
        let _ = TimestampTz::from_pg_micros(i64::MAX - 1).to_string();
    }

    #[test]
    fn timestamp_text_round_trips() {
        for micros in [
            0i64,
            1,
            -1,
            500_000,
            847_682_740_378_436,
            -946_684_800_000_000,
            8_000_000_000_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            let t = TimestampTz::from_pg_micros(micros);
            let text = t.to_string();
            assert_eq!(text.parse::<TimestampTz>().unwrap(), t, "{text}");
        }
        for bad in [
            "",
            "2000-01-01 00:00:00",
            "2000-01-01T00:00:00+00",
            "2000-1-01 00:00:00+00",
            "2000-02-30 00:00:00+00",
            "2001-02-29 00:00:00+00",
            "2000-13-01 00:00:00+00",
            "2000-01-01 24:00:00+00",
            "2000-01-01 00:60:00+00",
            "2000-01-01 00:00:00.+00",
            "2000-01-01 00:00:00.1234567+00",
            "2000-01-01 00:00+00",
            "2000-01-01-01 00:00:00+00",
        ] {
            assert_eq!(
                bad.parse::<TimestampTz>().unwrap_err().kind(),
                ErrorKind::Syntax,
                "{bad:?}"
            );
        }
        assert_eq!(
            "2000-02-29 12:00:00+00".parse::<TimestampTz>().unwrap(),
            TimestampTz::from_pg_micros((59 * 86_400 + 43_200) * 1_000_000)
        );
    }

    fn commit_data(time: i64, xinfo: Option<u32>, extra: &[u8]) -> Vec<u8> {
        let mut d = time.to_le_bytes().to_vec();
        if let Some(x) = xinfo {
            d.extend_from_slice(&x.to_le_bytes());
        }
        d.extend_from_slice(extra);
        d
    }

    #[test]
    fn parses_a_minimal_commit_and_abort() {
        let lsn = Lsn::new(0x100);
        let e = parse_xact(
            lsn,
            735,
            XLOG_XACT_COMMIT,
            &commit_data(42, None, &[]),
            v(13),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            e,
            XactEvent {
                lsn,
                xid: TransactionId(735),
                time: TimestampTz(42),
                kind: XactKind::Commit
            }
        );
        let e = parse_xact(lsn, 9, XLOG_XACT_ABORT, &commit_data(7, None, &[]), v(18))
            .unwrap()
            .unwrap();
        assert_eq!(e.kind, XactKind::Abort);
        assert_eq!(e.xid.get(), 9);
        assert!(parse_xact(lsn, 1, 0x10, &[], v(15)).unwrap().is_none());
        assert!(parse_xact(lsn, 1, 0x50, &[], v(15)).unwrap().is_none());
    }

    /// A commit prepared record with every optional part before the two-phase xid.
    fn full_commit_prepared(stats_item: usize) -> Vec<u8> {
        let xinfo = XACT_XINFO_HAS_DBINFO
            | XACT_XINFO_HAS_SUBXACTS
            | XACT_XINFO_HAS_RELFILELOCATORS
            | XACT_XINFO_HAS_DROPPED_STATS
            | XACT_XINFO_HAS_INVALS
            | XACT_XINFO_HAS_TWOPHASE
            | (1 << 7); // HAS_GID
        let mut extra = vec![0u8; 8]; // dbinfo
        extra.extend_from_slice(&2u32.to_le_bytes());
        extra.extend_from_slice(&[0u8; 8]);
        extra.extend_from_slice(&1u32.to_le_bytes());
        extra.extend_from_slice(&[0u8; 12]);
        extra.extend_from_slice(&3u32.to_le_bytes());
        extra.extend_from_slice(&vec![0u8; 3 * stats_item]);
        extra.extend_from_slice(&2u32.to_le_bytes());
        extra.extend_from_slice(&[0u8; 32]);
        extra.extend_from_slice(&4242u32.to_le_bytes());
        extra.extend_from_slice(b"gid\0");
        commit_data(99, Some(xinfo), &extra)
    }

    #[test]
    fn commit_prepared_reports_the_prepared_xid_per_version() {
        let lsn = Lsn::new(8);
        let info = XLOG_XACT_COMMIT_PREPARED | XLOG_XACT_HAS_INFO;
        for (major, item) in [(15, 12), (16, 12), (17, 12), (18, 16)] {
            let e = parse_xact(lsn, 0, info, &full_commit_prepared(item), v(major))
                .unwrap()
                .unwrap();
            assert_eq!(e.xid.get(), 4242, "PostgreSQL {major}");
            assert_eq!(e.kind, XactKind::CommitPrepared);
            assert_eq!(e.time.as_pg_micros(), 99);
        }
        // With the wrong item size, the walk lands elsewhere.
        let e = parse_xact(lsn, 0, info, &full_commit_prepared(16), v(17))
            .unwrap()
            .unwrap();
        assert_ne!(e.xid.get(), 4242);
    }

    #[test]
    fn abort_prepared_has_no_invalidations() {
        let xinfo = XACT_XINFO_HAS_SUBXACTS | XACT_XINFO_HAS_INVALS | XACT_XINFO_HAS_TWOPHASE;
        let mut extra = 1u32.to_le_bytes().to_vec();
        extra.extend_from_slice(&[0u8; 4]);
        extra.extend_from_slice(&777u32.to_le_bytes());
        let data = commit_data(5, Some(xinfo), &extra);
        let e = parse_xact(
            Lsn::new(8),
            0,
            XLOG_XACT_ABORT_PREPARED | XLOG_XACT_HAS_INFO,
            &data,
            v(14),
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.xid.get(), 777);
        assert_eq!(e.kind, XactKind::AbortPrepared);
        // A plain commit keeps the header xid even with a two-phase part.
        let e = parse_xact(
            Lsn::new(8),
            31,
            XLOG_XACT_COMMIT | XLOG_XACT_HAS_INFO,
            &commit_data(5, Some(XACT_XINFO_HAS_TWOPHASE), &7u32.to_le_bytes()),
            v(14),
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.xid.get(), 31);
    }

    #[test]
    fn xact_parse_errors_name_the_part() {
        let lsn = Lsn::new(8);
        for (info, data, needle) in [
            (XLOG_XACT_COMMIT, vec![0u8; 7], "xact_time"),
            (
                XLOG_XACT_COMMIT | XLOG_XACT_HAS_INFO,
                vec![0u8; 10],
                "xinfo",
            ),
            (
                XLOG_XACT_COMMIT | XLOG_XACT_HAS_INFO,
                commit_data(0, Some(XACT_XINFO_HAS_SUBXACTS), &5u32.to_le_bytes()),
                "subtransactions",
            ),
            (
                XLOG_XACT_COMMIT | XLOG_XACT_HAS_INFO,
                commit_data(0, Some(XACT_XINFO_HAS_SUBXACTS), &u32::MAX.to_le_bytes()),
                "negative count",
            ),
            (
                XLOG_XACT_COMMIT_PREPARED,
                commit_data(0, None, &[]),
                "no prepared transaction id",
            ),
            (
                XLOG_XACT_COMMIT | XLOG_XACT_HAS_INFO,
                commit_data(0, Some(XACT_XINFO_HAS_DBINFO), &[0; 4]),
                "database info",
            ),
        ] {
            let e = parse_xact(lsn, 1, info, &data, v(16)).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn parses_restore_points() {
        let mut data = 1234i64.to_le_bytes().to_vec();
        let mut name = [0u8; 64];
        name[..6].copy_from_slice(b"rp one");
        data.extend_from_slice(&name);
        let rp = parse_restore_point(Lsn::new(0x154C7A0), &data).unwrap();
        assert_eq!(rp.name, "rp one");
        assert_eq!(rp.time.as_pg_micros(), 1234);
        assert_eq!(rp.lsn, Lsn::new(0x154C7A0));
        // A name using all 64 bytes without NUL is taken whole; invalid UTF-8 is replaced.
        let mut data = 0i64.to_le_bytes().to_vec();
        data.extend_from_slice(&[0xFFu8; 64]);
        assert_eq!(
            parse_restore_point(Lsn::new(8), &data)
                .unwrap()
                .name
                .chars()
                .count(),
            64
        );
        let e = parse_restore_point(Lsn::new(8), &[0u8; 71]).unwrap_err();
        assert!(e.contains("rp_name"), "{e}");
        assert!(XactKind::from_code('x').is_none());
        for k in [
            XactKind::Commit,
            XactKind::Abort,
            XactKind::CommitPrepared,
            XactKind::AbortPrepared,
        ] {
            assert_eq!(XactKind::from_code(k.code()), Some(k));
        }
    }
}
