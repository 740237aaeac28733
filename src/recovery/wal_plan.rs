//! Which WAL a recovery needs, decided before anything is written: the path of segments
//! from the backup's start along the target timeline, where the target stops recovery
//! on that path, and whether the archive holds every segment up to there.
//!
//! Barman copies every later segment of the timeline for time, xid and name targets
//! (BARMAN.md §4.3, issues #205/#951). Here the per-segment summaries written by the
//! archiver (`barman_protocol::wal::SegmentSummary`: record range, transaction ends,
//! restore points) tell where recovery will stop, so only the segments up to that one are
//! copied, and an unreachable target is refused up front:
//!
//! - time: the first segment after the backup's end holding a transaction end after the
//!   target (at or after it with `--exclusive`) is where PostgreSQL stops. None: recovery
//!   would run out of WAL first, which PostgreSQL 13+ refuses to finish.
//! - xid: summaries keep xid *ranges*; segments whose range covers the xid may hold its end.
//!   None after the backup's start proves the target unreachable; the copy goes up to the
//!   segment whose first or last transaction end is exactly that xid, else the last
//!   covering one.
//! - name: the first restore point of that name from the backup's start; before the
//!   backup's end it is refused (PostgreSQL would stop before consistency).
//! - LSN: the first segment with a record starting at or after the target (and the next
//!   one if that record continues there).
//! - immediate: the backup's own segments.
//! - none: the whole path, refusing a gap (recovery would silently stop there), plus the
//!   live `.partial` of the streaming archiver when it continues the path (Barman's
//!   community issue #393: plain restores lose it).
//!
//! A summary made without carried-over state misses the facts of a record that crosses
//! into its segment (`head=skipped`). Before refusing, the planner asks its source for
//! exact summaries (segments validated in order, with carry-over) and decides again.
//!
//! Pure: the archive is seen through [`WalSource`], so the rules are unit-tested on fakes.

use std::collections::{BTreeMap, BTreeSet};

use barman_protocol::wal::names::{parse_segment_file_name, segment_file_name};
use barman_protocol::wal::{SegmentSummary, TimelineHistory};
use barman_protocol::{Lsn, TimelineId, WalSegNo, WalSegmentSize};
use chrono::{DateTime, FixedOffset};

use super::target::{
    from_timestamptz, python_datetime, to_timestamptz, RecoveryTarget, Target, TimelineTarget,
};

/// What the plan needs to know about the backup.
#[derive(Debug, Clone)]
pub struct BackupWal {
    /// The backup's timeline.
    pub timeline: u32,
    /// Where WAL replay starts (`begin_xlog`).
    pub begin: Lsn,
    /// Where the backup is consistent (`end_xlog`).
    pub end: Lsn,
    /// `end_time`.
    pub end_time: Option<DateTime<FixedOffset>>,
    /// `xlog_segment_size`.
    pub seg_size: WalSegmentSize,
}

/// The archive, as far as the plan sees it.
pub trait WalSource {
    /// Names of the archived segments (24 hex digits).
    fn segments(&self) -> &BTreeSet<String>;
    /// The archived timeline histories, by timeline.
    fn histories(&self) -> &BTreeMap<u32, TimelineHistory>;
    /// The summary of an archived segment (stored, or computed from the segment).
    fn summary(&mut self, name: &str) -> Option<SegmentSummary>;
    /// Exact summaries of consecutive segments, validated in order with carry-over.
    fn exact_summaries(&mut self, names: &[String]) -> Vec<Option<SegmentSummary>>;
    /// The summary of the streaming archiver's live `<name>.partial`, if there is one.
    fn live_partial(&mut self, name: &str) -> Option<SegmentSummary>;
}

/// What to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalPlan {
    /// The timeline recovery follows.
    pub timeline: u32,
    /// Archived segments to copy, in order.
    pub segments: Vec<String>,
    /// Timeline history files to copy (the target timeline's ancestry).
    pub histories: Vec<String>,
    /// The live `.partial` to copy under this segment name, if the target needs it.
    pub partial: Option<String>,
    /// Where recovery is expected to stop, for the output.
    pub stop: Option<String>,
}

