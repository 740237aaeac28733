//! Timeline history files (`%08X.history`): parse and write.
//!
//! Mirrors `readTimeLineHistory`, `writeTimeLineHistory`, `tliOfPointInHistory`,
//! `tliSwitchPoint` and `tliInHistory` in `src/backend/access/transam/timeline.c`
//! (PROTOCOL.md §6.3). A file named after timeline N lists every ancestor of N, oldest first,
//! one line each: `<parent tli>\t<switch point X/X>\t<reason>`. Timeline P is valid up to (not
//! including) its switch point; the next timeline begins there. Lines that are blank or start
//! with `#` (after leading white space) are ignored. The server copies the parent's file and
//! appends `"\n"` plus the new line, so multi-entry files have blank lines between entries;
//! [`TimelineHistory::to_text`] writes exactly that form.

use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId};

/// One line of a history file: `parent` was valid up to `switchpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineHistoryEntry {
    /// The ancestor timeline.
    pub parent: TimelineId,
    /// Where the ancestor ends and its child begins.
    pub switchpoint: Lsn,
    /// The free-text reason the server wrote (`no recovery target specified`, ...). Never
    /// parse it.
    pub reason: String,
}

/// The ancestry of one timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineHistory {
    timeline: TimelineId,
    entries: Vec<TimelineHistoryEntry>,
}

impl TimelineHistory {
    /// Builds a history for `timeline`, checking what the server checks: ancestors in strictly
    /// increasing order, all below `timeline`.
    pub fn new(
        timeline: TimelineId,
        entries: Vec<TimelineHistoryEntry>,
    ) -> Result<TimelineHistory> {
        let mut last: Option<TimelineId> = None;
        for e in &entries {
            if last.is_some_and(|l| e.parent <= l) {
                return Err(Error::syntax(format!(
                    "invalid history of timeline {timeline}: timeline {} is listed after timeline {}; timeline IDs must be in increasing sequence",
                    e.parent,
                    last.map(|l| l.get()).unwrap_or_default()
                )));
            }
            if e.parent >= timeline {
                return Err(Error::syntax(format!(
                    "invalid history of timeline {timeline}: it lists timeline {}; timeline IDs must be less than the child timeline's ID",
                    e.parent
                )));
            }
            if e.reason.contains('\n') {
                return Err(Error::invalid(format!(
                    "invalid history of timeline {timeline}: the reason for timeline {} spans lines",
                    e.parent
                )));
            }
            last = Some(e.parent);
        }
        Ok(TimelineHistory { timeline, entries })
    }

    /// The history of timeline 1 (or of any timeline created without a parent): no entries.
    pub fn empty(timeline: TimelineId) -> TimelineHistory {
        TimelineHistory {
            timeline,
            entries: Vec::new(),
        }
    }

