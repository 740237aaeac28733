//! WAL positions and the quantities derived from them: [`Lsn`], [`TimelineId`], [`WalSegNo`]
//! and [`WalSegmentSize`].
//!
//! Mirrors `src/include/access/xlogdefs.h` (`XLogRecPtr`, `TimeLineID`, `XLogSegNo`), the
//! segment macros of `src/include/access/xlog_internal.h` (`XLByteToSeg`, `XLByteToPrevSeg`,
//! `XLogSegmentOffset`, `XLogSegNoOffsetToRecPtr`, `XLogSegmentsPerXLogId`,
//! `IsValidWalSegSize`) and the text form of `src/backend/utils/adt/pg_lsn.c` (`pg_lsn_in`,
//! `pg_lsn_out`). The text form is `X/X`: two groups of one to eight hexadecimal digits;
//! parsing accepts any case and zero padding (`00000000/03000028`), display uses upper case
//! without padding (`0/3000028`), as PostgreSQL 13 to 18 print it. See PROTOCOL.md §6.1.
//!
//! Arithmetic is checked: every operation that could overflow returns `Option`, so bytes from
//! the network never cause a panic.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// MAXIMUM_ALIGNOF on every 64-bit platform PostgreSQL supports (PROTOCOL.md §7).
pub const MAXIMUM_ALIGNOF: u64 = 8;

/// A WAL position (`XLogRecPtr`): a byte offset in the endless WAL stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

impl Lsn {
    /// `InvalidXLogRecPtr`, printed `0/0`.
    pub const INVALID: Lsn = Lsn(0);
    /// The largest position.
    pub const MAX: Lsn = Lsn(u64::MAX);

    /// Wraps a raw 64-bit position.
    pub const fn new(value: u64) -> Lsn {
        Lsn(value)
    }

    /// The raw 64-bit position.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// False for `0/0` (`XLogRecPtrIsInvalid`).
    pub const fn is_valid(self) -> bool {
        self.0 != 0
    }

    /// `self + bytes`, or `None` on overflow.
    pub const fn checked_add(self, bytes: u64) -> Option<Lsn> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Lsn(v)),
            None => None,
        }
    }

    /// `self - bytes`, or `None` below `0/0`.
    pub const fn checked_sub(self, bytes: u64) -> Option<Lsn> {
        match self.0.checked_sub(bytes) {
            Some(v) => Some(Lsn(v)),
            None => None,
        }
    }

    /// Bytes from `earlier` to `self`, or `None` if `earlier` is after `self`.
    pub const fn checked_distance(self, earlier: Lsn) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }

    /// Rounds up to the next multiple of 8 (`MAXALIGN`), or `None` on overflow.
    pub const fn max_align(self) -> Option<Lsn> {
        match self.0.checked_add(MAXIMUM_ALIGNOF - 1) {
            Some(v) => Some(Lsn(v & !(MAXIMUM_ALIGNOF - 1))),
            None => None,
        }
    }

    /// The segment holding this position (`XLByteToSeg`).
    pub const fn segment_number(self, size: WalSegmentSize) -> WalSegNo {
        WalSegNo(self.0 / size.0 as u64)
    }

    /// The segment holding the byte just before this position (`XLByteToPrevSeg`): the one
    /// to use for an *end* position such as a backup's stop LSN. `None` for `0/0`.
    pub const fn prev_segment_number(self, size: WalSegmentSize) -> Option<WalSegNo> {
        match self.0.checked_sub(1) {
            Some(v) => Some(WalSegNo(v / size.0 as u64)),
            None => None,
        }
    }

    /// Offset of this position inside its segment (`XLogSegmentOffset`).
    pub const fn segment_offset(self, size: WalSegmentSize) -> u32 {
        (self.0 & (size.0 as u64 - 1)) as u32
    }

    /// True when this position is the first byte of a segment.
    pub const fn is_segment_start(self, size: WalSegmentSize) -> bool {
        self.segment_offset(size) == 0
    }

    /// Offset of this position inside its WAL page of `block_size` bytes (a power of two).
    pub const fn page_offset(self, block_size: u32) -> u32 {
        (self.0 & (block_size as u64 - 1)) as u32
    }

    /// The start of the WAL page of `block_size` bytes (a power of two) holding this position.
    pub const fn page_start(self, block_size: u32) -> Lsn {
        Lsn(self.0 & !(block_size as u64 - 1))
    }

    /// The position `offset` bytes into segment `segno` (`XLogSegNoOffsetToRecPtr`), or `None`
    /// when it does not fit in 64 bits or `offset` is not inside a segment.
    pub fn from_segment_offset(segno: WalSegNo, offset: u32, size: WalSegmentSize) -> Option<Lsn> {
        if offset >= size.0 {
            return None;
        }
        segno
            .0
            .checked_mul(size.0 as u64)
            .and_then(|v| v.checked_add(offset as u64))
            .map(Lsn)
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Lsn {
        Lsn(value)
    }
}