/// Why recovery cannot reach the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The message (Barman's wording where Barman has one).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl PlanError {
    fn new(message: impl Into<String>) -> PlanError {
        PlanError {
            message: message.into(),
            hint: None,
        }
    }
    fn hint(mut self, hint: impl Into<String>) -> PlanError {
        self.hint = Some(hint.into());
        self
    }
}

/// The segments along the target timeline from the backup's start.
struct Path {
    /// (segno, name) of each archived segment from the start, contiguous.
    present: Vec<(WalSegNo, String)>,
    /// The first missing segment after them.
    missing: String,
    /// Its timeline and number.
    missing_at: (u32, WalSegNo),
    /// Whether segments after the missing one are archived (a gap, not the end).
    gap: bool,
}

/// Decide what recovery to `target` needs from the archive.
pub fn plan(
    backup: &BackupWal,
    target: &RecoveryTarget,
    source: &mut dyn WalSource,
) -> Result<WalPlan, PlanError> {
    let size = backup.seg_size;
    let tli = target_timeline(backup, target.timeline, source)?;
    let history = timeline_history(backup, tli, source)?;
    let path = walk_path(backup, &history, source);
    let begin_seg = backup.begin.segment_number(size);
    let end_seg = backup
        .end
        .prev_segment_number(size)
        .unwrap_or(begin_seg)
        .max(begin_seg);
    // The backup's own WAL must all be there, whatever the target.
    let have_until = path.present.last().map(|(s, _)| *s);
    if have_until.map_or(true, |s| s < end_seg) {
        return Err(PlanError::new(format!(
            "WAL file {} is required by the backup and is missing from the archive",
            path.missing
        ))
        .hint("check the archiver ('barman check'), or choose another backup"));
    }
    let mut histories: Vec<String> = source
        .histories()
        .keys()
        .filter(|t| history.contains(tli_id(**t)))
        .map(|t| format!("{t:08X}.history"))
        .collect();
    histories.sort();
    let upto = |n: WalSegNo| -> Vec<String> {
        path.present
            .iter()
            .take_while(|(s, _)| *s <= n)
            .map(|(_, name)| name.clone())
            .collect()
    };
    let mut plan = WalPlan {
        timeline: tli,
        segments: Vec::new(),
        histories,
        partial: None,
        stop: None,
    };
    let end_of_archive = |path: &Path| -> String {
        match path.present.last() {
            Some((_, name)) => format!("the last archived segment is {name}"),
            None => "the archive is empty".to_string(),
        }
    };
    match &target.target {
        Some(Target::Immediate) => {
            plan.segments = upto(end_seg);
            plan.stop = Some(format!("at the end of the backup ({})", backup.end));
        }
        None => {
            if path.gap {
                return Err(gap_error(&path));
            }
            plan.segments = upto(WalSegNo::new(u64::MAX));
            let (ptli, pseg) = path.missing_at;
            if ptli == tli || history.contains(tli_id(ptli)) {
                let name = segment_file_name(tli_id(ptli), pseg, size);
                if source.live_partial(&name).is_some() {
                    plan.partial = Some(name);
                }
            }
            plan.stop = Some("at the end of the archived WAL".to_string());
        }
        Some(t) => {
            let stop = match find_stop(backup, target, t, &path, source, false)? {
                Some(stop) => Some(stop),
                // Summaries without carry-over may have missed a record crossing a segment
                // boundary: decide again on exact summaries before refusing.
                None => find_stop(backup, target, t, &path, source, true)?,
            };
            match stop {
                Some(Stop::Archived(segno, why)) => {
                    let mut segs = upto(segno);
                    if segs.len() < upto(end_seg).len() {
                        segs = upto(end_seg);
                    }
                    plan.segments = segs;
                    plan.stop = Some(why);
                }
                None => {
                    // The live .partial may hold the target.
                    let (ptli, pseg) = path.missing_at;
                    let name = segment_file_name(tli_id(ptli), pseg, size);
                    let partial = if path.gap {
                        None
                    } else {
                        source.live_partial(&name)
                    };
                    if let Some(s) = partial.filter(|s| stops_in(backup, target, t, s).is_some()) {
                        plan.segments = upto(WalSegNo::new(u64::MAX));
                        plan.partial = Some(name.clone());
                        plan.stop = Some(format!(
                            "in {name}, streamed but not yet archived ({})",
                            stops_in(backup, target, t, &s).unwrap_or_default()
                        ));
                    } else if path.gap {
                        return Err(gap_error(&path));
                    } else {
                        return Err(not_reached(
                            backup,
                            target,
                            t,
                            &path,
                            source,
                            &end_of_archive(&path),
                        ));
                    }
                }
            }
        }
    }
    Ok(plan)
}