    /// Parses the contents of `timeline`'s history file (`readTimeLineHistory`).
    pub fn parse(timeline: TimelineId, text: &str) -> Result<TimelineHistory> {
        let mut entries = Vec::new();
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |why: &str| {
                Error::syntax(format!(
                    "syntax error in history file of timeline {timeline}, line {}: \"{}\": {why}",
                    n + 1,
                    raw.trim_end()
                ))
            };
            let digits = line.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(at("expected a numeric timeline ID"));
            }
            let parent: u32 = line[..digits]
                .parse()
                .map_err(|_| at("the timeline ID is out of range"))?;
            let parent = TimelineId::new(parent).map_err(|_| at("timeline 0 does not exist"))?;
            let rest = &line[digits..];
            let after_tli = rest.trim_start();
            if after_tli.len() == rest.len() && !rest.is_empty() {
                return Err(at("expected white space after the timeline ID"));
            }
            let lsn_len = after_tli
                .find(|c: char| c.is_whitespace())
                .unwrap_or(after_tli.len());
            let switchpoint: Lsn = after_tli[..lsn_len]
                .parse()
                .map_err(|_| at("expected a write-ahead log switchpoint location"))?;
            let reason = after_tli[lsn_len..]
                .strip_prefix('\t')
                .unwrap_or_else(|| after_tli[lsn_len..].trim_start())
                .trim_end_matches('\r');
            entries.push(TimelineHistoryEntry {
                parent,
                switchpoint,
                reason: reason.to_owned(),
            });
        }
        TimelineHistory::new(timeline, entries)
    }

    /// The file's contents, byte for byte as `writeTimeLineHistory` produces them.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("{}\t{}\t{}\n", e.parent, e.switchpoint, e.reason));
        }
        out
    }

    /// The history of a new timeline branching off this one at `switchpoint`: this file's
    /// lines plus one for this timeline.
    pub fn child(
        &self,
        new_timeline: TimelineId,
        switchpoint: Lsn,
        reason: &str,
    ) -> Result<TimelineHistory> {
        let mut entries = self.entries.clone();
        entries.push(TimelineHistoryEntry {
            parent: self.timeline,
            switchpoint,
            reason: reason.to_owned(),
        });
        TimelineHistory::new(new_timeline, entries)
    }

    /// The timeline this history belongs to (the one in the file name).
    pub fn timeline(&self) -> TimelineId {
        self.timeline
    }

    /// The ancestors, oldest first.
    pub fn entries(&self) -> &[TimelineHistoryEntry] {
        &self.entries
    }

    /// `tliInHistory`: whether `tli` is this timeline or one of its ancestors.
    pub fn contains(&self, tli: TimelineId) -> bool {
        tli == self.timeline || self.entries.iter().any(|e| e.parent == tli)
    }

    /// `tliOfPointInHistory`: the timeline that WAL position `lsn` belongs to on the way to
    /// this timeline.
    pub fn timeline_at(&self, lsn: Lsn) -> TimelineId {
        self.entries
            .iter()
            .find(|e| lsn < e.switchpoint)
            .map(|e| e.parent)
            .unwrap_or(self.timeline)
    }

    /// `tliSwitchPoint`: where ancestor `tli` ends, `None` for this timeline itself (it has no
    /// end yet) or a timeline that is not an ancestor.
    pub fn switchpoint(&self, tli: TimelineId) -> Option<Lsn> {
        self.entries
            .iter()
            .find(|e| e.parent == tli)
            .map(|e| e.switchpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn tli(n: u32) -> TimelineId {
        TimelineId::new(n).unwrap()
    }

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_observed_file() {
        let h =
            TimelineHistory::parse(tli(2), "1\t0/6030948\tno recovery target specified\n").unwrap();
        assert_eq!(h.timeline(), tli(2));
        assert_eq!(
            h.entries(),
            &[TimelineHistoryEntry {
                parent: tli(1),
                switchpoint: lsn("0/6030948"),
                reason: "no recovery target specified".into()
            }]
        );
        assert_eq!(h.to_text(), "1\t0/6030948\tno recovery target specified\n");
    }

    #[test]
    fn writes_server_format_and_round_trips() {
        let h1 = TimelineHistory::empty(tli(1));
        assert_eq!(h1.to_text(), "");
        let h2 = h1
            .child(tli(2), lsn("0/6030948"), "no recovery target specified")
            .unwrap();
        let h3 = h2
            .child(tli(3), lsn("0/7000000"), "at restore point \"x y\"")
            .unwrap();
        let text = h3.to_text();
        assert_eq!(
            text,
            "1\t0/6030948\tno recovery target specified\n\n2\t0/7000000\tat restore point \"x y\"\n"
        );
        assert_eq!(TimelineHistory::parse(tli(3), &text).unwrap(), h3);
        assert_eq!(TimelineHistory::parse(tli(1), "").unwrap(), h1);
    }

    #[test]
    fn skips_comments_blank_lines_and_white_space() {
        let text = "# made by hand\n\n   \n  1 \t 0/10\treason one\r\n\t# indented comment\n2\t0/20\n3\t0/30\t\n";
        let h = TimelineHistory::parse(tli(4), text).unwrap();
        let got: Vec<_> = h
            .entries()
            .iter()
            .map(|e| (e.parent.get(), e.switchpoint.as_u64(), e.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(1, 0x10, "reason one"), (2, 0x20, ""), (3, 0x30, "")]
        );
    }

    #[test]
    fn answers_timeline_questions() {
        let h = TimelineHistory::parse(tli(3), "1\t0/100\ta\n\n2\t0/200\tb\n").unwrap();
        assert_eq!(h.timeline_at(lsn("0/0")), tli(1));
        assert_eq!(h.timeline_at(lsn("0/FF")), tli(1));
        assert_eq!(h.timeline_at(lsn("0/100")), tli(2));
        assert_eq!(h.timeline_at(lsn("0/200")), tli(3));
        assert_eq!(h.timeline_at(lsn("5/0")), tli(3));
        assert_eq!(h.switchpoint(tli(1)), Some(lsn("0/100")));
        assert_eq!(h.switchpoint(tli(2)), Some(lsn("0/200")));
        assert_eq!(h.switchpoint(tli(3)), None);
        assert!(h.contains(tli(1)) && h.contains(tli(3)));
        assert!(!h.contains(tli(4)));
    }

    #[test]
    fn rejects_malformed_lines() {
        for (text, needle) in [
            ("x\t0/10\tr\n", "expected a numeric timeline ID"),
            ("1\n", "expected a write-ahead log switchpoint location"),
            (
                "1\tzz\tr\n",
                "expected a write-ahead log switchpoint location",
            ),
            (
                "1\t0/10x\tr\n",
                "expected a write-ahead log switchpoint location",
            ),
            (
                "1x\t0/10\tr\n",
                "expected white space after the timeline ID",
            ),
            ("0\t0/10\tr\n", "timeline 0 does not exist"),
            ("99999999999\t0/10\tr\n", "out of range"),
            ("2\t0/10\tr\n1\t0/20\tr\n", "increasing sequence"),
            ("1\t0/10\tr\n1\t0/20\tr\n", "increasing sequence"),
            ("5\t0/10\tr\n", "less than the child timeline's ID"),
        ] {
            let e = TimelineHistory::parse(tli(5), text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Syntax, "{text:?}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
        let e = TimelineHistory::parse(tli(5), "\n\nfoo\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = TimelineHistory::new(
            tli(2),
            vec![TimelineHistoryEntry {
                parent: tli(1),
                switchpoint: lsn("0/1"),
                reason: "a\nb".into(),
            }],
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert!(TimelineHistory::empty(tli(2))
            .child(tli(2), lsn("0/1"), "r")
            .is_err());
    }
}
