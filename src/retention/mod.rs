//! Retention policies: which backups are VALID, OBSOLETE, potentially obsolete
//! (`OBSOLETE*`) or kept (`KEEP:FULL`, `KEEP:STANDALONE`), with Barman's exact rules
//! (BARMAN.md §5.2, `barman/retention_policies.py`).
//!
//! Pure functions over backup facts and the current time; no I/O. Only DONE
//! non-incremental backups count; other backups are `-`; incremental backups take the
//! status of their root.

pub mod wal;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};

use crate::catalog::BackupStatus;
use crate::config::values::{RetentionPolicy, WindowUnit};

/// A backup's retention status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionStatus {
    /// Needed by the policy.
    Valid,
    /// Not needed: retention may delete it.
    Obsolete,
    /// Outside the policy but kept for `minimum_redundancy` (`OBSOLETE*`).
    PotentiallyObsolete,
    /// Kept forever with all WAL after it (`keep --target full`).
    KeepFull,
    /// Kept forever with only its own WAL (`keep --target standalone`).
    KeepStandalone,
    /// Not a DONE backup: not counted (`-`).
    None,
}

impl RetentionStatus {
    /// The word Barman prints.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionStatus::Valid => "VALID",
            RetentionStatus::Obsolete => "OBSOLETE",
            RetentionStatus::PotentiallyObsolete => "OBSOLETE*",
            RetentionStatus::KeepFull => "KEEP:FULL",
            RetentionStatus::KeepStandalone => "KEEP:STANDALONE",
            RetentionStatus::None => "-",
        }
    }
}

impl fmt::Display for RetentionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `keep` annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepTarget {
    /// Keep the backup and all WAL after it.
    Full,
    /// Keep the backup and only the WAL it needs to be consistent.
    Standalone,
}

impl KeepTarget {
    /// Parse the content of a keep annotation file.
    pub fn parse(text: &str) -> Option<KeepTarget> {
        match text.trim() {
            "full" => Some(KeepTarget::Full),
            "standalone" => Some(KeepTarget::Standalone),
            // Barman treats any other recovery target as full, for safety.
            "" => None,
            _ => Some(KeepTarget::Full),
        }
    }

    fn status(self) -> RetentionStatus {
        match self {
            KeepTarget::Full => RetentionStatus::KeepFull,
            KeepTarget::Standalone => RetentionStatus::KeepStandalone,
        }
    }
}

/// What retention needs to know about one backup.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupFacts {
    /// The backup id (ids sort chronologically).
    pub id: String,
    /// Its status.
    pub status: BackupStatus,
    /// When it ended.
    pub end_time: Option<DateTime<FixedOffset>>,
    /// Its keep annotation.
    pub keep: Option<KeepTarget>,
    /// Its parent, for an incremental backup.
    pub parent: Option<String>,
}