enum Stop {
    Archived(WalSegNo, String),
}

fn tli_id(t: u32) -> TimelineId {
    TimelineId::new(t.max(1)).unwrap_or(TimelineId::FIRST)
}

fn gap_error(path: &Path) -> PlanError {
    PlanError::new(format!(
        "WAL file {} is missing from the archive while later WAL files are archived: recovery would stop there",
        path.missing
    ))
    .hint("restore the missing file into the archive (barman put-wal or the incoming directory), or choose a target before it")
}

/// Resolve `--target-tli` to a number.
fn target_timeline(
    backup: &BackupWal,
    wanted: Option<TimelineTarget>,
    source: &dyn WalSource,
) -> Result<u32, PlanError> {
    Ok(match wanted {
        None | Some(TimelineTarget::Current) => backup.timeline,
        Some(TimelineTarget::Id(n)) => n,
        Some(TimelineTarget::Latest) => {
            let from_segments = source
                .segments()
                .iter()
                .filter_map(|n| crate::wal::timeline_of(n));
            let from_histories = source.histories().keys().copied();
            from_segments
                .chain(from_histories)
                .max()
                .unwrap_or(backup.timeline)
                .max(backup.timeline)
        }
    })
}

/// The history of the target timeline, checked to descend from the backup's timeline
/// after the backup's end.
fn timeline_history(
    backup: &BackupWal,
    tli: u32,
    source: &dyn WalSource,
) -> Result<TimelineHistory, PlanError> {
    if tli == backup.timeline {
        return Ok(TimelineHistory::empty(tli_id(tli)));
    }
    if tli < backup.timeline {
        return Err(PlanError::new(format!(
            "The requested target timeline {tli} is older than the backup's timeline {}",
            backup.timeline
        )));
    }
    let history = source.histories().get(&tli).cloned().ok_or_else(|| {
        PlanError::new(format!(
            "The requested target timeline {tli} has no history file ({tli:08X}.history) in the WAL archive"
        ))
    })?;
    if !history.contains(tli_id(backup.timeline)) {
        return Err(PlanError::new(format!(
            "The requested target timeline {tli} does not descend from the backup's timeline {}",
            backup.timeline
        )));
    }
    if let Some(switch) = history.switchpoint(tli_id(backup.timeline)) {
        if switch < backup.end {
            return Err(PlanError::new(format!(
                "Timeline {tli} branched off the backup's timeline {} at {switch}, before the end of the backup ({})",
                backup.timeline, backup.end
            )));
        }
    }
    Ok(history)
}

/// The timeline recovery reads segment `segno` from: the newest timeline of the history
/// that began at or before that segment (`XLogFileReadAnyTLI`).
fn timeline_of(
    history: &TimelineHistory,
    backup_tli: u32,
    segno: WalSegNo,
    size: WalSegmentSize,
) -> u32 {
    let mut tli = history.timeline().get();
    // Entries: parent P valid until its switch point, where the next timeline begins.
    let entries = history.entries();
    for i in (0..entries.len()).rev() {
        let begin_of_next = entries[i].switchpoint.segment_number(size);
        if segno >= begin_of_next {
            return tli;
        }
        tli = entries[i].parent.get();
    }
    tli.max(backup_tli)
}

