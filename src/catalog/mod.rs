//! The on-disk catalogue of a server, as Barman lays it out (BARMAN.md §3): backup
//! metadata in `meta/<id>-backup.info` (3.13.2+) or `base/<id>/backup.info` (older),
//! the WAL archive under `wals/<timeline+log>/`, and the compression of archived WAL
//! files told by their magic bytes.
//!
//! This module reads; writing the catalogue arrives with the commands that change it.

pub mod backup_info;
pub mod check;
pub mod identity;
pub mod pyliteral;
pub mod remove;
pub mod xlogdb;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

use crate::config::ServerConfig;
pub use backup_info::{BackupInfo, BackupStatus};

/// Whether `name` looks like a backup id (`YYYYMMDDTHHMMSS`).
pub fn is_backup_id(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 15
        && b[8] == b'T'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// Every backup of a server, by id. `meta/<id>-backup.info` (Barman 3.13.2+) wins
/// over the older `base/<id>/backup.info`.
pub fn read_backups(server: &ServerConfig) -> Result<BTreeMap<String, BackupInfo>> {
    let mut backups = BTreeMap::new();
    let mut read = |path: &Path, id: &str| -> Result<()> {
        let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let info = BackupInfo::parse(path, id, &text)?;
        backups.insert(id.to_string(), info);
        Ok(())
    };
    if let Some(base) = server.path("basebackups_directory") {
        for id in list_dir_names(base).with_context(|| format!("list {}", base.display()))? {
            let path = base.join(&id).join("backup.info");
            if is_backup_id(&id) && path.is_file() {
                read(&path, &id)?;
            }
        }
    }
    if let Some(dir) = server.path("backup_directory") {
        let meta = dir.join("meta");
        for name in list_dir_names(&meta).with_context(|| format!("list {}", meta.display()))? {
            if let Some(id) = name
                .strip_suffix("-backup.info")
                .filter(|id| is_backup_id(id))
            {
                read(&meta.join(&name), id)?;
            }
        }
    }
    Ok(backups)
}

/// The keep annotation of a backup: `meta/<id>-keep` (Barman 3.13.3+) or the older
/// `base/<id>/annotations/keep`. For a backup whose metadata is still in `base/<id>`, the
/// older file is read first: Barman 3.4 changes only that one (ours writes both).
pub fn read_keep(
    server: &ServerConfig,
    backup_id: &str,
) -> Result<Option<crate::retention::KeepTarget>> {
    let backup = remove::BackupPaths::of(server, backup_id);
    let mut places = [backup.annotation(backup_id, "keep"), backup.older_keep()];
    if backup.is_older_layout() {
        places.reverse();
    }
    for path in places {
        match fs::read_to_string(&path) {
            Ok(text) => return Ok(crate::retention::KeepTarget::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        }
    }
    Ok(None)
}

/// Resolve what a user typed as a backup: an id, a shortcut (`latest`/`last`,
/// `oldest`/`first`, `last-failed`, `latest-full`/`last-full`) or a backup name.
/// The error is the message Barman prints.
pub fn resolve_backup_id(
    server: &str,
    backups: &BTreeMap<String, BackupInfo>,
    wanted: &str,
) -> std::result::Result<String, String> {
    let copy_done = |b: &&BackupInfo| {
        matches!(
            b.status,
            Some(BackupStatus::Done | BackupStatus::WaitingForWals)
        )
    };
    let found = match wanted {
        "latest" | "last" => backups.values().rev().find(copy_done),
        "oldest" | "first" => backups.values().find(copy_done),
        "last-failed" => backups
            .values()
            .rev()
            .find(|b| b.status == Some(BackupStatus::Failed)),
        "latest-full" | "last-full" => backups
            .values()
            .rev()
            .filter(copy_done)
            .find(|b| b.parent_backup_id.is_none()),
        id if is_backup_id(id) => {
            return if backups.contains_key(id) {
                Ok(id.to_string())
            } else {
                Err(format!("Unknown backup '{id}' for server '{server}'"))
            };
        }
        name => {
            let named: Vec<&String> = backups
                .iter()
                .filter(|(_, b)| b.backup_name.as_deref() == Some(name))
                .map(|(id, _)| id)
                .collect();
            return match named.as_slice() {
                [id] => Ok((*id).clone()),
                [] => Err(format!("Unknown backup '{name}' for server '{server}'")),
                many => Err(format!(
                    "Multiple backups found matching name '{name}' (try using backup ID instead): {}",
                    many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
                )),
            };
        }
    };
    found
        .map(|b| b.backup_id.clone())
        .ok_or_else(|| format!("Unknown backup '{wanted}' for server '{server}'"))
}

pub(crate) fn list_dir_names(dir: &Path) -> std::io::Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut names = Vec::new();
            for entry in entries {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Whether `name` is a WAL archive file name: a segment, a `.partial` or `.backup`
/// file, or a timeline history file.
pub fn is_wal_file_name(name: &str) -> bool {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    };
    if let Some(tli) = name.strip_suffix(".history") {
        return tli.len() == 8 && hex(tli);
    }
    let (segment, suffix) = name.split_at(name.len().min(24));
    if segment.len() != 24 || !hex(segment) {
        return false;
    }
    match suffix {
        "" | ".partial" => true,
        s => s
            .strip_prefix('.')
            .and_then(|s| s.strip_suffix(".backup"))
            .is_some_and(|offset| offset.len() == 8 && hex(offset)),
    }
}

/// The compression of a stored WAL file, from its first bytes.
pub fn detect_compression(head: &[u8]) -> Option<&'static str> {
    const MAGICS: &[(&[u8], &str)] = &[
        (b"\x1f\x8b\x08", "gzip"),
        (b"BZh", "bzip2"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\x04\x22\x4d\x18", "lz4"),
        (b"\xff\x06\x00\x00sNaPpY", "snappy"),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, name)| *name)
}

/// Facts about one archived WAL file.
#[derive(Debug, Clone, PartialEq)]
pub struct WalFileInfo {
    /// The file name.
    pub name: String,
    /// Bytes on disk.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub time: f64,
    /// The compression told by magic bytes, if any.
    pub compression: Option<&'static str>,
}

impl WalFileInfo {
    /// Read the facts of a stored file.
    pub fn read(path: &Path) -> std::io::Result<WalFileInfo> {
        let meta = fs::metadata(path)?;
        let mut head = [0u8; 10];
        let mut file = fs::File::open(path)?;
        let n = file.read(&mut head)?;
        let time = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Ok(WalFileInfo {
            name: path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            size: meta.len(),
            time,
            compression: detect_compression(&head[..n]),
        })
    }

    /// As JSON, with Barman's field names.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "size": self.size,
            "time": self.time,
            "compression": self.compression,
        })
    }
}