impl From<Lsn> for u64 {
    fn from(value: Lsn) -> u64 {
        value.0
    }
}

impl fmt::Display for Lsn {
    /// `pg_lsn_out`: `%X/%X`, upper case, no padding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 as u32)
    }
}

impl FromStr for Lsn {
    type Err = Error;

    /// `pg_lsn_in`: one to eight hex digits, `/`, one to eight hex digits, nothing else.
    fn from_str(s: &str) -> Result<Lsn> {
        fn half(part: &str, whole: &str) -> Result<u64> {
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::syntax(format!(
                    "invalid LSN \"{whole}\": expected two groups of 1 to 8 hexadecimal digits separated by \"/\", like 0/3000028"
                )));
            }
            u64::from_str_radix(part, 16)
                .map_err(|_| Error::syntax(format!("invalid LSN \"{whole}\"")))
        }
        let (hi, lo) = s.split_once('/').ok_or_else(|| {
            Error::syntax(format!(
                "invalid LSN \"{s}\": expected two groups of 1 to 8 hexadecimal digits separated by \"/\", like 0/3000028"
            ))
        })?;
        Ok(Lsn((half(hi, s)? << 32) | half(lo, s)?))
    }
}

/// A timeline (`TimeLineID`). Timeline 0 does not exist; the first timeline is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimelineId(u32);

impl TimelineId {
    /// The timeline `initdb` creates.
    pub const FIRST: TimelineId = TimelineId(1);

    /// Wraps a timeline number; 0 is rejected.
    pub fn new(value: u32) -> Result<TimelineId> {
        if value == 0 {
            return Err(Error::invalid("invalid timeline 0: timelines start at 1"));
        }
        Ok(TimelineId(value))
    }

    /// The timeline number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The timeline a promotion of this one creates (`self + 1`), or `None` at `u32::MAX`.
    pub fn next(self) -> Option<TimelineId> {
        self.0.checked_add(1).map(TimelineId)
    }
}

impl fmt::Display for TimelineId {
    /// Decimal, as in history files, `pg_controldata` and `recovery_target_timeline`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for TimelineId {
    type Err = Error;

    /// Decimal digits only.
    fn from_str(s: &str) -> Result<TimelineId> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::syntax(format!(
                "invalid timeline \"{s}\": expected a decimal number"
            )));
        }
        let v: u32 = s
            .parse()
            .map_err(|_| Error::syntax(format!("invalid timeline \"{s}\": out of range")))?;
        TimelineId::new(v)
    }
}

/// A WAL segment number (`XLogSegNo`): the position divided by the segment size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalSegNo(u64);

impl WalSegNo {
    /// Wraps a raw segment number.
    pub const fn new(value: u64) -> WalSegNo {
        WalSegNo(value)
    }

    /// The raw segment number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + n`, or `None` on overflow.
    pub const fn checked_add(self, n: u64) -> Option<WalSegNo> {
        match self.0.checked_add(n) {
            Some(v) => Some(WalSegNo(v)),
            None => None,
        }
    }