fn walk_path(backup: &BackupWal, history: &TimelineHistory, source: &dyn WalSource) -> Path {
    let size = backup.seg_size;
    let segments = source.segments();
    let mut segno = backup.begin.segment_number(size);
    let mut present = Vec::new();
    loop {
        let tli = timeline_of(history, backup.timeline, segno, size);
        let name = segment_file_name(tli_id(tli), segno, size);
        if !segments.contains(&name) {
            let gap = segments.iter().any(|other| {
                parse_segment_file_name(other, size).is_ok_and(|(t, s)| {
                    s > segno && t.get() == timeline_of(history, backup.timeline, s, size)
                })
            });
            return Path {
                present,
                missing: name,
                missing_at: (tli, segno),
                gap,
            };
        }
        present.push((segno, name));
        segno = match segno.checked_add(1) {
            Some(s) => s,
            None => {
                return Path {
                    present,
                    missing: String::new(),
                    missing_at: (tli, segno),
                    gap: false,
                }
            }
        };
    }
}

/// Where in this one segment recovery stops for target `t`, if it does (a description).
fn stops_in(
    backup: &BackupWal,
    target: &RecoveryTarget,
    t: &Target,
    s: &SegmentSummary,
) -> Option<String> {
    let inclusive = target.inclusive();
    match t {
        Target::Time(time) => {
            let tz = to_timestamptz(time);
            if !s.xacts.reaches_time(tz, inclusive) {
                return None;
            }
            let (_, hi) = s.xacts.time_range?;
            Some(format!(
                "before the first transaction that ended after the target; {} ends one at {}",
                s.file_name(),
                from_timestamptz(hi)
                    .map(|t| python_datetime(&t))
                    .unwrap_or_default()
            ))
        }
        Target::Xid(xid) => {
            let exact = [s.xacts.first, s.xacts.last]
                .iter()
                .flatten()
                .any(|e| e.xid == *xid);
            if exact {
                Some(format!(
                    "at the end of transaction {xid} in {}",
                    s.file_name()
                ))
            } else if s.xacts.may_contain_xid(*xid) {
                Some(format!(
                    "at the end of transaction {xid}, which {} may hold",
                    s.file_name()
                ))
            } else {
                None
            }
        }
        Target::Name(name) => s.restore_point(name).map(|rp| {
            format!(
                "at restore point '{name}' ({}, in {})",
                rp.lsn,
                s.file_name()
            )
        }),
        Target::Lsn(lsn) => {
            // Recovery stops at the first record starting at or after the target.
            let last = s.last_record?;
            (last >= *lsn).then(|| format!("at {lsn}, in {}", s.file_name()))
        }
        Target::Immediate => {
            let end = s.end_lsn()?;
            (end >= backup.end).then(|| "at the end of the backup".to_string())
        }
    }
}