/// The newest archived WAL file of each timeline (`8` hex digits), found by walking
/// the hash directories of `wals_directory` from the newest.
pub fn latest_archived_wals(
    server: &ServerConfig,
) -> std::io::Result<BTreeMap<String, WalFileInfo>> {
    let mut latest = BTreeMap::new();
    let Some(root) = server.path("wals_directory") else {
        return Ok(latest);
    };
    for dir_name in list_dir_names(root)?.into_iter().rev() {
        let dir = root.join(&dir_name);
        if !dir.is_dir() || dir_name.len() != 16 {
            continue;
        }
        let timeline = dir_name[..8].to_string();
        if u32::from_str_radix(&timeline, 16).is_err() || latest.contains_key(&timeline) {
            continue;
        }
        for name in list_dir_names(&dir)?.into_iter().rev() {
            let path = dir.join(&name);
            if path.is_file() && is_wal_file_name(&name) {
                latest.insert(timeline.clone(), WalFileInfo::read(&path)?);
                break;
            }
        }
    }
    Ok(latest)
}

/// A timestamp as Barman writes it in `backup.info` (Python's `str(datetime)`:
/// `2026-11-22 02:02:41.526012+00:00`); a naive one is taken as local time.
pub fn parse_python_datetime(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    use chrono::TimeZone;
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%:z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
            return Some(t);
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return chrono::Local
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.fixed_offset());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_and_wal_names() {
        assert!(is_backup_id("20261122T020235"));
        assert!(!is_backup_id("20261122X020235"));
        assert!(!is_backup_id("2026112T020235"));
        for ok in [
            "000000010000000000000011",
            "00000002.history",
            "000000010000000000000011.partial",
            "000000010000000000000011.00000028.backup",
        ] {
            assert!(is_wal_file_name(ok), "{ok}");
        }
        for bad in [
            "00000001000000000000001",
            "000000010000000000000011.tmp",
            "0000000g.history",
            "000000010000000000000011.0028.backup",
            "000000010000000000000011.partial.gz",
        ] {
            assert!(!is_wal_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn backup_ids_resolve_from_shortcuts_and_names() {
        let mut backups = BTreeMap::new();
        for (id, status, name, parent) in [
            ("20260101T000000", BackupStatus::Done, Some("first"), None),
            ("20260102T000000", BackupStatus::Failed, None, None),
            ("20260103T000000", BackupStatus::Done, Some("twin"), None),
            (
                "20260104T000000",
                BackupStatus::WaitingForWals,
                Some("twin"),
                Some("20260103T000000"),
            ),
            ("20260105T000000", BackupStatus::Started, None, None),
        ] {
            backups.insert(
                id.to_string(),
                BackupInfo {
                    backup_id: id.into(),
                    status: Some(status),
                    backup_name: name.map(String::from),
                    parent_backup_id: parent.map(String::from),
                    ..BackupInfo::default()
                },
            );
        }
        let r = |w: &str| resolve_backup_id("pg", &backups, w);
        assert_eq!(r("latest").unwrap(), "20260104T000000");
        assert_eq!(r("last-full").unwrap(), "20260103T000000");
        assert_eq!(r("oldest").unwrap(), "20260101T000000");
        assert_eq!(r("last-failed").unwrap(), "20260102T000000");
        assert_eq!(r("first").unwrap(), "20260101T000000");
        assert_eq!(r("20260105T000000").unwrap(), "20260105T000000");
        assert_eq!(
            r("20990101T000000").unwrap_err(),
            "Unknown backup '20990101T000000' for server 'pg'"
        );
        assert_eq!(
            r("nope").unwrap_err(),
            "Unknown backup 'nope' for server 'pg'"
        );
        assert_eq!(
            r("twin").unwrap_err(),
            "Multiple backups found matching name 'twin' (try using backup ID instead): 20260103T000000 20260104T000000"
        );
        assert!(resolve_backup_id("pg", &BTreeMap::new(), "latest").is_err());
    }

    #[test]
    fn python_datetimes_parse_with_and_without_offset() {
        let t = parse_python_datetime("2026-11-22 02:02:41.526012+00:00").unwrap();
        assert_eq!(t.timestamp(), 1795312961);
        assert!(parse_python_datetime("2026-11-22 02:02:41+01:00").is_some());
        assert!(parse_python_datetime("2026-11-22 02:02:41").is_some());
        assert!(parse_python_datetime("yesterday").is_none());
    }

    #[test]
    fn compression_is_told_by_magic_bytes() {
        assert_eq!(detect_compression(b"\x1f\x8b\x08\x00"), Some("gzip"));
        assert_eq!(detect_compression(b"\x28\xb5\x2f\xfd\x00"), Some("zstd"));
        assert_eq!(detect_compression(b"BZh9"), Some("bzip2"));
        assert_eq!(detect_compression(b"\x04\x22\x4d\x18"), Some("lz4"));
        assert_eq!(detect_compression(b"\xd1\x10\x02\x00"), None);
        assert_eq!(detect_compression(b""), None);
    }
}
