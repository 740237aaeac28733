//! Which WAL files may go when a backup is deleted (BARMAN.md §5.3,
//! `BackupManager.should_remove_wals`, `get_timelines_to_protect`,
//! `remove_wal_before_backup`). Pure functions; the caller does the deleting.
//!
//! - WAL is removed only when no older backup still needs it: no older backup, or
//!   only older `KEEP:STANDALONE` backups (whose own begin..end ranges are then
//!   protected) when retention deletes (a manual `delete` leaves WAL alone then).
//! - What goes is everything before the next backup's `begin_wal` (or, with no
//!   backup left, before the deleted backup's own `begin_wal` in concurrent mode),
//!   except history files, WAL on timelines of other remaining backups, and the
//!   protected ranges.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{BackupInfo, BackupStatus};
use crate::retention::KeepTarget;

/// The decision for the WAL of a deleted backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalCleanup {
    /// WAL before this segment name may go (`None`: all of it).
    pub remove_before: Option<String>,
    /// Timelines whose WAL must stay.
    pub timelines_to_protect: BTreeSet<u32>,
    /// Inclusive `(begin_wal, end_wal)` ranges that must stay.
    pub ranges_to_protect: Vec<(String, String)>,
}

fn copy_done(b: &BackupInfo) -> bool {
    matches!(
        b.status,
        Some(BackupStatus::Done | BackupStatus::WaitingForWals)
    )
}

fn archiving(b: &BackupInfo) -> bool {
    matches!(
        b.status,
        Some(
            BackupStatus::Started
                | BackupStatus::WaitingForWals
                | BackupStatus::Done
                | BackupStatus::Syncing
        )
    )
}

/// Decide what WAL can be removed when `deleted` goes. `None`: keep all WAL.
///
/// `keep` gives the keep annotation of a backup; `concurrent` is whether
/// `backup_options` has `concurrent_backup` (the default).
pub fn plan(
    deleted: &BackupInfo,
    backups: &BTreeMap<String, BackupInfo>,
    keep: &dyn Fn(&str) -> Option<KeepTarget>,
    skip_if_standalone: bool,
    concurrent: bool,
) -> Option<WalCleanup> {
    // Backups that count as neighbours: finished copies, plus the deleted one.
    let candidates: Vec<&BackupInfo> = backups
        .values()
        .filter(|b| copy_done(b) || b.backup_id == deleted.backup_id)
        .collect();
    let mut ranges = Vec::new();
    let mut previous = candidates
        .iter()
        .rev()
        .find(|b| b.backup_id < deleted.backup_id && copy_done(b));
    while let Some(p) = previous {
        match keep(&p.backup_id) {
            Some(KeepTarget::Standalone) if !skip_if_standalone => {
                if let (Some(begin), Some(end)) = (&p.begin_wal, &p.end_wal) {
                    ranges.push((begin.clone(), end.clone()));
                }
                previous = candidates
                    .iter()
                    .rev()
                    .find(|b| b.backup_id < p.backup_id && copy_done(b));
            }
            // An older backup needs everything after it.
            _ => return None,
        }
    }
    let next = candidates
        .iter()
        .find(|b| b.backup_id > deleted.backup_id && copy_done(b))
        .copied();
    let remove_until = match next {
        Some(next) => Some(next),
        None if concurrent => Some(deleted),
        None => None,
    };
    let mut timelines = BTreeSet::new();
    if let Some(until) = remove_until {
        for b in backups.values().filter(|b| archiving(b)) {
            if b.backup_id != deleted.backup_id {
                if let Some(t) = b.timeline {
                    timelines.insert(t);
                }
            }
        }
        if let Some(t) = until.timeline {
            timelines.remove(&t);
        }
    }
    Some(WalCleanup {
        remove_before: remove_until.and_then(|b| b.begin_wal.clone()),
        timelines_to_protect: timelines,
        ranges_to_protect: ranges,
    })
}