/// Find the segment where recovery stops, using stored summaries or exact ones.
fn find_stop(
    backup: &BackupWal,
    target: &RecoveryTarget,
    t: &Target,
    path: &Path,
    source: &mut dyn WalSource,
    exact: bool,
) -> Result<Option<Stop>, PlanError> {
    let size = backup.seg_size;
    let end_seg = backup
        .end
        .prev_segment_number(size)
        .unwrap_or(WalSegNo::new(0));
    // Quick refusals that need no WAL.
    match t {
        Target::Time(time) => {
            if let Some(end_time) = backup.end_time {
                if end_time > *time {
                    return Err(PlanError::new(format!(
                        "The requested target time {} is before the backup end time {}",
                        python_datetime(time),
                        python_datetime(&end_time)
                    ))
                    .hint("choose an older backup, or 'auto' as the backup id"));
                }
            }
        }
        Target::Lsn(lsn) if *lsn < backup.end => {
            return Err(PlanError::new(format!(
                "The requested target LSN {lsn} is before the backup end LSN {}",
                backup.end
            ))
            .hint("choose an older backup, or 'auto' as the backup id"));
        }
        _ => {}
    }
    let summaries: Vec<Option<SegmentSummary>> = if exact {
        let names: Vec<String> = path.present.iter().map(|(_, n)| n.clone()).collect();
        source.exact_summaries(&names)
    } else {
        // Lazily: stop reading summaries at the first segment that decides.
        let mut found = Vec::new();
        for (segno, name) in &path.present {
            let s = source.summary(name);
            let decides = *segno >= end_seg
                && s.as_ref()
                    .is_some_and(|s| stops_in(backup, target, t, s).is_some());
            found.push(s);
            if decides && !matches!(t, Target::Xid(_)) {
                break;
            }
        }
        found
    };
    let mut xid_candidate: Option<(WalSegNo, String)> = None;
    for ((segno, _name), summary) in path.present.iter().zip(summaries.iter()) {
        let Some(s) = summary else { continue };
        let Some(why) = stops_in(backup, target, t, s) else {
            continue;
        };
        let within_backup = *segno < end_seg
            || (*segno == end_seg
                && s.xacts.last.map_or(true, |e| e.lsn < backup.end)
                && s.restore_points.iter().all(|r| r.lsn < backup.end));
        match t {
            Target::Name(name) => {
                let rp = s.restore_point(name).map(|r| r.lsn).unwrap_or_default();
                if rp < backup.end {
                    return Err(PlanError::new(format!(
                        "The restore point '{name}' ({rp}) is before the end of the backup ({}): recovery cannot stop there",
                        backup.end
                    ))
                    .hint("choose an older backup"));
                }
                return Ok(Some(Stop::Archived(*segno, why)));
            }
            Target::Time(_) => {
                if within_backup {
                    // Only a transaction that ended during the backup: stopping there
                    // is before consistency.
                    if *segno < end_seg {
                        continue;
                    }
                }
                return Ok(Some(Stop::Archived(*segno, why)));
            }
            Target::Xid(xid) => {
                let exact_hit = [s.xacts.first, s.xacts.last]
                    .iter()
                    .flatten()
                    .any(|e| e.xid == *xid && e.lsn >= backup.end);
                if exact_hit {
                    return Ok(Some(Stop::Archived(*segno, why)));
                }
                if *segno >= end_seg || !within_backup {
                    xid_candidate = Some((*segno, why));
                }
            }
            Target::Lsn(_) => {
                let mut stop = *segno;
                if s.pending_record.is_some() {
                    if let Some(next) = segno.checked_add(1) {
                        if path.present.iter().any(|(n, _)| *n == next) {
                            stop = next;
                        }
                    }
                }
                return Ok(Some(Stop::Archived(stop, why)));
            }
            Target::Immediate => return Ok(Some(Stop::Archived(end_seg, why))),
        }
    }
    Ok(xid_candidate.map(|(s, why)| Stop::Archived(s, why)))
}