/// The retention status of every backup.
pub fn report(
    policy: &RetentionPolicy,
    minimum_redundancy: u32,
    backups: &[BackupFacts],
    now: DateTime<Utc>,
) -> BTreeMap<String, RetentionStatus> {
    let mut sorted: Vec<&BackupFacts> = backups.iter().collect();
    sorted.sort_by(|a, b| b.id.cmp(&a.id));
    let mut report = BTreeMap::new();
    match policy {
        RetentionPolicy::Redundancy(n) => {
            let redundancy = (*n).max(minimum_redundancy) as usize;
            let mut counted = 0usize;
            for b in sorted.iter().filter(|b| b.parent.is_none()) {
                let status = if b.status == BackupStatus::Done {
                    let status = match b.keep {
                        Some(keep) => keep.status(),
                        None if counted < redundancy => RetentionStatus::Valid,
                        None => RetentionStatus::Obsolete,
                    };
                    counted += 1;
                    status
                } else {
                    RetentionStatus::None
                };
                report.insert(b.id.clone(), status);
                let outside = counted > redundancy;
                propagate(b, status, outside, backups, &mut report);
            }
        }
        RetentionPolicy::RecoveryWindow { count, unit } => {
            let days = i64::from(*count)
                * match unit {
                    WindowUnit::Days => 1,
                    WindowUnit::Weeks => 7,
                    WindowUnit::Months => 31,
                };
            let point = now - TimeDelta::days(days);
            let mut found = false;
            let mut valid = 0u32;
            for b in sorted.iter().filter(|b| b.parent.is_none()) {
                let status = if b.status != BackupStatus::Done {
                    RetentionStatus::None
                } else if found {
                    if valid < minimum_redundancy {
                        valid += 1;
                        b.keep
                            .map_or(RetentionStatus::PotentiallyObsolete, KeepTarget::status)
                    } else {
                        b.keep.map_or(RetentionStatus::Obsolete, KeepTarget::status)
                    }
                } else {
                    valid += 1;
                    // The newest backup that ended before the point of recoverability
                    // is still needed to reach it; the ones after it are not.
                    if b.end_time.is_some_and(|end| end < point) {
                        found = true;
                    }
                    b.keep.map_or(RetentionStatus::Valid, KeepTarget::status)
                };
                report.insert(b.id.clone(), status);
                propagate(b, status, found, backups, &mut report);
            }
        }
    }
    report
}

