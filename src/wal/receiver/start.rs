//! Where `receive-wal` starts, and the small rules around it, as pure functions:
//! the newest segment or `.partial` of the streaming directory (pg_receivewal's
//! `FindStreamingStart`, PROTOCOL.md §5.7), whether `synchronous_standby_names` names
//! our application (PostgreSQL's `syncrep_gram.y`), and `SHOW wal_segment_size`.

use barman_protocol::wal::WalFileName;
use barman_protocol::{Lsn, TimelineId, WalSegNo, WalSegmentSize};

/// The newest WAL file of the streaming directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPosition {
    /// Its timeline.
    pub timeline: TimelineId,
    /// Its segment.
    pub segno: WalSegNo,
    /// Whether it is a `.partial` (streaming restarts at its beginning) or complete
    /// (streaming restarts at the next segment).
    pub partial: bool,
}

impl LocalPosition {
    /// The segment streaming resumes at.
    pub fn resume_segno(&self) -> Option<WalSegNo> {
        if self.partial {
            Some(self.segno)
        } else {
            self.segno.checked_add(1)
        }
    }
}

/// A file of the streaming directory that is skipped when looking for the start point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// The file name.
    pub name: String,
    /// Its size.
    pub size: u64,
}

/// The newest segment of `files` (name, size), as pg_receivewal picks it: the highest
/// segment number, then the highest timeline, and a complete file before a `.partial` of
/// the same name. A complete file whose size is not the segment size is skipped and
/// returned; a `.partial` may have any size (it is rewritten from its beginning).
pub fn newest_local(
    files: &[(String, u64)],
    seg_size: WalSegmentSize,
) -> (Option<LocalPosition>, Vec<SkippedFile>) {
    let mut best: Option<LocalPosition> = None;
    let mut skipped = Vec::new();
    for (name, size) in files {
        let (timeline, segno, partial) = match WalFileName::parse(name, seg_size) {
            Ok(WalFileName::Segment { timeline, segno }) => (timeline, segno, false),
            Ok(WalFileName::Partial { timeline, segno }) => (timeline, segno, true),
            _ => continue,
        };
        if !partial && *size != u64::from(seg_size.bytes()) {
            skipped.push(SkippedFile {
                name: name.clone(),
                size: *size,
            });
            continue;
        }
        let candidate = LocalPosition {
            timeline,
            segno,
            partial,
        };
        // Order: segment number, timeline, complete before partial.
        let key = |p: &LocalPosition| (p.segno, p.timeline, !p.partial);
        if best.map_or(true, |b| key(&candidate) > key(&b)) {
            best = Some(candidate);
        }
    }
    (best, skipped)
}

/// The segment holding `lsn`, which streaming starts at (always a segment start).
pub fn segment_of(lsn: Lsn, seg_size: WalSegmentSize) -> WalSegNo {
    lsn.segment_number(seg_size)
}