/// The refusal for a target the archive does not reach.
fn not_reached(
    backup: &BackupWal,
    _target: &RecoveryTarget,
    t: &Target,
    path: &Path,
    source: &mut dyn WalSource,
    end: &str,
) -> PlanError {
    let last = path
        .present
        .iter()
        .rev()
        .find_map(|(_, n)| source.summary(n).and_then(|s| s.xacts.last));
    match t {
        Target::Time(time) => {
            let last_end = match last.and_then(|e| from_timestamptz(e.time).map(|t| (e, t))) {
                Some((e, at)) => format!(
                    "; the last transaction end in the archive is at {} (transaction {}, {})",
                    python_datetime(&at),
                    e.xid,
                    e.lsn
                ),
                None => String::new(),
            };
            PlanError::new(format!(
                "The requested target time {} is not reached by the WAL archive: no transaction ended after it{last_end}, and {end}",
                python_datetime(time)
            ))
            .hint("PostgreSQL stops only at a transaction that ended after the target time; archive newer WAL ('barman switch-wal --archive') or recover to the end of the WAL without a target")
        }
        Target::Xid(xid) => PlanError::new(format!(
            "The requested target xid {xid} does not end in the WAL archive after the backup start ({}); {end}",
            backup.begin
        ))
        .hint("check the transaction id (it must have committed or aborted after the backup started)"),
        Target::Name(name) => {
            let mut names: BTreeSet<String> = BTreeSet::new();
            for (_, n) in &path.present {
                if let Some(s) = source.summary(n) {
                    for rp in s.restore_points.iter().filter(|r| r.lsn >= backup.end) {
                        names.insert(rp.name.clone());
                    }
                }
            }
            let known = if names.is_empty() {
                "there is none after the backup".to_string()
            } else {
                format!(
                    "those after the backup are: {}",
                    names.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            PlanError::new(format!(
                "The requested restore point '{name}' is not in the WAL archive after the backup; {known}"
            ))
        }
        Target::Lsn(lsn) => PlanError::new(format!(
            "The requested target LSN {lsn} is after the end of the WAL archive; {end}"
        )),
        Target::Immediate => PlanError::new(format!(
            "The WAL archive does not reach the end of the backup ({}); {end}",
            backup.end
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_protocol::wal::{
        RestorePoint, SegmentHead, SegmentTail, TimestampTz, TransactionId, XactEvent, XactKind,
        XactSummary,
    };

    const SIZE: WalSegmentSize = WalSegmentSize::DEFAULT;
    const SEG: u64 = 16 << 20;

    struct Fake {
        segments: BTreeSet<String>,
        histories: BTreeMap<u32, TimelineHistory>,
        summaries: BTreeMap<String, SegmentSummary>,
        partial: Option<SegmentSummary>,
    }

    impl WalSource for Fake {
        fn segments(&self) -> &BTreeSet<String> {
            &self.segments
        }
        fn histories(&self) -> &BTreeMap<u32, TimelineHistory> {
            &self.histories
        }
        fn summary(&mut self, name: &str) -> Option<SegmentSummary> {
            self.summaries.get(name).cloned()
        }
        fn exact_summaries(&mut self, names: &[String]) -> Vec<Option<SegmentSummary>> {
            names
                .iter()
                .map(|n| self.summaries.get(n).cloned())
                .collect()
        }
        fn live_partial(&mut self, name: &str) -> Option<SegmentSummary> {
            self.partial.clone().filter(|p| p.file_name() == name)
        }
    }

    /// Micros since 2000 for "second N".
    fn at(sec: i64) -> TimestampTz {
        TimestampTz::from_pg_micros(800_000_000_000_000 + sec * 1_000_000)
    }

    fn time_of(sec: i64) -> DateTime<FixedOffset> {
        from_timestamptz(at(sec)).unwrap()
    }

    /// Segment `segno` of timeline `tli` with transaction ends (xid, second) and restore points.
    fn seg(tli: u32, segno: u64, xacts: &[(u32, i64)], rps: &[&str]) -> SegmentSummary {
        let start = segno * SEG;
        let mut x = XactSummary::default();
        for (i, (xid, sec)) in xacts.iter().enumerate() {
            x.add(XactEvent {
                lsn: Lsn::new(start + 0x1000 * (i as u64 + 1)),
                xid: TransactionId::new(*xid),
                time: at(*sec),
                kind: XactKind::Commit,
            });
        }
        SegmentSummary {
            timeline: tli_id(tli),
            segno: WalSegNo::new(segno),
            seg_size: SIZE,
            system_identifier: 1,
            pg_major: 16,
            block_size: 8192,
            head: SegmentHead::Clean,
            tail: SegmentTail::Full,
            records: 10,
            first_record: Some(Lsn::new(start + 0x28)),
            last_record: Some(Lsn::new(start + SEG - 0x100)),
            end: Some(Lsn::new(start + SEG)),
            pending_record: None,
            xacts: x,
            restore_points: rps
                .iter()
                .enumerate()
                .map(|(i, n)| RestorePoint {
                    lsn: Lsn::new(start + 0x8000 + i as u64 * 0x100),
                    time: at(0),
                    name: n.to_string(),
                })
                .collect(),
        }
    }

    fn fake(summaries: Vec<SegmentSummary>) -> Fake {
        Fake {
            segments: summaries.iter().map(|s| s.file_name()).collect(),
            histories: BTreeMap::new(),
            summaries: summaries.into_iter().map(|s| (s.file_name(), s)).collect(),
            partial: None,
        }
    }

    /// A backup from segment 2 to the middle of segment 3, ended at second 10.
    fn backup() -> BackupWal {
        BackupWal {
            timeline: 1,
            begin: Lsn::new(2 * SEG + 0x28),
            end: Lsn::new(3 * SEG + 0x100),
            end_time: Some(time_of(10)),
            seg_size: SIZE,
        }
    }

    fn archive() -> Fake {
        fake(vec![
            seg(1, 2, &[(700, 1)], &[]),
            seg(1, 3, &[(701, 9)], &[]),
            seg(1, 4, &[(702, 20), (703, 21)], &["before_drop"]),
            seg(1, 5, &[(704, 30)], &[]),
            seg(1, 6, &[(705, 40)], &["later"]),
            seg(1, 7, &[], &[]),
        ])
    }

    fn target(t: Target) -> RecoveryTarget {
        RecoveryTarget {
            target: Some(t),
            ..RecoveryTarget::default()
        }
    }

    fn names(p: &WalPlan) -> Vec<String> {
        p.segments.iter().map(|n| n[22..].to_string()).collect()
    }

    #[test]
    fn time_target_copies_up_to_the_first_later_transaction_end() {
        let p = plan(
            &backup(),
            &target(Target::Time(time_of(25))),
            &mut archive(),
        )
        .unwrap();
        assert_eq!(names(&p), ["02", "03", "04", "05"]);
        let p = plan(
            &backup(),
            &target(Target::Time(time_of(20))),
            &mut archive(),
        )
        .unwrap();
        assert_eq!(names(&p), ["02", "03", "04"]);
        // Exclusive: a commit exactly at the target stops recovery too.
        let mut t = target(Target::Time(time_of(30)));
        assert_eq!(
            names(&plan(&backup(), &t, &mut archive()).unwrap()).len(),
            5
        );
        t.exclusive = true;
        assert_eq!(
            names(&plan(&backup(), &t, &mut archive()).unwrap()).len(),
            4
        );
    }

    #[test]
    fn time_targets_outside_the_archive_are_refused() {
        let e = plan(&backup(), &target(Target::Time(time_of(5))), &mut archive()).unwrap_err();
        assert!(e.message.contains("is before the backup end time"), "{e:?}");
        let e = plan(
            &backup(),
            &target(Target::Time(time_of(40))),
            &mut archive(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("is not reached by the WAL archive"),
            "{e:?}"
        );
        assert!(e.message.contains("transaction 705"), "{e:?}");
    }

    #[test]
    fn the_live_partial_is_offered_when_it_holds_the_target() {
        let mut a = archive();
        a.partial = Some(seg(1, 8, &[(706, 50)], &[]));
        let p = plan(&backup(), &target(Target::Time(time_of(45))), &mut a).unwrap();
        assert_eq!(p.partial.as_deref(), Some("000000010000000000000008"));
        assert_eq!(p.segments.len(), 6);
        // Without a target, recovery to the end of WAL takes it too.
        let p = plan(&backup(), &RecoveryTarget::default(), &mut a).unwrap();
        assert_eq!(p.partial.as_deref(), Some("000000010000000000000008"));
    }

    #[test]
    fn names_xids_lsns_and_immediate() {
        let p = plan(
            &backup(),
            &target(Target::Name("before_drop".into())),
            &mut archive(),
        )
        .unwrap();
        assert_eq!(names(&p), ["02", "03", "04"]);
        let e = plan(
            &backup(),
            &target(Target::Name("nope".into())),
            &mut archive(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("'nope' is not in the WAL archive"),
            "{e:?}"
        );
        assert!(e.message.contains("before_drop, later"), "{e:?}");
        let p = plan(
            &backup(),
            &target(Target::Xid(TransactionId::new(704))),
            &mut archive(),
        )
        .unwrap();
        assert_eq!(names(&p), ["02", "03", "04", "05"]);
        let e = plan(
            &backup(),
            &target(Target::Xid(TransactionId::new(900))),
            &mut archive(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("does not end in the WAL archive"),
            "{e:?}"
        );
        let p = plan(
            &backup(),
            &target(Target::Lsn(Lsn::new(5 * SEG + 0x10))),
            &mut archive(),
        )
        .unwrap();
        assert_eq!(names(&p), ["02", "03", "04", "05"]);
        let e = plan(
            &backup(),
            &target(Target::Lsn(Lsn::new(3 * SEG))),
            &mut archive(),
        )
        .unwrap_err();
        assert!(e.message.contains("before the backup end LSN"), "{e:?}");
        let e = plan(
            &backup(),
            &target(Target::Lsn(Lsn::new(20 * SEG))),
            &mut archive(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("after the end of the WAL archive"),
            "{e:?}"
        );
        let p = plan(&backup(), &target(Target::Immediate), &mut archive()).unwrap();
        assert_eq!(names(&p), ["02", "03"]);
        let p = plan(&backup(), &RecoveryTarget::default(), &mut archive()).unwrap();
        assert_eq!(p.segments.len(), 6);
    }

    #[test]
    fn missing_segments_are_refused() {
        let mut a = archive();
        a.segments.remove("000000010000000000000005");
        let e = plan(&backup(), &target(Target::Time(time_of(35))), &mut a).unwrap_err();
        assert!(
            e.message.contains("000000010000000000000005 is missing"),
            "{e:?}"
        );
        // A target before the gap is fine.
        assert!(plan(&backup(), &target(Target::Time(time_of(20))), &mut a).is_ok());
        let e = plan(&backup(), &RecoveryTarget::default(), &mut a).unwrap_err();
        assert!(e.message.contains("is missing"), "{e:?}");
        let mut a = archive();
        a.segments.remove("000000010000000000000003");
        let e = plan(&backup(), &target(Target::Immediate), &mut a).unwrap_err();
        assert!(e.message.contains("required by the backup"), "{e:?}");
    }

    #[test]
    fn a_later_timeline_is_followed_through_its_history() {
        let mut a = archive();
        // Timeline 2 branched at the middle of segment 5.
        let h = TimelineHistory::parse(tli_id(2), "1\t0/5800000\tno recovery target specified\n")
            .unwrap();
        a.histories.insert(2, h);
        for s in [seg(2, 5, &[(710, 60)], &[]), seg(2, 6, &[(711, 70)], &[])] {
            a.segments.insert(s.file_name());
            a.summaries.insert(s.file_name(), s);
        }
        let mut t = target(Target::Time(time_of(65)));
        t.timeline = Some(TimelineTarget::Latest);
        let p = plan(&backup(), &t, &mut a).unwrap();
        assert_eq!(p.timeline, 2);
        assert_eq!(
            p.segments,
            [
                "000000010000000000000002",
                "000000010000000000000003",
                "000000010000000000000004",
                "000000020000000000000005",
                "000000020000000000000006"
            ]
        );
        assert_eq!(p.histories, ["00000002.history"]);
        // Without --target-tli, the backup's timeline only, and no foreign history.
        let p = plan(&backup(), &target(Target::Time(time_of(35))), &mut a).unwrap();
        assert_eq!(p.timeline, 1);
        assert!(p.histories.is_empty());
        let mut t = target(Target::Immediate);
        t.timeline = Some(TimelineTarget::Id(3));
        assert!(plan(&backup(), &t, &mut a).is_err());
    }
}