/// Give the incremental backups built on `root` the status that follows from it.
fn propagate(
    root: &BackupFacts,
    root_status: RetentionStatus,
    outside_policy: bool,
    backups: &[BackupFacts],
    report: &mut BTreeMap<String, RetentionStatus>,
) {
    let status = match root_status {
        RetentionStatus::KeepStandalone if outside_policy => RetentionStatus::Obsolete,
        RetentionStatus::KeepStandalone | RetentionStatus::KeepFull => RetentionStatus::Valid,
        other => other,
    };
    let mut frontier = vec![root.id.as_str()];
    while let Some(parent) = frontier.pop() {
        for child in backups
            .iter()
            .filter(|b| b.parent.as_deref() == Some(parent))
        {
            report.insert(child.id.clone(), status);
            frontier.push(&child.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A DONE backup that ended `days_ago` days before [`now`].
    fn done(id: &str, days_ago: i64) -> BackupFacts {
        BackupFacts {
            id: id.into(),
            status: BackupStatus::Done,
            end_time: Some((now() - TimeDelta::days(days_ago)).fixed_offset()),
            keep: None,
            parent: None,
        }
    }

    fn statuses(report: &BTreeMap<String, RetentionStatus>) -> Vec<(&str, &str)> {
        report
            .iter()
            .rev()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn redundancy_keeps_the_n_newest_done_backups() {
        let backups = vec![done("b1", 4), done("b2", 3), done("b3", 2), done("b4", 1)];
        let r = report(&RetentionPolicy::Redundancy(2), 0, &backups, now());
        assert_eq!(
            statuses(&r),
            [
                ("b4", "VALID"),
                ("b3", "VALID"),
                ("b2", "OBSOLETE"),
                ("b1", "OBSOLETE")
            ]
        );
    }

    #[test]
    fn redundancy_is_raised_to_minimum_redundancy() {
        let backups = vec![done("b1", 4), done("b2", 3), done("b3", 2)];
        let r = report(&RetentionPolicy::Redundancy(1), 2, &backups, now());
        assert_eq!(
            statuses(&r),
            [("b3", "VALID"), ("b2", "VALID"), ("b1", "OBSOLETE")]
        );
    }

    #[test]
    fn redundancy_skips_unfinished_backups_and_keeps_annotated_ones() {
        let mut failed = done("b3", 2);
        failed.status = BackupStatus::Failed;
        let mut kept = done("b1", 10);
        kept.keep = Some(KeepTarget::Standalone);
        let mut kept_full = done("b2", 5);
        kept_full.keep = Some(KeepTarget::Full);
        let backups = vec![kept, kept_full, failed, done("b4", 1), done("b0", 20)];
        let r = report(&RetentionPolicy::Redundancy(1), 0, &backups, now());
        assert_eq!(
            statuses(&r),
            [
                ("b4", "VALID"),
                ("b3", "-"),
                ("b2", "KEEP:FULL"),
                ("b1", "KEEP:STANDALONE"),
                ("b0", "OBSOLETE")
            ]
        );
    }

    #[test]
    fn recovery_window_keeps_the_backup_needed_to_reach_its_start() {
        let backups = vec![
            done("b1", 30),
            done("b2", 20),
            done("b3", 10),
            done("b4", 1),
        ];
        let policy = RetentionPolicy::RecoveryWindow {
            count: 2,
            unit: WindowUnit::Weeks,
        };
        let r = report(&policy, 0, &backups, now());
        // b3 ended 10 days ago, inside the 14-day window; b2 ended before the window
        // starts and is the base needed to recover to its start; b1 is obsolete.
        assert_eq!(
            statuses(&r),
            [
                ("b4", "VALID"),
                ("b3", "VALID"),
                ("b2", "VALID"),
                ("b1", "OBSOLETE")
            ]
        );
    }

    #[test]
    fn recovery_window_marks_backups_kept_for_minimum_redundancy() {
        let backups = vec![done("b1", 50), done("b2", 40), done("b3", 30)];
        let policy = RetentionPolicy::RecoveryWindow {
            count: 1,
            unit: WindowUnit::Days,
        };
        let r = report(&policy, 3, &backups, now());
        assert_eq!(
            statuses(&r),
            [("b3", "VALID"), ("b2", "OBSOLETE*"), ("b1", "OBSOLETE*")]
        );
        let r = report(&policy, 2, &backups, now());
        assert_eq!(
            statuses(&r),
            [("b3", "VALID"), ("b2", "OBSOLETE*"), ("b1", "OBSOLETE")]
        );
    }

    #[test]
    fn months_are_31_days() {
        let backups = vec![done("b1", 40), done("b2", 32), done("b3", 29)];
        let policy = RetentionPolicy::RecoveryWindow {
            count: 1,
            unit: WindowUnit::Months,
        };
        let r = report(&policy, 0, &backups, now());
        assert_eq!(
            statuses(&r),
            [("b3", "VALID"), ("b2", "VALID"), ("b1", "OBSOLETE")]
        );
    }

    #[test]
    fn incremental_backups_follow_their_root() {
        let mut child = done("b2", 3);
        child.parent = Some("b1".into());
        let mut grandchild = done("b3", 2);
        grandchild.parent = Some("b2".into());
        let mut root = done("b1", 4);
        root.keep = Some(KeepTarget::Standalone);
        let backups = vec![root, child, grandchild, done("b4", 1), done("b5", 0)];
        // The standalone root falls outside REDUNDANCY 1: kept, its children obsolete.
        let r = report(&RetentionPolicy::Redundancy(1), 0, &backups, now());
        assert_eq!(r["b1"], RetentionStatus::KeepStandalone);
        assert_eq!(r["b2"], RetentionStatus::Obsolete);
        assert_eq!(r["b3"], RetentionStatus::Obsolete);
        // Inside the policy, the children are valid.
        let r = report(&RetentionPolicy::Redundancy(5), 0, &backups, now());
        assert_eq!(r["b2"], RetentionStatus::Valid);
        assert_eq!(r["b3"], RetentionStatus::Valid);
    }

    #[test]
    fn keep_annotations_parse_like_barman() {
        assert_eq!(KeepTarget::parse("full\n"), Some(KeepTarget::Full));
        assert_eq!(
            KeepTarget::parse("standalone"),
            Some(KeepTarget::Standalone)
        );
        assert_eq!(KeepTarget::parse("something-new"), Some(KeepTarget::Full));
        assert_eq!(KeepTarget::parse(""), None);
    }
}