    /// `self - n`, or `None` below 0.
    pub const fn checked_sub(self, n: u64) -> Option<WalSegNo> {
        match self.0.checked_sub(n) {
            Some(v) => Some(WalSegNo(v)),
            None => None,
        }
    }

    /// The position of the first byte of this segment, or `None` past 2^64.
    pub fn start_lsn(self, size: WalSegmentSize) -> Option<Lsn> {
        Lsn::from_segment_offset(self, 0, size)
    }

    /// The position just after the last byte of this segment (the next segment's start), or
    /// `None` past 2^64.
    pub fn end_lsn(self, size: WalSegmentSize) -> Option<Lsn> {
        self.0
            .checked_add(1)
            .and_then(|n| n.checked_mul(size.0 as u64))
            .map(Lsn)
    }
}

impl fmt::Display for WalSegNo {
    /// Decimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for WalSegNo {
    type Err = Error;

    /// Decimal digits only.
    fn from_str(s: &str) -> Result<WalSegNo> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::syntax(format!(
                "invalid segment number \"{s}\": expected a decimal number"
            )));
        }
        s.parse()
            .map(WalSegNo)
            .map_err(|_| Error::syntax(format!("invalid segment number \"{s}\": out of range")))
    }
}

/// `wal_segment_size`: a power of two from 1 MiB to 1 GiB, fixed at `initdb`
/// (`IsValidWalSegSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalSegmentSize(u32);

impl WalSegmentSize {
    /// The smallest valid size, 1 MiB (`WalSegMinSize`).
    pub const MIN: WalSegmentSize = WalSegmentSize(1 << 20);
    /// The largest valid size, 1 GiB (`WalSegMaxSize`).
    pub const MAX: WalSegmentSize = WalSegmentSize(1 << 30);
    /// The default, 16 MiB.
    pub const DEFAULT: WalSegmentSize = WalSegmentSize(16 << 20);

    /// Validates a size in bytes.
    pub fn new(bytes: u32) -> Result<WalSegmentSize> {
        if !bytes.is_power_of_two() || !(Self::MIN.0..=Self::MAX.0).contains(&bytes) {
            return Err(Error::invalid(format!(
                "invalid WAL segment size {bytes} bytes: it must be a power of two between 1MB and 1GB"
            )));
        }
        Ok(WalSegmentSize(bytes))
    }

    /// Validates a size in MiB (`initdb --wal-segsize`).
    pub fn from_mib(mib: u32) -> Result<WalSegmentSize> {
        match mib.checked_mul(1 << 20) {
            Some(bytes) => WalSegmentSize::new(bytes),
            None => Err(Error::invalid(format!(
                "invalid WAL segment size {mib}MB: it must be a power of two between 1MB and 1GB"
            ))),
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u32 {
        self.0
    }

    /// How many segments share the middle 8 digits of a file name (`XLogSegmentsPerXLogId`).
    pub const fn segments_per_xlogid(self) -> u64 {
        (1u64 << 32) / self.0 as u64
    }
}

impl Default for WalSegmentSize {
    fn default() -> Self {
        WalSegmentSize::DEFAULT
    }
}

impl fmt::Display for WalSegmentSize {
    /// As `SHOW wal_segment_size` prints it: `16MB`, `1GB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 30 {
            write!(f, "{}GB", self.0 >> 30)
        } else {
            write!(f, "{}MB", self.0 >> 20)
        }
    }
}

impl FromStr for WalSegmentSize {
    type Err = Error;

