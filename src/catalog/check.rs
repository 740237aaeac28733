//! Whether a backup has all the WAL it needs (Barman's `check_backup`): the segments
//! from `begin_wal` to `end_wal` must be archived. A backup waits (WAITING_FOR_WALS)
//! while the archive has not reached its end, becomes DONE when it has them all, and
//! FAILED when a later segment is archived but one it needs is missing.

use barman_protocol::wal::names;
use barman_protocol::{WalSegNo, WalSegmentSize};

use super::remove::archived_path;
use super::{BackupInfo, BackupStatus};
use crate::config::ServerConfig;

/// The outcome of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalCheck {
    /// The backup is still being taken (no end yet): nothing to decide.
    InProgress,
    /// Not all WAL is archived yet; none is missing so far.
    Waiting,
    /// Every needed segment is archived.
    Complete,
    /// A needed segment is missing while later ones are archived.
    Missing(String),
}

impl WalCheck {
    /// The status a backup gets from this outcome (`None`: leave it as it is).
    pub fn status(&self) -> Option<BackupStatus> {
        match self {
            WalCheck::InProgress => None,
            WalCheck::Waiting => Some(BackupStatus::WaitingForWals),
            WalCheck::Complete => Some(BackupStatus::Done),
            WalCheck::Missing(_) => Some(BackupStatus::Failed),
        }
    }
}

/// Check `info`'s WAL against the archive of `server` and record the outcome in `info`:
/// the status it leads to and, for a missing segment, the error Barman writes. Saving
/// `info` and reporting are the caller's.
pub fn check_backup_wals(
    server: &ServerConfig,
    info: &mut BackupInfo,
) -> std::io::Result<WalCheck> {
    let wals = server
        .path("wals_directory")
        .unwrap_or(std::path::Path::new("."));
    let timeline = info
        .begin_wal
        .as_deref()
        .and_then(|b| b.get(..8))
        .unwrap_or("");
    let latest = super::latest_archived_wals(server)?;
    let last = latest
        .get(timeline)
        .map(|w| w.name.get(..24).unwrap_or(&w.name).to_string());
    let outcome = check_wals(
        info.begin_wal.as_deref(),
        info.end_wal.as_deref(),
        info.xlog_segment_size.unwrap_or(16 << 20),
        last.as_deref(),
        &|name| archived_path(wals, name).exists(),
    );
    if let WalCheck::Missing(name) = &outcome {
        info.error = Some(format!(
            "At least one WAL file is missing. The first missing WAL file is {name}"
        ));
    }
    if let Some(status) = outcome.status() {
        info.status = Some(status);
    }
    Ok(outcome)
}

/// The segment names from `begin` to `end` inclusive (same timeline), for a segment
/// size in bytes. `None` when a name is malformed or the timelines differ.
pub fn segment_names(begin: &str, end: &str, segment_size: u64) -> Option<Vec<String>> {
    let size = WalSegmentSize::new(u32::try_from(segment_size).ok()?).ok()?;
    let (tli, first) = names::parse_segment_file_name(begin, size).ok()?;
    let (end_tli, last) = names::parse_segment_file_name(end, size).ok()?;
    if tli != end_tli || last.get() < first.get() {
        return None;
    }
    Some(
        (first.get()..=last.get())
            .map(|n| names::segment_file_name(tli, WalSegNo::new(n), size))
            .collect(),
    )
}

/// Decide about a backup's WAL. `last_archived` is the newest archived segment of the
/// backup's timeline; `archived` tells whether a segment is in the archive.
pub fn check_wals(
    begin_wal: Option<&str>,
    end_wal: Option<&str>,
    segment_size: u64,
    last_archived: Option<&str>,
    archived: &dyn Fn(&str) -> bool,
) -> WalCheck {
    let (Some(begin), Some(end)) = (begin_wal, end_wal) else {
        return WalCheck::InProgress;
    };
    let Some(last) = last_archived.filter(|last| *last >= begin) else {
        return WalCheck::Waiting;
    };
    let Some(needed) = segment_names(begin, end, segment_size) else {
        return WalCheck::Waiting;
    };
    for name in needed.iter().take_while(|n| n.as_str() <= last) {
        if !archived(name) {
            return WalCheck::Missing(name.clone());
        }
    }
    if end <= last {
        WalCheck::Complete
    } else {
        WalCheck::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB16: u64 = 16 << 20;

    #[test]
    fn segment_names_cross_log_boundaries_for_any_size() {
        let names =
            segment_names("0000000100000000000000FE", "000000010000000100000001", MB16).unwrap();
        assert_eq!(
            names,
            [
                "0000000100000000000000FE",
                "0000000100000000000000FF",
                "000000010000000100000000",
                "000000010000000100000001"
            ]
        );
        // 1 GiB segments: 4 per log.
        let names = segment_names(
            "000000010000000000000003",
            "000000010000000100000000",
            1 << 30,
        )
        .unwrap();
        assert_eq!(
            names,
            ["000000010000000000000003", "000000010000000100000000"]
        );
        assert!(
            segment_names("000000010000000000000003", "000000020000000000000004", MB16).is_none()
        );
        assert!(segment_names("x", "000000010000000000000004", MB16).is_none());
        assert!(
            segment_names("000000010000000000000003", "000000010000000000000004", 1000).is_none()
        );
    }

    #[test]
    fn the_check_follows_barmans_cases() {
        let archived = |have: &'static [&'static str]| move |n: &str| have.contains(&n);
        let a = archived(&["000000010000000000000002", "000000010000000000000003"]);
        let begin = Some("000000010000000000000002");
        let end = Some("000000010000000000000003");
        assert_eq!(
            check_wals(begin, None, MB16, None, &a),
            WalCheck::InProgress
        );
        assert_eq!(check_wals(begin, end, MB16, None, &a), WalCheck::Waiting);
        assert_eq!(
            check_wals(begin, end, MB16, Some("000000010000000000000001"), &a),
            WalCheck::Waiting
        );
        assert_eq!(
            check_wals(begin, end, MB16, Some("000000010000000000000002"), &a),
            WalCheck::Waiting
        );
        assert_eq!(
            check_wals(begin, end, MB16, Some("000000010000000000000003"), &a),
            WalCheck::Complete
        );
        let gap = archived(&["000000010000000000000003", "000000010000000000000004"]);
        assert_eq!(
            check_wals(begin, end, MB16, Some("000000010000000000000004"), &gap),
            WalCheck::Missing("000000010000000000000002".into())
        );
    }
}