impl WalCleanup {
    /// Whether an archived file (as named in `xlog.db`) must stay.
    pub fn keeps(&self, name: &str) -> bool {
        if name.ends_with(".history") {
            return true;
        }
        if let Some(tli) = crate::wal::timeline_of(name) {
            if self.timelines_to_protect.contains(&tli) {
                return true;
            }
        }
        // `.backup` files are compared by their segment name.
        let segment = name.get(..24).unwrap_or(name);
        if self
            .ranges_to_protect
            .iter()
            .any(|(begin, end)| segment >= begin.as_str() && segment <= end.as_str())
        {
            return true;
        }
        match &self.remove_before {
            Some(limit) => name >= limit.as_str(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: &str, status: BackupStatus, tli: u32, begin: u32, end: u32) -> BackupInfo {
        BackupInfo {
            backup_id: id.into(),
            status: Some(status),
            timeline: Some(tli),
            begin_wal: Some(format!("{tli:08X}00000000{begin:08X}")),
            end_wal: Some(format!("{tli:08X}00000000{end:08X}")),
            ..BackupInfo::default()
        }
    }

    fn catalogue(list: Vec<BackupInfo>) -> BTreeMap<String, BackupInfo> {
        list.into_iter().map(|b| (b.backup_id.clone(), b)).collect()
    }

    fn no_keep(_: &str) -> Option<KeepTarget> {
        None
    }

    #[test]
    fn deleting_the_oldest_removes_wal_before_the_next_backup() {
        let c = catalogue(vec![
            backup("b1", BackupStatus::Done, 1, 2, 3),
            backup("b2", BackupStatus::Done, 1, 8, 9),
        ]);
        let plan = plan(&c["b1"], &c, &no_keep, true, true).unwrap();
        assert_eq!(
            plan.remove_before.as_deref(),
            Some("000000010000000000000008")
        );
        assert!(!plan.keeps("000000010000000000000002"));
        assert!(!plan.keeps("000000010000000000000007"));
        assert!(!plan.keeps("000000010000000000000003.00000028.backup"));
        assert!(plan.keeps("000000010000000000000008"));
        assert!(plan.keeps("00000002.history"));
    }

    #[test]
    fn deleting_a_middle_backup_keeps_all_wal_for_the_older_one() {
        let c = catalogue(vec![
            backup("b1", BackupStatus::Done, 1, 2, 3),
            backup("b2", BackupStatus::Done, 1, 5, 5),
            backup("b3", BackupStatus::Done, 1, 8, 9),
        ]);
        assert_eq!(plan(&c["b2"], &c, &no_keep, true, true), None);
    }

    #[test]
    fn the_last_backup_in_concurrent_mode_keeps_wal_from_its_own_start() {
        let c = catalogue(vec![backup("b1", BackupStatus::Done, 1, 4, 5)]);
        let p = plan(&c["b1"], &c, &no_keep, true, true).unwrap();
        assert_eq!(p.remove_before.as_deref(), Some("000000010000000000000004"));
        let p = plan(&c["b1"], &c, &no_keep, true, false).unwrap();
        assert_eq!(p.remove_before, None);
        assert!(!p.keeps("000000010000000000000009"));
    }

    #[test]
    fn standalone_backups_before_protect_their_range_only_for_retention() {
        let c = catalogue(vec![
            backup("b1", BackupStatus::Done, 1, 2, 3),
            backup("b2", BackupStatus::Done, 1, 5, 6),
            backup("b3", BackupStatus::Done, 1, 9, 9),
        ]);
        let keep = |id: &str| (id == "b1").then_some(KeepTarget::Standalone);
        // A manual delete keeps everything while an archival backup is older.
        assert_eq!(plan(&c["b2"], &c, &keep, true, true), None);
        // Retention removes what the standalone backup does not need.
        let p = plan(&c["b2"], &c, &keep, false, true).unwrap();
        assert_eq!(
            p.ranges_to_protect,
            [(
                "000000010000000000000002".into(),
                "000000010000000000000003".into()
            )]
        );
        assert!(p.keeps("000000010000000000000003"));
        assert!(!p.keeps("000000010000000000000004"));
        assert!(!p.keeps("000000010000000000000008"));
        let full = |id: &str| (id == "b1").then_some(KeepTarget::Full);
        assert_eq!(plan(&c["b2"], &c, &full, false, true), None);
    }

    #[test]
    fn wal_of_other_timelines_with_backups_is_protected() {
        let c = catalogue(vec![
            backup("b1", BackupStatus::Done, 1, 2, 3),
            backup("b2", BackupStatus::Done, 2, 8, 9),
            backup("b3", BackupStatus::Started, 3, 10, 10),
        ]);
        let p = plan(&c["b1"], &c, &no_keep, true, true).unwrap();
        assert_eq!(p.timelines_to_protect, BTreeSet::from([3]));
        assert!(p.keeps("000000030000000000000004"));
        assert!(!p.keeps("000000010000000000000004"));
        // Names on timeline 2 before b2's begin: removable.
        assert!(!p.keeps("000000020000000000000007"));
    }

    #[test]
    fn failed_backups_are_not_neighbours() {
        let c = catalogue(vec![
            backup("b0", BackupStatus::Failed, 1, 1, 1),
            backup("b1", BackupStatus::Done, 1, 2, 3),
            backup("b2", BackupStatus::Failed, 1, 5, 5),
            backup("b3", BackupStatus::Done, 1, 8, 9),
        ]);
        let p = plan(&c["b1"], &c, &no_keep, true, true).unwrap();
        assert_eq!(p.remove_before.as_deref(), Some("000000010000000000000008"));
    }
}