    /// Accepts a byte count (`16777216`) or a number with a unit as PostgreSQL prints it
    /// (`16MB`, `1GB`, `1024kB`).
    fn from_str(s: &str) -> Result<WalSegmentSize> {
        let digits = s.bytes().take_while(|b| b.is_ascii_digit()).count();
        let (num, unit) = s.split_at(digits);
        let multiplier: u64 = match unit {
            "" | "B" => 1,
            "kB" => 1 << 10,
            "MB" => 1 << 20,
            "GB" => 1 << 30,
            _ => {
                return Err(Error::syntax(format!(
                    "invalid WAL segment size \"{s}\": expected bytes or a number with kB, MB or GB"
                )))
            }
        };
        let n: u64 = num.parse().map_err(|_| {
            Error::syntax(format!(
                "invalid WAL segment size \"{s}\": expected bytes or a number with kB, MB or GB"
            ))
        })?;
        let bytes = n
            .checked_mul(multiplier)
            .and_then(|b| u32::try_from(b).ok())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "invalid WAL segment size \"{s}\": it must be a power of two between 1MB and 1GB"
                ))
            })?;
        WalSegmentSize::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
    }

    #[test]
    fn lsn_text_round_trips() {
        for s in [
            "0/0",
            "0/3000028",
            "16/B374D848",
            "FFFFFFFF/FFFFFFFF",
            "1/0",
        ] {
            let l = lsn(s);
            assert_eq!(l.to_string(), s);
            assert_eq!(lsn(&l.to_string()), l);
        }
        assert_eq!(lsn("16/B374D848").as_u64(), 0x16_B374_D848);
    }

    #[test]
    fn lsn_parse_accepts_padding_and_lower_case() {
        assert_eq!(lsn("00000000/03000028"), Lsn::new(0x3000028));
        assert_eq!(lsn("0/03000028"), Lsn::new(0x3000028));
        assert_eq!(lsn("16/b374d848"), Lsn::new(0x16_B374_D848));
        assert_eq!(lsn("00000000/03000028").to_string(), "0/3000028");
    }

    #[test]
    fn lsn_parse_rejects_malformed_text() {
        for bad in [
            "",
            "/",
            "0/",
            "/0",
            "0",
            "0/0/0",
            "123456789/0",
            "0/123456789",
            "g/0",
            " 0/0",
            "0/0 ",
            "+1/0",
            "0x1/0",
        ] {
            let e = bad.parse::<Lsn>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Syntax, "{bad:?}");
            assert!(e.to_string().starts_with("invalid LSN"), "{e}");
        }
    }

    #[test]
    fn lsn_checked_arithmetic() {
        assert_eq!(Lsn::new(10).checked_add(5), Some(Lsn::new(15)));
        assert_eq!(Lsn::MAX.checked_add(1), None);
        assert_eq!(Lsn::new(10).checked_sub(11), None);
        assert_eq!(Lsn::new(10).checked_sub(10), Some(Lsn::INVALID));
        assert_eq!(Lsn::new(10).checked_distance(Lsn::new(4)), Some(6));
        assert_eq!(Lsn::new(4).checked_distance(Lsn::new(10)), None);
        assert_eq!(Lsn::new(0x9A).max_align(), Some(Lsn::new(0xA0)));
        assert_eq!(Lsn::new(0xA0).max_align(), Some(Lsn::new(0xA0)));
        assert_eq!(Lsn::MAX.max_align(), None);
        assert!(!Lsn::INVALID.is_valid());
        assert!(Lsn::new(1).is_valid());
        assert_eq!(u64::from(Lsn::from(7u64)), 7);
    }

    #[test]
    fn lsn_segment_and_page_math() {
        let s16 = WalSegmentSize::DEFAULT;
        let l = lsn("2/8C000028");
        assert_eq!(l.segment_number(s16), WalSegNo::new(0x28C));
        assert_eq!(l.segment_offset(s16), 0x28);
        assert!(!l.is_segment_start(s16));
        assert!(lsn("2/8C000000").is_segment_start(s16));
        assert_eq!(
            lsn("2/8C000000").prev_segment_number(s16),
            Some(WalSegNo::new(0x28B))
        );
        assert_eq!(l.prev_segment_number(s16), Some(WalSegNo::new(0x28C)));
        assert_eq!(Lsn::INVALID.prev_segment_number(s16), None);
        assert_eq!(l.page_offset(8192), 0x28);
        assert_eq!(lsn("0/1002010").page_start(8192), lsn("0/1002000"));
        assert_eq!(
            Lsn::from_segment_offset(WalSegNo::new(0x28C), 0x28, s16),
            Some(l)
        );
        assert_eq!(
            Lsn::from_segment_offset(WalSegNo::new(1), 1 << 24, s16),
            None
        );
        assert_eq!(
            Lsn::from_segment_offset(WalSegNo::new(u64::MAX), 0, s16),
            None
        );
        let one_gb = WalSegmentSize::MAX;
        assert_eq!(l.segment_number(one_gb), WalSegNo::new(10));
        assert_eq!(l.segment_offset(one_gb), 0xC000028);
    }

    #[test]
    fn timeline_round_trips_and_rejects_zero() {
        for s in ["1", "2", "4294967295"] {
            let t: TimelineId = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert_eq!(TimelineId::FIRST.get(), 1);
        assert_eq!(TimelineId::FIRST.next(), Some(TimelineId::new(2).unwrap()));
        assert_eq!(TimelineId::new(u32::MAX).unwrap().next(), None);
        assert_eq!(
            "0".parse::<TimelineId>().unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        for bad in ["", "-1", "x", "4294967296", " 1"] {
            assert_eq!(
                bad.parse::<TimelineId>().unwrap_err().kind(),
                ErrorKind::Syntax,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn segno_round_trips_and_bounds() {
        for s in ["0", "12", "18446744073709551615"] {
            let n: WalSegNo = s.parse().unwrap();
            assert_eq!(n.to_string(), s);
        }
        assert!("".parse::<WalSegNo>().is_err());
        assert!("18446744073709551616".parse::<WalSegNo>().is_err());
        assert!("a".parse::<WalSegNo>().is_err());
        let n = WalSegNo::new(3);
        assert_eq!(n.checked_add(1), Some(WalSegNo::new(4)));
        assert_eq!(WalSegNo::new(u64::MAX).checked_add(1), None);
        assert_eq!(WalSegNo::new(0).checked_sub(1), None);
        assert_eq!(n.checked_sub(1), Some(WalSegNo::new(2)));
        assert_eq!(n.start_lsn(WalSegmentSize::DEFAULT), Some(lsn("0/3000000")));
        assert_eq!(n.end_lsn(WalSegmentSize::DEFAULT), Some(lsn("0/4000000")));
        assert_eq!(WalSegNo::new(u64::MAX).end_lsn(WalSegmentSize::MIN), None);
    }

    #[test]
    fn segment_size_validation() {
        for mib in [1u32, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] {
            let s = WalSegmentSize::from_mib(mib).unwrap();
            assert_eq!(s.bytes(), mib << 20);
            assert_eq!(
                s.segments_per_xlogid(),
                (1u64 << 32) / (mib as u64) / (1 << 20)
            );
            let text = s.to_string();
            assert_eq!(text.parse::<WalSegmentSize>().unwrap(), s, "{text}");
            assert_eq!(s.bytes().to_string().parse::<WalSegmentSize>().unwrap(), s);
        }
        assert_eq!(WalSegmentSize::DEFAULT.to_string(), "16MB");
        assert_eq!(WalSegmentSize::MAX.to_string(), "1GB");
        assert_eq!(
            "1024kB".parse::<WalSegmentSize>().unwrap(),
            WalSegmentSize::MIN
        );
        assert_eq!(WalSegmentSize::default(), WalSegmentSize::DEFAULT);
        for bad in [0u32, 512 << 10, 3 << 20, 2 << 30, 24 << 20, u32::MAX] {
            assert_eq!(
                WalSegmentSize::new(bad).unwrap_err().kind(),
                ErrorKind::InvalidValue,
                "{bad}"
            );
        }
        assert!(WalSegmentSize::from_mib(u32::MAX).is_err());
        assert_eq!(
            "16 MB".parse::<WalSegmentSize>().unwrap_err().kind(),
            ErrorKind::Syntax
        );
        assert_eq!(
            "MB".parse::<WalSegmentSize>().unwrap_err().kind(),
            ErrorKind::Syntax
        );
        assert_eq!(
            "8GB".parse::<WalSegmentSize>().unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            "3MB".parse::<WalSegmentSize>().unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
    }
}