/// Whether `synchronous_standby_names` makes `application_name` a (potential)
/// synchronous standby: it is listed (case-insensitively, quotes removed) or `*` is.
/// Accepts the three forms of `syncrep_gram.y`: `a, b`, `N (a, b)`,
/// `FIRST|ANY N (a, b)`.
pub fn names_synchronous_standby(setting: &str, application_name: &str) -> bool {
    let text = setting.trim();
    if text.is_empty() {
        return false;
    }
    let list = match (text.find('('), text.rfind(')')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    list.split(',').map(str::trim).any(|name| {
        let unquoted = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .map(|n| n.replace("\"\"", "\""));
        match unquoted {
            // A quoted `"*"` is a name, not the wildcard.
            Some(n) => n.eq_ignore_ascii_case(application_name),
            None => name == "*" || name.eq_ignore_ascii_case(application_name),
        }
    })
}

/// The value of `SHOW wal_segment_size` (`16MB`, `1GB`, `512kB`) in bytes.
pub fn parse_size_setting(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// The name of the segment that ends at or contains `lsn` for an end position: the
/// segment holding `lsn - 1` when `lsn` is a segment boundary (how `pg_walfile_name`
/// named it before PostgreSQL 17).
pub fn segment_name_before(
    timeline: TimelineId,
    lsn: Lsn,
    seg_size: WalSegmentSize,
) -> Option<String> {
    let segno = if lsn.is_segment_start(seg_size) {
        lsn.prev_segment_number(seg_size)?
    } else {
        lsn.segment_number(seg_size)
    };
    Some(barman_protocol::wal::names::segment_file_name(
        timeline, segno, seg_size,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 16 << 20;

    fn tli(n: u32) -> TimelineId {
        TimelineId::new(n).unwrap()
    }

    #[test]
    fn the_newest_segment_wins_and_complete_beats_partial() {
        let files = vec![
            ("000000010000000000000004".to_string(), SEG),
            ("000000010000000000000005.partial".to_string(), SEG),
            ("000000010000000000000005".to_string(), SEG),
            ("00000001.history".to_string(), 10),
            ("junk".to_string(), 1),
        ];
        let (best, skipped) = newest_local(&files, WalSegmentSize::DEFAULT);
        let best = best.unwrap();
        assert_eq!(best.segno, WalSegNo::new(5));
        assert!(!best.partial);
        assert_eq!(best.resume_segno(), Some(WalSegNo::new(6)));
        assert!(skipped.is_empty());
    }

    #[test]
    fn a_partial_restarts_at_its_own_segment_and_may_be_empty() {
        let files = vec![
            ("000000010000000000000004".to_string(), SEG),
            ("000000010000000000000005.partial".to_string(), 0),
        ];
        let best = newest_local(&files, WalSegmentSize::DEFAULT).0.unwrap();
        assert!(best.partial);
        assert_eq!(best.resume_segno(), Some(WalSegNo::new(5)));
    }

    #[test]
    fn the_higher_timeline_wins_on_the_same_segment() {
        let files = vec![
            ("000000010000000000000006.partial".to_string(), SEG),
            ("000000020000000000000006".to_string(), SEG),
        ];
        let best = newest_local(&files, WalSegmentSize::DEFAULT).0.unwrap();
        assert_eq!(best.timeline, tli(2));
        assert!(!best.partial);
    }

    #[test]
    fn complete_files_of_the_wrong_size_are_skipped() {
        let files = vec![
            ("000000010000000000000004".to_string(), SEG),
            ("000000010000000000000005".to_string(), 100),
        ];
        let (best, skipped) = newest_local(&files, WalSegmentSize::DEFAULT);
        assert_eq!(best.unwrap().segno, WalSegNo::new(4));
        assert_eq!(skipped[0].name, "000000010000000000000005");
        assert_eq!(newest_local(&[], WalSegmentSize::DEFAULT).0, None);
    }

    #[test]
    fn synchronous_standby_names_in_every_form() {
        let app = "barman_receive_wal";
        assert!(names_synchronous_standby("barman_receive_wal", app));
        assert!(names_synchronous_standby("a, Barman_Receive_Wal", app));
        assert!(names_synchronous_standby("*", app));
        assert!(names_synchronous_standby("2 (a, barman_receive_wal)", app));
        assert!(names_synchronous_standby(
            "FIRST 1 (\"barman_receive_wal\", b)",
            app
        ));
        assert!(names_synchronous_standby("ANY 1 (s1, *)", app));
        assert!(!names_synchronous_standby("", app));
        assert!(!names_synchronous_standby("standby1, standby2", app));
        assert!(!names_synchronous_standby("FIRST 1 (barman)", app));
    }

    #[test]
    fn segment_size_settings() {
        assert_eq!(parse_size_setting("16MB"), Some(16 << 20));
        assert_eq!(parse_size_setting("1GB"), Some(1 << 30));
        assert_eq!(parse_size_setting("1024kB"), Some(1 << 20));
        assert_eq!(parse_size_setting("16 MB"), Some(16 << 20));
        assert_eq!(parse_size_setting("MB"), None);
        assert_eq!(parse_size_setting("16XB"), None);
    }

    #[test]
    fn end_positions_on_a_boundary_name_the_previous_segment() {
        let size = WalSegmentSize::DEFAULT;
        assert_eq!(
            segment_name_before(tli(1), Lsn::new(0x3000000), size).unwrap(),
            "000000010000000000000002"
        );
        assert_eq!(
            segment_name_before(tli(1), Lsn::new(0x3000028), size).unwrap(),
            "000000010000000000000003"
        );
    }
}
