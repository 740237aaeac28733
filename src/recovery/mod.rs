//! Recovery (`barman recover` / `barman restore`): rebuild a data directory from a backup
//! and the WAL archive, to the end of the WAL or to a point in time (BARMAN.md §4).
//!
//! The steps, in the order `commands::recover` runs them:
//! 1. [`target`]: parse and check the target options.
//! 2. [`select_backup`]: the backup (an id, a shortcut, a name, or `auto` for the target).
//! 3. [`wal_plan`] over [`archive`]: decide which WAL the target needs and refuse an
//!    unreachable target, before the destination is touched.
//! 4. [`restore`] through [`dest`]: copy or extract the files, locally or over SSH.
//! 5. [`wal_copy`]: copy the planned WAL, decompressed.
//! 6. [`config`] and [`overlay`]: recovery settings, Barman's mangling of the
//!    configuration files, `.barman-recover.info`, `backup_manifest.<id>`.

pub mod archive;
pub mod config;
pub mod dest;
pub mod overlay;
pub mod restore;
pub mod target;
pub mod throttle;
pub mod wal_copy;
pub mod wal_plan;

use std::collections::BTreeMap;

use barman_protocol::Lsn;

use crate::catalog::{self, BackupInfo, BackupStatus};
use target::{RecoveryTarget, Target, TimelineTarget};

/// Pick the backup to restore. `auto` (Barman 3.13.1) is the newest usable backup that
/// ended before a time or LSN target (on the requested timeline, if any); other ids go
/// through [`catalog::resolve_backup_id`]. The error is the message to print.
pub fn select_backup(
    server: &str,
    backups: &BTreeMap<String, BackupInfo>,
    wanted: &str,
    target: &RecoveryTarget,
    latest_timeline: Option<u32>,
) -> Result<String, String> {
    if wanted != "auto" {
        return catalog::resolve_backup_id(server, backups, wanted);
    }
    let kind = match &target.target {
        Some(Target::Xid(_)) => Some("target_xid"),
        Some(Target::Name(_)) => Some("target_name"),
        Some(Target::Immediate) => Some("target_immediate"),
        _ => None,
    };
    if let Some(kind) = kind {
        return Err(format!(
            "For PITR without a backup_id, the only possible recovery targets are target_time and target_lsn. '{kind}' recovery target is not allowed without a backup_id."
        ));
    }
    let tli = match target.timeline {
        Some(TimelineTarget::Current) => {
            return Err(
                "'current' is not a valid timeline keyword when recovering without a backup_id"
                    .into(),
            )
        }
        Some(TimelineTarget::Latest) => latest_timeline,
        Some(TimelineTarget::Id(n)) => Some(n),
        None => None,
    };
    let usable = backups.values().rev().filter(|b| {
        matches!(
            b.status,
            Some(BackupStatus::Done | BackupStatus::WaitingForWals)
        ) && tli.map_or(true, |t| b.timeline.is_some_and(|bt| bt <= t))
    });
    let mut chosen = None;
    for b in usable {
        let fits = match &target.target {
            Some(Target::Time(t)) => b.end_time.is_some_and(|end| end <= *t),
            Some(Target::Lsn(l)) => b
                .end_xlog
                .as_deref()
                .and_then(|e| e.parse::<Lsn>().ok())
                .is_some_and(|end| end <= *l),
            _ => true,
        };
        if fits {
            chosen = Some(b.backup_id.clone());
            break;
        }
    }
    chosen.ok_or_else(|| "Cannot find any candidate backup for recovery.".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::target::parse_time;

    #[test]
    fn auto_picks_the_newest_backup_that_ends_before_the_target() {
        let mut backups = BTreeMap::new();
        for (id, end, end_lsn, status) in [
            (
                "20260101T000000",
                "2026-01-01 00:10:00+00",
                "0/3000000",
                BackupStatus::Done,
            ),
            (
                "20260102T000000",
                "2026-01-02 00:10:00+00",
                "0/5000000",
                BackupStatus::Done,
            ),
            (
                "20260103T000000",
                "2026-01-03 00:10:00+00",
                "0/7000000",
                BackupStatus::Failed,
            ),
        ] {
            backups.insert(
                id.to_string(),
                BackupInfo {
                    backup_id: id.into(),
                    status: Some(status),
                    end_time: Some(parse_time(end).unwrap().0),
                    end_xlog: Some(end_lsn.into()),
                    timeline: Some(1),
                    ..BackupInfo::default()
                },
            );
        }
        let at = |t: Option<Target>| RecoveryTarget {
            target: t,
            ..RecoveryTarget::default()
        };
        let time = |s: &str| Some(Target::Time(parse_time(s).unwrap().0));
        assert_eq!(
            select_backup(
                "pg",
                &backups,
                "auto",
                &at(time("2026-01-01 12:00:00+00")),
                None
            ),
            Ok("20260101T000000".into())
        );
        assert_eq!(
            select_backup(
                "pg",
                &backups,
                "auto",
                &at(time("2026-01-05 12:00:00+00")),
                None
            ),
            Ok("20260102T000000".into())
        );
        assert_eq!(
            select_backup(
                "pg",
                &backups,
                "auto",
                &at(time("2025-01-05 12:00:00+00")),
                None
            ),
            Err("Cannot find any candidate backup for recovery.".into())
        );
        assert_eq!(
            select_backup(
                "pg",
                &backups,
                "auto",
                &at(Some(Target::Lsn(Lsn::new(0x4000000)))),
                None
            ),
            Ok("20260101T000000".into())
        );
        assert_eq!(
            select_backup("pg", &backups, "auto", &at(None), None),
            Ok("20260102T000000".into())
        );
        assert!(
            select_backup("pg", &backups, "auto", &at(Some(Target::Immediate)), None)
                .unwrap_err()
                .contains("'target_immediate' recovery target is not allowed")
        );
    }
}
